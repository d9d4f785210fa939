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
)
from weathervane.allocate import safety
from weathervane.allocate.optimize import Allocation, Constraints, Objective, optimize_allocation
from weathervane.allocate.response import ResponseModel
from weathervane.allocate.safety import (
    MOVE_STEPS, WEATHER_SHARES, ModelEvidence, choose_and_judge, gate, geo_contrast,
    misspecification, read_evidence, support_range, weather_intervals,
)
from weathervane.config import TenantConfig, validate_tenant_id
from weathervane.governance.events import record_proposal
from weathervane.governance.tables import ensure_decision_tables
from weathervane.periods import period_sums
from weathervane.warehouse import transaction


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
    # decision safety (weathervane.allocate.safety)
    candidate_spend: np.ndarray | None = None  # what the optimiser proposed before the evidence scaled it back
    move_fraction: float = 1.0  # share of the optimiser's move the plan takes (0 = keep-the-split)
    weather_share: float = 1.0  # share of the forecast's pull on the allocation that move follows
    prob_better: float = 0.0  # P(move_fraction of the candidate beats keep-the-split)
    min_prob_better: float = 0.9  # the plan's record of the bar it was judged by (planning.min_prob_better)
    fallback_reasons: list[str] = field(default_factory=list)
    held: np.ndarray | None = None  # [channel, geo] cells held at keep-the-split (need an experiment)
    evidence: ModelEvidence | None = None
    weather_blind: bool = False
    base_note: str | None = None
    experiments: list[dict] = field(default_factory=list)  # the model's lift-test designs for held channels
    geo_split_kept: list[str] = field(default_factory=list)  # channels whose geo split the evidence keeps
    weather_not_applied: list[str] = field(default_factory=list)  # "channel × variable" left at average weather
    support_lo: np.ndarray | None = None  # [channel, geo] spend range run in comparable periods
    support_hi: np.ndarray | None = None

    @property
    def decision(self) -> str:
        return "keep_split" if self.fallback_reasons else "plan"

    @property
    def fallback_reason(self) -> str | None:
        return "; ".join(self.fallback_reasons) or None

    @property
    def media_draws(self) -> np.ndarray:
        return self.contribution.sum(axis=(1, 2))

    def line_binding(self) -> np.ndarray:
        """[channel, geo] what holds each line where it is: a planning limit it sits on, the hold of a cell that
        needs an experiment, the evidence that scaled the move back, or keep-the-split."""
        out = np.full(self.spend.shape, "", dtype=object)
        cand = self.allocation.binding if self.allocation.binding is not None else out
        for idx in np.ndindex(self.spend.shape):
            if self.held is not None and self.held[idx]:
                out[idx] = "held: needs an experiment"
            elif self.fallback_reasons:
                out[idx] = "keep-the-split (see fallback_reason)"
            elif self.move_fraction < 1 or self.weather_share < 1:
                out[idx] = f"evidence: {self.move_description()}" + (
                    f" (candidate at {cand[idx]})" if cand[idx] else "")
            else:
                out[idx] = cand[idx]
        return out

    def move_description(self) -> str:
        out = f"{self.move_fraction:.0%} of the optimiser's move"
        if self.weather_share < 1:
            out += f", following {self.weather_share:.0%} of the forecast's pull"
        return out

    def binding_summary(self) -> list[str]:
        """The constraints that stop the plan, one line each (for the plans table and the report)."""
        if self.fallback_reasons:
            return ["keep-the-split: " + r for r in self.fallback_reasons]
        lines = self.line_binding()
        counts: dict[str, int] = {}
        for v in lines.ravel():
            if v:
                counts[v] = counts.get(v, 0) + 1
        out = [f"{k} ({n} of {lines.size} lines)" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])]
        if self.move_fraction == 1 and self.weather_share == 1:
            out += list(self.allocation.binding_totals)
        return out

    def weather_assumed(self) -> dict[str, dict[str, float]]:
        """Per geo, the mean z of each weather variable over the horizon (0 = that geo's average weather)."""
        z = self.weather.z
        wvars = [c for c in self.weather.values.columns if c not in ("date", "geo_id", "source")]
        if self.weather_blind:
            return {g: {v: 0.0 for v in wvars} for g in self.geos}
        return {g: {v: round(float(z[:, gi, k].mean()), 3) for k, v in enumerate(wvars)}
                for gi, g in enumerate(self.geos)}

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


