"""Audit one intervention: synthetic control (primary), difference-in-differences (cross-check), interrupted time
series (when no clean donors exist), each with placebos in space and time and a verdict."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from weathervane.audit.model import Design, Posterior, counterfactual_draws, fit, point_fit, standardized_effect
from weathervane.audit.panel import Intervention

SYNTH, DID, ITS = "synthetic_control", "difference_in_differences", "interrupted_time_series"
VERDICTS = ("improved", "no_detectable_effect", "worse", "not_evaluable")


@dataclass(frozen=True)
class AuditSettings:
    pre_period_days: int = 180
    min_pre_days: int = 84  # twelve weekly periods: fewer leave the AR(1) and the weights unidentified
    # Day-to-day revenue is mostly order noise, so fit is judged on 7-day sums: the counterfactual's mean absolute
    # percentage error over the pre-period's weeks must stay under this.
    max_pre_mape: float = 0.2
    placebo_alpha: float = 0.10
    placebo_step_days: int = 7
    max_placebos: int = 300
    draws: int = 500
    tune: int = 500
    chains: int = 2
    max_rhat: float = 1.05
    min_ess_bulk: float = 100.0
    # The model runs on 7-day means (the window's last period may be shorter). Daily revenue of a geo is mostly
    # order noise; what moves a four-week sum is slow, geo-specific drift (weather seasons, local demand), which an
    # AR(1) on days cannot see behind the noise (its phi estimates near zero) and on weeks can.
    block_days: int = 7
    sampler: str = "pymc"  # "nutpie" reuses one compiled model per shape (many audits in one process)
    cross_check: bool = True  # also run difference-in-differences beside the synthetic control


@dataclass
class MethodResult:
    method: str
    verdict: str
    reason: str | None = None
    treated: tuple[str, ...] = ()
    donors: dict[str, float] = field(default_factory=dict)  # donor -> posterior mean weight
    window_start: date | None = None
    window_end: date | None = None
    pre_start: date | None = None
    effect: np.ndarray | None = None  # (S,) money over the window
    relative: np.ndarray | None = None  # (S,)
    incremental_spend: float | None = None
    pre_r2: float | None = None
    pre_mape: float | None = None
    placebo_p: float | None = None
    placebo_z: np.ndarray | None = None
    treated_z: float | None = None
    posterior: Posterior | None = None
    dates: list[date] | None = None
    observed: np.ndarray | None = None  # (T,) money
    counterfactual: np.ndarray | None = None  # (S, T) money per day, per period
    lengths: np.ndarray | None = None  # (T,) days per period

    def q(self, a: np.ndarray | None, p: float) -> float | None:
        return None if a is None else float(np.quantile(a, p))

    @property
    def iroas(self) -> np.ndarray | None:
        if self.effect is None or not self.incremental_spend or self.incremental_spend <= 0:
            return None
        return self.effect / self.incremental_spend


def seed_for(*parts: str) -> int:
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:8], 16)


def _national(geos) -> set[str]:
    return {g for g in geos if "-" not in g}


def _not_evaluable(methods, reason, **kw) -> list[MethodResult]:
    return [MethodResult(m, "not_evaluable", reason, **kw) for m in methods]


def _its_covariates(days: list[date], n_pre: int, block_days: int) -> np.ndarray:
    t = np.arange(len(days), dtype=float)
    cols = [(t - t[:n_pre].mean()) / max(t[:n_pre].std(), 1.0)]
    if block_days == 1:
        dow = np.array([d.weekday() for d in days])
        cols += [(dow == k).astype(float) - (dow[:n_pre] == k).mean() for k in range(6)]
    if n_pre * block_days >= 365:
        doy = np.array([d.timetuple().tm_yday for d in days], dtype=float) + (block_days - 1) / 2
        for k in (1, 2):
            cols += [np.sin(2 * np.pi * k * doy / 365.25), np.cos(2 * np.pi * k * doy / 365.25)]
    return np.column_stack(cols)


def periods(a: int, s: int, e: int, block: int) -> list[tuple[int, int]]:
    """Row ranges [i, j) of whole `block`-day periods ending at the start `s` (back to `a`), then the window
    [s, e) cut into `block`-day periods from its start (the last may be shorter)."""
    pre = [(t - block, t) for t in range(s, a + block - 1, -block)][::-1]
    return pre + [(t, min(t + block, e)) for t in range(s, e, block)]


class _Panel:
    """Positions of days in the KPI panel."""

    def __init__(self, kpi: pd.DataFrame):
        self.kpi = kpi
        self.days = list(kpi.index)
        self.first, self.last = self.days[0], self.days[-1]

    def pos(self, d: date) -> int:
        return (d - self.first).days


def _time_placebo_rows(p: _Panel, start_pos: int, h: int, pre_days: int, min_pre: int, step: int):
    """(first row, pseudo start row) of pseudo windows of length h that end before the real start."""
    out = []
    s = start_pos - h
    while s - min_pre >= 0:
        out.append((max(0, s - pre_days), s))
        s -= step
    return out


def _placebo_designs(p: _Panel, treated_y: np.ndarray, donors: list[str], start_pos: int, end_pos: int,
                     settings: AuditSettings, weights: str, its: bool) -> list[Design]:
    h = end_pos - start_pos + 1
    fit_start = max(0, start_pos - settings.pre_period_days)
    built: list = []
    times = _time_placebo_rows(p, start_pos, h, settings.pre_period_days, settings.min_pre_days,
                               settings.placebo_step_days)
    units: list[tuple[np.ndarray, list[str]]] = [(treated_y, donors)]
    if not its and len(donors) >= 2:
        units += [(p.kpi[d].to_numpy(), [o for o in donors if o != d]) for d in donors]
    # space: each donor pseudo-treated over the real window
    for y_raw, dn in units[1:]:
        built.append(_design(p, y_raw, dn, fit_start, start_pos, end_pos + 1, weights, its, settings.block_days))
    # time (treated unit) first, then space x time
    for y_raw, dn in units:
        for a, s in times:
            built.append(_design(p, y_raw, dn, a, s, s + h, weights, its, settings.block_days))
    return [b[0] for b in built if b is not None][: settings.max_placebos]


def _design(p: _Panel, y_raw: np.ndarray, donors: list[str], a: int, s: int, e: int, weights: str,
            its: bool, block: int) -> tuple[Design, float, list[tuple[int, int]]] | None:
    """The design on period means, indexed to the pre-period mean, with that mean (money per day) and the rows."""
    rows = periods(a, s, e, block)
    n_pre = sum(1 for _, j in rows if j <= s)
    if n_pre < 3:
        return None
    y = np.array([y_raw[i:j].mean() for i, j in rows])
    scale = float(y[:n_pre].mean())
    if scale <= 0:
        return None
    lengths = np.array([j - i for i, j in rows], dtype=float)
    if its:
        Z = _its_covariates([p.days[i] for i, _ in rows], n_pre, block)
        return Design(y / scale, None, Z, n_pre, "none", lengths), scale, rows
    raw = p.kpi[donors].to_numpy()
    X = np.array([raw[i:j].mean(axis=0) for i, j in rows])
    if (X[:n_pre].mean(axis=0) <= 0).any():
        return None
    return Design(y / scale, X / X[:n_pre].mean(axis=0), None, n_pre, weights, lengths), scale, rows


def _incremental_spend(spend: pd.DataFrame, treated: tuple[str, ...], donors: list[str], a: date, s: date,
                       e: date) -> float | None:
    """Extra spend in the treated cells over the window: treated spend minus its pre-period daily mean scaled by
    how the donors' spend moved (difference in differences of spend)."""
    if spend is None or spend.empty:
        return None
    sp = spend.reindex(pd.date_range(a, e, freq="D").date).fillna(0.0)
    cols = [g for g in treated if g in sp.columns]
    if not cols:
        return None
    pre, win = sp.index < s, sp.index >= s
    t_pre, t_win = sp.loc[pre, cols].sum(axis=1).mean(), sp.loc[win, cols].sum(axis=1)
    ratio = 1.0
    dn = [g for g in donors if g in sp.columns]
    if dn:
        d_pre = sp.loc[pre, dn].sum(axis=1).mean()
        if d_pre > 0:
            ratio = sp.loc[win, dn].sum(axis=1).mean() / d_pre
    return float(t_win.sum() - len(t_win) * t_pre * ratio)


