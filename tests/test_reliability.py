"""Reliability: concurrent tenant backfills, crash safety, idempotency, tenant isolation and hostile input.

Everything runs for real: DuckDB files, dbt builds, a persistent Dagster instance from deploy/dagster.yaml and the
multiprocess executor. Checksums compare whole tables; the only columns left out of "same inputs, same warehouse"
comparisons are load timestamps (raw.*.loaded_at, ops.loaded_files.loaded_at, ops.quarantined_files.quarantined_at),
and only where a file is loaded a second time into another warehouse (the crash test). DOUBLE columns are compared
to 6 decimals: dbt's parallel aggregation may sum floats in another order from one build to the next.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, materialize

from dagster_project.defs import ingest
from dagster_project.resources import WeathervaneResource
from dagster_project.sensors import scan_landing
from tests.conftest import ACME_EXAMPLE, REPO_ROOT
from weathervane import cli as domain_cli
from weathervane import config
from weathervane.landing import STREAMS, ingest_tenant
from weathervane.simulate import simulate_tenant
from weathervane.warehouse import connect

LOAD_TIMESTAMPS = frozenset({"loaded_at", "quarantined_at"})
HOSTILE_IDS = [
    "../acme", "acme/../../etc", "..", "/etc", "a;drop table raw.shopify__orders", "x' OR '1'='1",
    'acme"; --', "ACME", "", ".hidden", "acme\n", "a" * 64, "acme\x00", "acme%2f..", "-acme", "acme b",
]


# --- helpers -----------------------------------------------------------------------------------------------


def table_checksums(db: Path, tenant: str | None = None, exclude: frozenset[str] = frozenset()) -> dict:
    """{schema.table: (rows, md5 of the sorted rows)} for every table, optionally one tenant's rows only."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY ALL"
        ).fetchall()
        out = {}
        for schema, name in tables:
            types = dict(con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? "
                "AND table_name = ? ORDER BY ordinal_position", [schema, name]).fetchall())
            cols = list(types)
            keep = [c for c in cols if c not in exclude]
            where, params = "", []
            if tenant is not None:
                if "tenant_id" not in cols:
                    continue  # reference data shared by every tenant
                where, params = "WHERE tenant_id = ?", [tenant]
            # Parallel aggregation may sum floats in another order: compare DOUBLEs to 6 decimals.
            row = ", ".join(f'CAST(round("{c}", 6) AS VARCHAR)' if types[c] in ("DOUBLE", "FLOAT", "REAL")
                            else f'CAST("{c}" AS VARCHAR)' for c in keep)
            out[f"{schema}.{name}"] = con.execute(
                f"SELECT count(*), md5(coalesce(string_agg(r, chr(10) ORDER BY r), '')) "
                f'FROM (SELECT CAST(row({row}) AS VARCHAR) AS r FROM "{schema}"."{name}" {where})', params,
            ).fetchone()
        return out
    finally:
        con.close()


def raw_counts(db: Path, tenant: str) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {s.table: con.execute(f"SELECT count(*) FROM {s.table} WHERE tenant_id = ?", [tenant]).fetchone()[0]
                for s in STREAMS}
    finally:
        con.close()


def ingest_directly(landing: Path, db: Path, tenant: str) -> None:
    con = connect(db)
    try:
        ingest_tenant(con, landing, tenant)
    finally:
        con.close()


# --- 1. concurrency: three tenants backfilled at once ----------------------------------------------------------


# Two writers per run keep the test small on two cores; the pool treats every writing asset alike.
# Each run is its own process with the multiprocess executor (a process per step), so the steps of all three
# runs contend for the one DuckDB file exactly as a backfill's do, and only the pool keeps them apart.
BACKFILL_EXECUTOR = "multiprocess"
BACKFILL_ASSETS = [["raw", "shopify__orders"], ["raw", "weather__daily"]]

