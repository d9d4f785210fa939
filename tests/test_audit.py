"""Causal audits on a simulated tenant with deployments of known effect, and the rollout gate they feed.

One simulated panel (the simulator's realized daily revenue per geo, before its own deployment, without the
lift-test geo) goes into a real DuckDB warehouse as marts.fct_sales_daily; deployments arrive as a landing file
through the real ingest. Two deployments add 40% to the treated geo's revenue for four weeks, one adds nothing,
one is still live and one is national (no donors). The audits are sampled once (module fixture, production NUTS settings).
"""
from __future__ import annotations

import argparse
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from weathervane.audit.methods import DID, ITS, SYNTH, AuditSettings
from weathervane.audit.run import audit_key, audit_rows, load_inputs, run_audits, write_audits
from weathervane.config import Autopilot, TenantConfig, load_tenant_config
from weathervane.governance.autopilot import add_autopilot_cli, gate_state, sentinel_plan_id, sync_mode
from weathervane.governance.cli import add_plans_cli
from weathervane.landing import ingest_tenant
from weathervane.simulate import simulate_tenant
from weathervane.reports import audience
from weathervane.simulate.deployments import inject, revenue_panel
from weathervane.warehouse import connect, ensure_schemas

TENANT = "shop"
EFFECT = 0.40
# (id, treated geo index or "US", first day, last day or None, effect): windows and their 91-day pre-periods never
# overlap another change of the same geo
PLAN = [("dep-aa", 0, 91, 118, 0.0), ("dep-a", 0, 210, 237, EFFECT), ("dep-b", 0, 329, 356, EFFECT),
        ("dep-live", 1, 358, None, 0.0), ("dep-national", "US", 357, 359, 0.0)]


def _ts(d: date) -> str:
    return f"{d.isoformat()}T00:00:00+00:00"


