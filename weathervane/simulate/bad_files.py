"""Deliberately bad extracts (scenario `bad_files`): each in its own file, each listed with file, line and field.

Every bad file also holds well-formed records, so a loader that half-loads a file shows up in the totals.
Their records never collide with the good files' primary keys.
"""
from __future__ import annotations

from datetime import date

from weathervane.simulate.truth import BadFile
from weathervane.simulate.weather import open_meteo_response

BAD_ORDER_ID_BASE = 9_900_000_000_000


def _order(i: int, d: date, geo) -> dict:
    address = {"province_code": geo.province_code, "province": geo.name, "country_code": "US",
               "country": "United States", "zip": geo.zips[0]}
    stamp = f"{d.isoformat()}T12:00:00-05:00"
    return {
        "id": BAD_ORDER_ID_BASE + i, "name": f"#B{i}", "created_at": stamp, "updated_at": stamp,
        "cancelled_at": None, "test": False, "currency": "USD", "financial_status": "paid",
        "total_price": "40.00", "subtotal_price": "40.00", "total_line_items_price": "40.00",
        "total_discounts": "0.00", "discount_codes": [], "discount_applications": [],
        "line_items": [{"id": BAD_ORDER_ID_BASE + 100 + i, "product_id": 7_900_000_000_000,
                        "variant_id": 44_100_000_000_000, "sku": "CLATEE-S", "quantity": 1, "price": "40.00",
                        "total_discount": "0.00", "discount_allocations": []}],
        "shipping_address": address, "billing_address": address,
    }


def _meta(d: date, region: str, spend: str) -> dict:
    ds = d.isoformat()
    return {"account_id": "1234567890", "campaign_id": "23851000001", "campaign_name": "Prospecting - Broad Audiences",
            "adset_id": "23851000101", "adset_name": "Broad US 25-54", "date_start": ds, "date_stop": ds,
            "region": region, "spend": spend, "impressions": "4100", "clicks": "52", "reach": "3300",
            "actions": [], "action_values": []}


def _google(d: date, criterion: int) -> dict:
    return {"segments.date": d.isoformat(), "campaign.id": "17100000002", "campaign.name": "Search - Generic",
            "campaign.advertising_channel_type": "SEARCH", "segments.geo_target_region": f"geoTargetConstants/{criterion}",
            "metrics.cost_micros": "55000000", "metrics.impressions": "1900", "metrics.clicks": "110",
            "metrics.conversions": 2.0, "metrics.conversions_value": 150.0}


def write_bad_files(writer, geos, dates: list[date], all_dates: list[date], weather, dumps) -> list[BadFile]:
    g0 = geos[0]
    d = dates[len(dates) // 2]
    bad: list[BadFile] = []

    rel = "shopify/orders/bad-unparseable.jsonl"
    good1, good2 = dumps(_order(1, d, g0)), dumps(_order(2, d, g0))
    writer.lines(rel, [good1, good2[: len(good2) // 2], dumps(_order(3, d, g0))])
    bad.append(BadFile(file_path=rel, line=2, field=None, reason="line 2 is not valid JSON (truncated record)"))

    rel = "shopify/orders/bad-missing-field.jsonl"
    missing = _order(5, d, g0)
    del missing["id"]
    writer.lines(rel, [dumps(_order(4, d, g0)), dumps(missing)])
    bad.append(BadFile(file_path=rel, line=2, field="id", reason="required field id (the primary key) is missing"))

    rel = "shopify/orders/bad-wrong-type.jsonl"
    wrong = _order(7, d, g0)
    wrong["line_items"] = "1 x CLATEE-S"
    writer.lines(rel, [dumps(_order(6, d, g0)), dumps(wrong)])
    bad.append(BadFile(file_path=rel, line=2, field="line_items", reason="line_items must be a list, got a string"))

    rel = "meta_ads/ads_insights_region/bad-spend.jsonl"
    writer.lines(rel, [dumps(_meta(d, g0.meta_region_name, "31.50")), dumps(_meta(d, g0.meta_region_name, "12,3x"))])
    bad.append(BadFile(file_path=rel, line=2, field="spend", reason="spend '12,3x' is not a numeric string"))

    rel = "meta_ads/ads_insights_region/bad-region.jsonl"
    writer.lines(rel, [dumps(_meta(d, g0.meta_region_name, "20.00")), dumps(_meta(d, "Atlantis", "18.40"))])
    bad.append(BadFile(file_path=rel, line=2, field="region",
                       reason="Meta region 'Atlantis' maps to no geo in the reference table"))

    rel = "google_ads/campaign_geo/bad-geo.jsonl"
    writer.lines(rel, [dumps(_google(d, g0.google_criterion_id)), dumps(_google(d, 99999999))])
    bad.append(BadFile(file_path=rel, line=2, field="segments.geo_target_region",
                       reason="geoTargetConstants/99999999 is not a known Google geo target"))

    rel = f"weather/daily/{g0.geo_id}/bad-length.json"
    i0 = dates.index(d)
    response = open_meteo_response(g0, all_dates, weather[0], slice(i0, i0 + 7))
    response["daily"]["temperature_2m_mean"] = response["daily"]["temperature_2m_mean"][:-1]
    writer.text(rel, dumps(response) + "\n")
    bad.append(BadFile(file_path=rel, line=1, field="daily.temperature_2m_mean",
                       reason="daily.temperature_2m_mean has 6 values but daily.time has 7"))
    return bad
