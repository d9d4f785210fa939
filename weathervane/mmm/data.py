"""From `marts.fct_model_input` rows to the arrays the weather-aware MMM is fitted on."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from weathervane.config import validate_tenant_id
from weathervane.periods import period_length, period_start
from weathervane.transforms import standardise_weather, weather_moments

WEATHER_VARS = ("temperature_2m_mean", "precipitation_sum")
MODEL_INPUT = "marts.fct_model_input"
WEATHER_DAILY = "marts.fct_weather_daily"
REQUIRED = ("tenant_id", "grain_product", "grain_geo", "period", "product_key", "geo_id", "date", "kpi")
CELL_SEP = "|"


class ModelInputError(ValueError):
    """fct_model_input cannot be modelled as it stands."""


@dataclass
class ModelData:
    """One tenant × grain × period panel. Arrays are laid out [date, cell, ...]; a cell is product_key × geo_id."""

    tenant_id: str
    grain_product: str
    grain_geo: str
    period: str
    dates: pd.DatetimeIndex
    cells: list[str]
    cell_geo: dict[str, str]
    channels: list[str]
    spend: np.ndarray  # [date, cell, channel], currency
    kpi: np.ndarray  # [date, cell]
    controls: dict[str, np.ndarray]  # name -> [date, cell], already scaled
    weather_z: np.ndarray  # [date, cell, weather]
    weather_vars: list[str] = field(default_factory=lambda: list(WEATHER_VARS))
    weather_stats: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # geo -> var -> [mean, sd]

    @property
    def n_periods(self) -> int:
        return len(self.dates)

    def to_dataset(self, stop: int | None = None) -> xr.Dataset:
        """The xarray input PyMC-Marketing's MMM takes, optionally only the first `stop` periods."""
        sl = slice(0, stop)
        dates = self.dates[sl]
        coords = {"date": dates, "geo": self.cells}
        ds = xr.Dataset(
            {
                "media": (("date", "geo", "channel"), self.spend[sl]),
                "target": (("date", "geo"), self.kpi[sl]),
                "weather_z": (("date", "geo", "weather"), self.weather_z[sl]),
            },
            coords={**coords, "channel": self.channels, "weather": self.weather_vars},
        )
        if self.controls:
            names = list(self.controls)
            ds["_control"] = xr.DataArray(
                np.stack([self.controls[n][sl] for n in names], axis=-1),
                dims=("date", "geo", "control"),
                coords={**coords, "control": names},
            )
        return ds

    def meta(self) -> dict:
        return {
            "tenant_id": self.tenant_id, "grain_product": self.grain_product, "grain_geo": self.grain_geo,
            "period": self.period, "cells": self.cells, "cell_geo": self.cell_geo, "channels": self.channels,
            "weather_vars": self.weather_vars, "weather_stats": self.weather_stats,
            "train_start": str(self.dates[0].date()), "train_end": str(self.dates[-1].date()),
            "control_names": list(self.controls),
        }


