"""The dbt assets in Dagster (two tenant-partitioned dagster-dbt steps around the dataset sniff, real dbt and
DuckDB): the spec's grain, per-tenant dbt checks, and the GX suites."""
from __future__ import annotations

import json
import shutil

import duckdb
import pandas as pd
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, materialize

from weathervane import config, quality, warehouse
from weathervane.spec import SpecError, default_spec, write_spec

from tests.conftest import ACME_EXAMPLE as ACME

MODEL_INPUT = AssetKey(["marts", "fct_model_input"])
NEGATIVE_META_SPEND = AssetCheckKey(AssetKey(["staging", "stg_meta_ads__ads_insights_region"]),
                                    "non_negative_stg_meta_ads__ads_insights_region_spend")


def _landed(wv_env, tenants) -> None:
    for tenant in tenants:
        shutil.copytree(ACME, wv_env["landing"] / tenant)
    from weathervane.landing import ingest_tenant

    con = warehouse.connect(wv_env["warehouse"])
    warehouse.ensure_schemas(con)
    for tenant in tenants:
        ingest_tenant(con, wv_env["landing"], tenant)
    con.close()


def _resources() -> dict:
    from dagster_project.defs import marts
    from dagster_project.resources import WeathervaneResource

    return {"weathervane": WeathervaneResource(), **marts.resources}


