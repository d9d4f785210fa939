"""The ground truth a simulated tenant was generated from, kept outside the tenant folder so it is never ingested.

Money is net revenue in the tenant currency. Dates are the tenant's local dates (ISO strings).
Daily series are lists aligned with `Truth.daily.dates` (the sales window).

Valuing an allocation under the true response (for regret against an oracle): per channel c and geo g, daily,

    x(g,t)      = sum_l w_c[l] * spend_c(g, t - l) / scale_c          w_c = channels[c].adstock_weights (lag 0 first,
                                                                       l_max days; spend before the array is 0)
    sat(x)      = (1 - e^(-lam_c x)) / (1 + e^(-lam_c x))               channels[c].saturation == "logistic"
                = x^k / (x^k + h^k), k = hill_slope, h = hill_half      channels[c].saturation == "hill"
    media(g,t)  = beta_c[g] * sat(x) * exp(gamma_c[temp] z_temp(g,t) + gamma_c[precip] z_precip(g,t))

with z standardised by the geo's `weather_mean` / `weather_sd` (sample sd) over the sales window. The horizon the
plans are for (`Truth.horizon`, the FORECAST_DAYS days after `end_date`) holds the weather that actually
happened there (which the forecast files also carry), its z, and the expected baseline (no promotions). Prepend
the last l_max - 1 days of `daily.spend` to a plan so carry-over from recent spend counts. `true_media` below
computes media(g,t) with the simulator's own maths.
"""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

WEATHER_VARIABLES = ("temperature_2m_mean", "precipitation_sum")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GeoTruth(_Model):
    geo_id: str
    name: str
    meta_region_name: str
    google_criterion_id: int
    latitude: float
    longitude: float
    timezone: str
    size: float
    climate: dict[str, float]
    # the geo's own mean / sd (ddof=1) of each weather variable over the observed daily history, as written
    weather_mean: dict[str, float]
    weather_sd: dict[str, float]
    baseline_intercept: float  # b0: daily baseline revenue before trend, seasonality, weekday and weather
    expected_revenue: float
    net_revenue_valid_orders: float


class ChannelTruth(_Model):
    name: str
    platform: str  # meta_ads | google_ads
    campaigns: list[dict[str, str]]
    alpha: float  # adstock decay (geometric: alpha^l; delayed: alpha^((l - delay_peak)^2))
    l_max: int
    adstock_weights: list[float]  # normalized, lag 0 first: the carry-over to use whatever adstock_kind says
    lam: float  # logistic saturation steepness on adstocked spend / scale
    saturation: str = "logistic"  # logistic | hill
    hill_slope: float = 1.0  # hill only: k
    hill_half: float = 1.0  # hill only: h, adstocked spend / scale at half the ceiling
    adstock_kind: str = "geometric"  # geometric | delayed
    delay_peak: float = 0.0
    scale: float  # spend units the saturation input is divided by
    scale_by_geo: dict[str, float] | None = None  # per geo, where the world gives each geo its own (geo_parity)
    beta: dict[str, float]  # per geo: maximum daily contribution at the weather mean (includes geo size)
    gamma: dict[str, float]  # per weather variable: log-multiplier per within-geo sd
    multiplier_per_sd: dict[str, float]  # exp(gamma)
    spend: float
    contribution: float
    roas: float
    spend_by_geo: dict[str, float]
    contribution_by_geo: dict[str, float]
    roas_by_geo: dict[str, float]


class PromotionTruth(_Model):
    promotion_id: str
    source: str  # shopify_price_rule | shopify_automatic | shopify_compare_at | klaviyo_campaign
    promo_type: str  # percentage_code | automatic_percentage | markdown | email | sms
    title: str
    code: str | None = None
    depth_pct: float
    start_date: str
    end_date: str
    scope: str  # "all" or "category:<product_type>"
    price_rule_id: int | None = None
    discount_code_id: int | None = None
    klaviyo_campaign_id: str | None = None
    lift: float  # expected net revenue it added over the window


class OrderCounts(_Model):
    written: int  # distinct orders in the files (every version counted once)
    test: int
    cancelled: int
    valid: int  # not test, not cancelled: the sales
    order_versions_written: int  # lines in the order files (cancelled orders appear twice)
    units_valid: int
    gross_revenue_valid: float  # sum of line price x quantity
    discounts_valid: float
    net_revenue_valid: float  # gross - discounts = subtotal_price = total_price
    net_revenue_by_category: dict[str, float]


class DeploymentTruth(_Model):
    deployment_id: str
    channels: list[str]
    geo_ids: list[str]
    start_date: str
    end_date: str | None
    spend_multiplier: float
    spend_delta: float  # extra spend it caused within the sales window
    effect: float  # true extra expected net revenue within the window (vs the same days without it)
    relative_effect: float  # effect / expected revenue of the treated geos without it, post period


class LiftTestTruth(_Model):
    channel: str
    geo_id: str
    start_date: str
    end_date: str
    spend_multiplier: float
    spend_delta: float
    true_kpi_delta: float  # exact expected lift within the test window
    reported_kpi_delta: float  # what the CSV says (true + measurement noise)
    kpi_delta_sd: float


