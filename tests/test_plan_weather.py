"""Where weather matters, the weather-aware plan beats the weather-blind one and never loses to keep-the-split.

The simulator's horizon gets a heat wave or a wet stretch (`weathervane.simulate.oracle.impose_weather_events`:
the forecast files the planner reads and the weather the oracle values plans under); the models are the world's
truth seen through posteriors of known quality, as in bench/bench_plans.py. The same worlds then go through the
demo's plan path: the proposal, its lines in the warehouse, `describe_decision` and the HTML report.
"""
from __future__ import annotations

import json
import re
import shutil

import duckdb
import numpy as np
import pytest

from tests.test_allocate import TENANT, _cfg, _load
from weathervane.allocate import SaturatingResponse, build_plan, propose_plan
from weathervane.allocate.plan import describe_decision
from weathervane.allocate.safety import ModelEvidence
from weathervane.config import Planning
from weathervane.reports import audience
from weathervane.simulate import simulate_tenant
from weathervane.simulate.oracle import WeatherEvent, impose_weather_events, score_plans

HORIZONS = {"heat_wave": ("heat_wave", 0), "wet_stretch": ("wet_stretch", 1)}  # event, index of the geo it hits
# posterior log-sd scatter of each cell's return (bench_plans' models); the plan is claimed to beat weather-blind
# where the model knows the weather effects (right, shaky), and never to lose to keep-the-split
# shaky: 40% per cell (50% until the bar rose to 0.9: at 50% the plan is 91% sure less its Monte Carlo error)
QUALITY = {"right": 0.1, "shaky": 0.4, "undecided": 1.0}
KNOWS_WEATHER = ("right", "shaky")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """One simulated brand, its horizon given a heat wave in one copy and a wet stretch in another."""
    base = tmp_path_factory.mktemp("weather-base")
    truth = simulate_tenant(TENANT, base, days=400, n_geos=3, seed=0)
    out = {}
    for name, (kind, gi) in HORIZONS.items():
        root = tmp_path_factory.mktemp(name)
        shutil.copytree(base / TENANT, root / TENANT)
        event = WeatherEvent(kind, (truth.geos[gi].geo_id,))
        t = impose_weather_events(truth, root, [event])
        con = duckdb.connect(str(root / "warehouse.duckdb"))
        _load(con, (root / TENANT, t))
        out[name] = {"truth": t, "con": con, "landing": root, "event": event}
    yield out
    for w in out.values():
        w["con"].close()


def _model(truth, spread):
    return SaturatingResponse.from_truth(truth, draws=200, seed=1, spread=spread)


def test_the_event_is_in_the_forecast_the_planner_reads_and_in_the_weather_the_oracle_values(worlds):
    w = worlds["heat_wave"]
    truth, event = w["truth"], w["event"]
    plan = build_plan(w["con"], TENANT, _cfg(max_change_pct=30), _model(truth, 0.1),
                      evidence=ModelEvidence.assumed("simulator-truth"))
    gi = plan.geos.index(event.geo_ids[0])
    k = [c for c in plan.weather.values.columns if c not in ("date", "geo_id", "source")].index("temperature_2m_mean")
    days = slice(event.first_day, event.first_day + event.days)
    planner = plan.weather.z[days, gi, k]
    oracle = np.array(truth.horizon.z["temperature_2m_mean"][event.geo_ids[0]][days])
    assert plan.weather.source == "forecast"
    np.testing.assert_allclose(planner, oracle, atol=0.02)  # files and truth agree (0.1 °C rounding)
    assert planner.mean() > 2.0  # a heat wave: the days are at least 2 sd warmer than the geo's average
    others = [g for g in range(len(plan.geos)) if g != gi]
    assert np.abs(plan.weather.z[days][:, others, k]).mean() < 1.5  # only the one geo


