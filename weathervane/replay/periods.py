"""Decision periods: what was logged, period by period (context, action, outcome), at daily resolution.

The logged action is the spend per channel x geo over a period; the outcome is the KPI over it; the context is
the weather that came (within-geo z-scores in the outcome model's standardisation), the previous period's spend
and, where a plan covered the period, what was planned vs executed and whether it was approved.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from weathervane.config import validate_tenant_id
from weathervane.periods import period_length

DEFAULT_PERIOD_DAYS = 7


class ReplayInputError(ValueError):
    """The warehouse does not hold a replayable history."""


@dataclass
class DecisionLog:
    tenant_id: str
    start: date  # first day of the arrays
    geos: list[str]
    channels: list[str]
    spend: np.ndarray  # [day, channel, geo] executed spend
    kpi: np.ndarray  # [day] KPI summed over the model's cells
    z: np.ndarray  # [day, geo, weather var]
    weather_vars: list[str]
    period_days: int = DEFAULT_PERIOD_DAYS
    model_data: object | None = None  # weathervane.mmm.data.ModelData the outcome models are fitted on
    plans: pd.DataFrame = field(default_factory=pd.DataFrame)  # per period: planned, executed, plan status

    @property
    def n_days(self) -> int:
        return self.spend.shape[0]

    def day(self, d: date) -> int:
        return (d - self.start).days

    def date_of(self, i: int) -> date:
        return self.start + timedelta(days=int(i))

    def periods(self) -> list[tuple[int, int]]:
        """[start, stop) day indices of whole decision periods."""
        k = self.period_days
        return [(s, s + k) for s in range(0, self.n_days - k + 1, k)]

    def action(self, start: int, stop: int) -> np.ndarray:
        return self.spend[start:stop].sum(axis=0)

    def plan_context(self, start: int, stop: int) -> dict:
        """The plan that covered days start..stop-1, if any: its id, status, planned and executed spend."""
        empty = {"plan_id": None, "plan_status": None, "planned_spend": None, "executed_spend": None}
        if self.plans is None or self.plans.empty:
            return empty
        when = pd.to_datetime(self.plans["period_start"]).dt.date
        hit = self.plans[(when >= self.date_of(start)) & (when <= self.date_of(stop - 1))]
        if hit.empty:
            return empty
        return {"plan_id": str(hit["plan_id"].iloc[0]), "plan_status": str(hit["plan_status"].iloc[0]),
                "planned_spend": float(hit["planned_spend"].sum()), "executed_spend": float(hit["executed_spend"].sum())}

    def outcome(self, start: int, stop: int) -> float:
        return float(self.kpi[start:stop].sum())

    def response_inputs(self, response, start: int, stop: int, action: np.ndarray,
                        weather: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(spend [k, channel, geo], weather_z [k, geo, var], history [lags, channel, geo]) at the response model's
        period length, in its channel / geo / weather order: `action` spread evenly over the period, the logged
        spend before it as carry-over, the realized weather (or average weather when `weather` is False)."""
        step = int(response.period_days)
        if (stop - start) % step:
            raise ReplayInputError(f"a decision period of {stop - start} days is not a whole number of the model's "
                                   f"{step}-day periods")
        k = (stop - start) // step
        ci = [self.channels.index(c) for c in response.channels]
        gi = [self.geos.index(g) for g in response.geos]
        act = np.asarray(action, float)[np.ix_(ci, gi)]
        spend = np.broadcast_to(act[None] / k, (k, *act.shape)).copy()
        zi = [self.weather_vars.index(v) if v in self.weather_vars else -1 for v in response.weather_vars]
        z = np.zeros((k, len(gi), len(zi)))
        if weather:
            daily = self.z[start:stop][:, gi]
            for j, w in enumerate(zi):
                if w >= 0:
                    z[:, :, j] = daily[:, :, w].reshape(k, step, len(gi)).mean(axis=1)
        lags = int(response.lags)
        hist = np.zeros((lags, len(ci), len(gi)))
        if lags:
            lo = start - lags * step
            days = np.zeros((lags * step, len(ci), len(gi)))
            src = self.spend[max(lo, 0):start][:, ci][:, :, gi]
            days[days.shape[0] - src.shape[0]:] = src
            hist = days.reshape(lags, step, len(ci), len(gi)).sum(axis=1)
        return spend, z, hist


