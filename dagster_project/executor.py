"""One executor for every job: in-process, multiprocess (the default), celery or Kubernetes, chosen by run config.

Moving a deployment to celery workers or to a pod per step is then a run-config change, not a code change
(deploy/run_config.*.yaml). The celery and Kubernetes libraries are imported only when a run selects them, so the
code location loads without them. Each kind's config is checked against that executor's own schema (Dagster's,
dagster-celery's, dagster-k8s's) when a run starts, so this module restates none of them.
"""
from __future__ import annotations

from dagster import (
    DagsterInvalidConfigError,
    ExecutorDefinition,
    Field,
    InitExecutorContext,
    Permissive,
    Selector,
    executor,
    job,
    multi_or_in_process_executor,
    multiple_process_executor_requirements,
    validate_run_config,
)

KINDS = ("multiprocess", "in_process", "celery", "k8s")


class ExecutorConfigError(ValueError):
    pass


def _definition(kind: str) -> ExecutorDefinition:
    if kind in ("multiprocess", "in_process"):
        return multi_or_in_process_executor
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor


def resolve_executor_config(kind: str, config: dict | None) -> tuple[ExecutorDefinition, dict]:
    """The executor of `kind` and `config` checked against its own schema, its defaults filled in."""
    definition = _definition(kind)
    own = {kind: config or {}} if definition is multi_or_in_process_executor else config or {}

    @job(name="executor_config_probe", executor_def=definition)
    def probe():
        pass

    try:
        resolved = validate_run_config(probe, {"execution": {"config": own}})
    except DagsterInvalidConfigError as exc:
        raise ExecutorConfigError(f"execution.config.{kind}: " + "; ".join(e.message for e in exc.errors)) from exc
    return definition, next(iter(resolved["execution"].values()))


def resolve_remote_config(kind: str, config: dict) -> tuple[ExecutorDefinition, dict]:
    """Validate `config` against the real executor's schema (celery / k8s) and fill its defaults."""
    return resolve_executor_config(kind, config)


def _requirements(config: dict):
    return [] if "in_process" in config else multiple_process_executor_requirements()


def with_writer_limit(config: dict) -> dict:
    """`config` with one warehouse writer step at a time within the run: in a folder warehouse the instance pool no
    longer serializes a tenant's writers, and the run's writer steps all write the same tenant file."""
    from dagster_project.partitions import WRITER_LIMITS, WRITER_TAG

    limits = list(config.get("tag_concurrency_limits") or [])
    if not any(limit.get("key") == WRITER_TAG for limit in limits):
        limits += WRITER_LIMITS
    return {**config, "tag_concurrency_limits": limits}


CODE_LOCATION = "dagster_project.definitions"
# the data stack every step's own code imports first
STEP_PRELOAD = ("pandas", "duckdb")
# the modelling stack (about 5.5 s to import): in a run that fits, the fit, the replay and the audits (side by side)
# and the experiments and the plan would each import it
MODEL_PRELOAD = ("pymc_marketing.mmm",)


def _fits_models(job) -> bool:
    """Whether the run materializes a PyMC asset (kind pymc)."""
    try:
        layer = job.get_definition().asset_layer
        return any("pymc" in layer.asset_graph.get(key).kinds for key in layer.selected_asset_keys)
    except Exception:  # preloading only saves time: a job we cannot inspect gets what every step needs
        return False


def preload_modules(module: str, instance, fits_models: bool) -> list[str]:
    """What the forkserver imports once for every step: the code location (Dagster's own default), the instance's
    storage classes, which each step's process would otherwise import before its first event (about 0.4 s for
    SQLite), the data stack, and the modelling stack where the run fits. The modelling stack goes before the code
    location (after our package, which gives the process its PyTensor compile dir): it needs no dbt manifest, so it
    imports while another process may still be parsing one."""
    modules = ["dagster_project", *(MODEL_PRELOAD if fits_models else ()), module]
    for name in ("event_log_storage", "run_storage", "schedule_storage"):
        storage = getattr(instance, name, None)
        if storage is not None:
            modules.append(type(storage).__module__)
    return list(dict.fromkeys([*modules, *STEP_PRELOAD]))


def _preload(init_context: InitExecutorContext) -> list[str]:
    get_module = getattr(init_context.job, "get_module", None)
    # a job rebuilt from a function (weathervane demo / proof) names no module: its code location is still ours
    module = get_module() if get_module is not None and get_module() else CODE_LOCATION
    return preload_modules(module, init_context.instance, _fits_models(init_context.job))


def start_step_server(instance) -> None:
    """Start the forkserver this process's runs fork their steps from, now: it imports its modules in its own
    process while the caller goes on (the demo simulates and loads the code location meanwhile); the executor
    then finds it running, with the modules of a run that fits. Its output goes where this process's goes at this
    moment."""
    import multiprocessing
    import multiprocessing.forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(
        preload_modules(CODE_LOCATION, instance, fits_models=True))
    multiprocessing.forkserver.ensure_running()


@executor(
    name="weathervane_executor",
    config_schema=Field(
        Selector({kind: Field(Permissive(), is_required=False, default_value={}) for kind in KINDS}),
        default_value={"multiprocess": {}},
    ),
    requirements=_requirements,
)
def weathervane_executor(init_context: InitExecutorContext):
    kind, config = next(iter(init_context.executor_config.items()))
    if kind == "multiprocess" and not config.get("start_method"):
        # forkserver: steps fork from one process that imported the code location once instead of each spawning
        # an interpreter that imports it again; bench/bench_step_startup.py
        config = {**config, "start_method": {"forkserver": {"preload_modules": _preload(init_context)}}}
    if kind in ("multiprocess", "k8s"):  # the executors that take step tag limits (celery: see deploy/README.md)
        config = with_writer_limit(config)
    definition, resolved = resolve_executor_config(kind, config)
    return definition.executor_creation_fn(InitExecutorContext(
        job=init_context.job, executor_def=definition, executor_config=resolved, instance=init_context.instance,
    ))