BACKFILL_RUN = """
import json, sys
from dagster import AssetKey, DagsterInstance, execute_job, reconstructable
from dagster_project.jobs import standalone_ingest_job
tenant, EXECUTOR, barrier = sys.argv[1], sys.argv[2], sys.argv[3]
import pathlib, time
pathlib.Path(barrier, "ready-" + tenant).touch()  # imports done: start together with the other runs
while not pathlib.Path(barrier, "go").exists():
    time.sleep(0.05)
run_config = {"execution": {"config": {EXECUTOR: {}}}}
with DagsterInstance.get() as instance:
    result = execute_job(reconstructable(standalone_ingest_job), instance=instance, run_config=run_config,
                         tags={"dagster/partition": tenant},
                         asset_selection=[AssetKey(k) for k in json.loads(sys.argv[4])])
    failures = [str(e.event_specific_data.error.message)[:500] for e in result.all_events if e.is_step_failure]
    print("RESULT " + json.dumps({"success": result.success, "failures": failures, "run_id": result.run_id}))
"""


@pytest.mark.heavy
def test_three_tenant_runs_at_once_share_one_duckdb_without_lock_failures(wv_env, tmp_path):
    tenants = ["shop-a", "shop-b", "shop-c"]
    for i, t in enumerate(tenants):
        simulate_tenant(t, wv_env["landing"], seed=10 + i, days=60, n_geos=2, orders_per_geo_day=2.0)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.global_op_concurrency_default_limit == 1
        instance.add_dynamic_partitions("tenants", tenants)

    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", BACKFILL_RUN, t, BACKFILL_EXECUTOR, str(barrier),
                               json.dumps(BACKFILL_ASSETS)], cwd=REPO_ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for t in tenants]
    try:
        deadline = time.monotonic() + 120
        while len(list(barrier.glob("ready-*"))) < len(tenants) and time.monotonic() < deadline:
            time.sleep(0.1)
        (barrier / "go").touch()
        outputs = [p.communicate(timeout=600)[0] for p in procs]  # a busy 2-core machine is slow
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    results = []
    for out in outputs:
        line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
        assert line, out[-3000:]
        results.append(json.loads(line[-1][len("RESULT "):]))
    assert all(r["success"] for r in results), [r["failures"] for r in results]
    assert not any("lock" in (line or "").lower() for out in outputs for line in out.splitlines()
                   if "Conflicting lock" in line or "Could not set lock" in line)

    with DagsterInstance.from_config(str(home)) as instance:
        # the three runs overlapped in time: the pool, not luck, kept the writers apart
        records = [instance.get_run_record_by_id(r["run_id"]) for r in results]
        starts = sorted(r.start_time for r in records)
        ends = sorted(r.end_time for r in records)
        assert starts[-1] < ends[0]
        blocked = [e for r in results for e in instance.all_logs(r["run_id"])
                   if "blocked by limit for pool duckdb_warehouse" in (e.message or "")]
        assert blocked
    for t in tenants:
        clean = tmp_path / f"clean-{t}.duckdb"
        ingest_directly(wv_env["landing"], clean, t)
        got, want = raw_counts(wv_env["warehouse"], t), raw_counts(clean, t)
        for table in ("raw.shopify__orders", "raw.weather__daily"):
            assert got[table] == want[table] > 0, (t, table)


# --- 3. crash safety --------------------------------------------------------------------------------------------


