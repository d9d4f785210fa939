"""Weekly refresh of every registered tenant."""
from dagster import RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from dagster_project.jobs import refresh_job
from dagster_project.partitions import tenant_partitions


@schedule(job=refresh_job, cron_schedule="0 6 * * 1", execution_timezone="UTC",
          description="Monday 06:00 UTC: refit and re-plan every tenant.")
def weekly_refresh(context: ScheduleEvaluationContext):
    tenants = tenant_partitions.get_partition_keys(dynamic_partitions_store=context.instance)
    if not tenants:
        return SkipReason("no tenants registered yet")
    week = context.scheduled_execution_time.strftime("%G-W%V")
    return [RunRequest(partition_key=t, run_key=f"{t}:{week}") for t in tenants]
