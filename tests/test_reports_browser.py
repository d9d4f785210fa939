"""`weathervane proof --tenant acme` end to end (real Dagster, dbt, DuckDB and a MAP fit of its synthetic twin), and
every report it produced rendered in Debian's chromium: no console errors, every plot drawn with alt text, and the
key numbers on the page equal to the warehouse's.

One proof run (MAP fit: rendering and wiring, not statistics, are tested here) is checked by one test: a module
fixture shared by several tests would be built once per xdist worker.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest

from weathervane import reports as rp

from tests.conftest import ACME_EXAMPLE

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def proof(tmp_path_factory):
    root = tmp_path_factory.mktemp("proof")
    env = {
        "WEATHERVANE_LANDING": root / "landing", "WEATHERVANE_WAREHOUSE": root / "warehouse.duckdb",
        "WEATHERVANE_MODEL_STORE": root / "models", "WEATHERVANE_REPORTS": root / "reports",
        "DAGSTER_HOME": root / "dagster_home",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, str(v))
        shutil.copytree(ACME_EXAMPLE, env["WEATHERVANE_LANDING"] / "acme")
        from dagster_project.proof import run_proof

        said: list[str] = []
        run, path = run_proof("acme", method="map", twin_days=150, say=said.append)
        yield {"run": run, "path": path, "env": env, "said": said}


def _warehouse(proof):
    return duckdb.connect(str(proof["env"]["WEATHERVANE_WAREHOUSE"]), read_only=True)


def _acme_degrades_to_a_synthetic_twin_with_runs_in_the_dagster_instance(proof):
    from dagster import DagsterInstance, DagsterRunStatus

    run = proof["run"]
    assert run.mode == "synthetic_twin" and run.model_tenant == "acme-twin"
    # the short twin (150 days, to keep the test quick) is too short for policy replay, which writes
    # not-evaluable rows with the reason instead of failing: every step of the sniff and the pipeline succeeds
    assert run.problems == [], run.problems
    # a month of data (its orders and the aggregated weekly table) is far from a year: the twin carries the walkthrough
    said = r"  mode: synthetic_twin — 29 days of history \(a live fit needs 421"
    assert any(re.match(said, s) for s in proof["said"])
    con = _warehouse(proof)
    try:
        decisions = dict(con.execute("select name, value from ops.dataset_sniff where tenant_id = 'acme' "
                                     "and kind = 'decision'").fetchall())
        twin = dict(con.execute("select name, number from ops.dataset_sniff where tenant_id = 'acme' "
                                "and kind = 'twin' and number is not null").fetchall())
        models = con.execute("select tenant_id, sampler, status from mmm.models").fetchall()
        replay = con.execute("select policy, estimator, evaluable, reason from decisions.policy_replay "
                             "where tenant_id = 'acme-twin'").fetchall()
    finally:
        con.close()
    assert decisions["mode"] == "synthetic_twin" and decisions["grain_geo"] == "country"
    assert twin["n_geos"] == 2  # acme's orders come from California alone; a twin has at least two geos
    assert models == [("acme-twin", "map", "ok")]
    assert replay and all(not evaluable and reason for _, _, evaluable, reason in replay), replay
    instance = DagsterInstance.from_config(str(proof["env"]["DAGSTER_HOME"]))
    runs = {(r.job_name, r.tags.get("dagster/partition"), r.status) for r in instance.get_runs()}
    assert ("sniff_job", "acme", DagsterRunStatus.SUCCESS) in runs
    assert ("refresh_job", "acme-twin", DagsterRunStatus.SUCCESS) in runs


def _render(url: str, shot: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({alt: e.alt, w: e.naturalWidth, h: e.naturalHeight}))")
            figures = page.locator("figure.plot").count()
            keys = page.eval_on_selector_all(
                "[data-key]", "els => Object.fromEntries(els.map(e => [e.dataset.key, e.textContent]))")
            banners = page.locator(".banner").count()
            text = page.inner_text("body")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    return {"errors": errors, "images": images, "figures": figures, "keys": keys, "banners": banners, "text": text}


def _plots_drawn(r: dict, at_least: int) -> None:
    assert not r["errors"], r["errors"]
    assert len(r["images"]) == r["figures"] >= at_least
    for img in r["images"]:
        assert img["w"] > 100 and img["h"] > 50  # decoded, not a broken image
        assert len(img["alt"]) > 20


def _proof_report_in_chromium_matches_the_warehouse(proof, tmp_path):
    r = _render(proof["path"].resolve().as_uri(), tmp_path / "proof.png")
    _plots_drawn(r, at_least=2)  # sales and spend over time, ROAS per channel
    assert r["banners"] == 2  # synthetic, at the top and the bottom
    con = _warehouse(proof)
    try:
        model_id, mape = con.execute("select model_id, holdout_mape from mmm.models "
                                     "where tenant_id = 'acme-twin'").fetchone()
        roas = con.execute("select channel, roas_mean, mroas_mean from mmm.channel_summary "
                           "where model_id = ? and geo_id is null", [model_id]).fetchall()
        plan = con.execute("select expected_lift_mean from decisions.plans where tenant_id = 'acme-twin' "
                           "order by created_at desc limit 1").fetchone()
    finally:
        con.close()
    assert roas, "no channel summary"
    for channel, roas_mean, mroas_mean in roas:
        assert r["keys"][f"roas:{channel}"] == rp.ratio(roas_mean)
        assert r["keys"][f"mroas:{channel}"] == rp.ratio(mroas_mean)
    assert plan is not None and r["keys"]["plan_lift"] == rp.money(plan[0], "USD")
    assert "true ROAS (simulated)" in r["text"]
    assert "pipeline steps that failed" not in r["text"]
    # a MAP fit has one draw: the page refuses to state a probability rather than print 100%
    assert "Probability it beats keeping the split: not given" in r["text"] and "plan_prob" not in r["keys"]
    assert r["keys"]["mode"] == "a synthetic twin"


def _model_and_plan_reports_in_chromium(proof, tmp_path):
    reports = proof["env"]["WEATHERVANE_REPORTS"] / "acme-twin"
    con = _warehouse(proof)
    try:
        model_id = con.execute("select model_id from mmm.models where tenant_id = 'acme-twin'").fetchone()[0]
        rows = con.execute("select channel, roas_mean, roas_p05, roas_p95 from mmm.channel_summary "
                           "where model_id = ? and geo_id is null", [model_id]).fetchall()
        plan_id, budget = con.execute("select plan_id, total_budget from decisions.plans "
                                      "where tenant_id = 'acme-twin'").fetchone()
        weather_terms = con.execute("select count(*) from mmm.weather_effects where model_id = ?",
                                    [model_id]).fetchone()[0]
    finally:
        con.close()
    model = _render((reports / f"{model_id}.html").resolve().as_uri(), tmp_path / "model.png")
    _plots_drawn(model, at_least=3)
    for channel, m, lo, hi in rows:
        assert rp.with_interval(m, lo, hi) in model["text"], channel
    plan = _render((reports / f"plan_{plan_id}.html").resolve().as_uri(), tmp_path / "plan.png")
    # allocation and response curves; the assumed weather only when the model kept a weather term
    _plots_drawn(plan, at_least=2 + (weather_terms > 0))
    assert ("Line chart of the" in " ".join(i["alt"] for i in plan["images"])) == (weather_terms > 0)
    assert rp.money(budget, "USD") in plan["text"]
    # the audit report, when the twin's deployment was audited: drawn without errors, every image with alt text
    audits = sorted(p for p in reports.glob("audit_*.html"))
    for i, audit in enumerate(audits):
        r = _render(audit.resolve().as_uri(), tmp_path / f"audit{i}.png")
        assert not r["errors"], r["errors"]
        assert all(img["w"] > 100 and img["alt"] for img in r["images"])
    assert (tmp_path / "model.png").stat().st_size > 10_000


# money as the pages print it: "$1,234" (a bare "[490, 1,351]" interval or "16,517" total is what they must not show)
MONEY = re.compile(r"-?\$\d{1,3}(,\d{3})*(\.\d\d)?")
BARE_INTERVAL = re.compile(r"\[-?\d[\d,]*(\.\d+)?, -?\d[\d,]*(\.\d+)?\]")


def _index_every_report_and_the_approvals_page(proof, tmp_path):
    """Through the reports server: the index at / and /<tenant>/, every report it links, each with the
    simulated-data banner and money in the tenant's currency; then the approvals page for the twin's plan."""
    import threading

    import yaml
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from weathervane.governance.identity import UserStore
    from weathervane.report_server import make_report_server
    from weathervane.web import create_app

    env = proof["env"]
    reports = make_report_server(port=0, reports_dir=env["WEATHERVANE_REPORTS"],
                                 landing_root=env["WEATHERVANE_LANDING"])
    threading.Thread(target=reports.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{reports.server_address[1]}"
    twin_yaml = env["WEATHERVANE_LANDING"] / "acme-twin" / "tenant.yaml"
    approver = (yaml.safe_load(twin_yaml.read_text()).get("autopilot") or {}).get("approvers", [None])[0]
    assert approver, "the twin's tenant.yaml names no approver"
    users = tmp_path / "users.json"
    UserStore(users).set_secret(approver, "correct horse battery")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WEATHERVANE_LEDGER_KEY", str(tmp_path / "keys" / "ledger.key"))
        mp.setenv("WEATHERVANE_LEDGER_HEADS", str(tmp_path / "keys" / "ledger-heads.jsonl"))
        app = create_app(warehouse_path=env["WEATHERVANE_WAREHOUSE"], landing_root=env["WEATHERVANE_LANDING"],
                         reports_dir=env["WEATHERVANE_REPORTS"], users_path=users, secret_key="test-secret")
        web = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page()
                    errors: list[str] = []
                    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                    page.goto(base + "/")
                    tenants = page.eval_on_selector_all("[data-testid=tenants] a", "els => els.map(e => e.pathname)")
                    assert "/acme-twin/" in tenants and "/acme/" in tenants, tenants
                    seen = 0
                    for tenant in tenants:
                        page.goto(base + tenant)
                        links = page.eval_on_selector_all("[data-testid=reports] a", "els => els.map(e => e.pathname)")
                        assert links, f"no report listed for {tenant}"
                        for link in links:
                            page.goto(base + link)
                            text = page.inner_text("body")
                            seen += 1
                            # every page about a simulated tenant says so (the twin's own; acme's proof runs on it)
                            assert page.locator(".banner").count() == 2, link
                            assert not BARE_INTERVAL.search(text), (link, BARE_INTERVAL.search(text).group(0))
                            if ("policy_replay" in link and "could not be replayed" in text) or \
                                    ("audit_" in link and "cannot be judged yet" in text):
                                continue  # the short twin: nothing valued, nothing in money
                            assert MONEY.search(text), f"no money in $ on {link}"
                    assert seen >= 4  # proof, model, plan, replay at least
                    # the approvals page: the sign-in page says how to get an account; money in $, channel names
                    page.goto(f"http://127.0.0.1:{web.server_port}/")
                    assert "weathervane users add" in page.inner_text("[data-testid=get-account]") + \
                        page.inner_text("body")
                    page.fill("#user", approver)
                    page.fill("#password", "correct horse battery")
                    page.click("button[type=submit]")
                    page.wait_for_selector(f"text=Signed in as {approver}")
                    page.goto(f"http://127.0.0.1:{web.server_port}/t/acme-twin")
                    page.locator("[data-testid=plans] a").first.click()
                    page.wait_for_selector("[data-testid=summary]")
                    summary = page.inner_text("[data-testid=summary]")
                    lines = page.inner_text("[data-testid=lines]")
                    assert MONEY.search(summary) and not BARE_INTERVAL.search(summary), summary
                    assert MONEY.search(lines) and "google_" not in lines and "meta" not in lines.split()
                    assert not errors, errors
                finally:
                    browser.close()
        finally:
            web.shutdown()
            reports.shutdown()


def test_acme_proof_end_to_end_and_every_report_in_chromium(proof, tmp_path):
    _acme_degrades_to_a_synthetic_twin_with_runs_in_the_dagster_instance(proof)
    _proof_report_in_chromium_matches_the_warehouse(proof, tmp_path)
    _model_and_plan_reports_in_chromium(proof, tmp_path)
    _index_every_report_and_the_approvals_page(proof, tmp_path)
