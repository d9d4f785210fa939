"""Raw ingestion assets: one per landing stream, partitioned by tenant."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)

from dagster_project.partitions import WAREHOUSE_POOL, tenant_partitions
from dagster_project.resources import WeathervaneResource
from weathervane.landing import STREAMS, ingest_stream, write_channel_rules

QUARANTINE_CHECK = "no_quarantined_files"


def raw_asset_key(source: str, stream: str) -> AssetKey:
    return AssetKey(["raw", f"{source}__{stream}"])


def _raw_asset(source: str, stream: str):
    key = raw_asset_key(source, stream)

    @asset(
        key=key,
        partitions_def=tenant_partitions,
        pool=WAREHOUSE_POOL,
        group_name="landing",
        kinds={"duckdb"},
        description=f"{source}/{stream} landing files, validated and appended to raw.{source}__{stream}.",
        check_specs=[AssetCheckSpec(QUARANTINE_CHECK, asset=key, description="No landing file was quarantined.")],
    )
    def _ingest(context: AssetExecutionContext, weathervane: WeathervaneResource) -> MaterializeResult:
        with weathervane.connect() as con:
            report = ingest_stream(con, weathervane.landing(), context.partition_key, source, stream)
        reasons = [q.describe() for q in report.quarantined]
        return MaterializeResult(
            metadata=report.metadata(),
            check_results=[
                AssetCheckResult(
                    check_name=QUARANTINE_CHECK,
                    passed=not reasons,
                    severity=AssetCheckSeverity.ERROR,
                    metadata={"quarantined": MetadataValue.json(reasons)},
                    description="; ".join(reasons)[:2000] or None,
                )
            ],
        )

    return _ingest


assets = [_raw_asset(s.source, s.stream) for s in STREAMS]


@asset(
    key=["ops", "tenant_channel_rules"],
    partitions_def=tenant_partitions,
    pool=WAREHOUSE_POOL,
    group_name="landing",
    kinds={"duckdb"},
    description="tenant.yaml's channel regrouping rules, where dbt can apply them.",
)
def tenant_channel_rules(context: AssetExecutionContext, weathervane: WeathervaneResource) -> MaterializeResult:
    tenant = context.partition_key
    cfg = weathervane.tenant_config(tenant)
    with weathervane.connect() as con:
        n = write_channel_rules(con, tenant, cfg)
    return MaterializeResult(metadata={"rules": n, "timezone": cfg.timezone, "grain": cfg.grain.model_dump()})


assets.append(tenant_channel_rules)
