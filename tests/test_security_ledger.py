"""Security, round two (issue 24), the plan ledger: signatures bound to this ledger and its head log, a missing or
cut head log reported, the rollout gate held whatever tenant.yaml waives, key faults refused without a traceback,
and what the approver saw signed. Real DuckDB files, the real key and head log, the real command line."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.test_governance import _propose
from weathervane.config import Autopilot, TenantConfig
from weathervane.governance import (
    IllegalTransition,
    NotAnApprover,
    apply,
    approve,
    ensure_decision_tables,
    reject,
    verify_chain,
)
from weathervane.governance import ledger
from weathervane.governance.autopilot import sync_mode
from weathervane.governance.events import LedgerMismatch, plan_events

REPO_ROOT = Path(__file__).resolve().parent.parent
APPROVER, APPLIER = "growth-lead@acme.example", "ops-bot"
CFG = TenantConfig(autopilot=Autopilot(approvers=[APPROVER], appliers=[APPLIER]))


@pytest.fixture
def con(wv_env):
    c = duckdb.connect(str(wv_env["warehouse"]))
    ensure_decision_tables(c)
    yield c
    c.close()


def _tenant_yaml(wv_env, cfg: TenantConfig = CFG) -> None:
    (wv_env["landing"] / "acme").mkdir(exist_ok=True)
    (wv_env["landing"] / "acme" / "tenant.yaml").write_text(json.dumps({"autopilot": cfg.autopilot.model_dump()}))


def _cli(wv_env, *args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **{f"WEATHERVANE_{k.upper()}": str(v) for k, v in wv_env.items()}, "COLUMNS": "300",
           **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "weathervane.cli", *args], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=300)


def _problems(con, cfg=CFG) -> list[str]:
    return verify_chain(con, "acme", cfg).problems


# --- 2. an approval made on a copy of the warehouse ------------------------------------------------------


def test_a_copy_of_the_warehouse_next_to_the_original_refuses_decisions(con, wv_env, tmp_path):
    _propose(con, "p1", cfg=CFG)
    con.close()
    copy = tmp_path / "copy.duckdb"
    shutil.copy(wv_env["warehouse"], copy)
    other = duckdb.connect(str(copy))
    with pytest.raises(LedgerMismatch, match="is a copy of the ledger kept at"):
        approve(other, "p1", APPROVER, "on the copy", CFG)
    other.close()
    _tenant_yaml(wv_env)
    out = _cli(wv_env, "plans", "approve", "--plan-id", "p1", "--actor", APPROVER, "--warehouse", str(copy))
    assert out.returncode == 3 and "is a copy of the ledger" in out.stdout and "Traceback" not in out.stderr


def test_an_event_made_on_a_copy_elsewhere_and_inserted_here_is_caught_and_blocks_apply(con, wv_env, tmp_path):
    _propose(con, "p1", cfg=CFG)
    con.close()
    # another machine: the warehouse, the key and the head log copied there; the original is out of its reach
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(wv_env["warehouse"], elsewhere / "warehouse.duckdb")
    shutil.copy(ledger.key_path(), elsewhere / "ledger.key")
    shutil.copy(ledger.heads_path(), elsewhere / "ledger-heads.jsonl")
    os.chmod(elsewhere / "ledger.key", 0o600)
    mp = pytest.MonkeyPatch()
    mp.setenv("WEATHERVANE_LEDGER_KEY", str(elsewhere / "ledger.key"))
    mp.setenv("WEATHERVANE_LEDGER_HEADS", str(elsewhere / "ledger-heads.jsonl"))
    away = wv_env["warehouse"].with_suffix(".away")
    wv_env["warehouse"].rename(away)
    try:
        there = duckdb.connect(str(elsewhere / "warehouse.duckdb"))
        approve(there, "p1", APPROVER, "approved where no one looks", CFG)
        row = there.execute("select * from decisions.plan_events where to_status = 'approved'").fetchall()
        there.close()
    finally:
        away.rename(wv_env["warehouse"])
        mp.undo()
    prod = duckdb.connect(str(wv_env["warehouse"]))
    prod.execute(f"insert into decisions.plan_events values ({', '.join('?' * len(row[0]))})", list(row[0]))
    prod.execute("update decisions.plans set status = 'approved' where plan_id = 'p1'")
    problems = _problems(prod)
    assert any("seq 2" in p and "not in this ledger's head log" in p for p in problems), problems
    with pytest.raises(LedgerMismatch, match="not in this ledger's head log"):
        apply(prod, "p1", APPLIER, "push", CFG)
    assert [e.to_status for e in plan_events(prod, "p1")] == ["proposed", "approved"]
    prod.close()
    _tenant_yaml(wv_env)
    out = _cli(wv_env, "plans", "verify", "--tenant", "acme")
    assert out.returncode == 4 and "not in this ledger's head log" in out.stdout
    out = _cli(wv_env, "plans", "apply", "--plan-id", "p1", "--actor", APPLIER)
    assert out.returncode == 3 and "Traceback" not in out.stderr


def test_an_event_signed_for_another_ledger_does_not_verify(con, wv_env, tmp_path):
    _propose(con, "p1", cfg=CFG)
    approve(con, "p1", APPROVER, "ok", CFG)
    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    ensure_decision_tables(other)
    _propose(other, "p1", cfg=CFG)  # the same tenant and plan id in another ledger, same key
    foreign = other.execute("select * from decisions.plan_events").fetchall()
    other.close()
    con.execute("delete from decisions.plan_events where seq = 1")
    con.execute(f"insert into decisions.plan_events values ({', '.join('?' * len(foreign[0]))})", list(foreign[0]))
    assert any("signed for another ledger" in p for p in _problems(con))


# --- 3. a missing or shortened head log -------------------------------------------------------------------


def _applied(con):
    _propose(con, "p1", cfg=CFG)
    approve(con, "p1", APPROVER, "ok", CFG)
    apply(con, "p1", APPLIER, "pushed", CFG)
    assert verify_chain(con, "acme", CFG).ok


def _drop_last_event(con):
    con.execute("delete from decisions.plan_events where to_status = 'applied'")
    con.execute("update decisions.plans set status = 'approved' where plan_id = 'p1'")


def test_deleting_the_last_events_and_the_head_log_is_reported(con, wv_env):
    _applied(con)
    _drop_last_event(con)
    ledger.heads_path().unlink()
    problems = _problems(con)
    assert any("head log" in p and "missing or empty" in p for p in problems), problems
    ledger.heads_path().write_text("")
    assert any("missing or empty" in p for p in _problems(con))
    con.close()
    _tenant_yaml(wv_env)
    out = _cli(wv_env, "plans", "verify", "--tenant", "acme")
    assert out.returncode == 4 and "missing or empty" in out.stdout


def test_deleting_the_last_events_and_the_last_head_line_is_reported(con):
    _applied(con)
    _drop_last_event(con)
    lines = ledger.heads_path().read_text().splitlines()
    ledger.heads_path().write_text("\n".join(lines[:-1]) + "\n")
    problems = _problems(con)
    assert any("recorded 3 events" in p and "deleted from its end" in p for p in problems), problems


def test_a_head_log_cut_short_leaves_the_last_events_unanchored(con):
    _applied(con)
    lines = ledger.heads_path().read_text().splitlines()
    ledger.heads_path().write_text("\n".join(lines[:-2]) + "\n")
    problems = _problems(con)
    assert any("seq 3" in p and "not in this ledger's head log" in p for p in problems), problems


# --- 4. requires_approval: false does not bypass the rollout gate -----------------------------------------


def _evidence(con, improved: int) -> None:
    con.execute("create table if not exists decisions.causal_audits (tenant_id varchar, deployment_id varchar, "
                "plan_id varchar, window_end date, verdict varchar, is_primary boolean, data_through date)")
    for i in range(improved):
        con.execute("insert into decisions.causal_audits values ('acme', ?, null, ?, 'improved', true, ?)",
                    [f"dep-{i}", date(2024, 5, 1 + i), date(2024, 6, 1)])


def test_waiving_approval_in_tenant_yaml_does_not_skip_the_rollout_gate(con, wv_env):
    free = TenantConfig(autopilot=Autopilot(requires_approval=False, approvers=[APPROVER], appliers=[APPLIER],
                                            mode="autopilot"))
    _propose(con, "p1", cfg=free)
    assert sync_mode(con, "acme", free).effective == "assisted"  # no audited evidence
    with pytest.raises(IllegalTransition, match="rollout gate is not at autopilot"):
        apply(con, "p1", APPLIER, "push", free)
    con.close()
    _tenant_yaml(wv_env, free)
    out = _cli(wv_env, "plans", "apply", "--plan-id", "p1", "--actor", APPLIER)
    assert out.returncode == 3 and "rollout gate is not at autopilot" in out.stdout
    con = duckdb.connect(str(wv_env["warehouse"]))
    assert con.execute("select status from decisions.plans where plan_id = 'p1'").fetchone()[0] == "proposed"
    # approved by a listed approver, it may go live as in assisted mode
    approve(con, "p1", APPROVER, "ok", free)
    apply(con, "p1", APPLIER, "push", free)
    # with the evidence the gate promotes the tenant, and then a proposal may go live unapproved
    _evidence(con, 2)
    assert sync_mode(con, "acme", free).applies_without_approval
    _propose(con, "p2", cfg=free)
    apply(con, "p2", APPLIER, "push", free)
    assert verify_chain(con, "acme", free).ok, verify_chain(con, "acme", free).problems
    con.close()


def test_verify_flags_an_unapproved_apply_while_the_gate_was_below_autopilot(con):
    free = TenantConfig(autopilot=Autopilot(requires_approval=False, approvers=[APPROVER], appliers=[APPLIER]))
    _propose(con, "p1", cfg=free)
    _evidence(con, 2)
    auto = free.model_copy(update={"autopilot": free.autopilot.model_copy(update={"mode": "autopilot"})})
    sync_mode(con, "acme", auto)
    apply(con, "p1", APPLIER, "push", auto)
    assert verify_chain(con, "acme", free).ok
    sync_mode(con, "acme", free)  # back to assisted
    _propose(con, "p2", cfg=free)
    with pytest.raises(IllegalTransition):
        apply(con, "p2", APPLIER, "push", free)


# --- 10. ledger key faults --------------------------------------------------------------------------------


def test_a_missing_key_is_not_silently_recreated_once_events_are_signed(con, wv_env):
    _propose(con, "p1", cfg=CFG)
    ledger.key_path().unlink()
    with pytest.raises(ledger.LedgerKeyError, match="restore the key"):
        approve(con, "p1", APPROVER, "ok", CFG)
    assert not ledger.key_path().exists()
    con.close()
    _tenant_yaml(wv_env)
    out = _cli(wv_env, "plans", "approve", "--plan-id", "p1", "--actor", APPROVER)
    assert out.returncode == 2 and "restore the key" in out.stdout and "Traceback" not in out.stderr
    assert not ledger.key_path().exists()


@pytest.mark.parametrize("content, mode, message", [(None, 0o644, "must be 0600"),
                                                     ("not hex at all\n", 0o600, "does not hold hex text")])
def test_a_bad_key_is_a_message_not_a_traceback(con, wv_env, content, mode, message):
    _propose(con, "p1", cfg=CFG)
    con.close()
    if content is not None:
        ledger.key_path().write_text(content)
    os.chmod(ledger.key_path(), mode)
    _tenant_yaml(wv_env)
    for args in (("plans", "approve", "--plan-id", "p1", "--actor", APPROVER), ("plans", "verify", "--tenant", "acme")):
        out = _cli(wv_env, *args)
        assert out.returncode in (2, 4) and message in out.stdout, out.stdout + out.stderr
        assert "Traceback" not in out.stdout + out.stderr


# --- 13. verify covers what the approver saw, and deleted plans -------------------------------------------


@pytest.mark.parametrize("edit", [
    "update decisions.plans set expected_kpi_mean = expected_kpi_mean * 2 where plan_id = 'p1'",
    "update decisions.plans set prob_better = 0.99 where plan_id = 'p1'",
    "update decisions.plans set report_path = 'reports/acme/other.html' where plan_id = 'p1'",
    "update decisions.plan_lines set previous_spend = previous_spend / 2 where plan_id = 'p1'",
])
def test_editing_figures_the_approver_saw_is_detected_and_blocks_applying(con, edit):
    con.execute("alter table decisions.plans add column if not exists prob_better double")
    _propose(con, "p1", cfg=CFG)
    con.execute("update decisions.plans set prob_better = 0.91, report_path = 'reports/acme/p1.html'")
    # figures set after the proposal: approve records them as they are now
    approve(con, "p1", APPROVER, "ok", CFG)
    assert verify_chain(con, "acme", CFG).ok
    con.execute(edit)
    problems = _problems(con)
    assert any("changed after the approval" in p for p in problems), problems
    with pytest.raises(IllegalTransition, match="changed after the approval"):
        apply(con, "p1", APPLIER, None, CFG)


def test_editing_a_proposal_before_anyone_decided_is_detected(con):
    _propose(con, "p1", cfg=CFG)
    con.execute("update decisions.plans set expected_kpi_mean = 1e9 where plan_id = 'p1'")
    assert any("after its last recorded event (proposed)" in p for p in _problems(con))


def test_deleting_a_rejected_plan_is_detected(con):
    _propose(con, "p1", cfg=CFG)
    reject(con, "p1", APPROVER, "too risky", CFG)
    con.execute("delete from decisions.plan_lines where plan_id = 'p1'")
    con.execute("delete from decisions.plans where plan_id = 'p1'")
    assert any("p1" in p and "missing from decisions.plans" in p for p in _problems(con))


def test_a_non_approver_still_cannot_approve(con):
    _propose(con, "p1", cfg=CFG)
    with pytest.raises(NotAnApprover):
        approve(con, "p1", "intern@acme.example", "ok", CFG)
