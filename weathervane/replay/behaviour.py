"""Behaviour density of the logged actions, the kernel that compares a candidate's action with the logged one,
importance weights, effective sample size and support.

Action coordinates: a period's split of its budget over the d channel x geo cells, as centred log shares
(log of each cell's share, floored at SHARE_FLOOR, minus their mean) in the d-1 orthonormal coordinates of the
centred subspace. The total is context (every candidate keeps it), so only the split is an action.

Behaviour density: the step from the previous period's coordinates u_{t-1} to the logged u_t,
  u_t - u_{t-1} = c + b * (u_{t-1} - mean u) + e,  e ~ N(0, S),
fitted per coordinate by least squares (a mean-reverting walk; context = the previous split), S the residual
covariance shrunk towards its diagonal with weight min(1, (d-1)/n).

Kernel: Gaussian on the difference between the logged step and the candidate's step with covariance h^2 S.
Bandwidth rule: start at h = n^(-1/(k+4)) (Scott's rule for k = d-1 dimensions in S-whitened coordinates) and
widen it by factors of H_GROWTH until the weights' effective sample size reaches the target the caller asks for
(the replay: max(min_ess, n/4)), never beyond H_MAX. Scott's h against a behaviour step of a few S units leaves
a handful of periods with all the weight; a wider kernel trades that variance for bias: SNIPS then values the
candidate's step blurred by the kernel (logged steps up to about h behaviour sds away count as the candidate's),
and the doubly robust correction becomes a smoothed average of the outcome model's residuals. Where even H_MAX does not reach the target the caller flags the row. Weight of period t:
  w_t = K_h(step_logged - step_candidate) / p_b(step_logged | u_{t-1}).
A candidate is in support in period t when its step lies within the behaviour density's 99% ellipsoid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHARE_FLOOR = 1e-3
SUPPORT_LEVEL = 0.99
MIN_MOVE = 0.02  # median |log-share step| below this: the logged spend never moved enough to learn from
H_GROWTH = 1.25
H_MAX = 2.0  # widest kernel, in behaviour-step sds: wider, it no longer tells the candidate's step from others


def centred_basis(d: int) -> np.ndarray:
    """[d, d-1] orthonormal basis of the vectors whose entries sum to zero (Helmert contrasts)."""
    basis = np.zeros((d, d - 1))
    for j in range(1, d):
        basis[:j, j - 1] = 1.0 / j
        basis[j, j - 1] = -1.0
        basis[:, j - 1] /= np.linalg.norm(basis[:, j - 1])
    return basis


def coordinates(actions: np.ndarray) -> np.ndarray:
    """[..., channel, geo] spend -> [..., d-1] centred log-share coordinates."""
    flat = np.asarray(actions, float).reshape(*np.shape(actions)[:-2], -1)
    total = flat.sum(axis=-1, keepdims=True)
    share = np.divide(flat, total, out=np.full_like(flat, 1.0 / flat.shape[-1]), where=total > 0)
    y = np.log(np.maximum(share, SHARE_FLOOR))
    return y @ centred_basis(flat.shape[-1])


@dataclass
class BehaviourModel:
    intercept: np.ndarray  # [k]
    slope: np.ndarray  # [k]
    centre: np.ndarray  # [k]
    cov: np.ndarray  # [k, k]
    n: int
    median_move: float  # median absolute log-share step of the logged periods

    @property
    def k(self) -> int:
        return len(self.intercept)

    @property
    def bandwidth(self) -> float:
        """Scott's rule: the narrowest kernel the replay uses."""
        return float(self.n ** (-1.0 / (self.k + 4)))

    @property
    def moved(self) -> bool:
        return self.median_move >= MIN_MOVE

    def mean_step(self, prev: np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * (prev - self.centre)

    def describe(self) -> str:
        return (f"Gaussian mean-reverting walk on {self.k} log-share coordinates from {self.n} logged steps "
                f"(median |step| {self.median_move:.3f}); kernel bandwidth from Scott's h = n^(-1/(k+4)) = "
                f"{self.bandwidth:.3f} (in behaviour-step sds), widened by {H_GROWTH:g}x per step up to {H_MAX:g} "
                "until the weights' effective sample size reaches its target")


def fit_behaviour(actions: np.ndarray) -> BehaviourModel:
    """actions [period, channel, geo] of every logged period, in order."""
    u = coordinates(actions)
    prev, step = u[:-1], np.diff(u, axis=0)
    n, k = step.shape
    if n < 3:
        raise ValueError(f"{n + 1} logged periods: too few to estimate how the spend moved")
    centre = prev.mean(axis=0)
    x = prev - centre
    intercept, slope = np.zeros(k), np.zeros(k)
    for j in range(k):
        design = np.column_stack([np.ones(n), x[:, j]])
        coef, *_ = np.linalg.lstsq(design, step[:, j], rcond=None)
        intercept[j], slope[j] = coef
    resid = step - (intercept + slope * x)
    cov = np.atleast_2d(np.cov(resid.T, ddof=min(2, n - 1)))
    lam = min(1.0, k / n)
    cov = (1 - lam) * cov + lam * np.diag(np.diag(cov))
    cov += np.eye(k) * 1e-8  # a log that never moved still gives an invertible density
    flat = np.log(np.maximum(np.asarray(actions, float).reshape(len(actions), -1)
                             / np.maximum(np.asarray(actions, float).reshape(len(actions), -1).sum(1, keepdims=True), 1e-12),
                             SHARE_FLOOR))
    median_move = float(np.median(np.abs(np.diff(flat - flat.mean(axis=1, keepdims=True), axis=0)))) if n else 0.0
    return BehaviourModel(intercept, slope, centre, cov, n, median_move)


@dataclass
class Weights:
    w: np.ndarray  # [period] unnormalised importance weights (scaled so the largest is 1)
    in_support: np.ndarray  # [period] bool
    distance: np.ndarray  # [period] Mahalanobis distance of the candidate's step from the logged step
    bandwidth: float = float("nan")  # the kernel's h, in behaviour-step sds

    @property
    def ess(self) -> float:
        s, s2 = self.w.sum(), (self.w ** 2).sum()
        return float(s * s / s2) if s2 > 0 else 0.0

    @property
    def support_share(self) -> float:
        return float(self.in_support.mean()) if len(self.in_support) else 0.0


def weights(model: BehaviourModel, prev: np.ndarray, logged: np.ndarray, candidate: np.ndarray,
            target_ess: float | None = None, h_max: float = H_MAX) -> Weights:
    """prev, logged, candidate: [period, channel, geo] spend of the previous period, the logged period and the
    candidate's allocation for it. The kernel starts at Scott's bandwidth and widens until the effective sample
    size reaches `target_ess` (None: Scott's bandwidth alone) or the bandwidth reaches `h_max`."""
    from scipy.stats import chi2

    u_prev, u_log, u_cand = coordinates(prev), coordinates(logged), coordinates(candidate)
    step_log, step_cand = u_log - u_prev, u_cand - u_prev
    mean = model.mean_step(u_prev)
    inv = np.linalg.inv(model.cov)
    d_kernel = np.einsum("ti,ij,tj->t", step_log - step_cand, inv, step_log - step_cand)
    d_behav = np.einsum("ti,ij,tj->t", step_log - mean, inv, step_log - mean)
    d_cand = np.einsum("ti,ij,tj->t", step_cand - mean, inv, step_cand - mean)
    in_support = d_cand <= chi2.ppf(SUPPORT_LEVEL, model.k)
    h = model.bandwidth
    while True:
        # log K_h(.) - log p_b(.): the normalising constants differ by h^-k, the same for every period
        logw = -0.5 * d_kernel / h ** 2 + 0.5 * d_behav
        w = np.exp(logw - logw.max()) if len(logw) else logw
        out = Weights(w=w, in_support=in_support, distance=np.sqrt(d_kernel), bandwidth=float(h))
        if target_ess is None or out.ess >= target_ess or h >= h_max:
            return out
        h = min(h * H_GROWTH, h_max)
