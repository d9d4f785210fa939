"""Paid media: spend per channel x geo x day, geometric adstock, logistic saturation, weather modulation."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

L_MAX = 8


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    campaign_name: str
    share: float  # of the channel's spend
    adset_id: str | None = None  # Meta only
    adset_name: str | None = None
    channel_type: str | None = None  # Google advertising_channel_type


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    platform: str  # meta_ads | google_ads
    alpha: float
    lam: float
    target_roas: float  # overall ROAS the effect size is calibrated to before interventions and rounding
    spend_share: float  # of the tenant's paid media budget
    gamma_temp: float
    gamma_precip: float
    off_level: float  # spend level during an off flight, relative to on
    mean_on_days: float
    mean_off_days: float
    campaigns: tuple[Campaign, ...]
    cpm: float  # for impressions
    ctr: float
    # response form (world switches; the defaults are the standard simulator's)
    saturation: str = "logistic"  # logistic: (1 - e^-lam x) / (1 + e^-lam x); hill: x^k / (x^k + h^k)
    hill_slope: float = 1.0  # k
    hill_half: float = 1.0  # h, the adstocked spend / scale at which the curve is at half its ceiling
    adstock_kind: str = "geometric"  # geometric: alpha^l; delayed: alpha^((l - delay_peak)^2), both normalised
    delay_peak: float = 0.0


CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(
        "meta", "meta_ads", alpha=0.5, lam=1.4, target_roas=2.2, spend_share=0.40,
        gamma_temp=0.25, gamma_precip=0.0, off_level=0.0, mean_on_days=35, mean_off_days=14,
        campaigns=(
            Campaign("23851000001", "Prospecting - Broad Audiences", 0.39, "23851000101", "Broad US 25-54"),
            Campaign("23851000001", "Prospecting - Broad Audiences", 0.26, "23851000102", "Lookalike 1% Purchasers"),
            Campaign("23851000002", "Retargeting - Site Visitors", 0.20, "23851000201", "Cart Abandoners 7d"),
            Campaign("23851000002", "Retargeting - Site Visitors", 0.15, "23851000202", "Product Viewers 30d"),
        ),
        cpm=11.0, ctr=0.013,
    ),
    ChannelSpec(
        # generic search is paused in flights (brand keeps running), so its response is identifiable near zero
        "google_search", "google_ads", alpha=0.2, lam=2.0, target_roas=3.0, spend_share=0.25,
        gamma_temp=0.0, gamma_precip=0.0, off_level=0.1, mean_on_days=42, mean_off_days=14,
        campaigns=(
            Campaign("17100000001", "Search - Brand", 0.35, channel_type="SEARCH"),
            Campaign("17100000002", "Search - Generic", 0.65, channel_type="SEARCH"),
        ),
        cpm=28.0, ctr=0.06,
    ),
    ChannelSpec(
        "google_shopping", "google_ads", alpha=0.3, lam=1.6, target_roas=1.8, spend_share=0.22,
        gamma_temp=0.0, gamma_precip=-0.2, off_level=0.2, mean_on_days=28, mean_off_days=12,
        campaigns=(Campaign("17100000003", "Shopping - All Products", 1.0, channel_type="SHOPPING"),),
        cpm=6.0, ctr=0.012,
    ),
    ChannelSpec(
        "google_performance_max", "google_ads", alpha=0.4, lam=1.0, target_roas=1.4, spend_share=0.13,
        gamma_temp=0.0, gamma_precip=0.0, off_level=0.0, mean_on_days=30, mean_off_days=20,
        campaigns=(Campaign("17100000004", "PMax - Catalog", 1.0, channel_type="PERFORMANCE_MAX"),),
        cpm=8.0, ctr=0.009,
    ),
)

CHANNEL_BY_NAME = {c.name: c for c in CHANNELS}


def flights(n: int, spec: ChannelSpec, rng: np.random.Generator) -> np.ndarray:
    """On/off bursts of a few weeks: 1.0 when on, spec.off_level when off."""
    out = np.empty(n)
    on = rng.random() < spec.mean_on_days / (spec.mean_on_days + spec.mean_off_days)
    t = 0
    while t < n:
        mean = spec.mean_on_days if on else spec.mean_off_days
        length = max(7, int(rng.geometric(1.0 / mean)))
        out[t:t + length] = 1.0 if on else spec.off_level
        t += length
        on = not on
    return out


def simulate_spend(channels: tuple[ChannelSpec, ...], sizes: np.ndarray, daily_budget: np.ndarray, n: int,
                   rng: np.random.Generator, *, paced: frozenset[str] = frozenset(),
                   demand: np.ndarray | None = None, pacing_exponent: float = 0.7,
                   budget_bump: np.ndarray | None = None, geo_pattern: np.ndarray | None = None,
                   promo_days: np.ndarray | None = None, promo_channels: frozenset[str] = frozenset(),
                   level_noise: bool = True) -> np.ndarray:
    """Planned spend[c, g, t]: per-geo budget level x flights x slow drift x daily noise.

    A channel in `paced` has no flights: its budget follows `demand` (the organic baseline's smooth shape, mean 1)
    to the power `pacing_exponent`, as search and shopping budgets paced by demand do. `budget_bump` [t]
    multiplies every channel's budget (Q4 pushes). `geo_pattern` [g, t] multiplies every channel's budget in each
    geo (budgets that follow the geo's own demand, or last month's revenue). A channel in `promo_channels` is on
    exactly on `promo_days` [t] (flights that coincide with promotions). `level_noise` False: each geo's budget
    level is exactly its share of the budget (no per-geo random level). The random draws are the same whatever
    these options say, so the standard simulator's files do not change."""
    spend = np.zeros((len(channels), len(sizes), n))
    for ci, spec in enumerate(channels):
        for gi in range(len(sizes)):
            level_draw = np.exp(rng.normal(0.0, 0.25))
            level = spec.spend_share * daily_budget[gi] * (level_draw if level_noise else 1.0)
            drift = np.empty(n)
            prev = rng.normal(0.0, 0.15)
            shocks = rng.normal(0.0, 0.03, n)
            for t in range(n):
                prev = 0.985 * prev + shocks[t]
                drift[t] = prev
            noise = rng.lognormal(-0.5 * 0.2**2, 0.2, n)
            if spec.name in paced and demand is not None:
                pattern = demand ** pacing_exponent
                pattern = pattern / pattern.mean()
            else:
                pattern = flights(n, spec, rng)
                if spec.name in promo_channels and promo_days is not None:
                    pattern = np.where(promo_days, 1.0, spec.off_level)
            if geo_pattern is not None:
                pattern = pattern * geo_pattern[gi]
            spend[ci, gi] = level * pattern * np.exp(drift) * noise
            if budget_bump is not None:
                spend[ci, gi] *= budget_bump
    return spend


# The simulator's own copy of the media maths, independent of weathervane.transforms on purpose: the model and
# allocator share that one, and a ground truth written with it could not catch a bug in it.
def adstock_weights(alpha: float, l_max: int = L_MAX, kind: str = "geometric", peak: float = 0.0) -> np.ndarray:
    lags = np.arange(l_max)
    w = alpha ** ((lags - peak) ** 2) if kind == "delayed" else alpha ** lags
    return w / w.sum()


def channel_weights(spec: ChannelSpec, l_max: int = L_MAX) -> np.ndarray:
    return adstock_weights(spec.alpha, l_max, spec.adstock_kind, spec.delay_peak)


def adstock(x: np.ndarray, alpha: float | np.ndarray, l_max: int = L_MAX) -> np.ndarray:
    """Normalized adstock along the last axis (no spend before the first day); `alpha` a geometric decay or the
    weights themselves (lag 0 first)."""
    w = np.asarray(alpha, dtype=float) if np.ndim(alpha) else adstock_weights(float(alpha), l_max)
    l_max = len(w)
    out = np.zeros_like(x, dtype=float)
    for lag in range(l_max):
        if lag == 0:
            out += w[0] * x
        else:
            out[..., lag:] += w[lag] * x[..., :-lag]
    return out


def logistic_saturation(x: np.ndarray, lam: float) -> np.ndarray:
    e = np.exp(-lam * x)
    return (1 - e) / (1 + e)


def hill_saturation(x: np.ndarray, slope: float, half: float) -> np.ndarray:
    xk = np.power(np.maximum(x, 0.0), slope)
    return xk / (xk + half ** slope)


def saturate(x: np.ndarray, spec: ChannelSpec) -> np.ndarray:
    if spec.saturation == "hill":
        return hill_saturation(x, spec.hill_slope, spec.hill_half)
    return logistic_saturation(x, spec.lam)


def response_shape(spend: np.ndarray, spec: ChannelSpec, scale: float, z_temp: np.ndarray,
                   z_precip: np.ndarray) -> np.ndarray:
    """Contribution per unit of beta: sat(adstock(spend) / scale) x exp(gamma . z); arrays are [g, t]."""
    weights = channel_weights(spec) if spec.adstock_kind != "geometric" else spec.alpha
    sat = saturate(adstock(spend, weights) / scale, spec)
    return sat * np.exp(spec.gamma_temp * z_temp + spec.gamma_precip * z_precip)


def split_and_round(spend: np.ndarray, campaigns: tuple[Campaign, ...], rng: np.random.Generator) -> np.ndarray:
    """parts[k, g, t] in cents-rounded currency: the channel's spend split across campaigns / ad sets."""
    shares = np.array([c.share for c in campaigns])[:, None, None]
    if len(campaigns) > 1:
        shares = shares * rng.lognormal(0.0, 0.15, (len(campaigns),) + spend.shape)
        shares = shares / shares.sum(axis=0, keepdims=True)
    return np.round(spend[None] * shares, 2)