SUPPORT_LOOKBACK_DAYS = 365  # comparable periods: horizon-length windows of the last year


class WeatherApplied:
    """A response with the weather applied only where the model knows its effect: channel c feels variable k of
    the forecast only when `applied[c, k]` (its 90% interval excludes 1); elsewhere it plans for average weather.
    Cells are separable, so the response is evaluated once per distinct pattern of applied variables."""

    def __init__(self, response, applied: np.ndarray):
        self.inner, self.applied = response, np.asarray(applied, dtype=bool)
        for name in ("model_id", "channels", "geos", "weather_vars", "period_days", "lags"):
            setattr(self, name, getattr(response, name))

    def __getattr__(self, name):  # sample_base, weather_stats, ...: the wrapped model's
        return getattr(self.inner, name)

    def sample_contribution(self, spend, weather_z, history):
        out = None
        for pattern in {tuple(r) for r in self.applied}:
            rows = [ci for ci in range(len(self.applied)) if tuple(self.applied[ci]) == pattern]
            part = self.inner.sample_contribution(spend, weather_z * np.asarray(pattern, dtype=float), history)
            if out is None:
                out = np.zeros_like(part)
            out[:, :, rows] = part[:, :, rows]
        return out


@dataclass
class Decision:
    """What the plan does with the budget, and the evidence for it (`decide`)."""

    spend: np.ndarray
    candidate: np.ndarray
    baseline_spend: np.ndarray
    allocation: Allocation
    step: float
    share: float
    prob: float
    reasons: list[str]
    held: np.ndarray
    objective: Objective
    run: object  # run(spend, z) -> [draw, channel, geo] contributions over the horizon, model error included
    contribution: np.ndarray
    baseline_contribution: np.ndarray
    notes: list[str] = field(default_factory=list)
    geo_split_kept: list[str] = field(default_factory=list)
    weather_not_applied: list[str] = field(default_factory=list)
    support_lo: np.ndarray | None = None
    support_hi: np.ndarray | None = None

    @property
    def decision(self) -> str:
        return "keep_split" if self.reasons else "plan"


def lift_tested_cells(con, tenant_id: str, channels: list[str], geos: list[str]) -> np.ndarray:
    """[channel, geo] True where a loaded lift test measured the channel in the geo (its return is known beyond
    the spend the tenant ran, so the support limit does not apply there)."""
    out = np.zeros((len(channels), len(geos)), dtype=bool)
    try:
        from weathervane.mmm.lift_tests import read_lift_tests

        tests = read_lift_tests(con, tenant_id)
    except Exception:  # no lift-test stream loaded for this tenant
        return out
    for rec in tests.get("record", []):
        ch, g = rec.get("channel"), rec.get("geo_id")
        if ch in channels and g in geos:
            out[channels.index(ch), geos.index(g)] = True
    return out


