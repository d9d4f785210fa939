"""Decision safety: a plan is proposed only when the evidence says it beats keeping the current split.

Three guards, in the order a plan meets them:

1. Cells whose return the model does not identify (`mmm.channel_summary.needs_experiment`, per channel and per
   channel × geo) are held at their keep-the-split spend: the optimiser moves only the rest.
2. The optimiser's move from keep-the-split is scaled back by the evidence: of the steps
   keep + t (candidate - keep), t in MOVE_STEPS, the plan takes the one whose lift over keep-the-split has the
   highest (1 - min_prob_better)-quantile across posterior draws: the largest gain the plan is min_prob_better
   sure of (concave curves: a smaller step risks less where the draws disagree about direction). Quantiles
   within their Monte Carlo error of the highest are a tie, and a tie goes to the larger expected lift among the
   moves that clear the bar (the argmax of a noisy quantile is otherwise an arbitrary pick).
   When the forecast is not average weather, the candidate is split in two: the optimum under average weather
   and the forecast's pull (the optimum under the forecast minus it). The pull is sized by its own evidence
   (w in WEATHER_SHARES of it, the same quantile rule over t and w together), so uncertainty about how strongly
   the weather moves a channel scales back only the weather-driven part of the move, not the budget moves the
   posterior is sure of.
3. The plan is proposed only when P(plan beats keep-the-split) >= planning.min_prob_better, the model is a sampled
   posterior that passed its diagnostics gate, and its holdout error is within planning.max_holdout_mape;
   otherwise the proposal is keep-the-split and the reason is recorded with it. The move of guard 2 is chosen on
   the even draws and P(better) is estimated on the odd ones, and must clear the bar by more than its Monte Carlo
   error: the best of twenty moves judged on the draws that chose it looks surer than it is (robustness world
   paced_search seed 0: P 0.85 on the choosing draws, 0.81 held out, and the move lost to keep-the-split).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from weathervane.governance.tables import table_exists

MOVE_STEPS = (1.0, 0.75, 0.5, 0.25)
# What one fitted model cannot see about itself (guard 4): each cell's return is off by a factor the posterior
# does not know, exp(channel part + geo part), log-sd below. The channel part stands for the saturation family's
# extrapolation, the adstock form and confounding with demand (the robustness matrix measured log errors of
# 0.2-0.35 on channels whose intervals were 0.13 wide in log); the geo part for geo gaps that spend following
# demand makes up. Chosen by bench/bench_calibration.py (docs/plan_regret.md).
MISSPEC_CHANNEL_LOG_SD = 0.15
MISSPEC_GEO_LOG_SD = 0.1
# ... and the curve's slope around today's spend, which the data see least when spend follows demand: a cell moved
# to r times its spend returns r^delta times what the model says (delta per channel, this sd), nothing at r = 1.
# Off: on the calibration bench's 60 runs 0.1-0.25 traded losses for timidity, and at 0.1 the controlled tests'
# plans on known-right models kept the split (docs/plan_regret.md).
MISSPEC_SHAPE_SD = 0.0
MISSPEC_SEED = 20270
# a move between the geos of a channel needs P(the geo gaining spend has the higher marginal return) at least
# this (the plan's own default bar) for every pair of geos it moves between, judged on draws that carry the geo
# part of the model error
GEO_CONTRAST_BAR = 0.8
GEO_MOVE_TOL = 0.01  # share of the channel's spend below which a geo's change is not a move
WEATHER_SHARES = (1.0, 0.75, 0.5, 0.25, 0.0)
MIN_POSTERIOR_DRAWS = 20  # fewer draws (a MAP point is one) cannot say how likely the plan is to do better
# mmm.models.sampler is the NUTS implementation (nutpie, pymc) for sampled fits, the method for previews
PREVIEWS = ("map", "advi")


@dataclass
class ModelEvidence:
    """What the warehouse records about the model behind a plan."""

    model_id: str
    registered: bool  # the model has a row in mmm.models
    status: str | None = None
    sampler: str | None = None
    holdout_mape: float | None = None
    max_rhat: float | None = None
    min_ess_bulk: float | None = None
    needs_experiment: dict[tuple[str, str | None], bool] = field(default_factory=dict)  # (channel, geo|None)
    flag_source: str = "none"

    def held(self, channels: list[str], geos: list[str]) -> np.ndarray:
        """[channel, geo] True where the channel, or the channel in that geo, needs an experiment."""
        out = np.zeros((len(channels), len(geos)), dtype=bool)
        for ci, ch in enumerate(channels):
            for gi, g in enumerate(geos):
                out[ci, gi] = bool(self.needs_experiment.get((ch, None)) or self.needs_experiment.get((ch, g)))
        return out

    def flagged_channels(self) -> list[str]:
        return sorted({ch for (ch, _g), v in self.needs_experiment.items() if v})

    @classmethod
    def assumed(cls, model_id: str, flagged: dict[tuple[str, str | None], bool] | None = None,
                sampler: str = "nutpie", holdout_mape: float | None = 0.1) -> "ModelEvidence":
        """Evidence stated by the caller, for a response that is not a fitted model (the simulator's truth in
        tests and benchmarks)."""
        return cls(model_id=model_id, registered=True, status="ok", sampler=sampler, holdout_mape=holdout_mape,
                   max_rhat=1.0, min_ess_bulk=1000.0, needs_experiment=dict(flagged or {}),
                   flag_source="stated by the caller")


def read_evidence(con, tenant_id: str, model_id: str) -> ModelEvidence:
    """The model's row in mmm.models and its identifiability flags in mmm.channel_summary, with the channels the
    tenant's model spec holds (the sniff found their spend never moved enough to be measured)."""
    ev = _model_evidence(con, tenant_id, model_id)
    from weathervane.spec import read_spec

    spec = read_spec(con, tenant_id)
    held = [ch for ch in (spec.held_channels if spec is not None else ()) if not ev.needs_experiment.get((ch, None))]
    for ch in held:
        ev.needs_experiment[(ch, None)] = True
    if held:
        ev.flag_source += f"; {', '.join(held)} held by the model spec (ops.model_spec.held_channels)"
    return ev