def audit_intervention(kpi: pd.DataFrame, spend: pd.DataFrame | None, iv: Intervention,
                       others: list[Intervention], settings: AuditSettings, seed: int = 0) -> list[MethodResult]:
    """Every method row for one intervention. `others` are the tenant's other interventions (they contaminate the
    donors they touched during the pre-period or the window)."""
    methods = [SYNTH, DID]
    treated = tuple(iv.geo_ids)
    base = dict(treated=treated, window_start=iv.start, window_end=iv.end)
    if kpi is None or kpi.empty:
        return _not_evaluable(methods, "missing data: no KPI rows (marts.fct_sales_daily is empty)", **base)
    p = _Panel(kpi)
    if iv.end is None:
        return _not_evaluable(methods, "window not over: the deployment is still live (no end date)", **base)
    if iv.end > p.last:
        return _not_evaluable(methods, f"window not over: it ends {iv.end}, the KPI runs to {p.last}", **base)
    if iv.end < iv.start:
        return _not_evaluable(methods, f"missing data: the window ends ({iv.end}) before it starts", **base)
    start_pos, end_pos = p.pos(iv.start), p.pos(iv.end)
    if start_pos < settings.min_pre_days:
        return _not_evaluable(methods, f"missing data: {max(start_pos, 0)} days of KPI before the start "
                                       f"({settings.min_pre_days} needed)", **base)
    geos = list(kpi.columns)
    national = _national(treated) or (set(geos) <= _national(geos))
    if not national:
        missing = [g for g in treated if g not in geos]
        if missing:
            return _not_evaluable(methods, f"missing data: no sales rows for treated geo {', '.join(missing)}", **base)
        treated_y = kpi[list(treated)].sum(axis=1).to_numpy()
    else:
        treated_y = kpi.sum(axis=1).to_numpy()
    fit_start = max(0, start_pos - settings.pre_period_days)
    pre_first = p.days[fit_start]
    base["pre_start"] = pre_first
    candidates = [g for g in geos if g not in treated and g not in _national(geos)] if not national else []
    contaminated = {g: o for g in candidates for o in others
                    if o.touches(g, pre_first, iv.end, _national(o.geo_ids))}
    clean = [g for g in candidates if g not in contaminated and kpi[g].iloc[fit_start:start_pos].mean() > 0]
    results: list[MethodResult] = []
    if clean:
        for method, weights in ((SYNTH, "simplex"), (DID, "equal"))[: 2 if settings.cross_check else 1]:
            results.append(_estimate(p, spend, treated_y, clean, fit_start, start_pos, end_pos, settings, weights,
                                     method, seed, base))
        return results
    if not candidates:
        reason = ("no donors: a national change leaves no untreated geo" if national
                  else "no donors: every geo with sales was treated")
    else:
        reason = "contaminated donors: " + "; ".join(
            f"{g} changed by {o.key}" for g, o in sorted(contaminated.items()))
    results += _not_evaluable(methods, reason, **base)
    its_start = max(0, start_pos - max(settings.pre_period_days, 400))
    blocked, its_start = _its_clean_start(p, iv, others, list(treated) if not national else geos, its_start,
                                          start_pos, settings)
    if blocked:
        results.append(MethodResult(ITS, "not_evaluable", blocked, **{**base, "pre_start": p.days[its_start]}))
    else:
        results.append(_estimate(p, spend, treated_y, [], its_start, start_pos, end_pos, settings, "none", ITS,
                                 seed, {**base, "pre_start": p.days[its_start]}))
    return results


