"""What people read: weather in words, the replay's headline, the reports index, `users add`, and a run whose ERROR
checks failed marked failed."""
from __future__ import annotations

import io
import threading
import urllib.error
import urllib.request

import pandas as pd
import pytest

from weathervane import reports as rp
from weathervane.cli import main
from weathervane.governance.identity import UserStore
from weathervane.replay.report import headline_from_rows


def test_weather_is_said_in_its_own_units_and_effects_per_typical_swing():
    assert rp.weather_in_words("temperature_2m_mean", -0.95, 4.2) == "4 °C colder than usual"
    assert rp.weather_in_words("precipitation_sum", 0.3, 2.0) == "0.6 mm wetter than usual"
    assert rp.weather_in_words("temperature_2m_mean", 0.01, 4.0) == "usual weather"
    assert rp.weather_in_words("temperature_2m_mean", 1.2) == "1.2 sd warmer than usual"  # unit unknown
    s = rp.weather_sentence("meta", "temperature_2m_mean", 1.28, 1.21, 1.35, sd=4.2)
    assert s.startswith("A day 4 °C warmer than usual makes Meta about 28% more effective")


def _rows(blind_lift: float, aware=(900.0, 100.0, 1700.0, 0.97)) -> pd.DataFrame:
    rows = []
    for policy, (m, lo, hi, p) in {"keep_split": (0, 0, 0, None), "weather_aware": aware,
                                   "weather_blind": (blind_lift, -200, 1200, 0.8)}.items():
        for est in ("direct", "snips", "doubly_robust"):
            rows.append(dict(policy=policy, estimator=est, lift_mean=m, lift_p05=lo, lift_p95=hi,
                             prob_lift_positive=p, evaluable=True, reason=None, n_periods=13))
    return pd.DataFrame(rows)


def test_replay_headline_names_what_was_compared_the_winner_how_sure_and_the_weather_blind_result():
    text = headline_from_rows(_rows(500.0), "EUR")
    assert "13 past budget periods" in text and "the same plan ignoring the weather" in text
    assert "Best: the weather-aware plan, with €900 more net revenue (90% interval €100 to €1,700)" in text
    assert "chance it truly beats keeping the split is 97%" in text
    assert "Ignoring the weather got €500 more" in text and "about €400" in text
    unsure = headline_from_rows(
        _rows(500.0, aware=(900.0, -50.0, 1700.0, 0.9)), "USD")
    assert "cannot call a winner" in unsure
    looser = _rows(500.0)[lambda r: r["policy"] == "weather_aware"].assign(
        policy="looser", lift_mean=1200.0, lift_p05=300.0, lift_p95=2000.0)
    text = headline_from_rows(pd.concat([_rows(500.0), looser]), "USD")
    assert "Best: the weather-aware plan with twice the change limit, with $1,200 more" in text
    assert "The weather-aware plan got $900 more" in text and "Ignoring the weather got $500 more" in text


@pytest.fixture
def reports_site(tmp_path):
    from weathervane.report_server import make_report_server

    root = tmp_path / "reports"
    (root / "demo").mkdir(parents=True)
    (root / "demo" / "proof.html").write_text("<html>proof</html>")
    (root / "demo" / "<script>x.html").write_text("x")
    (root / "demo" / "leak.html").symlink_to(tmp_path / "secret.html")
    (tmp_path / "secret.html").write_text("secret")
    (root / ".hidden").mkdir()
    (root / "alias").symlink_to(root / "demo")
    server = make_report_server(port=0, reports_dir=root)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_reports_index_lists_tenants_and_reports_but_no_link_dotfile_or_raw_name(reports_site):
    status, page = _get(reports_site + "/")
    assert status == 200 and 'href="/demo/"' in page and "alias" not in page and ".hidden" not in page
    for path in ("/demo/", "/demo"):
        status, page = _get(reports_site + path)
        assert status == 200 and 'href="/demo/proof.html"' in page and "Brand proof" in page
        assert "leak" not in page and "<script>" not in page and "&lt;script&gt;" in page
    assert _get(reports_site + "/alias/")[0] == 404  # a link to a folder is not indexed
    assert _get(reports_site + "/.hidden/")[0] == 404
    assert _get(reports_site + "/nobody/")[0] == 404
    assert _get(reports_site + "/demo/leak.html")[0] == 404
    assert _get(reports_site + "/%00/")[0] == 400


