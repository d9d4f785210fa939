"""The plan ledger against someone who can write the warehouse, the role that applies plans, and webhooks that
misbehave: each against real DuckDB files, real local servers and the real command line."""
from __future__ import annotations

import getpass
import json
import os
import socketserver
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from tests.test_governance import _propose
from weathervane.cli import main
from weathervane.config import Autopilot, TenantConfig
from weathervane.governance import (
    IllegalTransition,
    NotAnApplier,
    apply,
    approve,
    ensure_decision_tables,
    roll_back,
    verify_chain,
)
from weathervane.governance import ledger
from weathervane.governance.events import event_hash, plan_events
from weathervane.governance.outbox import WEBHOOK_TIMEOUT_S

REPO_ROOT = Path(__file__).resolve().parent.parent
APPROVER = "growth-lead@acme.example"
APPLIER = "ops-bot"
CFG = TenantConfig(autopilot=Autopilot(approvers=[APPROVER], appliers=[APPLIER]))


@pytest.fixture
def con(wv_env):
    c = duckdb.connect(str(wv_env["warehouse"]))
    ensure_decision_tables(c)
    yield c
    c.close()


def _applied(con):
    _propose(con, "p1", cfg=CFG)
    approve(con, "p1", APPROVER, "ok", CFG)
    apply(con, "p1", APPLIER, "pushed", CFG)
    assert verify_chain(con, "acme", CFG).ok


# --- 6. a ledger that cannot be rewritten ----------------------------------------------------------------


def test_deleting_the_last_event_and_resetting_the_status_is_detected(con):
    _applied(con)
    con.execute("delete from decisions.plan_events where to_status = 'applied'")
    con.execute("update decisions.plans set status = 'approved' where plan_id = 'p1'")
    problems = verify_chain(con, "acme", CFG).problems
    assert any("deleted from its end" in p for p in problems), problems


def test_an_edit_with_recomputed_hashes_is_detected(con):
    _applied(con)
    events = plan_events(con, "p1")
    prev = events[0].hash
    for ev in events[1:]:  # what an attacker with the warehouse and this code can do
        ev = ev.__class__(**{**ev.__dict__, "prev_hash": prev,
                              "reason": "approved by the board" if ev.to_status == "approved" else ev.reason})
        digest = event_hash(ev)
        con.execute("update decisions.plan_events set reason = ?, prev_hash = ?, hash = ? where event_id = ?",
                    [ev.reason, prev, digest, ev.event_id])
        prev = digest
    problems = verify_chain(con, "acme", CFG).problems
    assert not any("hash does not match its fields" in p for p in problems)  # the hashes themselves are right
    assert any("signature does not match" in p for p in problems), problems


@pytest.mark.parametrize("edit", [
    "update decisions.plan_lines set recommended_spend = recommended_spend * 3 where plan_id = 'p1'",
    "update decisions.plans set total_budget = total_budget * 3 where plan_id = 'p1'",
])
def test_raising_a_plan_after_approval_is_detected_and_blocks_applying(con, edit):
    _propose(con, "p1", cfg=CFG)
    approve(con, "p1", APPROVER, "ok", CFG)
    con.execute(edit)
    problems = verify_chain(con, "acme", CFG).problems
    assert any("changed after the approval" in p for p in problems), problems
    with pytest.raises(IllegalTransition, match="changed after the approval"):
        apply(con, "p1", APPLIER, None, CFG)


def test_the_key_and_head_log_live_outside_the_warehouse(con, wv_env):
    _applied(con)
    key = ledger.key_path()
    assert key.parent == wv_env["model_store"] and stat.S_IMODE(key.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in ledger.heads_path().read_text().splitlines()]
    # an intent line before each event commits, a head line after each decision
    assert [(h["kind"], h["seq"]) for h in lines] == [("intent", 1), ("intent", 2), ("head", 2), ("intent", 3),
                                                      ("head", 3)]
    heads = [h for h in lines if h["kind"] == "head"]
    assert heads[-1]["tenant_id"] == "acme" and heads[-1]["warehouse"] == str(wv_env["warehouse"].resolve())
    # a head line written without the key is not believed
    with ledger.heads_path().open("a") as fh:
        fh.write(json.dumps({**heads[-1], "seq": 9}) + "\n")
    assert any("signature does not match" in p for p in verify_chain(con, "acme", CFG).problems)


