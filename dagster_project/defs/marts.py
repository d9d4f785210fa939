"""Harmonized marts: the dbt project as one tenant-partitioned multi-asset, dbt tests and GX suites as checks.

The asset graph is read from dbt's manifest.json with plain `json`, and dbt runs as a subprocess inside the step:
loading the code location imports neither dbt nor dagster-dbt (about two seconds of imports together).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
    multi_asset_check,
)

from dagster_project.metadata import round_value
from dagster_project.partitions import WAREHOUSE_POOL, tenant_partitions
from dagster_project.resources import WeathervaneResource

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"
DBT_TARGET = DBT_PROJECT_DIR / "target"
MANIFEST = DBT_TARGET / "manifest.json"
OWNERS = ["team:data-engineering"]
ASSET_TYPES = ("model", "seed", "snapshot")


def dbt_executable() -> str:
    """The dbt of this environment (its bin folder may not be on PATH, e.g. `.venv/bin/python -m ...`)."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def prepare_dbt_manifest() -> Path:
    """`dbt parse` into dbt/target, in this process: no dbt executable on PATH needed (demo, tests, CI, UI)."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke([
        "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(DBT_TARGET),
    ])
    if not result.success:
        raise RuntimeError(f"dbt parse failed for {DBT_PROJECT_DIR}: {result.exception}")
    return MANIFEST


def _manifest_stale() -> bool:
    if not MANIFEST.exists():
        return True
    built = MANIFEST.stat().st_mtime
    sources = [p for d in ("models", "macros", "seeds", "tests") for p in (DBT_PROJECT_DIR / d).rglob("*") if p.is_file()]
    sources.append(DBT_PROJECT_DIR / "dbt_project.yml")
    return any(p.stat().st_mtime > built for p in sources)


# The asset graph is read from dbt's manifest; it is rebuilt only when a dbt file changed since it was written
# (`weathervane ui` and the test session also build it before the code location loads).
if _manifest_stale():
    prepare_dbt_manifest()


def _describe_test(props: Mapping[str, Any]) -> str:
    """What a dbt data test means, in words (the checks in the UI carry it)."""
    meta = props.get("test_metadata") or {}
    name, kw = meta.get("name", ""), meta.get("kwargs", {})
    col = kw.get("column_name") or props.get("column_name")
    words = {
        "not_null": f"`{col}` is never null.",
        "non_negative": f"`{col}` is never negative.",
        "unique": f"`{col}` is unique.",
        "unique_combination": f"One row per ({', '.join(kw.get('columns', []))}): no duplicates.",
        "accepted_values": f"`{col}` is one of {', '.join(map(str, kw.get('values', [])))}.",
        "between": f"`{col}` lies in [{kw.get('min_value')}, {kw.get('max_value')}].",
        "relationships": f"Every `{col}` exists in {str(kw.get('to', '')).replace('ref(', '').rstrip(')')}.{kw.get('field')}.",
        "no_date_gaps": f"No missing `{col}` within each ({', '.join(kw.get('partition_by', []))}).",
    }
    return props.get("description") or words.get(name, f"dbt test {name or props.get('name')}.")


class DbtGraph:
    """The dbt project as Dagster sees it: models and seeds keyed [schema, name], sources keyed [source, table]
    (so raw.<stream> is the landing asset that loads it), data tests as checks on the node they are attached to."""

    def __init__(self, manifest: Mapping[str, Any]):
        self.manifest = manifest
        nodes = manifest["nodes"]
        self.key_by_id: dict[str, AssetKey] = {}
        for uid, props in nodes.items():
            if props["resource_type"] in ASSET_TYPES and not self._ephemeral(props):
                schema = props.get("config", {}).get("schema") or props.get("schema") or "main"
                self.key_by_id[uid] = AssetKey([schema, props["name"]])
        for uid, props in manifest.get("sources", {}).items():
            self.key_by_id[uid] = AssetKey([props["source_name"], props["name"]])
        self.asset_ids = {uid for uid in self.key_by_id if not uid.startswith("source.")}
        self.specs = [self._asset_spec(uid) for uid in sorted(self.asset_ids)]
        self.name_by_key = {self.key_by_id[uid]: nodes[uid]["name"] for uid in self.asset_ids}
        self.check_by_test: dict[str, AssetCheckKey] = {}
        self.check_specs = []
        for uid, props in sorted(nodes.items()):
            spec = self._check_spec(uid, props) if props["resource_type"] == "test" else None
            if spec is not None:
                self.check_specs.append(spec)
                self.check_by_test[uid] = spec.key

    @staticmethod
    def _ephemeral(props: Mapping[str, Any]) -> bool:
        return props.get("config", {}).get("materialized") == "ephemeral"

    def _node(self, uid: str) -> Mapping[str, Any]:
        return self.manifest["nodes"].get(uid) or self.manifest["sources"].get(uid) or {}

    def upstream_keys(self, uid: str) -> list[AssetKey]:
        """Assets and sources a node reads; an ephemeral model is looked through to what it reads."""
        keys, queue, seen = [], list(self._node(uid).get("depends_on", {}).get("nodes", [])), set()
        while queue:
            parent = queue.pop(0)
            if parent in seen:
                continue
            seen.add(parent)
            if parent in self.key_by_id:
                keys.append(self.key_by_id[parent])
            elif self._ephemeral(self._node(parent)):
                queue.extend(self._node(parent).get("depends_on", {}).get("nodes", []))
        return sorted(set(keys), key=lambda k: k.path)

    def _asset_spec(self, uid: str) -> AssetSpec:
        props = self._node(uid)
        key = self.key_by_id[uid]
        kind = props["resource_type"]
        description = props.get("description") or (
            f"Reference table {props['name']} (dbt seed)." if kind == "seed" else f"dbt model {key.path[0]}.{props['name']}.")
        code = props.get("raw_code") or props.get("checksum", {}).get("checksum") or ""
        return AssetSpec(
            key=key,
            deps=[AssetDep(k) for k in self.upstream_keys(uid)],
            description=description,
            group_name="harmonize",
            owners=OWNERS,
            kinds={"dbt", "duckdb"},
            skippable=True,  # a model dbt skipped (its parent failed) is not materialized
            code_version=hashlib.sha1(code.encode()).hexdigest() if code else None,
            metadata={"dagster/table_name": ".".join(key.path), "dbt/unique_id": uid,
                      "dbt/materialized": props.get("config", {}).get("materialized", kind)},
        )

    def _check_spec(self, uid: str, props: Mapping[str, Any]) -> AssetCheckSpec | None:
        parents = list(props.get("depends_on", {}).get("nodes", []))
        attached = props.get("attached_node") or (parents[0] if len(parents) == 1 else None)
        if attached not in self.asset_ids:
            return None  # a singular test over several models, or a test on a source: dbt runs it, no check
        key = self.key_by_id[attached]
        others = {self.key_by_id[p] for p in parents if p in self.key_by_id} - {key}
        severity = (props.get("config", {}).get("severity") or "error").lower()
        return AssetCheckSpec(props["name"], asset=key, description=_describe_test(props),
                              additional_deps=sorted(others, key=lambda k: k.path), blocking=severity == "error",
                              metadata={"dbt/unique_id": uid})

    def unit_test_specs(self) -> list[AssetCheckSpec]:
        # dbt unit tests, one check each on the model they test (their results come from the same dbt build)
        specs = []
        for unit_test in self.manifest.get("unit_tests", {}).values():
            key = self.key_by_id[unit_test["depends_on"]["nodes"][0]]
            specs.append(AssetCheckSpec(unit_test["name"], asset=key, partitions_def=tenant_partitions,
                                        description=unit_test.get("description") or f"dbt unit test of {key.path[-1]}"))
        return sorted(specs, key=lambda spec: spec.name)


graph = DbtGraph(json.loads(MANIFEST.read_text()))


class HarmonizeConfig(Config):
    """A one-off grain for this run; empty = the tenant's model spec (weathervane.spec)."""

    grain_product: str | None = None
    grain_geo: str | None = None

    def spec_overrides(self) -> dict[str, str]:
        return {"grain_product": self.grain_product, "grain_geo": self.grain_geo}


