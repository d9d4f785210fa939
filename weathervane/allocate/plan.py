"""A budget plan: inputs from the warehouse, the allocation, its expected outcome, and its rows in `decisions`."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from weathervane.allocate.inputs import (
    HorizonWeather,
    PlanningInputError,
    daily_spend,
    horizon_start,
    horizon_weather,
    to_periods,
)
from weathervane.allocate.optimize import Allocation, Constraints, Objective, optimize_allocation
from weathervane.allocate.response import ResponseModel
from weathervane.config import TenantConfig, validate_tenant_id
from weathervane.governance.events import record_proposal
from weathervane.governance.outbox import deliver_pending
from weathervane.governance.tables import ensure_decision_tables


def _q(a: np.ndarray, axis=0):
    return np.mean(a, axis=axis), np.quantile(a, 0.05, axis=axis), np.quantile(a, 0.95, axis=axis)


@dataclass
class Plan:
    plan_id: str
    tenant_id: str
    model_id: str
    created_at: datetime
    horizon_start: date
    horizon_end: date
    channels: list[str]
    geos: list[str]
    total_budget: float
    spend: np.ndarray  # [channel, geo], horizon totals
    previous: np.ndarray
    baseline_spend: np.ndarray  # previous split scaled to the budget
    contribution: np.ndarray  # [draw, channel, geo] under the plan
    baseline_contribution: np.ndarray
    base_kpi: np.ndarray | None  # [draw] KPI without media, when the model gives it
    weather_multiplier: np.ndarray  # [channel, geo]
    allocation: Allocation
    weather: HorizonWeather
    objective: Objective
    notes: list[str] = field(default_factory=list)
    report_path: str | None = None

    @property
    def kpi_draws(self) -> np.ndarray:
        media = self.contribution.sum(axis=(1, 2))
        return media + (self.base_kpi if self.base_kpi is not None else 0.0)

    @property
    def baseline_kpi_draws(self) -> np.ndarray:
        media = self.baseline_contribution.sum(axis=(1, 2))
        return media + (self.base_kpi if self.base_kpi is not None else 0.0)

    @property
    def lift_draws(self) -> np.ndarray:
        return self.kpi_draws - self.baseline_kpi_draws

    @property
    def kpi_scope(self) -> str:
        return "total" if self.base_kpi is not None else "media_contribution"


def build_plan(
    con, tenant_id: str, cfg: TenantConfig, response: ResponseModel, *, start: date | None = None,
    total_budget: float | None = None, objective: Objective | None = None,
) -> Plan:
    """Plan the horizon after `start` (default planning.start, else the day after the last sales day)."""
    tenant_id = validate_tenant_id(tenant_id)
    p = cfg.planning
    channels, geos, wvars = list(response.channels), list(response.geos), list(response.weather_vars)
    start = horizon_start(con, tenant_id, start or p.start)
    days = p.horizon_days
    pdays = int(response.period_days)
    periods = -(-days // pdays)
    previous = daily_spend(con, tenant_id, start - timedelta(days=days), start - timedelta(days=1), channels, geos).sum(axis=0)
    lag_days = int(response.lags) * pdays
    history = to_periods(daily_spend(con, tenant_id, start - timedelta(days=lag_days), start - timedelta(days=1),
                                     channels, geos), pdays) if lag_days else np.zeros((0, len(channels), len(geos)))
    stats = getattr(response, "weather_stats", None) or None
    weather = horizon_weather(con, tenant_id, start, periods * pdays, geos, wvars, stats)
    z = weather.z.reshape(periods, pdays, len(geos), len(wvars)).mean(axis=1)

    budget = total_budget if total_budget is not None else p.total_budget
    notes = []
    if budget is None:
        budget = float(previous.sum())
        notes.append(f"total budget = spend of the previous {days} days ({budget:,.2f})")
    if budget <= 0:
        raise PlanningInputError(f"tenant {tenant_id}: no ad spend in {start - timedelta(days=days)}..{start - timedelta(days=1)} "
                                 "and no planning.total_budget: nothing to allocate")
    objective = objective or Objective()
    if objective.margin is None and p.margin is not None:
        objective = replace(objective, margin=p.margin)
    constraints = Constraints(
        total_budget=float(budget), previous=previous, max_change_pct=p.max_change_pct,
        channel_min=p.channel_min, channel_max=p.channel_max, geo_min=p.geo_min, geo_max=p.geo_max, min_roas=p.min_roas,
    )
    if previous.sum() <= 0 and p.max_change_pct is not None:
        raise PlanningInputError(f"tenant {tenant_id}: no spend in the previous {days} days, so max_change_pct "
                                 f"{p.max_change_pct} allows none; set planning.max_change_pct: null to plan from zero")
    alloc = optimize_allocation(response, z, history, constraints, objective)
    baseline_spend = previous * (budget / previous.sum()) if previous.sum() > 0 else np.full_like(previous, budget / previous.size)

    def run(spend, wz):
        s = np.broadcast_to(spend[None] / periods, (periods, *spend.shape))
        return response.sample_contribution(np.ascontiguousarray(s), wz, history).sum(axis=1)

    contribution = run(alloc.spend, z)
    baseline_contribution = run(baseline_spend, z)
    neutral = run(alloc.spend, np.zeros_like(z)).mean(axis=0)
    multiplier = np.divide(contribution.mean(axis=0), neutral, out=np.ones_like(neutral), where=neutral > 0)
    base = None
    if hasattr(response, "sample_base"):
        base = np.asarray(response.sample_base(z)).reshape(contribution.shape[0], -1).sum(axis=1)
    if not alloc.converged:
        notes.append(f"optimiser stopped early: {alloc.message} (constraints hold)")
    notes.append("weather: " + "; ".join(weather.notes))
    now = datetime.now(UTC).replace(tzinfo=None)
    return Plan(
        plan_id=f"{start:%Y%m%d}-{uuid.uuid4().hex[:10]}", tenant_id=tenant_id, model_id=response.model_id,
        created_at=now, horizon_start=start, horizon_end=start + timedelta(days=days - 1), channels=channels,
        geos=geos, total_budget=float(budget), spend=alloc.spend, previous=previous, baseline_spend=baseline_spend,
        contribution=contribution, baseline_contribution=baseline_contribution, base_kpi=base,
        weather_multiplier=multiplier, allocation=alloc, weather=weather, objective=objective, notes=notes,
    )


def write_plan(con, plan: Plan, cfg: TenantConfig) -> None:
    """decisions.plans + plan_lines (delete-then-insert by plan_id) and the `proposed` event, in one transaction;
    notifications are posted after commit."""
    ensure_decision_tables(con)
    kpi, lift, base = _q(plan.kpi_draws), _q(plan.lift_draws), _q(plan.baseline_kpi_draws)
    contrib = _q(plan.contribution)
    base_contrib = plan.baseline_contribution.mean(axis=0)
    lines = [
        (plan.plan_id, plan.tenant_id, ch, g, float(plan.spend[ci, gi]), float(plan.previous[ci, gi]),
         float(plan.weather_multiplier[ci, gi]), float(contrib[0][ci, gi]), float(contrib[1][ci, gi]),
         float(contrib[2][ci, gi]), float(plan.baseline_spend[ci, gi]), float(base_contrib[ci, gi]),
         float(plan.allocation.marginal_roas[ci, gi]), float(plan.allocation.lower[ci, gi]),
         float(plan.allocation.upper[ci, gi]))
        for ci, ch in enumerate(plan.channels) for gi, g in enumerate(plan.geos)
    ]
    con.execute("begin transaction")
    try:
        con.execute("delete from decisions.plan_lines where plan_id = ?", [plan.plan_id])
        con.execute("delete from decisions.plans where plan_id = ?", [plan.plan_id])
        con.execute(
            "insert into decisions.plans (plan_id, tenant_id, model_id, created_at, horizon_start, horizon_end, "
            "total_budget, expected_kpi_mean, expected_kpi_p05, expected_kpi_p95, baseline_kpi_mean, status, "
            "baseline_kpi_p05, baseline_kpi_p95, expected_lift_mean, expected_lift_p05, expected_lift_p95, "
            "prob_lift_positive, objective, kpi_scope, weather_source, notes, report_path) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [plan.plan_id, plan.tenant_id, plan.model_id, plan.created_at, plan.horizon_start, plan.horizon_end,
             plan.total_budget, *map(float, kpi), float(base[0]), float(base[1]), float(base[2]), *map(float, lift),
             float((plan.lift_draws > 0).mean()), plan.objective.describe(), plan.kpi_scope, plan.weather.source,
             json.dumps(plan.notes), plan.report_path],
        )
        con.executemany(
            "insert into decisions.plan_lines (plan_id, tenant_id, channel, geo_id, recommended_spend, previous_spend, "
            "weather_multiplier, expected_contribution_mean, expected_contribution_p05, expected_contribution_p95, "
            "baseline_spend, baseline_contribution_mean, marginal_roas, min_spend, max_spend) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", lines,
        )
        record_proposal(con, plan.tenant_id, plan.plan_id, cfg)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    deliver_pending(con, plan.tenant_id)


def propose_plan(
    con, tenant_id: str, cfg: TenantConfig, response: ResponseModel, reports_dir: Path | str | None = None, **kwargs
) -> Plan:
    """Build the plan, write its HTML report (when `reports_dir` is given) and record it as proposed."""
    plan = build_plan(con, tenant_id, cfg, response, **kwargs)
    if reports_dir is not None:
        from weathervane.allocate.report import write_plan_report

        plan.report_path = str(write_plan_report(plan, reports_dir))
    write_plan(con, plan, cfg)
    return plan
