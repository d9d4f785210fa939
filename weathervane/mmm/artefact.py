"""The saved model file: what reloading, the response API, the plan's baseline and the summaries need, no more.

A fit's posterior holds every per-date deterministic (channel contributions per date × cell × channel, the mean,
seasonality, controls...): hundreds of MB for a two-year daily fit. The file keeps the parameters (every
variable without a date dimension), the model's mean `mu` and the media contribution summed over channels
(`media_contribution`, for the plan's baseline = mu − media), both as float32, plus sample stats, observed,
constant and fit data. Per-date deterministics are recomputed from the parameters when needed
(`PosteriorResponse`).
"""
from __future__ import annotations

import warnings
from pathlib import Path

MEDIA_TOTAL = "media_contribution"
_MEDIA_SOURCES = ("weather_channel_contribution", "channel_contribution")
_KEEP_GROUPS = ("posterior", "sample_stats", "observed_data", "constant_data", "fit_data")


def lean_posterior(post):
    """The posterior without per-date deterministics, with `mu` and the channel-summed media contribution."""
    import numpy as np

    dated = [name for name in post.data_vars if "date" in post[name].dims]
    source = next((n for n in _MEDIA_SOURCES if n in post.data_vars), None)
    lean = post.drop_vars([n for n in dated if n != "mu"])
    if "mu" in lean:
        lean["mu"] = lean["mu"].astype(np.float32)
    if source is not None:
        lean[MEDIA_TOTAL] = post[source].sum("channel").astype(np.float32)
    return lean


def save_lean(mmm, path: Path | str) -> Path:
    """Save the fitted PyMC-Marketing model with a lean posterior (PyMC-Marketing's `MMM.load` still reads it)."""
    import xarray as xr

    full = mmm.idata
    groups = {f"/{g}": full[g].to_dataset() for g in _KEEP_GROUPS if g in full.children}
    groups["/posterior"] = lean_posterior(full["posterior"].to_dataset())
    lean = xr.DataTree.from_dict(groups)
    lean.attrs.update(full.attrs)
    mmm.idata = lean
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mmm.save(str(path))
    finally:
        mmm.idata = full
    return Path(path)
