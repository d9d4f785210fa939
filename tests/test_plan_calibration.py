"""Plans whose claims hold beyond the simulator (issue 27): moves only where the data can see, a P(better) that
carries the model's own error, weather applied only where it is known, powered experiments, replay through the
production rules, and the trait worlds the calibration bench runs. Small posteriors, no fits."""
from __future__ import annotations

import json

import numpy as np
import pytest

from weathervane.allocate import SaturatingResponse
from weathervane.allocate.plan import decide
from weathervane.allocate.safety import ModelEvidence, geo_contrast, support_range
from weathervane.config import Planning

RULES = Planning(max_change_pct=30, max_holdout_mape=None)
SURE = ModelEvidence.assumed("m")


def _response(beta: np.ndarray, gamma: np.ndarray | None = None, draws_sd: float = 0.0, shared: bool = False,
              seed: int = 0) -> SaturatingResponse:
    """Two channels x two geos, weekly; beta [channel, geo] at the centre, scattered by `draws_sd` in log per
    draw, independently per cell or (`shared`) by one factor per channel that both geos share."""
    rng = np.random.default_rng(seed)
    d = 200
    noise = rng.normal(0, draws_sd, (d, 2, 1 if shared else 2))
    b = beta[None] * np.exp(noise)
    g = np.zeros((d, 2, 1)) if gamma is None else np.broadcast_to(gamma, (d, 2, 1)).copy()
    return SaturatingResponse(channels=["a", "b"], geos=["g1", "g2"], weather_vars=["temperature_2m_mean"],
                              alpha=np.array([0.3, 0.3]), lam=np.array([1.5, 1.5]), scale=np.array([100.0, 100.0]),
                              beta=b, gamma=g, l_max=2, period_days=7)


def _decide(resp, previous, z=None, **kw):
    z = np.zeros((4, 2, 1)) if z is None else z
    hist = np.tile(previous[None] / 4, (1, 1, 1))
    return decide(resp, z, hist, previous, float(previous.sum()), kw.pop("rules", RULES), kw.pop("evidence", SURE),
                  **kw)


PREVIOUS = np.array([[400.0, 400.0], [400.0, 400.0]])


def test_support_range_is_the_least_and_most_spend_of_any_horizon_long_window():
    daily = np.zeros((10, 1, 1))
    daily[:, 0, 0] = [1, 1, 1, 5, 5, 5, 1, 1, 1, 1]
    lo, hi = support_range(daily, 3)
    assert lo[0, 0] == 3 and hi[0, 0] == 15
    assert support_range(daily, 11) is None  # history shorter than one horizon: no limit
    late = np.concatenate([np.zeros((20, 1, 1)), daily])  # before the first spend: no history, not zero spend
    assert support_range(late, 3)[0][0, 0] == 3


def test_spend_stays_within_what_the_tenant_ran_unless_a_lift_test_covers_the_cell():
    # channel a returns far more than b (more still in g1): the optimiser wants a +30% in both geos
    resp = _response(np.array([[1000.0, 800.0], [100.0, 100.0]]), draws_sd=0.02, shared=True)
    free = _decide(resp, PREVIOUS)
    assert free.decision == "plan" and np.all(free.spend[0] > 1.25 * PREVIOUS[0])
    # the tenant never ran more than 440 on a in a horizon-long window
    support = (np.full((2, 2), 300.0), np.full((2, 2), 440.0))
    bounded = _decide(resp, PREVIOUS, support=support)
    assert bounded.decision == "plan" and np.all(bounded.spend[0] <= 440.0 + 1e-6)
    assert np.all(bounded.spend[1] >= 300.0 - 1e-6)
    assert "support: most spend run in a comparable period (upper)" in set(bounded.allocation.binding.ravel())
    tested = np.array([[True, False], [False, False]])  # a lift test measured a in g1: its return is known there
    covered = _decide(resp, PREVIOUS, support=support, tested=tested)
    assert covered.spend[0, 0] > 500 and covered.spend[0, 1] <= 440.0 + 1e-6


def test_geo_moves_need_the_posterior_of_the_geo_difference_not_each_geos_level():
    # a's geo g1 looks 40% better than g2 (a's average no better than b's); both geos' levels uncertain by 30%
    beta = np.array([[700.0, 500.0], [600.0, 600.0]])
    # the draws know the gap (one factor shared by the geos): the move between geos is allowed
    known_gap = _decide(_response(beta, draws_sd=0.3, shared=True), PREVIOUS)
    assert "a" not in known_gap.geo_split_kept
    assert known_gap.candidate[0, 0] > known_gap.candidate[0, 1] + 10
    # the same levels, each geo uncertain on its own: the gap itself is not known, a's geo split is kept and
    # only its total may move
    unknown_gap = _decide(_response(beta, draws_sd=0.3, shared=False), PREVIOUS)
    assert "a" in unknown_gap.geo_split_kept
    np.testing.assert_allclose(unknown_gap.candidate[0] / unknown_gap.candidate[0].sum(), [0.5, 0.5], atol=1e-6)
    assert any("geo split kept" in n for n in unknown_gap.notes)


