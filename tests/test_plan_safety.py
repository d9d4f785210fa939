"""Decision safety: plans valued under the simulator's true response never lose to keeping the current split.

The models here are the simulator's truth with posterior-like draws, made right, confidently wrong about one
channel, or undecided; every plan is valued by `weathervane.simulate.oracle` under the true response and the true
horizon weather, against keep-the-split and the ±30% oracle.
"""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest

from tests.test_allocate import TENANT, _cfg, _load
from weathervane.allocate import SaturatingResponse, build_plan, propose_plan
from weathervane.allocate.safety import ModelEvidence, read_evidence
from weathervane.config import Planning
from weathervane.simulate import simulate_tenant
from weathervane.simulate.oracle import score_plans

RIGHT = ModelEvidence.assumed("simulator-truth")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("safety")
    truth = simulate_tenant(TENANT, out, days=400, n_geos=3, seed=3)
    con = duckdb.connect(str(out / "warehouse.duckdb"))
    _load(con, (out / TENANT, truth))
    yield {"truth": truth, "con": con, "landing": out}
    con.close()


def _model(truth, channel=None, factor=1.0, spread=0.1):
    """The truth as a posterior whose draws scatter each cell's return by `spread` (log sd); `channel`'s return
    scaled by `factor` in every draw (confidently wrong)."""
    r = SaturatingResponse.from_truth(truth, draws=200, seed=1, spread=spread)
    if channel is not None:
        r.beta[:, r.channels.index(channel)] *= factor
    return r


def _score(world, response, evidence, **planning):
    cfg = _cfg(max_change_pct=30, **planning)
    plan = build_plan(world["con"], TENANT, cfg, response, evidence=evidence)
    blind = build_plan(world["con"], TENANT, cfg, response, evidence=evidence, weather_blind=True)
    return plan, score_plans(world["truth"], plan, blind, 30, world["landing"])


def test_a_right_model_moves_budget_and_truly_beats_keep_the_split(world):
    plan, s = _score(world, _model(world["truth"]), RIGHT)
    assert s["decision"] == "plan" and s["prob_better"] >= Planning().min_prob_better and s["move_fraction"] > 0
    assert not np.allclose(plan.spend, plan.baseline_spend, rtol=0.02)
    assert s["value_plan"] > s["value_keep_split"]
    assert s["regret_plan_pct"] < 0.5 * s["regret_keep_split_pct"]
    # the forecast's weather is worth something here, and the weather-aware plan collects it
    assert s["weather_worth_pct"] > 0.1 and s["value_plan"] > s["value_weather_blind"]
    # which constraints stop it: lines at their ±30% limits, and the total budget
    binding = plan.line_binding()
    assert any("max_change_pct +30% (upper)" in b for b in binding.ravel())
    assert "total budget" in plan.binding_summary()


def test_a_confidently_wrong_channel_loses_unless_it_is_held_until_an_experiment(world):
    wrong = _model(world["truth"], "meta", 2.3, spread=0.05)
    unsafe_plan, unsafe = _score(world, wrong, RIGHT)
    # without the flag the posterior is sure (P(better) near 100%, the model-error allowance included) and the
    # plan loses to doing nothing
    assert unsafe["prob_better"] >= 0.95 and unsafe["value_plan"] < unsafe["value_keep_split"]

    flagged = ModelEvidence.assumed("simulator-truth", {("meta", None): True})
    plan, s = _score(world, wrong, flagged)
    ci = plan.channels.index("meta")
    np.testing.assert_allclose(plan.spend[ci], plan.baseline_spend[ci], rtol=1e-9)
    assert s["held_channels"] == ["meta"] and s["decision"] == "plan"
    assert s["value_plan"] >= s["value_keep_split"] and s["value_plan"] > unsafe["value_plan"]
    assert set(plan.line_binding()[ci]) == {"held: needs an experiment"}


def test_moves_shrink_toward_keep_the_split_as_the_evidence_weakens(world):
    # At a bar of 0.8: at the default 0.9 this world goes from the whole move (25% scatter) straight to keeping the
    # split (30%), since the model-error allowance grows with the spend a move shifts, as its lift does.
    sure, s_sure = _score(world, _model(world["truth"], spread=0.05), RIGHT, min_prob_better=0.8)
    # 40% scatter per cell (50% before the plan judged moves with the model-error allowance, which on its own
    # keeps the split at 50%)
    shaky, s_shaky = _score(world, _model(world["truth"], spread=0.4), RIGHT, min_prob_better=0.8)
    assert sure.move_fraction == 1.0 and 0 < shaky.move_fraction < 1 and shaky.decision == "plan"
    moved = lambda p: np.abs(p.spend - p.baseline_spend).sum()  # noqa: E731
    assert moved(shaky) < moved(sure)
    assert s_shaky["value_plan"] > s_shaky["value_keep_split"]
    assert all(b.startswith("evidence: ") for b in shaky.line_binding().ravel())