def _query(wv_env, sql: str):
    con = duckdb.connect(str(wv_env["warehouse"]), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_dbt_vars_come_from_the_tenants_spec_with_the_run_config_on_top(wv_env):
    from dagster_project.defs.marts import _dbt_vars
    from dagster_project.resources import WeathervaneResource

    (wv_env["landing"] / "shop-1").mkdir()
    (wv_env["landing"] / "shop-1" / "tenant.yaml").write_text(
        "timezone: America/Chicago\ngrain: {product: category, geo: region}\n")
    resource = WeathervaneResource()
    assert _dbt_vars(resource, "shop-1") == {"tenant_id": "shop-1", "timezone": "America/Chicago",
                                             "grain_product": "category", "grain_geo": "region",
                                             "allocation_window_days": 28}
    # the spec the sniff decided wins over the defaults; the run config wins over the spec; None is no override
    spec = default_spec("shop-1", config.TenantConfig())
    spec.grain_product, spec.grain_geo = "all", "country"
    con = warehouse.connect(wv_env["warehouse"])
    write_spec(con, spec)
    con.close()
    assert (_dbt_vars(resource, "shop-1")["grain_product"], _dbt_vars(resource, "shop-1")["grain_geo"]) == \
        ("all", "country")
    over = _dbt_vars(resource, "shop-1", {"grain_product": None, "grain_geo": "region"})
    assert (over["grain_product"], over["grain_geo"]) == ("all", "region")
    with pytest.raises(SpecError, match="grain_product"):
        _dbt_vars(resource, "shop-1", {"grain_product": "sku"})
    with pytest.raises(config.InvalidTenantId):
        _dbt_vars(resource, "x'; drop table raw.shopify__orders; --")


def test_the_grain_models_are_built_after_the_sniff_and_the_rest_before_it():
    """Every model that reads the grain vars (or a macro that does), and whatever reads those, is in the step
    after the sniff; the sniff reads only models of the step before it."""
    from dagster_project.defs.marts import MANIFEST, harmonize, harmonize_model_input, translator
    from dagster_project.defs.sniff import SNIFF_DEPS, SNIFF_KEY

    manifest = json.loads(MANIFEST.read_text())
    macros = manifest["macros"]
    grain_macros = {uid for uid, m in macros.items() if "var('grain_" in m["macro_sql"]}
    while True:  # macros that call them
        more = {uid for uid, m in macros.items() if set(m["depends_on"]["macros"]) & grain_macros} - grain_macros
        if not more:
            break
        grain_macros |= more
    models = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    direct = {uid for uid, n in models.items()
              if set(n["depends_on"]["macros"]) & grain_macros or "var('grain_" in n["raw_code"]}
    grain_keys = {translator.get_asset_key(models[uid]) for uid in direct}
    assert {AssetKey(["marts", "fct_sales_daily"]), AssetKey(["marts", "fct_weather_daily"])} <= grain_keys
    assert grain_keys <= set(harmonize_model_input.keys)
    assert MODEL_INPUT in harmonize_model_input.keys
    assert not set(harmonize.keys) & set(harmonize_model_input.keys)
    # downstream of a grain model is the later step too
    for key in harmonize.keys:
        assert not any(dep.asset_key in harmonize_model_input.keys for dep in harmonize.specs_by_key[key].deps), key
    assert {k for k in SNIFF_DEPS if k.path[0] != "raw"} <= set(harmonize.keys)
    for key in grain_keys:
        assert SNIFF_KEY in {dep.asset_key for dep in harmonize_model_input.specs_by_key[key].deps}, key


def test_a_dbt_project_that_does_not_parse_keeps_the_last_manifest(monkeypatch, tmp_path):
    """The code location still loads when a dbt file was edited into something dbt cannot parse."""
    from dagster_project.defs import marts

    def broken():
        raise RuntimeError("dbt parse failed for dbt/: Compilation Error in model fct_sales_daily")

    monkeypatch.setattr(marts, "_manifest_stale", lambda: True)
    monkeypatch.setattr(marts, "_parse_manifest", broken)
    assert marts.prepared_manifest() == marts.dbt_project.manifest_path
    monkeypatch.setattr(marts, "dbt_project", marts.DbtProject(marts.DBT_PROJECT_DIR,
                                                               target_path=str(tmp_path / "never-parsed")))
    with pytest.raises(RuntimeError, match="Compilation Error"):  # nothing to keep: dbt's message
        marts.prepared_manifest()


def test_the_manifest_is_checked_only_while_no_other_process_parses_it(tmp_path):
    """A step server preloading the code location waits while another process parses the project into the same
    folder (dbt writes the manifest in place): prepared_manifest returns only after the holder released the lock."""
    import subprocess
    import sys
    import time

    from dagster_project.defs import marts

    log = tmp_path / "order"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time, sys\n"
        "from dagster_project.defs import marts\n"
        "with marts._manifest_lock():\n"
        f"    open({str(log)!r}, 'a').write('held\\n'); time.sleep(2)\n"
        f"    open({str(log)!r}, 'a').write('released\\n')\n")])
    deadline = time.monotonic() + 60
    while not (log.exists() and "held" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marts.prepared_manifest() == marts.dbt_project.manifest_path
    with log.open("a") as f:
        f.write("checked\n")
    assert holder.wait(timeout=60) == 0
    assert log.read_text().split() == ["held", "released", "checked"]


def test_every_dbt_test_is_a_check_per_tenant():
    from dagster_project.defs.marts import asset_checks, harmonize, harmonize_model_input
    from dagster_project.partitions import tenant_partitions

    specs = [*harmonize.check_specs, *harmonize_model_input.check_specs, *(s for c in asset_checks
                                                                              for s in c.check_specs)]
    assert len(specs) >= 53 + 3
    assert all(spec.partitions_def == tenant_partitions for spec in specs), \
        [spec.key for spec in specs if spec.partitions_def != tenant_partitions]


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
    from dagster_project.defs.marts import asset_checks, assets

    _landed(wv_env, ("acme", "other"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["acme", "other"])
    result = materialize(
        [*assets, *asset_checks],
        partition_key="acme",
        instance=instance,
        resources=_resources(),
        run_config={"ops": {"harmonize_model_input": {"config": {"grain_geo": "country"}}}},
    )
    assert result.success
    mats = {e.asset_key: e.event_specific_data.materialization.metadata
            for e in result.get_asset_materialization_events()}
    built = {MODEL_INPUT, AssetKey(["staging", "stg_shopify__orders"]), AssetKey(["reference", "geo_regions"])}
    assert built <= set(mats)
    model_input = mats[MODEL_INPUT]
    # row counts (this tenant's rows) and the column schema of each model reach the UI
    assert model_input["dagster/row_count"].value == _query(
        wv_env, "select count(*) from marts.fct_model_input where tenant_id = 'acme'")[0][0] > 0
    columns = [c.name for c in model_input["dagster/column_schema"].value.columns]
    assert {"tenant_id", "kpi", "period"} <= set(columns)
    evaluations = result.get_asset_check_evaluations()
    checks = {e.check_name: e.passed for e in evaluations}
    assert {"gx_model_input", "gx_promotions", "gx_weather"} <= set(checks)
    assert any(name.startswith("unique_combination_fct_model_input") for name in checks)
    assert any(name.startswith("klaviyo_offer_names") for name in checks)  # a dbt unit test
    assert all(checks.values()), {k: v for k, v in checks.items() if not v}
    assert {e.partition for e in evaluations} == {"acme"}

    rows = _query(wv_env, "select distinct tenant_id, grain_product, grain_geo, geo_id from marts.fct_model_input")
    # the run config overrode tenant.yaml's region level; only the partition's tenant was built
    assert rows == [("acme", "category", "country", "US")]

    # A subset builds only what was selected; a model dbt fails on fails the step with dbt's message, after the
    # model that did build is recorded.
    con = duckdb.connect(str(wv_env["warehouse"]))
    con.execute("ALTER TABLE raw.weather__daily RENAME COLUMN geo_id TO geo")  # staging selects geo_id
    con.close()
    weather, orders = AssetKey(["staging", "stg_weather__daily"]), AssetKey(["staging", "stg_shopify__orders"])
    result = materialize([*assets, *asset_checks], partition_key="acme", instance=instance,
                         resources=_resources(), selection=[weather, orders], raise_on_error=False)
    assert not result.success
    assert {e.asset_key for e in result.get_asset_materialization_events()} == {orders}
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "staging.stg_weather__daily" in message and "geo_id" in message
    assert all(e.asset_key in (weather, orders) for e in result.get_asset_check_evaluations())


@pytest.mark.heavy
def test_a_failing_dbt_test_fails_its_check_for_that_tenant_only(wv_env):
    """A dbt test that fails shows dbt's message on the check of the tenant whose rows fail it; the other
    tenant's result of the same check stays passed beside it."""
    from dagster_project.defs.marts import harmonize

    _landed(wv_env, ("acme", "other"))
    con = warehouse.connect(wv_env["warehouse"])
    con.execute("""UPDATE raw.meta_ads__ads_insights_region SET record = json_merge_patch(record, '{"spend": "-5.00"}')
                   WHERE tenant_id = 'other'""")
    con.close()
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["acme", "other"])
    good = materialize([harmonize], partition_key="acme", instance=instance, resources=_resources())
    assert good.success
    bad = materialize([harmonize], partition_key="other", instance=instance, resources=_resources(),
                      raise_on_error=False)
    assert not bad.success  # the check is blocking: what reads negative spend is not built
    failed = [e for e in bad.get_asset_check_evaluations() if not e.passed]
    assert [(e.asset_check_key, e.partition) for e in failed] == [(NEGATIVE_META_SPEND, "other")]
    assert failed[0].description.startswith("other: Got ") and "fail if != 0" in failed[0].description
    assert failed[0].metadata["dagster_dbt/failed_row_count"].value > 0

    history = instance.event_log_storage.get_asset_check_execution_history(NEGATIVE_META_SPEND, limit=10)
    by_tenant = {r.event.dagster_event.asset_check_evaluation_data.partition:
                 r.event.dagster_event.asset_check_evaluation_data.passed for r in history}
    assert by_tenant == {"acme": True, "other": False}


@pytest.mark.heavy
def test_the_model_input_step_runs_after_the_sniff_at_the_specs_grain(wv_env):
    from dagster_project.defs.marts import assets, harmonize_model_input
    from dagster_project.defs.sniff import dataset_sniff

    _landed(wv_env, ("acme",))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["acme"])
    result = materialize([*assets, dataset_sniff], partition_key="acme", instance=instance, resources=_resources())
    assert result.success
    started = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    assert started.index("ops__dataset_sniff") < started.index("harmonize_model_input")

    # a spec of all products x countries (tenant.yaml pins category x region, which the spec overrules)
    spec = default_spec("acme", config.load_tenant_config(wv_env["landing"], "acme"))
    spec.grain_product, spec.grain_geo = "all", "country"
    con = warehouse.connect(wv_env["warehouse"])
    write_spec(con, spec)
    con.close()
    assert materialize([harmonize_model_input], partition_key="acme", instance=instance,
                       resources=_resources()).success
    assert _query(wv_env, "select distinct grain_product, grain_geo, geo_id from marts.fct_model_input "
                          "where tenant_id = 'acme'") == [("all", "country", "US")]