def _model_evidence(con, tenant_id: str, model_id: str) -> ModelEvidence:
    if not table_exists(con, "mmm", "models"):
        return ModelEvidence(model_id=model_id, registered=False)
    row = con.execute(
        "select status, sampler, holdout_mape, max_rhat, min_ess_bulk from mmm.models "
        "where tenant_id = ? and model_id = ?", [tenant_id, model_id]).fetchone()
    if row is None:
        return ModelEvidence(model_id=model_id, registered=False)
    ev = ModelEvidence(model_id=model_id, registered=True, status=row[0], sampler=row[1], holdout_mape=row[2],
                       max_rhat=row[3], min_ess_bulk=row[4])
    if not table_exists(con, "mmm", "channel_summary"):
        return ev
    cols = {r[0] for r in con.execute("describe mmm.channel_summary").fetchall()}
    if "needs_experiment" in cols:
        rows = con.execute("select channel, geo_id, needs_experiment from mmm.channel_summary "
                           "where tenant_id = ? and model_id = ?", [tenant_id, model_id]).fetchall()
        flags = {(ch, g): bool(v) for ch, g, v in rows if v is not None}
        if flags:
            ev.needs_experiment, ev.flag_source = flags, "mmm.channel_summary.needs_experiment"
            return ev
        if rows:  # a model stored before the flags were computed
            ev.needs_experiment, ev.flag_source = _interval_flags(con, tenant_id, model_id), "ROAS interval width"
        return ev
    ev.needs_experiment, ev.flag_source = _interval_flags(con, tenant_id, model_id), "ROAS interval width"
    return ev


def _interval_flags(con, tenant_id: str, model_id: str) -> dict[tuple[str, str | None], bool]:
    """For models stored before the identifiability columns: a channel whose 90% ROAS interval is so wide that
    the posterior sd of log ROAS exceeds sqrt(1/2) of the prior's (less than half the prior variance learnt)."""
    from weathervane.mmm.model import PRIOR_LOG_ROAS_SD

    rows = con.execute("select channel, roas_p05, roas_p95 from mmm.channel_summary "
                       "where tenant_id = ? and model_id = ? and geo_id is null", [tenant_id, model_id]).fetchall()
    out = {}
    for ch, p05, p95 in rows:
        if p05 is None or p95 is None or p05 <= 0 or p95 <= p05:
            continue  # a point estimate: no spread to judge (such models never pass the sampler gate)
        post_sd = (np.log(p95) - np.log(p05)) / (2 * 1.6449)
        out[(ch, None)] = bool(post_sd > PRIOR_LOG_ROAS_SD * np.sqrt(0.5))
    return out


def quantile_error(draws: np.ndarray, q: float) -> float:
    """Monte Carlo standard error of the q-quantile of `draws`: half the spread of the order statistics one
    binomial sd either side of it."""
    x = np.sort(np.asarray(draws, dtype=float))
    n = len(x)
    k, h = n * q, np.sqrt(n * q * (1 - q))
    lo, hi = x[max(int(np.floor(k - h)), 0)], x[min(int(np.ceil(k + h)), n - 1)]
    return float(hi - lo) / 2


