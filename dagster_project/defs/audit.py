"""Causal audits of deployments and applied plans, and the rollout gate on the plan asset."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
    define_asset_job,
)

from dagster_project.defs.decisions import PLANS
from dagster_project.defs.ingest import raw_asset_key
from dagster_project.partitions import LAST_TAGS, WAREHOUSE_POOL, WRITER_TAGS, tenant_partitions
from dagster_project.resources import WeathervaneResource

CAUSAL_AUDITS = AssetKey(["decisions", "causal_audits"])
GATE_CHECK = "autopilot_gate"


class AuditConfig(Config):
    draws: int = 500
    tune: int = 500
    chains: int = 2


# Outside the writers' pool like the model fit: it reads, releases the warehouse while sampling, then writes in one
# short transaction (waiting out another writer's lock). Not downstream of the plan: it audits applied plans whose
# window has ended (a plan made in this run is not one), so it runs beside the fit. (The rollout gate reads the
# verdicts recorded when it runs; nothing orders it after this step, whose failure must not stop the plan's check.)
@asset(
    key=CAUSAL_AUDITS,
    partitions_def=tenant_partitions,
    group_name="audit",
    op_tags=LAST_TAGS,
    kinds={"duckdb", "pymc"},
    owners=["team:analytics"],
    deps=[AssetKey(["marts", "fct_sales_daily"]), AssetKey(["marts", "fct_ad_spend_daily"]),
          raw_asset_key("autopilot", "deployments")],
    description="Causal audit of every automated deployment and applied plan whose window has ended: Bayesian "
                "synthetic control (PyMC, Dirichlet weights, AR(1) errors), difference-in-differences, interrupted "
                "time series without clean donors; placebos in space and time; a verdict per method "
                "(decisions.causal_audits) and an HTML report per deployment.",
)
def causal_audits(context: AssetExecutionContext, config: AuditConfig,
                  weathervane: WeathervaneResource) -> MaterializeResult:
    from weathervane.audit.run import audit_rows, compute_audits, load_inputs, settings_from_config, write_audits

    tenant = context.partition_key
    cfg = weathervane.tenant_config(tenant)
    with weathervane.connect(tenant=tenant) as con:
        inputs = load_inputs(con, tenant, cfg)
    settings = settings_from_config(cfg, draws=config.draws, tune=config.tune, chains=config.chains)
    run = compute_audits(inputs, settings, weathervane.reports(), weathervane.audience(tenant))
    rows = audit_rows(run)
    with weathervane.connect(tenant=tenant) as con:
        write_audits(con, tenant, rows)
    primary = [r for r in rows if r["is_primary"]]
    from weathervane import reports as rp

    def money(v) -> str:
        return rp.money(v, cfg.currency)

    return MaterializeResult(metadata={
        "audits": len(primary),
        "rows": len(rows),
        "verdicts": MetadataValue.json(run.counts()),
        "data_through": str(run.data_through),
        "summary": MetadataValue.md("\n".join(
            f"- **{r['deployment_id'] or 'plan ' + str(r['plan_id'])}** ({r['method']}): {r['verdict']}"
            + (f", effect {money(r['effect_mean'])} (90% interval {money(r['effect_p05'])} to "
               f"{money(r['effect_p95'])})"
               if r["effect_mean"] is not None else f" — {r['reason']}")
            for r in primary) or "no deployments"),
        "reports": MetadataValue.json([str(a.report_path) for a in run.audits if a.report_path]),
    })


@asset_check(asset=PLANS, name=GATE_CHECK, blocking=True, partitions_def=tenant_partitions, pool=WAREHOUSE_POOL,
             op_tags=WRITER_TAGS,
             description="Rollout gate: tenant.yaml autopilot.mode is in force. Moving up a mode (shadow → "
                         "assisted → autopilot) is recorded in the plan ledger only with enough improved audits and "
                         "none worse; while refused, nothing downstream of the plan runs automatically.")
def autopilot_gate(context: AssetCheckExecutionContext, weathervane: WeathervaneResource) -> AssetCheckResult:
    from weathervane.governance.autopilot import sync_mode

    tenant = context.partition_key
    cfg = weathervane.tenant_config(tenant)
    with weathervane.connect(tenant=tenant) as con:
        state = sync_mode(con, tenant, cfg)
    return AssetCheckResult(
        passed=state.passed,
        severity=AssetCheckSeverity.ERROR,
        description=state.describe()[:2000],
        metadata={"mode": state.effective, "configured": state.configured,
                  "improved_audits": len(state.evidence.improved), "worse_audits": len(state.evidence.worse),
                  "required": state.evidence.required,
                  "recorded_events": MetadataValue.json([f"{e.from_status} -> {e.to_status}"
                                                         for e in state.recorded_events])},
    )


# Audits on their own: re-audit a tenant without refreshing it.
audit_job = define_asset_job("audit_job", selection=[CAUSAL_AUDITS],
                             description="Re-audit a tenant's deployments and applied plans.")

assets = [causal_audits]
asset_checks = [autopilot_gate]
jobs = [audit_job]
