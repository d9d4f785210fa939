"""Plan lifecycle rules, the hash chain, notifications, CLI and adoption on a temporary DuckDB."""
from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import duckdb
import pytest

from weathervane.config import Autopilot, TenantConfig
from weathervane.governance import (
    IllegalTransition,
    NotAnApprover,
    PlanNotFound,
    adoption_issues,
    apply,
    approve,
    compute_plan_adoption,
    ensure_decision_tables,
    record_proposal,
    reject,
    roll_back,
    verify_chain,
)
from weathervane.governance.cli import add_plans_cli

APPROVER = "growth-lead@acme.example"
CFG = TenantConfig(autopilot=Autopilot(requires_approval=True, approvers=[APPROVER], appliers=["ops-bot", APPROVER]))


def _propose(con, plan_id, tenant="acme", cfg=CFG, start=date(2024, 6, 3), lines=None):
    lines = lines or [("meta", "US-CA", 2800.0), ("google_search", "US-CA", 1400.0)]
    con.execute("begin transaction")
    con.execute(
        "insert into decisions.plans (plan_id, tenant_id, model_id, created_at, horizon_start, horizon_end, "
        "total_budget, expected_kpi_mean, baseline_kpi_mean, status) values (?, ?, 'm1', now(), ?, ?, ?, 10, 9, null)",
        [plan_id, tenant, start, start + timedelta(days=27), sum(x[2] for x in lines)],
    )
    for channel, geo, spend in lines:
        con.execute(
            "insert into decisions.plan_lines (plan_id, tenant_id, channel, geo_id, recommended_spend, previous_spend) "
            "values (?, ?, ?, ?, ?, ?)", [plan_id, tenant, channel, geo, spend, spend]
        )
    record_proposal(con, tenant, plan_id, cfg)
    con.execute("commit")


@pytest.fixture
def con(wv_env):
    c = duckdb.connect(str(wv_env["warehouse"]))
    ensure_decision_tables(c)
    yield c
    c.close()


def _status(con, plan_id):
    return con.execute("select status from decisions.plans where plan_id = ?", [plan_id]).fetchone()[0]


def test_lifecycle_records_events_and_supersedes(con):
    _propose(con, "p1")
    _propose(con, "p2")
    assert _status(con, "p1") == "superseded"  # a newer proposal replaces an open one
    approve(con, "p2", APPROVER.upper(), "looks right", CFG)
    apply(con, "p2", "ops-bot", "pushed to ad platforms", CFG)
    _propose(con, "p3")
    approve(con, "p3", APPROVER, None, CFG)
    apply(con, "p3", "ops-bot", None, CFG)
    assert [_status(con, p) for p in ("p1", "p2", "p3")] == ["superseded", "superseded", "applied"]
    roll_back(con, "p3", "ops-bot", "sales dropped", CFG)
    trail = con.execute("select from_status, to_status from decisions.plan_events where plan_id = 'p3' order by seq").fetchall()
    assert trail == [(None, "proposed"), ("proposed", "approved"), ("approved", "applied"), ("applied", "rolled_back")]
    report = verify_chain(con, "acme", CFG)
    assert report.ok, report.problems
    assert report.events == 10


def test_illegal_transitions_are_refused_and_leave_no_trace(con):
    _propose(con, "p1")
    n = con.execute("select count(*) from decisions.plan_events").fetchone()[0]
    with pytest.raises(IllegalTransition, match="cannot move from proposed to applied.*approve it first"):
        apply(con, "p1", APPROVER, None, CFG)
    reject(con, "p1", APPROVER, "too aggressive", CFG)
    with pytest.raises(IllegalTransition, match="from rejected to approved.*final status"):
        approve(con, "p1", APPROVER, None, CFG)
    with pytest.raises(IllegalTransition, match="from rejected to rolled_back"):
        roll_back(con, "p1", APPROVER, None, CFG)
    with pytest.raises(PlanNotFound, match="nope"):
        approve(con, "nope", APPROVER, None, CFG)
    assert con.execute("select count(*) from decisions.plan_events").fetchone()[0] == n + 1
    assert _status(con, "p1") == "rejected"


