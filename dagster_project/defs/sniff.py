"""The dataset sniff: what each tenant's data holds and what it can carry, as ops.dataset_sniff."""

from dagster import AssetExecutionContext, AssetKey, AssetSelection, MaterializeResult, MetadataValue, asset, \
    define_asset_job

from dagster_project.metadata import rounded
from dagster_project.partitions import WAREHOUSE_POOL, WRITER_TAGS, tenant_partitions
from dagster_project.resources import WeathervaneResource
from weathervane.landing.streams import STREAMS

SNIFF_KEY = AssetKey(["ops", "dataset_sniff"])
# What the sniff reads: grain-independent staging and intermediate models, promotions, and two raw streams
# that have no staging model (lift tests, deployments).
SNIFF_DEPS = [
    AssetKey(["staging", "stg_shopify__order_lines"]), AssetKey(["staging", "stg_shopify__products"]),
    AssetKey(["intermediate", "int_ad_spend_daily"]), AssetKey(["marts", "dim_promotion"]),
    AssetKey(["staging", "stg_klaviyo__campaigns"]), AssetKey(["staging", "stg_weather__daily"]),
    AssetKey(["staging", "stg_weather__forecast"]), AssetKey(["staging", "stg_aggregated__mmm_input"]),
    *[AssetKey(["raw", s.key]) for s in STREAMS if s.key in ("experiments__lift_tests", "autopilot__deployments")],
]


@asset(
    key=SNIFF_KEY,
    deps=SNIFF_DEPS,
    partitions_def=tenant_partitions,
    pool=WAREHOUSE_POOL, op_tags=WRITER_TAGS,
    group_name="landing",
    kinds={"duckdb"},
    owners=["team:analytics"],
    description="Dataset sniff: streams, history, gaps, geos, categories, orders per geo-day, spend variation per "
                "channel, promotions, weather coverage, lift tests, deployments, quarantined files; and the "
                "decisions they carry (finest grain, identifiable channels, weather interactions, period, live or "
                "synthetic twin), each with its reason; and the model spec every fit follows (ops.model_spec).",
)
def dataset_sniff(context: AssetExecutionContext, weathervane: WeathervaneResource) -> MaterializeResult:
    from weathervane.sniff import sniff_tenant, write_sniff

    tenant = context.partition_key
    cfg = weathervane.tenant_config(tenant)
    with weathervane.connect(tenant=tenant) as con:
        sniff = sniff_tenant(con, tenant, cfg)
        rows = write_sniff(con, sniff)
    d = sniff.decisions
    for dec in d.all():
        context.log.info(f"{dec.name}: {dec.value} — {dec.reason}")
    for line in sniff.spec.describe():
        context.log.info(f"model spec {line}")
    for name, why in sniff.spec.refused.items():
        context.log.warning(f"tenant.yaml pin {name} refused: {why}")
    return MaterializeResult(metadata={
        **rounded({"rows": rows, "history_days": sniff.profile.span_days, "orders": sniff.profile.orders,
                   "spend_total": round(sniff.profile.spend_total, 2),
                   "weather_coverage": sniff.profile.weather_coverage}),
        "mode": d.mode.value,
        "grain": f"{sniff.spec.grain_product} x {sniff.spec.grain_geo}",
        "period": sniff.spec.period,
        "weather_interactions": d.weather.value,
        "identifiable_channels": ", ".join(d.identifiable) or "none",
        "decisions": MetadataValue.md("\n".join(f"- **{x.name}**: {x.value} — {x.reason}" for x in d.all())),
        "warnings": MetadataValue.json(d.warnings),
        "model_spec": MetadataValue.md("\n".join(f"- {line}" for line in sniff.spec.describe())),
        "refused_pins": MetadataValue.json(sniff.spec.refused),
    })


# The grain-free dbt models (the `harmonize` step: every harmonize model the sniff does not decide), the sniff, and
# the ingestion they read: what `weathervane sniff` runs. The models at the grain wait for the spec it decides.
GRAIN_FREE = AssetSelection.groups("harmonize") - AssetSelection.assets(SNIFF_KEY).downstream()
sniff_job = define_asset_job(
    "sniff_job",
    selection=(AssetSelection.assets(SNIFF_KEY) | GRAIN_FREE).upstream(),
    description="Ingest a tenant's landing files, harmonize them and sniff what they can carry.",
)

assets = [dataset_sniff]
jobs = [sniff_job]