class BadFile(_Model):
    file_path: str  # relative to the tenant folder
    line: int | None
    field: str | None
    reason: str


class DailyTruth(_Model):
    dates: list[str]
    spend: dict[str, dict[str, list[float]]]  # channel -> geo -> daily spend as written in the files
    contribution: dict[str, dict[str, list[float]]]  # channel -> geo -> expected daily contribution
    expected_revenue: dict[str, list[float]]  # geo -> mu
    baseline: dict[str, list[float]]  # geo -> baseline incl. weather main effect and demand shock
    promo_lift: dict[str, list[float]]
    lifecycle_lift: dict[str, list[float]]
    z: dict[str, dict[str, list[float]]]  # weather variable -> geo -> standardized value
    net_revenue: dict[str, list[float]]  # geo -> realized net revenue of valid orders
    orders: dict[str, list[int]]  # geo -> count of valid orders


class HorizonTruth(_Model):
    """The planning horizon after the sales window: what actually happened to the weather there."""
    dates: list[str]
    weather: dict[str, dict[str, list[float]]]  # weather variable -> geo -> daily value (as in the forecast files)
    z: dict[str, dict[str, list[float]]]  # weather variable -> geo -> z with the sales window's mean / sd
    baseline: dict[str, list[float]]  # geo -> expected daily baseline revenue (no promotions, no demand shock)


class WorldTruth(_Model):
    """The world switches the data were generated under (worlds.World)."""
    name: str = "standard"
    saturation: str = "logistic"
    hill_slope: float = 1.0
    hill_half: float = 1.0
    adstock: str = "default"
    paced_channels: list[str] = []
    pacing_exponent: float = 0.7
    holiday_demand: float = 0.0
    q4_budget_bump: float = 0.0
    baseline_weather: bool = True
    geo_parity: bool = False
    geo_paced: bool = False
    budget_from_revenue: bool = False
    promo_flight_channels: list[str] = []

    @classmethod
    def from_world(cls, world) -> "WorldTruth":
        return cls(name=world.name, saturation=world.saturation, hill_slope=world.hill_slope,
                   hill_half=world.hill_half, adstock=world.adstock, paced_channels=list(world.paced_channels),
                   pacing_exponent=world.pacing_exponent, holiday_demand=world.holiday_demand,
                   q4_budget_bump=world.q4_budget_bump, baseline_weather=world.baseline_weather,
                   geo_parity=world.geo_parity, geo_paced=world.geo_paced,
                   budget_from_revenue=world.budget_from_revenue,
                   promo_flight_channels=list(world.promo_flight_channels))


class Truth(_Model):
    tenant_id: str
    scenario: str
    seed: int
    start_date: str
    end_date: str  # last day of sales data
    days: int
    n_geos: int
    orders_per_geo_day: float
    media_share: float = 0.11
    timezone: str
    currency: str
    forecast_start: str
    forecast_end: str
    geos: list[GeoTruth]
    channels: dict[str, ChannelTruth]
    baseline_params: dict[str, object]
    promo_params: dict[str, float]
    promotions: list[PromotionTruth]
    promo_lift_total: float
    lifecycle_lift_total: float
    baseline_total: float
    media_total: float
    expected_revenue_total: float
    expected_net_order_value: float  # with no promotion running
    orders: OrderCounts
    deployment: DeploymentTruth
    lift_test: LiftTestTruth | None  # the first of lift_tests (None when no lift test ran)
    lift_tests: list[LiftTestTruth] = []
    bad_files: list[BadFile]
    files: dict[str, int]  # "<source>/<stream>" -> number of files written
    daily: DailyTruth
    horizon: HorizonTruth | None = None
    world: WorldTruth = WorldTruth()

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=1) + "\n", encoding="utf-8")


def load_truth(path: Path | str) -> Truth:
    """Read a `<tenant>.truth.json` written by `simulate_tenant`."""
    return Truth.model_validate_json(Path(path).read_text(encoding="utf-8"))


def true_media(truth: Truth, spend, z_temp, z_precip, n_history: int = 0):
    """True expected media contribution [channel, geo, day] of `spend` [channel, geo, day] (channels in
    `truth.channels` order, geos in `truth.geos` order, daily currency), with weather z [geo, day]. The first
    `n_history` days are history for carry-over and are dropped from the result."""
    import numpy as np

    from weathervane.simulate.media import adstock, hill_saturation, logistic_saturation

    spend = np.asarray(spend, dtype=float)
    gids = [g.geo_id for g in truth.geos]
    out = np.zeros_like(spend)
    for ci, ch in enumerate(truth.channels.values()):
        x = adstock(spend[ci], np.asarray(ch.adstock_weights)) / ch.scale
        sat = hill_saturation(x, ch.hill_slope, ch.hill_half) if ch.saturation == "hill" \
            else logistic_saturation(x, ch.lam)
        beta = np.array([ch.beta[g] for g in gids])[:, None]
        out[ci] = beta * sat * np.exp(ch.gamma["temperature_2m_mean"] * np.asarray(z_temp)
                                      + ch.gamma["precipitation_sum"] * np.asarray(z_precip))
    return out[:, :, n_history:]