def decide(response: ResponseModel, z: np.ndarray, history: np.ndarray, previous: np.ndarray, budget: float,
           p, evidence: ModelEvidence, objective: Objective | None = None, *,
           support: tuple[np.ndarray, np.ndarray] | None = None, tested: np.ndarray | None = None) -> Decision:
    """The plan's spend for one horizon: the production rules, whoever asks (build_plan, replay).

    z [period, geo, var] is the horizon's weather (zeros: weather-blind), history the recent spend per period,
    previous [channel, geo] the spend of the window before, p the tenant's planning settings. In order: cells
    that need an experiment are held; spend stays within the range run in comparable periods (`support`) except
    where a lift test measured the cell (`tested`); the forecast's weather moves a channel only through effects
    whose 90% interval excludes 1; the optimiser's candidate; a channel's geo split is kept unless the posterior
    of the geo difference supports the move; the move is sized and judged with the model's error included
    (safety.misspecification), and proposed only when it clears planning.min_prob_better."""
    channels, geos = list(response.channels), list(response.geos)
    notes: list[str] = []
    objective = objective or Objective()
    if objective.margin is None and p.margin is not None:
        objective = replace(objective, margin=p.margin)
    baseline_spend = previous * (budget / previous.sum()) if previous.sum() > 0 else np.full_like(previous, budget / previous.size)
    held = evidence.held(channels, geos)
    s_lo = s_hi = None
    if support is not None:
        s_lo, s_hi = (np.asarray(a, dtype=float).copy() for a in support)
        if tested is not None and tested.any():
            s_lo[tested], s_hi[tested] = 0.0, np.inf
    constraints = Constraints(
        total_budget=float(budget), previous=previous, max_change_pct=p.max_change_pct,
        channel_min=p.channel_min, channel_max=p.channel_max, geo_min=p.geo_min, geo_max=p.geo_max, min_roas=p.min_roas,
        hold=held if held.any() else None, hold_at=baseline_spend, support_lo=s_lo, support_hi=s_hi,
    )
    periods = z.shape[0]

    def raw_run(model, spend, wz):
        sp = np.broadcast_to(spend[None] / periods, (periods, *spend.shape))
        return model.sample_contribution(np.ascontiguousarray(sp), wz, history).sum(axis=1)

    # weather: applied per channel × variable only where the model's multiplier per sd excludes 1 (90%)
    weather_not_applied: list[str] = []
    model = response
    wvars = list(response.weather_vars)
    if np.any(z != 0) and wvars:
        neutral = raw_run(response, baseline_spend, np.zeros_like(z)).sum(axis=2)  # [draw, channel]
        ratio = np.ones((neutral.shape[0], len(channels), len(wvars)))
        for k in range(len(wvars)):
            unit = np.zeros_like(z)
            unit[:, :, k] = 1.0
            ratio[:, :, k] = np.divide(raw_run(response, baseline_spend, unit).sum(axis=2), neutral,
                                       out=np.ones_like(neutral), where=neutral > 0)
        lo, hi = weather_intervals(ratio)
        applied = (lo > 1) | (hi < 1)
        uses = np.any(z != 0, axis=(0, 1))  # variables the forecast moves at all
        weather_not_applied = [f"{channels[c]} × {wvars[k]} [{lo[c, k]:.2f}, {hi[c, k]:.2f}]"
                               for c in range(len(channels)) for k in range(len(wvars))
                               if not applied[c, k] and uses[k] and (hi[c, k] - lo[c, k]) > 1e-9]
        if not applied.all():
            model = WeatherApplied(response, applied)
            if weather_not_applied:
                notes.append("weather not applied where its 90% interval includes 1 (average weather assumed): "
                             + "; ".join(weather_not_applied))
    draws = raw_run(model, baseline_spend, z).shape[0]
    error = misspecification(draws, len(channels), len(geos))
    curvature = safety.shape_error(draws, len(channels))

    def run(spend, wz):
        return error * safety.shape_factor(curvature, spend, baseline_spend) * raw_run(model, spend, wz)

    alloc = optimize_allocation(model, z, history, constraints, objective)
    # the same budget under average weather: what the plan would do without the forecast, so the forecast's pull
    # on the allocation (alloc minus it) can be sized by its own evidence (safety.py, guard 2)
    average = optimize_allocation(model, np.zeros_like(z), history, constraints, objective).spend \
        if np.any(z != 0) else alloc.spend
    # moves between geos need evidence about the geo difference itself; otherwise the channel's split is kept
    geo_split_kept: list[str] = []
    locked = np.zeros(len(channels), dtype=bool)
    bump = 0.05
    slopes = (run(baseline_spend * (1 + bump), z) - run(baseline_spend * (1 - bump), z)) / np.where(
        baseline_spend > 0, 2 * bump * baseline_spend, 1.0)[None]
    for _ in range(len(channels)):
        lock = np.zeros(len(channels), dtype=bool)
        for cand in (alloc.spend, average):
            lock |= geo_contrast(slopes, baseline_spend, cand)[0]
        lock &= ~locked
        if not lock.any():
            break
        locked |= lock
        constraints = replace(constraints, lock_geo_split=locked.copy())
        alloc = optimize_allocation(model, z, history, constraints, objective)
        average = optimize_allocation(model, np.zeros_like(z), history, constraints, objective).spend \
            if np.any(z != 0) else alloc.spend
    if locked.any():
        geo_split_kept = [channels[c] for c in np.flatnonzero(locked)]
        notes.append("geo split kept (the posterior, model error included, does not say at "
                     f"{safety.GEO_CONTRAST_BAR:.0%} that the geo gaining spend returns more): "
                     + ", ".join(geo_split_kept))

    keep_contribution = run(baseline_spend, z)
    keep_total = keep_contribution.sum(axis=(1, 2))
    value = (lambda spend: objective.margin * run(spend, z).sum(axis=(1, 2)) - spend.sum()) if objective.margin \
        else (lambda spend: run(spend, z).sum(axis=(1, 2)))
    keep_value = objective.margin * keep_total - baseline_spend.sum() if objective.margin else keep_total
    # keep-the-split itself may sit outside the user's channel / geo limits: then the plan must move regardless
    keep_feasible = bool(np.all(baseline_spend >= alloc.lower - 1e-6) and np.all(baseline_spend <= alloc.upper + 1e-6))
    moved = not np.allclose(alloc.spend, baseline_spend, rtol=1e-6, atol=1e-6 * max(budget, 1.0))
    shares = WEATHER_SHARES if not np.allclose(average, alloc.spend, rtol=1e-6, atol=1e-6 * max(budget, 1.0)) \
        else (1.0,)
    target = {w: average + w * (alloc.spend - average) for w in shares}  # convex: every mix keeps the limits
    share = 1.0
    if keep_feasible and moved:
        lift_by_move = {(t, w): value(baseline_spend + t * (target[w] - baseline_spend)) - keep_value
                        for t in MOVE_STEPS for w in shares}
        (step, share), lift = choose_and_judge(lift_by_move, p.min_prob_better)
    else:
        step, lift = (1.0, value(alloc.spend) - keep_value) if moved else (0.0, np.zeros_like(keep_total))
    prob, reasons = gate(evidence, lift, moved, p.min_prob_better, p.max_holdout_mape)
    if reasons and not keep_feasible:
        notes.append("keep-the-split breaks the planning limits, so the optimiser's plan is proposed although: "
                     + "; ".join(reasons))
        reasons = []
    spend = baseline_spend.copy() if reasons else baseline_spend + step * (target[share] - baseline_spend)
    if not keep_feasible:
        spend = alloc.spend
    return Decision(
        spend=spend, candidate=alloc.spend, baseline_spend=baseline_spend, allocation=alloc, step=float(step),
        share=float(share), prob=prob, reasons=reasons, held=held, objective=objective, run=run,
        contribution=run(spend, z), baseline_contribution=keep_contribution, notes=notes,
        geo_split_kept=geo_split_kept, weather_not_applied=weather_not_applied, support_lo=s_lo, support_hi=s_hi)