def test_geo_contrast_reads_the_move_not_the_levels():
    rng = np.random.default_rng(0)
    level = np.exp(rng.normal(0, 0.5, 400))  # the channel's return known only to +-50%, shared by both geos
    slopes = np.stack([np.stack([1.3 * level, level], axis=1)], axis=1)  # [draw, channel, geo]: g1 30% better
    keep = np.array([[100.0, 100.0]])
    lock, probs = geo_contrast(slopes, keep, np.array([[120.0, 80.0]]))
    assert not lock[0] and probs[0] == 1.0
    lock, probs = geo_contrast(slopes, keep, np.array([[80.0, 120.0]]))  # moving the wrong way
    assert lock[0] and probs[0] == 0.0
    lock, probs = geo_contrast(slopes, keep, np.array([[110.0, 110.0]]))  # scaling the channel: no geo move
    assert not lock[0] and probs == {}


def test_the_model_error_allowance_lowers_p_better_of_a_thin_move():
    import weathervane.allocate.safety as safety

    # b's return 8% above a's, the posterior sure of it: a small edge that a model's unseen error can undo
    resp = _response(np.array([[500.0, 500.0], [540.0, 540.0]]), draws_sd=0.01, shared=True)
    old = safety.MISSPEC_CHANNEL_LOG_SD, safety.MISSPEC_GEO_LOG_SD
    try:
        safety.MISSPEC_CHANNEL_LOG_SD = safety.MISSPEC_GEO_LOG_SD = 0.0
        blind_to_error = _decide(resp, PREVIOUS)
    finally:
        safety.MISSPEC_CHANNEL_LOG_SD, safety.MISSPEC_GEO_LOG_SD = old
    honest = _decide(resp, PREVIOUS)
    assert blind_to_error.decision == "plan" and blind_to_error.prob >= 0.95
    assert honest.prob < blind_to_error.prob - 0.05 and honest.decision == "keep_split"


def test_weather_with_an_interval_including_one_is_not_applied():
    z = np.zeros((4, 2, 1))
    z[:, 0, 0] = 2.5  # a heat wave in g1
    base = np.array([[500.0, 500.0], [500.0, 500.0]])
    known = _response(base, gamma=np.array([[[0.3]], [[0.0]]]).reshape(1, 2, 1), draws_sd=0.02, shared=True)
    d = _decide(known, PREVIOUS, z=z)
    assert d.weather_not_applied == []
    assert d.candidate[0, 0] > d.candidate[0, 1]  # a follows the heat into g1
    unknown = _response(base, draws_sd=0.02, shared=True)
    unknown.gamma = np.random.default_rng(3).normal(0.1, 0.3, (200, 2, 1)) * np.array([1.0, 0.0])[None, :, None]
    d = _decide(unknown, PREVIOUS, z=z)
    assert d.weather_not_applied and d.weather_not_applied[0].startswith("a × temperature_2m_mean")
    neutral = d.run(d.spend, np.zeros_like(z)).mean(axis=0)
    np.testing.assert_allclose(d.contribution.mean(axis=0), neutral, rtol=1e-9)  # no multiplier applied


def test_replay_acts_through_the_production_rules():
    from weathervane.replay.policies import PolicySpec, act

    class Log:
        channels, geos, period_days = ["a", "b"], ["g1", "g2"], 28
        weather_vars = ["temperature_2m_mean"]
        # 40% above the last month's level, then 40% below it, then the last month (the support: 0.6x-1.4x)
        level = np.r_[np.full(28, 1.4), np.full(28, 0.6), np.full(64, 1.0)]
        spend = PREVIOUS[None] / 28 * level[:, None, None]
        z = np.zeros((150, 2, 1))

        def action(self, s, e):
            return self.spend[s - 28:s].sum(axis=0)

        def response_inputs(self, response, s, e, action, weather=True):
            return np.broadcast_to(action[None] / 4, (4, 2, 2)).copy(), np.zeros((4, 2, 1)), \
                np.tile(PREVIOUS[None] / 4, (1, 1, 1))

    spec = PolicySpec("weather_aware", max_change_pct=30)
    sure = _response(np.array([[800.0, 800.0], [100.0, 100.0]]), draws_sd=0.02)
    moved, note = act(spec, Log(), 84, 112, sure)
    keep = PREVIOUS
    assert note == "" and moved[0].sum() > 1.1 * keep[0].sum() and moved.sum() == pytest.approx(keep.sum())
    # a point estimate: production proposes nothing it cannot judge, and neither does the replayed policy
    point = _response(np.array([[800.0, 800.0], [100.0, 100.0]]))
    point.beta, point.gamma = point.beta[:1], point.gamma[:1]
    kept, note = act(spec, Log(), 84, 112, point)
    np.testing.assert_allclose(kept, keep)
    assert note.startswith("kept the split: ") and "posterior draw(s): too few to judge" in note


