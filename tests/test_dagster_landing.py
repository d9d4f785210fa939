"""The code location on a real Dagster instance: ingest assets, the landing sensor and the weekly schedule."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone

import duckdb
import pytest
from dagster import (
    DagsterInstance,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from dagster_project.defs import ingest
from dagster_project.resources import WeathervaneResource
from dagster_project.schedules import weekly_refresh
from dagster_project.sensors import landing_sensor
from tests.conftest import ACME_EXAMPLE
from weathervane.landing import STREAMS, ingest_tenant, landing_files
from weathervane.warehouse import ensure_schemas
from weathervane.simulate import simulate_tenant


def _count_records(tenant_dir, stream) -> int:
    """Records the simulator wrote for one stream, counted independently of the loader."""
    import csv
    import gzip

    total = 0
    for path in sorted((tenant_dir / stream.folder).rglob("*")):
        if not path.is_file():
            continue
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        text = data.decode()
        if path.suffix == ".csv":
            total += sum(1 for _ in csv.DictReader(text.splitlines()))
        elif stream.folder.startswith("weather/"):
            total += 1
        else:
            total += sum(1 for line in text.splitlines() if line.strip())
    return total


@pytest.fixture(scope="module")
def small_tenant(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    simulate_tenant("shop-a", root, scenario="standard", seed=3, days=60, n_geos=2, orders_per_geo_day=3.0)
    return root


def _ingest(instance, resource, tenant):
    return materialize(
        ingest.assets, partition_key=tenant, instance=instance, resources={"weathervane": resource},
        raise_on_error=False,
    )


def test_materialize_ingests_every_stream_and_reingest_changes_nothing(small_tenant, tmp_path):
    resource = WeathervaneResource(landing_root=str(small_tenant), warehouse_path=str(tmp_path / "wh.duckdb"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["shop-a"])

    first = _ingest(instance, resource, "shop-a")
    assert first.success
    checks = [e for e in first.get_asset_check_evaluations()]
    assert checks and all(c.passed for c in checks)

    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    expected = {s.table: _count_records(small_tenant / "shop-a", s) for s in STREAMS}
    counts = {t: con.execute(f"select count(*) from {t} where tenant_id = 'shop-a'").fetchone()[0] for t in expected}
    files_before = con.execute("select count(*) from ops.loaded_files").fetchone()[0]
    con.close()
    assert counts == expected
    assert expected["raw.shopify__orders"] > 100 and expected["raw.meta_ads__ads_insights_region"] > 0

    second = _ingest(instance, resource, "shop-a")
    assert second.success
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    again = {t: con.execute(f"select count(*) from {t} where tenant_id = 'shop-a'").fetchone()[0] for t in expected}
    assert again == counts
    assert con.execute("select count(*) from ops.loaded_files").fetchone()[0] == files_before
    con.close()


def test_bad_file_fails_its_check_and_the_rest_loads(tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(ACME_EXAMPLE, landing / "acme")
    bad = landing / "acme" / "meta_ads" / "ads_insights_region" / "2024-06-04.jsonl"
    bad.write_text('{"account_id": "1", "campaign_id": "2", "date_start": "2024-06-04"\n')
    resource = WeathervaneResource(landing_root=str(landing), warehouse_path=str(tmp_path / "wh.duckdb"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["acme"])

    result = _ingest(instance, resource, "acme")
    evaluations = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["meta_ads__ads_insights_region"].passed
    assert all(e.passed for k, e in evaluations.items() if k != "meta_ads__ads_insights_region")
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    assert con.execute("select count(*) from raw.meta_ads__ads_insights_region").fetchone()[0] == 2
    assert con.execute("select count(*) from raw.shopify__orders").fetchone()[0] > 0
    row = con.execute("select file_path, line from ops.quarantined_files").fetchall()
    assert row == [("meta_ads/ads_insights_region/2024-06-04.jsonl", 1)]


def test_sensor_new_tenant_and_new_file_each_trigger_exactly_one_run(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    landing.mkdir()
    warehouse = tmp_path / "wh.duckdb"
    monkeypatch.setenv("WEATHERVANE_LANDING", str(landing))
    monkeypatch.setenv("WEATHERVANE_WAREHOUSE", str(warehouse))
    instance = DagsterInstance.ephemeral()

    def tick(cursor):
        return landing_sensor(build_sensor_context(instance=instance, cursor=cursor))

    def ingest(tenant):
        con = duckdb.connect(str(warehouse))
        ensure_schemas(con)
        ingest_tenant(con, landing, tenant)
        con.close()

    empty = tick(None)
    assert not empty.run_requests and not empty.dynamic_partitions_requests

    shutil.copytree(ACME_EXAMPLE, landing / "acme")
    (landing / "Not_A_Tenant").mkdir()
    first = tick(empty.cursor)
    assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["acme"]]
    assert [r.partition_key for r in first.run_requests] == ["acme"]
    assert len(json.dumps(first.cursor)) < 200  # one fingerprint per tenant, not a row per file
    ingest("acme")  # what the requested run does

    quiet = tick(first.cursor)
    assert not quiet.run_requests and not quiet.dynamic_partitions_requests

    extra = landing / "acme" / "shopify" / "orders" / "2024-06-10.jsonl"
    extra.write_text((ACME_EXAMPLE / "shopify" / "orders" / "2024-06-03.jsonl").read_text().replace("5712340001", "5712349999"))
    new_file = tick(quiet.cursor)
    assert [r.partition_key for r in new_file.run_requests] == ["acme"]
    assert not new_file.dynamic_partitions_requests
    assert new_file.run_requests[0].run_key != first.run_requests[0].run_key
    # only the orders stream and what reads it rerun: the sniff reads orders, and every model built at the grain
    # it decides (weather too) follows it
    selected = {k.to_user_string() for k in new_file.run_requests[0].asset_selection}
    assert first.run_requests[0].asset_selection is None
    assert {"raw/shopify__orders", "marts/fct_sales_daily", "ops/dataset_sniff", "marts/fct_weather_daily"} <= selected
    assert not {"raw/meta_ads__ads_insights_region", "raw/weather__daily", "staging/stg_weather__daily"} & selected
    assert not any(k.startswith(("mmm/", "decisions/")) for k in selected)

    shutil.copytree(ACME_EXAMPLE, landing / "beta")
    second_tenant = tick(new_file.cursor)
    assert [r.partition_keys for r in second_tenant.dynamic_partitions_requests] == [["beta"]]
    assert [r.partition_key for r in second_tenant.run_requests] == ["beta"]
    assert len(list(landing_files(landing, "beta"))) == len(list(landing_files(landing, "acme"))) - 1

    # A new instance (or a reset cursor) over a loaded landing zone launches nothing for files already loaded.
    ingest("acme")
    ingest("beta")
    fresh = tick(None)
    assert not fresh.run_requests
    assert sorted(k for r in fresh.dynamic_partitions_requests for k in r.partition_keys) == ["acme", "beta"]
    # ...but a tenant whose files are not all loaded is still requested.
    (landing / "acme" / "shopify" / "orders" / "2024-06-11.jsonl").write_text(
        (ACME_EXAMPLE / "shopify" / "orders" / "2024-06-03.jsonl").read_text().replace("5712340001", "5712347777"))
    assert [r.partition_key for r in tick(None).run_requests] == ["acme"]


def test_partition_guard_removes_invalid_tenant_keys():
    from dagster_project.sensors import tenant_partition_guard

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["good-shop", "../x"])
    result = tenant_partition_guard(build_sensor_context(instance=instance))
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["../x"]]
    instance.delete_dynamic_partition("tenants", "../x")
    assert isinstance(tenant_partition_guard(build_sensor_context(instance=instance)), SkipReason)


def test_weekly_schedule_requests_one_run_per_tenant():
    when = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
    with instance_for_test() as instance:
        assert isinstance(weekly_refresh(build_schedule_context(instance=instance, scheduled_execution_time=when)), SkipReason)
        instance.add_dynamic_partitions("tenants", ["a", "b"])
        requests = weekly_refresh(build_schedule_context(instance=instance, scheduled_execution_time=when))
    assert sorted(r.partition_key for r in requests) == ["a", "b"]
    assert len({r.run_key for r in requests}) == 2


def test_shipped_acme_example_matches_the_contract_copy():
    from tests.conftest import SHARED_ACME

    if not SHARED_ACME.exists():  # a clone without the contracts folder beside it: nothing to compare
        return
    ours = {p.relative_to(ACME_EXAMPLE): p.read_bytes() for p in ACME_EXAMPLE.rglob("*") if p.is_file()}
    theirs = {p.relative_to(SHARED_ACME): p.read_bytes() for p in SHARED_ACME.rglob("*") if p.is_file()}
    assert ours == theirs


def test_bad_files_scenario_quarantines_exactly_its_bad_files(tmp_path):
    """The simulator's bad-input scenario, through the Dagster assets: bad files out with reasons, the rest in."""
    landing = tmp_path / "landing"
    truth = simulate_tenant("shop-bad", landing, scenario="bad_files", seed=5, days=60, n_geos=2, orders_per_geo_day=2.0)
    resource = WeathervaneResource(landing_root=str(landing), warehouse_path=str(tmp_path / "wh.duckdb"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["shop-bad"])
    result = _ingest(instance, resource, "shop-bad")

    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    quarantined = con.execute(
        "select file_path, line, field, reason from ops.quarantined_files where tenant_id = 'shop-bad'"
    ).fetchall()
    loaded = {r[0] for r in con.execute("select file_path from ops.loaded_files where tenant_id = 'shop-bad'").fetchall()}
    con.close()
    expected = {b.file_path: b for b in truth.bad_files}
    assert {q[0] for q in quarantined} == set(expected)
    for path, line, field, reason in quarantined:
        assert (line, field) == (expected[path].line, expected[path].field), path
        assert len(reason) > 10
    written = {str(p.relative_to(landing / "shop-bad")) for p in (landing / "shop-bad").rglob("*.json*")} | {
        str(p.relative_to(landing / "shop-bad")) for p in (landing / "shop-bad").rglob("*.csv")}
    written = {p for p in written if not p.startswith("_quarantine")}
    assert loaded == written - set(expected)
    failed_checks = {e.asset_key.path[-1] for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed_checks == {"__".join(p.split("/")[:2]) for p in expected}