def choose_step(lift_by_step: dict, min_prob_better: float) -> tuple:
    """The move to take: of the moves whose (1 - min_prob_better)-quantile of lift is within its Monte Carlo error
    of the highest (the draws cannot tell them apart on the downside) and whose P(better) clears the bar, the one
    with the largest expected lift; the highest quantile when none clears it. Ties go to the larger step (steps
    may be tuples (t, w), compared in order)."""
    q = 1.0 - min_prob_better
    low = {t: float(np.quantile(d, q)) for t, d in lift_by_step.items()}
    best = max(lift_by_step, key=lambda t: (round(low[t], 9), t))
    floor = low[best] - quantile_error(lift_by_step[best], q)
    near = [t for t, d in lift_by_step.items() if low[t] >= floor and float((d > 0).mean()) >= min_prob_better]
    if near:
        best = max(near, key=lambda t: (round(float(np.mean(lift_by_step[t])), 9), t))
    return best, lift_by_step[best]


def choose_and_judge(lift_by_move: dict, min_prob_better: float) -> tuple:
    """The move (`choose_step`) chosen on half the posterior draws, and its lift on the other half to judge it by.

    The move is the best of many on the draws that chose it, so its P(better) on those same draws is biased up
    (the draws that happen to favour it picked it); judged on draws that played no part in the choice, the
    estimate is honest. Even and odd draws split the chains alike."""
    pick, judge = slice(0, None, 2), slice(1, None, 2)
    best, _ = choose_step({k: np.asarray(v)[pick] for k, v in lift_by_move.items()}, min_prob_better)
    return best, np.asarray(lift_by_move[best])[judge]


def prob_error(prob: float, n: int) -> float:
    """Monte Carlo standard error of a probability estimated as the share of n draws."""
    return float(np.sqrt(prob * (1 - prob) / n)) if n else float("inf")


def gate(evidence: ModelEvidence, lift: np.ndarray, moved: bool, min_prob_better: float,
         max_holdout_mape: float | None) -> tuple[float, list[str]]:
    """P(better) and the reasons (if any) the proposal must be keep-the-split."""
    lift = np.asarray(lift, dtype=float)
    prob = float((lift > 0).mean()) if lift.size else 0.0
    reasons = []
    if not evidence.registered:
        reasons.append(f"model {evidence.model_id} has no row in mmm.models: no diagnostics or holdout on record")
    else:
        if evidence.status != "ok":
            reasons.append(f"model {evidence.model_id} failed its diagnostics gate (status {evidence.status})")
        if evidence.sampler in PREVIEWS or evidence.sampler is None or evidence.max_rhat is None:
            reasons.append(f"model {evidence.model_id} is a {evidence.sampler} preview without sampler diagnostics; "
                           "plans need a NUTS fit that passed its gate")
        if max_holdout_mape is not None:
            if evidence.holdout_mape is None:
                reasons.append("the model was not scored on a holdout (history too short or holdout_weeks 0)")
            elif evidence.holdout_mape > max_holdout_mape:
                reasons.append(f"holdout MAPE {evidence.holdout_mape:.1%} above planning.max_holdout_mape "
                               f"{max_holdout_mape:.0%}")
    if lift.size < MIN_POSTERIOR_DRAWS:
        reasons.append(f"{lift.size} posterior draw(s): too few to judge P(plan beats keep-the-split)")
    elif not moved:
        reasons.append("no move from keep-the-split is expected to do better under the constraints")
    elif prob - (error := prob_error(prob, lift.size)) < min_prob_better:
        # the bar is met only when the estimate clears it by more than its own Monte Carlo error
        reasons.append(f"P(plan beats keep-the-split) {prob:.0%} less its Monte Carlo error "
                       f"{error:.0%} ({lift.size} held-out draws) below "
                       f"planning.min_prob_better {min_prob_better:.0%}")
    return prob, reasons


def misspecification(draws: int, n_channels: int, n_geos: int, channel_sd: float | None = None,
                     geo_sd: float | None = None, seed: int = MISSPEC_SEED) -> np.ndarray:
    """[draw, channel, geo] multiplicative model-error factors (mean 1) to multiply a posterior's cell
    contributions by before judging a move: a draw's lift then carries what the posterior cannot see. A fixed
    seed: the same inputs give the same plan."""
    channel_sd = MISSPEC_CHANNEL_LOG_SD if channel_sd is None else channel_sd
    geo_sd = MISSPEC_GEO_LOG_SD if geo_sd is None else geo_sd
    rng = np.random.default_rng(seed)
    log = (channel_sd * rng.standard_normal((draws, n_channels, 1))
           + geo_sd * rng.standard_normal((draws, n_channels, n_geos)))
    return np.exp(log - 0.5 * (channel_sd ** 2 + geo_sd ** 2))  # mean 1: expected values stay the posterior's


