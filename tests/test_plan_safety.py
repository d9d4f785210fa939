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
    assert s["decision"] == "plan" and s["prob_better"] >= 0.8 and s["move_fraction"] > 0
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
    # without the flag the posterior is sure (P(better) 100%) and the plan loses to doing nothing
    assert unsafe["prob_better"] > 0.99 and unsafe["value_plan"] < unsafe["value_keep_split"]

    flagged = ModelEvidence.assumed("simulator-truth", {("meta", None): True})
    plan, s = _score(world, wrong, flagged)
    ci = plan.channels.index("meta")
    np.testing.assert_allclose(plan.spend[ci], plan.baseline_spend[ci], rtol=1e-9)
    assert s["held_channels"] == ["meta"] and s["decision"] == "plan"
    assert s["value_plan"] >= s["value_keep_split"] and s["value_plan"] > unsafe["value_plan"]
    assert set(plan.line_binding()[ci]) == {"held: needs an experiment"}


def test_moves_shrink_toward_keep_the_split_as_the_evidence_weakens(world):
    sure, s_sure = _score(world, _model(world["truth"], spread=0.05), RIGHT)
    shaky, s_shaky = _score(world, _model(world["truth"], spread=0.5), RIGHT)
    assert sure.move_fraction == 1.0 and 0 < shaky.move_fraction < 1 and shaky.decision == "plan"
    moved = lambda p: np.abs(p.spend - p.baseline_spend).sum()  # noqa: E731
    assert moved(shaky) < 0.8 * moved(sure)
    assert s_shaky["value_plan"] > s_shaky["value_keep_split"]
    assert all(b.startswith("evidence: ") for b in shaky.line_binding().ravel())


def test_when_the_data_cannot_decide_the_proposal_is_keep_the_split_with_the_reason_stored(world, wv_env):
    # each cell's return known only within a factor of e: the posterior cannot tell which move pays
    undecided = _model(world["truth"], spread=1.0)
    con = duckdb.connect(str(wv_env["warehouse"]))
    _load(con, (world["landing"] / TENANT, world["truth"]))
    plan = propose_plan(con, TENANT, _cfg(max_change_pct=30), undecided, evidence=RIGHT)
    assert plan.decision == "keep_split" and 0.2 < plan.prob_better < 0.8
    assert "below planning.min_prob_better 80%" in plan.fallback_reason
    np.testing.assert_allclose(plan.spend, plan.baseline_spend)
    assert not np.allclose(plan.candidate_spend, plan.baseline_spend, rtol=0.02)  # the optimiser wanted to move
    row = con.execute("select decision, fallback_reason, prob_better, min_prob_better, move_fraction, "
                      "expected_lift_mean, binding_constraints, kpi_scope, media_kpi_mean, expected_kpi_mean "
                      "from decisions.plans").fetchone()
    assert row[0] == "keep_split" and row[1] == plan.fallback_reason and row[2] == pytest.approx(plan.prob_better)
    assert row[3] == 0.8 and row[4] == 0.0 and row[5] == 0.0
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
    con.executemany("insert into mmm.models values (?, ?, ?, ?, ?, 1.01, 400)",
                    [("m-nuts", TENANT, "nuts", "ok", 0.12), ("m-map", TENANT, "map", "ok", 0.12),
                     ("m-noisy", TENANT, "nuts", "ok", 0.9)])
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
