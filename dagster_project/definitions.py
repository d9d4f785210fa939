"""The one code location: every asset family, checks, jobs, the landing sensor and the weekly schedule."""
from __future__ import annotations

from dagster import Definitions

from dagster_project import jobs, schedules, sensors
from dagster_project.executor import weathervane_executor
from dagster_project.defs import audit, decisions, ingest, marts, mmm, replay, sniff
from dagster_project.resources import WeathervaneResource

_families = [ingest, marts, mmm, decisions, audit, replay, sniff]


def build_definitions(weathervane: WeathervaneResource | None = None, extra_resources: dict | None = None) -> Definitions:
    resources = {"weathervane": weathervane or WeathervaneResource()}
    for family in _families:
        resources.update(getattr(family, "resources", {}))
    resources.update(extra_resources or {})
    return Definitions(
        assets=[a for f in _families for a in getattr(f, "assets", [])],
        asset_checks=[c for f in _families for c in getattr(f, "asset_checks", [])],
        jobs=[jobs.ingest_job, jobs.refresh_job, *[j for f in _families for j in getattr(f, "jobs", [])]],
        sensors=[sensors.landing_sensor, sensors.tenant_partition_guard, sensors.error_checks_fail_run, *[s for f in _families for s in getattr(f, "sensors", [])]],
        schedules=[schedules.weekly_refresh],
        resources=resources,
        executor=weathervane_executor,
    )


defs = build_definitions()


def job_named(name: str):
    """One job of the code location, for a run launched from Python in step processes of their own
    (`dagster.build_reconstructable_job` rebuilds the job in each of them from this function)."""
    return defs.resolve_job_def(name)