def shape_error(draws: int, n_channels: int, sd: float | None = None, seed: int = MISSPEC_SEED + 1):
    """(delta [draw, channel, 1], sd): each channel's curvature error for `shape_factor`; fixed seed as above."""
    sd = MISSPEC_SHAPE_SD if sd is None else sd
    return np.random.default_rng(seed).normal(0.0, sd, (draws, n_channels, 1)), sd


def shape_factor(error, spend: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """[draw, channel, geo] factors exp(delta log r - sd^2 (log r)^2 / 2), r = spend / baseline per cell: mean 1,
    so expected values stay the posterior's, and exactly 1 where a cell keeps its spend."""
    delta, sd = error
    if sd == 0:  # off: no work on the plan's hot path
        return np.ones(1)
    r = np.divide(spend, baseline, out=np.ones_like(spend, dtype=float), where=baseline > 0)
    log_r = np.log(np.maximum(r, 1e-9))[None]
    return np.exp(delta * log_r - 0.5 * sd ** 2 * log_r ** 2)


def support_range(daily: np.ndarray, horizon_days: int) -> tuple[np.ndarray, np.ndarray] | None:
    """[channel, geo] least and most spend the tenant ran over any `horizon_days` consecutive days of `daily`
    [day, channel, geo] (comparable periods: windows as long as the plan's horizon); None when the history is
    shorter than one window."""
    daily = np.asarray(daily, dtype=float)
    active = np.flatnonzero(daily.reshape(daily.shape[0], -1).sum(axis=1) > 0)
    if not len(active):
        return None
    daily = daily[active[0]:]  # days before the tenant's first spend are no history, not zero spend
    if daily.shape[0] < horizon_days or horizon_days <= 0:
        return None
    c = np.concatenate([np.zeros((1, *daily.shape[1:])), np.cumsum(daily, axis=0)])
    windows = c[horizon_days:] - c[:-horizon_days]  # [window, channel, geo]
    return windows.min(axis=0), windows.max(axis=0)


def geo_moves(keep: np.ndarray, candidate: np.ndarray, tol: float = GEO_MOVE_TOL) -> dict[int, np.ndarray]:
    """Per channel that a candidate moves between geos (beyond scaling the channel as a whole by more than `tol`
    of its spend), the move itself: [geo] the change with the channel's total held, summing to zero."""
    out = {}
    for ci in range(keep.shape[0]):
        k, c = keep[ci], candidate[ci]
        if k.sum() <= 0 or c.sum() <= 0 or len(k) < 2:
            continue
        delta = c - k * (c.sum() / k.sum())
        if np.abs(delta).max() > tol * c.sum():
            out[ci] = delta
    return out


def geo_contrast(slopes: np.ndarray, keep: np.ndarray, candidate: np.ndarray, bar: float | None = None
                 ) -> tuple[np.ndarray, dict[int, float]]:
    """Channels whose geo split must be kept: the candidate moves spend between the channel's geos and the
    posterior does not say, with probability `bar`, that the move pays.

    The evidence is the geo difference itself: per draw, the move's first-order return sum_g delta_g m_g, where
    delta (summing to zero) is the spend moved between geos and m [draw, channel, geo] each cell's marginal return
    at keep-the-split with the model-error factors applied. It is a contrast of the geos' returns: a level the
    geos share (a channel's ROAS known only roughly) cancels out of it, and only what the posterior says about
    one geo against another counts. Returns the channels to lock and P(the move pays) per moving channel."""
    bar = GEO_CONTRAST_BAR if bar is None else bar
    lock = np.zeros(keep.shape[0], dtype=bool)
    probs = {}
    for ci, delta in geo_moves(keep, candidate).items():
        pays = (slopes[:, ci, :] * delta[None, :]).sum(axis=1)
        probs[ci] = float((pays > 0).mean())
        lock[ci] = probs[ci] < bar
    return lock, probs


def weather_intervals(ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """5% and 95% quantiles over draws of [draw, channel, var] multipliers per sd."""
    return np.quantile(ratio, 0.05, axis=0), np.quantile(ratio, 0.95, axis=0)