def _dbt_vars(weathervane: WeathervaneResource, tenant: str, overrides: dict | None = None) -> dict:
    from weathervane.spec import dbt_vars, resolve_spec

    cfg = weathervane.tenant_config(tenant)
    with weathervane.connect() as con:
        spec = resolve_spec(con, tenant, cfg, overrides)
    return dbt_vars(tenant, cfg, spec)


def _run_target(run_id: str, step: str = "build") -> Path:
    # One dbt target folder per run: the unit-test check reads the results of the build in the same run.
    return DBT_TARGET / "runs" / f"{run_id}-{step}"


def run_dbt(args: list[str], target: Path, warehouse: Path, log) -> list[dict]:
    """dbt <args> as a subprocess writing into `target`; the results of run_results.json. Raises Failure when dbt
    itself failed (bad project, vars or connection) rather than a node in it."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "run_results.json").unlink(missing_ok=True)
    partial = DBT_TARGET / "partial_parse.msgpack"
    if partial.exists() and not (target / partial.name).exists():
        shutil.copy(partial, target / partial.name)  # parse only what changed since the manifest was built
    env = {**os.environ, "WEATHERVANE_WAREHOUSE": str(Path(warehouse).resolve()), "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PYTHONUNBUFFERED": "1"}
    command = [dbt_executable(), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
               "--target-path", str(target), "--log-path", str(target)]
    log.info(f"running {' '.join(command[1:])}")
    proc = subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    sys.stdout.write(proc.stdout)  # the step's compute log keeps dbt's own output
    results_file = target / "run_results.json"
    if proc.returncode not in (0, 1) or not results_file.exists():
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise Failure(description=f"dbt {args[0]} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(results_file.read_text())["results"]


def _subset_args(context: AssetExecutionContext) -> list[str]:
    """dbt selection for what this step was asked to build: nothing when it is the whole project; otherwise the
    selected models and tests by name (cautious: the tests of selected models come along, and their unit tests)."""
    assets, checks = set(context.selected_asset_keys), set(context.selected_asset_check_keys)
    every_check = {spec.key for spec in graph.check_specs}
    if assets == set(graph.name_by_key) and checks == every_check:
        return []
    left_out = any(k.asset_key in assets for k in every_check - checks)
    names = sorted(graph.name_by_key[k] for k in assets) + sorted(k.name for k in checks)
    return ["--select", *names, "--indirect-selection", "empty" if left_out else "cautious"]


def _table_metadata(weathervane: WeathervaneResource, tenant: str, keys: list[AssetKey]) -> dict[AssetKey, dict]:
    """Row count (this tenant's rows) and column schema of each built table, read once dbt has released the
    warehouse."""
    from dagster import TableColumn, TableSchema

    tables = [k for k in keys if len(k.path) == 2 and all(re.fullmatch(r"[a-z_][a-z0-9_]*", p) for p in k.path)]
    metadata: dict[AssetKey, dict] = {}
    with weathervane.connect(read_only=True) as con:
        for key in tables:
            schema, table = key.path
            cols = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? "
                               "AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()
            if not cols:
                continue
            meta = {"dagster/column_schema": TableSchema(columns=[TableColumn(c, t) for c, t in cols])}
            if "tenant_id" in {c for c, _ in cols}:
                # identifiers: our own dbt models' names, checked above; the tenant is a parameter
                meta["dagster/row_count"] = con.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" WHERE tenant_id = ?', [tenant]).fetchone()[0]
            metadata[key] = meta
    return metadata


def _test_result(check: AssetCheckKey, result: Mapping[str, Any]) -> AssetCheckResult:
    status = result["status"]
    return AssetCheckResult(
        asset_key=check.asset_key,
        check_name=check.name,
        passed=status == "pass",
        severity=AssetCheckSeverity.WARN if status == "warn" else AssetCheckSeverity.ERROR,
        description=None if status == "pass" else (result.get("message") or status)[:2000],
        metadata={"status": status, "failures": result.get("failures") or 0,
                  "seconds": round_value(float(result.get("execution_time") or 0.0), 3)},
    )


@multi_asset(
    name="harmonize",
    specs=graph.specs,
    check_specs=graph.check_specs,
    partitions_def=tenant_partitions,
    pool=WAREHOUSE_POOL,
    can_subset=True,
    description="The dbt project for one tenant: `dbt build` of the selected models, seeds and their data tests.",
)
def harmonize(context: AssetExecutionContext, weathervane: WeathervaneResource, config: HarmonizeConfig):
    tenant = context.partition_key
    variables = _dbt_vars(weathervane, tenant, config.spec_overrides())
    context.log.info(f"dbt vars for {tenant}: {variables}")
    with weathervane.connect():  # schemas and ops tables exist before dbt reads them
        pass
    results = run_dbt(["build", "--vars", json.dumps(variables), *_subset_args(context)],
                      _run_target(context.run.run_id), weathervane.warehouse(), context.log)
    yield from _harmonize_events(context, results, weathervane, tenant)


def _harmonize_events(context, results: list[dict], weathervane: WeathervaneResource, tenant: str) -> Iterator:
    """One materialization per model dbt built, one check result per data test it ran; a model that errored fails
    the step after what succeeded is recorded (a skipped one is just not materialized)."""
    selected, selected_checks = set(context.selected_asset_keys), set(context.selected_asset_check_keys)
    built: dict[AssetKey, dict] = {}
    checks, errors = [], []
    for result in results:
        uid, status = result["unique_id"], result["status"]
        key = graph.key_by_id.get(uid)
        if key is not None and key in selected:
            if status == "success":
                built[key] = result
            elif status == "error":
                errors.append(f"{'.'.join(key.path)}: {result.get('message')}")
        elif uid in graph.check_by_test and graph.check_by_test[uid] in selected_checks and status != "skipped":
            checks.append(_test_result(graph.check_by_test[uid], result))
    metadata = _table_metadata(weathervane, tenant, list(built))
    for key, result in built.items():
        seconds = {"dbt_seconds": round_value(float(result.get("execution_time") or 0.0), 3)}
        yield MaterializeResult(asset_key=key, metadata={**metadata.get(key, {}), **seconds})
    yield from checks
    if errors:
        raise Failure(description=f"dbt build failed for {tenant}: " + "; ".join(errors)[:4000])


MODEL_INPUT = AssetKey(["marts", "fct_model_input"])
PROMO_DAILY = AssetKey(["marts", "fct_promo_daily"])
WEATHER_DAILY = AssetKey(["marts", "fct_weather_daily"])


def _check_result(key: AssetKey, name: str, result) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=result.success,
        severity=AssetCheckSeverity.ERROR,
        description=result.describe()[:2000],
        metadata={"rows": result.rows, "failures": MetadataValue.json(result.failures)},
    )


# Blocking: a model fitted on collapsed revenue or spend, or on a geo with missing days, would be wrong silently.
GX_SPECS = [
    AssetCheckSpec("gx_model_input", asset=MODEL_INPUT, blocking=True, partitions_def=tenant_partitions,
                   description="GX: revenue and spend not collapsed to zero; every cell covers the tenant's days."),
    AssetCheckSpec("gx_promotions", asset=PROMO_DAILY, blocking=True, partitions_def=tenant_partitions,
                   description="GX: promotion depth in [0, 100], realized discount rate in [0, 1]."),
    AssetCheckSpec("gx_weather", asset=WEATHER_DAILY, blocking=True, partitions_def=tenant_partitions,
                   description="GX: daily weather within physical ranges."),
]


# One step for the three suites: each step is a process that imports Great Expectations (seconds) before it works.
@multi_asset_check(specs=GX_SPECS, name="gx_marts", can_subset=True,
                   description="Great Expectations suites on the marts the model reads, one check each.")
def gx_marts(context: AssetCheckExecutionContext, weathervane: WeathervaneResource) -> Iterator[AssetCheckResult]:
    from weathervane import quality

    tenant = context.partition_key
    selected = {key.name for key in context.selected_asset_check_keys}
    with weathervane.connect(read_only=True) as con:
        if "gx_model_input" in selected:
            df = quality.read_mart(con, "fct_model_input", tenant, "period = 'day'")
            yield _check_result(MODEL_INPUT, "gx_model_input", quality.model_input_suite(df, tenant))
        if "gx_promotions" in selected:
            df = quality.read_mart(con, "fct_promo_daily", tenant)
            yield _check_result(PROMO_DAILY, "gx_promotions", quality.promotion_suite(df, tenant))
        if "gx_weather" in selected:
            df = quality.read_mart(con, "fct_weather_daily", tenant)
            yield _check_result(WEATHER_DAILY, "gx_weather", quality.weather_suite(df, tenant))


UNIT_TEST_SPECS = graph.unit_test_specs()


@multi_asset_check(specs=UNIT_TEST_SPECS, name="dbt_unit_tests", pool=WAREHOUSE_POOL,
                   description="dbt unit tests of the promotion logic, one check each.")
def dbt_unit_tests(context: AssetCheckExecutionContext, weathervane: WeathervaneResource):
    tenant = context.partition_key
    build = _run_target(context.run.run_id) / "run_results.json"

    def unit_results(run_results: list[dict]) -> dict[str, dict]:
        return {r["unique_id"].split(".")[-1]: r for r in run_results if r["unique_id"].startswith("unit_test.")}

    results = unit_results(json.loads(build.read_text())["results"] if build.exists() else [])
    if any(spec.name not in results for spec in UNIT_TEST_SPECS):
        # a check-only run, or a build of a subset that left the unit tests out: run them here
        variables = _dbt_vars(weathervane, tenant)
        ran = run_dbt(["test", "--select", "test_type:unit", "--vars", json.dumps(variables)],
                      _run_target(context.run.run_id, "unit"), weathervane.warehouse(), context.log)
        results = {**results, **unit_results(ran)}
    for spec in UNIT_TEST_SPECS:
        result = results.get(spec.name)
        yield AssetCheckResult(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=bool(result) and result["status"] == "pass",
            severity=AssetCheckSeverity.ERROR,
            description=(result or {}).get("message") or ("not run" if result is None else None),
        )


assets = [harmonize]
asset_checks = [gx_marts, dbt_unit_tests]
