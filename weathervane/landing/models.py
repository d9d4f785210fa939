"""Pydantic models of the landing streams: the one source of truth for required fields and types.

JSON streams validate in strict mode (a string where the contract says int is an error); fields the contract
lets be "strings or numbers" use the `Money` / `IntLike` types below. CSV rows are all strings, so their
models validate in lax mode (numbers and dates are parsed from text). Unknown fields are allowed: raw keeps
each record exactly as delivered, so they are never lost. The JSON Schemas in assets/schemas are exported
from these models (see `weathervane.landing.schemas`).
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetPydanticSchema, WithJsonSchema
from pydantic_core import core_schema

from weathervane import reference

NUMBER_PATTERN = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
INT_PATTERN = r"^[-+]?\d+$"
_NUMBER_RE = re.compile(NUMBER_PATTERN)
GOOGLE_GEO_PREFIX = "geoTargetConstants/"


def _union(name: str, message: str, *choices: core_schema.CoreSchema, json: dict) -> Any:
    """A type validated entirely in pydantic-core (fast), with one readable error instead of one per choice."""
    inner = choices[0] if len(choices) == 1 else core_schema.union_schema(list(choices), mode="left_to_right")
    schema = core_schema.custom_error_schema(inner, custom_error_type=name, custom_error_message=message)
    return Annotated[Any, GetPydanticSchema(lambda _t, _h: schema), WithJsonSchema(json)]


_INT = core_schema.int_schema(strict=True)
_FLOAT = core_schema.float_schema(strict=True, allow_inf_nan=False)
_NUMERIC_STR = core_schema.str_schema(strict=True, pattern=NUMBER_PATTERN)
_INT_STR = core_schema.str_schema(strict=True, pattern=INT_PATTERN)
_ID_STR = core_schema.str_schema(strict=True, min_length=1)

# Amounts come as decimal strings from Shopify and Meta, as numbers from other exporters.
Money = _union("money", "expected a number or a numeric string", _INT, _FLOAT, _NUMERIC_STR,
               json={"anyOf": [{"type": "number"}, {"type": "string", "pattern": NUMBER_PATTERN}]})
# Meta's spend is always a decimal string.
NumericString = _union("numeric_string", "expected a numeric string", _NUMERIC_STR,
                       json={"type": "string", "pattern": NUMBER_PATTERN})
# Google Ads REST writes int64 as a JSON string; Meta writes counts as strings.
IntLike = _union("int_like", "expected an integer or an integer string", _INT, _INT_STR,
                 json={"anyOf": [{"type": "integer"}, {"type": "string", "pattern": INT_PATTERN}]})
Identifier = _union("identifier", "expected an id (non-empty string or integer)", _INT, _ID_STR,
                    json={"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]})


def _known_meta_region(value: str) -> str:
    if value not in reference.meta_region_to_geo():
        raise ValueError(f"unknown Meta region {value!r} (not in assets/reference/geo_regions.csv)")
    return value


def _known_google_geo(value: str) -> str:
    if not value.startswith(GOOGLE_GEO_PREFIX) or not value[len(GOOGLE_GEO_PREFIX):].isdigit():
        raise ValueError(f"expected 'geoTargetConstants/<criterion id>', got {value!r}")
    if int(value[len(GOOGLE_GEO_PREFIX):]) not in reference.google_criterion_to_geo():
        raise ValueError(f"unknown Google geo target {value!r} (not in assets/reference/geo_regions.csv)")
    return value


def _known_geo(value: str) -> str:
    if value not in reference.known_geo_ids():
        raise ValueError(f"unknown geo_id {value!r} (not in assets/reference/geo_regions.csv)")
    return value


def _optional_known_geo(value: str | None) -> str | None:
    # CSV cells are strings: an empty geo_id means "no geo" (national).
    if value is None or value.strip() == "":
        return None
    return _known_geo(value.strip())


KnownGeo = Annotated[str, AfterValidator(_known_geo)]


def _meta_region_schema() -> dict:
    return {"type": "string", "enum": sorted(reference.meta_region_to_geo())}


def _google_geo_schema() -> dict:
    ids = sorted(reference.google_criterion_to_geo())
    return {"type": "string", "enum": [f"{GOOGLE_GEO_PREFIX}{i}" for i in ids]}


def _geo_schema() -> dict:
    return {"type": "string", "enum": sorted(reference.known_geo_ids())}


class Record(BaseModel):
    """A JSON landing record: strict types, unknown fields kept."""

    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=False)


class CsvRow(BaseModel):
    """A CSV landing row: every cell is text, numbers and dates are parsed from it."""

    model_config = ConfigDict(strict=False, extra="allow")


# --- shopify ---------------------------------------------------------------------------------------------


class ShopifyAddress(Record):
    province_code: str | None = None
    country_code: str | None = None
    zip: str | None = None


class ShopifyDiscountCode(Record):
    code: str
    amount: Money
    type: str | None = None


class ShopifyDiscountApplication(Record):
    type: Literal["discount_code", "automatic", "manual", "script"]
    title: str | None = None
    code: str | None = None
    value: Money
    value_type: Literal["percentage", "fixed_amount"]
    allocation_method: str | None = None
    target_selection: str | None = None
    target_type: str | None = None


class ShopifyDiscountAllocation(Record):
    amount: Money
    discount_application_index: int


class ShopifyLineItem(Record):
    id: int
    product_id: int | None = None
    variant_id: int | None = None
    sku: str | None = None
    quantity: int
    price: Money
    total_discount: Money | None = None
    discount_allocations: list[ShopifyDiscountAllocation] = Field(default_factory=list)


class ShopifyOrder(Record):
    id: int
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None = None
    test: bool = False
    currency: str
    financial_status: str | None = None
    total_price: Money
    subtotal_price: Money
    total_discounts: Money
    discount_codes: list[ShopifyDiscountCode] = Field(default_factory=list)
    discount_applications: list[ShopifyDiscountApplication] = Field(default_factory=list)
    line_items: list[ShopifyLineItem]
    shipping_address: ShopifyAddress | None = None
    billing_address: ShopifyAddress | None = None


class ShopifyVariant(Record):
    id: int
    sku: str | None = None
    price: Money
    compare_at_price: Money | None = None


class ShopifyProduct(Record):
    id: int
    title: str
    product_type: str | None = None
    vendor: str | None = None
    tags: str | None = None
    status: str | None = None
    created_at: datetime
    updated_at: datetime
    variants: list[ShopifyVariant] = Field(default_factory=list)


class ShopifyPriceRule(Record):
    id: int
    title: str
    value: Money
    value_type: Literal["percentage", "fixed_amount"]
    target_type: str | None = None
    target_selection: Literal["all", "entitled"] | None = None
    allocation_method: str | None = None
    starts_at: datetime
    ends_at: datetime | None = None
    entitled_product_ids: list[int] = Field(default_factory=list)
    entitled_collection_ids: list[int] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class ShopifyDiscountCodeRecord(Record):
    id: int
    price_rule_id: int
    code: str
    usage_count: int | None = None
    created_at: datetime
    updated_at: datetime


# --- ad platforms ----------------------------------------------------------------------------------------


class MetaAction(Record):
    action_type: str
    value: Money


class MetaInsightRegion(Record):
    account_id: Identifier | None = None
    campaign_id: Identifier
    campaign_name: str
    adset_id: Identifier | None = None
    adset_name: str | None = None
    date_start: date
    date_stop: date
    region: Annotated[str, AfterValidator(_known_meta_region), WithJsonSchema(_meta_region_schema())]
    spend: NumericString
    impressions: IntLike | None = None
    clicks: IntLike | None = None
    reach: IntLike | None = None
    actions: list[MetaAction] = Field(default_factory=list)
    action_values: list[MetaAction] = Field(default_factory=list)


class GoogleCampaignGeo(Record):
    segments_date: date = Field(alias="segments.date")
    campaign_id: Identifier = Field(alias="campaign.id")
    campaign_name: str = Field(alias="campaign.name")
    campaign_advertising_channel_type: str = Field(alias="campaign.advertising_channel_type")
    segments_geo_target_region: Annotated[
        str, AfterValidator(_known_google_geo), WithJsonSchema(_google_geo_schema())
    ] = Field(alias="segments.geo_target_region")
    metrics_cost_micros: IntLike = Field(alias="metrics.cost_micros")
    metrics_impressions: IntLike | None = Field(None, alias="metrics.impressions")
    metrics_clicks: IntLike | None = Field(None, alias="metrics.clicks")
    metrics_conversions: Money | None = Field(None, alias="metrics.conversions")
    metrics_conversions_value: Money | None = Field(None, alias="metrics.conversions_value")


# --- klaviyo ---------------------------------------------------------------------------------------------


class KlaviyoCampaignAttributes(Record):
    name: str
    status: str | None = None
    archived: bool | None = None
    channel: Literal["email", "sms"]
    send_time: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class KlaviyoCampaign(Record):
    id: str
    type: Literal["campaign"]
    attributes: KlaviyoCampaignAttributes


class KlaviyoGroupings(Record):
    campaign_id: str
    send_channel: str | None = None


class KlaviyoStatistics(Record):
    recipients: Money | None = None
    delivered: Money | None = None
    opens_unique: Money | None = None
    clicks_unique: Money | None = None
    conversions: Money | None = None
    conversion_value: Money | None = None


class KlaviyoCampaignValues(Record):
    groupings: KlaviyoGroupings
    statistics: KlaviyoStatistics


# --- weather ---------------------------------------------------------------------------------------------


class WeatherDaily(Record):
    time: list[date]
    temperature_2m_max: list[float | None]
    temperature_2m_min: list[float | None]
    temperature_2m_mean: list[float | None]
    precipitation_sum: list[float | None]
    snowfall_sum: list[float | None] | None = None
    wind_speed_10m_max: list[float | None] | None = None


class OpenMeteoResponse(Record):
    latitude: float
    longitude: float
    timezone: str | None = None
    daily_units: dict[str, str] | None = None
    daily: WeatherDaily


# --- autopilot, experiments, aggregated ------------------------------------------------------------------


class AutopilotDeployment(Record):
    deployment_id: str
    plan_id: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    channels: list[str]
    geo_ids: list[Annotated[KnownGeo, WithJsonSchema(_geo_schema())]]
    description: str | None = None


class LiftTestRow(CsvRow):
    channel: str = Field(min_length=1)
    geo_id: Annotated[str | None, AfterValidator(_optional_known_geo)] = None
    start_date: date
    end_date: date
    spend_delta: float
    kpi_delta: float
    kpi_delta_sd: float = Field(ge=0)


class MmmInputRow(CsvRow):
    """`date`, optional `geo_id`, `revenue`, `spend_<channel>` columns and numeric controls."""

    model_config = ConfigDict(
        strict=False,
        extra="allow",
        json_schema_extra={
            "additionalProperties": {"type": "string", "pattern": f"({NUMBER_PATTERN})|^$"},
        },
    )

    date: date
    geo_id: Annotated[str | None, AfterValidator(_optional_known_geo)] = None
    revenue: float
