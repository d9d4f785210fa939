"""Harmonized marts: the dbt project as two tenant-partitioned dagster-dbt steps, dbt tests and GX suites as checks.

`harmonize` builds what does not depend on the modelling grain (seeds, staging, promotions, grain-free
intermediate models); the dataset sniff reads those and decides the tenant's model spec; `harmonize_model_input`
then builds the models tagged `grain` in dbt, and everything downstream of them, at the spec's grain. Both steps
take their dbt vars from the same resolved spec (weathervane.spec), so "Materialize all" for a new tenant builds
the grain its data can carry.
"""

import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    Failure,
    MetadataValue,
    Output,
    get_dagster_logger,
    multi_asset_check,
)
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from dagster_project.defs.sniff import SNIFF_KEY
from dagster_project.partitions import WAREHOUSE_POOL, WRITER_TAGS, tenant_partitions
from dagster_project.resources import WeathervaneResource

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"
OWNERS = ["team:data-engineering"]
# dbt selection of the models built at the spec's grain: those that call the grain macros carry the tag, and
# whatever reads them depends on the grain too.
GRAIN_MODELS = "tag:grain+"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """The dbt of this environment (its bin folder may not be on PATH, e.g. `.venv/bin/python -m ...`)."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


@contextmanager
def _manifest_lock() -> Iterator[None]:
    """One process at a time parses into dbt/target or checks the manifest: dbt writes it in place, so another
    process (a step server preloading the code location, a test worker) could read it half written."""
    import fcntl

    lock = dbt_project.manifest_path.parent / ".manifest.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _parse_manifest() -> Path:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke([
        "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(dbt_project.manifest_path.parent),
    ])
    if not result.success:
        raise RuntimeError(f"dbt parse failed for {DBT_PROJECT_DIR}: {result.exception}")
    return dbt_project.manifest_path


def prepare_dbt_manifest() -> Path:
    """`dbt parse` into dbt/target, in this process: no dbt executable on PATH needed (demo, tests, CI, UI)."""
    with _manifest_lock():
        return _parse_manifest()


def _manifest_stale() -> bool:
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [p for d in ("models", "macros", "seeds", "tests") for p in (DBT_PROJECT_DIR / d).rglob("*") if p.is_file()]
    sources.append(DBT_PROJECT_DIR / "dbt_project.yml")
    return any(p.stat().st_mtime > built for p in sources)


def prepared_manifest() -> Path:
    """The manifest the asset graph is read from, parsed again only when a dbt file is newer than it (`weathervane
    ui`, the demo and the test session prepare it before the code location loads). When dbt cannot parse the
    project, the last manifest it could parse is kept, so the code location still loads; the dbt steps then fail
    with dbt's message."""
    with _manifest_lock():
        if _manifest_stale():
            try:
                _parse_manifest()
            except RuntimeError as exc:
                if not dbt_project.manifest_path.exists():
                    raise
                get_dagster_logger().warning(f"{exc}; the asset graph keeps the last manifest dbt parsed")
    return dbt_project.manifest_path


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


class HarmonizeTranslator(DagsterDbtTranslator):
    """Models and seeds keyed [schema, name], sources [source, table] (so raw.<stream> is the landing asset that
    loads it); models built at the grain wait for the sniff; dbt tests are checks per tenant."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        props = dbt_resource_props
        if props["resource_type"] == "source":
            return AssetKey([props["source_name"], props["name"]])
        return AssetKey([props.get("config", {}).get("schema") or props.get("schema") or "main", props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return "harmonize"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return OWNERS

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        props = dbt_resource_props
        if props["resource_type"] == "seed":
            return props.get("description") or f"Reference table {props['name']} (dbt seed)."
        return props.get("description") or f"dbt model {'.'.join(self.get_asset_key(props).path)}."

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if "grain" in self.get_resource_props(manifest, unique_id).get("tags", []):
            spec = spec.merge_attributes(deps=[SNIFF_KEY])  # the sniff decides the grain it is built at
        return spec

    def get_asset_check_spec(self, asset_spec: AssetSpec, manifest: Mapping[str, Any], unique_id: str,
                             project: DbtProject | None) -> AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        # One result per tenant: without a partition, a second tenant's result would replace the first's.
        return AssetCheckSpec(spec.name, asset=spec.asset_key, description=_describe_test(manifest["nodes"][unique_id]),
                              additional_deps=spec.additional_deps, blocking=spec.blocking, metadata=spec.metadata,
                              partitions_def=tenant_partitions)


translator = HarmonizeTranslator()
MANIFEST = prepared_manifest()
manifest = json.loads(MANIFEST.read_text())  # parsed once for both steps and the unit-test checks


class HarmonizeConfig(Config):
    """A one-off grain for this run; empty = the tenant's model spec (weathervane.spec)."""

    grain_product: str | None = None
    grain_geo: str | None = None

    def spec_overrides(self) -> dict[str, str]:
        return {"grain_product": self.grain_product, "grain_geo": self.grain_geo}