def test_verify_without_the_key_says_it_cannot_check(con, monkeypatch, tmp_path):
    _applied(con)
    monkeypatch.setenv("WEATHERVANE_LEDGER_KEY", str(tmp_path / "elsewhere.key"))
    problems = verify_chain(con, "acme", CFG).problems
    assert any("not found" in p for p in problems)


# --- 7. who acts ------------------------------------------------------------------------------------------


def test_only_appliers_apply_and_roll_back_and_the_os_user_is_recorded(con):
    _propose(con, "p1", cfg=CFG)
    approve(con, "p1", APPROVER, "ok", CFG)
    with pytest.raises(NotAnApplier, match="intern@acme.example.*not a listed applier"):
        apply(con, "p1", "intern@acme.example", None, CFG)
    nobody = TenantConfig(autopilot=Autopilot(approvers=[APPROVER]))
    with pytest.raises(NotAnApplier, match="appliers is empty"):
        apply(con, "p1", APPLIER, None, nobody)
    apply(con, "p1", APPLIER, None, CFG)
    with pytest.raises(NotAnApplier, match="roll back"):
        roll_back(con, "p1", APPROVER, None, CFG)
    roll_back(con, "p1", APPLIER, "sales dropped", CFG)
    users = {e.os_user for e in plan_events(con, "p1")}
    assert users == {getpass.getuser()}
    assert verify_chain(con, "acme", CFG).ok


def test_shadow_mode_never_applies(con):
    shadow = TenantConfig(autopilot=Autopilot(approvers=[APPROVER], appliers=[APPLIER], mode="shadow"))
    _propose(con, "p1", cfg=shadow)
    approve(con, "p1", APPROVER, "ok", shadow)
    with pytest.raises(IllegalTransition, match="shadow"):
        apply(con, "p1", APPLIER, "pushed", shadow)
    assert [e.to_status for e in plan_events(con, "p1")] == ["proposed", "approved"]
    apply(con, "p1", APPLIER, "pushed", CFG)  # the same plan once the tenant is out of shadow