@pytest.mark.parametrize("horizon", list(HORIZONS))
def test_where_weather_matters_the_plan_beats_the_weather_blind_plan_and_never_loses_to_keep_the_split(
        worlds, horizon):
    w = worlds[horizon]
    evidence = ModelEvidence.assumed("simulator-truth")
    cfg = _cfg(max_change_pct=30)
    flagged = ModelEvidence.assumed("simulator-truth", {("meta", None): True})
    models = [(q, _model(w["truth"], spread), evidence) for q, spread in QUALITY.items()]
    wrong = _model(w["truth"], 0.05)
    wrong.beta[:, wrong.channels.index("meta")] *= 2.3  # confidently wrong about meta, which the flag holds
    models.append(("wrong_flagged", wrong, flagged))
    for quality, response, ev in models:
        plan = build_plan(w["con"], TENANT, cfg, response, evidence=ev)
        blind = build_plan(w["con"], TENANT, cfg, response, evidence=ev, weather_blind=True)
        s = score_plans(w["truth"], plan, blind, 30, w["landing"])
        # the forecast is worth something here: the oracle planning for average weather would lose
        assert s["weather_worth_pct"] > 0.25, (quality, s["weather_worth_pct"])
        assert s["regret_plan_pct"] <= s["regret_keep_split_pct"], (quality, s)
        if quality in KNOWS_WEATHER:
            assert s["decision"] == "plan", (quality, s["fallback_reason"])
            # a weather-driven move between geos needs the geos' contrast: the shaky model (40% per cell) does
            # not know one geo's return against another's, keeps those splits and so ties the weather-blind plan
            if quality == "right":
                assert s["regret_plan_pct"] < s["regret_weather_blind_pct"], (quality, s)
            else:
                assert s["regret_plan_pct"] <= s["regret_weather_blind_pct"] + 1e-6, (quality, s)


def test_unsure_weather_effects_are_not_applied_and_the_plan_says_so(worlds):
    """Returns known to 10%, the heat effect only to +-0.5 per sd (twice its size, its 90% interval includes 1):
    the plan takes the whole budget move, applies no weather multiplier for the heat and says why; it is then
    the weather-blind plan (the forecast's heat is worth nothing to a model that cannot size it)."""
    w = worlds["heat_wave"]
    response = _model(w["truth"], 0.1)
    rng = np.random.default_rng(2)
    response.gamma = response.gamma + rng.normal(0, 0.5, response.gamma.shape) * (response.gamma != 0)
    cfg, evidence = _cfg(max_change_pct=30), ModelEvidence.assumed("simulator-truth")
    plan = build_plan(w["con"], TENANT, cfg, response, evidence=evidence)
    blind = build_plan(w["con"], TENANT, cfg, response, evidence=evidence, weather_blind=True)
    s = score_plans(w["truth"], plan, blind, 30, w["landing"])
    assert plan.decision == "plan" and plan.move_fraction == 1.0
    assert any(x.startswith("meta × temperature_2m_mean") for x in plan.weather_not_applied)
    assert any("weather not applied where its 90% interval includes 1" in n for n in plan.notes)
    meta = plan.channels.index("meta")
    np.testing.assert_allclose(plan.weather_multiplier[meta], 1.0, atol=1e-9)
    np.testing.assert_allclose(plan.spend, blind.spend, rtol=1e-6)
    assert s["regret_plan_pct"] <= s["regret_keep_split_pct"]


def test_quantile_ties_within_monte_carlo_error_go_to_the_larger_expected_lift():
    from weathervane.allocate.safety import choose_step, quantile_error

    noise = np.random.default_rng(0).normal(0, 1, 200)
    qn = float(np.quantile(noise, 0.2))

    def draws(low, sd):  # lift draws with this 20% quantile and spread
        return low - sd * qn + sd * noise

    small = draws(8.0, 2.0)  # a sure, small gain
    se = quantile_error(small, 0.2)
    assert se > 0.1
    large = draws(8.0 - se / 2, 12.0)  # a larger gain whose downside the draws cannot tell from small's
    assert large.mean() > small.mean() and choose_step({0.5: small, 1.0: large}, 0.8)[0] == 1.0
    assert choose_step({0.5: small, 1.0: draws(8.0 - 3 * se, 12.0)}, 0.8)[0] == 0.5  # clearly worse downside
    # a tie on the downside that misses the bar (P(better) < 80%) does not win on its mean
    edge, risky = draws(se / 4, 2.0), draws(-se / 4, 12.0)
    assert (edge > 0).mean() >= 0.8 > (risky > 0).mean() and risky.mean() > edge.mean()
    assert choose_step({0.5: edge, 1.0: risky}, 0.8)[0] == 0.5


def _write_experiment_for(con, model_id, channel):
    """A lift-test design from the experiment recommender for `channel`, stored under the plan's model."""
    import pandas as pd

    from tests.test_plan_safety import _posterior
    from weathervane.mmm.experiments import COLUMNS, design_for_channel, write_experiment_recommendations

    resp = _posterior()
    rng = np.random.default_rng(1)
    common = np.cumsum(rng.normal(0, 30, len(resp.dates))) + 3000
    kpi = pd.DataFrame({g: common * (1 + 0.1 * i) + rng.normal(0, 20, len(common))
                        for i, g in enumerate(resp.geos)}, index=resp.dates)
    design = design_for_channel(resp, kpi, np.full(3, 50.0), channel)
    row = dict(model_id=model_id, tenant_id=TENANT, created_at=pd.Timestamp("2025-01-01"),
               why_flagged="roas_contraction 0.10", **design)
    write_experiment_recommendations(con, TENANT, model_id, pd.DataFrame([row], columns=[c for c, _ in COLUMNS]))
    return design


