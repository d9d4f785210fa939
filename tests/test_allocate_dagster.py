"""Fit -> plan through Dagster: a MAP fit, then the experiment and plan assets, on a real DuckDB warehouse."""
from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from weathervane.mmm.synthetic import CHANNELS, synthetic_panel

TENANT = "plandag"


def _load_marts(path, daily, weekly, weather):
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists marts; create schema if not exists raw")
    spend = daily.melt(id_vars=["tenant_id", "date", "geo_id"], value_vars=[f"spend_{c}" for c in CHANNELS],
                       var_name="channel", value_name="spend")
    spend["channel"] = spend["channel"].str.removeprefix("spend_")
    for name, frame in (("mi", weekly), ("wd", weather), ("sp", spend)):
        con.register(name, frame)
    con.execute("create table marts.fct_model_input as select * replace (cast(date as date) as date) from mi")
    con.execute("create table marts.fct_weather_daily as select * replace (cast(date as date) as date) from wd")
    con.execute("create table marts.fct_ad_spend_daily as select tenant_id, cast(date as date) as date, channel, "
                "'c-' || channel as campaign_id, geo_id, spend, 0::bigint as impressions, 0::bigint as clicks, "
                "'x' as platform from sp")
    con.execute("create table raw.experiments__lift_tests (tenant_id varchar, file_path varchar, file_hash varchar, "
                "source_line integer, loaded_at timestamp, geo_id varchar, record json)")
    con.close()


@pytest.mark.heavy
def test_map_fit_then_plan_asset_records_keep_the_split_with_reasons_total_kpi_and_experiments(wv_env, capsys):
    from dagster import DagsterInstance, materialize

    from dagster_project.defs.decisions import budget_plan, experiment_recommendations
    from dagster_project.defs.mmm import weather_mmm
    from dagster_project.resources import WeathervaneResource

    # 62 weeks x 2 geos, fitted weekly; the plan works from the daily spend and weather
    daily = synthetic_panel(TENANT, days=434, n_geos=2, seed=1, period="day")
    weekly = synthetic_panel(TENANT, days=434, n_geos=2, seed=1, period="week")
    _load_marts(wv_env["warehouse"], daily.model_input, weekly.model_input, daily.weather_daily)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", [TENANT])
    resources = {"weathervane": WeathervaneResource()}
    fit = materialize([weather_mmm], partition_key=TENANT, instance=instance, resources=resources,
                      run_config={"ops": {"mmm__weather_mmm": {"config": {"method": "map", "holdout_weeks": 0,
                                                                          "period": "week"}}}})
    assert fit.success
    model_id = fit.asset_materializations_for_node("mmm__weather_mmm")[0].metadata["model_id"].value

    # the model flags meta (as its identifiability summary does for a channel the data cannot pin down)
    con = duckdb.connect(str(wv_env["warehouse"]))
    con.execute("alter table mmm.channel_summary add column if not exists needs_experiment boolean")
    con.execute("update mmm.channel_summary set needs_experiment = (channel = 'meta') where model_id = ?", [model_id])
    con.close()

    result = materialize([experiment_recommendations, budget_plan], partition_key=TENANT, instance=instance,
                         resources=resources)
    assert result.success
    meta = result.asset_materializations_for_node("decisions__plans")[0].metadata
    assert meta["decision"].value == "keep_split" and meta["model_id"].value == model_id
    assert "map preview without sampler diagnostics" in meta["fallback_reason"].value
    assert "not scored on a holdout" in meta["fallback_reason"].value

    con = duckdb.connect(str(wv_env["warehouse"]), read_only=True)
    plan = con.execute("select plan_id, decision, fallback_reason, kpi_scope, expected_kpi_mean, expected_kpi_p05, "
                       "expected_kpi_p95, media_kpi_mean, baseline_media_kpi_mean, held_channels, horizon_start, "
                       "horizon_end, weather_assumed, status, report_path from decisions.plans").df().iloc[0]
    lines = con.execute("select channel, recommended_spend, baseline_spend, candidate_spend, binding_constraint, "
                        "needs_experiment from decisions.plan_lines").df()
    recent = con.execute("select sum(kpi) from marts.fct_model_input where date >= date '2024-02-12'").fetchone()[0]
    exp = con.execute("select channel, treated_geo_ids, control_geo_ids, duration_days, spend_change, "
                      "expected_interval_width, model_id from mmm.experiment_recommendations").df()
    con.close()
    assert plan["decision"] == "keep_split" and plan["status"] == "proposed"
    assert json.loads(plan["held_channels"]) == ["meta"]
    # the claim is the total KPI over the horizon (baseline + media), media in its own columns
    assert plan["kpi_scope"] == "total"
    assert plan["expected_kpi_p05"] == plan["expected_kpi_mean"] == plan["expected_kpi_p95"]  # MAP: one draw
    assert 0 < plan["media_kpi_mean"] < 0.5 * plan["expected_kpi_mean"]
    assert plan["media_kpi_mean"] == pytest.approx(plan["baseline_media_kpi_mean"])  # keep-the-split is the plan
    # the four weeks just before the horizon earned about what the plan expects over its four weeks
    assert plan["expected_kpi_mean"] == pytest.approx(recent, rel=0.25)
    assert (pd.Timestamp(plan["horizon_end"]) - pd.Timestamp(plan["horizon_start"])).days == 27
    assert json.loads(plan["weather_assumed"])["source"] == "climatology"
    assert (lines["recommended_spend"] - lines["baseline_spend"]).abs().max() < 1e-6
    assert set(lines.loc[lines["channel"] == "meta", "binding_constraint"]) == {"held: needs an experiment"}
    assert lines.loc[lines["channel"] == "meta", "needs_experiment"].all()
    assert not lines.loc[lines["channel"] != "meta", "needs_experiment"].any()
    # the flagged channel gets a lift-test design
    assert list(exp["channel"]) == ["meta"] and exp["model_id"].iloc[0] == model_id
    treated, controls = json.loads(exp["treated_geo_ids"].iloc[0]), json.loads(exp["control_geo_ids"].iloc[0])
    assert len(treated) == 1 and set(treated) | set(controls) <= {"US-CA", "US-TX"} and not set(treated) & set(controls)
    assert exp["duration_days"].iloc[0] >= 14 and exp["spend_change"].iloc[0] > 0
    assert exp["expected_interval_width"].iloc[0] > 0
    # the demo's closing summary reads the same warehouse, plan and model back (as `weathervane demo` calls it)
    from dagster_project.cli import demo_summary

    capsys.readouterr()
    demo_summary(TENANT)
    summary = capsys.readouterr().out
    assert f"Plan {plan['plan_id']} (proposed)" in summary and "It keeps the current split" in summary
    assert "Return on ad spend" in summary and "Reports (" in summary
    # the report says why the plan keeps the split and which experiment would let it move meta
    html = open(plan["report_path"], encoding="utf-8").read()
    assert "Recommendation: keep the current split" in html and "map preview without sampler diagnostics" in html
    assert "Experiments that would let the plan move held channels" in html and "held: needs an experiment" in html