def _kill_mid_ingest(landing: Path, db: Path, tenant: str, delay: float) -> None:
    """Start `weathervane ingest`, wait until it has committed something, give it `delay` more, SIGKILL it."""
    cli = Path(sys.executable).parent / "weathervane"
    proc = subprocess.Popen([str(cli), "ingest", "--tenant", tenant, "--landing", str(landing),
                             "--warehouse", str(db)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wal = db.with_name(db.name + ".wal")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if wal.exists() and wal.stat().st_size > 0:
            break
        time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_ingest_killed_mid_way_converges_on_rerun(wv_env, tmp_path):
    landing = wv_env["landing"]
    simulate_tenant("crashy", landing, seed=5, days=120, n_geos=4, orders_per_geo_day=12.0)
    clean_db = tmp_path / "clean.duckdb"
    ingest_directly(landing, clean_db, "crashy")
    con = duckdb.connect(str(clean_db), read_only=True)
    total_files = con.execute("SELECT count(*) FROM ops.loaded_files").fetchone()[0]
    con.close()

    # Kill when some but not all files are in; adjust the delay until that happens (the machine may be slow).
    delay, partial = 0.3, None
    for attempt in range(5):
        db = tmp_path / f"crashed-{attempt}.duckdb"
        _kill_mid_ingest(landing, db, "crashy", delay)
        con = duckdb.connect(str(db))  # replays the WAL the killed process left
        loaded = (con.execute("SELECT count(*) FROM ops.loaded_files").fetchone()[0]
                  if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ops' "
                                 "AND table_name = 'loaded_files'").fetchone()[0] else 0)
        con.close()
        if 0 < loaded < total_files:
            partial = db
            break
        delay = delay * 3 if loaded == 0 else delay / 3
    assert partial is not None, "could not kill the ingest mid-way"

    # Nothing half-loaded: every file listed in ops.loaded_files has exactly its records, no more, no less.
    con = duckdb.connect(str(partial), read_only=True)
    for s in STREAMS:
        mismatched = con.execute(
            f"SELECT l.file_path FROM ops.loaded_files l LEFT JOIN (SELECT file_hash, file_path, count(*) n "
            f"FROM {s.table} GROUP BY ALL) r USING (file_hash, file_path) "
            "WHERE l.source = ? AND l.stream = ? AND coalesce(r.n, 0) <> l.records", [s.source, s.stream],
        ).fetchall()
        orphans = con.execute(f"SELECT count(*) FROM {s.table} r ANTI JOIN ops.loaded_files l "
                              "USING (file_hash, file_path)").fetchone()[0]
        assert not mismatched and orphans == 0, (s.table, mismatched, orphans)
    con.close()

    ingest_directly(landing, partial, "crashy")
    after = table_checksums(partial, exclude=LOAD_TIMESTAMPS)
    assert after == table_checksums(clean_db, exclude=LOAD_TIMESTAMPS)
    con = duckdb.connect(str(partial), read_only=True)
    for s in STREAMS:
        dupes = con.execute(f"SELECT count(*) FROM (SELECT file_hash, source_line, geo_id FROM {s.table} "
                            "GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
        assert dupes == 0, s.table
    assert con.execute("SELECT count(*) FROM ops.loaded_files").fetchone()[0] == total_files
    assert con.execute("SELECT count(*) FROM raw.shopify__orders").fetchone()[0] > 1000
    con.close()


# --- 3 + 4. idempotency and isolation over every writing asset (ingest and dbt) ---------------------------------


def _landing_with_extras(landing: Path, tenant: str, seed: int) -> None:
    simulate_tenant(tenant, landing, seed=seed, days=60, n_geos=2, orders_per_geo_day=3.0)
    (landing / tenant / "tenant.yaml").write_text(
        "timezone: America/New_York\nchannels:\n  - {name: meta_prospecting, platform: meta_ads, "
        "campaign_name: '(?i)prospect'}\n")
    bad = landing / tenant / "meta_ads" / "ads_insights_region" / "broken.jsonl"
    bad.write_text('{"account_id": "1", "campaign_id": "2"\n')


@pytest.mark.heavy
def test_rerun_is_idempotent_and_never_touches_another_tenant(wv_env):
    from dagster_project.defs import marts

    landing, db = wv_env["landing"], wv_env["warehouse"]
    _landing_with_extras(landing, "tenant-a", 21)
    _landing_with_extras(landing, "tenant-b", 22)
    writing_assets = [*ingest.assets, *marts.assets]
    resources = {"weathervane": WeathervaneResource(), **marts.resources}
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["tenant-a", "tenant-b"])

    runs = []

    def run(tenant):
        result = materialize(writing_assets, partition_key=tenant, instance=instance, resources=resources,
                             raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_step_failure]
        runs.append(result.run_id)
        return {m.asset_key for m in result.get_asset_materialization_events()}

    run("tenant-a")
    run("tenant-b")
    first_a = table_checksums(db, "tenant-a")
    first_b = table_checksums(db, "tenant-b")
    assert first_a["marts.fct_model_input"][0] > 0 and first_a["ops.quarantined_files"][0] == 1
    assert first_a["ops.tenant_channel_rules"][0] == 1
    assert first_b["marts.fct_sales_daily"][0] > 0

    written = run("tenant-a")  # same inputs, every writing asset again
    expected_keys = {k for a in writing_assets for k in a.keys}
    assert written == expected_keys
    # the rerun's dbt steps reused the tenant's last parse instead of parsing the project again
    for step in ("harmonize", "harmonize_model_input"):
        log = (marts._run_target(runs[-1], step) / "dbt.log").read_text()
        assert "Unable to do partial parsing" not in log and "Partial parsing enabled" in log, step
    # No column is excluded: nothing new was loaded, and dbt deletes and re-inserts the same rows
    # (DOUBLEs compared to 6 decimals, see table_checksums).
    assert table_checksums(db, "tenant-a") == first_a
    assert table_checksums(db, "tenant-b") == first_b
    # every table that holds tenant rows was part of the comparison
    assert {t for t, (n, _) in first_a.items() if n} >= {"raw.shopify__orders", "marts.fct_model_input",
                                                         "staging.stg_shopify__orders", "ops.loaded_files"}


# --- 4. hostile input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_hostile_tenant_id_is_refused_by_config_and_cli(bad, wv_env):
    with pytest.raises(config.InvalidTenantId):
        config.validate_tenant_id(bad)
    with pytest.raises(config.InvalidTenantId):
        config.load_tenant_config(wv_env["landing"], bad)
    assert domain_cli.main(["ingest", f"--tenant={bad}"]) == 2
    assert not wv_env["warehouse"].exists()


def test_hostile_names_are_refused_by_the_sensor_scan_and_the_assets(tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(ACME_EXAMPLE, landing / "acme")
    for name in ["bad;drop", "Upper", "a'b", "x y"]:
        shutil.copytree(ACME_EXAMPLE, landing / name)
    outside = tmp_path / "outside"
    shutil.copytree(ACME_EXAMPLE, outside)
    (landing / "escape").symlink_to(outside, target_is_directory=True)
    orders = landing / "acme" / "shopify" / "orders"
    sql_name = orders / "x';DROP TABLE raw.shopify__orders;--.jsonl"
    sql_name.write_text((orders / "2024-06-03.jsonl").read_text().replace("5712340001", "5712348888"))
    (orders / "secret.jsonl").symlink_to(tmp_path / "outside" / "shopify" / "orders" / "2024-06-03.jsonl")

    cursor, new_tenants, _, rejected = scan_landing(landing, tmp_path / "none.duckdb", {})
    assert new_tenants == ["acme"]
    assert sorted(rejected) == sorted(["bad;drop", "Upper", "a'b", "x y", "escape"])
    assert set(cursor) == {"acme"}

    db = tmp_path / "wh.duckdb"
    resource = WeathervaneResource(landing_root=str(landing), warehouse_path=str(db))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["acme", "../outside", "a;drop table raw.shopify__orders"])
    for bad in ["../outside", "a;drop table raw.shopify__orders"]:
        result = materialize(ingest.assets, partition_key=bad, instance=instance, resources={"weathervane": resource},
                             raise_on_error=False)
        assert not result.success
        failures = [e for e in result.all_events if e.is_step_failure]
        assert failures and all("invalid tenant id" in e.event_specific_data.error.to_string() for e in failures)
    if db.exists():  # refused before any row was written (the folder outside the landing root was not read)
        con = duckdb.connect(str(db), read_only=True)
        tables = [f"{a}.{b}" for a, b in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'ops')").fetchall()]
        assert all(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == 0 for t in tables)
        con.close()

    good = materialize(ingest.assets, partition_key="acme", instance=instance, resources={"weathervane": resource},
                       raise_on_error=False)
    con = duckdb.connect(str(db), read_only=True)
    quarantined = dict(con.execute("SELECT file_path, reason FROM ops.quarantined_files").fetchall())
    loaded = {p for (p,) in con.execute("SELECT file_path FROM ops.loaded_files").fetchall()}
    tenants_seen = {t for s in STREAMS for (t,) in con.execute(f"SELECT DISTINCT tenant_id FROM {s.table}").fetchall()}
    orders_rows = con.execute("SELECT count(*) FROM raw.shopify__orders").fetchone()[0]
    con.close()
    assert tenants_seen == {"acme"}
    assert "shopify/orders/x';DROP TABLE raw.shopify__orders;--.jsonl" in quarantined
    assert "outside the tenant folder" in quarantined["shopify/orders/secret.jsonl"]
    assert "shopify/orders/2024-06-03.jsonl" in loaded and orders_rows > 0
    assert not any("secret" in p or "DROP" in p for p in loaded)
    orders_check = [e for e in good.get_asset_check_evaluations() if e.asset_key.path[-1] == "shopify__orders"]
    assert orders_check and not orders_check[0].passed
