"""Dagster instance storage on PostgreSQL: deploy/dagster.postgres.yaml against a real server on loopback.

`.ci/postgres.sh` installs and starts the server (role weathervane/weathervane). Without it this test fails:
a deployment guide that is never exercised is not a guide.
"""
from __future__ import annotations

import shutil
import uuid

import duckdb
import psycopg2
import pytest
from dagster import DagsterInstance, materialize

from dagster_project.defs import ingest
from dagster_project.resources import WeathervaneResource
from tests.conftest import REPO_ROOT
from weathervane.simulate import simulate_tenant

PG = {"host": "127.0.0.1", "port": 5432, "user": "weathervane", "password": "weathervane"}


@pytest.fixture
def fresh_database():
    """A new database per test run, dropped afterwards."""
    name = f"wv_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.heavy
def test_ingest_and_dbt_run_on_a_postgres_instance(wv_env, tmp_path, monkeypatch, fresh_database):
    from dagster_project.defs import marts

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_USERNAME", PG["user"])
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", PG["password"])
    monkeypatch.setenv("DAGSTER_PG_HOST", PG["host"])
    monkeypatch.setenv("DAGSTER_PG_DB", fresh_database)
    simulate_tenant("pg-shop", wv_env["landing"], seed=4, days=60, n_geos=2, orders_per_geo_day=2.0)

    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.global_op_concurrency_default_limit == 1
        instance.add_dynamic_partitions("tenants", ["pg-shop"])
        result = materialize([*ingest.assets, *marts.assets], partition_key="pg-shop", instance=instance,
                             resources={"weathervane": WeathervaneResource(), **marts.resources},
                             raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_step_failure]
        run_id = result.run_id

    # What Dagster recorded is in PostgreSQL, not in a local file.
    con = psycopg2.connect(dbname=fresh_database, **PG)
    cur = con.cursor()
    cur.execute("SELECT status FROM runs WHERE run_id = %s", [run_id])
    assert cur.fetchall() == [("SUCCESS",)]
    cur.execute("SELECT count(DISTINCT asset_key) FROM event_logs WHERE run_id = %s "
                "AND dagster_event_type = 'ASSET_MATERIALIZATION'", [run_id])
    materialized = cur.fetchone()[0]
    cur.execute("SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'tenants'")
    assert cur.fetchall() == [("pg-shop",)]
    con.close()
    assert materialized >= len(ingest.assets) + 10  # every raw stream plus the dbt models
    assert not list(home.glob("**/*.db"))

    wh = duckdb.connect(str(wv_env["warehouse"]), read_only=True)
    assert wh.execute("SELECT count(*) FROM marts.fct_model_input WHERE tenant_id = 'pg-shop'").fetchone()[0] > 0
    wh.close()
