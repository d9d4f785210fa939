"""Budget plans: the allocator asset, experiment recommendations, plan adoption with its check, and the approve /
reject job."""

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

from dagster_project.metadata import rounded
from dagster_project.partitions import WAREHOUSE_POOL, WRITER_TAGS, tenant_partitions
from dagster_project.resources import WeathervaneResource

PLANS = AssetKey(["decisions", "plans"])
ADOPTION = AssetKey(["decisions", "plan_adoption"])
EXPERIMENTS = AssetKey(["mmm", "experiment_recommendations"])
ADOPTION_CHECK = "plans_executed_as_approved"
FIT = AssetKey(["mmm", "weather_mmm"])  # writes mmm.models and mmm.channel_summary (model status, flags)
SPEND = AssetKey(["marts", "fct_ad_spend_daily"])
SALES = AssetKey(["marts", "fct_sales_daily"])
WEATHER = AssetKey(["marts", "fct_weather_daily"])
FORECAST = AssetKey(["marts", "fct_weather_forecast_daily"])
RAW_FORECAST = AssetKey(["raw", "weather__forecast"])


@asset(
    key=PLANS,
    partitions_def=tenant_partitions,
    pool=WAREHOUSE_POOL, op_tags=WRITER_TAGS,
    group_name="decide",
    owners=["team:analytics"],
    kinds={"duckdb", "scipy"},
    deps=[FIT, EXPERIMENTS, SPEND, SALES, WEATHER, FORECAST, RAW_FORECAST],
    description="Weather-aware budget plan for the planning horizon from the latest model that passed diagnostics "
                "(decisions.plans / plan_lines, status proposed) and its HTML report. Channels the model flags as "
                "needing an experiment stay at keep-the-split; the proposal is keep-the-split, with the reason, "
                "unless P(plan beats keep-the-split) >= planning.min_prob_better and the model passed its holdout.",
)
def budget_plan(context: AssetExecutionContext, weathervane: WeathervaneResource) -> MaterializeResult:
    from weathervane.allocate import propose_plan
    from weathervane.allocate.mmm_response import load_latest_response
    from weathervane.governance.outbox import deliver_outbox
    from weathervane.report_server import report_url

    tenant = context.partition_key
    cfg = weathervane.tenant_config(tenant)
    with weathervane.connect(tenant=tenant) as con:
        response = load_latest_response(con, tenant, weathervane.models())
        plan = propose_plan(con, tenant, cfg, response, reports_dir=weathervane.reports(),
                            audience=weathervane.audience(tenant))
    deliver_outbox(tenant, weathervane.warehouse(tenant), cfg)  # the proposal's notification, warehouse released
    if plan.fallback_reasons:
        context.log.warning(f"plan {plan.plan_id} is keep-the-split: {plan.fallback_reason}")
    metadata = {
        **rounded({
            "plan_id": plan.plan_id,
            "model_id": plan.model_id,
            "decision": plan.decision,
            "horizon": f"{plan.horizon_start} .. {plan.horizon_end}",
            "total_budget": float(plan.total_budget),
            "expected_kpi_mean": float(plan.kpi_draws.mean()),
            "baseline_kpi_mean": float(plan.baseline_kpi_draws.mean()),
            "kpi_scope": plan.kpi_scope,
            "prob_better": float(plan.prob_better),
            "min_prob_better": float(plan.min_prob_better),
            "move_fraction": float(plan.move_fraction),
            "weather_share": float(plan.weather_share),
            "weather_source": plan.weather.source,
        }),
        "fallback_reason": plan.fallback_reason or "",
        "binding_constraints": MetadataValue.json(plan.binding_summary()),
        "summary": _plan_summary(plan, cfg.currency),
    }
    if plan.report_path:
        metadata["report"] = MetadataValue.url(report_url(plan.report_path, weathervane.reports()))
    return MaterializeResult(metadata=metadata)