def _weather_z(con, tenant_id, geos, days, start, wvars, stats) -> np.ndarray:
    z = np.zeros((days, len(geos), len(wvars)))
    rows = con.execute(
        f"select date, geo_id, {', '.join(wvars)} from marts.fct_weather_daily "
        "where tenant_id = ? and date between ? and ?", [tenant_id, start, start + timedelta(days=days - 1)]
    ).fetchdf()
    if rows.empty:
        return z
    rows["i"] = (pd.to_datetime(rows["date"]) - pd.Timestamp(start)).dt.days
    for gi, g in enumerate(geos):
        sub = rows[rows["geo_id"] == g]
        for k, v in enumerate(wvars):
            mean, sd = (stats.get(g, {}).get(v) or [None, None])
            if mean is None or not sd:
                continue
            vals = ((sub[v].astype(float) - mean) / sd).fillna(0.0)
            z[sub["i"].to_numpy(), gi, k] = vals.to_numpy()
    return z


def _plans_by_period(con, tenant_id: str, log: DecisionLog) -> pd.DataFrame:
    from weathervane.governance.tables import table_exists

    if not table_exists(con, "decisions", "plan_adoption") or not table_exists(con, "decisions", "plans"):
        return pd.DataFrame()
    return con.execute(
        "select a.plan_id, a.period as period_start, sum(a.planned_spend) as planned_spend, "
        "sum(a.executed_spend) as executed_spend, any_value(p.status) as plan_status "
        "from decisions.plan_adoption a join decisions.plans p using (plan_id) "
        "where p.tenant_id = ? group by all order by 2", [tenant_id]
    ).fetchdf()


def load_decision_log(con, tenant_id: str, *, grain_product: str | None = None, grain_geo: str | None = None,
                      period: str | None = "week", period_days: int = DEFAULT_PERIOD_DAYS) -> DecisionLog:
    """The tenant's logged decisions from the marts: spend from fct_ad_spend_daily (national rows spread over the
    model's geos as the allocator does), KPI from fct_model_input (the outcome the model is fitted on: net
    revenue from fct_sales_daily at the model's grain), weather from fct_weather_daily, plans from plan_adoption.
    A tenant that delivers an aggregated MMM table (no connectors) has only fct_model_input: its spend and
    weather are read from there, spread evenly over each period's days."""
    from weathervane.allocate.inputs import daily_spend
    from weathervane.governance.tables import table_exists
    from weathervane.mmm.data import ModelInputError, prepare_model_data, read_model_input

    tenant_id = validate_tenant_id(tenant_id)
    try:
        frame, weather = read_model_input(con, tenant_id, grain_product, grain_geo, period)
        data = prepare_model_data(frame, weather, period)
    except ModelInputError as exc:
        raise ReplayInputError(f"tenant {tenant_id}: {exc}") from exc
    step = period_length(data.period)
    if period_days % step:
        raise ReplayInputError(f"replay.period_days={period_days} is not a whole number of {data.period}s")
    start = data.dates[0].date()
    days = len(data.dates) * step
    geos = list(dict.fromkeys(data.cell_geo[c] for c in data.cells))
    # the model input's view, spread evenly over each period's days (exact for period sums)
    cell_geo = np.array([geos.index(data.cell_geo[c]) for c in data.cells])
    per_geo = np.zeros((len(data.dates), len(data.channels), len(geos)))
    np.add.at(per_geo.transpose(2, 0, 1), cell_geo, data.spend.transpose(1, 0, 2))
    spend = np.repeat(per_geo / step, step, axis=0)
    kpi = np.repeat(data.kpi.sum(axis=1) / step, step)
    first_cell = [list(cell_geo).index(g) for g in range(len(geos))]
    z = np.repeat(data.weather_z[:, first_cell], step, axis=0)
    # connectors' tenants: the executed spend and the weather day by day
    if table_exists(con, "marts", "fct_ad_spend_daily") and con.execute(
            "select count(*) from marts.fct_ad_spend_daily where tenant_id = ?", [tenant_id]).fetchone()[0]:
        spend = daily_spend(con, tenant_id, start, start + timedelta(days=days - 1), list(data.channels), geos)
    if table_exists(con, "marts", "fct_weather_daily") and con.execute(
            "select count(*) from marts.fct_weather_daily where tenant_id = ?", [tenant_id]).fetchone()[0]:
        z = _weather_z(con, tenant_id, geos, days, start, list(data.weather_vars), data.weather_stats)
    log = DecisionLog(tenant_id=tenant_id, start=start, geos=geos, channels=list(data.channels), spend=spend,
                      kpi=kpi, z=z, weather_vars=list(data.weather_vars), period_days=period_days, model_data=data)
    log.plans = _plans_by_period(con, tenant_id, log)
    return log
