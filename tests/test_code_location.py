"""The one code location: connected lineage, writers in the warehouse pool, per-process PyTensor compile dirs."""
from __future__ import annotations

import os
import subprocess
import sys

from dagster import AssetKey

from dagster_project.definitions import defs
from dagster_project.partitions import WAREHOUSE_POOL


def test_lineage_runs_from_landing_files_to_budget_plans():
    graph = defs.resolve_asset_graph()
    upstream_of_plan = graph.get(AssetKey(["decisions", "plans"])).parent_keys
    assert AssetKey(["mmm", "weather_mmm"]) in upstream_of_plan
    assert AssetKey(["marts", "fct_model_input"]) in graph.get(AssetKey(["mmm", "weather_mmm"])).parent_keys
    # dbt sources carry the raw assets' keys: the ingest assets feed staging directly
    children = graph.get(AssetKey(["raw", "shopify__orders"])).child_keys
    assert any(k.path[0] == "staging" for k in children)
    raw_keys = {k for k in graph.get_all_asset_keys() if k.path[0] == "raw"}
    assert len(raw_keys) == 13 and all(graph.get(k).is_materializable for k in raw_keys)


def test_the_sniff_sits_between_the_two_dbt_steps():
    """The sniff job builds ingest, the grain-free dbt step and the sniff; the grain models come after the sniff."""
    from dagster_project.defs.marts import harmonize, harmonize_model_input
    from dagster_project.defs.sniff import SNIFF_KEY, sniff_job

    graph = defs.resolve_asset_graph()
    selected = sniff_job.selection.resolve(graph)
    assert SNIFF_KEY in selected and set(harmonize.keys) <= selected
    assert {k for k in graph.get_all_asset_keys() if k.path[0] == "raw"} <= selected
    assert not set(harmonize_model_input.keys) & selected
    assert SNIFF_KEY in graph.get(AssetKey(["marts", "fct_sales_daily"])).parent_keys
    assert AssetKey(["marts", "fct_model_input"]) in graph.get(SNIFF_KEY).child_keys | graph.get(
        AssetKey(["intermediate", "int_cell_revenue_share"])).child_keys


def test_every_warehouse_writer_is_in_the_pool_and_the_fit_is_not():
    pools = {}
    for assets_def in defs.assets:
        for key in assets_def.keys:
            pools[key] = assets_def.op.pool if assets_def.is_executable else None
    writers = [k for k in pools if k.path[0] in {"raw", "staging", "intermediate", "marts", "ops"}]
    assert writers and all(pools[k] == WAREHOUSE_POOL for k in writers)
    assert pools[AssetKey(["decisions", "plans"])] == WAREHOUSE_POOL
    assert pools[AssetKey(["mmm", "weather_mmm"])] is None


def test_the_replay_and_the_audits_wait_for_the_marts_only_and_the_fit_goes_first():
    """The replay and the audits read the marts (and the deployments), not this run's plan: they run beside the
    fit, and the fit, at the head of the longest chain, takes a free core first."""
    graph = defs.resolve_asset_graph()
    for key in (AssetKey(["decisions", "policy_replay"]), AssetKey(["decisions", "causal_audits"])):
        parents = graph.get(key).parent_keys
        assert parents and all(k.path[0] in {"marts", "raw"} for k in parents), (key, parents)
    priority = {k: int(graph.get(k).assets_def.op.tags.get("dagster/priority", 0))
                for k in (AssetKey(["mmm", "weather_mmm"]), AssetKey(["decisions", "policy_replay"]),
                          AssetKey(["decisions", "causal_audits"]))}
    assert priority[AssetKey(["mmm", "weather_mmm"])] > priority[AssetKey(["decisions", "policy_replay"])] \
        > priority[AssetKey(["decisions", "causal_audits"])]


def test_the_step_server_preloads_the_modelling_stack_only_for_runs_that_fit():
    from dagster import DagsterInstance

    from dagster_project.executor import CODE_LOCATION, MODEL_PRELOAD, _fits_models, preload_modules

    from dagster import build_reconstructable_job

    def job(name):  # as the executor gets it
        return build_reconstructable_job(CODE_LOCATION, "job_named", (name,))

    assert _fits_models(job("refresh_job")) and not _fits_models(job("ingest_job"))
    with DagsterInstance.ephemeral() as instance:
        fitting = preload_modules(CODE_LOCATION, instance, True)
        # the modelling stack first (it needs no dbt manifest), after the package that sets the compile dir
        assert fitting[0] == "dagster_project" and fitting.index(MODEL_PRELOAD[0]) < fitting.index(CODE_LOCATION)
        assert not set(MODEL_PRELOAD) & set(preload_modules(CODE_LOCATION, instance, False))


def test_each_process_compiles_pytensor_in_its_own_dir():
    probe = "import os, dagster_project; print(os.environ['PYTENSOR_FLAGS'])"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTENSOR_FLAGS", "WEATHERVANE_PYTENSOR_PID")}
    first = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    # a child started from a Weathervane process inherits its flags but must not share its compile dir
    child_env = {**env, "PYTENSOR_FLAGS": first.strip(), "WEATHERVANE_PYTENSOR_PID": "1"}
    child = subprocess.run([sys.executable, "-c", probe], env=child_env, capture_output=True, text=True, check=True).stdout
    assert "compiledir=" in first and "compiledir=" in child and first != child
    # an operator's explicit choice is kept
    chosen = subprocess.run([sys.executable, "-c", probe], env={**env, "PYTENSOR_FLAGS": "compiledir=/tmp/chosen"},
                            capture_output=True, text=True, check=True).stdout
    assert chosen.strip() == "compiledir=/tmp/chosen"