def test_experiment_designs_grow_until_powered_or_say_no_feasible_test_is():
    import pandas as pd

    from tests.test_plan_safety import _posterior
    from weathervane.mmm.experiments import SPEND_MULTIPLIER, design_for_channel

    resp = _posterior()
    rng = np.random.default_rng(1)
    common = np.cumsum(rng.normal(0, 30, len(resp.dates))) + 3000
    kpi = pd.DataFrame({"US-CA": common * 1.2 + rng.normal(0, 20, len(common)),
                        "US-NY": common + rng.normal(0, 20, len(common)),
                        "US-TX": common * 0.9 + rng.normal(0, 20, len(common))}, index=resp.dates)
    quiet = design_for_channel(resp, kpi, np.full(3, 1.0), "meta")
    small_lift = quiet["expected_lift_mean"] / quiet["duration_days"]
    # noise that +50% in one geo cannot beat in 56 days: a larger change or more geos, and then powered
    sigma = small_lift * 56 / (2 * 1.6449 * np.sqrt(56 * 2.2)) * 1.3
    d = design_for_channel(resp, kpi, np.full(3, sigma), "meta")
    assert d["powered"] and d["expected_interval_width"] <= d["expected_lift_mean"]
    assert d["spend_multiplier"] > SPEND_MULTIPLIER or len(json.loads(d["treated_geo_ids"])) > 1
    noisy = design_for_channel(resp, kpi, np.full(3, 1e6), "meta")
    assert not noisy["powered"] and noisy["design_note"].startswith("no feasible test is powered")


@pytest.mark.parametrize("name", ["geo_parity_paced", "promo_flights", "small_bad_files", "revenue_budgets"])
def test_trait_worlds_generate_what_they_say(tmp_path, name):
    from weathervane.simulate import simulate_tenant
    from weathervane.simulate.oracle import WorldValuer
    from weathervane.simulate.worlds import ALL_WORLDS

    world = ALL_WORLDS[name]
    truth = simulate_tenant(f"t-{name.replace('_', '-')}", tmp_path, seed=0, days=420, n_geos=3, world=world,
                            grain=("all", "region"), **world.simulate_kwargs())
    spend = {c: np.array([truth.daily.spend[c][g.geo_id] for g in truth.geos]) for c in truth.daily.spend}
    if world.geo_parity:
        for ch in truth.channels.values():
            r = np.array(list(ch.roas_by_geo.values()))
            assert r.max() / r.min() < 1.2, (ch.name, r)  # equal curves by geo; flights differ by geo
            assert ch.scale_by_geo is not None
        # the oracle values the per-geo curves: equal spend shares by size give equal marginal returns
        valuer = WorldValuer(truth, __import__("datetime").date.fromisoformat(truth.forecast_start), 28)
        cells = np.array([[g.size for g in truth.geos]] * len(truth.channels)) * 1000
        assert valuer.value(cells) > 0
    if world.geo_paced:
        # geo spend follows the geo's own demand: against the same seed's standard world (same flights and
        # noise), each geo's weekly spend ratio moves with its weekly baseline
        from weathervane.simulate.worlds import World

        plain = simulate_tenant("t-plain", tmp_path, seed=0, days=420, n_geos=3, world=World(),
                                grain=("all", "region"), **world.simulate_kwargs())
        base = np.array([truth.daily.baseline[g.geo_id] for g in truth.geos])
        ratio = sum(spend.values()) / np.maximum(
            sum(np.array([plain.daily.spend[c][g.geo_id] for g in plain.geos]) for c in plain.daily.spend), 1e-9)
        n = base.shape[1] // 7 * 7
        wk = lambda a: a[:, :n].reshape(a.shape[0], -1, 7).mean(axis=2)  # noqa: E731
        corr = [np.corrcoef(np.log(wk(ratio)[g]), np.log(wk(base)[g]))[0, 1] for g in range(len(truth.geos))]
        assert min(corr) > 0.5, corr
    if world.promo_flight_channels:
        on = np.zeros(truth.days, dtype=bool)
        dates = list(truth.daily.dates)
        for p in truth.promotions:
            if p.source != "klaviyo_campaign":
                on[dates.index(p.start_date):dates.index(p.end_date) + 1] = True
        meta = spend["meta"].sum(axis=0)
        assert meta[~on].sum() < 0.05 * meta.sum() and on.any()
    if world.scenario == "bad_files":
        assert len(truth.bad_files) > 0
    if world.budget_from_revenue:
        total = sum(spend.values()).sum(axis=0)
        assert total.std() > 0  # budgets move month to month with last month's revenue
