"""MMM assets: the weather-aware PyMC-Marketing fit per tenant, gated by sampler diagnostics."""

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
from dagster_project.partitions import tenant_partitions
from dagster_project.resources import WeathervaneResource

MODEL_INPUT_KEY = AssetKey(["marts", "fct_model_input"])
FIT_KEY = AssetKey(["mmm", "weather_mmm"])
DIAGNOSTICS_CHECK = "sampler_diagnostics_pass"


class MMMFitConfig(Config):
    """Run config for one fit; the grain defaults to tenant.yaml's."""

    method: str = "nuts"  # nuts | map | advi (map/advi: fast previews)
    draws: int = 500
    tune: int = 500
    chains: int = 2
    holdout_weeks: int = 8
    # day: the period the recovery tests validate (weekly means blur day-to-day rain); week: ~5x faster previews
    period: str = "day"
    grain_product: Optional[str] = None
    grain_geo: Optional[str] = None
    max_rhat: float = 1.05
    min_ess_bulk: float = 200.0
    max_divergences: int = 0
    seed: int = 0
    adaptation: str = "diag"  # nutpie mass matrix: diag | low_rank (faster, needs more tuning)


@asset(
    key=FIT_KEY,
    deps=[MODEL_INPUT_KEY],
    partitions_def=tenant_partitions,
    # Not in the writers' pool: the fit reads its inputs, releases the warehouse while it samples, then waits
    # for the file lock only for its short summary write (WeathervaneResource.lock_wait_s).
    group_name="model",
    owners=["team:analytics"],
    kinds={"pymc", "duckdb"},
    description="Weather-aware Bayesian MMM per tenant × grain: NetCDF in the model store, summaries in mmm.*.",
    check_specs=[AssetCheckSpec(DIAGNOSTICS_CHECK, asset=FIT_KEY, blocking=True, partitions_def=tenant_partitions,
                                description="r-hat, bulk ESS and divergences within thresholds; a failed model "
                                            "is kept as failed_diagnostics and never reaches the allocator.")],
)
def weather_mmm(context: AssetExecutionContext, config: MMMFitConfig, weathervane: WeathervaneResource):
    from weathervane.mmm import FitSettings, fit_tenant
    from weathervane.report_server import report_url

    tenant = context.partition_key
    grain = weathervane.tenant_config(tenant).grain
    settings = FitSettings(method=config.method, draws=config.draws, tune=config.tune, chains=config.chains,
                           holdout_weeks=config.holdout_weeks, max_rhat=config.max_rhat,
                           min_ess_bulk=config.min_ess_bulk, max_divergences=config.max_divergences, seed=config.seed,
                           adaptation=config.adaptation)
    fitted = fit_tenant(lambda read_only: weathervane.connect(read_only=read_only), tenant, settings,
                        grain_product=config.grain_product or grain.product, grain_geo=config.grain_geo or grain.geo,
                        period=config.period,
                        store=weathervane.models(), reports=weathervane.reports())
    d = fitted.diagnostics
    metadata = {
        "model_id": fitted.model_id,
        "status": fitted.status,
        "model_path": MetadataValue.path(str(fitted.path)),
        "holdout_mape": fitted.holdout_mape,
        "max_rhat": d["max_rhat"],
        "min_ess_bulk": d["min_ess_bulk"],
        "divergences": d["divergences"],
        "fit_seconds": round(fitted.fit_seconds, 1),
        "lift_tests": fitted.lift_tests,
    }
    if fitted.report_path is not None:
        metadata["report"] = MetadataValue.url(report_url(fitted.report_path, weathervane.reports()))
    return MaterializeResult(
        metadata=rounded({k: v for k, v in metadata.items() if v is not None}),
        check_results=[AssetCheckResult(
            check_name=DIAGNOSTICS_CHECK, passed=fitted.usable, severity=AssetCheckSeverity.ERROR,
            metadata=rounded({"status": fitted.status,
                              "max_rhat": d["max_rhat"] if d["max_rhat"] is not None else -1.0,
                              "min_ess_bulk": d["min_ess_bulk"] if d["min_ess_bulk"] is not None else -1.0,
                              "divergences": d["divergences"]}),
        )],
    )


assets = [weather_mmm]
