"""The ground truth a simulated tenant was generated from, kept outside the tenant folder so it is never ingested.

Money is net revenue in the tenant currency. Dates are the tenant's local dates (ISO strings).
Daily series are lists aligned with `Truth.daily.dates` (the sales window).
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
    alpha: float  # geometric adstock decay
    l_max: int
    adstock_weights: list[float]  # normalized, lag 0 first
    lam: float  # logistic saturation steepness on adstocked spend / scale
    scale: float  # spend units the saturation input is divided by
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
    lift_test: LiftTestTruth  # the first of lift_tests
    lift_tests: list[LiftTestTruth] = []
    bad_files: list[BadFile]
    files: dict[str, int]  # "<source>/<stream>" -> number of files written
    daily: DailyTruth

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=1) + "\n", encoding="utf-8")


def load_truth(path: Path | str) -> Truth:
    """Read a `<tenant>.truth.json` written by `simulate_tenant`."""
    return Truth.model_validate_json(Path(path).read_text(encoding="utf-8"))
