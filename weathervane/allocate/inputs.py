"""What the allocator reads from the warehouse: the horizon, recent and previous spend, and the horizon's weather."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from weathervane.governance.tables import table_exists
from weathervane.periods import period_length
from weathervane.transforms import standardise_weather

WEATHER_COLUMNS = ("temperature_2m_mean", "temperature_2m_max", "precipitation_sum")

CLIMATOLOGY_HALF_WINDOW_DAYS = 7


class PlanningInputError(ValueError):
    """The warehouse does not hold what a plan needs."""


def horizon_start(con, tenant_id: str, configured: date | None) -> date:
    """planning.start, else the day after the last day of sales data (else of ad spend)."""
    if configured is not None:
        return configured
    for table in ("fct_sales_daily", "fct_ad_spend_daily"):
        if table_exists(con, "marts", table):
            last = con.execute(f"select max(date) from marts.{table} where tenant_id = ?", [tenant_id]).fetchone()[0]
            if last is not None:
                return last + timedelta(days=1)
    if table_exists(con, "marts", "fct_model_input"):  # an aggregated table: after its last period
        row = con.execute("select max(date), any_value(period) from marts.fct_model_input where tenant_id = ? "
                          "and period = (select min(period) from marts.fct_model_input where tenant_id = ?)",
                          [tenant_id, tenant_id]).fetchone()
        if row[0] is not None:
            return row[0] + timedelta(days=period_length(row[1]))
    raise PlanningInputError(f"tenant {tenant_id}: no rows in marts.fct_sales_daily or marts.fct_ad_spend_daily "
                             "to place the planning horizon; set planning.start in tenant.yaml")


def aggregated_daily_spend(con, tenant_id: str, start: date, end: date) -> pd.DataFrame:
    """(date, channel, geo_id, spend) from a delivered MMM table (fct_model_input without connector spend): each
    period's spend spread evenly over its days."""
    if not table_exists(con, "marts", "fct_model_input"):
        return pd.DataFrame(columns=["date", "channel", "geo_id", "spend"])
    frame = con.execute("select * from marts.fct_model_input where tenant_id = ? and period = (select min(period) "
                        "from marts.fct_model_input where tenant_id = ?)", [tenant_id, tenant_id]).fetchdf()
    cols = [c for c in frame.columns if c.startswith("spend_") and c != "spend_allocated_share"]
    if frame.empty or not cols:
        return pd.DataFrame(columns=["date", "channel", "geo_id", "spend"])
    days = period_length(frame["period"].iloc[0])
    long = frame.melt(id_vars=["date", "geo_id"], value_vars=cols, var_name="channel", value_name="spend")
    long["channel"] = long["channel"].str.removeprefix("spend_")
    long["spend"] = long["spend"].fillna(0.0).astype(float) / days
    parts = [long.assign(date=pd.to_datetime(long["date"]) + pd.Timedelta(days=k)) for k in range(days)]
    out = pd.concat(parts, ignore_index=True)
    out["date"] = out["date"].dt.date
    return out[(out["date"] >= start) & (out["date"] <= end)][["date", "channel", "geo_id", "spend"]]


