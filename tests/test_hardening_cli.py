"""User errors on the command line: a clear message and a non-zero exit, never a traceback; values from files
are printed as text, not as Rich markup."""
from __future__ import annotations

import shutil
import subprocess
import sys

import duckdb
import pytest

from tests.conftest import ACME_EXAMPLE
from tests.test_governance import _propose
from weathervane.cli import main
from weathervane.config import Autopilot, TenantConfig
from weathervane.governance import approve, ensure_decision_tables

APPROVER = "growth-lead@acme.example"


def _out(capsys) -> str:
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())  # Rich wraps long lines
    assert "Traceback" not in text
    return text


@pytest.fixture
def acme(wv_env):
    (wv_env["landing"] / "acme").mkdir()
    return wv_env


def test_showing_an_unknown_plan_is_a_message(acme, capsys):
    con = duckdb.connect(str(acme["warehouse"]))
    ensure_decision_tables(con)
    con.close()
    assert main(["plans", "show", "--plan-id", "bogus"]) == 3
    assert "plan 'bogus' not found" in _out(capsys)


@pytest.mark.parametrize("argv", [
    ["ingest", "--tenant", "nosuch"],
    ["plans", "list", "--tenant", "nosuch"],
    ["plans", "verify", "--tenant", "nosuch"],
])
def test_an_unknown_tenant_exits_non_zero(acme, capsys, argv):
    assert main(argv) == 2
    assert "unknown tenant 'nosuch'" in _out(capsys)


def test_a_missing_landing_root_exits_non_zero(acme, capsys, tmp_path):
    assert main(["ingest", "--tenant", "acme", "--landing", str(tmp_path / "nowhere")]) == 2
    assert "landing root" in _out(capsys)


def test_a_warehouse_path_under_a_file_is_a_message(acme, capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["ingest", "--tenant", "acme", "--warehouse", str(blocker / "w.duckdb")]) == 2
    assert "is a file, not a folder" in _out(capsys)


def test_simulate_zero_days_is_a_message(wv_env, capsys):
    assert main(["simulate", "--tenant", "x", "--days", "0"]) == 2
    assert "days must be at least" in _out(capsys)


def test_the_tenant_id_message_shows_its_pattern(wv_env, capsys):
    assert main(["ingest", "--tenant", "Bad"]) == 2
    assert "^[a-z0-9][a-z0-9_-]{0,62}$" in _out(capsys)


def test_a_second_ingest_waits_then_names_the_lock_holder(acme, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True);"
         " time.sleep(60)", str(acme["warehouse"])], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert main(["ingest", "--tenant", "acme", "--wait", "0.5"]) == 2
    finally:
        holder.kill()
        holder.wait()
    text = _out(capsys)
    assert "is in use by" in text and f"PID {holder.pid}" in text and "waiting up to 0.5s" in text


def test_markup_in_values_is_printed_as_text(acme, capsys):
    shutil.copytree(ACME_EXAMPLE / "shopify", acme["landing"] / "acme" / "shopify")
    bad = acme["landing"] / "acme" / "aggregated" / "mmm_input" / "m.csv"
    bad.parent.mkdir(parents=True)
    bad.write_text("date,revenue,[/x]\n2024-05-06,1,1\n")
    assert main(["ingest", "--tenant", "acme"]) == 0
    assert "column name '[/x]' is not allowed" in _out(capsys)
    cfg = TenantConfig(autopilot=Autopilot(approvers=[APPROVER]))
    con = duckdb.connect(str(acme["warehouse"]))
    ensure_decision_tables(con)
    _propose(con, "p1", cfg=cfg)
    approve(con, "p1", APPROVER, "[/x] and [bold]not bold", cfg)
    con.close()
    assert main(["plans", "show", "--plan-id", "p1"]) == 0
    text = _out(capsys)  # the table may wrap the reason inside its cell
    assert "[/x] and" in text and "[bold]not" in text
