"""Harmonized marts: the dbt project as one tenant-partitioned multi-asset, dbt tests and GX suites as checks."""

import json
import os
import re
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
    MetadataValue,
    asset_check,
    multi_asset_check,
)
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from dagster_project.partitions import WAREHOUSE_POOL, tenant_partitions
from dagster_project.resources import WeathervaneResource
from weathervane.grain import dbt_vars

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"
OWNERS = ["team:data-engineering"]


def dbt_executable() -> str:
    """The dbt of this environment (its bin folder may not be on PATH, e.g. `.venv/bin/python -m ...`)."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def prepare_dbt_manifest() -> Path:
    """`dbt parse` into dbt/target, in this process: no dbt executable on PATH needed (demo, tests, CI, UI)."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke([
        "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(dbt_project.target_path),
    ])
    if not result.success:
        raise RuntimeError(f"dbt parse failed for {DBT_PROJECT_DIR}: {result.exception}")
    return dbt_project.manifest_path


def _manifest_stale() -> bool:
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
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


class WeathervaneDbtTranslator(DagsterDbtTranslator):
    """Models are [schema, model]; sources keep [source, table], so raw.<stream> joins the landing assets."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        kind = props["resource_type"]
        if kind == "source":
            return spec.replace_attributes(key=AssetKey([props["source_name"], props["name"]]))
        if kind in ("model", "seed", "snapshot"):
            schema = props.get("config", {}).get("schema") or props.get("schema") or "main"
            description = props.get("description") or (
                f"Reference table {props['name']} (dbt seed)." if kind == "seed" else f"dbt model {schema}.{props['name']}.")
            return spec.replace_attributes(key=AssetKey([schema, props["name"]]), group_name="harmonize",
                                           owners=OWNERS, description=description)
        return spec

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project):
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        props = manifest["nodes"].get(unique_id) or {}
        return spec._replace(description=spec.description or _describe_test(props))


translator = WeathervaneDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


class HarmonizeConfig(Config):
    """A one-off grain for this run; empty = tenant.yaml's grain."""

    grain_product: str | None = None
    grain_geo: str | None = None

    def grain_override(self) -> dict[str, str] | None:
        override = {k: v for k, v in (("product", self.grain_product), ("geo", self.grain_geo)) if v}
        return override or None


@contextmanager
def _warehouse_env(path: Path) -> Iterator[None]:
    # dbt runs in a subprocess that reads WEATHERVANE_WAREHOUSE in profiles.yml; give it the resource's
    # absolute path for the moment the process is started.
    before = os.environ.get("WEATHERVANE_WAREHOUSE")
    os.environ["WEATHERVANE_WAREHOUSE"] = str(Path(path).resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("WEATHERVANE_WAREHOUSE", None)
        else:
            os.environ["WEATHERVANE_WAREHOUSE"] = before


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    name="harmonize",
    partitions_def=tenant_partitions,
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
)
def harmonize(context: AssetExecutionContext, weathervane: WeathervaneResource, config: HarmonizeConfig):
    tenant = context.partition_key
    variables = dbt_vars(tenant, weathervane.tenant_config(tenant), config.grain_override())
    context.log.info(f"dbt vars for {tenant}: {variables}")
    with weathervane.connect():  # schemas and ops tables exist before dbt reads them
        pass
    dbt = DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR),
                         dbt_executable=dbt_executable())
    with _warehouse_env(weathervane.warehouse()):
        invocation = dbt.cli(["build", "--vars", json.dumps(variables)], context=context,
                             target_path=_run_target(context.run_id))
        events = list(invocation.stream())
    # Row counts (this tenant's rows) and column schemas per model, read once dbt has released the warehouse:
    # dagster-dbt's own fetchers would keep a second connection open in this process.
    yield from _with_table_metadata(events, weathervane, tenant, context)


def _with_table_metadata(events, weathervane: WeathervaneResource, tenant: str, context) -> Iterator:
    from dagster import Output, TableColumn, TableSchema

    keys = {e.output_name: context.asset_key_for_output(e.output_name) for e in events if isinstance(e, Output)}
    tables = {name: key.path for name, key in keys.items()
              if len(key.path) == 2 and all(re.fullmatch(r"[a-z_][a-z0-9_]*", part) for part in key.path)}
    metadata: dict[str, dict] = {}
    with weathervane.connect(read_only=True) as con:
        for name, (schema, table) in tables.items():
            cols = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? "
                               "AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()
            if not cols:
                continue
            meta = {"dagster/column_schema": TableSchema(columns=[TableColumn(c, t) for c, t in cols])}
            if "tenant_id" in {c for c, _ in cols}:
                # identifiers: our own dbt models' names, checked above; the tenant is a parameter
                meta["dagster/row_count"] = con.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" WHERE tenant_id = ?', [tenant]).fetchone()[0]
            metadata[name] = meta
    for event in events:
        if isinstance(event, Output) and event.output_name in metadata:
            event = event.with_metadata({**event.metadata, **metadata[event.output_name]})
        yield event