def test_users_add_sets_the_secret_and_names_the_person_in_tenant_yaml(tmp_path, monkeypatch, capsys):
    from weathervane import config

    landing = tmp_path / "landing"
    (landing / "shop").mkdir(parents=True)
    (landing / "shop" / "tenant.yaml").write_text("currency: EUR\nautopilot:\n  approvers: [lead@brand.example]\n")
    monkeypatch.setenv("WEATHERVANE_LANDING", str(landing))
    users = str(tmp_path / "users.json")
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["users", "add", "--user", "Ann@Brand.example", "--tenant", "shop", "--role", "approver",
                 "--users-file", users]) == 0
    cfg = config.load_tenant_config(landing, "shop")
    assert cfg.autopilot.approvers == ["lead@brand.example", "ann@brand.example"] and cfg.currency == "EUR"
    assert UserStore(users).authenticate("ann@brand.example", "correct horse battery") is not None
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["users", "add", "--user", "ann@brand.example", "--tenant", "nope", "--role", "viewer",
                 "--users-file", users]) == 2
    out = capsys.readouterr().out
    assert "no tenant 'nope'" in out and "Traceback" not in out


def test_a_run_whose_error_check_failed_is_marked_failed(tmp_path):
    from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, DagsterInstance, DagsterRunStatus,
                         MaterializeResult, asset, materialize)

    from dagster_project.run_log import mark_run_if_error_checks_failed

    @asset(check_specs=[AssetCheckSpec("fine", asset="thing"), AssetCheckSpec("broken", asset="thing")])
    def thing():
        return MaterializeResult(check_results=[
            AssetCheckResult(check_name="fine", passed=True),
            AssetCheckResult(check_name="broken", passed=False, severity=AssetCheckSeverity.ERROR)])

    @asset(check_specs=[AssetCheckSpec("soft", asset="other")])
    def other():
        return MaterializeResult(check_results=[
            AssetCheckResult(check_name="soft", passed=False, severity=AssetCheckSeverity.WARN)])

    with DagsterInstance.ephemeral() as instance:
        bad = materialize([thing], instance=instance)
        warn_only = materialize([other], instance=instance)
        assert bad.success and warn_only.success  # Dagster alone calls both green
        assert mark_run_if_error_checks_failed(instance, bad.run_id) == ["thing broken"]
        assert mark_run_if_error_checks_failed(instance, warn_only.run_id) == []
        assert instance.get_run_by_id(bad.run_id).status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(warn_only.run_id).status == DagsterRunStatus.SUCCESS


def test_step_progress_says_one_line_per_step_and_logs_every_event(tmp_path):
    from dagster import DagsterInstance, Definitions, asset, define_asset_job
    from dagster._core.utils import make_new_run_id

    from dagster_project.run_log import StepProgress

    @asset
    def first():
        return 1

    @asset
    def second(first):
        raise RuntimeError("boom")

    job = Definitions(assets=[first, second], jobs=[define_asset_job("both")]).resolve_job_def("both")
    said = []
    with DagsterInstance.ephemeral() as instance, (tmp_path / "run.log").open("w") as log:
        run_id = make_new_run_id()
        progress = StepProgress(log, say=said.append)
        instance.add_event_listener(run_id, progress)
        job.execute_in_process(instance=instance, run_id=run_id, raise_on_error=False)
    assert len(said) == 2 and said[0].startswith("ok   first") and said[0].endswith(" s")
    assert said[1].startswith("FAIL second") and progress.failed_steps == ["second"]
    text = (tmp_path / "run.log").read_text()
    assert "STEP_START" in text and "STEP_FAILURE" in text and "boom" in text


def test_a_tenant_run_from_python_takes_the_uis_executor_and_its_progress_sees_every_step(wv_env, tmp_path,
                                                                                          monkeypatch):
    """`run_tenant_pipeline` (weathervane demo, proof) runs the code location's executor: each step in a process
    of its own, not this one; the follower hands every event the step processes wrote to the progress, in order."""
    import os
    import shutil

    from dagster import DagsterEventType

    from dagster_project.cli import run_tenant_pipeline
    from dagster_project.run_log import StepProgress
    from tests.conftest import ACME_EXAMPLE

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    shutil.copytree(ACME_EXAMPLE, wv_env["landing"] / "acme")
    said, entries = [], []
    with (tmp_path / "run.log").open("w") as log:
        progress = StepProgress(log, say=said.append)

        def both(entry):
            entries.append(entry)
            progress(entry)

        result = run_tenant_pipeline("acme", job_name="ingest_job", on_event=both, quiet=True)
    assert result.success
    assert said and said[0].startswith("ok   ingest the landing files")
    started = [e for e in entries if e.dagster_event and e.dagster_event.event_type == DagsterEventType.STEP_START]
    assert started and all(e.dagster_event.pid != os.getpid() for e in started)  # the step ran in a process of its own
    assert entries[-1].dagster_event.event_type == DagsterEventType.RUN_SUCCESS  # nothing written after the end lost
    assert [e.run_id for e in entries] == [result.run_id] * len(entries)