def _dbt_vars(weathervane: WeathervaneResource, tenant: str, overrides: dict | None = None) -> dict:
    """The dbt vars of the tenant's resolved spec. Opening the warehouse for writing also creates the schemas and
    ops tables dbt reads."""
    from weathervane.spec import dbt_vars, resolve_spec

    cfg = weathervane.tenant_config(tenant)
    with weathervane.connect(tenant=tenant) as con:
        spec = resolve_spec(con, tenant, cfg, overrides)
    return dbt_vars(tenant, cfg, spec)


def _run_target(run_id: str, step: str) -> Path:
    # One dbt target folder per run and step: the unit-test check reads the results of harmonize in the same run.
    return dbt_project.manifest_path.parent / "runs" / f"{run_id}-{step}"


RUN_TARGETS_KEPT_DAYS = 7


@contextmanager
def _parse_cache(target: Path, variables: dict, warehouse: Path) -> Iterator[None]:
    """dbt's partial parse for these vars and this warehouse. dbt parses the whole project again whenever its vars
    or its profile's environment differ from the last parse, so the one parse left in dbt/target (no vars) never
    serves a tenant's build; one saved per (vars, warehouse) lets the model-input step reuse the parse of the step
    before it and each week's run the last week's. dbt checks the file's vars and profile itself: a stale entry
    costs only the full parse it would have done anyway."""
    import hashlib

    root = dbt_project.manifest_path.parent
    key = hashlib.sha256(json.dumps([variables, str(Path(warehouse).resolve())], sort_keys=True).encode())
    cached = root / "partial_parse" / f"{key.hexdigest()[:32]}.msgpack"
    target.mkdir(parents=True, exist_ok=True)
    if cached.exists():  # dagster-dbt copies dbt/target's own file only where none is in place
        shutil.copy(cached, target / "partial_parse.msgpack")
    yield
    parsed = target / "partial_parse.msgpack"
    if parsed.exists():
        cached.parent.mkdir(exist_ok=True)
        staged = cached.with_suffix(f".{os.getpid()}.tmp")
        shutil.copy(parsed, staged)
        os.replace(staged, cached)  # atomic: steps of other tenants write beside it


def _prune_run_targets(runs: Path) -> None:
    """Run folders (a manifest copy each, megabytes) older than a week go: only a run's own steps read them."""
    import time

    cutoff = time.time() - RUN_TARGETS_KEPT_DAYS * 86400
    for folder in runs.glob("*") if runs.exists() else []:
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass  # another step removed it first


