"""Value of a candidate over the replay window: direct method, SNIPS and doubly robust, with bootstrap intervals.

Per period t of the window (N periods), with y_t the observed KPI, m_t the outcome model's prediction of the
period as logged and q_t the model's prediction under the candidate's allocation, and w_t the importance weights
(weathervane.replay.behaviour):
  direct        V = sum_t q_t
  snips         V = N * sum_t w_t y_t / sum_t w_t
  doubly_robust V = sum_t q_t + N * sum_t w_t (y_t - m_t) / sum_t w_t
Intervals: percentile bootstrap over periods (the same resampled periods for every candidate, so differences
against keep-the-split are paired); where the outcome model has posterior draws, each replicate also takes one
draw, so the interval carries the model's uncertainty as well as the periods'.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ESTIMATORS = ("direct", "snips", "doubly_robust")


@dataclass
class CandidateInputs:
    q: np.ndarray  # [draw, period] model prediction under the candidate
    m: np.ndarray  # [draw, period] model prediction of the logged period
    w: np.ndarray  # [period] importance weights


def point(est: str, y: np.ndarray, c: CandidateInputs) -> float:
    n = len(y)
    q, m = c.q.mean(axis=0), c.m.mean(axis=0)
    sw = c.w.sum()
    if est == "direct":
        return float(q.sum())
    if sw <= 0:
        return float("nan")
    if est == "snips":
        return float(n * (c.w * y).sum() / sw)
    return float(q.sum() + n * (c.w * (y - m)).sum() / sw)


def bootstrap(y: np.ndarray, cands: dict[str, CandidateInputs], n_boot: int = 2000,
              seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Replicates [n_boot] of every estimator for every candidate, on shared resamples of the periods."""
    rng = np.random.default_rng(seed)
    n = len(y)
    idx = rng.integers(0, n, (n_boot, n))
    # one posterior draw per replicate, the same for every candidate: lifts are paired in the draws too
    n_draws = max(c.q.shape[0] for c in cands.values()) if cands else 1
    draw = rng.integers(0, n_draws, n_boot) if n_draws > 1 else np.zeros(n_boot, int)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, c in cands.items():
        d = np.minimum(draw, c.q.shape[0] - 1)
        md = np.minimum(draw, c.m.shape[0] - 1)
        q = c.q[d[:, None], idx]  # [B, n]
        m = c.m[md[:, None], idx]
        w, yy = c.w[idx], y[idx]
        sw = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            snips = n * (w * yy).sum(axis=1) / sw
            corr = n * (w * (yy - m)).sum(axis=1) / sw
        dm = q.sum(axis=1)
        out[name] = {"direct": dm, "snips": np.where(sw > 0, snips, np.nan),
                     "doubly_robust": np.where(sw > 0, dm + corr, np.nan)}
    return out


def interval(reps: np.ndarray, level: float = 0.9) -> tuple[float, float]:
    a = (1 - level) / 2
    ok = reps[np.isfinite(reps)]
    if len(ok) < 0.5 * len(reps):
        return float("nan"), float("nan")
    return float(np.quantile(ok, a)), float(np.quantile(ok, 1 - a))