# --- 8. webhooks ------------------------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    received: list = []
    trickle = False
    got_request = threading.Event()

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers.get("Idempotency-Key"), json.loads(body)))
        type(self).got_request.set()
        if type(self).trickle:
            try:
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass
            return
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _server(handler) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _NotHttp(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.recv(65536)
        self.request.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


def _tenant_yaml(wv_env, url: str, allow: bool = True) -> None:
    folder = wv_env["landing"] / "acme"
    folder.mkdir(exist_ok=True)
    (folder / "tenant.yaml").write_text(
        f"autopilot: {{approvers: [{APPROVER}], appliers: [{APPLIER}], webhook_url: '{url}'"
        + (", webhook_allow_private: ['127.0.0.1']" if allow else "") + "}\n")


def _outbox(wv_env):
    c = duckdb.connect(str(wv_env["warehouse"]))
    try:
        return c.execute("select kind, delivery_status, delivery_error, attempts from decisions.outbox "
                         "order by created_at").fetchall()
    finally:
        c.close()


@pytest.mark.parametrize("url, kind", [
    ("http://127.0.0.1:{port}/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::ffff:10.0.0.1]:{port}/hook", "private"),
])
def test_private_addresses_are_refused_unless_allowed(con, url, kind):
    _Recorder.received, _Recorder.trickle = [], False
    server = _server(_Recorder)
    try:
        cfg = TenantConfig(autopilot=Autopilot(approvers=[APPROVER], appliers=[APPLIER],
                                               webhook_url=url.format(port=server.server_port)))
        _propose(con, "p1", cfg=cfg)
        t0 = time.monotonic()
        approve(con, "p1", APPROVER, None, cfg)
        assert time.monotonic() - t0 < WEBHOOK_TIMEOUT_S
    finally:
        server.shutdown()
    status, error, attempts = con.execute(
        "select delivery_status, delivery_error, attempts from decisions.outbox where kind = 'plan_approved'"
    ).fetchone()
    assert status == "failed" and kind in error and "webhook_allow_private" in error and attempts == 1
    assert _Recorder.received == []


# `weathervane plans ...` in its own process, without loading the other commands' modules (start-up time)
PLANS_CLI = ("import argparse, sys; from weathervane.cli import main; from weathervane.governance.cli import add_plans_cli; "
             "p = argparse.ArgumentParser(prog='weathervane'); add_plans_cli(p.add_subparsers(dest='command', required=True)); "
             "sys.exit(main(sys.argv[1:], parser=p))")


def _cli_env(wv_env) -> dict:
    env = {**os.environ, **{f"WEATHERVANE_{k.upper()}": str(v) for k, v in wv_env.items()}}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def test_a_trickling_webhook_neither_hangs_approve_nor_holds_the_warehouse(con, wv_env):
    _Recorder.received, _Recorder.trickle = [], True
    _Recorder.got_request = threading.Event()
    server = _server(_Recorder)
    try:
        _tenant_yaml(wv_env, f"http://127.0.0.1:{server.server_port}/hook")
        _propose(con, "p1", cfg=CFG)
        con.close()
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", PLANS_CLI, "plans", "approve", "--plan-id", "p1", "--actor", APPROVER],
            env=_cli_env(wv_env), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert _Recorder.got_request.wait(120), "the webhook was never called"
        # while the server trickles, another process can open the warehouse: the decision is committed
        other = duckdb.connect(str(wv_env["warehouse"]))
        assert other.execute("select status from decisions.plans where plan_id = 'p1'").fetchone() == ("approved",)
        other.close()
        posted_at = time.monotonic()
        out, _ = proc.communicate(timeout=120)
        assert time.monotonic() - posted_at < WEBHOOK_TIMEOUT_S + 30
    finally:
        server.shutdown()
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "notification failed" in out
    (kind, status, error, attempts), = [r for r in _outbox(wv_env) if r[0] == "plan_approved"]
    assert status == "failed" and "no complete answer" in error and attempts == 1
    assert time.monotonic() - t0 < 200


def test_a_non_http_reply_is_recorded_and_retries_deliver_once(con, wv_env, capsys):
    bad = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _NotHttp)
    bad.daemon_threads = True
    threading.Thread(target=bad.serve_forever, daemon=True).start()
    try:
        _tenant_yaml(wv_env, f"http://127.0.0.1:{bad.server_address[1]}/hook")
        _propose(con, "p1", cfg=CFG)
        con.close()
        assert main(["plans", "approve", "--plan-id", "p1", "--actor", APPROVER]) == 0
    finally:
        bad.shutdown()
        bad.server_close()
    out = capsys.readouterr().out
    assert "approved" in out and "notification failed" in out and "Traceback" not in out
    (kind, status, error, attempts), = [r for r in _outbox(wv_env) if r[0] == "plan_approved"]
    assert status == "failed" and "BadStatusLine" in error and attempts == 1
    # the receiver is fixed: a retry delivers every failed notification once, a second retry posts nothing
    _Recorder.received, _Recorder.trickle = [], False
    good = _server(_Recorder)
    try:
        _tenant_yaml(wv_env, f"http://127.0.0.1:{good.server_port}/hook")
        assert main(["plans", "notify", "--tenant", "acme", "--retry-failed"]) == 0
        assert main(["plans", "notify", "--tenant", "acme", "--retry-failed"]) == 0
    finally:
        good.shutdown()
    assert [body["kind"] for _, body in _Recorder.received] == ["plan_approved"]
    assert _Recorder.received[0][0]  # the notification id, for the receiver to drop duplicates
    assert [r[1:] for r in _outbox(wv_env) if r[0] == "plan_approved"] == [("delivered", None, 2)]
