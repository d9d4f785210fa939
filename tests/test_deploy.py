"""Deployment configuration: every instance yaml validates, run configs name real executor fields, dbt targets parse."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from dagster._core.instance.config import dagster_instance_config

from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
PG_ENV = {"DAGSTER_PG_USERNAME": "u", "DAGSTER_PG_PASSWORD": "p", "DAGSTER_PG_HOST": "db", "DAGSTER_PG_DB": "d",
          "WEATHERVANE_IMAGE": "weathervane:test"}


def _home_with(tmp_path: Path, name: str) -> Path:
    home = tmp_path / name.replace(".", "_")
    home.mkdir()
    shutil.copy(DEPLOY / name, home / "dagster.yaml")
    return home


@pytest.mark.parametrize("name", ["dagster.yaml", "dagster.postgres.yaml"])
def test_instance_yaml_validates_with_one_warehouse_writer(name, tmp_path, monkeypatch):
    for k, v in PG_ENV.items():
        monkeypatch.setenv(k, v)
    config, _ = dagster_instance_config(str(_home_with(tmp_path, name)))
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["concurrency"]["pools"]["granularity"] == "op"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert "config" not in config["run_coordinator"]  # run limits belong under concurrency.runs


def test_local_instance_loads_with_sqlite_and_the_warehouse_pool(tmp_path):
    with DagsterInstance.from_config(str(_home_with(tmp_path, "dagster.yaml"))) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert instance.event_log_storage.supports_global_concurrency_limits
        assert instance.global_op_concurrency_default_limit == 1
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4


def test_k8s_instance_names_the_run_launcher_and_limits_one_run_per_tenant():
    data = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text())
    assert (data["run_launcher"]["module"], data["run_launcher"]["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert "postgres" in data["storage"]
    limits = data["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits


def test_folder_warehouse_instance_runs_tenants_side_by_side_and_one_writer_per_tenant(tmp_path):
    """deploy/dagster.tenants.yaml (a folder of tenant files): Dagster's own run queue limits run one run per
    tenant and no pool serializes tenants; within a run the executor lets one warehouse writer step run at a time."""
    from types import SimpleNamespace

    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._utils.tags import TagConcurrencyLimitsCounter

    from dagster_project.definitions import defs
    from dagster_project.executor import resolve_executor_config, with_writer_limit
    from dagster_project.partitions import WAREHOUSE_POOL, WRITER_TAG, WRITER_TAGS

    def run(tenant):
        return DagsterRun(job_name="refresh_job", run_id=f"run-{tenant}", tags={"dagster/partition": tenant})

    with DagsterInstance.from_config(str(_home_with(tmp_path, "dagster.tenants.yaml"))) as instance:
        assert instance.global_op_concurrency_default_limit is None  # duckdb_warehouse does not span tenants
        queue = instance.get_concurrency_config().run_queue_config
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        runs = TagConcurrencyLimitsCounter(queue.tag_concurrency_limits, [run("acme")])
        assert runs.is_blocked(run("acme")) and not runs.is_blocked(run("brand-b"))
    # the cluster's instance over its warehouse folder: the same two limits
    k8s = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text())
    assert "default_limit" not in k8s["concurrency"]["pools"]
    assert k8s["run_launcher"]["config"]["env_vars"][0] == "WEATHERVANE_WAREHOUSE=/data/warehouse"

    job = defs.resolve_job_def("refresh_job")
    ops = [node.definition for node in job.graph.node_dict.values()]
    writers = {op.name for op in ops if op.pool == WAREHOUSE_POOL}
    assert {"landing_files", "harmonize", "harmonize_model_input", "decisions__plans"} <= writers
    assert writers == {op.name for op in ops if op.tags.get(WRITER_TAG) == "writer"}
    _, resolved = resolve_executor_config("multiprocess", with_writer_limit({"max_concurrent": 4}))
    steps = TagConcurrencyLimitsCounter(resolved["multiprocess"]["tag_concurrency_limits"],
                                        [SimpleNamespace(tags=WRITER_TAGS)])
    assert steps.is_blocked(SimpleNamespace(tags=WRITER_TAGS)) and not steps.is_blocked(SimpleNamespace(tags={}))
    # a run config's own limits are kept beside the writer limit
    own = [{"key": "team", "value": "x", "limit": 2}]
    assert with_writer_limit({"tag_concurrency_limits": own})["tag_concurrency_limits"][0] == own[0]


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def test_k8s_run_pod_gets_the_shared_volume_the_warehouse_folder_and_two_cores(tmp_path, monkeypatch):
    """The launcher config passes dagster-k8s's own schema and the Job it would create for a tenant's run (built
    offline: no cluster) mounts the shared volume where the warehouse folder and landing zone point."""
    from dagster import DagsterRun
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import construct_dagster_k8s_job

    for k, v in PG_ENV.items():
        monkeypatch.setenv(k, v)
    launcher_yaml = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text())["run_launcher"]["config"]
    processed = process_config(K8sRunLauncher.config_type(), launcher_yaml)
    assert processed.success, [e.message for e in processed.errors]
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    launcher = K8sRunLauncher(**{**processed.value, "load_incluster_config": False,
                                 "kubeconfig_file": str(tmp_path / "kubeconfig")})
    run = DagsterRun(job_name="refresh_job", run_id="0123abcd", tags={"dagster/partition": "acme"})
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image=None, run_launcher=launcher), args=["dagster"],
        job_name="dagster-run-0123abcd", pod_name="dagster-run-0123abcd", component="run_worker",
        user_defined_k8s_config=context.run_k8s_config, labels={}).to_dict()
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "weathervane:test"
    claims = {v["name"]: (v.get("persistent_volume_claim") or {}).get("claim_name") for v in pod["volumes"]}
    assert claims["weathervane-data"] == "weathervane-data"
    mounts = {m["name"]: m["mount_path"] for m in container["volume_mounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    for var in ("WEATHERVANE_WAREHOUSE", "WEATHERVANE_LANDING", "WEATHERVANE_MODEL_STORE", "WEATHERVANE_REPORTS"):
        assert Path(env[var]).is_relative_to(mounts["weathervane-data"]), var  # on the shared volume, not the pod
    assert container["resources"]["requests"]["cpu"] == "2"  # the fit's two chains
    sources = {(e["config_map_ref"] or e["secret_ref"])["name"] for e in container["env_from"]}
    assert sources == {"weathervane-env", "weathervane-secrets"}


@pytest.mark.parametrize("name", sorted(p.name for p in DEPLOY.glob("run_config.*.yaml")))
def test_every_shipped_run_config_validates_against_every_job(name, monkeypatch):
    """The run configs are checked by Dagster against each job, and the executor part against the real
    dagster-celery / dagster-k8s schema."""
    from dagster._core.system_config.objects import ResolvedRunConfig

    from dagster_project.definitions import defs
    from dagster_project.executor import resolve_remote_config

    monkeypatch.setenv("CELERY_BROKER_URL", "redis://broker:6379/0")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "redis://broker:6379/1")
    run_config = yaml.safe_load((DEPLOY / name).read_text())
    for job_name in ["ingest_job", "refresh_job"]:
        job = defs.resolve_job_def(job_name)
        ResolvedRunConfig.build(job, run_config)  # raises on a field the job's executor does not know
    kind, raw = next(iter(run_config["execution"]["config"].items()))
    definition, values = resolve_remote_config(kind, raw)
    assert definition.name == {"celery": "celery", "k8s": "k8s"}[kind]
    assert set(raw) <= set(values)  # every shipped field is one of the executor's own


def test_remote_executor_config_is_checked_against_the_real_schema():
    from dagster_project.executor import ExecutorConfigError, resolve_remote_config

    with pytest.raises(ExecutorConfigError, match="execution.config.k8s"):
        resolve_remote_config("k8s", {"max_concurrent": "four"})
    with pytest.raises(ExecutorConfigError, match="execution.config.celery"):
        resolve_remote_config("celery", {"no_such_field": 1})


def test_jobs_accept_in_process_and_multiprocess_config():
    from dagster._core.system_config.objects import ResolvedRunConfig

    from dagster_project.definitions import defs

    for config in ({"in_process": {}}, {"multiprocess": {"max_concurrent": 2}}):
        ResolvedRunConfig.build(defs.resolve_job_def("refresh_job"), {"execution": {"config": config}})


def _duckdb_targets() -> list[str]:
    outputs = yaml.safe_load((REPO_ROOT / "dbt" / "profiles.yml").read_text())["weathervane"]["outputs"]
    return sorted(name for name, out in outputs.items() if out.get("type") == "duckdb")


@pytest.mark.heavy
def test_every_offline_dbt_target_parses(tmp_path):
    targets = _duckdb_targets()
    assert "local" in targets
    env = {"WEATHERVANE_WAREHOUSE": str(tmp_path / "wh.duckdb"), "MOTHERDUCK_TOKEN": "offline",
           "MOTHERDUCK_DATABASE": "weathervane", "PATH": str(Path(sys.executable).parent)}
    dbt = str(Path(sys.executable).parent / "dbt")
    for target in targets:
        out = tmp_path / target
        proc = subprocess.run(
            [dbt, "parse", "--target", target, "--project-dir", ".", "--profiles-dir", ".",
             "--target-path", str(out / "target"), "--log-path", str(out / "logs"), "--no-partial-parse"],
            cwd=REPO_ROOT / "dbt", env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (target, proc.stdout[-2000:])
        assert (out / "target" / "manifest.json").exists()


@pytest.mark.parametrize("executor_config", [{"in_process": {}}, {"multiprocess": {"max_concurrent": 2}}])
def test_a_job_runs_on_the_weathervane_executor(executor_config, tmp_path, monkeypatch):
    """The executor every job gets really starts runs (in-process and a process per step)."""
    from dagster import execute_job, instance_for_test, reconstructable

    from dagster_project.jobs import standalone_ingest_job
    from tests.conftest import ACME_EXAMPLE

    shutil.copytree(ACME_EXAMPLE, tmp_path / "landing" / "acme")
    monkeypatch.setenv("WEATHERVANE_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("WEATHERVANE_WAREHOUSE", str(tmp_path / "wh.duckdb"))
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", ["acme"])
        result = execute_job(reconstructable(standalone_ingest_job), instance=instance,
                             run_config={"execution": {"config": executor_config}}, tags={"dagster/partition": "acme"})
        assert result.success
        assert len(result.get_asset_materialization_events()) == 14  # 13 streams + the tenant's settings
