"""The Dagster UI as a user gets it: `weathervane ui` from an environment with nothing activated, the code location
loaded in a real webserver (checked through its GraphQL API), and a report link opening in a real browser."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

WORKSPACE_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename
      ... on PythonError { message }
      ... on RepositoryLocation { repositories { name
          jobs { name } sensors { name } schedules { name scheduleState { status } }
          assetNodes { assetKey { path } groupName description } } } } } } } }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["data"]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def wait_for_location(port: int, proc: subprocess.Popen, timeout: float = 400) -> dict:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        assert proc.poll() is None, "the UI process exited"
        try:
            data = graphql(port, WORKSPACE_QUERY)["workspaceOrError"]
            entries = data.get("locationEntries") or []
            if entries and entries[0]["loadStatus"] == "LOADED":
                return entries[0]
            last = data
        except OSError as exc:
            last = exc
        time.sleep(2)
    raise AssertionError(f"code location did not load in {timeout}s: {last}")


LAUNCH = """
mutation Launch($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }
"""
RUN_STATUS = """query Run($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status
  stepStats { stepKey status startTime endTime } } } }"""
MATERIALIZED = """query Mat($key: AssetKeyInput!, $partition: String!) { assetOrError(assetKey: $key) { __typename
  ... on Asset { assetMaterializations(partitions: [$partition]) { runId metadataEntries { label
  ... on TextMetadataEntry { text } } } } } }"""


def graphql_vars(port: int, query: str, variables: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                 data=json.dumps({"query": query, "variables": variables}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = json.loads(resp.read())
    assert "errors" not in body, body["errors"]
    return body["data"]


def materialize_all(port: int, location: str, keys: list[list[str]], tenant: str) -> str:
    """What *Materialize all* → tenant → Launch does in the UI: every asset, the tenant's partition, no run config."""
    params = {"selector": {"repositoryLocationName": location, "repositoryName": "__repository__",
                           "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": k} for k in keys]},
              "mode": "default", "runConfigData": {},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": tenant}]}}
    out = graphql_vars(port, LAUNCH, {"params": params})["launchPipelineExecution"]
    assert out["__typename"] == "LaunchRunSuccess", out
    return out["run"]["runId"]


