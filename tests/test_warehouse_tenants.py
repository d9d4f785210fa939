"""A warehouse per tenant (folder mode): the one rule for a tenant's file, isolation of a tenant's connection, the
migration from a single file (lossless, ledger intact), cross-tenant reads, and dbt building a tenant into its
own file. Real DuckDB files, real dbt and Dagster."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date, timedelta

import duckdb
import pytest

from weathervane import config, warehouse
from weathervane.warehouse import WarehouseError, tenant_files, tenant_path

from tests.conftest import ACME_EXAMPLE as ACME
from tests.test_reliability import table_checksums

APPROVER = "growth-lead@acme.example"  # the fixture tenant.yaml's approver
PASSWORD = "a long enough passphrase 42"
TENANTS = ("acme", "brand-b")


def _folder(wv_env):
    folder = wv_env["warehouse"].with_suffix("")
    folder.mkdir()
    os.environ["WEATHERVANE_WAREHOUSE"] = str(folder)  # wv_env's monkeypatch restores it
    return folder


def test_one_rule_decides_a_tenants_file(tmp_path):
    single = tmp_path / "warehouse.duckdb"
    assert tenant_path(single, "acme") == single and not warehouse.is_folder(single)
    assert tenant_files(single) == {}
    folder = tmp_path / "tenants"
    folder.mkdir()
    assert warehouse.is_folder(folder) and tenant_path(folder, "acme") == folder / "acme.duckdb"
    for bad in ("../acme", "acme/../brand-b", "Acme", "", ".duckdb", "a" * 70):
        with pytest.raises(config.InvalidTenantId):
            tenant_path(folder, bad)
    # only plain files named by a valid id are tenants: a link would show another tenant's tables under its name
    duckdb.connect(str(folder / "acme.duckdb")).close()
    (folder / "Not A Tenant.duckdb").write_bytes(b"")
    (folder / "notes.txt").write_text("")
    (folder / "alias.duckdb").symlink_to(folder / "acme.duckdb")
    assert tenant_files(folder) == {"acme": folder / "acme.duckdb"}
    with pytest.raises(WarehouseError, match="folder of per-tenant files: name the tenant"):
        warehouse.connect(folder)


def test_a_tenants_connection_reaches_only_its_own_file(wv_env):
    """The resource every asset step opens the warehouse through: in folder mode tenant A's connection holds A's
    file only, cannot attach or read B's, and B's file stays free for B's writer meanwhile."""
    from dagster_project.resources import WeathervaneResource

    folder = _folder(wv_env)
    resource = WeathervaneResource()
    for tenant in TENANTS:
        with resource.connect(tenant=tenant) as con:
            con.execute("insert into ops.tenant_channel_rules values (?, 1, 'meta', 'meta_ads', null)", [tenant])
    assert set(tenant_files(folder)) == set(TENANTS)
    with resource.connect(tenant="acme") as con:
        assert [r[0] for r in con.execute("select path from duckdb_databases() where not internal").fetchall()] == \
            [str(folder / "acme.duckdb")]
        assert con.execute("select distinct tenant_id from ops.tenant_channel_rules").fetchall() == [("acme",)]
        other = str(folder / "brand-b.duckdb")
        with pytest.raises(duckdb.Error, match="disabled"):
            con.execute(f"attach '{other}' as b (read_only)")
        with pytest.raises(duckdb.Error):
            con.execute("set enable_external_access = true")
        with resource.connect(tenant="acme") as again:  # a second connection in this process shares the file
            assert again.execute("select count(*) from ops.tenant_channel_rules").fetchone() == (1,)
        # while acme's writer holds its file, another process opens brand-b's for writing at once and finds
        # acme's taken: different tenants never wait for each other, one tenant's file has one writer
        probe = ("import sys; from weathervane.warehouse import connect_tenant, WarehouseLocked\n"
                 "connect_tenant(sys.argv[1], 'brand-b', lock_wait_s=0).close()\n"
                 "try:\n    connect_tenant(sys.argv[1], 'acme', lock_wait_s=0)\n"
                 "except WarehouseLocked:\n    print('acme locked')\n")
        out = subprocess.run([sys.executable, "-c", probe, str(folder)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == "acme locked", out.stderr[-2000:]
    with pytest.raises(WarehouseError, match="name the tenant"):
        with resource.connect():
            pass
    with pytest.raises(config.InvalidTenantId):
        resource.warehouse("../brand-b")


def _single_file_warehouse(wv_env) -> None:
    """Two tenants ingested from the example tenant into the one file, each with plans and a signed ledger."""
    from weathervane.governance import approve, ensure_decision_tables, record_proposal
    from weathervane.landing import ingest_tenant

    for tenant in TENANTS:
        shutil.copytree(ACME, wv_env["landing"] / tenant)
    con = warehouse.connect(wv_env["warehouse"])
    try:
        warehouse.ensure_schemas(con)
        ensure_decision_tables(con)
        for tenant in TENANTS:
            ingest_tenant(con, wv_env["landing"], tenant)
            cfg = config.load_tenant_config(wv_env["landing"], tenant)
            for n, start in enumerate((date(2024, 6, 3), date(2024, 7, 1))):
                plan_id = f"{tenant}-p{n}"
                with warehouse.transaction(con):
                    con.execute("insert into decisions.plans (plan_id, tenant_id, model_id, created_at, horizon_start, "
                                "horizon_end, total_budget, expected_kpi_mean, baseline_kpi_mean, status) values "
                                "(?, ?, 'm1', now(), ?, ?, 1000, 10, 9, null)",
                                [plan_id, tenant, start, start + timedelta(days=27)])
                    con.execute("insert into decisions.plan_lines (plan_id, tenant_id, channel, geo_id, "
                                "recommended_spend, previous_spend) values (?, ?, 'meta', 'US-CA', 1000, 900)",
                                [plan_id, tenant])
                    record_proposal(con, tenant, plan_id, cfg)
            approve(con, f"{tenant}-p1", APPROVER, "looks right", cfg)
    finally:
        con.close()


def _verify(path, tenant, landing):
    from weathervane.governance import verify_chain

    con = duckdb.connect(str(path), read_only=True)
    try:
        return verify_chain(con, tenant, config.load_tenant_config(landing, tenant))
    finally:
        con.close()


def test_migration_moves_every_tenant_losslessly_and_the_ledger_lives_on(wv_env, capsys):
    from weathervane.cli import main
    from weathervane.governance import reject
    from weathervane.migrate import MigrationError, migrate_to_folder

    _single_file_warehouse(wv_env)
    source, landing = wv_env["warehouse"], wv_env["landing"]
    before = {t: table_checksums(source, t) for t in TENANTS}
    shared_before = {k: v for k, v in table_checksums(source).items()
                     if k in ("decisions.ledger_instance", "reference.geo_regions")}
    ledgers_before = {t: _verify(source, t, landing) for t in TENANTS}
    assert all(r.ok and r.events == 4 for r in ledgers_before.values()), ledgers_before
    assert before["acme"]["raw.shopify__orders"][0] > 0 and before["acme"]["decisions.plan_events"][0] == 4

    folder = source.parent / "tenants"
    report = migrate_to_folder(source, folder, landing)
    assert report.tenants == list(TENANTS)
    assert "decisions.ledger_instance" in report.shared
    assert not source.exists() and report.archived.is_file()  # set aside, not deleted
    for tenant in TENANTS:
        file = folder / f"{tenant}.duckdb"
        # every table with tenant rows: same rows, same content (checksums of the sorted rows)
        assert table_checksums(file, tenant) == before[tenant]
        # the file holds only its tenant's rows, and the shared tables whole
        assert set(table_checksums(file)) == set(table_checksums(report.archived))
        everything = table_checksums(file)
        for table, (rows, _) in table_checksums(file, tenant).items():
            assert everything[table][0] == rows, table
        assert {k: everything[k] for k in shared_before} == shared_before
        after = _verify(file, tenant, landing)
        assert (after.ok, after.events, after.problems) == (True, ledgers_before[tenant].events, [])
        assert report.ledgers[tenant].events == 4 and report.ledgers[tenant].problems == 0

    # the tenant's file is now the ledger's home: a new decision is recorded and verifies
    con = warehouse.connect_tenant(folder, "brand-b")
    try:
        reject(con, "brand-b-p1", APPROVER, "changed our mind", config.load_tenant_config(landing, "brand-b"))
    finally:
        con.close()
    assert _verify(folder / "brand-b.duckdb", "brand-b", landing).ok

    # never over existing tenant files, and nothing changes when refused; the command line says so in one line
    shutil.copy(report.archived, source)
    report.archived.rename(source.with_name("kept.duckdb"))
    with pytest.raises(MigrationError, match="refusing to overwrite"):
        migrate_to_folder(source, folder, landing)
    assert source.is_file() and not report.archived.exists()
    capsys.readouterr()
    assert main(["warehouse", "migrate", "--warehouse", str(source), "--to", str(folder)]) == 2
    out = capsys.readouterr().out
    assert "refusing to overwrite existing tenant files" in out and "Traceback" not in out

    # cross-tenant reads: the approvals page lists both tenants from their own files, read-only
    from weathervane.governance.identity import UserStore
    from weathervane.web import create_app

    users = wv_env["warehouse"].parent / "users.json"
    UserStore(users).set_secret(APPROVER, PASSWORD)
    app = create_app(warehouse_path=folder, landing_root=landing, reports_dir=wv_env["reports"], users_path=users,
                     secret_key="test")
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as sess:
        token = sess["csrf"]
    assert client.post("/login", data={"user": APPROVER, "password": PASSWORD, "csrf_token": token}).status_code == 303
    page = client.get("/").get_data(as_text=True)
    assert "acme" in page and "brand-b" in page
    assert "brand-b-p1" in client.get("/t/brand-b").get_data(as_text=True)
    assert "acme-p1" not in client.get("/t/brand-b").get_data(as_text=True)
    # the command line finds a plan's tenant file without --tenant
    assert main(["plans", "show", "--plan-id", "acme-p1", "--warehouse", str(folder), "--landing", str(landing)]) == 0
    assert "tenant acme status approved" in " ".join(capsys.readouterr().out.split())


def test_migration_refuses_rows_without_a_tenant(wv_env):
    from weathervane.migrate import MigrationError, migrate_to_folder

    con = warehouse.connect(wv_env["warehouse"])
    warehouse.ensure_schemas(con)
    con.execute("create table mmm.models (model_id varchar, tenant_id varchar)")
    con.execute("insert into mmm.models values ('m1', 'acme'), ('m2', null)")
    con.close()
    with pytest.raises(MigrationError, match="rows without a tenant_id"):
        migrate_to_folder(wv_env["warehouse"], wv_env["warehouse"].parent / "tenants", wv_env["landing"])
    assert wv_env["warehouse"].is_file() and not (wv_env["warehouse"].parent / "tenants").exists()


@pytest.mark.heavy
def test_folder_mode_builds_a_tenant_through_dbt_into_its_own_file(wv_env):
    from dagster import DagsterInstance, materialize

    from dagster_project.defs import ingest, marts
    from dagster_project.resources import WeathervaneResource

    folder = _folder(wv_env)
    for tenant in TENANTS:
        shutil.copytree(ACME, wv_env["landing"] / tenant)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", list(TENANTS))
    resources = {"weathervane": WeathervaneResource(), **marts.resources}
    assert materialize([*ingest.assets], partition_key="brand-b", instance=instance, resources=resources).success
    result = materialize([*ingest.assets, *marts.assets], partition_key="acme", instance=instance,
                         resources=resources)
    assert result.success
    assert set(tenant_files(folder)) == set(TENANTS) and sorted(p.name for p in folder.glob("*.duckdb")) == \
        ["acme.duckdb", "brand-b.duckdb"]
    con = duckdb.connect(str(folder / "acme.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*), count(distinct tenant_id) from marts.fct_model_input").fetchone()[0] > 0
        assert con.execute("select distinct tenant_id from raw.shopify__orders").fetchall() == [("acme",)]
    finally:
        con.close()
    con = duckdb.connect(str(folder / "brand-b.duckdb"), read_only=True)
    try:  # dbt built acme only, into acme's file
        assert not warehouse.table_exists(con, "marts", "fct_model_input")
        assert con.execute("select distinct tenant_id from raw.shopify__orders").fetchall() == [("brand-b",)]
    finally:
        con.close()


def test_a_new_local_instance_over_a_folder_warehouse_runs_tenants_side_by_side(wv_env, monkeypatch):
    from dagster_project.cli import REPO_ROOT, dagster_home

    _folder(wv_env)
    monkeypatch.setenv("DAGSTER_HOME", str(wv_env["warehouse"].parent / "home"))
    home = dagster_home()
    assert (home / "dagster.yaml").read_text() == (REPO_ROOT / "deploy" / "dagster.tenants.yaml").read_text()