def build_plan(
    con, tenant_id: str, cfg: TenantConfig, response: ResponseModel, *, start: date | None = None,
    total_budget: float | None = None, objective: Objective | None = None, evidence: ModelEvidence | None = None,
    weather_blind: bool = False,
) -> Plan:
    """Plan the horizon after `start` (default planning.start, else the day after the last sales day).

    `evidence` is what the warehouse records about the model (read from mmm.* when None); `weather_blind` plans
    as if the horizon had average weather (the comparison a weather-aware plan has to beat)."""
    tenant_id = validate_tenant_id(tenant_id)
    p = cfg.planning
    channels, geos, wvars = list(response.channels), list(response.geos), list(response.weather_vars)
    start = horizon_start(con, tenant_id, start or p.start)
    days = p.horizon_days
    pdays = int(response.period_days)
    periods = -(-days // pdays)
    previous = daily_spend(con, tenant_id, start - timedelta(days=days), start - timedelta(days=1), channels, geos).sum(axis=0)
    lag_days = int(response.lags) * pdays
    history = period_sums(daily_spend(con, tenant_id, start - timedelta(days=lag_days), start - timedelta(days=1),
                                     channels, geos), pdays) if lag_days else np.zeros((0, len(channels), len(geos)))
    stats = getattr(response, "weather_stats", None) or None
    weather = horizon_weather(con, tenant_id, start, periods * pdays, geos, wvars, stats)
    z = period_sums(weather.z, pdays) / pdays  # each period's mean z, as the model's weekly rows
    if weather_blind:
        z = np.zeros_like(z)
    evidence = evidence or read_evidence(con, tenant_id, response.model_id)

    budget = total_budget if total_budget is not None else p.total_budget
    notes = []
    if budget is None:
        budget = float(previous.sum())
        notes.append(f"total budget = spend of the previous {days} days ({budget:,.2f})")
    if budget <= 0:
        raise PlanningInputError(f"tenant {tenant_id}: no ad spend in {start - timedelta(days=days)}..{start - timedelta(days=1)} "
                                 "and no planning.total_budget: nothing to allocate")
    if previous.sum() <= 0 and p.max_change_pct is not None:
        raise PlanningInputError(f"tenant {tenant_id}: no spend in the previous {days} days, so max_change_pct "
                                 f"{p.max_change_pct} allows none; set planning.max_change_pct: null to plan from zero")
    support = support_range(daily_spend(con, tenant_id, start - timedelta(days=SUPPORT_LOOKBACK_DAYS),
                                        start - timedelta(days=1), channels, geos), days)
    d = decide(response, z, history, previous, float(budget), p, evidence, objective,
               support=support, tested=lift_tested_cells(con, tenant_id, channels, geos))
    notes += d.notes
    alloc, spend, step, share, prob, reasons, held = (d.allocation, d.spend, d.step, d.share, d.prob, d.reasons,
                                                      d.held)
    objective, baseline_spend, run = d.objective, d.baseline_spend, d.run
    contribution = d.contribution
    baseline_contribution = d.baseline_contribution
    neutral = run(spend, np.zeros_like(z)).mean(axis=0)
    multiplier = np.divide(contribution.mean(axis=0), neutral, out=np.ones_like(neutral), where=neutral > 0)
    base, base_note = None, None
    if hasattr(response, "sample_base"):
        draws = contribution.shape[0]
        base, base_note = response.sample_base(start, periods, draws)
    if not alloc.converged:
        notes.append(f"optimiser stopped early: {alloc.message} (constraints hold)")
    if held.any():
        notes.append("held at keep-the-split until an experiment measures them: "
                     + ", ".join(sorted({channels[c] for c, _ in zip(*np.nonzero(held))})))
    if reasons:
        notes.append("proposal is keep-the-split: " + "; ".join(reasons))
    elif 0 < step < 1:
        notes.append(f"the plan takes {step:.0%} of the optimiser's move: the larger moves risk more in the "
                     "posterior's worst draws")
    if not reasons and share < 1:
        notes.append(f"the plan follows {share:.0%} of the forecast's pull on the allocation: the model is unsure "
                     "how strongly this weather moves the channels it favours")
    notes.append("weather: " + ("average weather assumed (weather-blind plan)" if weather_blind
                                else "; ".join(weather.notes)))
    if base_note:
        notes.append(base_note)
    now = datetime.now(UTC).replace(tzinfo=None)
    return Plan(
        plan_id=f"{start:%Y%m%d}-{uuid.uuid4().hex[:10]}", tenant_id=tenant_id, model_id=response.model_id,
        created_at=now, horizon_start=start, horizon_end=start + timedelta(days=days - 1), channels=channels,
        geos=geos, total_budget=float(budget), spend=spend, previous=previous, baseline_spend=baseline_spend,
        contribution=contribution, baseline_contribution=baseline_contribution, base_kpi=base,
        weather_multiplier=multiplier, allocation=alloc, weather=weather, objective=objective, notes=notes,
        candidate_spend=d.candidate, move_fraction=0.0 if reasons else float(step),
        weather_share=1.0 if reasons else float(share), prob_better=prob,
        min_prob_better=p.min_prob_better, fallback_reasons=reasons, held=held, evidence=evidence,
        weather_blind=weather_blind, base_note=base_note,
        experiments=read_experiments(con, tenant_id, response.model_id),
        geo_split_kept=d.geo_split_kept, weather_not_applied=d.weather_not_applied,
        support_lo=d.support_lo, support_hi=d.support_hi,
    )


def read_experiments(con, tenant_id: str, model_id: str) -> list[dict]:
    """The lift-test designs mmm.experiment_recommendations holds for the model (none when the table is absent)."""
    from weathervane.governance.tables import table_exists

    if not table_exists(con, "mmm", "experiment_recommendations"):
        return []
    df = con.execute("select * from mmm.experiment_recommendations where tenant_id = ? and model_id = ? "
                     "order by channel", [tenant_id, model_id]).fetchdf()
    return df.astype(object).where(df.notna(), None).to_dict("records")  # nulls as None, not NaN


# Columns added to the contract's decisions tables (the contract only grows): what a plan's claim rests on.
PLAN_COLUMNS = [
    ("decision", "varchar"), ("fallback_reason", "varchar"), ("prob_better", "double"), ("min_prob_better", "double"),
    ("move_fraction", "double"), ("weather_share", "double"), ("media_kpi_mean", "double"), ("media_kpi_p05", "double"),
    ("media_kpi_p95", "double"), ("baseline_media_kpi_mean", "double"), ("held_channels", "varchar"),
    ("binding_constraints", "varchar"), ("weather_assumed", "varchar"), ("identifiability_source", "varchar"),
]
LINE_COLUMNS = [
    ("binding_constraint", "varchar"), ("candidate_spend", "double"), ("needs_experiment", "boolean"),
    ("weather_assumed", "varchar"),
]


def ensure_plan_columns(con) -> None:
    ensure_decision_tables(con)
    for table, cols in (("plans", PLAN_COLUMNS), ("plan_lines", LINE_COLUMNS)):
        for name, kind in cols:
            con.execute(f"alter table decisions.{table} add column if not exists {name} {kind}")


def write_plan(con, plan: Plan, cfg: TenantConfig) -> None:
    """decisions.plans + plan_lines (delete-then-insert by plan_id) and the `proposed` event, in one transaction;
    notifications are posted after commit."""
    ensure_plan_columns(con)
    kpi, lift, base = _q(plan.kpi_draws), _q(plan.lift_draws), _q(plan.baseline_kpi_draws)
    media = _q(plan.media_draws)
    contrib = _q(plan.contribution)
    base_contrib = plan.baseline_contribution.mean(axis=0)
    binding = plan.line_binding()
    weather = plan.weather_assumed()
    held = plan.held if plan.held is not None else np.zeros(plan.spend.shape, dtype=bool)
    candidate = plan.candidate_spend if plan.candidate_spend is not None else plan.spend
    lines = [
        (plan.plan_id, plan.tenant_id, ch, g, float(plan.spend[ci, gi]), float(plan.previous[ci, gi]),
         float(plan.weather_multiplier[ci, gi]), float(contrib[0][ci, gi]), float(contrib[1][ci, gi]),
         float(contrib[2][ci, gi]), float(plan.baseline_spend[ci, gi]), float(base_contrib[ci, gi]),
         float(plan.allocation.marginal_roas[ci, gi]), float(plan.allocation.lower[ci, gi]),
         float(plan.allocation.upper[ci, gi]), binding[ci, gi] or None, float(candidate[ci, gi]),
         bool(held[ci, gi]), json.dumps(weather.get(g, {})))
        for ci, ch in enumerate(plan.channels) for gi, g in enumerate(plan.geos)
    ]
    extra = [plan.decision, plan.fallback_reason, float(plan.prob_better), float(plan.min_prob_better),
             float(plan.move_fraction), float(plan.weather_share), *map(float, media), float(plan.baseline_contribution.sum(axis=(1, 2)).mean()),
             json.dumps(sorted({plan.channels[c] for c, _ in zip(*np.nonzero(held))})),
             json.dumps(plan.binding_summary()),
             json.dumps({"source": "average (weather-blind)" if plan.weather_blind else plan.weather.source,
                         "mean_z": weather}),
             plan.evidence.flag_source if plan.evidence is not None else None]
    with transaction(con):
        con.execute("delete from decisions.plan_lines where plan_id = ?", [plan.plan_id])
        con.execute("delete from decisions.plans where plan_id = ?", [plan.plan_id])
        con.execute(
            "insert into decisions.plans (plan_id, tenant_id, model_id, created_at, horizon_start, horizon_end, "
            "total_budget, expected_kpi_mean, expected_kpi_p05, expected_kpi_p95, baseline_kpi_mean, status, "
            "baseline_kpi_p05, baseline_kpi_p95, expected_lift_mean, expected_lift_p05, expected_lift_p95, "
            "prob_lift_positive, objective, kpi_scope, weather_source, notes, report_path, "
            + ", ".join(c for c, _ in PLAN_COLUMNS) + ") "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
            + ", ?" * len(PLAN_COLUMNS) + ")",
            [plan.plan_id, plan.tenant_id, plan.model_id, plan.created_at, plan.horizon_start, plan.horizon_end,
             plan.total_budget, *map(float, kpi), float(base[0]), float(base[1]), float(base[2]), *map(float, lift),
             float((plan.lift_draws > 0).mean()), plan.objective.describe(), plan.kpi_scope, plan.weather.source,
             json.dumps(plan.notes), plan.report_path, *extra],
        )
        con.executemany(
            "insert into decisions.plan_lines (plan_id, tenant_id, channel, geo_id, recommended_spend, previous_spend, "
            "weather_multiplier, expected_contribution_mean, expected_contribution_p05, expected_contribution_p95, "
            "baseline_spend, baseline_contribution_mean, marginal_roas, min_spend, max_spend, "
            + ", ".join(c for c, _ in LINE_COLUMNS) + ") "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?" + ", ?" * len(LINE_COLUMNS) + ")", lines,
        )
        record_proposal(con, plan.tenant_id, plan.plan_id, cfg)
    # notifications are posted by the caller once it has released the warehouse (governance.outbox.deliver_outbox)


