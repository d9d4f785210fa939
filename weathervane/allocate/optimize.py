"""Budget allocation over channel × geo for one horizon, under a response posterior and the weather to come.

Why not PyMC-Marketing's BudgetOptimizer alone: it rebuilds the fitted graph with future media and sets every
other future input to zero, so the weather modulation of a channel's effect would be evaluated at z = 0 (average
weather) whatever the forecast says, and it has no per-geo-sum or change-vs-previous constraints. Here the response
model is evaluated with the horizon's weather and the recent spend prepended (adstock carry-over), then optimised
with scipy SLSQP:

1. Response curves. The response is separable by cell (a channel's contribution in a geo depends only on that
   cell's spend, as in the MMM: adstock and saturation act per channel × geo), so one evaluation of the model
   with every cell at the k-th point of its own spend grid yields the k-th point of every cell's curve. K
   evaluations give per-draw curves f[k, draw, cell] of the horizon total.
2. Objective. Expected KPI (mean over draws, monotone cubic interpolation, analytic gradient), or, risk-averse,
   the mean of the plan's total over the draws below its q-quantile (the lower tail; smoother to optimise than
   the bare quantile, and never above it; linear interpolation per draw, exact piecewise gradient, started from
   the expected-KPI optimum), or profit = margin × KPI − spend when a margin is set.
3. Constraints. Total budget (equality; an upper bound when spending less can pay: a margin or a minimum
   marginal ROAS is set), per-cell bounds from max_change_pct, per-channel and per-geo min / max as linear
   inequalities, and a minimum marginal ROAS as a per-cell spend cap (curves are concave, so mROAS >= r
   is spend <= the point where it falls to r).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.optimize import minimize

from weathervane.allocate.response import ResponseModel

GRID_POINTS = 33


class AllocationInfeasible(ValueError):
    """The planning settings contradict each other."""


@dataclass
class Constraints:
    """All money is the total over the horizon."""

    total_budget: float
    previous: np.ndarray  # [channel, geo] spend of the same-length window before
    max_change_pct: float | None = 30.0
    channel_min: dict[str, float] = field(default_factory=dict)
    channel_max: dict[str, float] = field(default_factory=dict)
    geo_min: dict[str, float] = field(default_factory=dict)
    geo_max: dict[str, float] = field(default_factory=dict)
    min_roas: float | None = None
    # cells kept at `hold_at` (their share of keep-the-split) because the model cannot tell their return
    hold: np.ndarray | None = None  # bool [channel, geo]
    hold_at: np.ndarray | None = None  # [channel, geo]
    # the range of spend the tenant ran in comparable periods (safety.support_range); None: no such limit
    support_lo: np.ndarray | None = None  # [channel, geo]
    support_hi: np.ndarray | None = None
    # channels whose geo split stays as in `hold_at` (the data cannot tell the geos apart): the channel's total
    # may move, its geos only together
    lock_geo_split: np.ndarray | None = None  # bool [channel]


@dataclass
class Objective:
    kind: str = "mean"  # mean | quantile
    quantile: float = 0.1
    margin: float | None = None  # profit = margin * KPI - spend when set

    def describe(self) -> str:
        what = "profit" if self.margin else "KPI"
        return f"expected {what}" if self.kind == "mean" else f"mean of the lowest {self.quantile:.0%} of {what} draws"


@dataclass
class Allocation:
    spend: np.ndarray  # [channel, geo] totals over the horizon
    lower: np.ndarray
    upper: np.ndarray
    marginal_roas: np.ndarray  # d expected KPI / d spend at the chosen point
    grid: np.ndarray  # [K, channel, geo] spend points of the curves
    curves: np.ndarray  # [K, draw, channel, geo] horizon contribution at each grid point
    converged: bool
    message: str
    evaluations: int
    binding: np.ndarray | None = None  # [channel, geo] the constraint each cell sits on ("" when interior)
    binding_totals: list[str] = field(default_factory=list)  # channel / geo / total constraints that bind


def _periods(response: ResponseModel, horizon_days: int) -> int:
    return int(np.ceil(horizon_days / response.period_days))


def evaluate(response: ResponseModel, spend_total: np.ndarray, weather_z: np.ndarray, history: np.ndarray) -> np.ndarray:
    """Draws of horizon contribution [draw, channel, geo] with each cell's total spread evenly over the periods."""
    t = weather_z.shape[0]
    spend = np.broadcast_to(spend_total[None] / t, (t, *spend_total.shape))
    return response.sample_contribution(np.ascontiguousarray(spend), weather_z, history).sum(axis=1)


