"""The approve / reject job and the adoption asset with its check, on an ephemeral Dagster instance."""
from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest
from dagster import DagsterInstance, materialize

from dagster_project.defs.decisions import plan_adoption, plan_decision_job
from dagster_project.resources import WeathervaneResource
from weathervane.config import load_tenant_config
from weathervane.governance import ensure_decision_tables, record_proposal

APPROVER = "growth-lead@acme.example"


@pytest.fixture
def warehouse(wv_env):
    (wv_env["landing"] / "acme").mkdir()
    (wv_env["landing"] / "acme" / "tenant.yaml").write_text(
        f"autopilot: {{requires_approval: true, approvers: [{APPROVER}], appliers: [ops-bot]}}\n")
    con = duckdb.connect(str(wv_env["warehouse"]))
    ensure_decision_tables(con)
    start = date(2024, 6, 3)
    con.execute("begin transaction")
    con.execute("insert into decisions.plans (plan_id, tenant_id, model_id, created_at, horizon_start, horizon_end, "
                "total_budget, status) values ('p1', 'acme', 'm1', now(), ?, ?, 2800, null)",
                [start, start + timedelta(days=27)])
    con.execute("insert into decisions.plan_lines (plan_id, tenant_id, channel, geo_id, recommended_spend, "
                "previous_spend) values ('p1', 'acme', 'meta', 'US-CA', 2800, 2800)")
    record_proposal(con, "acme", "p1", load_tenant_config(wv_env["landing"], "acme"))
    con.execute("commit")
    con.execute("create schema marts")
    con.execute("create table marts.fct_ad_spend_daily as select 'acme' as tenant_id, "
                "cast(d as date) as date, 'meta' as channel, 'c1' as campaign_id, 'US-CA' as geo_id, 30.0 as spend, "
                "0 as impressions, 0 as clicks, 'meta_ads' as platform "
                "from generate_series(date '2024-06-03', date '2024-06-16', interval 1 day) t(d)")
    con.close()
    return wv_env


def _decide(decision, actor):
    return plan_decision_job.execute_in_process(
        run_config={"ops": {"decide_plan": {"config": {"plan_id": "p1", "decision": decision, "actor": actor,
                                                       "reason": "from the UI"}}}},
        resources={"weathervane": WeathervaneResource()}, instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_job_refuses_non_approver_then_approves_and_adoption_check_flags_underspend(warehouse):
    refused = _decide("approve", "intern@acme.example")
    assert not refused.success
    failure = refused.failure_data_for_node("decide_plan")
    assert "not a listed approver" in str(failure.error.cause or failure.error)
    assert _decide("apply", APPROVER).success is False  # not approved yet
    assert _decide("approve", APPROVER).success
    assert _decide("apply", "ops-bot").success
    con = duckdb.connect(str(warehouse["warehouse"]))
    assert con.execute("select status from decisions.plans").fetchone()[0] == "applied"
    con.execute("update decisions.plan_events set \"at\" = timestamp '2024-06-01 08:00:00' where to_status = 'applied'")
    con.close()

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["acme"])
    result = materialize([plan_adoption], partition_key="acme", instance=instance,
                         resources={"weathervane": WeathervaneResource()})
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 1 and not checks[0].passed  # 30/day executed vs 100/day planned
    con = duckdb.connect(str(warehouse["warehouse"]))
    ratios = con.execute("select period, adoption_ratio from decisions.plan_adoption order by period").fetchall()
    assert ratios == [(date(2024, 6, 3), pytest.approx(0.3)), (date(2024, 6, 10), pytest.approx(0.3))]
