"""The sniff's decisions from measured profiles, the twin configured from them, and the rows it records."""
from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from weathervane.sniff import GAPS, LIVE, TWIN, ChannelProfile, Profile, decide, twin_config
from weathervane.sniff.decide import MIN_LIVE_DAYS
from weathervane.sniff.record import Sniff, read_sniff, write_sniff


def channel(name: str, spend: float = 50_000.0, weeks: int = 100, cv: float = 0.4, paused: int = 4,
            geo_cv: float = 0.3, lift: int = 0) -> ChannelProfile:
    return ChannelProfile(channel=name, platform="meta_ads" if name == "meta" else "google_ads", spend=spend,
                          first=date(2023, 1, 2), last=date(2024, 12, 29), weeks_with_spend=weeks,
                          weeks_paused=paused, weekly_cv=cv, geo_share_cv=geo_cv, geos=4, regional_share=1.0,
                          lift_tests=lift)


def rich_profile(days: int = 730, per_geo_day: float = 12.0, geos=("US-CA", "US-TX", "US-NY", "US-FL")) -> Profile:
    start = date(2023, 1, 1)
    p = Profile(tenant_id="shop", currency="EUR", timezone="UTC")
    p.sales_start, p.sales_end = start, start + timedelta(days=days - 1)
    p.sales_days = days
    p.orders = int(per_geo_day * days * len(geos))
    p.net_revenue = p.orders * 80.0
    p.geo_orders = {g: int(per_geo_day * days) for g in geos}
    p.category_orders = {"Apparel": p.orders // 2, "Footwear": p.orders // 2}
    p.median_orders_per_geo_day = per_geo_day
    p.median_orders_per_category_geo_week = per_geo_day * 7 / 2
    p.channels = {"meta": channel("meta"), "google_search": channel("google_search", spend=30_000.0)}
    p.spend_total = 80_000.0
    p.weather_geos = list(geos)
    p.weather_coverage = 1.0
    p.forecast_geos = list(geos)
    p.forecast_days = 28
    p.temperature_anomaly_sd = 6.0
    return p


def test_two_years_of_regional_data_run_live_at_all_by_region_weekly():
    d = decide(rich_profile())
    assert d.mode.value == LIVE
    assert (d.grain_product.value, d.grain_geo.value, d.period.value) == ("all", "region", "week")
    assert d.weather_interactions
    assert d.identifiable == ["meta", "google_search"]
    # each decision states why, with the numbers behind it
    assert "12.0 orders per cell-day" in d.period.reason and "daily needs 20" in d.period.reason
    assert "84 orders a week" in d.grain_geo.reason


def test_large_volume_supports_daily_periods_and_category_cells():
    d = decide(rich_profile(per_geo_day=60.0))
    assert d.period.value == "day"
    assert d.grain_product.value == "category"  # 60 * 7 / 2 = 210 orders per category cell-week


def test_short_history_degrades_to_a_synthetic_twin_with_the_reason():
    p = rich_profile(days=90)
    d = decide(p)
    assert d.mode.value == TWIN
    assert f"90 days of history (a live fit needs {MIN_LIVE_DAYS}" in d.mode.reason
    assert not d.weather_interactions


def test_constant_spend_is_not_identifiable_and_alone_forces_the_twin():
    p = rich_profile()
    p.channels = {"meta": channel("meta", cv=0.05, paused=0, geo_cv=0.05)}
    d = decide(p)
    assert d.channels[0].identifiable is False
    assert "nearly constant" in d.channels[0].reason and "geo holdout" in d.channels[0].reason
    assert d.mode.value == TWIN and "no channel whose spend moves" in d.mode.reason
    # a lift test is enough to identify it
    p.channels["meta"].lift_tests = 1
    assert decide(p).identifiable == ["meta"]


def test_tiny_channel_is_flagged_not_identifiable():
    p = rich_profile()
    p.channels["google_shopping"] = channel("google_shopping", spend=500.0)
    p.spend_total += 500.0
    verdict = {c.channel: c for c in decide(p).channels}["google_shopping"]
    assert not verdict.identifiable and "too small" in verdict.reason


def test_national_orders_or_spend_choose_country_cells():
    p = rich_profile()
    for c in p.channels.values():
        c.regional_share = 0.2
    d = decide(p)
    assert d.grain_geo.value == "country" and "20% of spend is reported per region" in d.grain_geo.reason


def test_missing_forecast_and_weather_gaps_mean_live_with_synthetic_gaps():
    p = rich_profile()
    p.forecast_geos = []
    p.weather_coverage = 0.6
    d = decide(p)
    assert d.mode.value == GAPS
    assert "observed weather (40% of region-days missing)" in d.mode.reason and "forecast" in d.mode.reason
    assert not d.weather_interactions
    assert any("no weather forecast files" in w for w in d.warnings)


def test_quarantined_files_become_warnings_naming_the_file():
    p = rich_profile()
    p.quarantined = [dict(file_path="shopify/orders/bad.jsonl", line=3, field="total_price", reason="not a number")]
    assert any("shopify/orders/bad.jsonl" in w and "not a number" in w for w in decide(p).warnings)


def test_twin_copies_scale_geos_and_channels_and_lists_what_it_cannot():
    p = rich_profile(days=60, per_geo_day=3.0, geos=("US-CA", "US-WA"))
    p.channels["tiktok"] = channel("tiktok", spend=1_000.0)
    p.lift_test_channels = {"google_search": 1}
    p.spend_total = 0.1 * p.net_revenue
    t = twin_config(p)
    assert t.tenant_id == "shop-twin"
    assert t.n_geos == 2 and t.channels == ["meta", "google_search"]
    assert t.lift_test_channels == ["google_search"]
    assert t.orders_per_geo_day == 8.0  # 3 per geo-day is below the twin's range
    assert t.media_share == pytest.approx(0.1)
    text = " ".join(t.differences)
    assert "tiktok" in text and "US-CA, US-TX" in text and "order volume 3.0" in text
    p.spend_total = p.net_revenue  # a brand spending all its revenue is outside what the twin simulates
    assert twin_config(p).media_share == 0.3


def test_sniff_rows_replace_the_tenants_previous_sniff(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema ops")
    p = rich_profile(days=90)
    from datetime import datetime

    first = Sniff("a1", datetime(2024, 1, 1), p, decide(p), twin_config(p))
    assert write_sniff(con, first) == len(first.rows())
    p2 = rich_profile()
    write_sniff(con, Sniff("b2", datetime(2024, 1, 2), p2, decide(p2), None))
    rows = read_sniff(con, "shop")
    assert set(rows["sniff_id"]) == {"b2"}
    mode = rows[(rows["kind"] == "decision") & (rows["name"] == "mode")]
    assert mode["value"].tolist() == [LIVE]
    assert rows[rows["kind"] == "twin"].empty
    assert read_sniff(con, "other").empty