@asset(
    key=EXPERIMENTS,
    partitions_def=tenant_partitions,
    pool=WAREHOUSE_POOL, op_tags=WRITER_TAGS,
    group_name="decide",
    owners=["team:analytics"],
    kinds={"duckdb"},
    deps=[FIT],
    description="A geo lift-test design (treated and matched control geos, duration, spend change, expected "
                "interval width) for every channel the latest usable model flags as needing an experiment "
                "(mmm.experiment_recommendations); the plan holds those channels still until a test lands.",
)
def experiment_recommendations(context: AssetExecutionContext, weathervane: WeathervaneResource) -> MaterializeResult:
    from weathervane.mmm.experiments import recommend_experiments, write_experiment_recommendations
    from weathervane.mmm.store import latest_usable_model

    tenant = context.partition_key
    with weathervane.connect(tenant=tenant) as con:
        record = latest_usable_model(con, tenant)
        if record is None:
            context.log.info(f"tenant {tenant}: no usable model, no experiments to recommend")
            return MaterializeResult(metadata={"rows": 0})
        frame = recommend_experiments(con, tenant, record.model_id, weathervane.models())
        rows = write_experiment_recommendations(con, tenant, record.model_id, frame)
    return MaterializeResult(metadata={"model_id": record.model_id, "rows": rows,
                                       "channels": MetadataValue.json(sorted(frame["channel"]) if rows else [])})


@asset(
    key=ADOPTION,
    partitions_def=tenant_partitions,
    pool=WAREHOUSE_POOL, op_tags=WRITER_TAGS,
    group_name="decide",
    owners=["team:analytics"],
    kinds={"duckdb"},
    deps=[PLANS, SPEND],
    description="Executed vs planned spend per applied plan × channel × geo × week (decisions.plan_adoption).",
    check_specs=[AssetCheckSpec(ADOPTION_CHECK, asset=ADOPTION, partitions_def=tenant_partitions,
                                description="Applied plans were executed within 25% of what was approved.")],
)
def plan_adoption(context: AssetExecutionContext, weathervane: WeathervaneResource) -> MaterializeResult:
    from weathervane.governance import adoption_issues, compute_plan_adoption

    tenant = context.partition_key
    with weathervane.connect(tenant=tenant) as con:
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
    # the plan's tenant; empty: looked up (in a folder warehouse, each tenant's file read-only)
    tenant_id: str | None = None


_TO_STATUS = {"approve": "approved", "reject": "rejected", "apply": "applied", "rollback": "rolled_back"}


@op(description="Record a decision on a budget plan; refused unless the tenant's approval rules allow it.")
def decide_plan(context: OpExecutionContext, config: PlanDecision, weathervane: WeathervaneResource) -> None:
    from weathervane.governance import transition
    from weathervane.governance.events import locate_plan, plan_status
    from weathervane.governance.outbox import deliver_outbox

    home = config.tenant_id or locate_plan(weathervane.warehouse(), config.plan_id)
    with weathervane.connect(tenant=home) as con:
        tenant, _ = plan_status(con, config.plan_id)
        cfg = weathervane.tenant_config(tenant)
        # transition refuses a plan of another tenant than the one named
        events = transition(con, config.plan_id, _TO_STATUS[config.decision], config.actor, config.reason, cfg,
                            tenant_id=config.tenant_id, deliver=False)
    # notifications go out once the warehouse is released
    delivery = deliver_outbox(tenant, weathervane.warehouse(tenant), cfg)
    context.log.info(delivery.describe())
    for ev in events:
        context.log.info(f"plan {ev.plan_id}: {ev.from_status} -> {ev.to_status} by {ev.actor} (event {ev.seq})")


@job(description="Approve, reject, apply or roll back a budget plan (run config: plan_id, decision, actor, reason).")
def plan_decision_job():
    decide_plan()


assets = [budget_plan, experiment_recommendations, plan_adoption]
jobs = [plan_decision_job]


def _plan_summary(plan, currency: str) -> str:
    """The plan in the words and currency people read it in (the numbers above stay numbers, for plots)."""
    from weathervane import reports as rp

    kpi, base = float(plan.kpi_draws.mean()), float(plan.baseline_kpi_draws.mean())
    head = (f"Budget {rp.money(plan.total_budget, currency)} from {plan.horizon_start} to {plan.horizon_end}: "
            f"expected net revenue {rp.money(kpi, currency)} against {rp.money(base, currency)} keeping the split")
    if plan.decision == "plan":
        return head + f"; chance it beats keeping the split {rp.probability(plan.prob_better)}."
    return head + f"; it keeps the split: {plan.fallback_reason}."