def daily_spend(con, tenant_id: str, start: date, end: date, channels: list[str], geos: list[str]) -> np.ndarray:
    """Spend [day, channel, geo] from marts.fct_ad_spend_daily for start..end inclusive.

    Rows at a geo the model does not have (national campaigns at `US` in a regional model) are spread over the
    model's geos of the same country in proportion to the channel's regional spend in the window (evenly when
    it has none); a national model (one country geo) takes every row of its country."""
    if not table_exists(con, "marts", "fct_ad_spend_daily"):
        raise PlanningInputError("marts.fct_ad_spend_daily does not exist: run the marts before planning")
    days = (end - start).days + 1
    out = np.zeros((max(days, 0), len(channels), len(geos)))
    if days <= 0:
        return out
    if con.execute("select count(*) from marts.fct_ad_spend_daily where tenant_id = ?", [tenant_id]).fetchone()[0]:
        df = con.execute(
            "select date, channel, geo_id, sum(spend) as spend from marts.fct_ad_spend_daily "
            "where tenant_id = ? and date between ? and ? group by all", [tenant_id, start, end]
        ).fetchdf()
    else:
        df = aggregated_daily_spend(con, tenant_id, start, end)
    if df.empty:
        return out
    ch_idx = {c: i for i, c in enumerate(channels)}
    geo_idx = {g: i for i, g in enumerate(geos)}
    df = df[df["channel"].isin(ch_idx)]
    t = (pd.to_datetime(df["date"]) - pd.Timestamp(start)).dt.days.to_numpy()
    c = df["channel"].map(ch_idx).to_numpy()
    spend = df["spend"].to_numpy(dtype=float)
    direct = df["geo_id"].isin(geo_idx).to_numpy()
    np.add.at(out, (t[direct], c[direct], df["geo_id"][direct].map(geo_idx).to_numpy().astype(int)), spend[direct])
    country = df["geo_id"].str.split("-").str[0].to_numpy()
    for i in np.flatnonzero(~direct):
        targets = [geo_idx[g] for g in geos if g.split("-")[0] == country[i]]
        if not targets:
            continue
        regional = out[:, c[i], targets].sum(axis=0)
        w = regional / regional.sum() if regional.sum() > 0 else np.full(len(targets), 1 / len(targets))
        out[t[i], c[i], targets] += spend[i] * w
    return out


@dataclass
class HorizonWeather:
    dates: list[date]
    values: pd.DataFrame  # date, geo_id, <vars>, source (forecast | climatology | none)
    z: np.ndarray  # [day, geo, var]
    notes: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        used = set(self.values["source"])
        if used == {"forecast"}:
            return "forecast"
        if used <= {"none"}:
            return "none"
        return "+".join(s for s in ("forecast", "climatology", "none") if s in used)


def _forecast_from_marts(con, tenant_id, start, end, wvars) -> pd.DataFrame | None:
    if not table_exists(con, "marts", "fct_weather_forecast_daily"):
        return None
    cols = ", ".join(f"avg({v}) as {v}" for v in wvars)
    return con.execute(
        f"select date, geo_id, {cols} from marts.fct_weather_forecast_daily "
        "where tenant_id = ? and date between ? and ? group by all", [tenant_id, start, end]
    ).fetchdf()


def _forecast_from_raw(con, tenant_id, start, end, wvars) -> pd.DataFrame | None:
    if not table_exists(con, "raw", "weather__forecast"):
        return None
    arrays = ", ".join(f"cast(record->'daily'->'{v}' as double[]) as {v}" for v in wvars)
    picks = ", ".join(f"{v}[i] as {v}" for v in wvars)
    # Open-Meteo responses: parallel arrays under `daily`; the newest loaded file wins for a geo and date.
    return con.execute(
        f"""
        with files as (
            select geo_id, loaded_at, file_path, cast(record->'daily'->'time' as varchar[]) as t, {arrays}
            from raw.weather__forecast where tenant_id = ?
        ), days as (
            select geo_id, loaded_at, file_path, cast(t[i] as date) as date, {picks}
            from files, range(1, len(t) + 1) r(i)
        )
        select date, geo_id, {", ".join(wvars)} from days
        where date between ? and ?
        qualify row_number() over (partition by geo_id, date order by loaded_at desc, file_path desc) = 1
        """, [tenant_id, start, end]
    ).fetchdf()


def _climatology(con, tenant_id, dates, geos, wvars) -> pd.DataFrame | None:
    if not table_exists(con, "marts", "fct_weather_daily") or not dates:
        return None
    cols = ", ".join(f"avg(w.{v}) as {v}" for v in wvars)
    # same day-of-year window (circular) in earlier years: at least 300 days before the date planned
    return con.execute(
        f"""
        select h.date, w.geo_id, {cols}
        from (select unnest(?::date[]) as date) h join marts.fct_weather_daily w
          on w.tenant_id = ? and list_contains(?, w.geo_id)
         and h.date - w.date >= 300
         and least(abs(dayofyear(h.date) - dayofyear(w.date)),
                   365 - abs(dayofyear(h.date) - dayofyear(w.date))) <= {CLIMATOLOGY_HALF_WINDOW_DAYS}
        group by all
        """, [list(dates), tenant_id, list(geos)]
    ).fetchdf()


