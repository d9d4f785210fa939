"""Geo reference table: complete, unique, and consistent with the landing contract's ids."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from weathervane import reference

CONTRACT_GOOGLE_IDS = {"US-CA": 21137, "US-TX": 21176, "US-NY": 21167, "US-FL": 21142, "US-IL": 21147,
                       "US-WA": 21180}


def test_fifty_states_plus_dc_and_the_country():
    rows = reference.geo_regions()
    regions = [g for g in rows if not g.is_country]
    assert len(regions) == 51
    assert {g.geo_id for g in regions} >= {"US-DC", "US-AK", "US-HI", "US-WY"}
    assert all(g.geo_id == f"US-{g.region_code}" and len(g.region_code) == 2 for g in regions)
    country = [g for g in rows if g.is_country]
    assert [(g.geo_id, g.google_criterion_id, g.meta_region_name) for g in country] == [("US", 2840, None)]


def test_ids_and_names_are_unique():
    rows = reference.geo_regions()
    for attr in ("geo_id", "name", "google_criterion_id"):
        values = [getattr(g, attr) for g in rows]
        assert len(values) == len(set(values)), attr
    metas = [g.meta_region_name for g in rows if g.meta_region_name]
    assert len(metas) == 51 == len(set(metas))


def test_contract_google_ids_and_meta_names():
    to_geo = reference.google_criterion_to_geo()
    for geo, criterion in CONTRACT_GOOGLE_IDS.items():
        assert to_geo[criterion] == geo
    assert reference.meta_region_to_geo()["California"] == "US-CA"
    assert reference.meta_region_to_geo()["Washington, District of Columbia"] == "US-DC"
    assert reference.meta_region_to_geo()["Washington"] == "US-WA"


def test_every_row_has_a_real_timezone_and_a_us_position():
    for g in reference.geo_regions():
        ZoneInfo(g.timezone)
        assert 18 < g.latitude < 72 and -180 < g.longitude < -66, g.geo_id