def _its_clean_start(p: "_Panel", iv: Intervention, others: list[Intervention], series_geos: list[str],
                     its_start: int, start_pos: int, settings: AuditSettings) -> tuple[str | None, int]:
    """(reason it cannot be judged or None, first pre-period day) for an interrupted time series. With no donors
    the treated series is its own control: another change to it inside the window makes the effect unattributable,
    and one inside the pre-period teaches the counterfactual a level that was never organic, so the pre-period
    starts after the last such change."""
    def touching(first: date, last: date) -> list[Intervention]:
        return [o for o in others if any(o.touches(g, first, last, _national(o.geo_ids)) for g in series_geos)]

    during = sorted(o.key for o in touching(iv.start, iv.end))
    if during:
        return f"contaminated: {', '.join(during)} also changed the treated geos during the window", its_start
    before = [o for o in touching(p.days[its_start], iv.end) if o.end is not None and o.end < iv.start]
    if before:
        last = max(o.end for o in before)
        its_start = max(its_start, p.pos(last + timedelta(days=1)))
        if start_pos - its_start < settings.min_pre_days:
            key = max(before, key=lambda o: o.end).key
            return (f"missing data: {start_pos - its_start} clean days before the start ({settings.min_pre_days} "
                    f"needed; {key} changed the treated geos until {last})"), its_start
    return None, its_start