MODEL_INPUT = AssetKey(["marts", "fct_model_input"])
PROMO_DAILY = AssetKey(["marts", "fct_promo_daily"])
WEATHER_DAILY = AssetKey(["marts", "fct_weather_daily"])


def _check_result(result) -> AssetCheckResult:
    return AssetCheckResult(
        passed=result.success,
        severity=AssetCheckSeverity.ERROR,
        description=result.describe()[:2000],
        metadata={"rows": result.rows, "failures": MetadataValue.json(result.failures)},
    )


# Blocking: a model fitted on collapsed revenue or spend, or on a geo with missing days, would be wrong silently.
@asset_check(asset=MODEL_INPUT, name="gx_model_input", blocking=True, partitions_def=tenant_partitions,
             description="GX: revenue and spend not collapsed to zero; every cell covers the tenant's days.")
def gx_model_input(context: AssetCheckExecutionContext, weathervane: WeathervaneResource) -> AssetCheckResult:
    from weathervane import quality

    tenant = context.partition_key
    with weathervane.connect(read_only=True) as con:
        df = quality.read_mart(con, "fct_model_input", tenant, "period = 'day'")
    return _check_result(quality.model_input_suite(df, tenant))


@asset_check(asset=PROMO_DAILY, name="gx_promotions", blocking=True, partitions_def=tenant_partitions,
             description="GX: promotion depth in [0, 100], realized discount rate in [0, 1].")
def gx_promotions(context: AssetCheckExecutionContext, weathervane: WeathervaneResource) -> AssetCheckResult:
    from weathervane import quality

    tenant = context.partition_key
    with weathervane.connect(read_only=True) as con:
        df = quality.read_mart(con, "fct_promo_daily", tenant)
    return _check_result(quality.promotion_suite(df, tenant))


@asset_check(asset=WEATHER_DAILY, name="gx_weather", blocking=True, partitions_def=tenant_partitions,
             description="GX: daily weather within physical ranges.")
def gx_weather(context: AssetCheckExecutionContext, weathervane: WeathervaneResource) -> AssetCheckResult:
    from weathervane import quality

    tenant = context.partition_key
    with weathervane.connect(read_only=True) as con:
        df = quality.read_mart(con, "fct_weather_daily", tenant)
    return _check_result(quality.weather_suite(df, tenant))


def _run_target(run_id: str, step: str = "build") -> Path:
    # One dbt target folder per run: the unit-test check reads the results of the build in the same run.
    return dbt_project.project_dir / dbt_project.target_path / "runs" / f"{run_id}-{step}"


def _unit_test_specs() -> list[AssetCheckSpec]:
    # dagster-dbt reports dbt data tests as checks but not dbt unit tests: these specs give each unit test a
    # check on the model it tests.
    manifest = json.loads(dbt_project.manifest_path.read_text())
    specs = []
    for unit_test in manifest.get("unit_tests", {}).values():
        model_id = unit_test["depends_on"]["nodes"][0]
        key = translator.get_asset_spec(manifest, model_id, dbt_project).key
        specs.append(AssetCheckSpec(unit_test["name"], asset=key, partitions_def=tenant_partitions,
                                    description=unit_test.get("description") or f"dbt unit test of {key.path[-1]}"))
    return sorted(specs, key=lambda spec: spec.name)


UNIT_TEST_SPECS = _unit_test_specs()


@multi_asset_check(specs=UNIT_TEST_SPECS, name="dbt_unit_tests", pool=WAREHOUSE_POOL,
                   description="dbt unit tests of the promotion logic, one check each.")
def dbt_unit_tests(context: AssetCheckExecutionContext, weathervane: WeathervaneResource):
    tenant = context.partition_key
    variables = dbt_vars(tenant, weathervane.tenant_config(tenant))
    dbt = DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR),
                         dbt_executable=dbt_executable())
    run_results = _run_target(context.run.run_id) / "run_results.json"
    if not run_results.exists():  # a check-only run: the build of this run did not run the unit tests
        run_results = _run_target(context.run.run_id, "unit") / "run_results.json"
        dbt = DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR),
                             dbt_executable=dbt_executable())
        with _warehouse_env(weathervane.warehouse()):
            dbt.cli(["test", "--select", "test_type:unit", "--vars", json.dumps(variables)],
                    raise_on_error=False, target_path=run_results.parent).wait()
    results = {r["unique_id"].split(".")[-1]: r for r in json.loads(run_results.read_text())["results"]
               if r["unique_id"].startswith("unit_test.")}
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
asset_checks = [gx_model_input, gx_promotions, gx_weather, dbt_unit_tests]
