"""Pydantic models of the landing streams: the one source of truth for required fields and types.

JSON streams validate in strict mode (a string where the contract says int is an error); fields the contract
lets be "strings or numbers" use the `Money` / `IntLike` types below. CSV rows are all strings, so their
models validate in lax mode (numbers and dates are parsed from text).

What passes here must also pass dbt: numbers are finite and within the warehouse type they are cast to
(raw is append-only, so a record that breaks a mart could never be taken back); timestamps carry an offset
(a naive one would be read in the host's timezone); dates lie in a window around today, so one stray year
cannot stretch a tenant's calendar. Unknown fields are allowed: raw keeps
each record exactly as delivered, so they are never lost. The JSON Schemas in assets/schemas are exported
from these models (see `weathervane.landing.schemas`).
"""
from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, GetPydanticSchema, WithJsonSchema
from pydantic_core import core_schema

from weathervane import reference

NUMBER_PATTERN = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
INT_PATTERN = r"^[-+]?\d+$"
_NUMBER_RE = re.compile(NUMBER_PATTERN)
GOOGLE_GEO_PREFIX = "geoTargetConstants/"
# Warehouse ranges: ids and counts are cast to BIGINT, quantities and indexes to INTEGER.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Amounts beyond this are no money anyone spends or earns; sums of them would overflow to inf.
MAX_ABS_AMOUNT = 1e15
# Dates a record may carry: from this day to DATE_HORIZON_DAYS after today (forecasts and planned tests).
EARLIEST_DATE = date(2000, 1, 1)
DATE_HORIZON_DAYS = 400


def date_window() -> tuple[date, date]:
    return EARLIEST_DATE, datetime.now(UTC).date() + timedelta(days=DATE_HORIZON_DAYS)


def _in_window(value: date | datetime) -> date | datetime:
    day = value.astimezone(UTC).date() if isinstance(value, datetime) else value
    lo, hi = date_window()
    if not lo <= day <= hi:
        raise ValueError(f"date {day} lies outside {lo} .. {hi} (today + {DATE_HORIZON_DAYS} days)")
    return value


def _finite_amount(value: Any) -> Any:
    number = float(value)
    if not math.isfinite(number) or abs(number) > MAX_ABS_AMOUNT:
        raise ValueError(f"{value!r} is not a finite amount within +-{MAX_ABS_AMOUNT:g}")
    return value


def _int64(value: Any) -> Any:
    if not INT64_MIN <= int(value) <= INT64_MAX:
        raise ValueError(f"{value!r} is outside the 64-bit integer range")
    return value


def _union(name: str, message: str, *choices: core_schema.CoreSchema, json: dict) -> Any:
    """A type validated entirely in pydantic-core (fast), with one readable error instead of one per choice."""
    inner = choices[0] if len(choices) == 1 else core_schema.union_schema(list(choices), mode="left_to_right")
    schema = core_schema.custom_error_schema(inner, custom_error_type=name, custom_error_message=message)
    return Annotated[Any, GetPydanticSchema(lambda _t, _h: schema), WithJsonSchema(json)]


_INT = core_schema.int_schema(strict=True, ge=INT64_MIN, le=INT64_MAX)
_FLOAT = core_schema.float_schema(strict=True, allow_inf_nan=False)
_NUMERIC_STR = core_schema.str_schema(strict=True, pattern=NUMBER_PATTERN)
_INT_STR = core_schema.str_schema(strict=True, pattern=INT_PATTERN)
_ID_STR = core_schema.str_schema(strict=True, min_length=1)

# Amounts come as decimal strings from Shopify and Meta, as numbers from other exporters.
Money = Annotated[_union("money", "expected a number or a numeric string", _INT, _FLOAT, _NUMERIC_STR,
                         json={"anyOf": [{"type": "number"}, {"type": "string", "pattern": NUMBER_PATTERN}]}),
                  AfterValidator(_finite_amount)]
# Meta's spend is always a decimal string.
NumericString = Annotated[_union("numeric_string", "expected a numeric string", _NUMERIC_STR,
                                 json={"type": "string", "pattern": NUMBER_PATTERN}),
                          AfterValidator(_finite_amount)]
# Google Ads REST writes int64 as a JSON string; Meta writes counts as strings.
IntLike = Annotated[_union("int_like", "expected an integer or an integer string", _INT, _INT_STR,
                           json={"anyOf": [{"type": "integer"}, {"type": "string", "pattern": INT_PATTERN}]}),
                    AfterValidator(_int64)]
