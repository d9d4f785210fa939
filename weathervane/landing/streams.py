"""The registry of landing streams: where files live, how they are read, what a valid record is."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter

from weathervane.landing import models

Format = Literal["jsonl", "json", "csv"]

# A check beyond the model: (validated record, raw dict or None) -> [(field, message)].
RecordCheck = Callable[[Any], Iterable[tuple[str | None, str]]]


@dataclass(frozen=True)
class Stream:
    source: str
    stream: str
    format: Format
    model: type[BaseModel]
    primary_key: tuple[str, ...]
    description: str
    # jsonl streams also accept .jsonl.gz; weather files sit in one folder per geo_id.
    suffixes: tuple[str, ...] = ()
    geo_folders: bool = False
    required_columns: tuple[str, ...] = ()  # CSV only
    check: RecordCheck | None = None
    header_check: Callable[[list[str]], Iterable[tuple[str | None, str]]] | None = None  # CSV only
    # What one file may cost (bytes as delivered and once decompressed, one line, CSV columns): a file beyond
    # them is quarantined with the limit named, before it is parsed further.
    max_file_bytes: int = 256 << 20
    max_line_bytes: int = 8 << 20
    max_columns: int | None = None  # CSV only
    _adapter: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.source}__{self.stream}"

    @property
    def table(self) -> str:
        return f"raw.{self.key}"

    @property
    def folder(self) -> str:
        return f"{self.source}/{self.stream}"

    @property
    def glob(self) -> str:
        prefix = f"{self.folder}/<geo_id>/" if self.geo_folders else f"{self.folder}/"
        return " | ".join(f"{prefix}*{s}" for s in self.suffixes)

    def adapter(self) -> TypeAdapter:
        # Built lazily: schema building reads the reference data once per process.
        if "a" not in self._adapter:
            self._adapter["a"] = TypeAdapter(self.model)
        return self._adapter["a"]


def _weather_lengths(record: models.OpenMeteoResponse) -> Iterable[tuple[str | None, str]]:
    daily = record.daily
    n = len(daily.time)
    arrays = {name: getattr(daily, name) for name in type(daily).model_fields}
    arrays.update(daily.model_extra or {})
    for name, values in arrays.items():
        if name == "time" or not isinstance(values, list):
            continue
        if len(values) != n:
            yield f"daily.{name}", f"has {len(values)} values but daily.time has {n}"


def _lift_test_dates(row: models.LiftTestRow) -> Iterable[tuple[str | None, str]]:
    if row.end_date < row.start_date:
        yield "end_date", f"end_date {row.end_date} is before start_date {row.start_date}"


def _mmm_input_columns(row: models.MmmInputRow) -> Iterable[tuple[str | None, str]]:
    for name, value in (row.model_extra or {}).items():
        if value is None or value.strip() == "":
            continue  # a missing value
        if not models._NUMBER_RE.match(value):
            yield name, f"expected a number, got {value!r}"
            continue
        try:
            models._finite_amount(value)
        except ValueError as exc:
            yield name, str(exc)


def _mmm_input_header(header: list[str]) -> Iterable[tuple[str | None, str]]:
    if not any(h.startswith("spend_") and len(h) > len("spend_") for h in header):
        yield None, "no spend_<channel> column: at least one channel's spend is required"


JSONL = (".jsonl", ".jsonl.gz")

STREAMS: tuple[Stream, ...] = (
    Stream("shopify", "orders", "jsonl", models.ShopifyOrder, ("id",),
           "Shopify REST orders, one per line", JSONL),
    Stream("shopify", "products", "jsonl", models.ShopifyProduct, ("id",),
           "Shopify REST products with variants", JSONL),
    Stream("shopify", "price_rules", "jsonl", models.ShopifyPriceRule, ("id",),
           "Shopify price rules (discount definitions)", JSONL),
    Stream("shopify", "discount_codes", "jsonl", models.ShopifyDiscountCodeRecord, ("id",),
           "Shopify discount codes of price rules", JSONL),
    Stream("meta_ads", "ads_insights_region", "jsonl", models.MetaInsightRegion,
           # campaign_id: rows without an ad set (campaign-level exports) are told apart by their campaign
           ("campaign_id", "adset_id", "date_start", "region"),
           "Meta insights, region breakdown, one row per ad set x day x region", JSONL),
    Stream("google_ads", "campaign_geo", "jsonl", models.GoogleCampaignGeo,
           ("campaign.id", "segments.date", "segments.geo_target_region"),
           "Google Ads geographic_view rows (GAQL, dotted keys)", JSONL),
    Stream("klaviyo", "campaigns", "jsonl", models.KlaviyoCampaign, ("id",),
           "Klaviyo campaign objects", JSONL),
    Stream("klaviyo", "campaign_values", "jsonl", models.KlaviyoCampaignValues,
           ("groupings.campaign_id", "groupings.send_channel"),
           "Klaviyo Reporting API campaign-values results", JSONL),
    Stream("weather", "daily", "json", models.OpenMeteoResponse, ("geo_id", "daily.time"),
           "Observed daily weather, one Open-Meteo response per file, geo from the folder name",
           (".json", ".json.gz"), geo_folders=True, check=_weather_lengths,
           # a century of daily values is a few MB
           max_file_bytes=32 << 20, max_line_bytes=32 << 20),
    Stream("weather", "forecast", "json", models.OpenMeteoResponse, ("geo_id", "daily.time"),
           "Daily weather forecast for the planning horizon (same shape as daily)",
           (".json", ".json.gz"), geo_folders=True, check=_weather_lengths,
           max_file_bytes=32 << 20, max_line_bytes=32 << 20),
    Stream("autopilot", "deployments", "jsonl", models.AutopilotDeployment, ("deployment_id",),
           "Automated budget changes that went live", JSONL),
    Stream("experiments", "lift_tests", "csv", models.LiftTestRow,
           ("channel", "geo_id", "start_date", "end_date"),
           "Geo / holdout lift test results", (".csv",),
           required_columns=("channel", "start_date", "end_date", "spend_delta", "kpi_delta", "kpi_delta_sd"),
           check=_lift_test_dates, max_file_bytes=16 << 20, max_line_bytes=64 << 10, max_columns=64),
    # one spend column per channel and a few controls: hundreds of columns at most, not a million
    Stream("aggregated", "mmm_input", "csv", models.MmmInputRow, ("date", "geo_id"),
           "A pre-aggregated MMM table instead of raw connectors", (".csv",),
           required_columns=("date", "revenue"), check=_mmm_input_columns, header_check=_mmm_input_header,
           max_file_bytes=64 << 20, max_line_bytes=256 << 10, max_columns=512),
)

_BY_KEY = {(s.source, s.stream): s for s in STREAMS}


class UnknownStream(ValueError):
    pass


def get_stream(source: str, stream: str) -> Stream:
    try:
        return _BY_KEY[(source, stream)]
    except KeyError:
        known = ", ".join(f"{s.source}/{s.stream}" for s in STREAMS)
        raise UnknownStream(f"unknown landing stream {source!r}/{stream!r}; known: {known}") from None
