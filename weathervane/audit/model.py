"""The counterfactual model shared by every audit method: a regression fitted on the pre-period with AR(1) errors.

    y_t   = alpha + X_t . w + Z_t . beta + r_t          (pre-period, y and X indexed to their pre-period mean)
    r_t   = phi * r_{t-1} + e_t,   e_t ~ Normal(0, sigma)

- synthetic control: X = donor geos, w ~ Dirichlet(1) (a simplex, as in CausalPy's WeightedSumFitter), plus an
  intercept; difference-in-differences: the same with w fixed at equal weights (treated minus the donors' mean is a
  constant plus noise); interrupted time series: no donors, Z = trend, weekday and yearly terms.
- Daily revenue is autocorrelated (weather spells, demand waves). Ignoring it makes the window's summed forecast
  error look ~sqrt((1+phi)/(1-phi)) times smaller than it is, so intervals would under-cover; the AR(1) term carries
  it: the counterfactual over the window continues the last pre-period residual and accumulates new innovations.

The posterior is sampled with PyMC's NUTS; the window's posterior predictive is drawn in NumPy from the posterior
draws (the AR recursion forward), which is exact for this model and needs no second compile.

`point_fit` is the same model's least-squares point estimate (simplex weights by NNLS with the sum-to-one
constraint as a heavily weighted row). Placebo tests use it: they need one statistic computed the same way for the
treated unit and every placebo, many times, not a posterior each.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEIGHTS = ("simplex", "equal", "none")
PHI_BOUND = 0.98


@dataclass
class Design:
    """One series to explain, on the index scale, split at `n_pre` (the window follows)."""

    y: np.ndarray  # (T,) treated series (observed, window included)
    X: np.ndarray | None  # (T, K) donor series, or None
    Z: np.ndarray | None  # (T, P) free covariates, or None
    n_pre: int
    weights: str = "simplex"
    lengths: np.ndarray | None = None  # days in each period (7-day blocks; the window's last may be shorter)

    def __post_init__(self):
        if self.lengths is None:
            self.lengths = np.ones(len(self.y))
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {self.weights!r}")
        if self.weights != "none" and (self.X is None or self.X.shape[1] == 0):
            raise ValueError("donor weights need at least one donor series")

    def donor_part(self, w: np.ndarray | None) -> np.ndarray:
        if self.weights == "none":
            return np.zeros((1, len(self.y)))
        if self.weights == "equal":
            return self.X.mean(axis=1)[None, :]
        return np.atleast_2d(w) @ self.X.T


@dataclass
class Posterior:
    """Posterior draws (S of them) and the diagnostics of the run."""

    alpha: np.ndarray  # (S,)
    w: np.ndarray | None  # (S, K)
    beta: np.ndarray | None  # (S, P)
    sigma: np.ndarray  # (S,)
    phi: np.ndarray  # (S,)
    max_rhat: float
    min_ess_bulk: float
    divergences: int
    seconds: float

    @property
    def n_draws(self) -> int:
        return len(self.alpha)


def _mean_draws(design: Design, post: Posterior) -> np.ndarray:
    """(S, T) regression mean alpha + X w + Z beta for every draw."""
    mu = post.alpha[:, None] + design.donor_part(post.w)
    if design.Z is not None:
        mu = mu + post.beta @ design.Z.T
    return mu


def ar1_logp(resid, phi, sigma):
    """Exact AR(1) log density of a residual series (stationary start), in PyTensor."""
    import pymc as pm
    import pytensor.tensor as pt

    first = pm.logp(pm.Normal.dist(0.0, sigma / pt.sqrt(1.0 - phi**2)), resid[0])
    rest = pm.logp(pm.Normal.dist(0.0, sigma), resid[1:] - phi * resid[:-1])
    return first + rest.sum()


def build_model(design: Design):
    """The pre-period model; the data are `pm.Data` so one compiled model serves every design of its shape."""
    import pymc as pm

    n = design.n_pre
    with pm.Model() as model:
        y = pm.Data("y", design.y[:n])
        alpha = pm.Normal("alpha", 0.0, 0.5)
        mu = alpha
        if design.weights == "simplex":
            X = pm.Data("X", design.X[:n])
            w = pm.Dirichlet("w", a=np.ones(design.X.shape[1]))
            mu = mu + pm.math.dot(X, w)
        elif design.weights == "equal":
            mu = mu + pm.Data("X_mean", design.X[:n].mean(axis=1))
        if design.Z is not None:
            Z = pm.Data("Z", design.Z[:n])
            beta = pm.Normal("beta", 0.0, 0.5, shape=design.Z.shape[1])
            mu = mu + pm.math.dot(Z, beta)
        sigma = pm.HalfNormal("sigma", 0.2)
        phi = pm.Uniform("phi", -PHI_BOUND, PHI_BOUND)
        pm.Potential("ar1_likelihood", ar1_logp(y - mu, phi, sigma))
    return model


def _data(design: Design) -> dict[str, np.ndarray]:
    n = design.n_pre
    out = {"y": design.y[:n]}
    if design.weights == "simplex":
        out["X"] = design.X[:n]
    elif design.weights == "equal":
        out["X_mean"] = design.X[:n].mean(axis=1)
    if design.Z is not None:
        out["Z"] = design.Z[:n]
    return out


_COMPILED: dict[tuple, object] = {}


def _sample_nutpie(design: Design, draws: int, tune: int, chains: int, seed: int, target_accept: float):
    """nutpie on a model compiled once per shape in this process (the study audits hundreds of designs)."""
    import nutpie

    key = (design.weights, design.n_pre, None if design.X is None else design.X.shape[1],
           None if design.Z is None else design.Z.shape[1])
    if key not in _COMPILED:
        _COMPILED[key] = nutpie.compile_pymc_model(build_model(design), freeze_model=False)
    compiled = _COMPILED[key].with_data(**_data(design))
    tree = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, cores=1, seed=seed, progress_bar=False,
                         target_accept=target_accept)
    return tree


_PYMC_STEPS: dict[tuple, tuple] = {}


def _sample_pymc(design: Design, draws: int, tune: int, chains: int, seed: int, target_accept: float):
    """PyMC's NUTS; the model and its compiled step are kept per donor count, and new data is swapped in (shared
    variables), so the audits of one tenant compile once per shape."""
    import pymc as pm

    key = (design.weights, None if design.X is None else design.X.shape[1],
           None if design.Z is None else design.Z.shape[1], target_accept)
    if key not in _PYMC_STEPS:
        model = build_model(design)
        with model:
            _PYMC_STEPS[key] = (model, pm.NUTS(target_accept=target_accept))
    model, step = _PYMC_STEPS[key]
    with model:
        pm.set_data(_data(design))
        return pm.sample(draws=draws, tune=tune, chains=chains, cores=1, step=step, random_seed=seed,
                         progressbar=False, compute_convergence_checks=False)


def fit(design: Design, draws: int = 500, tune: int = 500, chains: int = 2, seed: int = 0,
        target_accept: float = 0.9, sampler: str = "pymc") -> Posterior:
    """NUTS on the pre-period (chains one after the other: the machine is shared). Both samplers reuse one
    compiled model per shape in this process: "pymc" (C, quick to compile) or "nutpie" (slow to compile, then fast:
    the calibration study)."""
    import time
    import warnings

    import arviz as az

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (FutureWarning, UserWarning, RuntimeWarning))
        if sampler == "nutpie":
            idata = _sample_nutpie(design, draws, tune, chains, seed, target_accept)
        elif sampler == "pymc":
            idata = _sample_pymc(design, draws, tune, chains, seed, target_accept)
        else:
            raise ValueError(f"sampler must be pymc or nutpie, got {sampler!r}")
    post = idata.posterior
    names = [v for v in ("alpha", "w", "beta", "sigma", "phi") if v in post]
    summary = az.summary(idata, var_names=names, kind="diagnostics")
    flat = {v: post[v].values.reshape(chains * draws, *post[v].shape[2:]) for v in names}
    return Posterior(
        alpha=flat["alpha"], w=flat.get("w"), beta=flat.get("beta"), sigma=flat["sigma"], phi=flat["phi"],
        max_rhat=float(np.nanmax(summary["r_hat"])), min_ess_bulk=float(np.nanmin(summary["ess_bulk"])),
        divergences=int(idata.sample_stats["diverging"].values.sum()), seconds=time.perf_counter() - t0,
    )


def counterfactual_draws(design: Design, post: Posterior, seed: int = 0) -> np.ndarray:
    """(S, T) counterfactual: the fitted mean over the pre-period, the posterior predictive over the window
    (AR(1) residual carried forward from the last pre-period day plus new innovations)."""
    rng = np.random.default_rng(seed)
    n = design.n_pre
    mu = _mean_draws(design, post)
    cf = mu.copy()
    r = design.y[n - 1] - mu[:, n - 1]
    for t in range(n, len(design.y)):
        r = post.phi * r + post.sigma * rng.standard_normal(post.n_draws)
        cf[:, t] = mu[:, t] + r
    return cf


# --- point estimate and the standardized statistic placebos compare ---------------------------------------


@dataclass
class PointFit:
    alpha: float
    w: np.ndarray | None
    beta: np.ndarray | None
    phi: float
    sigma: float
    mean: np.ndarray  # (T,) regression mean over pre and window


def _simplex_ls(y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """argmin ||y - X w|| with w >= 0 and sum(w) = 1 (the constraint as a heavily weighted extra row)."""
    from scipy.optimize import nnls

    k = X.shape[1]
    big = 1e3 * max(float(np.abs(X).max()), 1.0)
    w, _ = nnls(np.vstack([X, np.full((1, k), big)]), np.append(y, big))
    return w / w.sum() if w.sum() > 0 else np.full(k, 1.0 / k)


def point_fit(design: Design) -> PointFit:
    n = design.n_pre
    y = design.y[:n]
    w = beta = None
    donor = np.zeros(len(design.y))
    if design.weights == "simplex":
        Xp = design.X[:n]
        w = _simplex_ls(y - y.mean(), Xp - Xp.mean(axis=0))
        donor = design.X @ w
    elif design.weights == "equal":
        donor = design.X.mean(axis=1)
    target = y - donor[:n]
    if design.Z is not None:
        A = np.column_stack([np.ones(n), design.Z[:n]])
        coef, *_ = np.linalg.lstsq(A, target, rcond=None)
        alpha, beta = float(coef[0]), coef[1:]
        mean = alpha + donor + design.Z @ beta
    else:
        alpha = float(target.mean())
        mean = alpha + donor
    r = y - mean[:n]
    phi = float(np.clip(np.dot(r[1:], r[:-1]) / max(np.dot(r[:-1], r[:-1]), 1e-12), -PHI_BOUND, PHI_BOUND))
    sigma = float(np.std(r[1:] - phi * r[:-1], ddof=1 + (0 if w is None else len(w) - 1)))
    return PointFit(alpha, w, beta, phi, max(sigma, 1e-12), mean)


def standardized_effect(design: Design, fit_: PointFit | None = None) -> float:
    """Window's summed residual (periods weighted by their days), minus what the last pre-period residual
    predicts, over its forecast sd under the fitted AR(1): a z-score comparable between the treated unit and every
    placebo."""
    f = fit_ or point_fit(design)
    n, h = design.n_pre, len(design.y) - design.n_pre
    resid = design.y - f.mean
    length = design.lengths[n:]
    powers = f.phi ** np.arange(1, h + 1)
    carried = resid[n - 1] * np.sum(length * powers)
    # the innovation of window period k enters every later period j with weight length_j * phi^(j-k)
    gain = np.array([np.sum(length[k:] * f.phi ** np.arange(h - k)) for k in range(h)])
    sd = f.sigma * np.sqrt(np.sum(gain**2))
    return float((np.sum(length * resid[n:]) - carried) / sd)
