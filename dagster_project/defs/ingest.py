"""Landing: every stream's files validated and appended to raw.* in one tenant-partitioned step.

One multi-asset rather than an asset per stream: a step costs a process start, and a stream's load is often a
fraction of a second. It can subset, so the landing sensor reruns only the streams that received files.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from dagster_project.metadata import rounded
from dagster_project.partitions import WAREHOUSE_POOL, WRITER_TAGS, tenant_partitions
from dagster_project.resources import WeathervaneResource
from weathervane.landing.streams import STREAMS

QUARANTINE_CHECK = "no_quarantined_files"
SETTINGS_KEY = AssetKey(["ops", "tenant_channel_rules"])
OWNERS = ["team:data-engineering"]


def raw_asset_key(source: str, stream: str) -> AssetKey:
    return AssetKey(["raw", f"{source}__{stream}"])


_STREAM_BY_KEY = {raw_asset_key(s.source, s.stream): s for s in STREAMS}

_specs = [
    AssetSpec(key, group_name="landing", kinds={"duckdb"}, owners=OWNERS, skippable=True,
              description=f"{s.description.rstrip('.')}. Landing files under {s.source}/{s.stream}/, validated against the "
                          f"landing-zone contract and appended to raw.{s.source}__{s.stream}; a bad file is "
                          "quarantined whole, with its reason.")
    for key, s in _STREAM_BY_KEY.items()
] + [AssetSpec(SETTINGS_KEY, group_name="landing", kinds={"duckdb"}, owners=OWNERS, skippable=True,
               description="tenant.yaml's channel regrouping rules, where dbt can apply them.")]

_checks = [
    AssetCheckSpec(QUARANTINE_CHECK, asset=key, partitions_def=tenant_partitions,
                   description=f"Every {s.source}/{s.stream} landing file of this tenant passed validation; a "
                               "failure names each quarantined file with its line, field and reason.")
    for key, s in _STREAM_BY_KEY.items()
]


@multi_asset(
    name="landing_files",
    specs=_specs,
    check_specs=_checks,
    partitions_def=tenant_partitions,
    pool=WAREHOUSE_POOL, op_tags=WRITER_TAGS,
    can_subset=True,
    description="Validate and load a tenant's landing files, stream by stream, each file in one transaction.",
)
def landing_files(context: AssetExecutionContext, weathervane: WeathervaneResource):
    from weathervane.landing.ingest import ingest_stream, write_channel_rules

    tenant = context.partition_key
    selected = context.selected_asset_keys
    with weathervane.connect(tenant=tenant) as con:
        for key, s in _STREAM_BY_KEY.items():
            if key not in selected:
                continue
            report = ingest_stream(con, weathervane.landing(), tenant, s.source, s.stream)
            reasons = [q.describe() for q in report.quarantined]
            meta = report.metadata()
            meta["quarantined"] = MetadataValue.json(reasons)
            yield MaterializeResult(asset_key=key, metadata=rounded(meta))
            yield AssetCheckResult(
                asset_key=key, check_name=QUARANTINE_CHECK, passed=not reasons,
                severity=AssetCheckSeverity.ERROR, metadata={"quarantined": MetadataValue.json(reasons)},
                description="; ".join(reasons)[:2000] or None,
            )
        if SETTINGS_KEY in selected:
            cfg = weathervane.tenant_config(tenant)
            n = write_channel_rules(con, tenant, cfg)
            yield MaterializeResult(asset_key=SETTINGS_KEY, metadata={
                "rules": n, "timezone": cfg.timezone, "grain_pin": MetadataValue.json(cfg.grain.model_dump() if cfg.grain else None)})


assets = [landing_files]
