"""The `weathervane` console script, as a user runs it."""
from __future__ import annotations

import subprocess
import sys

import duckdb

from dagster_project.cli import main


def test_simulate_then_ingest_from_the_command_line(wv_env, capsys):
    assert main(["simulate", "--tenant", "cli-shop", "--days", "60", "--geos", "2", "--seed", "2"]) == 0
    assert (wv_env["landing"] / "cli-shop" / "shopify" / "orders").is_dir()
    assert main(["ingest", "--tenant", "cli-shop"]) == 0
    out = capsys.readouterr().out
    con = duckdb.connect(str(wv_env["warehouse"]), read_only=True)
    files = con.execute("select count(*) from ops.loaded_files where tenant_id = 'cli-shop'").fetchone()[0]
    con.close()
    assert files > 10 and "cli-shop" in out
    # a second ingest loads nothing new
    assert main(["ingest", "--tenant", "cli-shop"]) == 0
    con = duckdb.connect(str(wv_env["warehouse"]), read_only=True)
    assert con.execute("select count(*) from ops.loaded_files").fetchone()[0] == files
    con.close()


def test_hostile_tenant_id_is_refused_before_any_path_is_touched(wv_env, capsys):
    assert main(["ingest", "--tenant", "../etc"]) == 2
    assert main(["ingest", "--tenant", "x'; drop table raw.shopify__orders; --"]) == 2
    assert "invalid tenant id" in capsys.readouterr().out
    assert not wv_env["warehouse"].exists()


def test_console_script_is_installed_and_lists_its_commands():
    out = subprocess.run([sys.executable, "-m", "dagster_project.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("simulate", "ingest", "demo", "ui", "plans"):
        assert command in out.stdout