def read_model_input(con, tenant_id: str, grain_product: str | None = None, grain_geo: str | None = None,
                     period: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Rows of fct_model_input for one tenant × grain (× period), and the tenant's daily weather when present."""
    validate_tenant_id(tenant_id)
    where, params = ["tenant_id = ?"], [tenant_id]
    for col, val in (("grain_product", grain_product), ("grain_geo", grain_geo), ("period", period)):
        if val is not None:
            where.append(f"{col} = ?")
            params.append(val)
    try:
        frame = con.execute(
            f"SELECT * FROM {MODEL_INPUT} WHERE {' AND '.join(where)} ORDER BY date, product_key, geo_id", params
        ).df()
    except Exception as exc:  # duckdb.CatalogException when dbt has not built the mart
        raise ModelInputError(f"{MODEL_INPUT}: cannot read ({exc})") from exc
    weather = None
    try:
        weather = con.execute(
            f"SELECT date, geo_id, {', '.join(WEATHER_VARS)} FROM {WEATHER_DAILY} WHERE tenant_id = ? ORDER BY date",
            [tenant_id],
        ).df()
    except Exception:  # no daily weather mart: z falls back to the period values
        weather = None
    return frame, weather


def _fail(row: pd.Series | None, column: str, reason: str, source: str = MODEL_INPUT) -> None:
    where = ""
    if row is not None:
        where = f" row (date={row.get('date')}, product_key={row.get('product_key')}, geo_id={row.get('geo_id')})"
    raise ModelInputError(f"{source}{where}, column {column}: {reason}")


# The warehouse's float sums depend on the order rows arrive in (DuckDB aggregates in parallel): a run that loads the
# same files again gives KPI and weather that differ in the last bits (relative 1e-16 for revenue, 1e-12 for weather).
# PyTensor keys its compiled kernels by the values of a graph's constants, so every such run compiled the fit's and
# the replay's kernels again (fit 85-107 s against 52-67 s, replay 126-194 s against 51-74 s; docs/capacity.md).
# Settled to 9 significant digits (KPI, spend, controls) and 6 decimals of an sd (weather z), the same data give
# the same arrays, and the model sees no difference.
SIGNIFICANT_DIGITS = 9
Z_DECIMALS = 6


def settled(x, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """`x` rounded to `digits` significant digits, element by element (zeros and non-finite values kept)."""
    x = np.asarray(x, dtype=float)
    mag = np.abs(x)
    ok = np.isfinite(x) & (mag > 0)
    exponent = np.floor(np.log10(np.where(ok, mag, 1.0)))
    scale = 10.0 ** (digits - 1 - exponent)
    return np.where(ok, np.round(x * scale) / scale, x)


def prepare_model_data(frame: pd.DataFrame, weather_daily: pd.DataFrame | None = None,
                       period: str | None = None, *, weather_vars: tuple[str, ...] | list[str] = WEATHER_VARS,
                       controls: tuple[str, ...] | list[str] | None = None) -> ModelData:
    """Validate fct_model_input rows and lay them out as arrays; weather becomes z in per-daily-sd units.

    Weather z: each variable standardised within the geo with the mean and sd of its daily history
    (from `weather_daily`), then averaged over the period, so a weekly gamma keeps daily-sd units. Without
    daily weather the period values are standardised within the geo instead. `weather_vars` and `controls`
    come from the model spec (weathervane.spec): the weather terms the data carries, and the controls by name
    (None: every control the data has).
    """
    if frame.empty:
        raise ModelInputError(f"{MODEL_INPUT}: no rows for this tenant and grain")
    for col in REQUIRED:
        if col not in frame.columns:
            _fail(None, col, "missing column")
    for col in ("tenant_id", "grain_product", "grain_geo"):
        if frame[col].nunique() != 1:
            _fail(None, col, f"expected one value per fit, found {sorted(frame[col].unique())}")
    periods = sorted(frame["period"].unique())
    if period is None:
        period = "week" if "week" in periods else periods[0]
    if period not in ("day", "week"):
        _fail(None, "period", f"must be day or week, got {period!r}")
    frame = frame[frame["period"] == period].copy()
    if frame.empty:
        raise ModelInputError(f"{MODEL_INPUT}: no {period}ly rows for this tenant and grain (it holds "
                              f"{', '.join(periods)})")
    frame["date"] = pd.to_datetime(frame["date"])
    frame["cell"] = np.where(
        frame["product_key"].astype(str) == "all", frame["geo_id"].astype(str),
        frame["product_key"].astype(str) + CELL_SEP + frame["geo_id"].astype(str),
    )
    dup = frame.duplicated(["cell", "date"])
    if dup.any():
        _fail(frame[dup].iloc[0], "date", "duplicate row for this cell and period")
    if frame["kpi"].isna().any():
        _fail(frame[frame["kpi"].isna()].iloc[0], "kpi", "missing value")
    spend_cols = [c for c in frame.columns if c.startswith("spend_") and c != "spend_allocated_share"]
    for col in spend_cols:
        bad = frame[col].astype(float) < 0
        if bad.any():
            _fail(frame[bad].iloc[0], col, f"negative spend {frame.loc[bad, col].iloc[0]}")
    channels = [c.removeprefix("spend_") for c in spend_cols if frame[c].fillna(0).astype(float).sum() > 0]
    if not channels:
        _fail(None, "spend_<channel>", "no channel has any spend")

    dates = pd.DatetimeIndex(sorted(frame["date"].unique()))
    cells = sorted(frame["cell"].unique())
    full = pd.MultiIndex.from_product([dates, cells], names=["date", "cell"])
    panel = frame.set_index(["date", "cell"]).reindex(full)
    missing = panel["kpi"].isna()
    if missing.any():
        d, c = missing[missing].index[0]
        raise ModelInputError(f"{MODEL_INPUT} row (date={d.date()}, cell={c}), column kpi: period missing "
                              f"for this cell ({int(missing.sum())} cell-periods missing in all)")
    shape = (len(dates), len(cells))
    cell_geo = dict(zip(frame["cell"], frame["geo_id"].astype(str)))

    def arr(col: str) -> np.ndarray:
        if col not in panel.columns:
            return np.zeros(shape)
        return panel[col].astype(float).fillna(0.0).to_numpy().reshape(shape)

    spend = settled(np.stack([arr(f"spend_{c}") for c in channels], axis=-1))
    kpi = settled(arr("kpi"))

    weather_vars = [v for v in WEATHER_VARS if v in tuple(weather_vars)]
    weather_z, stats = _weather_z(panel, dates, cells, cell_geo, weather_daily, period, weather_vars)
    weather_z = np.round(weather_z, Z_DECIMALS)
    stats = {v: {k: [float(x) for x in settled(vals)] for k, vals in by.items()} for v, by in stats.items()}
    found = {k: settled(v) for k, v in _controls(panel, dates, cells, weather_z, weather_vars, period, arr).items()}
    if controls is not None:
        found = {k: v for k, v in found.items() if k in set(controls)}
    return ModelData(
        tenant_id=str(frame["tenant_id"].iloc[0]), grain_product=str(frame["grain_product"].iloc[0]),
        grain_geo=str(frame["grain_geo"].iloc[0]), period=period, dates=dates, cells=cells, cell_geo=cell_geo,
        channels=channels, spend=spend, kpi=kpi, controls=found, weather_z=weather_z, weather_stats=stats,
        weather_vars=weather_vars,
    )


def _weather_z(panel, dates, cells, cell_geo, weather_daily, period, weather_vars=WEATHER_VARS):
    z = np.zeros((len(dates), len(cells), len(weather_vars)))
    stats: dict[str, dict[str, list[float]]] = {}
    daily = None
    if weather_daily is not None and not weather_daily.empty:
        daily = weather_daily.copy()
        daily["date"] = pd.to_datetime(daily["date"])
    for j, cell in enumerate(cells):
        geo = cell_geo[cell]
        g = daily[daily["geo_id"] == geo] if daily is not None else None
        stats[geo] = {}
        for k, var in enumerate(weather_vars):
            if g is not None and len(g) > 30 and g[var].notna().sum() > 30:
                values = g[var].astype(float)
                mean, sd = weather_moments(values.to_numpy())
                zd = pd.Series(standardise_weather(values.to_numpy(), mean, sd), index=g["date"].to_numpy())
                if period == "week":
                    zd = zd.groupby(period_start(zd.index, period)).mean()
                z[:, j, k] = zd.reindex(dates).fillna(0.0).to_numpy()
            else:
                col = panel[var] if var in panel.columns else None
                values = (col.xs(cell, level="cell").astype(float) if col is not None
                          else pd.Series(0.0, index=dates))
                mean, sd = weather_moments(values.to_numpy())
                z[:, j, k] = np.nan_to_num(standardise_weather(values.to_numpy(), mean, sd))
            stats[geo][var] = [mean, sd]
    return z, stats


def peak_season_share(dates: pd.DatetimeIndex, period: str) -> np.ndarray:
    """Share of each period's days from a week before Black Friday to Christmas Eve (the retail peak season)."""
    days = period_length(period)
    out = np.zeros(len(dates))
    for i, start in enumerate(dates):
        for d in pd.date_range(start, periods=days, freq="D"):
            nov1 = pd.Timestamp(d.year, 11, 1)
            black_friday = nov1 + pd.Timedelta(days=(3 - nov1.weekday()) % 7 + 22)
            if black_friday - pd.Timedelta(days=7) <= d <= pd.Timestamp(d.year, 12, 24):
                out[i] += 1.0 / days
    return out


def _controls(panel, dates, cells, weather_z, weather_vars, period, arr) -> dict[str, np.ndarray]:
    """Controls on comparable scales (coefficients share one prior): flags as is, magnitudes over their max;
    delivered `control_<name>` columns (an aggregated table's event and price columns) by name, scaled the same
    way (over their largest absolute value)."""
    out: dict[str, np.ndarray] = {}
    out["promo_active"] = arr("promo_active")
    out["promo_depth"] = arr("promo_depth_pct") / 100.0
    sends = arr("lifecycle_sends")
    peak = sends.max(axis=0, keepdims=True)
    out["lifecycle_sends"] = np.divide(sends, peak, out=np.zeros_like(sends), where=peak > 0)
    out["is_holiday"] = arr("is_holiday")
    # Peak season (Cyber Week to Christmas Eve): demand and budgets rise together then; without its own term the
    # season's extra sales are credited to the budget pushes.
    out["peak_season"] = np.repeat(peak_season_share(dates, period)[:, None], len(cells), axis=1)
    for k, var in enumerate(weather_vars):
        out[f"{var}_z"] = weather_z[:, :, k]
    for col in sorted(c for c in panel.columns if c.startswith("control_")):
        values = arr(col)
        peak = np.abs(values).max()
        out[col] = values / peak if peak > 0 else values
    n = len(dates)
    out["trend"] = np.repeat((np.arange(n) / max(n - 1, 1))[:, None], len(cells), axis=1)
    if period == "day":
        dow = np.asarray(dates.day_of_week)
        for d in range(1, 7):  # Monday is the reference day
            out[f"weekday_{d}"] = np.repeat((dow == d).astype(float)[:, None], len(cells), axis=1)
    # A control that never moves carries no information and only slows the sampler.
    return {k: v for k, v in out.items() if np.ptp(v) > 0}


def coarsen(data: ModelData, grain_product: str, grain_geo: str) -> ModelData:
    """The panel at a coarser grain, for a rung of the fit's ladder: cells merged by summing KPI and spend (exact:
    dbt allocates spend to cells by shares that sum to one), controls and weather z averaged with each cell's
    revenue as weight. Only coarser: category or product to all, region to country."""
    from dataclasses import replace

    levels_p, levels_g = ("all", "category", "product"), ("country", "region")
    if levels_p.index(grain_product) > levels_p.index(data.grain_product) or \
            levels_g.index(grain_geo) > levels_g.index(data.grain_geo):
        raise ModelInputError(f"{MODEL_INPUT}: cannot refine {data.grain_product} × {data.grain_geo} to "
                              f"{grain_product} × {grain_geo}; harmonize builds finer grains")
    if (grain_product, grain_geo) == (data.grain_product, data.grain_geo):
        return data

    def product_of(cell: str) -> str:
        return cell.split(CELL_SEP)[0] if CELL_SEP in cell else "all"

    def new_geo(cell: str) -> str:
        geo = data.cell_geo[cell]
        return geo.split("-")[0] if grain_geo == "country" else geo

    def new_cell(cell: str) -> str:
        product = "all" if grain_product == "all" else product_of(cell)
        geo = new_geo(cell)
        return geo if product == "all" else f"{product}{CELL_SEP}{geo}"

    targets = sorted({new_cell(c) for c in data.cells})
    member = np.zeros((len(data.cells), len(targets)))
    for i, c in enumerate(data.cells):
        member[i, targets.index(new_cell(c))] = 1.0
    weight = member * np.maximum(np.abs(data.kpi).mean(axis=0), 1e-9)[:, None]
    weight = weight / weight.sum(axis=0, keepdims=True)
    cell_geo = {new_cell(c): new_geo(c) for c in data.cells}
    stats = dict(data.weather_stats)
    for geo in set(cell_geo.values()) - set(stats):
        parts = [data.weather_stats[g] for g in {data.cell_geo[c] for c in data.cells if new_geo(c) == geo}
                 if g in data.weather_stats]
        stats[geo] = {v: list(np.mean([p[v] for p in parts if v in p], axis=0)) for v in data.weather_vars
                      if any(v in p for p in parts)}
    return replace(
        data, grain_product=grain_product, grain_geo=grain_geo, cells=targets, cell_geo=cell_geo,
        kpi=data.kpi @ member, spend=np.einsum("dck,ct->dtk", data.spend, member),
        controls={k: v @ weight for k, v in data.controls.items()},
        weather_z=np.einsum("dcw,ct->dtw", data.weather_z, weight), weather_stats=stats,
    )


def with_weather(data: ModelData, weather_vars: tuple[str, ...] | list[str]) -> ModelData:
    """The panel with only `weather_vars` as weather terms (a rung of the fit's ladder with fewer of them)."""
    from dataclasses import replace

    keep = [v for v in data.weather_vars if v in tuple(weather_vars)]
    if keep == data.weather_vars:
        return data
    idx = [data.weather_vars.index(v) for v in keep]
    controls = {k: v for k, v in data.controls.items()
                if not (k.endswith("_z") and k.removesuffix("_z") in data.weather_vars and k.removesuffix("_z") not in keep)}
    return replace(data, weather_vars=keep, weather_z=data.weather_z[:, :, idx], controls=controls)
