"""Landing sensor: new tenant folders become partitions; new files in a tenant request one ingest run.

The cursor stays small: per tenant, one fingerprint of its file listing (paths, sizes, mtimes). When a listing
changes, the files are compared by content hash with what the warehouse already loaded or quarantined
(ops.loaded_files / ops.quarantined_files), so starting the UI over an ingested landing zone launches nothing.
"""
from __future__ import annotations

import hashlib
import json

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_status_sensor,
    sensor,
)

from dagster_project.jobs import ingest_job
from dagster_project.partitions import tenant_partitions

TENANT_SETTINGS_KEY = AssetKey(["ops", "tenant_channel_rules"])


class WarehouseBusy(RuntimeError):
    """Another process holds the DuckDB write lock; the tenant is looked at again on the next tick."""


def listing_fingerprint(root, tenant: str) -> str:
    from weathervane.landing.ingest import landing_files

    digest = hashlib.sha256()
    for rel, path in landing_files(root, tenant):
        stat = path.stat()
        digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def unloaded_files(root, tenant: str, warehouse) -> dict[str, str]:
    """{relative path: sha256 (or 'refused')} of the tenant's files the warehouse has not loaded or quarantined."""
    import duckdb

    from weathervane.landing.ingest import pending_files
    from weathervane.warehouse import tenant_path

    warehouse = tenant_path(warehouse, tenant)  # its own file in a folder warehouse
    if not warehouse.exists():
        return {rel: digest or "refused" for rel, digest in pending_files(None, root, tenant)}
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.IOException as exc:  # a writer holds the file
        raise WarehouseBusy(str(exc)) from exc
    try:
        return {rel: digest or "refused" for rel, digest in pending_files(con, root, tenant)}
    finally:
        con.close()


def scan_landing(root, warehouse, cursor: dict) -> tuple[dict, list[str], dict[str, dict[str, str]], list[str]]:
    """Compare the landing zone with the cursor and the warehouse.

    Returns (new cursor, new tenants, {tenant: {relative path: hash} of files not yet loaded}, rejected folder
    names). A tenant whose listing is unchanged is not read at all; one whose files cannot be compared because
    the warehouse is busy keeps its old fingerprint, so the next tick looks again.
    """
    from weathervane.landing.ingest import list_tenants

    tenants, rejected = list_tenants(root)
    new_cursor: dict = {}
    new_tenants, new_files = [], {}
    for tenant in tenants:
        if tenant not in cursor:
            new_tenants.append(tenant)
        fingerprint = listing_fingerprint(root, tenant)
        if cursor.get(tenant) == fingerprint:
            new_cursor[tenant] = fingerprint
            continue
        try:
            fresh = unloaded_files(root, tenant, warehouse)
        except WarehouseBusy:
            if tenant in cursor:
                new_cursor[tenant] = cursor[tenant]
            continue
        new_cursor[tenant] = fingerprint
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
    graph = defs.resolve_asset_graph()
    roots &= set(graph.get_all_asset_keys())
    selection = AssetSelection.assets(*roots).downstream() - AssetSelection.key_prefixes("mmm", "decisions")
    return sorted(selection.resolve(graph), key=lambda k: k.to_user_string())


@sensor(
    job=ingest_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers new tenant folders as partitions and ingests landing files the warehouse has not "
                "loaded yet (compared by content hash), only the streams that received them.",
)
def landing_sensor(context: SensorEvaluationContext):
    from weathervane import config

    cursor = json.loads(context.cursor) if context.cursor else {}
    if any(not isinstance(v, str) for v in cursor.values()):
        cursor = {}  # a cursor from an older version: compare everything with the warehouse once
    new_cursor, new_tenants, new_files, rejected = scan_landing(config.landing_root(), config.warehouse_path(), cursor)
    for name in rejected:
        context.log.warning(f"landing folder {name!r} is not a valid tenant id; ignored")
    to_register = sorted(new_tenants)
    runs = [
        RunRequest(
            partition_key=tenant,
            run_key=f"{tenant}:{hashlib.sha256(''.join(sorted(f'{k}={v}' for k, v in files.items())).encode()).hexdigest()[:16]}",
            # a tenant seen for the first time loads everything; later, only what the new files touch
            asset_selection=None if tenant in new_tenants else affected_assets(files),
            tags={"weathervane/trigger": "landing_sensor", "weathervane/new_files": str(len(files))},
        )
        for tenant, files in sorted(new_files.items())
    ]
    requests = [tenant_partitions.build_add_request(to_register)] if to_register else []
    if not runs and not requests:
        return SensorResult(skip_reason=SkipReason("no new tenants or files"), cursor=json.dumps(new_cursor, sort_keys=True))
    return SensorResult(run_requests=runs, dynamic_partitions_requests=requests,
                        cursor=json.dumps(new_cursor, sort_keys=True))


@sensor(
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Removes tenant partitions whose key is not a valid tenant id (e.g. added by hand in the UI), "
                "so no run or backfill can target them.",
)
def tenant_partition_guard(context: SensorEvaluationContext):
    from weathervane.config import InvalidTenantId, validate_tenant_id

    bad = []
    for key in tenant_partitions.get_partition_keys(dynamic_partitions_store=context.instance):
        try:
            validate_tenant_id(key)
        except InvalidTenantId:
            bad.append(key)
    if not bad:
        return SkipReason("every tenant partition key is valid")
    for key in bad:
        context.log.warning(f"tenant partition {key!r} is not a valid tenant id; removed")
    return SensorResult(dynamic_partitions_requests=[tenant_partitions.build_delete_request(bad)])


@run_status_sensor(run_status=DagsterRunStatus.SUCCESS, default_status=DefaultSensorStatus.RUNNING,
                   description="Marks a run failed, naming the checks, when any of its ERROR-severity checks failed: "
                               "Dagster shows such a run as a success, since every step ran.")
def error_checks_fail_run(context: RunStatusSensorContext):
    from dagster_project.run_log import mark_run_if_error_checks_failed

    failed = mark_run_if_error_checks_failed(context.instance, context.dagster_run.run_id)
    if failed:
        context.log.info(f"run {context.dagster_run.run_id} marked failed: {'; '.join(failed)}")