def _estimate(p: _Panel, spend, treated_y: np.ndarray, donors: list[str], a: int, s: int, e: int,
              settings: AuditSettings, weights: str, method: str, seed: int, base: dict) -> MethodResult:
    its = weights == "none"
    built = _design(p, treated_y, donors, a, s, e + 1, weights, its, settings.block_days)
    if built is None:
        return MethodResult(method, "not_evaluable", "missing data: no KPI in the pre-period", **base)
    design, scale, rows = built
    res = MethodResult(method, "not_evaluable", None, **base)
    res.dates = [p.days[i] for i, _ in rows]
    res.observed, res.lengths = design.y * scale, design.lengths
    res.incremental_spend = _incremental_spend(spend, res.treated, donors, p.days[a], p.days[s], p.days[e])
    # screen the pre-period fit with the point estimate before spending a posterior on it
    pf = point_fit(design)
    n = design.n_pre
    group = max(1, 7 // settings.block_days)
    res.pre_r2, res.pre_mape = weekly_fit(design.y[:n], pf.mean[:n], group)
    if res.pre_mape > settings.max_pre_mape:
        res.reason = poor_fit_reason(res, settings)
        return res
    post = fit(design, draws=settings.draws, tune=settings.tune, chains=settings.chains, seed=seed,
               sampler=settings.sampler)
    res.posterior = post
    cf = counterfactual_draws(design, post, seed=seed + 1)
    res.pre_r2, res.pre_mape = weekly_fit(design.y[:n], cf[:, :n].mean(axis=0), group)
    res.counterfactual = cf * scale
    win = slice(n, None)
    days = design.lengths[win]
    res.effect = ((res.observed[win][None, :] - res.counterfactual[:, win]) * days).sum(axis=1)
    res.relative = res.effect / (res.counterfactual[:, win] * days).sum(axis=1)
    if post.w is not None:
        res.donors = {d: float(w) for d, w in zip(donors, post.w.mean(axis=0))}
    elif weights == "equal":
        res.donors = {d: 1.0 / len(donors) for d in donors}
    placebos = _placebo_designs(p, treated_y, donors, s, e, settings, weights, its)
    res.treated_z = standardized_effect(design, pf)
    res.placebo_z = np.array([standardized_effect(d) for d in placebos])
    if len(res.placebo_z):
        res.placebo_p = float((1 + np.sum(np.abs(res.placebo_z) >= abs(res.treated_z))) / (1 + len(res.placebo_z)))
    res.verdict, res.reason = verdict(res, post, settings)
    return res


def weekly_fit(y: np.ndarray, fitted: np.ndarray, group: int = 1) -> tuple[float, float]:
    """(R², MAPE) of the fitted mean against the observed pre-period over sums of `group` periods (whole weeks),
    the latest first."""
    k = len(y) // group
    a = y[len(y) - group * k:].reshape(k, group).sum(axis=1)
    b = fitted[len(y) - group * k:].reshape(k, group).sum(axis=1)
    r2 = 1 - np.sum((a - b) ** 2) / max(np.sum((a - a.mean()) ** 2), 1e-12)
    return float(r2), float(np.mean(np.abs(a - b) / np.maximum(np.abs(a), 1e-12)))


def poor_fit_reason(res: MethodResult, settings: AuditSettings) -> str:
    return (f"poor pre-period fit: weekly MAPE {res.pre_mape:.1%} > {settings.max_pre_mape:.0%} "
            f"(R² {res.pre_r2:.2f})")


def verdict(res: MethodResult, post: Posterior, settings: AuditSettings) -> tuple[str, str | None]:
    if not (post.max_rhat <= settings.max_rhat and post.min_ess_bulk >= settings.min_ess_bulk):
        return "not_evaluable", (f"sampler diagnostics failed: max r-hat {post.max_rhat:.3f} (≤ {settings.max_rhat}),"
                                 f" min bulk ESS {post.min_ess_bulk:.0f} (≥ {settings.min_ess_bulk:.0f})")
    if res.pre_mape is not None and res.pre_mape > settings.max_pre_mape:
        return "not_evaluable", poor_fit_reason(res, settings)
    lo, hi = res.q(res.effect, 0.05), res.q(res.effect, 0.95)
    placebo_ok = res.placebo_p is not None and res.placebo_p <= settings.placebo_alpha
    if lo > 0 and placebo_ok:
        return "improved", None
    if hi < 0 and placebo_ok:
        return "worse", None
    why = []
    if lo <= 0 <= hi:
        why.append("the 90% interval includes zero")
    if not placebo_ok:
        why.append("placebo p-value " + ("unavailable (too few placebos)" if res.placebo_p is None
                                         else f"{res.placebo_p:.2f} > {settings.placebo_alpha:.2f}"))
    return "no_detectable_effect", "; ".join(why)


__all__ = ["AuditSettings", "MethodResult", "audit_intervention", "verdict", "seed_for", "SYNTH", "DID", "ITS",
           "VERDICTS"]