def test_non_approver_cannot_approve_and_nothing_applies_without_approval(con):
    _propose(con, "p1")
    with pytest.raises(NotAnApprover, match="intern@acme.example.*not a listed approver"):
        approve(con, "p1", "intern@acme.example", None, CFG)
    assert _status(con, "p1") == "proposed"
    nobody = TenantConfig(autopilot=Autopilot(requires_approval=True, approvers=[]))
    with pytest.raises(NotAnApprover, match="approvers is empty"):
        approve(con, "p1", APPROVER, None, nobody)
    # tenant.yaml waiving approval does not waive it while the rollout gate is below autopilot (no audited
    # evidence): approving still needs a listed approver, and nothing goes live unapproved
    # (tests/test_security_ledger.py: with the gate at autopilot a proposal may go live directly)
    free = TenantConfig(autopilot=Autopilot(requires_approval=False, approvers=[], appliers=["autopilot"],
                                            mode="autopilot"))
    with pytest.raises(NotAnApprover, match="approvers is empty"):
        approve(con, "p1", "intern@acme.example", None, free)
    _propose(con, "p2", cfg=free)
    with pytest.raises(IllegalTransition, match="rollout gate is not at autopilot"):
        apply(con, "p2", "autopilot", None, free)
    assert _status(con, "p2") == "proposed"


@pytest.mark.parametrize("tamper, expected", [
    ("update decisions.plan_events set reason = 'approved by the board' where seq = 2", "was edited"),
    ("update decisions.plan_events set actor = 'mallory' where seq = 2", "was edited"),
    ("delete from decisions.plan_events where seq = 2", "deleted"),
    ("update decisions.plan_events set seq = case seq when 2 then 3 when 3 then 2 end where seq in (2, 3)", "reordered"),
    ("delete from decisions.plan_events where seq = 3", "last recorded event"),
])
def test_tampering_is_detected(con, tamper, expected):
    _propose(con, "p1")
    approve(con, "p1", APPROVER, "ok", CFG)
    apply(con, "p1", "ops-bot", None, CFG)
    assert verify_chain(con, "acme", CFG).ok
    con.execute(tamper)
    report = verify_chain(con, "acme", CFG)
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems


def test_forged_applied_event_without_approval_is_flagged(con):
    _propose(con, "p1")
    from weathervane.governance.events import append_event

    append_event(con, "acme", "p1", "proposed", "applied", "mallory", None)  # bypasses the rules
    problems = verify_chain(con, "acme", CFG).problems
    assert any("applied without a recorded approval" in p for p in problems)


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_every_transition_notifies_outbox_and_webhook(con):
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received.clear()
    try:
        cfg = TenantConfig(autopilot=Autopilot(approvers=[APPROVER], appliers=["ops-bot"],
                                               webhook_url=f"http://127.0.0.1:{server.server_port}/hook",
                                               webhook_allow_private=["127.0.0.1"]))
        _propose(con, "p1", cfg=cfg)
        from weathervane.governance import deliver_pending

        deliver_pending(con, "acme", cfg)
        approve(con, "p1", APPROVER, None, cfg)
        apply(con, "p1", "ops-bot", None, cfg)
    finally:
        server.shutdown()
    rows = con.execute("select kind, delivery_status, recipients from decisions.outbox order by created_at").fetchall()
    assert [r[0] for r in rows] == ["plan_proposed", "plan_approved", "plan_applied"]
    assert {r[1] for r in rows} == {"delivered"}
    assert json.loads(rows[0][2]) == [APPROVER]
    assert [m["to_status"] for m in _Hook.received] == ["proposed", "approved", "applied"]
    assert _Hook.received[1]["actor"] == APPROVER and _Hook.received[0]["plan_id"] == "p1"


def test_webhook_failure_is_recorded_not_raised(con):
    sock_server = HTTPServer(("127.0.0.1", 0), _Hook)
    port = sock_server.server_port
    sock_server.server_close()  # nothing listens there now
    cfg = TenantConfig(autopilot=Autopilot(approvers=[APPROVER], webhook_url=f"http://127.0.0.1:{port}/hook",
                                           webhook_allow_private=["127.0.0.1"]))
    _propose(con, "p1", cfg=cfg)
    approve(con, "p1", APPROVER, None, cfg)
    status, error = con.execute(
        "select delivery_status, delivery_error from decisions.outbox where kind = 'plan_approved'").fetchone()
    assert status == "failed" and "refused" in error.lower()
    assert _status(con, "p1") == "approved"