def _bounds(c: Constraints, channels, geos) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell bounds and, for each, the setting that set it (what the report calls the binding constraint)."""
    prev = np.asarray(c.previous, dtype=float)
    if c.max_change_pct is not None:
        p = c.max_change_pct / 100.0
        lo, hi = prev * max(0.0, 1 - p), prev * (1 + p)
        lo_why = np.full(prev.shape, f"max_change_pct -{c.max_change_pct:g}%" if p < 1 else "zero spend", dtype=object)
        hi_why = np.full(prev.shape, f"max_change_pct +{c.max_change_pct:g}%", dtype=object)
    else:
        lo, hi = np.zeros_like(prev), np.full_like(prev, c.total_budget)
        lo_why = np.full(prev.shape, "zero spend", dtype=object)
        hi_why = np.full(prev.shape, "total budget", dtype=object)
    for name, limits, axis, bound in (("channel_min", c.channel_min, channels, "min"),
                                      ("channel_max", c.channel_max, channels, "max"),
                                      ("geo_min", c.geo_min, geos, "min"), ("geo_max", c.geo_max, geos, "max")):
        unknown = set(limits) - set(axis)
        if unknown:
            raise AllocationInfeasible(f"planning.{name} names {sorted(unknown)}, not in the model ({sorted(axis)})")
    for ci, ch in enumerate(channels):
        if ch in c.channel_max:
            hi_why[ci][c.channel_max[ch] < hi[ci]] = f"channel_max {ch}"
            hi[ci] = np.minimum(hi[ci], c.channel_max[ch])
    for gi, g in enumerate(geos):
        if g in c.geo_max:
            hi_why[:, gi][c.geo_max[g] < hi[:, gi]] = f"geo_max {g}"
            hi[:, gi] = np.minimum(hi[:, gi], c.geo_max[g])
    if c.support_lo is not None:
        # never tighter than keep-the-split itself, which is spend the tenant has run
        keep = np.asarray(c.hold_at if c.hold_at is not None else prev, dtype=float)
        s_lo = np.minimum(np.asarray(c.support_lo, dtype=float), keep)
        s_hi = np.maximum(np.asarray(c.support_hi, dtype=float), keep)
        lo_why[s_lo > lo] = "support: least spend run in a comparable period"
        hi_why[s_hi < hi] = "support: most spend run in a comparable period"
        lo, hi = np.maximum(lo, s_lo), np.minimum(hi, s_hi)
    hi_why[c.total_budget < hi] = "total budget"
    hi = np.minimum(hi, c.total_budget)
    hi = np.maximum(hi, lo)
    if c.hold is not None:
        hold = np.asarray(c.hold, dtype=bool)
        at = np.clip(np.asarray(c.hold_at if c.hold_at is not None else prev, dtype=float), lo, hi)
        lo, hi = np.where(hold, at, lo), np.where(hold, at, hi)
        lo_why[hold] = hi_why[hold] = "held: needs an experiment"
    return lo, hi, lo_why, hi_why


def _linear_constraints(c: Constraints, channels, geos, n_c, n_g, lo, hi, exact_total: bool):
    """(A, b_lo, b_hi, label) rows over the flattened spend; checked for feasibility against the bounds."""
    rows = []
    for ci, ch in enumerate(channels):
        a = np.zeros((n_c, n_g))
        a[ci] = 1
        rows.append((a, c.channel_min.get(ch, -np.inf), c.channel_max.get(ch, np.inf), f"channel {ch}"))
    for gi, g in enumerate(geos):
        a = np.zeros((n_c, n_g))
        a[:, gi] = 1
        rows.append((a, c.geo_min.get(g, -np.inf), c.geo_max.get(g, np.inf), f"geo {g}"))
    rows = [r for r in rows if np.isfinite(r[1]) or np.isfinite(r[2])]
    total_lo = c.total_budget if exact_total else 0.0
    rows.append((np.ones((n_c, n_g)), total_lo, c.total_budget, "total budget"))
    split = []
    if c.lock_geo_split is not None and n_g > 1:
        at = np.asarray(c.hold_at if c.hold_at is not None else c.previous, dtype=float)
        for ci in np.flatnonzero(np.asarray(c.lock_geo_split, dtype=bool)):
            total = at[ci].sum()
            share = at[ci] / total if total > 0 else np.full(n_g, 1.0 / n_g)
            for gi in range(n_g - 1):  # x[c, g] = share[g] * sum_g' x[c, g']
                a = np.zeros((n_c, n_g))
                a[ci] = -share[gi]
                a[ci, gi] += 1.0
                split.append((a, 0.0, 0.0, f"geo split {channels[ci]}"))
    for a, b_lo, b_hi, label in rows:
        reach_lo, reach_hi = float((a * lo).sum()), float((a * hi).sum())
        if b_lo > reach_hi * (1 + 1e-9) + 1e-6 or b_hi < reach_lo * (1 - 1e-9) - 1e-6:
            raise AllocationInfeasible(
                f"{label}: needs spend in [{b_lo:,.2f}, {b_hi:,.2f}] but the per-cell bounds (max_change_pct "
                f"{c.max_change_pct}, channel/geo max, min_roas) allow only [{reach_lo:,.2f}, {reach_hi:,.2f}]"
            )
    return rows + split  # a locked split is feasible at keep-the-split's shares, which every bound contains


def optimize_allocation(
    response: ResponseModel,
    weather_z: np.ndarray,
    history: np.ndarray,
    constraints: Constraints,
    objective: Objective | None = None,
    grid_points: int = GRID_POINTS,
    _curves: tuple[np.ndarray, np.ndarray] | None = None,
) -> Allocation:
    objective = objective or Objective()
    channels, geos = list(response.channels), list(response.geos)
    n_c, n_g = len(channels), len(geos)
    budget = float(constraints.total_budget)
    if budget <= 0:
        raise AllocationInfeasible(f"total budget is {budget}: nothing to allocate")
    lo, hi, lo_why, hi_why = _bounds(constraints, channels, geos)

    # 1. per-cell curves on a grid from 0 to each cell's upper bound
    u = np.linspace(0.0, 1.0, grid_points)
    if _curves is None:
        grid = u[:, None, None] * hi[None]
        curves = np.stack([evaluate(response, grid[k], weather_z, history) for k in range(grid_points)])
        evaluations = grid_points
    else:
        (grid, curves), evaluations = _curves, 0
    width = np.where(hi > 0, hi, 1.0)
    mean_curve = PchipInterpolator(u, curves.mean(axis=1).reshape(grid_points, -1), axis=0)
    mean_slope = mean_curve.derivative()
    flat_width = width.ravel()
    idx_cells = np.arange(n_c * n_g)

    def mean_val(x):
        return mean_curve(x / flat_width)[idx_cells, idx_cells]

    def mean_grad(x):
        return mean_slope(x / flat_width)[idx_cells, idx_cells] / flat_width

    # 2. minimum marginal ROAS as a spend cap per cell
    if constraints.min_roas is not None:
        fine = np.linspace(0, 1, 201)
        slopes = mean_slope(fine) / flat_width  # [201, cells]
        ok = slopes >= constraints.min_roas
        # concave curve: the cap is the last grid point still at or above the minimum
        last_ok = np.where(ok.any(axis=0), fine[np.where(ok, np.arange(201)[:, None], 0).max(axis=0)], 0.0)
        cap = (last_ok * flat_width).reshape(n_c, n_g)
        hi_why[cap < hi] = f"min_roas {constraints.min_roas:g}"
        hi = np.maximum(lo, np.minimum(hi, cap))

    exact_total = objective.margin is None and constraints.min_roas is None
    rows = _linear_constraints(constraints, channels, geos, n_c, n_g, lo, hi, exact_total)

    flat_curves = curves.reshape(grid_points, curves.shape[1], -1)  # [K, D, cells]

    def draw_totals(x):
        pos = np.clip(x / flat_width, 0, 1) * (grid_points - 1)
        i0 = np.clip(np.floor(pos).astype(int), 0, grid_points - 2)
        frac = pos - i0
        y0 = flat_curves[i0, :, idx_cells]  # [cells, D]
        y1 = flat_curves[i0 + 1, :, idx_cells]
        vals = y0 + frac[:, None] * (y1 - y0)
        slopes = (y1 - y0) / (flat_width[:, None] / (grid_points - 1))
        return vals.sum(axis=0), slopes  # [D], [cells, D]

    margin = objective.margin
    scale = max(abs(float(mean_val(np.clip(constraints.previous.ravel(), lo.ravel(), hi.ravel())).sum())), 1e-9)

    def neg_obj(y):
        x = y * budget
        if objective.kind == "mean":
            val, grad = mean_val(x).sum(), mean_grad(x)
        else:
            totals, slopes = draw_totals(x)
            tail = np.argsort(totals)[: max(1, int(np.ceil(objective.quantile * len(totals))))]
            val, grad = totals[tail].mean(), slopes[:, tail].mean(axis=1)
        if margin:
            val, grad = margin * val - x.sum(), margin * grad - 1.0
        return -val / scale, -grad * budget / scale

    cons = []
    for a, b_lo, b_hi, _label in rows:
        av = a.ravel() * budget
        if np.isclose(b_lo, b_hi):
            cons.append({"type": "eq", "fun": (lambda y, av=av, b=b_lo: (av @ y - b) / budget), "jac": (lambda y, av=av: av / budget)})
            continue
        if np.isfinite(b_lo):
            cons.append({"type": "ineq", "fun": (lambda y, av=av, b=b_lo: (av @ y - b) / budget), "jac": (lambda y, av=av: av / budget)})
        if np.isfinite(b_hi):
            cons.append({"type": "ineq", "fun": (lambda y, av=av, b=b_hi: (b - av @ y) / budget), "jac": (lambda y, av=av: -av / budget)})

    prev = constraints.previous.ravel()
    start = prev * (budget / prev.sum()) if prev.sum() > 0 else np.full(prev.size, budget / prev.size)
    start = np.clip(start, lo.ravel(), hi.ravel()) / budget
    if objective.kind != "mean":
        warm = optimize_allocation(response, weather_z, history, constraints, replace(objective, kind="mean"),
                                   grid_points, _curves=(grid, curves))
        start = warm.spend.ravel() / budget
    res = minimize(neg_obj, start, jac=True, method="SLSQP", bounds=list(zip(lo.ravel() / budget, hi.ravel() / budget)),
                   constraints=cons, options={"maxiter": 300, "ftol": 1e-10})
    x = np.clip(res.x * budget, lo.ravel(), hi.ravel())
    for a, b_lo, b_hi, label in rows:
        s = float(a.ravel() @ x)
        if s < b_lo - 1e-6 * max(1.0, abs(b_lo)) or s > b_hi + 1e-6 * max(1.0, abs(b_hi)):
            raise AllocationInfeasible(f"optimiser ended outside the {label} constraint ({s:,.2f} not in "
                                       f"[{b_lo:,.2f}, {b_hi:,.2f}]): {res.message}")
    spend = x.reshape(n_c, n_g)
    binding, binding_totals = _binding(spend, lo, hi, lo_why, hi_why, rows)
    return Allocation(
        spend=spend, lower=lo, upper=hi, marginal_roas=mean_grad(x).reshape(n_c, n_g), grid=grid, curves=curves,
        converged=bool(res.success), message=str(res.message), evaluations=evaluations,
        binding=binding, binding_totals=binding_totals,
    )


def _binding(spend, lo, hi, lo_why, hi_why, rows) -> tuple[np.ndarray, list[str]]:
    """Which bound each cell sits on, and which sum constraints are met with equality (what stops the plan
    from moving further)."""
    tol = 1e-4 * np.maximum(1.0, np.abs(spend))
    out = np.full(spend.shape, "", dtype=object)
    fixed = np.isclose(lo, hi, rtol=1e-9, atol=1e-9)
    out[spend >= hi - tol] = hi_why[spend >= hi - tol] + " (upper)"
    out[spend <= lo + tol] = lo_why[spend <= lo + tol] + " (lower)"
    out[fixed] = lo_why[fixed]
    out[fixed & (hi <= 0)] = "no previous spend (max_change_pct allows none)"
    totals = []
    flat = spend.ravel()
    for a, b_lo, b_hi, label in rows:
        s = float(a.ravel() @ flat)
        t = 1e-5 * max(1.0, abs(s))
        if np.isfinite(b_hi) and s >= b_hi - t:
            totals.append(label if np.isclose(b_lo, b_hi) else f"{label} (upper)")
        elif np.isfinite(b_lo) and b_lo > 0 and s <= b_lo + t:
            totals.append(f"{label} (lower)")
    return out, totals
