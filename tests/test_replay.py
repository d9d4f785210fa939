"""Policy replay on simulated logs whose budget moves follow a known logging policy (truth known)."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest

from weathervane.simulate.logging_policy import LoggingPolicy, simulate_logged_history

pytestmark = pytest.mark.heavy

# A log with a clear winner: the base split pours 70% of the budget into one saturated cell, media is a third of
# revenue and little else moves the KPI, so a larger allowed change earns clearly more.
CLEAR = dict(seed=3, days=560, media_share=0.3, noise_sd=0.01, demand_shock_sd=0.005,
             policy=LoggingPolicy(sigma=0.25, base_split=[0.7, 0.1, 0.1, 0.1]))


@pytest.fixture(scope="module")
def clear_winner(tmp_path_factory):
    from weathervane.mmm.model import FitSettings
    from weathervane.replay.policies import default_policies
    from weathervane.replay.run import ReplaySettings, run_replay

    store = tmp_path_factory.mktemp("models")
    history = simulate_logged_history(**CLEAR)
    log = history.decision_log()
    policies = default_policies(30)
    result = run_replay(log, policies, FitSettings(method="map", holdout_weeks=0), ReplaySettings(n_origins=2),
                        store=store, policy_response=history.truth_response())
    window = [(s, e) for s, e in log.periods() if log.date_of(s) >= result.window_start]
    truth = history.score_candidates(policies, window)
    return history, log, result, truth, store


def test_clear_winner_is_ranked_first_and_doubly_robust_covers_the_true_lift(clear_winner):
    _, _, result, truth, _ = clear_winner
    best = max(truth, key=lambda k: truth[k]["value"])
    assert best != "keep_split"
    _, order = result.ranking()
    assert order[0] == best, (order, {k: round(v["value"]) for k, v in truth.items()})
    dr = result.rows[result.rows["estimator"] == "doubly_robust"].set_index("policy")
    true_lift = truth[best]["value"] - truth["keep_split"]["value"]
    assert dr.loc[best, "lift_p05"] <= true_lift <= dr.loc[best, "lift_p95"], (true_lift, dr.loc[best])
    # every estimator and candidate has a row with the contract's columns filled
    assert len(result.rows) == 3 * len(result.policies)
    assert result.rows["support_share"].between(0, 1).all()
    assert (result.rows["effective_sample_size"] > 0).all()
    assert "earned" in result.conclusion and str(result.n_periods) in result.conclusion


def test_each_period_is_valued_by_a_model_fitted_before_it(clear_winner, tmp_path):
    from weathervane.mmm.response import META_ATTR
    from weathervane.replay.tables import write_replay

    _, _, result, _, _ = clear_winner
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        write_replay(con, result, "map")
        write_replay(con, result, "map")  # idempotent per tenant
        served = con.execute(
            "select p.period_start, p.model_id, m.train_end, m.path from decisions.policy_replay_periods p "
            "join decisions.policy_replay_models m using (tenant_id, replay_id, model_id)").fetchall()
        n_rows = con.execute("select count(*) from decisions.policy_replay").fetchone()[0]
    finally:
        con.close()
    assert n_rows == len(result.rows)
    assert len(served) == len(result.periods)
    assert len({m for _, m, _, _ in served}) == 2  # two origins served periods
    import xarray as xr

    for path in {p for *_, p in served}:
        tree = xr.open_datatree(path)
        meta = json.loads(tree.attrs[META_ATTR])
        tree.close()
        starts = [s for s, _, _, p in served if p == path]
        # the saved model's own record of its training data ends before every period it served
        assert max(np.datetime64(meta["train_end"]), np.datetime64(meta["train_end"])) < np.datetime64(min(starts))
        assert all(np.datetime64(te) < np.datetime64(s) for s, _, te, p in served if p == path)


def test_candidates_are_not_evaluable_where_the_logged_split_never_moved(clear_winner):
    from weathervane.replay.policies import default_policies
    from weathervane.replay.run import ReplaySettings, run_replay

    history, log, result, _, _ = clear_winner
    # the same tenant had it kept one split throughout: the outcome models (fitted on the moving log) are reused,
    # since what makes the candidates unevaluable here is the logged behaviour alone
    flat = simulate_logged_history(**{**CLEAR, "policy": LoggingPolicy(sigma=0.0, total_sd=0.1,
                                                                        base_split=[0.7, 0.1, 0.1, 0.1])})
    still = flat.decision_log()
    still.model_data = log.model_data
    reuse = dict(result.origin_models)
    res = run_replay(still, default_policies(30), None, ReplaySettings(n_origins=2), reuse=reuse,
                     policy_response=history.truth_response())
    rows = res.rows.set_index(["policy", "estimator"])
    movers = [p.name for p in res.policies if p.name != "keep_split"]
    assert not rows.loc[movers, "evaluable"].any()
    assert rows.loc[movers, "reason"].str.contains("never moved").all()
    assert rows.loc["keep_split", "evaluable"].all()
    assert res.conclusion.startswith("Not evaluable: the logged spend never moved enough")
