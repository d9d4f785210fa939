"""Budget plans: the allocator asset, plan adoption with its check, and the approve / reject job."""

from typing import Literal

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    asset,
    job,
    op,
)

from dagster_project.partitions import WAREHOUSE_POOL, tenant_partitions
from dagster_project.resources import WeathervaneResource

PLANS = AssetKey(["decisions", "plans"])
ADOPTION = AssetKey(["decisions", "plan_adoption"])
ADOPTION_CHECK = "plans_executed_as_approved"


@asset(
    key=PLANS,
    partitions_def=tenant_partitions,
    pool=WAREHOUSE_POOL,
    group_name="decide",
    owners=["team:analytics"],
    kinds={"duckdb", "scipy"},
    deps=[AssetKey(["mmm", "weather_mmm"]), AssetKey(["marts", "fct_ad_spend_daily"]),
          AssetKey(["marts", "fct_weather_daily"]), AssetKey(["marts", "fct_weather_forecast_daily"])],
    description="Weather-aware budget plan for the planning horizon from the latest model that passed diagnostics "
                "(decisions.plans / plan_lines, status proposed) and its HTML report.",
)
def budget_plan(context: AssetExecutionContext, weathervane: WeathervaneResource) -> MaterializeResult:
    from weathervane.allocate import propose_plan
    from weathervane.allocate.mmm_response import load_latest_response
    from weathervane.report_server import report_url

    tenant = context.partition_key
    cfg = weathervane.tenant_config(tenant)
    with weathervane.connect() as con:
        response = load_latest_response(con, tenant, weathervane.models())
        plan = propose_plan(con, tenant, cfg, response, reports_dir=weathervane.reports())
    return MaterializeResult(metadata={k: v for k, v in {
        "plan_id": plan.plan_id,
        "model_id": plan.model_id,
        "horizon": f"{plan.horizon_start} .. {plan.horizon_end}",
        "total_budget": float(plan.total_budget),
        "expected_kpi_mean": float(plan.kpi_draws.mean()),
        "baseline_kpi_mean": float(plan.baseline_kpi_draws.mean()),
        "prob_lift_positive": float((plan.lift_draws > 0).mean()),
        "weather_source": plan.weather.source,
        "report": MetadataValue.url(report_url(plan.report_path, weathervane.reports())) if plan.report_path else None,
    }.items() if v is not None})


@asset(
    key=ADOPTION,
    partitions_def=tenant_partitions,
    pool=WAREHOUSE_POOL,
    group_name="decide",
    owners=["team:analytics"],
    kinds={"duckdb"},
    deps=[PLANS, AssetKey(["marts", "fct_ad_spend_daily"])],
    description="Executed vs planned spend per applied plan × channel × geo × week (decisions.plan_adoption).",
    check_specs=[AssetCheckSpec(ADOPTION_CHECK, asset=ADOPTION, partitions_def=tenant_partitions,
                                description="Applied plans were executed within 25% of what was approved.")],
)
def plan_adoption(context: AssetExecutionContext, weathervane: WeathervaneResource) -> MaterializeResult:
    from weathervane.governance import adoption_issues, compute_plan_adoption

    tenant = context.partition_key
    with weathervane.connect() as con:
        rows = compute_plan_adoption(con, tenant)
        issues = adoption_issues(con, tenant)
    text = [i.describe() for i in issues]
    return MaterializeResult(
        metadata={"rows": rows, "off_plan": len(issues)},
        check_results=[AssetCheckResult(
            check_name=ADOPTION_CHECK, passed=not issues, severity=AssetCheckSeverity.WARN,
            metadata={"issues": MetadataValue.json(text)}, description="; ".join(text)[:2000] or None,
        )],
    )


class PlanDecision(Config):
    plan_id: str
    decision: Literal["approve", "reject", "apply", "rollback"]
    actor: str
    reason: str | None = None


_TO_STATUS = {"approve": "approved", "reject": "rejected", "apply": "applied", "rollback": "rolled_back"}


@op(description="Record a decision on a budget plan; refused unless the tenant's approval rules allow it.")
def decide_plan(context: OpExecutionContext, config: PlanDecision, weathervane: WeathervaneResource) -> None:
    from weathervane.governance import transition
    from weathervane.governance.events import plan_status

    with weathervane.connect() as con:
        tenant, _ = plan_status(con, config.plan_id)
        events = transition(con, config.plan_id, _TO_STATUS[config.decision], config.actor, config.reason,
                            weathervane.tenant_config(tenant))
    for ev in events:
        context.log.info(f"plan {ev.plan_id}: {ev.from_status} -> {ev.to_status} by {ev.actor} (event {ev.seq})")


@job(description="Approve, reject, apply or roll back a budget plan (run config: plan_id, decision, actor, reason).")
def plan_decision_job():
    decide_plan()


assets = [budget_plan, plan_adoption]
jobs = [plan_decision_job]
