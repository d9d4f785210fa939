"""Bring-your-own MMM tables: an aggregated weekly table reaches sniff, checks, model and plan through Dagster."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest


def aggregated_table(weeks: int = 156, geos: tuple[str, ...] = ("US",), spend_unit: float = 1e-3,
                     seed: int = 0) -> pd.DataFrame:
    """A weekly table as another tool exports it: revenue, two channels (spend in `spend_unit` of revenue's
    currency), two event columns; carry-over over eight weeks and concave returns."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2022-01-03", periods=weeks, freq="W-MON")
    rows = []
    for g in geos:
        size = rng.uniform(0.7, 1.3)
        tv = np.maximum(0, 6000 + 3000 * np.sin(np.arange(weeks) / 5) + rng.normal(0, 800, weeks)) * size
        search = np.where(rng.random(weeks) < 0.3, 0.0, rng.uniform(1000, 4000, weeks)) * size
        event_1 = (rng.random(weeks) < 0.06).astype(float)
        event_2 = (rng.random(weeks) < 0.04).astype(float)
        carry = np.zeros(weeks)
        for lag, w in enumerate(0.6 ** np.arange(8)):
            carry[lag:] += w * tv[:weeks - lag]
        media = 1.8 * 15000 * np.tanh(carry / 15000) + 2.5 * search
        season = 1 + 0.15 * np.sin(2 * np.pi * np.arange(weeks) / 52)
        revenue = (60000 * size * season + media + 9000 * event_1 - 4000 * event_2) * rng.lognormal(0, 0.03, weeks)
        rows.append(pd.DataFrame({"date": dates.date, "geo_id": g, "revenue": revenue.round(2),
                                  "spend_tv": (tv * spend_unit).round(4), "spend_search": (search * spend_unit).round(4),
                                  "event_1": event_1, "event_2": event_2}))
    frame = pd.concat(rows, ignore_index=True)
    return frame if len(geos) > 1 else frame.drop(columns="geo_id")


def _deliver(landing, tenant: str, frame: pd.DataFrame) -> None:
    folder = landing / tenant / "aggregated" / "mmm_input"
    folder.mkdir(parents=True)
    frame.to_csv(folder / "export.csv", index=False)
    (landing / tenant / "tenant.yaml").write_text("timezone: UTC\ncurrency: USD\n")


def _run(tenant: str, selection, run_config: dict | None = None):
    from dagster import DagsterInstance

    from dagster_project.definitions import build_definitions

    defs = build_definitions()  # resources read the temporary folders of this test
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", [tenant])
    keys = selection.resolve(defs.resolve_asset_graph())
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(partition_key=tenant, instance=instance, run_config=run_config or {},
                                  asset_selection=sorted(keys), raise_on_error=False)


@pytest.mark.heavy
def test_a_weekly_table_without_geos_in_odd_units_runs_to_a_plan_with_its_controls_and_no_weather(wv_env):
    from dagster import AssetKey, AssetSelection

    tenant = "byo-weekly"
    _deliver(wv_env["landing"], tenant, aggregated_table())
    result = _run(tenant, AssetSelection.assets(AssetKey(["decisions", "plans"])).upstream(),
                  {"ops": {"mmm__weather_mmm": {"config": {"method": "map"}}}})
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    assert result.success, failed
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    # checks fit the streams present: no weather and no promotions delivered is not a failure
    for name in ("gx_model_input", "gx_weather", "gx_promotions"):
        assert checks[name].passed, (name, checks[name].metadata)

    con = duckdb.connect(str(wv_env["warehouse"]), read_only=True)
    try:
        spec = {f: json.loads(v) for f, v in con.execute(
            "select field, value from ops.model_spec where tenant_id = ? and status = 'ok'", [tenant]).fetchall()}
        sniff = dict(con.execute("select name, number from ops.dataset_sniff where tenant_id = ? and kind = 'spend'",
                                 [tenant]).fetchall())
        model_id, period, weather = con.execute(
            "select m.model_id, m.period, m.weather_vars from mmm.model_selection s join mmm.models m "
            "using (model_id) where s.tenant_id = ?", [tenant]).fetchone()
        roas = dict(con.execute("select channel, roas_mean from mmm.channel_summary where model_id = ? "
                                "and geo_id is null", [model_id]).fetchall())
        plan = con.execute("select decision, total_budget from decisions.plans where tenant_id = ?", [tenant]).fetchone()
    finally:
        con.close()
    assert (spec["period"], spec["grain_product"], spec["grain_geo"]) == ("week", "all", "country")
    assert spec["weather_vars"] == [] and set(spec["channels"]) == {"tv", "search"}
    assert spec["adstock_max_lag"] >= 8  # weekly carry-over of two months
    assert sniff["total"] > 0  # the sniff sees the table's spend
    assert period == "week" and weather == ""
    # delivered event columns are controls, by name
    from weathervane.mmm.response import META_ATTR, open_model

    tree, _ = open_model(model_id, tenant, store=wv_env["model_store"])
    meta = json.loads(tree.attrs[META_ATTR])
    assert {"control_event_1", "control_event_2"} <= set(meta["control_names"])
    # spend in thousandths of the currency: ROAS comes out in the table's units (about 1000x), not 2,000x off
    assert 200 < roas["search"] < 20000, roas
    assert plan is not None and plan[1] > 0


@pytest.mark.heavy
def test_a_table_with_geos_is_modelled_per_geo(wv_env):
    from dagster_project.defs.sniff import sniff_job  # noqa: F401  (the job `weathervane sniff` runs)
    from dagster import AssetKey, AssetSelection

    tenant = "byo-geos"
    _deliver(wv_env["landing"], tenant, aggregated_table(weeks=120, geos=("US-CA", "US-TX", "US-NY"), spend_unit=1))
    result = _run(tenant, AssetSelection.assets(AssetKey(["ops", "dataset_sniff"])).upstream())
    assert result.success
    con = duckdb.connect(str(wv_env["warehouse"]), read_only=True)
    try:
        spec = {f: json.loads(v) for f, v in con.execute(
            "select field, value from ops.model_spec where tenant_id = ? and status = 'ok'", [tenant]).fetchall()}
    finally:
        con.close()
    assert (spec["period"], spec["grain_geo"]) == ("week", "region")
