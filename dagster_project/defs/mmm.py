"""MMM assets: the weather-aware PyMC-Marketing fit per tenant, gated by sampler diagnostics."""

from functools import partial
from typing import Optional

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from dagster_project.metadata import rounded
from dagster_project.partitions import FIRST_TAGS, tenant_partitions
from dagster_project.resources import WeathervaneResource

MODEL_INPUT_KEY = AssetKey(["marts", "fct_model_input"])
FIT_KEY = AssetKey(["mmm", "weather_mmm"])
DIAGNOSTICS_CHECK = "sampler_diagnostics_pass"


HOLDOUT_CHECK = "holdout_error_fit_for_planning"
SNIFF_KEY = AssetKey(["ops", "dataset_sniff"])  # writes ops.model_spec, which this fit follows


class MMMFitConfig(Config):
    """One run's overrides of the tenant's model spec (ops.model_spec, decided by the sniff; weathervane.spec).
    Empty: the spec decides every field."""

    period: Optional[str] = None
    grain_product: Optional[str] = None
    grain_geo: Optional[str] = None
    weather_vars: Optional[list[str]] = None
    adstock_max_lag: Optional[int] = None
    draws: Optional[int] = None
    tune: Optional[int] = None
    chains: Optional[int] = None
    time_budget_s: Optional[float] = None
    method: str = "nuts"  # nuts | map | advi (map/advi: fast previews)
    holdout_weeks: int = 8
    max_rhat: float = 1.05
    min_ess_bulk: float = 200.0
    max_divergences: int = 0
    seed: int = 0

    def spec_overrides(self) -> dict:
        return {k: getattr(self, k) for k in ("period", "grain_product", "grain_geo", "weather_vars",
                                              "adstock_max_lag", "draws", "tune", "chains", "time_budget_s")}


@asset(
    key=FIT_KEY,
    deps=[MODEL_INPUT_KEY, SNIFF_KEY],
    partitions_def=tenant_partitions,
    # Not in the writers' pool: the fit reads its inputs, releases the warehouse while it samples, then waits
    # for the file lock only for its short summary writes (WeathervaneResource.lock_wait_s).
    group_name="model",
    op_tags=FIRST_TAGS,
    owners=["team:analytics"],
    kinds={"pymc", "duckdb"},
    description="Weather-aware Bayesian MMM per tenant at its model spec (ops.model_spec): a fit that misses its "
                "diagnostics gate steps down the spec's ladder (coarser period, grain, fewer weather terms) within "
                "its time budget. NetCDF in the model store, summaries in mmm.*, the choice in mmm.model_selection.",
    check_specs=[
        AssetCheckSpec(DIAGNOSTICS_CHECK, asset=FIT_KEY, partitions_def=tenant_partitions,
                       description="A rung of the ladder passed: r-hat, bulk ESS and divergences within thresholds. "
                                   "When none did, the plan keeps the split with the reason."),
        AssetCheckSpec(HOLDOUT_CHECK, asset=FIT_KEY, partitions_def=tenant_partitions,
                       description="The chosen model's holdout error is small enough to move budget on."),
    ],
)
def weather_mmm(context: AssetExecutionContext, config: MMMFitConfig, weathervane: WeathervaneResource):
    from weathervane.mmm import fit_tenant_spec

    tenant = context.partition_key
    ladder, spec, settings = fit_tenant_spec(
        partial(weathervane.connect, tenant=tenant), tenant, weathervane.tenant_config(tenant), config.spec_overrides(),
        method=config.method, holdout_weeks=config.holdout_weeks, max_rhat=config.max_rhat,
        min_ess_bulk=config.min_ess_bulk, max_divergences=config.max_divergences, seed=config.seed,
        store=weathervane.models(), reports=weathervane.reports(), audience=weathervane.audience(tenant),
        progress=lambda p: context.log.info(p.describe()), say=context.log.info)
    return MaterializeResult(metadata=fit_metadata(ladder, spec, weathervane),
                             check_results=fit_checks(ladder, settings))


def fit_metadata(ladder, spec, weathervane: WeathervaneResource) -> dict:
    from weathervane.report_server import report_url

    m = ladder.chosen
    metadata = {
        "model_id": m.model_id if m else "none",
        "decision": ladder.reason,
        "ladder_rung": (ladder.chosen_rung + 1) if ladder.chosen_rung is not None else 0,
        "ladder": MetadataValue.md("\n".join(f"{o.rung + 1}. **{o.label}** — {o.status}: {o.detail}"
                                             for o in ladder.rungs)),
        "model_spec": MetadataValue.md("\n".join(f"- {line}" for line in spec.describe())),
        "fit_seconds": round(ladder.seconds, 1),
    }
    if m is not None:
        metadata.update(rounded({"holdout_mape": m.holdout_mape, "max_rhat": m.diagnostics["max_rhat"],
                                 "min_ess_bulk": m.diagnostics["min_ess_bulk"],
                                 "divergences": m.diagnostics["divergences"], "lift_tests": m.lift_tests}))
        metadata["model_path"] = MetadataValue.path(str(m.path))
        if m.report_path is not None:
            metadata["report"] = MetadataValue.url(report_url(m.report_path, weathervane.reports()))
    return {k: v for k, v in metadata.items() if v is not None}


def fit_checks(ladder, settings) -> list[AssetCheckResult]:
    m = ladder.chosen
    d = m.diagnostics if m else {}
    thresholds = {"max_rhat_allowed": settings.max_rhat, "min_ess_bulk_needed": settings.min_ess_bulk,
                  "divergences_allowed": settings.max_divergences}
    diag = AssetCheckResult(
        check_name=DIAGNOSTICS_CHECK, passed=m is not None, severity=AssetCheckSeverity.ERROR,
        description=ladder.reason if m else (
            ladder.reason + ". Next: deliver more history or a lift test, or pin a coarser grain or weekly period "
            "in tenant.yaml (model:); the plan keeps the split meanwhile."),
        metadata=rounded({**thresholds, "max_rhat": d.get("max_rhat") if d.get("max_rhat") is not None else -1.0,
                          "min_ess_bulk": d.get("min_ess_bulk") if d.get("min_ess_bulk") is not None else -1.0,
                          "divergences": d.get("divergences", -1),
                          "ladder_rung": (ladder.chosen_rung + 1) if ladder.chosen_rung is not None else 0,
                          "rungs_tried": sum(o.status not in ("skipped",) for o in ladder.rungs)}))
    mape = m.holdout_mape if m else None
    holdout = AssetCheckResult(
        check_name=HOLDOUT_CHECK,
        passed=mape is not None and (ladder.max_holdout_mape is None or mape <= ladder.max_holdout_mape),
        severity=AssetCheckSeverity.WARN,
        description=ladder.planning_warning or ("no usable model" if m is None else
                                                "no holdout was scored (history too short or time budget spent)"
                                                if mape is None else None),
        metadata=rounded({"holdout_mape": mape if mape is not None else -1.0,
                          "max_holdout_mape": ladder.max_holdout_mape or -1.0}))
    return [diag, holdout]


assets = [weather_mmm]
