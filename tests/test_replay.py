"""Policy replay on a simulated log whose budget moves follow a known logging policy (truth known).

One small log and one replay (two MAP + Laplace origin fits) serve every check, in one test function: the
module's fixture is built once even when xdist spreads tests over workers."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest

from weathervane.simulate.logging_policy import LoggingPolicy, simulate_logged_history

pytestmark = pytest.mark.heavy

# A log with a clear winner: the base split pours 70% of the budget into one saturated cell, media is a third of
# revenue and little else moves the KPI, so a larger allowed change earns clearly more. A year: 26 weeks train
# the first outcome model, the last 26 are replayed.
CLEAR = dict(seed=3, days=364, media_share=0.3, noise_sd=0.01, demand_shock_sd=0.005,
             policy=LoggingPolicy(sigma=0.25, base_split=[0.7, 0.1, 0.1, 0.1]))


@pytest.fixture(scope="module")
def clear_winner(tmp_path_factory):
    from weathervane.replay.policies import default_policies
    from weathervane.replay.run import ReplaySettings, run_replay

    store = tmp_path_factory.mktemp("models")
    history = simulate_logged_history(**CLEAR)
    log = history.decision_log()
    policies = default_policies(30)
    result = run_replay(log, policies, {"method": "map", "holdout_weeks": 0},
                        ReplaySettings(n_origins=2, laplace_draws=100, n_boot=1000),
                        store=store, policy_response=history.truth_response())
    window = [(s, e) for s, e in log.periods() if log.date_of(s) >= result.window_start]
    truth = history.score_candidates(policies, window)
    return history, log, result, truth


def _clear_winner_ranked_first(result, truth) -> None:
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
    assert (result.rows["bandwidth"] >= result.behaviour.bandwidth).all()
    assert "earned" in result.conclusion and str(result.n_periods) in result.conclusion
    # the direct method's interval carries the outcome model's parameter uncertainty (Laplace draws), not only
    # the periods': its lift interval is wider than the periods' bootstrap with the MAP point alone
    direct = result.rows[result.rows["estimator"] == "direct"].set_index("policy")
    assert (result.models["n_draws"] == 100).all() and (result.models["method"] == "map+laplace").all()
    assert direct.loc[best, "lift_p95"] - direct.loc[best, "lift_p05"] > 0


def _each_period_valued_by_a_model_fitted_before_it(result, tmp_path) -> None:
    import xarray as xr

    from weathervane.mmm.response import META_ATTR
    from weathervane.replay.tables import write_replay

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        write_replay(con, result, "map+laplace")
        write_replay(con, result, "map+laplace")  # idempotent per tenant
        served = con.execute(
            "select p.period_start, p.model_id, m.train_end, m.path from decisions.policy_replay_periods p "
            "join decisions.policy_replay_models m using (tenant_id, replay_id, model_id)").fetchall()
        n_rows = con.execute("select count(*) from decisions.policy_replay").fetchone()[0]
    finally:
        con.close()
    assert n_rows == len(result.rows)
    assert len(served) == len(result.periods)
    # one origin: each outcome model serves at least 26 decision periods (a 52-week history has room for one)
    assert len({m for _, m, _, _ in served}) == 1
    for path in {p for *_, p in served}:
        tree = xr.open_datatree(path)
        meta = json.loads(tree.attrs[META_ATTR])
        n_draws = tree["posterior"].sizes["draw"]
        tree.close()
        assert meta["method"] == "map+laplace" and n_draws == 100
        starts = [s for s, _, _, p in served if p == path]
        # the saved model's own record of its training data ends before every period it served
        assert np.datetime64(meta["train_end"]) < np.datetime64(min(starts))
        assert all(np.datetime64(te) < np.datetime64(s) for s, _, te, p in served if p == path)


def _not_evaluable_where_the_logged_split_never_moved(history, log, result) -> None:
    from weathervane.replay.policies import default_policies
    from weathervane.replay.run import ReplaySettings, run_replay

    # the same tenant had it kept one split throughout: the outcome models (fitted on the moving log) are reused,
    # since what makes the candidates unevaluable here is the logged behaviour alone
    flat = simulate_logged_history(**{**CLEAR, "policy": LoggingPolicy(sigma=0.0, total_sd=0.1,
                                                                        base_split=[0.7, 0.1, 0.1, 0.1])})
    still = flat.decision_log()
    still.model_data = log.model_data
    res = run_replay(still, default_policies(30), None, ReplaySettings(n_origins=2, n_boot=200),
                     reuse=dict(result.origin_models), policy_response=history.truth_response())
    rows = res.rows.set_index(["policy", "estimator"])
    movers = [p.name for p in res.policies if p.name != "keep_split"]
    assert not rows.loc[movers, "evaluable"].any()
    assert rows.loc[movers, "reason"].str.contains("never moved").all()
    assert rows.loc["keep_split", "evaluable"].all()
    assert res.conclusion.startswith("Not evaluable: the logged spend never moved enough")


def test_replay_ranks_the_clear_winner_first_from_models_that_never_saw_the_period(clear_winner, tmp_path):
    history, log, result, truth = clear_winner
    _clear_winner_ranked_first(result, truth)
    _each_period_valued_by_a_model_fitted_before_it(result, tmp_path)
    _not_evaluable_where_the_logged_split_never_moved(history, log, result)
