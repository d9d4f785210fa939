"""One executor for every job: in-process, multiprocess (the default), celery or Kubernetes, chosen by run config.

Moving a deployment to celery workers or to a pod per step is then a run-config change, not a code change
(deploy/run_config.*.yaml). The celery and Kubernetes libraries are imported only when a run selects them, so the
code location loads without them.
"""
from __future__ import annotations

from dagster import Field, Permissive, Selector, executor
from dagster._core.definitions.executor_definition import (
    IN_PROC_CONFIG,
    MULTI_PROC_CONFIG,
    ExecutorDefinition,
    _core_multiprocess_executor_creation,
    multi_or_in_process_executor,
    multiple_process_executor_requirements,
)


class ExecutorConfigError(ValueError):
    pass


def _remote_executor(kind: str) -> ExecutorDefinition:
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor


def resolve_remote_config(kind: str, config: dict) -> tuple[ExecutorDefinition, dict]:
    """Validate `config` against the real executor's schema (celery / k8s) and fill its defaults."""
    from dagster._config import process_config

    definition = _remote_executor(kind)
    result = process_config(definition.config_schema.config_type, config or {})
    if not result.success:
        messages = "; ".join(e.message for e in result.errors)
        raise ExecutorConfigError(f"execution.config.{kind}: {messages}")
    return definition, result.value


def _requirements(config: dict):
    return [] if "in_process" in config else multiple_process_executor_requirements()


@executor(
    name="weathervane_executor",
    config_schema=Field(
        Selector({
            "multiprocess": MULTI_PROC_CONFIG,
            "in_process": IN_PROC_CONFIG,
            # Checked against dagster-celery's / dagster-k8s's own schema when a run starts.
            "celery": Field(Permissive(), is_required=False, default_value={}),
            "k8s": Field(Permissive(), is_required=False, default_value={}),
        }),
        default_value={"multiprocess": {}},
    ),
    requirements=_requirements,
)
def weathervane_executor(init_context):
    from dagster._core.executor.init import InitExecutorContext

    config = init_context.executor_config
    kind = next(iter(config))
    if kind == "multiprocess" and not config[kind].get("start_method"):
        # forkserver: steps fork from one process that imported the code location once (about a second each)
        # instead of each spawning an interpreter that imports it again (10-17 s); bench/bench_step_startup.py
        return _core_multiprocess_executor_creation({**config[kind], "start_method": {"forkserver": {}}})
    if kind in ("multiprocess", "in_process"):
        return multi_or_in_process_executor.executor_creation_fn(init_context)
    definition, resolved = resolve_remote_config(kind, config[kind])
    return definition.executor_creation_fn(InitExecutorContext(
        job=init_context.job, executor_def=definition, executor_config=resolved, instance=init_context.instance,
    ))
