"""Outcome models at rolling origins: for each period, an MMM fitted only on the periods before it.

An origin is a model period index; its model is fitted on periods [0, origin) and serves every decision period
from the origin up to the next origin. For each served period it gives (per posterior draw):
- the model's predicted KPI of the period as logged (its full mean: baseline, controls, media), from
  PyMC-Marketing's posterior predictive of `mu` over the served block with the logged spend and realized weather
  and controls (the model's own carry-over from the last training periods included);
- the media contribution of any allocation, from the same posterior (weathervane.mmm.response), so the
  prediction under a candidate is the logged prediction plus the contribution difference.

A MAP fit is one point: the direct method's intervals would carry no parameter uncertainty. With `laplace_draws`
> 0 the MAP is widened into a Laplace approximation: a Gaussian on the unconstrained parameters centred on the MAP
with the inverse of the log posterior's curvature there (finite differences of its gradient), drawn from and
mapped back through the parameters' transforms. Hierarchical scales, and parameters the curvature does not pin
down (Laplace sd above LAPLACE_MAX_SD on the unconstrained scale: an adstock at its bound), are held at the MAP
and the others drawn conditionally on them; their number is kept in the model's metadata.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np



LAPLACE_MAX_SD = 3.0


@dataclass
class OriginModel:
    model_id: str
    origin: int  # model period index: trained on periods [0, origin)
    train_start: date
    train_end: date  # last day the model saw
    method: str
    fit_seconds: float
    response: object  # weathervane.allocate.mmm_response.MMMResponse
    pred_block: np.ndarray | None = None  # [draw, model period] logged KPI prediction from the origin onwards
    path: Path | None = None
    reused: bool = False
    n_draws: int = 1
    laplace_held: int = 0  # parameters held at the MAP by the Laplace approximation
    actor: object = None  # the response the allocator candidates act with: the same posterior, thinned


ACTOR_DRAWS = 50  # the allocator runs once per candidate and period: a thinned posterior keeps that affordable


def _unconstrained(name: str, value: np.ndarray) -> np.ndarray:
    if name.endswith("_log__"):
        return np.log(value)
    if name.endswith("_logodds__"):
        return np.log(value) - np.log1p(-value)
    return value


def _constrained(name: str, value: np.ndarray) -> np.ndarray:
    if name.endswith("_log__"):
        return np.exp(value)
    if name.endswith("_logodds__"):
        return 1.0 / (1.0 + np.exp(-value))
    return value


def laplace_posterior(mmm, draws: int, seed: int, max_sd: float = LAPLACE_MAX_SD) -> int:
    """Replace the MAP point in `mmm.idata` by `draws` draws of its Laplace approximation (see the module
    docstring); returns how many unconstrained coordinates were held at the MAP."""
    import pymc as pm
    import pytensor
    import xarray as xr
    from pymc.blocking import DictToArrayBijection

    model = mmm.model
    post = mmm.idata["posterior"]
    ip = model.initial_point()
    point = {}
    for rv in model.free_RVs:
        vv = model.rvs_to_values[rv]
        if vv.name != rv.name and not vv.name.endswith(("_log__", "_logodds__")):
            raise ValueError(f"no Laplace mapping for the transform of {vv.name}")
        val = _unconstrained(vv.name, np.asarray(post[rv.name].values[0, 0], float))
        point[vv.name] = val.reshape(ip[vv.name].shape).astype(ip[vv.name].dtype)
    x0 = DictToArrayBijection.map(point)
    with pytensor.config.change_flags(mode="FAST_RUN"):
        # the objective find_MAP maximised (no Jacobian term), so the Gaussian is centred on its optimum
        dlogp = model.compile_dlogp(jacobian=False)

    def grad(x):
        return np.asarray(dlogp(DictToArrayBijection.rmap(x0._replace(data=x))), float)

    n = x0.data.size
    prec = np.zeros((n, n))
    eps = 1e-4
    for i in range(n):
        e = np.zeros(n)
        e[i] = eps
        prec[:, i] = -(grad(x0.data + e) - grad(x0.data - e)) / (2 * eps)
    prec = 0.5 * (prec + prec.T)
    # hierarchical scales are held at the MAP: their Laplace approximation is poor (the funnel), and a scale
    # drawn a few sds up multiplies every non-centred offset (measured: media terms of 1e40 in 2 of 30 logs)
    names = [info[0] for info in x0.point_map_info for _ in range(int(np.prod(info[1])))]
    free = np.array([not nm.endswith("_sigma_log__") for nm in names])
    for _ in range(n):  # drop the worst-identified coordinate until the rest are pinned down
        sub = prec[np.ix_(free, free)]
        w, v = np.linalg.eigh(sub)
        if w.min() > 0:
            sd = np.sqrt(np.diag((v / w) @ v.T))
            if sd.max() <= max_sd:
                break
            worst = np.flatnonzero(free)[np.argmax(sd)]
        else:
            worst = np.flatnonzero(free)[np.argmax(np.abs(v[:, 0]))]
        free[worst] = False
    rng = np.random.default_rng(seed)
    x = np.repeat(x0.data[None], draws, axis=0)
    if free.any():
        w, v = np.linalg.eigh(prec[np.ix_(free, free)])
        x[:, free] += rng.standard_normal((draws, int(free.sum()))) @ (v / np.sqrt(w)).T
    coords, dims = {k: list(v) for k, v in model.coords.items()}, model.named_vars_to_dims
    data_vars = {}
    for rv in model.free_RVs:
        vv = model.rvs_to_values[rv]
        vals = np.stack([_constrained(vv.name, DictToArrayBijection.rmap(x0._replace(data=xi))[vv.name])
                         for xi in x])
        rv_dims = tuple(dims.get(rv.name, ())) or tuple(f"{rv.name}_dim_{j}" for j in range(vals.ndim - 1))
        data_vars[rv.name] = (("chain", "draw", *rv_dims), vals[None])
    free_ds = xr.Dataset(data_vars, coords={"chain": [0], "draw": np.arange(draws),
                                            **{d: coords[d] for d in coords if any(d in v[0] for v in data_vars.values())}})
    # the deterministics the response model reads (the media coefficients); the logged KPI's prediction
    # recomputes its own from the free parameters
    det = [d.name for d in model.deterministics if d.name in post and d.name.startswith("saturation_beta")]
    with model, pytensor.config.change_flags(mode="FAST_RUN"):
        pp = pm.sample_posterior_predictive(free_ds, var_names=det, progressbar=False, random_seed=seed,
                                            extend_inferencedata=False)
    full = xr.merge([free_ds, pp["posterior_predictive"].to_dataset() if hasattr(pp["posterior_predictive"], "to_dataset")
                     else pp["posterior_predictive"]], compat="override", join="outer")
    full.attrs = dict(post.attrs)
    mmm.idata["posterior"] = full
    return int((~free).sum())


def rolling_origins(n_periods: int, n_origins: int, min_train: int, step: int) -> list[int]:
    """`n_origins` model-period indices evenly spaced from `min_train` to the end, aligned to decision periods
    of `step` model periods."""
    if n_periods - min_train < step:
        raise ValueError(f"{n_periods} periods leave nothing to replay after {min_train} training periods")
    last = n_periods - step
    raw = np.linspace(min_train, min_train + (last - min_train) * (n_origins - 1) / max(n_origins, 1), n_origins)
    origins = sorted({int(np.ceil(o / step) * step) for o in raw})
    return [o for o in origins if o < n_periods]


def _predict_logged(mmm, data, origin: int, stop: int, seed: int) -> np.ndarray:
    """[draw, period] predicted KPI summed over cells for model periods origin..stop-1, as logged."""
    ds = data.to_dataset().isel(date=slice(origin, stop)).drop_vars("target")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = mmm.sample_posterior_predictive(ds, extend_idata=False, include_last_observations=True,
                                               var_names=["mu"], progressbar=False, random_seed=seed)
    scale = mmm.idata.constant_data["target_scale"]
    mu = (pred["mu"] * scale).transpose("sample", "date", "geo").values
    return mu.sum(axis=2)


def fit_origin(data, origin: int, stop: int, settings, *, tenant_id: str, store: Path | str | None,
               save: bool = True, laplace_draws: int = 0) -> OriginModel:
    """Fit the MMM on model periods [0, origin), save it beside the tenant's models (never registered in
    mmm.models, so no plan can pick it), and predict the logged KPI of periods origin..stop-1. A MAP fit is
    widened by `laplace_draws` draws of its Laplace approximation (0: the point alone)."""
    from weathervane.allocate.mmm_response import MMMResponse
    from weathervane.mmm.model import adstock_lags, fit_mmm
    from weathervane.mmm.response import META_ATTR, PosteriorResponse, model_path

    import pytensor

    t0 = time.perf_counter()
    # FAST_RUN is PyTensor's numba backend, whose kernels are cached under base_compiledir/numba and shared by
    # every process and origin (the per-process compiledir holds only C modules): three origins of a 6-geo weekly
    # panel took 33 s of CPU with a warm cache against 227 s cold. The C backend ("CVM") compiles into the
    # per-process compiledir, so every replay step would pay its first origin again (130 s of g++).
    # traceback__limit=0: no Python stack is recorded on every graph node built (a tenth of a fit's time)
    with pytensor.config.change_flags(mode="FAST_RUN", traceback__limit=0), _one_blas_thread():
        fit = fit_mmm(data, settings, stop=origin)
        held = 0
        method = settings.method
        if settings.method == "map" and laplace_draws > 0:
            held = laplace_posterior(fit.mmm, laplace_draws, settings.seed)
            method = "map+laplace"
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    train_end = (data.dates[origin - 1] + _period_offset(data)).date()
    model_id = f"{tenant_id}-replay-o{origin}-{data.period}-{now:%Y%m%dT%H%M%S%f}"
    meta = {**data.meta(), "model_id": model_id, "l_max": adstock_lags(data.period), "status": "replay_origin",
            "settings": settings.to_dict(), "train_end": train_end.isoformat(), "origin": origin,
            "fitted_at": now.isoformat(), "method": method, "laplace_draws": laplace_draws if method == "map+laplace" else 0,
            "laplace_held": held}
    fit.mmm.idata.attrs[META_ATTR] = json.dumps(meta, default=str)
    path = None
    if save:
        if store is None:
            raise ValueError("an origin model is saved beside the tenant's models: pass store= (or save=False)")
        path = model_path(tenant_id, model_id, store)
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit.mmm.save(str(path))
    posterior = PosteriorResponse.from_idata(fit.mmm.idata, model_id=model_id)
    response = MMMResponse(posterior, draws=None)
    actor = MMMResponse(posterior, draws=ACTOR_DRAWS) if posterior.beta.shape[0] > ACTOR_DRAWS else response
    with pytensor.config.change_flags(mode="FAST_RUN", traceback__limit=0):
        pred = _predict_logged(fit.mmm, data, origin, stop, settings.seed)
    om = OriginModel(model_id=model_id, origin=origin, train_start=data.dates[0].date(), train_end=train_end,
                     method=method, fit_seconds=time.perf_counter() - t0, response=response,
                     pred_block=pred, path=path, n_draws=int(pred.shape[0]), laplace_held=held, actor=actor)
    return om


def _one_blas_thread():
    """L-BFGS-B (the MAP optimiser) makes thousands of tiny BLAS calls; OpenBLAS threads contending for a busy
    machine's cores made them over 100x slower (measured: 16.8 s against 0.15 s for the same optimisation)."""
    from contextlib import nullcontext

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an environment without it keeps its BLAS defaults
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


def _period_offset(data):
    import pandas as pd

    return pd.Timedelta(days=6 if data.period == "week" else 0)