def propose_plan(
    con, tenant_id: str, cfg: TenantConfig, response: ResponseModel, reports_dir: Path | str | None = None,
    audience=None, **kwargs
) -> Plan:
    """Build the plan, write its HTML report (when `reports_dir` is given, for `audience`: reports.Audience) and
    record it as proposed."""
    plan = build_plan(con, tenant_id, cfg, response, **kwargs)
    if reports_dir is not None:
        from weathervane.allocate.report import write_plan_report

        if audience is None:
            raise ValueError("a plan page needs its tenant's audience (weathervane.reports.audience)")
        plan.report_path = str(write_plan_report(plan, reports_dir, audience))
    write_plan(con, plan, cfg)
    return plan


def describe_decision(con, plan_id: str) -> list[str]:
    """A plan's decision in a few lines, from decisions.plans: what it proposes and why (P(better) and what
    binds), or keep-the-split and the reason; the experiments its model recommends."""
    cols = {r[0] for r in con.execute("describe decisions.plans").fetchall()}
    if "decision" not in cols:
        return []
    share_col = "weather_share" if "weather_share" in cols else "1.0"  # plans stored before the column
    row = con.execute("select decision, fallback_reason, prob_better, min_prob_better, move_fraction, "
                      "binding_constraints, held_channels, weather_assumed, kpi_scope, expected_kpi_mean, "
                      f"expected_kpi_p05, expected_kpi_p95, media_kpi_mean, tenant_id, model_id, {share_col} "
                      "from decisions.plans where plan_id = ?", [plan_id]).fetchone()
    if row is None or row[0] is None:
        return []
    (decision, reason, prob, min_prob, move, binding, held, weather, scope, kpi, k05, k95, media, tenant,
     model_id, share) = row
    what = "total KPI" if scope == "total" else "media KPI"
    lines = []
    if decision == "plan":
        from weathervane.reports import probability

        lines.append(f"Plan {plan_id}: P(beats keep-the-split) {probability(prob)} (bar {min_prob:.0%}), taking "
                     f"{move:.0%} of the optimiser's move"
                     + (f", following {share:.0%} of the forecast's pull" if share is not None and share < 1 else ""))
        lines.append("Binding: " + "; ".join(json.loads(binding or "[]")))
    else:
        lines.append(f"Plan {plan_id} keeps the current split: {reason}")
    lines.append(f"Expected {what} over the horizon {kpi:,.0f} [{k05:,.0f}, {k95:,.0f}], paid media {media:,.0f}")
    held = json.loads(held or "[]")
    if held:
        lines.append("Held until an experiment measures them: " + ", ".join(held))
    w = json.loads(weather or "{}")
    if w.get("mean_z"):
        parts = [f"{g} " + ", ".join(f"{v.split('_')[0]} {z:+.1f} sd" for v, z in zs.items())
                 for g, zs in w["mean_z"].items()]
        lines.append(f"Weather assumed ({w.get('source')}): " + "; ".join(parts))
    for e in read_experiments(con, tenant, model_id):
        if not e.get("treated_geo_ids"):
            lines.append(f"Experiment for {e['channel']}: no design ({e.get('design_note')})")
            continue
        lines.append(f"Experiment for {e['channel']}: +{e['spend_change']:,.0f} spend in "
                     f"{', '.join(json.loads(e['treated_geo_ids']))} for {e['duration_days']} days vs "
                     f"{', '.join(json.loads(e['control_geo_ids'])) or 'the model forecast'}; expected 90% interval "
                     f"width {e['expected_interval_width']:,.0f} against an expected lift of "
                     f"{e['expected_lift_mean']:,.0f}"
                     + ("" if e.get("powered") else f" (underpowered: {e.get('design_note')})"))
    return lines
