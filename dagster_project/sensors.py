"""Landing sensor: new tenant folders become partitions; new files in a tenant request one ingest run."""
from __future__ import annotations

import hashlib
import json

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from dagster_project.jobs import ingest_job

TENANT_SETTINGS_KEY = AssetKey(["ops", "tenant_channel_rules"])
from dagster_project.partitions import tenant_partitions
from weathervane import config
from weathervane.landing import landing_files, list_tenants


def scan_landing(root, cursor: dict) -> tuple[dict, list[str], dict[str, list[str]], list[str]]:
    """Compare the landing zone with the cursor.

    Returns (new cursor, new tenants, {tenant: {relative path: hash} of new or changed files}, rejected folder
    names). The cursor keeps, per
    tenant, each file's size, mtime and hash so unchanged files are not re-hashed on every tick. The sensor never
    opens the warehouse: DuckDB's single writer may be busy with a run.
    """
    tenants, rejected = list_tenants(root)
    new_cursor: dict = {}
    new_tenants, new_files = [], {}
    for tenant in tenants:
        known = cursor.get(tenant)
        if known is None:
            new_tenants.append(tenant)
            known = {}
        seen = {}
        fresh = {}
        for rel, path in landing_files(root, tenant):
            stat = path.stat()
            stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
            old = known.get(rel)
            if old and old[0] == stamp:
                seen[rel] = old
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            seen[rel] = [stamp, digest]
            if not old or old[1] != digest:
                fresh[rel] = digest
        new_cursor[tenant] = seen
        if fresh:
            new_files[tenant] = fresh
    return new_cursor, new_tenants, new_files, rejected


def affected_assets(relative_paths) -> list[AssetKey]:
    """The raw assets whose streams received the files, and everything downstream of them up to the marts:
    one new orders file reruns orders ingestion and the dbt models that read orders, not the whole tenant."""
    from dagster_project.definitions import defs  # imported here: the definitions import this module

    roots = set()
    for rel in relative_paths:
        parts = rel.split("/")
        roots.add(AssetKey(["raw", f"{parts[0]}__{parts[1]}"]) if len(parts) >= 3 else TENANT_SETTINGS_KEY)
    selection = AssetSelection.assets(*roots).downstream() - AssetSelection.key_prefixes("mmm", "decisions")
    return sorted(selection.resolve(defs.resolve_asset_graph()), key=lambda k: k.to_user_string())


@sensor(
    job=ingest_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers new tenant folders as partitions and ingests new landing files.",
)
def landing_sensor(context: SensorEvaluationContext):
    cursor = json.loads(context.cursor) if context.cursor else {}
    new_cursor, new_tenants, new_files, rejected = scan_landing(config.landing_root(), cursor)
    for name in rejected:
        context.log.warning(f"landing folder {name!r} is not a valid tenant id; ignored")
    runs = [
        RunRequest(
            partition_key=tenant,
            run_key=f"{tenant}:{hashlib.sha256(''.join(sorted(files.values())).encode()).hexdigest()[:16]}",
            # a tenant seen for the first time loads everything; later, only what the new files touch
            asset_selection=None if tenant in new_tenants else affected_assets(files),
            tags={"weathervane/trigger": "landing_sensor", "weathervane/new_files": str(len(files))},
        )
        for tenant, files in sorted(new_files.items())
    ]
    if not runs and not new_tenants:
        return SensorResult(skip_reason=SkipReason("no new tenants or files"), cursor=json.dumps(new_cursor))
    return SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[tenant_partitions.build_add_request(new_tenants)] if new_tenants else [],
        cursor=json.dumps(new_cursor, sort_keys=True),
    )