def test_adoption_per_week_and_check(con):
    start = date(2024, 6, 3)  # a Monday
    _propose(con, "p1", start=start, lines=[("meta", "US-CA", 2800.0), ("google_search", "US-CA", 1400.0)])
    approve(con, "p1", APPROVER, None, CFG)
    apply(con, "p1", "ops-bot", None, CFG)
    con.execute("update decisions.plan_events set \"at\" = timestamp '2024-06-01 09:00:00'")  # applied before start
    con.execute("create schema marts")
    con.execute("create table marts.fct_ad_spend_daily (tenant_id varchar, date date, channel varchar, "
                "campaign_id varchar, geo_id varchar, spend double, impressions bigint, clicks bigint, platform varchar)")
    for i in range(10):  # 10 days observed: meta at 100/day as planned, google at 20/day instead of 50
        d = start + timedelta(days=i)
        con.execute("insert into marts.fct_ad_spend_daily values ('acme', ?, 'meta', 'c1', 'US-CA', 100, 0, 0, 'meta_ads')", [d])
        con.execute("insert into marts.fct_ad_spend_daily values ('acme', ?, 'google_search', 'c2', 'US-CA', 20, 0, 0, 'google_ads')", [d])
        con.execute("insert into marts.fct_ad_spend_daily values ('other', ?, 'meta', 'c9', 'US-CA', 999, 0, 0, 'meta_ads')", [d])
    assert compute_plan_adoption(con, "acme") == 4  # 2 lines × 2 weeks
    rows = con.execute("select channel, period, days_observed, planned_spend, executed_spend, adoption_ratio "
                       "from decisions.plan_adoption order by channel, period").fetchall()
    assert rows[0][:3] == ("google_search", start, 7)
    assert rows[0][3] == pytest.approx(350) and rows[0][4] == pytest.approx(140) and rows[0][5] == pytest.approx(0.4)
    assert rows[3][:3] == ("meta", start + timedelta(days=7), 3) and rows[3][5] == pytest.approx(1.0)
    # whole plan: 1200 executed of 1500 planned (-20%); google: 200 of 500 (-60%)
    issues = adoption_issues(con, "acme", tolerance=0.25)
    assert [(i.channel, i.geo_id) for i in issues] == [("google_search", "US-CA")]
    assert "executed 200 vs planned 500" in issues[0].describe()
    issues = adoption_issues(con, "acme", tolerance=0.15)
    assert [(i.channel, i.geo_id) for i in issues] == [(None, None), ("google_search", "US-CA")]
    assert adoption_issues(con, "acme", tolerance=0.7) == []


def test_cli_approve_refuse_and_verify(con, wv_env, capsys):
    import argparse

    (wv_env["landing"] / "acme").mkdir()
    (wv_env["landing"] / "acme" / "tenant.yaml").write_text(
        f"autopilot: {{requires_approval: true, approvers: [{APPROVER}]}}\n")
    _propose(con, "p1")
    con.close()
    parser = argparse.ArgumentParser()
    add_plans_cli(parser.add_subparsers(dest="command"))

    def run(*argv):
        args = parser.parse_args(["plans", *argv])
        return args.func(args)

    assert run("approve", "--plan-id", "p1", "--actor", "intern@acme.example") == 3
    assert "not a listed approver" in capsys.readouterr().out
    assert run("approve", "--plan-id", "p1", "--actor", APPROVER, "--reason", "fine") == 0
    assert run("list", "--tenant", "acme") == 0
    assert "approved" in capsys.readouterr().out
    assert run("verify", "--tenant", "acme") == 0
    c = duckdb.connect(str(wv_env["warehouse"]))
    c.execute("update decisions.plan_events set reason = 'edited' where seq = 1")
    c.close()
    assert run("verify", "--tenant", "acme") == 4
    assert "was edited" in capsys.readouterr().out
