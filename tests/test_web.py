"""The approvals page in a real browser (Debian's chromium through Playwright) on a real warehouse and plan.

One simulated tenant; its plan is made by the allocator on the simulator's own response curves (no model fit),
written through the same governance functions the pipeline uses. The server runs in a thread of this process.
"""
from __future__ import annotations

import base64
import json
import threading
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from weathervane.allocate import SaturatingResponse, propose_plan
from weathervane.allocate.plan import write_plan
from weathervane.config import load_tenant_config
from weathervane.governance.identity import UserStore
from weathervane.reports import audience
from weathervane.simulate import simulate_tenant

TENANT = "shop"
APPROVER, CFO = "growth-lead@shop.example", "cfo@shop.example"
ANALYST, OPS = "analyst@shop.example", "ops@shop.example"
PASSWORDS = {APPROVER: "correct horse battery", CFO: "cfo passphrase 123", ANALYST: "analyst passphrase 1",
             OPS: "ops passphrase 12"}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        _Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class _Hostile(BaseHTTPRequestHandler):
    """Another site: a page whose form posts an approval to the approvals page on load."""
    target = ""

    def do_GET(self):  # noqa: N802
        body = (f'<!doctype html><html><body><form id="f" method="post" action="{_Hostile.target}">'
                '<input name="action" value="approve"><input name="reason" value="forged"></form>'
                '<script>document.getElementById("f").submit()</script></body></html>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _load_marts(con, folder: Path, truth):
    """What the allocator reads: daily spend, observed weather and the forecast files (raw shape)."""
    rows = [(TENANT, d, ch, f"c-{ch}", g, s) for ch, by_geo in truth.daily.spend.items()
            for g, series in by_geo.items() for d, s in zip(pd.to_datetime(truth.daily.dates).date, series)]
    spend = pd.DataFrame(rows, columns=["tenant_id", "date", "channel", "campaign_id", "geo_id", "spend"])
    frames = []
    for path in sorted((folder / "weather" / "daily").glob("*/*.json")):
        daily = json.loads(path.read_text())["daily"]
        frames.append(pd.DataFrame({"tenant_id": TENANT, "date": pd.to_datetime(daily["time"]).date,
                                    "geo_id": path.parent.name, **{v: daily[v] for v in (
                                        "temperature_2m_mean", "temperature_2m_max", "precipitation_sum")}}))
    weather = pd.concat(frames, ignore_index=True)
    con.execute("create schema if not exists marts")
    con.execute("create schema if not exists raw")
    con.execute("create table marts.fct_ad_spend_daily as select tenant_id, date, channel, campaign_id, geo_id, "
                "spend, 0::bigint as impressions, 0::bigint as clicks, 'x' as platform from spend")
    con.execute("create table marts.fct_weather_daily as select * from weather")
    con.execute("create table raw.weather__forecast (tenant_id varchar, file_path varchar, file_hash varchar, "
                "source_line integer, loaded_at timestamp, geo_id varchar, record json)")
    for path in sorted((folder / "weather" / "forecast").glob("*/*.json")):
        con.execute("insert into raw.weather__forecast values (?, ?, 'h', 1, now(), ?, ?)",
                    [TENANT, str(path.relative_to(folder)), path.parent.name, path.read_text()])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from contextlib import ExitStack

    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from weathervane.web import create_app

    root = tmp_path_factory.mktemp("web")
    landing, warehouse, reports, users = root / "landing", root / "warehouse.duckdb", root / "reports", root / "users.json"
    with ExitStack() as cleanup:
        env = pytest.MonkeyPatch()
        cleanup.callback(env.undo)
        env.setenv("WEATHERVANE_LEDGER_KEY", str(root / "keys" / "ledger.key"))
        env.setenv("WEATHERVANE_LEDGER_HEADS", str(root / "keys" / "ledger-heads.jsonl"))
        for var, path in (("LANDING", landing), ("WAREHOUSE", warehouse), ("REPORTS", reports),
                          ("MODEL_STORE", root / "models")):
            env.setenv(f"WEATHERVANE_{var}", str(path))
        truth = simulate_tenant(TENANT, landing, days=120, n_geos=2, seed=3)
        hook = _serve(HTTPServer(("127.0.0.1", 0), _Hook))
        cleanup.callback(hook.shutdown)
        _Hook.received.clear()
        tenant_yaml = landing / TENANT / "tenant.yaml"
        settings = yaml.safe_load(tenant_yaml.read_text())
        settings["autopilot"] = {"requires_approval": True, "approvers": [APPROVER, CFO], "appliers": [OPS],
                                 "viewers": [ANALYST],
                                 "webhook_url": f"http://127.0.0.1:{hook.server_port}/hook",
                                 "webhook_allow_private": ["127.0.0.1"]}
        tenant_yaml.write_text(yaml.safe_dump(settings))
        cfg = load_tenant_config(landing, TENANT)

        con = duckdb.connect(str(warehouse))
        try:
            _load_marts(con, landing / TENANT, truth)
            plan = propose_plan(con, TENANT, cfg, SaturatingResponse.from_truth(truth, draws=60, seed=1),
                                reports_dir=reports, audience=audience(TENANT, landing))
        finally:
            con.close()

        store = UserStore(users)
        for user, password in PASSWORDS.items():
            store.set_secret(user, password)
        app = create_app(warehouse_path=warehouse, landing_root=landing, reports_dir=reports, users_path=users,
                         secret_key="test-secret")
        server = _serve(make_server("127.0.0.1", 0, app, threaded=True))
        cleanup.callback(server.shutdown)
        pw = sync_playwright().start()
        cleanup.callback(pw.stop)
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        cleanup.callback(browser.close)
        yield {"url": f"http://127.0.0.1:{server.server_port}", "browser": browser, "plan": plan, "cfg": cfg,
               "warehouse": warehouse, "landing": landing, "reports": reports, "users": users, "app": app}


def _page(site, tmp_path):
    """A fresh browser context (its own cookies) whose console errors are collected."""
    context = site["browser"].new_context(base_url=site["url"])
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


def _sign_in(page, user):
    page.goto("/")
    assert "/login" in page.url  # every page needs a signed-in person
    page.fill("#user", user)
    page.fill("#password", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_selector(f"text=Signed in as {user}")


@contextmanager
def _warehouse(site, read_only=False):
    """A connection of the test, taken in turn with the server's (one process may not mix read-only and
    read-write connections to a file, and the browser may still be loading the report frame)."""
    with site["app"].extensions["weathervane"].lock:
        con = duckdb.connect(str(site["warehouse"]), read_only=read_only)
        try:
            yield con
        finally:
            con.close()


def _query(site, sql, params=()):
    with _warehouse(site, read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def _new_proposal(site) -> str:
    """Another proposal of the same plan content, recorded through the allocator's writer."""
    import uuid

    plan = replace(site["plan"], plan_id=f"{site['plan'].horizon_start:%Y%m%d}-{uuid.uuid4().hex[:10]}")
    with _warehouse(site) as con:
        write_plan(con, plan, site["cfg"])
    return plan.plan_id


def _proposal_by(site, actor) -> str:
    """A copy of the plan proposed by a person, through the governance functions."""
    import uuid

    from weathervane.governance.events import record_proposal

    plan_id = f"{site['plan'].horizon_start:%Y%m%d}-{uuid.uuid4().hex[:10]}"
    with _warehouse(site) as con:
        con.execute("begin transaction")
        con.execute("insert into decisions.plans select * replace (? as plan_id, null as status) "
                    "from decisions.plans where plan_id = ?", [plan_id, site["plan"].plan_id])
        con.execute("insert into decisions.plan_lines select * replace (? as plan_id) "
                    "from decisions.plan_lines where plan_id = ?", [plan_id, site["plan"].plan_id])
        record_proposal(con, TENANT, plan_id, site["cfg"], actor=actor)
        con.execute("commit")
    return plan_id


def _basic(user, password=None):
    token = base64.b64encode(f"{user}:{password or PASSWORDS[user]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _status(site, plan_id):
    return _query(site, "select status from decisions.plans where plan_id = ?", [plan_id])[0][0]


def test_approver_signs_in_sees_the_evidence_approves_and_the_chain_verifies(site, tmp_path, capsys):
    plan = site["plan"]
    page, errors = _page(site, tmp_path)
    _sign_in(page, APPROVER)
    page.click(f"a[href='/t/{TENANT}']")
    row = page.locator("[data-testid=plans] tr", has_text=plan.plan_id)
    assert "proposed" in row.inner_text()
    page.screenshot(path=str(tmp_path / "plans.png"), full_page=True)
    prob = _query(site, "select prob_lift_positive from decisions.plans where plan_id = ?", [plan.plan_id])[0][0]
    assert f"{prob:.0%}" in row.inner_text()
    row.locator("a").click()
    page.wait_for_selector("[data-testid=decide]")
    kpi = page.locator("[data-testid=summary]").inner_text()
    lo, hi = _query(site, "select expected_kpi_p05, expected_kpi_p95 from decisions.plans where plan_id = ?",
                    [plan.plan_id])[0]
    assert f"[${lo:,.0f}, ${hi:,.0f}]" in kpi  # money in the tenant's currency (USD here)
    assert page.locator("[data-testid=lines] tbody tr").count() == len(plan.channels) * len(plan.geos)
    assert "forecast" in page.locator("[data-testid=weather]").inner_text()
    decision, fallback, binding = _query(
        site, "select decision, fallback_reason, binding_constraints from decisions.plans where plan_id = ?",
        [plan.plan_id])[0]
    constraints = page.locator("[data-testid=constraints]").inner_text()
    assert json.loads(binding) and all(b in constraints for b in json.loads(binding))
    # keep-the-split plans say why, where the marketer decides
    assert page.locator("[data-testid=fallback]").count() == (decision == "keep_split")
    if decision == "keep_split":
        assert fallback in page.locator("[data-testid=fallback]").inner_text()
    report = page.request.get(f"/t/{TENANT}/plans/{plan.plan_id}/report")
    assert report.ok and report.text().count("data:image/png;base64,") >= 3
    assert "sandbox" in report.headers["content-security-policy"]
    framed = page.frame_locator("iframe.report").locator("h1")
    assert framed.inner_text() == f"Budget plan {plan.plan_id}"  # the report renders inside the page's frame
    page.screenshot(path=str(tmp_path / "plan-before.png"), full_page=True)

    page.click("button[value=approve]")  # the reason is required: the browser holds the form back
    assert _status(site, plan.plan_id) == "proposed"
    page.fill("#reason", "search gains in the heat wave; spend stays within 30%")
    page.click("button[value=approve]")
    flashes = page.locator(".flashes").inner_text()
    assert f"proposed → approved by {APPROVER}" in flashes
    assert "webhook delivered" in flashes  # what was notified, and that it arrived
    assert _status(site, plan.plan_id) == "approved"
    assert _Hook.received[-1]["actor"] == APPROVER and _Hook.received[-1]["to_status"] == "approved"
    page.screenshot(path=str(tmp_path / "plan-approved.png"), full_page=True)

    page.click("[data-testid=decide] a:has-text('ledger')")
    verify = page.locator("[data-testid=verify]").inner_text()
    events = _query(site, "select count(*) from decisions.plan_events where tenant_id = ?", [TENANT])[0][0]
    assert f"Chain intact: {events} events verified" in verify
    seq = _query(site, "select max(seq) from decisions.plan_events where tenant_id = ?", [TENANT])[0][0]
    entry = page.locator(f"[data-testid=event-{seq}]").inner_text()
    assert APPROVER in entry and "search gains in the heat wave" in entry and "delivered" in entry
    page.screenshot(path=str(tmp_path / "ledger.png"), full_page=True)
    assert errors == []

    from weathervane.cli import main

    args = ["--tenant", TENANT, "--warehouse", str(site["warehouse"]), "--landing", str(site["landing"])]
    capsys.readouterr()
    with site["app"].extensions["weathervane"].lock:  # the CLI's connection, in turn with the server's
        assert main(["plans", "verify", *args]) == 0
    assert "chain intact" in capsys.readouterr().out
    actor, reason = _query(site, "select actor, reason from decisions.plan_events where seq = ? and tenant_id = ?",
                           [seq, TENANT])[0]
    assert (actor, reason) == (APPROVER, "search gains in the heat wave; spend stays within 30%")


def test_a_non_approver_is_refused_on_the_page_and_by_the_api(site, tmp_path):
    plan_id = _new_proposal(site)
    n_events = _query(site, "select count(*) from decisions.plan_events")[0][0]
    page, errors = _page(site, tmp_path)
    _sign_in(page, ANALYST)
    page.goto(f"/t/{TENANT}/plans/{plan_id}")
    approve = page.locator("button[value=approve]")
    assert approve.is_disabled()
    assert "not in tenant.yaml autopilot.approvers" in page.locator("[data-testid=why-not-approve]").inner_text()
    # the button is only a hint: force the form through and the governance rules refuse it
    page.evaluate("document.querySelector('button[value=approve]').disabled = false")
    page.fill("#reason", "I think it is fine")
    approve.click()
    assert f"Refused: plan {plan_id}: '{ANALYST}' is not a listed approver" in page.locator(".flashes").inner_text()
    page.screenshot(path=str(tmp_path / "refused.png"), full_page=True)
    assert errors == []

    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    api = page.request.post(f"/api/tenants/{TENANT}/plans/{plan_id}/approve", data={"reason": "via the API"},
                            headers={"X-CSRF-Token": token})
    assert api.status == 403 and "not a listed approver" in api.json()["error"]
    basic = base64.b64encode(f"{ANALYST}:{PASSWORDS[ANALYST]}".encode()).decode()
    ctx = site["browser"].new_context(base_url=site["url"])
    api = ctx.request.post(f"/api/tenants/{TENANT}/plans/{plan_id}/approve", data={"reason": "with a password"},
                           headers={"Authorization": f"Basic {basic}"})
    assert api.status == 403 and "not a listed approver" in api.json()["error"]
    wrong = base64.b64encode(f"{APPROVER}:not the password".encode()).decode()
    api = ctx.request.post(f"/api/tenants/{TENANT}/plans/{plan_id}/approve", data={"reason": "guessing"},
                           headers={"Authorization": f"Basic {wrong}"})
    assert api.status == 401
    assert _status(site, plan_id) == "proposed"
    assert _query(site, "select count(*) from decisions.plan_events")[0][0] == n_events


def test_forged_requests_without_the_csrf_token_are_refused(site, tmp_path):
    plan_id = _new_proposal(site)
    n_events = _query(site, "select count(*) from decisions.plan_events")[0][0]
    page, errors = _page(site, tmp_path)
    _sign_in(page, APPROVER)
    form = {"action": "approve", "reason": "forged"}
    target = f"/t/{TENANT}/plans/{plan_id}/decide"
    assert page.request.post(target, form=form).status == 403
    assert page.request.post(target, form={**form, "csrf_token": "guessed"}).status == 403
    api = page.request.post(f"/api/tenants/{TENANT}/plans/{plan_id}/approve", data={"reason": "forged"})
    assert api.status == 403 and "CSRF" in api.json()["error"]
    assert page.request.get(target).status == 405  # no state change over GET

    assert errors == []

    # another site's page that posts the form on load, in the approver's signed-in browser
    _Hostile.target = site["url"] + target
    hostile = _serve(HTTPServer(("127.0.0.1", 0), _Hostile))
    try:
        page.goto(f"http://localhost:{hostile.server_port}/")
        page.wait_for_url("**/decide")
        assert "Refused" in page.content()
    finally:
        hostile.shutdown()
    assert _status(site, plan_id) == "proposed"
    assert _query(site, "select count(*) from decisions.plan_events")[0][0] == n_events

    # the same person, through the page, with the token the page carries
    page.goto(f"/t/{TENANT}/plans/{plan_id}")
    page.fill("#reason", "checked the evidence")
    page.click("button[value=approve]")
    page.wait_for_selector(".flash.ok")
    assert _status(site, plan_id) == "approved"


def test_four_eyes_then_an_applier_applies_and_rolls_back_with_notifications_shown(site, tmp_path):
    plan_id = _proposal_by(site, APPROVER)
    api = site["browser"].new_context(base_url=site["url"]).request
    url = f"/api/tenants/{TENANT}/plans/{plan_id}"
    own = api.post(f"{url}/approve", data={"reason": "my own plan"}, headers=_basic(APPROVER))
    assert own.status == 403 and "may not approve it too" in own.json()["error"]
    assert api.post(f"{url}/approve", data={"reason": " "}, headers=_basic(CFO)).status == 400  # reason required
    ok = api.post(f"{url}/approve", data={"reason": "second pair of eyes"}, headers=_basic(CFO))
    assert ok.status == 200 and ok.json()["events"][0]["actor"] == CFO
    assert ok.json()["notifications"][0]["delivery_status"] == "delivered"
    refused = api.post(f"{url}/apply", data={"reason": "push it"}, headers=_basic(APPROVER))
    assert refused.status == 403 and "not a listed applier" in refused.json()["error"]

    page, errors = _page(site, tmp_path)
    _sign_in(page, OPS)
    page.goto(f"/t/{TENANT}/plans/{plan_id}")
    assert page.locator("button[value=approve]").count() == 0  # not open from `approved`
    page.fill("#reason", "pushed to Meta and Google at 09:00")
    page.click("button[value=apply]")
    flashes = page.locator(".flashes").inner_text()
    assert f"approved → applied by {OPS}" in flashes and "“Budget plan applied” — webhook delivered" in flashes
    page.fill("#reason", "orders dropped after the push")
    page.click("button[value=rollback]")
    assert f"applied → rolled_back by {OPS}" in page.locator(".flashes").inner_text()
    assert _status(site, plan_id) == "rolled_back"
    history = page.locator("[data-testid=history]").inner_text()
    assert history.count("delivered") == 4  # proposed, approved, applied, rolled back: each notified
    assert "No decision is open" in page.locator("[data-testid=decide]").inner_text()
    page.goto(f"/t/{TENANT}/ledger")
    assert "Chain intact" in page.locator("[data-testid=verify]").inner_text()
    page.screenshot(path=str(tmp_path / "rolled-back.png"), full_page=True)
    assert [m["to_status"] for m in _Hook.received[-3:]] == ["approved", "applied", "rolled_back"]
    assert errors == []


def test_sessions_expire_end_on_sign_out_and_on_a_password_reset_and_cookies_are_locked_down(site):
    from weathervane.web import create_app

    app = create_app(warehouse_path=site["warehouse"], landing_root=site["landing"], reports_dir=site["reports"],
                     users_path=site["users"], secret_key="another", session_lifetime_s=1.5, secure_cookies=True)
    app.extensions["weathervane"].lock = site["app"].extensions["weathervane"].lock
    client = app.test_client()

    def sign_in(user, password):
        client.get("/login")
        with client.session_transaction() as sess:
            token = sess["csrf"]
        return client.post("/login", data={"user": user, "password": password, "csrf_token": token})

    resp = sign_in(ANALYST, PASSWORDS[ANALYST])
    assert resp.status_code == 303
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert client.get("/").status_code == 200
    import time

    time.sleep(1.6)
    expired = client.get("/")
    assert expired.status_code == 302 and "/login" in expired.headers["Location"]
    assert sign_in(ANALYST, "wrong password here").status_code == 401

    sign_in(ANALYST, PASSWORDS[ANALYST])
    assert client.get("/").status_code == 200
    UserStore(site["users"]).set_secret(ANALYST, PASSWORDS[ANALYST])  # a reset (same text, new salt)
    assert client.get("/").status_code == 302

    sign_in(ANALYST, PASSWORDS[ANALYST])
    with client.session_transaction() as sess:
        token = sess["csrf"]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/").status_code == 302
    page = client.get("/login")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"

    for _ in range(7):  # with the one above, 8 failures from this address: guessing stops, even the right one
        assert sign_in(CFO, "a wrong guess again").status_code == 401
    assert sign_in(CFO, PASSWORDS[CFO]).status_code == 429


def _row(cols, **values):
    """A row for a table written by another stage: typed placeholders, the given values where named."""
    import datetime as dt

    fill = {"VARCHAR": "x", "DOUBLE": 0.5, "INTEGER": 3, "BOOLEAN": False, "DATE": dt.date(2024, 4, 1),
            "TIMESTAMP": dt.datetime(2024, 4, 1, 12), "VARCHAR[]": ["US-CA"]}
    return {c: values.get(c, fill.get(t.upper(), None)) for c, t in cols}


def test_the_plan_page_shows_diagnostics_audits_replay_and_the_gate_where_they_exist(site):
    """Tables of the model, audit and replay stages, written by their own writers, appear on the page."""
    from weathervane.audit.run import ensure_audit_table, write_audits
    from weathervane.mmm.store import TABLES, write_model_outputs
    from weathervane.replay.tables import TABLES as REPLAY_TABLES
    from weathervane.replay.tables import ensure_replay_tables
    from weathervane.web import create_app

    plan = site["plan"]
    with _warehouse(site) as con:
        ensure_audit_table(con)
        audit_cols = [r[:2] for r in con.execute("describe decisions.causal_audits").fetchall()]
        m = {"model_id": plan.model_id, "tenant_id": TENANT}
        write_model_outputs(con, plan.model_id, {
            "models": pd.DataFrame([_row(TABLES["models"], **m, status="ok", max_rhat=1.004, sampler="nutpie")]),
            "channel_summary": pd.DataFrame([_row(TABLES["channel_summary"], **m, channel="google_search",
                                                   geo_id=None, roas_mean=4.25, needs_experiment=True)]),
        })
        write_audits(con, TENANT, [
            _row(audit_cols, tenant_id=TENANT, audit_id=f"a{i}", deployment_id=f"dep-{i}", plan_id=None,
                 method="synthetic_control", is_primary=True, verdict=verdict, effect_mean=effect,
                 effect_p05=effect / 2, effect_p95=effect * 1.5, window_end=date(2024, 3, i))
            for i, (verdict, effect) in enumerate((("improved", 1234.0), ("no_detectable_effect", 80.0)), start=1)])
        ensure_replay_tables(con)
        replay = _row(REPLAY_TABLES["policy_replay"], tenant_id=TENANT, policy="weather_aware_plan",
                      estimator="doubly_robust", value_mean=20500.0, evaluable=True)
        con.execute(f"insert into decisions.policy_replay ({', '.join(replay)}) values "
                    f"({', '.join('?' for _ in replay)})", list(replay.values()))

    app = create_app(warehouse_path=site["warehouse"], landing_root=site["landing"], reports_dir=site["reports"],
                     users_path=site["users"], secret_key="evidence")
    app.extensions["weathervane"].lock = site["app"].extensions["weathervane"].lock
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as sess:
        token = sess["csrf"]
    client.post("/login", data={"user": ANALYST, "password": PASSWORDS[ANALYST], "csrf_token": token})
    html = client.get(f"/t/{TENANT}/plans/{plan.plan_id}").get_data(as_text=True)
    model = html[html.index('data-testid="model"'):html.index('data-testid="audits"')]
    assert "nutpie" in model and "1.004" in model and "needs experiment" in model and "4.250" in model
    audits = html[html.index('data-testid="audits"'):html.index('data-testid="replay"')]
    assert "dep-1" in audits and "improved" in audits and "1,234" in audits and "no detectable effect" not in audits
    assert "no_detectable_effect" in audits
    replay_html = html[html.index('data-testid="replay"'):html.index('data-testid="history"')]
    assert "weather_aware_plan" in replay_html and "doubly_robust" in replay_html and "20,500" in replay_html
    gate = html[html.index('data-testid="autopilot"'):]
    assert "1 improved, 1 no detectable effect" in gate


def test_reports_index_and_report_show_the_banner_and_money_and_the_sign_in_page_says_how_to_get_an_account(
        site, tmp_path):
    """The reports server's generated index at / and /<tenant>/, the plan report it links (simulated tenant:
    the banner at the top and bottom; money in the tenant's currency), and the sign-in page's account help."""
    import re

    from weathervane.report_server import make_report_server

    reports = _serve(make_report_server(port=0, reports_dir=site["reports"], landing_root=site["landing"]))
    base = f"http://127.0.0.1:{reports.server_address[1]}"
    try:
        page, errors = _page(site, tmp_path)
        page.goto(base + "/")
        assert page.eval_on_selector_all("[data-testid=tenants] a", "els => els.map(e => e.pathname)") == \
            [f"/{TENANT}/"]
        page.click(f"a[href='/{TENANT}/']")
        assert page.locator(".banner").count() == 2  # the index of a simulated tenant says so too
        links = page.eval_on_selector_all("[data-testid=reports] a", "els => els.map(e => e.pathname)")
        assert f"/{TENANT}/plan_{site['plan'].plan_id}.html" in links
        for link in links:
            page.goto(base + link)
            text = page.inner_text("body")
            assert page.locator(".banner").count() == 2 and "SIMULATED DATA" in text, link
            assert re.search(r"\$\d{1,3}(,\d{3})+", text), link  # money with its symbol and separators
            assert not re.search(r"\[\d[\d,]*, \d[\d,]*\]", text), link  # no bare "[490, 1,351]" interval
        page.goto(site["url"] + "/login")
        assert "weathervane users add" in page.inner_text("[data-testid=get-account]") + page.inner_text("pre")
        assert not errors, errors
    finally:
        reports.shutdown()
