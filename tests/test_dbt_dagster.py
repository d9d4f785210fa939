"""The dbt assets in Dagster (one tenant partition, real dbt and DuckDB), the grain selector and the GX suites."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from weathervane import config, quality, warehouse
from weathervane.grain import GrainError, dbt_vars

from tests.conftest import ACME_EXAMPLE as ACME


def test_dbt_vars_take_tenant_yaml_grain_and_a_run_override():
    cfg = config.TenantConfig(timezone="America/Chicago", grain=config.Grain(product="category", geo="region"))
    assert dbt_vars("shop-1", cfg) == {"tenant_id": "shop-1", "timezone": "America/Chicago",
                                       "grain_product": "category", "grain_geo": "region",
                                       "allocation_window_days": 28}
    over = dbt_vars("shop-1", cfg, {"geo": "country"})
    assert (over["grain_product"], over["grain_geo"]) == ("category", "country")
    assert dbt_vars("shop-1", cfg, {"product": "product", "geo": None})["grain_product"] == "product"
    with pytest.raises(GrainError, match="field product"):
        dbt_vars("shop-1", cfg, {"product": "sku"})
    with pytest.raises(GrainError, match="unknown key"):
        dbt_vars("shop-1", cfg, {"region": "country"})
    with pytest.raises(config.InvalidTenantId):
        dbt_vars("x'; drop table raw.shopify__orders; --", cfg)


def test_quality_suites_fail_on_bad_marts():
    days = pd.date_range("2024-01-01", periods=10)
    model_input = pd.DataFrame({"period": "day", "product_key": "all", "geo_id": "US-CA", "date": days,
                                "kpi": 100.0, "spend_meta": 10.0, "spend_allocated_share": 0.0})
    assert quality.model_input_suite(model_input, "t1").success
    collapsed = model_input.assign(kpi=0.0)
    result = quality.model_input_suite(collapsed, "t1")
    assert not result.success and "kpi" in result.describe()
    gappy = pd.concat([model_input, model_input.assign(geo_id="US-TX").iloc[:5]])
    assert "cell_date_coverage" in quality.model_input_suite(gappy, "t1").describe()

    promo = pd.DataFrame({"promo_active": [0, 1], "promo_depth_pct": [0.0, 150.0],
                          "realized_discount_rate": [0.0, 0.2], "lifecycle_sends": [0, 10]})
    assert "promo_depth_pct" in quality.promotion_suite(promo, "t1").describe()
    assert quality.promotion_suite(promo.assign(promo_depth_pct=[0.0, 15.0]), "t1").success

    weather = pd.DataFrame({"temperature_2m_mean": [12.0, 71.0], "temperature_2m_max": [15.0, 72.0],
                            "precipitation_sum": [0.0, 3.0]})
    result = quality.weather_suite(weather, "t1")
    assert not result.success and "temperature_2m_mean" in result.describe()
    assert quality.weather_suite(weather.iloc[:1], "t1").success


@pytest.mark.heavy
def test_materialize_the_dbt_assets_for_one_tenant_partition(wv_env):
    from dagster_project.defs.marts import asset_checks, harmonize
    from dagster_project.resources import WeathervaneResource
    from weathervane.landing import ingest_tenant

    for tenant in ("acme", "other"):
        shutil.copytree(ACME, wv_env["landing"] / tenant)
    con = warehouse.connect(wv_env["warehouse"])
    warehouse.ensure_schemas(con)
    for tenant in ("acme", "other"):
        ingest_tenant(con, wv_env["landing"], tenant)
    con.close()

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["acme", "other"])
    result = materialize(
        [harmonize, *asset_checks],
        partition_key="acme",
        instance=instance,
        resources={"weathervane": WeathervaneResource()},
        run_config={"ops": {"harmonize": {"config": {"grain_geo": "country"}}}},
    )
    assert result.success
    materialized = {m.asset_key for m in result.get_asset_materialization_events() and
                    [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]}
    assert {AssetKey(["marts", "fct_model_input"]), AssetKey(["staging", "stg_shopify__orders"]),
            AssetKey(["reference", "geo_regions"])} <= materialized
    mats = {e.asset_key: e.event_specific_data.materialization.metadata
            for e in result.get_asset_materialization_events()}
    model_input = mats[AssetKey(["marts", "fct_model_input"])]
    # row counts and the column schema of each model reach the UI
    assert model_input["dagster/row_count"].value > 0
    columns = [c.name for c in model_input["dagster/column_schema"].value.columns]
    assert {"tenant_id", "kpi", "period"} <= set(columns)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert {"gx_model_input", "gx_promotions", "gx_weather"} <= set(checks)
    assert any(name.startswith("unique_combination_fct_model_input") for name in checks)
    assert any(name.startswith("klaviyo_offer_names") for name in checks)  # a dbt unit test
    assert all(checks.values()), {k: v for k, v in checks.items() if not v}

    con = duckdb.connect(str(wv_env["warehouse"]), read_only=True)
    try:
        rows = con.execute("select distinct tenant_id, grain_product, grain_geo, geo_id "
                           "from marts.fct_model_input").fetchall()
    finally:
        con.close()
    # the run config overrode tenant.yaml's region level; only the partition's tenant was built
    assert rows == [("acme", "category", "country", "US")]

    # A subset builds only what was selected; a model dbt fails on fails the step with dbt's message, after the
    # model that did build is recorded.
    con = duckdb.connect(str(wv_env["warehouse"]))
    con.execute("ALTER TABLE raw.weather__daily RENAME COLUMN geo_id TO geo")  # staging selects geo_id
    con.close()
    weather, orders = AssetKey(["staging", "stg_weather__daily"]), AssetKey(["staging", "stg_shopify__orders"])
    result = materialize([harmonize, *asset_checks], partition_key="acme", instance=instance,
                         resources={"weathervane": WeathervaneResource()}, selection=[weather, orders],
                         raise_on_error=False)
    assert not result.success
    assert {e.asset_key for e in result.get_asset_materialization_events()} == {orders}
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "staging.stg_weather__daily" in message and "geo_id" in message
    assert all(e.asset_key in (weather, orders) for e in result.get_asset_check_evaluations())