def test_when_the_data_cannot_decide_the_proposal_is_keep_the_split_with_the_reason_stored(world, wv_env):
    # each cell's return known only within a factor of e: the posterior cannot tell which move pays
    undecided = _model(world["truth"], spread=1.0)
    con = duckdb.connect(str(wv_env["warehouse"]))
    _load(con, (world["landing"] / TENANT, world["truth"]))
    plan = propose_plan(con, TENANT, _cfg(max_change_pct=30), undecided, evidence=RIGHT)
    bar = Planning().min_prob_better
    assert plan.decision == "keep_split" and 0.2 < plan.prob_better < bar
    assert f"below planning.min_prob_better {bar:.0%}" in plan.fallback_reason
    np.testing.assert_allclose(plan.spend, plan.baseline_spend)
    assert not np.allclose(plan.candidate_spend, plan.baseline_spend, rtol=0.02)  # the optimiser wanted to move
    row = con.execute("select decision, fallback_reason, prob_better, min_prob_better, move_fraction, "
                      "expected_lift_mean, binding_constraints, kpi_scope, media_kpi_mean, expected_kpi_mean "
                      "from decisions.plans").fetchone()
    assert row[0] == "keep_split" and row[1] == plan.fallback_reason and row[2] == pytest.approx(plan.prob_better)
    assert row[3] == bar and row[4] == 0.0 and row[5] == 0.0
    assert json.loads(row[6])[0].startswith("keep-the-split: P(plan beats keep-the-split)")
    assert row[7] == "media_contribution" and row[8] == pytest.approx(row[9])  # no baseline in this response
    lines = con.execute("select sum(abs(recommended_spend - baseline_spend)), sum(abs(candidate_spend - "
                        "baseline_spend)), min(binding_constraint), max(binding_constraint) "
                        "from decisions.plan_lines").fetchone()
    assert lines[0] == pytest.approx(0, abs=1e-6) and lines[1] > 0.02 * plan.total_budget
    assert lines[2] == lines[3] == "keep-the-split (see fallback_reason)"
    con.close()


def test_model_evidence_from_the_warehouse_holds_flagged_cells_and_gates_previews(world, wv_env):
    con = duckdb.connect(str(wv_env["warehouse"]))
    _load(con, (world["landing"] / TENANT, world["truth"]))
    con.execute("create schema mmm")
    con.execute("create table mmm.models (model_id varchar, tenant_id varchar, sampler varchar, status varchar, "
                "holdout_mape double, max_rhat double, min_ess_bulk double)")
    con.execute("create table mmm.channel_summary (model_id varchar, tenant_id varchar, channel varchar, "
                "geo_id varchar, roas_p05 double, roas_p95 double, needs_experiment boolean)")
    # as the fit records them: the NUTS implementation as the sampler, no r-hat or ESS for a MAP point
    con.executemany("insert into mmm.models values (?, ?, ?, ?, ?, ?, ?)",
                    [("m-nuts", TENANT, "nutpie", "ok", 0.12, 1.01, 400), ("m-map", TENANT, "map", "ok", 0.12, None, None),
                     ("m-noisy", TENANT, "pymc", "ok", 0.9, 1.01, 400)])
    con.executemany("insert into mmm.channel_summary values ('m-nuts', ?, ?, ?, 1, 2, ?)",
                    [(TENANT, "google_search", None, False), (TENANT, "google_search", "US-NY", True),
                     (TENANT, "meta", None, False)])
    truth = world["truth"]
    ev = read_evidence(con, TENANT, "m-nuts")
    assert ev.flag_source == "mmm.channel_summary.needs_experiment"
    held = ev.held(list(truth.channels), [g.geo_id for g in truth.geos])
    assert held.sum() == 1
    assert held[list(truth.channels).index("google_search"), [g.geo_id for g in truth.geos].index("US-NY")]

    response = _model(truth)
    cfg = _cfg(max_change_pct=30)
    response.model_id = "m-nuts"
    plan = build_plan(con, TENANT, cfg, response)
    assert plan.decision == "plan" and plan.held.sum() == 1
    si, gi = plan.channels.index("google_search"), plan.geos.index("US-NY")
    assert plan.spend[si, gi] == pytest.approx(plan.baseline_spend[si, gi])
    for model_id, reason in (("m-map", "map preview without sampler diagnostics"),
                             ("m-noisy", "holdout MAPE 90.0% above planning.max_holdout_mape 50%"),
                             ("m-gone", "has no row in mmm.models")):
        response.model_id = model_id
        plan = build_plan(con, TENANT, cfg, response)
        assert plan.decision == "keep_split" and reason in plan.fallback_reason
        np.testing.assert_allclose(plan.spend, plan.baseline_spend)
    con.close()