def test_demo_plan_path_states_p_better_binding_constraints_weather_and_experiments(worlds, wv_env):
    """What `make demo` shows for a plan: P(better), what binds, the weather assumed, the flagged channel's test;
    and for a model that may not plan (a MAP preview), keep-the-split with the reason."""
    w = worlds["heat_wave"]
    con = duckdb.connect(str(wv_env["warehouse"]))
    _load(con, (w["landing"] / TENANT, w["truth"]))
    design = _write_experiment_for(con, "simulator-truth", "google_search")
    flagged = ModelEvidence.assumed("simulator-truth", {("google_search", None): True})
    plan = propose_plan(con, TENANT, _cfg(max_change_pct=30), _model(w["truth"], 0.1), evidence=flagged,
                        reports_dir=wv_env["reports"], audience=audience(TENANT, wv_env["landing"]))
    assert plan.decision == "plan" and plan.prob_better >= Planning().min_prob_better
    lines = describe_decision(con, plan.plan_id)
    text = "\n".join(lines)
    from weathervane.reports import probability

    assert lines[0].startswith(f"Plan {plan.plan_id}: P(beats keep-the-split) {probability(plan.prob_better)} "
                               f"(bar {Planning().min_prob_better:.0%})")
    binding = json.loads(con.execute("select binding_constraints from decisions.plans where plan_id = ?",
                                     [plan.plan_id]).fetchone()[0])
    assert binding == plan.binding_summary() and any("max_change_pct +30% (upper)" in b for b in binding)
    assert "Binding: " + "; ".join(binding) in text
    assert "Held until an experiment measures them: google_search" in text
    heat_geo = w["event"].geo_ids[0]
    weather_line = next(x for x in lines if x.startswith("Weather assumed (forecast): "))
    said = {g: float(z) for g, z in re.findall(r"(US-\w\w) [^;]*temperature ([+-][0-9.]+) sd", weather_line)}
    assumed = plan.weather_assumed()
    assert said == {g: round(assumed[g]["temperature_2m_mean"], 1) for g in plan.geos}
    # 14 of the 28 days 2.5 sd warmer than they would have been: the heat geo's horizon is the warmest
    assert all(said[heat_geo] > said[g] + 1 for g in plan.geos if g != heat_geo)
    assert (f"Experiment for google_search: +{design['spend_change']:,.0f} spend in "
            f"{', '.join(json.loads(design['treated_geo_ids']))} for {design['duration_days']} days") in text

    html = open(plan.report_path, encoding="utf-8").read()
    assert f"Probability the plan beats keeping the split: {probability(plan.prob_better)}" in html
    assert "What holds the plan back" in html and "held: needs an experiment" in html
    assert "Weather assumed (forecast)" in html
    first = plan.weather.dates[w["event"].first_day]
    assert f"{heat_geo}: 14 days warmer than usual from {first}" in html
    meta = plan.channels.index("meta")
    strongest = max(range(len(plan.geos)), key=lambda g: plan.weather_multiplier[meta, g])
    assert plan.geos[strongest] == heat_geo  # meta works best where the heat is (its true log-multiplier 0.25/sd)
    assert f"Meta in {heat_geo} is expected to work" in html and "better than under average weather" in html
    assert "Experiments that would let the plan move held channels" in html and "Google Search: raise spend" in html

    preview = ModelEvidence.assumed("simulator-truth", sampler="map")
    kept = propose_plan(con, TENANT, _cfg(max_change_pct=30), _model(w["truth"], 0.1), evidence=preview,
                        reports_dir=wv_env["reports"], audience=audience(TENANT, wv_env["landing"]))
    lines = describe_decision(con, kept.plan_id)
    assert lines[0].startswith(f"Plan {kept.plan_id} keeps the current split: model simulator-truth is a map "
                               "preview without sampler diagnostics")
    html = open(kept.report_path, encoding="utf-8").read()
    assert "Recommendation: keep the current split. model simulator-truth is a map preview" in html
    assert "keep-the-split: model simulator-truth is a map preview" in html  # what holds it back
    con.close()
