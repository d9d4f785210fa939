"""dbt on hostile raw data: a key crafted as SQL is never pasted into a mart, and Meta rows without an ad set
keep all their spend."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.test_dbt_marts import Env
from weathervane import warehouse
from weathervane.landing import ensure_raw_tables

TENANT = "evil"
# Three campaigns' campaign-level rows (no adset_id) on the same day and region.
META_ROWS = [("23850000001", "350.00"), ("23850000002", "5.00"), ("23850000003", "2.00")]
# A key that, pasted into `record->>'<key>'`, closes the literal and selects a host file into the mart.
HOSTILE_KEY = ("spend_a' as double), 0) as spend_a, (select content from read_text('/etc/hostname')) as leaked, "
               "coalesce(try_cast(record->>'spend_a")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    e = Env(tmp_path_factory.mktemp("hardening_dbt"))
    meta = e.landing / TENANT / "meta_ads" / "ads_insights_region" / "campaigns.jsonl"
    meta.parent.mkdir(parents=True)
    meta.write_text("".join(json.dumps({
        "account_id": "1234567890", "campaign_id": cid, "campaign_name": f"Campaign {cid[-1]}",
        "date_start": "2024-05-06", "date_stop": "2024-05-06", "region": "California", "spend": spend,
        "impressions": "1000", "clicks": "10", "actions": [{"action_type": "purchase", "value": "1"}],
        "action_values": [{"action_type": "purchase", "value": "50.0"}],
    }) + "\n" for cid, spend in META_ROWS))
    e.ingest(TENANT)
    # Aggregated rows as they could have been loaded before ingest checked column names.
    con = warehouse.connect(e.warehouse)
    try:
        ensure_raw_tables(con)
        for i, day in enumerate(["2024-05-06", "2024-05-13"]):
            record = {"date": day, "geo_id": "US-CA", "revenue": "1000", "spend_meta": "10",
                      "Spend_Meta": "", HOSTILE_KEY: "1"}
            con.execute("insert into raw.aggregated__mmm_input values (?, 'aggregated/mmm_input/old.csv', 'h', ?, "
                        "?, null, ?::JSON)", [TENANT, i + 2, datetime(2024, 5, 20), json.dumps(record)])
    finally:
        con.close()
    # only what the aggregated path of fct_model_input and the ad spend mart read
    e.dbt(TENANT, "seed", select="geo_regions us_holidays")
    e.dbt(TENANT, "run", select="stg_meta_ads__ads_insights_region stg_meta_ads__actions stg_google_ads__campaign_geo "
                                "stg_ops__tenant_channel_rules int_ad_spend_daily fct_ad_spend_daily "
                                "stg_shopify__orders stg_aggregated__mmm_input fct_model_input")
    return e


def test_meta_rows_without_an_ad_set_keep_all_their_spend(env):
    landed = sum(float(s) for _, s in META_ROWS)
    (staged,) = env.query("select sum(spend) from staging.stg_meta_ads__ads_insights_region where tenant_id = ?",
                          [TENANT])[0]
    (mart,) = env.query("select sum(spend) from marts.fct_ad_spend_daily where tenant_id = ?", [TENANT])[0]
    assert staged == pytest.approx(landed) and mart == pytest.approx(landed)
    actions = env.query("select count(*), sum(action_value) from staging.stg_meta_ads__actions where tenant_id = ?",
                        [TENANT])[0]
    assert actions == (3, pytest.approx(150.0))


def test_a_hostile_key_in_raw_is_not_pasted_into_the_mart(env):
    columns = [r[0] for r in env.query(
        "select column_name from information_schema.columns where table_schema = 'marts' "
        "and table_name = 'fct_model_input'")]
    assert "leaked" not in columns
    assert [c for c in columns if c.startswith("spend_") and c != "spend_allocated_share"] == ["spend_meta"]
    rows = env.query("select date, kpi, spend_meta from marts.fct_model_input where tenant_id = ? order by date",
                     [TENANT])
    assert [(str(d), k, s) for d, k, s in rows] == [("2024-05-06", 1000.0, 10.0), ("2024-05-13", 1000.0, 10.0)]
    compiled = next(Path(env.target).rglob("fct_model_input.sql")).read_text()
    assert "read_text" not in compiled and "/etc/hostname" not in compiled