def _posterior(kpi_days: int = 364, n_draws: int = 50):
    """A two-channel, three-geo daily posterior with known parameters (no fit needed)."""
    import pandas as pd

    from weathervane.mmm.response import PosteriorResponse

    rng = np.random.default_rng(0)
    geos, channels = ["US-CA", "US-NY", "US-TX"], ["meta", "google_search"]
    spend = rng.lognormal(np.log(100.0), 0.2, (kpi_days, 2, 3))
    return PosteriorResponse(
        model_id="m", channels=channels, geos=geos, weather_vars=["temperature_2m_mean"], l_max=4, period="day",
        cell_geo={g: g for g in geos}, weather_stats={}, alpha=np.full((n_draws, 2), 0.3),
        lam=np.full((n_draws, 2), 1.5), beta=np.exp(rng.normal(np.log(0.05), 0.3, (n_draws, 3, 2))),
        gamma=np.zeros((n_draws, 2, 1)), channel_scale=np.full((3, 2), 150.0), target_scale=np.full(3, 2000.0),
        observed_spend=spend, observed_z=np.zeros((kpi_days, 3, 1)),
        dates=pd.date_range("2024-01-01", periods=kpi_days, freq="D"))


def test_experiment_design_matches_markets_and_sizes_the_test_by_the_model_noise():
    import pandas as pd

    from weathervane.mmm.experiments import DURATIONS_DAYS, SPEND_MULTIPLIER, design_for_channel

    resp = _posterior()
    rng = np.random.default_rng(1)
    common = np.cumsum(rng.normal(0, 30, len(resp.dates))) + 3000
    kpi = pd.DataFrame({"US-CA": common * 1.2 + rng.normal(0, 20, len(common)),
                        "US-NY": common + rng.normal(0, 20, len(common)),  # moves with CA
                        "US-TX": 3000 + rng.normal(0, 300, len(common))}, index=resp.dates)  # does not
    quiet = design_for_channel(resp, kpi, np.full(3, 1.0), "meta")
    treated, controls = json.loads(quiet["treated_geo_ids"]), json.loads(quiet["control_geo_ids"])
    # matched markets: the treated geo is read against the geo whose KPI moved with it, never the unrelated one
    assert {treated[0], *controls} == {"US-CA", "US-NY"} and controls and "US-TX" not in controls
    assert quiet["pre_period_corr"] > 0.9
    # low noise: the shortest test decides; its spend change is the +50% on the treated geo's recent spend
    assert quiet["duration_days"] == DURATIONS_DAYS[0] and quiet["powered"]
    gi, ci = resp.geos.index(treated[0]), resp.channels.index("meta")
    recent = resp.observed_spend[-quiet["duration_days"]:, ci, gi].sum()
    assert quiet["spend_change"] == pytest.approx((SPEND_MULTIPLIER - 1) * recent, abs=0.01)
    assert 0 < quiet["expected_lift_p05"] < quiet["expected_lift_mean"] < quiet["expected_lift_p95"]

    # noise so large no duration decides: the longest test, flagged as underpowered, with its interval width
    noisy = design_for_channel(resp, kpi, np.full(3, 1e5), "meta")
    assert noisy["duration_days"] == DURATIONS_DAYS[-1] and not noisy["powered"]
    assert noisy["expected_interval_width"] > noisy["expected_lift_mean"] and "treat more geos" in noisy["design_note"]
    # in between, the test runs just long enough: its width grows with sqrt(days), the lift with days, so a noise
    # level between what 21 and 28 days can resolve asks for 28
    r = kpi[treated[0]].iloc[-182:].mean() / kpi[controls[0]].iloc[-182:].mean()
    per_day = quiet["expected_lift_mean"] / quiet["duration_days"]
    sigma = per_day * np.sqrt(24.5) / (2 * 1.6449 * np.sqrt(1 + r ** 2))
    mid = design_for_channel(resp, kpi, np.full(3, sigma), "meta")
    assert mid["duration_days"] == 28 and mid["powered"]
    assert mid["expected_interval_width"] == pytest.approx(2 * 1.6449 * sigma * np.sqrt(28 * (1 + r ** 2)))


def test_the_curvature_allowance_is_mean_one_grows_with_the_move_and_leaves_kept_cells_alone():
    from weathervane.allocate.safety import shape_error, shape_factor

    baseline = np.array([[100.0, 50.0], [80.0, 0.0]])
    spend = np.array([[130.0, 50.0], [56.0, 10.0]])  # +30%, kept, -30%, a cell with no spend before
    f = shape_factor(shape_error(20000, 2, sd=0.3), spend, baseline)
    assert f.shape == (20000, 2, 2)
    assert np.allclose(f[:, 0, 1], 1.0) and np.allclose(f[:, 1, 1], 1.0)  # kept, and nothing to scale from
    assert abs(f[:, 0, 0].mean() - 1.0) < 0.01 and abs(f[:, 1, 0].mean() - 1.0) < 0.01
    # the spread follows |log r|: a 30% cut is a larger log move than a 30% rise
    assert f[:, 1, 0].std() > f[:, 0, 0].std() > 0.05
    assert np.allclose(shape_factor(shape_error(50, 2, sd=0.0), spend, baseline), 1.0)
