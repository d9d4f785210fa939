"""Policy replay: candidate budget policies judged on the tenant's logged decisions (decisions.policy_replay)."""

from typing import Optional

from dagster import AssetExecutionContext, AssetKey, Config, MaterializeResult, MetadataValue, asset

from dagster_project.partitions import tenant_partitions
from dagster_project.resources import WeathervaneResource

POLICY_REPLAY = AssetKey(["decisions", "policy_replay"])


class ReplayConfig(Config):
    """How the rolling-origin outcome models are fitted (default MAP widened by a Laplace approximation: quick;
    nuts for full posterior draws)."""

    method: str = "map"  # map | nuts | advi
    draws: int = 200
    tune: int = 200
    chains: int = 2
    # the outcome model's period; None: the tenant's model spec's (decision periods: tenant.yaml replay.period_days)
    period: Optional[str] = None
    n_origins: Optional[int] = None  # default tenant.yaml replay.n_origins


# Outside the writers' pool like the model fit: it reads, releases the warehouse while fitting, then writes in one
# short transaction. It reads the marts only: its outcome models are its own, and the plans it notes beside each
# past period are the adoption rows already recorded (a plan made in this run covers no past period), so it runs
# beside the fit rather than after the plan (the demo's tail: 46 s).
@asset(
    key=POLICY_REPLAY,
    partitions_def=tenant_partitions,
    group_name="audit",
    kinds={"duckdb", "pymc"},
    owners=["team:analytics"],
    deps=[AssetKey(["marts", "fct_model_input"]), AssetKey(["marts", "fct_ad_spend_daily"]),
          AssetKey(["marts", "fct_weather_daily"])],
    description="Shadow-mode policy replay: keep-the-split, the weather-aware allocator, the weather-blind one and "
                "looser / tighter change limits, each judged on the tenant's logged decision periods with a "
                "direct method (MMMs fitted at rolling origins, never on the period judged), SNIPS and a doubly "
                "robust estimator; bootstrap intervals, ESS, support and an evaluable flag "
                "(decisions.policy_replay, _periods, _models) and an HTML report.",
)
def policy_replay(context: AssetExecutionContext, config: ReplayConfig,
                  weathervane: WeathervaneResource) -> MaterializeResult:
    from weathervane.replay import replay_tenant
    from weathervane.replay.run import ReplaySettings

    tenant = context.partition_key
    cfg = weathervane.tenant_config(tenant)
    # FitSettings' keyword arguments: the modelling stack is imported only when an outcome model is fitted
    fit = dict(method=config.method, draws=config.draws, tune=config.tune, chains=config.chains, holdout_weeks=0)
    settings = ReplaySettings(n_origins=config.n_origins or cfg.replay.n_origins)
    result = replay_tenant(lambda read_only: weathervane.connect(read_only=read_only, tenant=tenant), tenant, cfg,
                           store=weathervane.models(), reports=weathervane.reports(), landing=weathervane.landing(),
                           fit_settings=fit, settings=settings, period=config.period)
    from weathervane.replay.report import headline_from_rows

    dr = result.rows[result.rows["estimator"] == "doubly_robust"]
    return MaterializeResult(metadata={
        "headline": headline_from_rows(result.rows, cfg.currency),
        "replay_id": result.replay_id,
        "window": f"{result.window_start} .. {result.window_end}" if result.n_periods else "none",
        "periods": int(result.n_periods),
        "origins": int(len(result.models)),
        "conclusion": result.conclusion,
        "doubly_robust_lift": MetadataValue.json({
            r.policy: {"lift": _round(r.lift_mean), "p05": _round(r.lift_p05), "p95": _round(r.lift_p95),
                       "evaluable": bool(r.evaluable)}
            for r in dr.itertuples()}),
        "report": MetadataValue.path(str(result.report_path)),
    })


def _round(v) -> float | None:
    """Metadata JSON has no NaN: a value the replay could not estimate is null."""
    return round(float(v), 1) if v is not None and v == v else None


assets = [policy_replay]