def history_stats(con, tenant_id: str, geos: list[str], wvars: list[str]) -> dict[str, dict[str, list[float]]]:
    """Each geo's mean and sample sd of each weather variable over its observed history (the z-score basis, as
    weathervane.transforms.weather_moments)."""
    from weathervane.transforms import weather_moments

    if not table_exists(con, "marts", "fct_weather_daily") or not wvars:
        return {}
    # column names from the model's own weather list, never from a file
    cols = ", ".join(v for v in wvars if v in WEATHER_COLUMNS)
    frame = con.execute(f"select geo_id, {cols} from marts.fct_weather_daily where tenant_id = ? "
                        "and list_contains(?, geo_id)", [tenant_id, list(geos)]).fetchdf()
    out: dict[str, dict[str, list[float]]] = {}
    for geo, g in frame.groupby("geo_id"):
        out[geo] = {v: list(weather_moments(g[v].to_numpy(dtype=float))) for v in wvars
                    if v in g and g[v].notna().any()}
    return out


def horizon_weather(con, tenant_id: str, start: date, days: int, geos: list[str], wvars: list[str],
                    stats: dict[str, dict[str, list[float]]] | None = None) -> HorizonWeather:
    """Forecast where one exists (marts.fct_weather_forecast_daily, else raw.weather__forecast), else the geo's
    climatology for those dates; z-scored with `stats` (the model's) or the geo's own history."""
    dates = [start + timedelta(days=i) for i in range(days)]
    end = dates[-1]
    grid = pd.DataFrame([(d, g) for d in dates for g in geos], columns=["date", "geo_id"])
    for v in wvars:
        grid[v] = np.nan
    grid["source"] = "none"
    grid = grid.set_index(["date", "geo_id"])
    forecast = _forecast_from_marts(con, tenant_id, start, end, wvars)
    if forecast is None or forecast.empty:
        forecast = _forecast_from_raw(con, tenant_id, start, end, wvars)
    notes = []
    if forecast is not None and not forecast.empty:
        forecast["date"] = pd.to_datetime(forecast["date"]).dt.date
        f = forecast[forecast["geo_id"].isin(geos)].set_index(["date", "geo_id"])[wvars]
        f = f[f.notna().all(axis=1)]
        grid.loc[f.index, wvars] = f.to_numpy()
        grid.loc[f.index, "source"] = "forecast"
    missing = grid.index[grid["source"] == "none"]
    if len(missing):
        clim = _climatology(con, tenant_id, sorted({d for d, _ in missing}), sorted({g for _, g in missing}), wvars)
        if clim is not None and not clim.empty:
            clim["date"] = pd.to_datetime(clim["date"]).dt.date
            c = clim.set_index(["date", "geo_id"])[wvars]
            c = c[c.notna().all(axis=1)]
            idx = c.index.intersection(missing)
            grid.loc[idx, wvars] = c.loc[idx].to_numpy()
            grid.loc[idx, "source"] = "climatology"
    stats = stats or history_stats(con, tenant_id, geos, wvars)
    z = np.zeros((days, len(geos), len(wvars)))
    for gi, g in enumerate(geos):
        sub = grid.xs(g, level="geo_id")
        counts = sub["source"].value_counts().to_dict()
        parts = [f"{counts[s]} days {s}" for s in ("forecast", "climatology") if counts.get(s)]
        if counts.get("none"):
            parts.append(f"{counts['none']} days without forecast or history (average weather assumed)")
        notes.append(f"{g}: " + ", ".join(parts))
        for k, v in enumerate(wvars):
            mean, sd = (stats.get(g, {}).get(v) or [None, None])
            if mean is None or not sd:
                continue
            z[:, gi, k] = np.nan_to_num(standardise_weather(sub[v].to_numpy(dtype=float), mean, sd))
    return HorizonWeather(dates=dates, values=grid.reset_index(), z=z, notes=notes)