def _write_marts(con, panel: pd.DataFrame, truth) -> None:
    sales = panel.reset_index(names="date").melt(id_vars="date", var_name="geo_id", value_name="net_revenue")
    spend = pd.DataFrame([
        {"date": date.fromisoformat(d), "channel": ch, "geo_id": g, "spend": v}
        for ch, by_geo in truth.daily.spend.items() for g, vals in by_geo.items() if g in panel.columns
        for d, v in zip(truth.daily.dates, vals) if date.fromisoformat(d) <= panel.index[-1]
    ])
    con.register("sales_df", sales)
    con.register("spend_df", spend)
    con.execute("create table marts.fct_sales_daily as select ? as tenant_id, cast(date as date) as date, "
                "'all' as product_key, geo_id, 0 as orders, 0 as units, net_revenue as gross_revenue, "
                "0.0 as discount_amount, net_revenue from sales_df", [TENANT])
    con.execute("create table marts.fct_ad_spend_daily as select ? as tenant_id, cast(date as date) as date, "
                "channel, 'c1' as campaign_id, geo_id, spend, 0 as impressions, 0 as clicks, 'meta_ads' as platform "
                "from spend_df", [TENANT])


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit")
    paths = {"landing": tmp / "landing", "warehouse": tmp / "warehouse.duckdb", "reports": tmp / "reports",
             "models": tmp / "models"}
    mp = pytest.MonkeyPatch()
    for var, key in (("WEATHERVANE_LANDING", "landing"), ("WEATHERVANE_WAREHOUSE", "warehouse"),
                     ("WEATHERVANE_REPORTS", "reports"), ("WEATHERVANE_MODEL_STORE", "models")):
        mp.setenv(var, str(paths[key]))
    truth = simulate_tenant("sim", tmp / "sim", seed=5, days=480, n_geos=6, orders_per_geo_day=25,
                            grain=("all", "region"))
    panel = revenue_panel(truth).drop(columns=sorted({lt.geo_id for lt in truth.lift_tests}))
    panel = panel.loc[panel.index < date.fromisoformat(truth.deployment.start_date)].iloc[:360]
    geos = list(panel.columns)
    organic = panel
    known, records = {}, []
    for dep_id, gi, first, last, effect in PLAN:
        treated = ["US"] if gi == "US" else [geos[gi]]
        start = panel.index[first]
        if last is not None and gi != "US" and effect:
            panel, known[dep_id] = inject(panel, dep_id, treated, start, panel.index[last], effect)
        elif last is not None and gi != "US":
            panel, known[dep_id] = inject(panel, dep_id, treated, start, panel.index[last], 0.0)
        records.append({"deployment_id": dep_id, "plan_id": None, "started_at": _ts(start),
                        "ended_at": None if last is None else _ts(panel.index[last] + timedelta(days=1)),
                        "channels": ["meta"], "geo_ids": treated, "description": f"test deployment {dep_id}"})
    folder = paths["landing"] / TENANT
    (folder / "autopilot" / "deployments").mkdir(parents=True)
    (folder / "tenant.yaml").write_text("timezone: UTC\naudit: {pre_period_days: 91}\n"
                                        "autopilot: {approvers: [lead@shop.example], mode: assisted}\n")
    (folder / "autopilot" / "deployments" / "2024.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    con = connect(paths["warehouse"])
    ensure_schemas(con)
    ingest_tenant(con, paths["landing"], TENANT)
    _write_marts(con, panel, truth)
    cfg = load_tenant_config(paths["landing"], TENANT)
    settings = AuditSettings(pre_period_days=cfg.audit.pre_period_days)  # production draws: shorter chains miss its ESS gate
    run = run_audits(con, TENANT, cfg, paths["reports"], settings, audience(TENANT, paths["landing"]))
    rows = {(r["deployment_id"], r["method"]): r for r in
            con.execute("select * from decisions.causal_audits").fetchdf().to_dict("records")}
    con.close()
    yield {"paths": paths, "run": run, "rows": rows, "known": known, "settings": settings, "organic": organic}
    mp.undo()


@pytest.mark.heavy  # the module's fixture (simulation and seven short NUTS fits) lands on this test
def test_known_increments_recovered_with_verdict_improved(audited):
    rows, known = audited["rows"], audited["known"]
    for dep in ("dep-a", "dep-b"):
        synth = rows[(dep, SYNTH)]
        assert synth["is_primary"] and synth["verdict"] == "improved", synth
        assert synth["effect_p05"] <= known[dep].increment <= synth["effect_p95"]
        assert synth["placebo_p_value"] <= 0.10 and synth["prob_positive"] > 0.95
        assert synth["relative_effect_mean"] > 0.1 and synth["incremental_spend"] is not None
        weights = json.loads(synth["donor_weights"])
        assert len(weights) == 4 and abs(sum(weights.values()) - 1) < 0.01
        assert synth["max_rhat"] <= 1.05 and synth["treated_geo_ids"] == list(known[dep].geo_ids)
        did = rows[(dep, DID)]
        assert not did["is_primary"] and did["effect_p05"] > 0 and did["verdict"] in ("improved", "no_detectable_effect"), \
            (did["verdict"], did["reason"])


def test_aa_deployment_has_no_detectable_effect(audited):
    aa = audited["rows"][("dep-aa", SYNTH)]
    assert aa["verdict"] == "no_detectable_effect"
    assert aa["effect_p05"] <= 0 <= aa["effect_p95"]


def test_unfinished_window_and_missing_donors_are_not_evaluable(audited):
    rows = audited["rows"]
    live = rows[("dep-live", SYNTH)]
    assert live["verdict"] == "not_evaluable" and live["reason"].startswith("window not over")
    assert pd.isna(live["effect_mean"])
    national = rows[("dep-national", SYNTH)]
    assert national["verdict"] == "not_evaluable" and national["reason"].startswith("no donors")
    assert rows[("dep-national", DID)]["verdict"] == "not_evaluable"
    # with no donors the series is its own control: dep-live changed a geo of it inside the window, so the
    # interrupted time series refuses rather than read that change (and the Christmas dip) as this one's effect
    its = rows[("dep-national", ITS)]
    assert its["is_primary"] and its["verdict"] == "not_evaluable", its
    assert its["reason"].startswith("contaminated: dep-live"), its["reason"]


def test_a_clean_national_change_is_measured_by_the_interrupted_time_series(audited):
    """The same panel before any test deployment: +40% everywhere for four weeks after 300 clean days (enough
    for the placebo windows to reach p <= 0.10)."""
    from weathervane.audit.methods import audit_intervention
    from weathervane.audit.panel import Intervention

    panel = audited["organic"]
    start, end = panel.index[300], panel.index[327]
    lifted, known = inject(panel.iloc[:340], "dep-clean", list(panel.columns), start, end, EFFECT)
    iv = Intervention(deployment_id="dep-clean", plan_id=None, start=start, end=end, geo_ids=("US",))
    rows = {r.method: r for r in audit_intervention(lifted, None, iv, [], audited["settings"], seed=3)}
    its = rows[ITS]
    assert rows[SYNTH].verdict == "not_evaluable" and its.verdict == "improved", (its.verdict, its.reason)
    assert its.q(its.effect, 0.05) <= known.increment <= its.q(its.effect, 0.95)


def test_reports_and_idempotent_rewrite(audited):
    run, paths = audited["run"], audited["paths"]
    report = next(a.report_path for a in run.audits if a.intervention.deployment_id == "dep-a")
    text = Path(report).read_text()
    assert "improved" in text and text.count("<img") == 4  # observed vs counterfactual, effect, weights, placebos
    assert "window not over" in Path(next(a.report_path for a in run.audits
                                          if a.intervention.deployment_id == "dep-live")).read_text()
    con = duckdb.connect(str(paths["warehouse"]))
    try:
        before = sorted(r[0] for r in con.execute("select audit_id from decisions.causal_audits").fetchall())
        write_audits(con, TENANT, audit_rows(run))
        after = sorted(r[0] for r in con.execute("select audit_id from decisions.causal_audits").fetchall())
        inputs = load_inputs(con, TENANT, load_tenant_config(paths["landing"], TENANT))
    finally:
        con.close()
    assert before == after and len(after) == len(set(after)) == 11
    dep_a = next(iv for iv in inputs.interventions if iv.deployment_id == "dep-a")
    assert audit_key(TENANT, dep_a, SYNTH)[:32] in after


def _copy_warehouse(audited, tmp_path, with_audits: bool) -> Path:
    path = tmp_path / f"wh-{with_audits}.duckdb"
    shutil.copy(audited["paths"]["warehouse"], path)
    if not with_audits:
        con = duckdb.connect(str(path))
        con.execute("delete from decisions.causal_audits")
        con.close()
    return path


def _cfg(mode: str, need: int = 2) -> TenantConfig:
    return TenantConfig(autopilot=Autopilot(approvers=["lead@shop.example"], mode=mode, min_improved_audits=need))


def test_gate_refuses_promotion_without_evidence_and_allows_it_with_it(audited, tmp_path, monkeypatch):
    monkeypatch.setenv("WEATHERVANE_MODEL_STORE", str(tmp_path / "models"))
    con = duckdb.connect(str(_copy_warehouse(audited, tmp_path, with_audits=False)))
    state = sync_mode(con, TENANT, _cfg("autopilot"))
    assert not state.passed and state.effective == "assisted" and "needs 2 improved" in state.refused
    assert [(e.from_status, e.to_status) for e in state.recorded_events] == [(None, "assisted")]
    con.close()

    con = duckdb.connect(str(_copy_warehouse(audited, tmp_path, with_audits=True)))
    assert not sync_mode(con, TENANT, _cfg("autopilot", need=3)).passed  # two improved audits, three required
    state = sync_mode(con, TENANT, _cfg("autopilot"))
    assert state.passed and state.applies_without_approval
    assert [(e.from_status, e.to_status) for e in state.recorded_events] == [("assisted", "autopilot")]
    assert sorted(k for k, _ in state.evidence.improved) == ["dep-a", "dep-b"]
    down = sync_mode(con, TENANT, _cfg("shadow"))
    assert down.passed and [(e.from_status, e.to_status) for e in down.recorded_events] == [("autopilot", "shadow")]
    # a worse audit in the lookback closes the gate again
    con.execute("update decisions.causal_audits set verdict = 'worse' where deployment_id = 'dep-aa' and is_primary")
    assert "worse: dep-aa" in gate_state(con, TENANT, _cfg("assisted")).refused
    con.close()


def test_tampered_mode_event_detected_by_plans_verify_and_status_cli(audited, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WEATHERVANE_MODEL_STORE", str(tmp_path / "models"))
    wh = _copy_warehouse(audited, tmp_path, with_audits=True)
    landing = audited["paths"]["landing"]
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_plans_cli(sub)
    add_autopilot_cli(sub)

    def run(*argv):
        args = parser.parse_args([*argv, "--tenant", TENANT, "--warehouse", str(wh), "--landing", str(landing)])
        return args.func(args)

    assert run("autopilot", "status") == 0  # tenant.yaml asks for assisted: nothing to promote
    out = capsys.readouterr().out
    assert "mode in force assisted" in out and "promotion to autopilot: allowed" in out and "dep-a" in out
    assert run("autopilot", "sync", "--actor", "ops@shop.example") == 0
    assert run("plans", "verify") == 0
    capsys.readouterr()
    con = duckdb.connect(str(wh))
    con.execute("update decisions.plan_events set to_status = 'autopilot' where plan_id = ?", [sentinel_plan_id(TENANT)])
    con.close()
    assert run("plans", "verify") == 4
    out = capsys.readouterr().out
    assert f"plan {sentinel_plan_id(TENANT)}" in out and "was edited" in out


def test_gate_check_blocks_the_plan_in_dagster_until_the_evidence_holds(audited, tmp_path):
    from dagster import AssetSelection, DagsterInstance, Definitions, define_asset_job

    from dagster_project.defs.audit import GATE_CHECK, autopilot_gate
    from dagster_project.defs.decisions import budget_plan
    from dagster_project.partitions import tenant_partitions
    from dagster_project.resources import WeathervaneResource

    landing = tmp_path / "landing"
    (landing / TENANT).mkdir(parents=True)
    (landing / TENANT / "tenant.yaml").write_text("autopilot: {mode: autopilot, approvers: [lead@shop.example]}\n")
    job = define_asset_job("gate_only", selection=AssetSelection.checks(autopilot_gate),
                           partitions_def=tenant_partitions)
    results = []
    for with_audits in (False, True):
        wh = _copy_warehouse(audited, tmp_path, with_audits)
        resource = WeathervaneResource(landing_root=str(landing), warehouse_path=str(wh),
                                       model_store=str(tmp_path / "models"), reports_dir=str(tmp_path / "reports"))
        defs = Definitions(assets=[budget_plan], asset_checks=[autopilot_gate], jobs=[job],
                           resources={"weathervane": resource})
        run = defs.resolve_job_def("gate_only").execute_in_process(
            tags={"dagster/partition": TENANT}, instance=DagsterInstance.ephemeral(), raise_on_error=False)
        (evaluation,) = run.get_asset_check_evaluations()
        assert evaluation.check_name == GATE_CHECK
        results.append((run.success, evaluation.passed, evaluation.metadata["mode"].value))
    assert results == [(False, False, "assisted"), (True, True, "autopilot")]


def test_applied_plan_is_an_intervention_on_the_geos_it_moved(tmp_path, monkeypatch):
    from weathervane.audit.panel import read_applied_plans
    from weathervane.governance import apply, approve, ensure_decision_tables, record_proposal

    monkeypatch.setenv("WEATHERVANE_MODEL_STORE", str(tmp_path / "models"))
    cfg = TenantConfig(autopilot=Autopilot(approvers=["lead@shop.example"], appliers=["ops@shop.example"]))
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_decision_tables(con)
    start = date.today()
    con.execute("begin transaction")
    con.execute("insert into decisions.plans (plan_id, tenant_id, model_id, created_at, horizon_start, horizon_end, "
                "total_budget, status) values ('p1', ?, 'm1', now(), ?, ?, 3800, null)",
                [TENANT, start, start + timedelta(days=27)])
    for geo, rec, prev in (("US-CA", 2800.0, 2000.0), ("US-TX", 1000.0, 1010.0)):
        con.execute("insert into decisions.plan_lines (plan_id, tenant_id, channel, geo_id, recommended_spend, "
                    "previous_spend) values ('p1', ?, 'meta', ?, ?, ?)", [TENANT, geo, rec, prev])
    record_proposal(con, TENANT, "p1", cfg)
    con.execute("commit")
    assert read_applied_plans(con, TENANT) == []  # proposed is not applied
    approve(con, "p1", "lead@shop.example", "ok", cfg)
    apply(con, "p1", "ops@shop.example", "live", cfg)
    (plan,) = read_applied_plans(con, TENANT)
    con.close()
    assert (plan.plan_id, plan.deployment_id, plan.geo_ids, plan.channels) == ("p1", None, ("US-CA",), ("meta",))
    assert (plan.start, plan.end, plan.key) == (start, start + timedelta(days=27), "plan:p1")