def wait_for_run(port: int, run_id: str, timeout: float) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = graphql_vars(port, RUN_STATUS, {"id": run_id})["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return run
        time.sleep(5)
    raise AssertionError(f"run {run_id} did not finish in {timeout}s")


def wait_for_partition(port: int, tenant: str, timeout: float = 180) -> None:
    """The landing sensor registers a new tenant folder as a partition."""
    query = """{ assetNodes(assetKeys: [{path: ["mmm", "weather_mmm"]}]) { partitionKeys } }"""
    deadline = time.time() + timeout
    while time.time() < deadline:
        nodes = graphql_vars(port, query, {})["assetNodes"]
        if nodes and tenant in (nodes[0]["partitionKeys"] or []):
            return
        time.sleep(3)
    raise AssertionError(f"the landing sensor did not register {tenant} in {timeout}s")


@pytest.mark.slow  # the longest test: dealt first (tests/conftest.py)
def test_ui_loads_the_code_location_and_a_new_brand_launched_with_no_run_config_ends_in_a_plan(tmp_path):
    """As a new user: a brand's files land, the sensor registers it, Materialize all with no run config; the run
    follows the brand's model spec and every step, the plan included, succeeds."""
    from weathervane.simulate import simulate_tenant

    tenant = "newbrand"
    (tmp_path / "landing").mkdir()
    simulate_tenant(tenant, tmp_path / "landing", seed=3, days=430, n_geos=2)
    ui_port, reports_port = free_port(), free_port()
    # A user's shell: no virtual environment on PATH (dbt and dagster live only in .venv/bin).
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "DAGSTER_HOME")}
    env["PATH"] = "/usr/bin:/bin"
    env.update(DAGSTER_HOME=str(tmp_path / "home"), WEATHERVANE_LANDING=str(tmp_path / "landing"),
               WEATHERVANE_WAREHOUSE=str(tmp_path / "wh.duckdb"), WEATHERVANE_REPORTS=str(tmp_path / "reports"),
               WEATHERVANE_MODEL_STORE=str(tmp_path / "models"))
    assert shutil.which("dbt", path=env["PATH"]) is None
    log = tmp_path / "ui.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster_project.cli", "ui", "--port", str(ui_port), "--reports-port",
             str(reports_port), "--approvals-port", "0"],
            cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    run = plan = None
    try:
        entry = wait_for_location(ui_port, proc)
        keys = [a["assetKey"]["path"] for a in
                entry["locationOrLoadError"]["repositories"][0]["assetNodes"]]
        wait_for_partition(ui_port, tenant)
        run = wait_for_run(ui_port, materialize_all(ui_port, entry["name"], keys, tenant), timeout=900)
        plan = graphql_vars(ui_port, MATERIALIZED, {"key": {"path": ["decisions", "plans"]},
                                                    "partition": tenant})["assetOrError"]
    finally:
        # As a service manager stops it: SIGTERM to `weathervane ui` alone, which stops dagster dev in order.
        proc.send_signal(signal.SIGTERM)
        try:
            stopped = proc.wait(timeout=120) is not None
        except subprocess.TimeoutExpired:
            stopped = False
        deadline = time.time() + 60
        while _group_alive(proc.pid) and time.time() < deadline:  # its webserver, daemon and code server
            time.sleep(1)
        orphans = _group_alive(proc.pid)
        if orphans:
            os.killpg(proc.pid, signal.SIGKILL)
        out = log.read_text(errors="replace")
    assert stopped, f"weathervane ui did not stop within 2 minutes of SIGTERM: {out[-3000:]}"
    assert not orphans, "processes of weathervane ui were still running a minute after it stopped"
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", (location, out[-3000:])
    repo = location["repositories"][0]
    assets = {"/".join(a["assetKey"]["path"]): a for a in repo["assetNodes"]}
    for key in ["raw/shopify__orders", "raw/weather__daily", "marts/fct_model_input", "mmm/weather_mmm",
                "decisions/plans"]:
        assert key in assets, key
    assert {"ingest_job", "refresh_job"} <= {j["name"] for j in repo["jobs"]}
    assert {"landing_sensor", "tenant_partition_guard"} <= {s["name"] for s in repo["sensors"]}
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]}
    assert schedules == {"weekly_refresh": "STOPPED"}  # off by default, as the README says
    groups = {a["groupName"] for a in assets.values()}
    assert groups <= {"landing", "harmonize", "model", "decide", "audit", "report"}, groups
    assert all(a["description"] for a in assets.values()), [
        k for k, a in assets.items() if not a["description"]]
    for s in run["stepStats"]:  # the step times, for whoever reads a slow run's output
        print(s["stepKey"], s["status"], round((s["endTime"] or 0) - (s["startTime"] or 0)), "s")
    failed = [s["stepKey"] for s in run["stepStats"] if s["status"] != "SUCCESS"]
    assert run["status"] == "SUCCESS" and not failed, (failed, out[-3000:])
    assert plan["assetMaterializations"], "the plan asset was not materialized for the new brand"
    import duckdb

    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    try:
        spec = dict(con.execute("select field, value from ops.model_spec where tenant_id = ? and status = 'ok'",
                                [tenant]).fetchall())
        model = con.execute("select s.model_id, m.period from mmm.model_selection s join mmm.models m using "
                            "(model_id) where s.tenant_id = ?", [tenant]).fetchone()
        decision = con.execute("select decision, fallback_reason from decisions.plans where tenant_id = ?",
                               [tenant]).fetchone()
    finally:
        con.close()
    # the fit followed the spec the sniff decided (no run config anywhere), and the plan says what it decided
    assert model is not None and json.loads(spec["period"]) == model[1], (spec, model)
    assert decision[0] == "plan" or decision[1], decision


def _chromium_page_errors(url: str, screenshot: Path) -> tuple[str, list[str]]:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        page.screenshot(path=str(screenshot), full_page=True)
        title = page.title()
        browser.close()
    return title, errors


@pytest.mark.heavy
def test_report_link_in_asset_metadata_opens_over_http(wv_env, monkeypatch, tmp_path):
    """A fit's report link is an http:// address that the reports server answers and a browser renders."""
    from dagster import DagsterInstance, materialize

    from dagster_project.defs.mmm import weather_mmm
    from dagster_project.resources import WeathervaneResource
    from tests.test_mmm import _load_warehouse
    from weathervane.mmm.synthetic import synthetic_panel
    from weathervane.report_server import make_report_server

    port = free_port()
    monkeypatch.setenv("WEATHERVANE_REPORTS_URL", f"http://127.0.0.1:{port}")
    tenant = "mmmtest"
    _load_warehouse(wv_env["warehouse"], synthetic_panel(tenant, days=240, n_geos=1, seed=4))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", [tenant])
    result = materialize(
        [weather_mmm], partition_key=tenant, instance=instance, resources={"weathervane": WeathervaneResource()},
        run_config={"ops": {"mmm__weather_mmm": {"config": {"method": "map", "holdout_weeks": 0, "period": "week"}}}},
    )
    assert result.success
    metadata = result.asset_materializations_for_node("mmm__weather_mmm")[0].metadata
    url = metadata["report"].value
    assert url.startswith(f"http://127.0.0.1:{port}/{tenant}/") and url.endswith(".html")

    server = make_report_server("127.0.0.1", port, wv_env["reports"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        title, errors = _chromium_page_errors(url, tmp_path / "report.png")
        # nothing outside the reports folder is served (its index pages are generated, not listings)
        for bad in ["/../../etc/hostname", f"/{tenant}/.hidden.html"]:
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}{bad}", timeout=10)
    finally:
        server.shutdown()
    assert title and not errors, errors
    assert (tmp_path / "report.png").stat().st_size > 10_000
