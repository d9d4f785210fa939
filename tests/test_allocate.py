"""The allocator on the simulator's ground truth, with real DuckDB tables in a temporary warehouse."""
from __future__ import annotations

import json
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd
import pytest

from weathervane.allocate import (
    AllocationInfeasible,
    Constraints,
    Objective,
    SaturatingResponse,
    build_plan,
    evaluate,
    optimize_allocation,
    propose_plan,
)
from weathervane.allocate.safety import ModelEvidence
from weathervane.config import Autopilot, Planning, TenantConfig
from weathervane.reports import audience
from weathervane.simulate import simulate_tenant

TENANT = "simco"
CONTRACT_PLAN_COLUMNS = ["plan_id", "tenant_id", "model_id", "created_at", "horizon_start", "horizon_end",
                         "total_budget", "expected_kpi_mean", "expected_kpi_p05", "expected_kpi_p95",
                         "baseline_kpi_mean", "status"]
# the simulator's truth stands in for a model that passed its gate (decision safety is tests/test_plan_safety.py)
TRUSTED = ModelEvidence.assumed("simulator-truth")
CONTRACT_LINE_COLUMNS = ["plan_id", "channel", "geo_id", "recommended_spend", "previous_spend", "weather_multiplier",
                         "expected_contribution_mean", "expected_contribution_p05", "expected_contribution_p95"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    truth = simulate_tenant(TENANT, out, days=400, n_geos=3, seed=3)
    return out / TENANT, truth


def _open_meteo_frames(folder):
    frames = []
    for path in sorted(folder.glob("*/*.json")):
        daily = json.loads(path.read_text())["daily"]
        frames.append(pd.DataFrame({"date": pd.to_datetime(daily["time"]).date, "geo_id": path.parent.name,
                                    "temperature_2m_mean": daily["temperature_2m_mean"],
                                    "temperature_2m_max": daily["temperature_2m_max"],
                                    "precipitation_sum": daily["precipitation_sum"]}))
    return pd.concat(frames, ignore_index=True)


def _load(con, sim, forecast_edit=None, forecast=True):
    """marts.fct_ad_spend_daily and fct_weather_daily from the simulator; its forecast files into
    raw.weather__forecast (the raw shape: one Open-Meteo response per record)."""
    folder, truth = sim
    rows = [(TENANT, d, ch, f"c-{ch}", g, s) for ch, by_geo in truth.daily.spend.items()
            for g, series in by_geo.items() for d, s in zip(pd.to_datetime(truth.daily.dates).date, series)]
    spend = pd.DataFrame(rows, columns=["tenant_id", "date", "channel", "campaign_id", "geo_id", "spend"])
    weather = _open_meteo_frames(folder / "weather" / "daily").assign(tenant_id=TENANT)
    con.execute("create schema if not exists marts")
    con.execute("create schema if not exists raw")
    con.execute("create or replace table marts.fct_ad_spend_daily as select tenant_id, date, channel, campaign_id, "
                "geo_id, spend, 0::bigint as impressions, 0::bigint as clicks, 'x' as platform from spend")
    con.execute("create or replace table marts.fct_weather_daily as select * from weather")
    con.execute("create or replace table raw.weather__forecast (tenant_id varchar, file_path varchar, "
                "file_hash varchar, source_line integer, loaded_at timestamp, geo_id varchar, record json)")
    if forecast:
        for path in sorted((folder / "weather" / "forecast").glob("*/*.json")):
            record = json.loads(path.read_text())
            if forecast_edit:
                forecast_edit(path.parent.name, record["daily"])
            con.execute("insert into raw.weather__forecast values (?, ?, 'h', 1, ?, ?, ?)",
                        [TENANT, str(path.relative_to(folder)), datetime(2025, 1, 1), path.parent.name,
                         json.dumps(record)])


def _cfg(**planning):
    return TenantConfig(planning=Planning(**planning),
                        autopilot=Autopilot(requires_approval=True, approvers=["cfo@simco.example"]))


def test_plan_beats_baseline_holds_every_constraint_and_is_written(sim, wv_env):
    folder, truth = sim
    response = SaturatingResponse.from_truth(truth, draws=150, seed=1)
    con = duckdb.connect(str(wv_env["warehouse"]))
    _load(con, sim)
    # constraints set relative to the previous window, so they bind whatever spend the simulator drew
    probe = build_plan(con, TENANT, _cfg(max_change_pct=30), response, evidence=TRUSTED)
    meta_cap = 0.95 * probe.previous[probe.channels.index("meta")].sum()
    ny_floor = 1.15 * probe.previous[:, probe.geos.index("US-NY")].sum()
    cfg = _cfg(max_change_pct=30, channel_max={"meta": meta_cap}, geo_min={"US-NY": ny_floor})
    plan = propose_plan(con, TENANT, cfg, response, reports_dir=wv_env["reports"],
                        audience=audience(TENANT, wv_env["landing"]), evidence=TRUSTED)
    assert plan.horizon_start == date.fromisoformat(truth.forecast_start)  # day after the last spend day
    prev = plan.previous
    assert prev.sum() > 0 and plan.total_budget == pytest.approx(prev.sum())
    assert plan.spend.sum() == pytest.approx(plan.total_budget, rel=1e-6)
    assert np.all(plan.spend >= prev * 0.7 - 1e-6) and np.all(plan.spend <= prev * 1.3 + 1e-6)
    assert plan.spend[plan.channels.index("meta")].sum() <= meta_cap + 1e-6
    assert plan.spend[:, plan.geos.index("US-NY")].sum() >= ny_floor - 1e-6
    assert not np.allclose(plan.spend, plan.baseline_spend, rtol=0.02)  # the plan moved budget
    # expected KPI under the true response beats keeping the previous split
    assert plan.kpi_draws.mean() > plan.baseline_kpi_draws.mean()
    assert (plan.lift_draws > 0).mean() > 0.9
    assert plan.weather.source == "forecast"

    cols = [r[0] for r in con.execute("describe decisions.plans").fetchall()]
    assert cols[: len(CONTRACT_PLAN_COLUMNS)] == CONTRACT_PLAN_COLUMNS
    line_cols = {r[0] for r in con.execute("describe decisions.plan_lines").fetchall()}
    assert set(CONTRACT_LINE_COLUMNS) <= line_cols
    row = con.execute("select status, total_budget, expected_kpi_mean, expected_kpi_p05, expected_kpi_p95, "
                      "baseline_kpi_mean, weather_source from decisions.plans").fetchone()
    assert row[0] == "proposed" and row[6] == "forecast"
    assert row[3] < row[2] < row[4] and row[2] > row[5]
    lines = con.execute("select sum(recommended_spend), sum(previous_spend), count(*), min(weather_multiplier), "
                        "max(weather_multiplier) from decisions.plan_lines").fetchone()
    assert lines[0] == pytest.approx(plan.total_budget) and lines[1] == pytest.approx(prev.sum())
    assert lines[2] == len(plan.channels) * len(plan.geos)
    assert lines[3] != lines[4]  # the model's weather terms give cell-specific multipliers
    events = con.execute("select to_status, actor from decisions.plan_events").fetchall()
    assert events == [("proposed", "weathervane")]
    assert con.execute("select kind from decisions.outbox").fetchall() == [("plan_proposed",)]
    html = (wv_env["reports"] / TENANT / f"plan_{plan.plan_id}.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "forecast" in html


def _meta_share(plan, geo):
    ci = plan.channels.index("meta")
    return plan.spend[ci, plan.geos.index(geo)] / plan.spend[ci].sum()


def test_swapping_the_forecast_moves_budget_with_the_weather(sim, wv_env):
    """meta's effect grows with temperature in the truth: a heat wave forecast in one geo pulls meta there."""
    folder, truth = sim
    response = SaturatingResponse.from_truth(truth, draws=100, seed=1)
    sd = {g.geo_id: g.weather_sd["temperature_2m_mean"] for g in truth.geos}

    def heat(geo):
        def edit(g, daily):
            bump = 2.5 * sd[g] if g == geo else -1.0 * sd[g]
            daily["temperature_2m_mean"] = [t + bump for t in daily["temperature_2m_mean"]]
        return edit

    shares = {}
    for hot in ("US-CA", "US-NY"):
        con = duckdb.connect(str(wv_env["warehouse"]))
        _load(con, sim, forecast_edit=heat(hot))
        plan = propose_plan(con, TENANT, _cfg(max_change_pct=50), response, evidence=TRUSTED)
        shares[hot] = (_meta_share(plan, "US-CA"), _meta_share(plan, "US-NY"))
        ci = plan.channels.index("meta")
        cold = "US-NY" if hot == "US-CA" else "US-CA"
        assert plan.weather_multiplier[ci, plan.geos.index(hot)] > 1.2 > 1.0 > plan.weather_multiplier[ci, plan.geos.index(cold)]
        con.close()
        wv_env["warehouse"].unlink()
    assert shares["US-CA"][0] > shares["US-NY"][0] + 0.05
    assert shares["US-NY"][1] > shares["US-CA"][1] + 0.05


def test_without_a_forecast_the_plan_uses_climatology_and_says_so(sim, wv_env):
    folder, truth = sim
    response = SaturatingResponse.from_truth(truth, draws=50)
    con = duckdb.connect(str(wv_env["warehouse"]))
    _load(con, sim, forecast=False)
    plan = propose_plan(con, TENANT, _cfg(), response)
    assert plan.weather.source == "climatology"
    assert any("28 days climatology" in n for n in plan.notes)
    assert not np.allclose(plan.weather.z, 0)
    # climatology of early February from the previous year's history: temperatures near that season's
    hist = con.execute("select avg(temperature_2m_mean) from marts.fct_weather_daily where geo_id = 'US-NY' "
                       "and month(date) = 2 and year(date) = 2024").fetchone()[0]
    ny = plan.weather.values.query("geo_id == 'US-NY'")["temperature_2m_mean"].mean()
    assert abs(ny - hist) < 3.0
    notes = json.loads(con.execute("select notes from decisions.plans").fetchone()[0])
    assert any("climatology" in n for n in notes)
    assert con.execute("select weather_source from decisions.plans").fetchone()[0] == "climatology"


def _toy(seed=0, draws=120):
    rng = np.random.default_rng(seed)
    c, g = 3, 4
    return SaturatingResponse(
        channels=["meta", "google_search", "tiktok"], geos=["US-CA", "US-TX", "US-NY", "US-FL"],
        weather_vars=["temperature_2m_mean"], alpha=np.array([0.5, 0.2, 0.3]), lam=np.array([1.4, 2.0, 1.0]),
        scale=np.array([300.0, 200.0, 150.0]),
        beta=np.exp(rng.normal(0, 0.3, (draws, c, g))) * np.array([[800, 600, 500, 400], [500, 500, 400, 300],
                                                                     [300, 200, 200, 100]])[None],
        gamma=np.array([[0.25], [0.0], [-0.2]])[None] + rng.normal(0, 0.03, (draws, c, 1)),
    )


def test_min_roas_caps_spend_and_risk_averse_objective_raises_the_low_quantile():
    r = _toy()
    z, hist = np.zeros((28, 4, 1)), np.full((7, 3, 4), 100.0)
    prev = np.full((3, 4), 2800.0)
    capped = optimize_allocation(r, z, hist, Constraints(total_budget=prev.sum(), previous=prev,
                                                         max_change_pct=None, min_roas=1.1))
    spent = capped.spend > capped.lower + 1e-6
    assert spent.any() and np.all(capped.marginal_roas[spent] >= 1.1 - 1e-3)
    assert capped.spend.sum() <= prev.sum() + 1e-6
    assert (capped.spend == 0).any()  # cells whose first unit returns less than 1.1 get nothing

    cons = Constraints(total_budget=prev.sum(), previous=prev, max_change_pct=60)
    mean_plan = optimize_allocation(r, z, hist, cons)
    safe_plan = optimize_allocation(r, z, hist, cons, Objective(kind="quantile", quantile=0.05))
    def low(a):  # mean of the lowest 5% of draws, what the risk-averse objective maximises
        totals = np.sort(evaluate(r, a.spend, z, hist).sum(axis=(1, 2)))
        return totals[: int(np.ceil(0.05 * len(totals)))].mean()

    mean = lambda a: evaluate(r, a.spend, z, hist).sum(axis=(1, 2)).mean()  # noqa: E731
    assert low(safe_plan) > low(mean_plan) + 1.0
    assert mean(mean_plan) > mean(safe_plan)
    base = evaluate(r, prev, z, hist).sum(axis=(1, 2)).mean()
    assert mean(mean_plan) > base

    profit = optimize_allocation(r, z, hist, Constraints(total_budget=prev.sum(), previous=prev, max_change_pct=None),
                                 Objective(margin=0.5))
    # at a 50% margin a unit of spend pays only while mROAS >= 2: the optimum spends less than the budget
    assert profit.spend.sum() < prev.sum() * 0.99
    assert np.all(profit.marginal_roas[profit.spend > 1.0] >= 2.0 - 0.05)


def test_contradictory_settings_are_refused_with_the_setting_named():
    r = _toy(draws=20)
    z, hist = np.zeros((28, 4, 1)), np.zeros((7, 3, 4))
    prev = np.full((3, 4), 1000.0)
    with pytest.raises(AllocationInfeasible, match="channel meta: needs spend in \\[9,000.00"):
        optimize_allocation(r, z, hist, Constraints(total_budget=12000, previous=prev, channel_min={"meta": 9000}))
    with pytest.raises(AllocationInfeasible, match="total budget"):
        optimize_allocation(r, z, hist, Constraints(total_budget=24000, previous=prev, max_change_pct=30))
    with pytest.raises(AllocationInfeasible, match="geo_max names \\['US-ZZ'\\]"):
        optimize_allocation(r, z, hist, Constraints(total_budget=12000, previous=prev, geo_max={"US-ZZ": 1}))


def test_adstock_of_draws_matches_the_lag_loop():
    """The allocator's batched adstock (weights per draw and channel) equals the general lag loop."""
    from weathervane.transforms import geometric_adstock

    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 1.0, (13, 4, 6))
    alpha = rng.uniform(0.05, 0.9, (50, 1, 4, 1))
    fast = geometric_adstock(x, alpha, 10)
    per_geo = geometric_adstock(x, np.broadcast_to(alpha, (50, 1, 4, 6)), 10)  # not the batched case: the loop
    assert fast.shape == per_geo.shape == (50, 13, 4, 6)
    np.testing.assert_allclose(fast, per_geo, rtol=1e-12)
    # a lag longer than the series, and a single period
    np.testing.assert_allclose(geometric_adstock(x[:3], alpha, 10),
                               geometric_adstock(x[:3], np.broadcast_to(alpha, (50, 1, 4, 6)), 10), rtol=1e-12)
    assert not np.allclose(fast[:, 1:], np.broadcast_to(x[None, 1:], fast[:, 1:].shape))  # carry-over happened
