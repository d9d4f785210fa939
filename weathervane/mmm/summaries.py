"""Warehouse summaries of a fitted model, all computed through the posterior response API."""
from __future__ import annotations

import numpy as np
import pandas as pd

from weathervane.mmm.response import PosteriorResponse

CURVE_MULTIPLIERS = np.round(np.linspace(0.0, 2.0, 21), 2)  # share of the training window's spend
MROAS_STEP = 0.01


def _q(a: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return a.mean(axis=axis), np.quantile(a, 0.05, axis=axis), np.quantile(a, 0.95, axis=axis)


# A channel needs an experiment when the data taught the model little about its ROAS (the posterior variance of
# log ROAS is more than half the prior's, or its 90% interval spans more than a factor of 4), when its spend
# barely moves, or when its spend moves with the baseline demand (paced budgets) and no lift test separates the
# two. (Measured on paced search: contraction 0.56 with a 90% interval of 0.48 to 4.8.)
MIN_CONTRACTION = 0.5
MAX_ROAS_INTERVAL_RATIO = 4.0
MIN_SPEND_CV = 0.1
MAX_BASELINE_CORR = 0.7
MIN_DRAWS_FOR_SPREAD = 20  # a MAP point (1 draw) has no posterior spread to judge


def _log_sd(a: np.ndarray) -> float:
    a = a[np.isfinite(a) & (a > 0)]
    return float(np.std(np.log(a), ddof=1)) if a.size >= MIN_DRAWS_FOR_SPREAD else float("nan")


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def identifiability(roas: np.ndarray, prior_roas: np.ndarray | None, spend_t: np.ndarray, baseline_t: np.ndarray | None,
                    has_lift_test: bool) -> dict:
    """The identifiability columns of one channel (× geo) row.

    roas: posterior ROAS draws; prior_roas: ROAS draws under the model's priors (same spend and weather);
    spend_t / baseline_t: the channel's spend and the estimated baseline (KPI less all media) per period.
    roas_contraction = 1 - var_post(log ROAS) / var_prior(log ROAS): 0 = nothing learnt, 1 = pinned down."""
    prior_sd = float(np.std(prior_roas, ddof=1)) if prior_roas is not None and prior_roas.size > 1 else float("nan")
    post_sd = float(np.std(roas, ddof=1)) if roas.size >= MIN_DRAWS_FOR_SPREAD else float("nan")
    lp, lq = (_log_sd(prior_roas) if prior_roas is not None else float("nan")), _log_sd(roas)
    contraction = 1.0 - (lq / lp) ** 2 if np.isfinite(lp) and np.isfinite(lq) and lp > 0 else float("nan")
    mean_spend = float(np.mean(spend_t)) if spend_t.size else 0.0
    cv = float(np.std(spend_t) / mean_spend) if mean_spend > 0 else float("nan")
    corr = _corr(spend_t, baseline_t) if baseline_t is not None else float("nan")
    lo, hi = (np.quantile(roas, [0.05, 0.95]) if roas.size >= MIN_DRAWS_FOR_SPREAD else (np.nan, np.nan))
    needs = bool(
        (np.isfinite(contraction) and contraction < MIN_CONTRACTION)
        or (np.isfinite(lo) and np.isfinite(hi) and hi > MAX_ROAS_INTERVAL_RATIO * max(lo, 1e-12))
        or (np.isfinite(cv) and cv < MIN_SPEND_CV)
        or (not has_lift_test and np.isfinite(corr) and abs(corr) >= MAX_BASELINE_CORR)
    )
    return dict(roas_prior_sd=prior_sd, roas_posterior_sd=post_sd, roas_contraction=contraction, spend_cv=cv,
                spend_baseline_corr=corr, has_lift_test=bool(has_lift_test), needs_experiment=needs)


def channel_summary(resp: PosteriorResponse, model_id: str, tenant_id: str, draws: int | None = 500, *,
                    prior: PosteriorResponse | None = None, kpi: np.ndarray | None = None,
                    lift_test_channels: frozenset[str] | set[str] = frozenset()) -> pd.DataFrame:
    """Spend, contribution, ROAS (contribution / spend over the training window) and marginal ROAS (extra
    contribution per extra unit of spend, +1% on the channel everywhere), per channel × geo and overall (geo null),
    with the identifiability columns (`identifiability`): `prior` is the same response under prior draws, `kpi`
    [time, geo] the observed KPI in `resp.geos` order (the baseline is KPI less the posterior mean media)."""
    spend = resp.observed_spend
    z = resp.observed_z
    base = resp.incremental_kpi(spend, z, draws=draws)  # [S, T, C, G]
    contrib = base.sum(axis=1)  # [S, C, G]
    prior_contrib = prior.incremental_kpi(spend, z, draws=draws).sum(axis=1) if prior is not None else None
    baseline = None if kpi is None else np.asarray(kpi, dtype=float) - base.mean(axis=0).sum(axis=1)  # [T, G]
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
            if geo is None:
                pc = prior_contrib[:, ci, :].sum(axis=1) if prior_contrib is not None else None
                spend_t = spend[:, ci, :].sum(axis=1)
                baseline_t = baseline.sum(axis=1) if baseline is not None else None
            else:
                pc = prior_contrib[:, ci, gi] if prior_contrib is not None else None
                spend_t = spend[:, ci, gi]
                baseline_t = baseline[:, gi] if baseline is not None else None
            ident = identifiability(roas, pc / s if pc is not None and s > 0 else None, spend_t, baseline_t,
                                    channel in lift_test_channels)
            rows.append(dict(model_id=model_id, tenant_id=tenant_id, channel=channel,
                             geo_id=None if geo is None else resp.cell_geo.get(geo, geo), spend=float(s),
                             contribution_mean=float(cm), contribution_p05=float(c05), contribution_p95=float(c95),
                             roas_mean=float(rm), roas_p05=float(r05), roas_p95=float(r95), mroas_mean=mroas,
                             **ident))
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
    # the contract's columns even when the model has no weather term (readers select them by name)
    return pd.DataFrame(rows, columns=["model_id", "tenant_id", "channel", "weather_variable", "multiplier_per_sd_mean",
                                       "multiplier_per_sd_p05", "multiplier_per_sd_p95"])


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
