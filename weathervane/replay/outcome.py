"""Outcome models at rolling origins: for each period, an MMM fitted only on the periods before it.

An origin is a model period index; its model is fitted on periods [0, origin) and serves every decision period
from the origin up to the next origin. For each served period it gives (per posterior draw):
- the model's predicted KPI of the period as logged (its full mean: baseline, controls, media), from
  PyMC-Marketing's posterior predictive of `mu` over the served block with the logged spend and realized weather
  and controls (the model's own carry-over from the last training periods included);
- the media contribution of any allocation, from the same posterior (weathervane.mmm.response), so the
  prediction under a candidate is the logged prediction plus the contribution difference.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np

from weathervane import config


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


def fit_origin(data, origin: int, stop: int, settings, *, tenant_id: str, store: Path | str | None = None,
               save: bool = True) -> OriginModel:
    """Fit the MMM on model periods [0, origin), save it beside the tenant's models (never registered in
    mmm.models, so no plan can pick it), and predict the logged KPI of periods origin..stop-1."""
    from weathervane.allocate.mmm_response import MMMResponse
    from weathervane.mmm.model import adstock_lags, fit_mmm
    from weathervane.mmm.response import META_ATTR, PosteriorResponse, model_path

    import pytensor

    t0 = time.perf_counter()
    # PyTensor's C backend: its compiled modules are cached and reused by the next origin's fit, where the
    # default backend compiles every fit's graph afresh (measured: about 4x the CPU time per MAP fit)
    with pytensor.config.change_flags(mode="FAST_RUN"):
        fit = fit_mmm(data, settings, stop=origin)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    train_end = (data.dates[origin - 1] + _period_offset(data)).date()
    model_id = f"{tenant_id}-replay-o{origin}-{data.period}-{now:%Y%m%dT%H%M%S%f}"
    meta = {**data.meta(), "model_id": model_id, "l_max": adstock_lags(data.period), "status": "replay_origin",
            "settings": settings.to_dict(), "train_end": train_end.isoformat(), "origin": origin,
            "fitted_at": now.isoformat()}
    fit.mmm.idata.attrs[META_ATTR] = json.dumps(meta, default=str)
    path = None
    if save:
        path = model_path(tenant_id, model_id, store if store is not None else config.model_store())
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit.mmm.save(str(path))
    response = MMMResponse(PosteriorResponse.from_idata(fit.mmm.idata, model_id=model_id), draws=None)
    with pytensor.config.change_flags(mode="FAST_RUN"):
        pred = _predict_logged(fit.mmm, data, origin, stop, settings.seed)
    om = OriginModel(model_id=model_id, origin=origin, train_start=data.dates[0].date(), train_end=train_end,
                     method=settings.method, fit_seconds=time.perf_counter() - t0, response=response,
                     pred_block=pred, path=path)
    return om


def _period_offset(data):
    import pandas as pd

    return pd.Timedelta(days=6 if data.period == "week" else 0)