Identifier = _union("identifier", "expected an id (non-empty string or integer)", _INT, _ID_STR,
                    json={"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]})
# Integers by the warehouse type they are cast to.
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
# A calendar date or an instant (with offset) inside the accepted window.
Day = Annotated[date, AfterValidator(_in_window)]
Instant = Annotated[AwareDatetime, AfterValidator(_in_window)]


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

    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=False, allow_inf_nan=False)


class CsvRow(BaseModel):
    """A CSV landing row: every cell is text, numbers and dates are parsed from it."""

    model_config = ConfigDict(strict=False, extra="allow", allow_inf_nan=False)


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
    discount_application_index: Int32


class ShopifyLineItem(Record):
    id: Int64
    product_id: Int64 | None = None
    variant_id: Int64 | None = None
    sku: str | None = None
    quantity: Int32
    price: Money
    total_discount: Money | None = None
    discount_allocations: list[ShopifyDiscountAllocation] = Field(default_factory=list)


class ShopifyOrder(Record):
    id: Int64
    created_at: Instant
    updated_at: Instant
    cancelled_at: Instant | None = None
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
    id: Int64
    sku: str | None = None
    price: Money
    compare_at_price: Money | None = None


class ShopifyProduct(Record):
    id: Int64
    title: str
    product_type: str | None = None
    vendor: str | None = None
    tags: str | None = None
    status: str | None = None
    created_at: Instant
    updated_at: Instant
    variants: list[ShopifyVariant] = Field(default_factory=list)


class ShopifyPriceRule(Record):
    id: Int64
    title: str
    value: Money
    value_type: Literal["percentage", "fixed_amount"]
    target_type: str | None = None
    target_selection: Literal["all", "entitled"] | None = None
    allocation_method: str | None = None
    starts_at: Instant
    ends_at: AwareDatetime | None = None  # far-future ends are how some shops say "open ended"
    entitled_product_ids: list[Int64] = Field(default_factory=list)
    entitled_collection_ids: list[Int64] = Field(default_factory=list)
    created_at: Instant
    updated_at: Instant


class ShopifyDiscountCodeRecord(Record):
    id: Int64
    price_rule_id: Int64
    code: str
    usage_count: Int64 | None = None
    created_at: Instant
    updated_at: Instant


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
    date_start: Day
    date_stop: Day
    region: Annotated[str, AfterValidator(_known_meta_region), WithJsonSchema(_meta_region_schema())]
    spend: NumericString
    impressions: IntLike | None = None
    clicks: IntLike | None = None
    reach: IntLike | None = None
    actions: list[MetaAction] = Field(default_factory=list)
    action_values: list[MetaAction] = Field(default_factory=list)


class GoogleCampaignGeo(Record):
    segments_date: Day = Field(alias="segments.date")
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
    send_time: Instant | None = None
    created_at: Instant | None = None
    updated_at: Instant | None = None


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
    time: list[Day]
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
    started_at: Instant
    ended_at: Instant | None = None
    channels: list[str]
    geo_ids: list[Annotated[KnownGeo, WithJsonSchema(_geo_schema())]]
    description: str | None = None


class LiftTestRow(CsvRow):
    channel: str = Field(min_length=1)
    geo_id: Annotated[str | None, AfterValidator(_optional_known_geo)] = None
    start_date: Day
    end_date: Day
    spend_delta: float = Field(ge=-MAX_ABS_AMOUNT, le=MAX_ABS_AMOUNT)
    kpi_delta: float = Field(ge=-MAX_ABS_AMOUNT, le=MAX_ABS_AMOUNT)
    kpi_delta_sd: float = Field(ge=0, le=MAX_ABS_AMOUNT)


class MmmInputRow(CsvRow):
    """`date`, optional `geo_id`, `revenue`, `spend_<channel>` columns and numeric controls."""

    model_config = ConfigDict(
        strict=False,
        extra="allow",
        json_schema_extra={
            "additionalProperties": {"type": "string", "pattern": f"({NUMBER_PATTERN})|^$"},
        },
    )

    date: Day
    geo_id: Annotated[str | None, AfterValidator(_optional_known_geo)] = None
    revenue: float = Field(ge=-MAX_ABS_AMOUNT, le=MAX_ABS_AMOUNT)
