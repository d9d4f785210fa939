"""Warehouse summaries of a fitted model, all computed through the posterior response API."""
from __future__ import annotations

import numpy as np
import pandas as pd

from weathervane.mmm.response import PosteriorResponse

CURVE_MULTIPLIERS = np.round(np.linspace(0.0, 2.0, 21), 2)  # share of the training window's spend
MROAS_STEP = 0.01


def _q(a: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return a.mean(axis=axis), np.quantile(a, 0.05, axis=axis), np.quantile(a, 0.95, axis=axis)


def channel_summary(resp: PosteriorResponse, model_id: str, tenant_id: str, draws: int | None = 500) -> pd.DataFrame:
    """Spend, contribution, ROAS (contribution / spend over the training window) and marginal ROAS (extra
    contribution per extra unit of spend, +1% on the channel everywhere), per channel × geo and overall (geo null)."""
    spend = resp.observed_spend
    z = resp.observed_z
    base = resp.incremental_kpi(spend, z, draws=draws)  # [S, T, C, G]
    contrib = base.sum(axis=1)  # [S, C, G]
    rows = []
    for ci, channel in enumerate(resp.channels):
        bumped = spend.copy()
        bumped[:, ci, :] *= 1 + MROAS_STEP
        extra = (resp.incremental_kpi(bumped, z, draws=draws)[:, :, ci, :] - base[:, :, ci, :]).sum(axis=1)  # [S, G]
        for gi, geo in enumerate([*resp.geos, None]):
            if geo is None:
                c, s, dx = contrib[:, ci, :].sum(axis=1), spend[:, ci, :].sum(), extra.sum(axis=1)
            else:
                c, s, dx = contrib[:, ci, gi], spend[:, ci, gi].sum(), extra[:, gi]
            cm, c05, c95 = _q(c)
            roas = c / s if s > 0 else np.full_like(c, np.nan)
            rm, r05, r95 = _q(roas)
            mroas = float((dx / (MROAS_STEP * s)).mean()) if s > 0 else np.nan
            rows.append(dict(model_id=model_id, tenant_id=tenant_id, channel=channel,
                             geo_id=None if geo is None else resp.cell_geo.get(geo, geo), spend=float(s),
                             contribution_mean=float(cm), contribution_p05=float(c05), contribution_p95=float(c95),
                             roas_mean=float(rm), roas_p05=float(r05), roas_p95=float(r95), mroas_mean=mroas))
    return pd.DataFrame(rows)


def weather_effects(resp: PosteriorResponse, model_id: str, tenant_id: str) -> pd.DataFrame:
    """Multiplier per sd: effect at +1 sd of the geo's weather over effect at its mean, spend fixed = exp(gamma)."""
    m = resp.multiplier_per_sd()
    rows = []
    for ci, channel in enumerate(resp.channels):
        for wi, var in enumerate(resp.weather_vars):
            mean, p05, p95 = _q(m[:, ci, wi])
            rows.append(dict(model_id=model_id, tenant_id=tenant_id, channel=channel, weather_variable=var,
                             multiplier_per_sd_mean=float(mean), multiplier_per_sd_p05=float(p05),
                             multiplier_per_sd_p95=float(p95)))
    return pd.DataFrame(rows)


def response_curves(resp: PosteriorResponse, model_id: str, tenant_id: str, draws: int | None = 300) -> pd.DataFrame:
    """Contribution over the training window when the channel's spend is scaled by each multiplier (same timing,
    geo mix and weather as observed); the point at multiplier 1 is the channel's contribution."""
    rows = []
    spend, z = resp.observed_spend, resp.observed_z
    for ci, channel in enumerate(resp.channels):
        for k in CURVE_MULTIPLIERS:
            s = spend.copy()
            s[:, ci, :] *= k
            c = resp.incremental_kpi(s, z, draws=draws)[:, :, ci, :].sum(axis=(1, 2))
            mean, p05, p95 = _q(c)
            rows.append(dict(model_id=model_id, tenant_id=tenant_id, channel=channel, spend=float(s[:, ci].sum()),
                             contribution_mean=float(mean), contribution_p05=float(p05),
                             contribution_p95=float(p95)))
    return pd.DataFrame(rows)