@contextmanager
def _warehouse_env(path: Path) -> Iterator[None]:
    # profiles.yml reads WEATHERVANE_WAREHOUSE, in the dbt subprocess and in dagster-dbt's adapter here: give both
    # the resource's path while dbt runs.
    before = os.environ.get("WEATHERVANE_WAREHOUSE")
    os.environ["WEATHERVANE_WAREHOUSE"] = str(Path(path).resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("WEATHERVANE_WAREHOUSE", None)
        else:
            os.environ["WEATHERVANE_WAREHOUSE"] = before


def _build(context: AssetExecutionContext, dbt: DbtCliResource, weathervane: WeathervaneResource,
           overrides: dict | None = None) -> Iterator:
    """`dbt build` of what this step was asked for, at the tenant's spec; a model dbt fails on fails the step after
    what did build is recorded (a model dbt skipped is just not materialized)."""
    tenant = context.partition_key
    variables = _dbt_vars(weathervane, tenant, overrides)
    context.log.info(f"dbt vars for {tenant}: {variables}")
    target = _run_target(context.run.run_id, context.op_execution_context.op.name)
    _prune_run_targets(target.parent)
    warehouse = weathervane.warehouse(tenant)  # dbt builds the tenant into its own file in folder mode
    with _warehouse_env(warehouse), _parse_cache(target, variables, warehouse):
        invocation = dbt.cli(["build", "--vars", json.dumps(variables)], context=context, raise_on_error=False,
                             target_path=target)
        events = list(invocation.stream().fetch_column_metadata(with_column_lineage=False))
    results_file = invocation.target_path / "run_results.json"
    if not results_file.exists():  # dbt itself failed: bad project, vars or connection
        raise Failure(description=str(invocation.get_error()))
    results = {r["unique_id"]: r for r in json.loads(results_file.read_text())["results"]}
    yield from _for_tenant(context, events, results, weathervane, tenant)
    errors = [f"{'.'.join(translator.get_asset_key(invocation.manifest['nodes'][uid]).path)}: {r.get('message')}"
              for uid, r in results.items() if r["status"] == "error" and uid.startswith(("model.", "seed."))]
    if errors:
        raise Failure(description=f"dbt build failed for {tenant}: " + "; ".join(errors)[:4000])


def _for_tenant(context: AssetExecutionContext, events: list, results: Mapping[str, dict],
                weathervane: WeathervaneResource, tenant: str) -> Iterator:
    """dagster-dbt's events with what is this tenant's: each table's row count counts the tenant's rows (the
    tables hold every tenant's, which dagster-dbt's fetch_row_counts would count), and a failed check carries
    dbt's message."""
    tables = {e.output_name: context.asset_key_for_output(e.output_name) for e in events if isinstance(e, Output)}
    counts = _tenant_row_counts(weathervane, tenant, tables)
    for event in events:
        if isinstance(event, Output) and event.output_name in counts:
            event = event.with_metadata({**event.metadata, "dagster/row_count": counts[event.output_name]})
        elif isinstance(event, AssetCheckResult) and not event.passed:
            result = results.get(event.metadata["unique_id"].value, {})
            message = f"{tenant}: {result.get('message') or result.get('status')}"
            event = AssetCheckResult(passed=False, asset_key=event.asset_key, check_name=event.check_name,
                                     metadata=event.metadata, severity=event.severity, description=message[:2000])
        yield event


def _tenant_row_counts(weathervane: WeathervaneResource, tenant: str, tables: Mapping[str, AssetKey]) -> dict:
    """{output name: rows of the tenant} for each built table with a tenant_id, read after dbt released the file
    (a single-file warehouse holds every tenant's rows)."""
    counts = {}
    with weathervane.connect(read_only=True, tenant=tenant) as con:
        for name, key in tables.items():
            schema, table = key.path
            if con.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                           "AND column_name = 'tenant_id'", [schema, table]).fetchone():
                # identifiers: our own dbt models' names, from the manifest; the tenant is a parameter
                counts[name] = con.execute(f'SELECT count(*) FROM "{schema}"."{table}" WHERE tenant_id = ?',
                                           [tenant]).fetchone()[0]
    return counts


@dbt_assets(manifest=manifest, project=dbt_project, name="harmonize", exclude=GRAIN_MODELS,
            partitions_def=tenant_partitions, dagster_dbt_translator=translator, pool=WAREHOUSE_POOL,
            op_tags=WRITER_TAGS)
def harmonize(context: AssetExecutionContext, dbt: DbtCliResource, weathervane: WeathervaneResource):
    """dbt build of the grain-free models for one tenant: seeds, staging, promotions, what the sniff reads."""
    yield from _build(context, dbt, weathervane)


@dbt_assets(manifest=manifest, project=dbt_project, name="harmonize_model_input", select=GRAIN_MODELS,
            partitions_def=tenant_partitions, dagster_dbt_translator=translator, pool=WAREHOUSE_POOL,
            op_tags=WRITER_TAGS)
def harmonize_model_input(context: AssetExecutionContext, dbt: DbtCliResource, weathervane: WeathervaneResource,
                          config: HarmonizeConfig):
    """dbt build of the models at the tenant's grain (sales, spend, promotions, weather, fct_model_input), after
    the sniff decided it."""
    yield from _build(context, dbt, weathervane, config.spec_overrides())


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
    with weathervane.connect(read_only=True, tenant=tenant) as con:
        if "gx_model_input" in selected:
            df = quality.read_mart(con, "fct_model_input", tenant)
            yield _check_result(MODEL_INPUT, "gx_model_input", quality.model_input_suite(df, tenant))
        if "gx_promotions" in selected:
            df = quality.read_mart(con, "fct_promo_daily", tenant)
            yield _check_result(PROMO_DAILY, "gx_promotions", quality.promotion_suite(df, tenant))
        if "gx_weather" in selected:
            df = quality.read_mart(con, "fct_weather_daily", tenant)
            yield _check_result(WEATHER_DAILY, "gx_weather", quality.weather_suite(df, tenant))


def _unit_test_specs() -> list[AssetCheckSpec]:
    # dagster-dbt reports dbt data tests as checks but not dbt unit tests: one check each on the model it tests.
    specs = []
    for unit_test in manifest.get("unit_tests", {}).values():
        key = translator.get_asset_key(manifest["nodes"][unit_test["depends_on"]["nodes"][0]])
        specs.append(AssetCheckSpec(unit_test["name"], asset=key, partitions_def=tenant_partitions,
                                    description=unit_test.get("description") or f"dbt unit test of {key.path[-1]}"))
    return sorted(specs, key=lambda spec: spec.name)


UNIT_TEST_SPECS = _unit_test_specs()


@multi_asset_check(specs=UNIT_TEST_SPECS, name="dbt_unit_tests", pool=WAREHOUSE_POOL, op_tags=WRITER_TAGS,
                   description="dbt unit tests of the promotion logic, one check each.")
def dbt_unit_tests(context: AssetCheckExecutionContext, dbt: DbtCliResource, weathervane: WeathervaneResource):
    tenant = context.partition_key

    def unit_results(target: Path) -> dict[str, dict]:
        path = target / "run_results.json"
        return {r["unique_id"].split(".")[-1]: r for r in (json.loads(path.read_text())["results"] if path.exists()
                                                           else []) if r["unique_id"].startswith("unit_test.")}

    results = unit_results(_run_target(context.run.run_id, "harmonize"))
    if any(spec.name not in results for spec in UNIT_TEST_SPECS):
        # a check-only run, or a build of a subset that left the unit tests out: run them here
        target = _run_target(context.run.run_id, "unit")
        variables = _dbt_vars(weathervane, tenant)
        warehouse = weathervane.warehouse(tenant)
        with _warehouse_env(warehouse), _parse_cache(target, variables, warehouse):
            dbt.cli(["test", "--select", "test_type:unit", "--vars", json.dumps(variables)],
                    raise_on_error=False, target_path=target).wait()
        results = {**results, **unit_results(target)}
    for spec in UNIT_TEST_SPECS:
        result = results.get(spec.name)
        yield AssetCheckResult(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=bool(result) and result["status"] == "pass",
            severity=AssetCheckSeverity.ERROR,
            description=(result or {}).get("message") or ("not run" if result is None else None),
        )


assets = [harmonize, harmonize_model_input]
asset_checks = [gx_marts, dbt_unit_tests]
# One dbt for every step that runs it.
resources = {"dbt": DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR),
                                   dbt_executable=dbt_executable())}
