"""The policy replay asset through Dagster on a tenant that delivers an aggregated MMM table (real ingest, dbt): a
history too short for rolling-origin outcome models gives rows that are not evaluable, with the reason, and the
run succeeds without fitting anything."""
from __future__ import annotations

import duckdb
from dagster import AssetKey, DagsterInstance, materialize

from weathervane import warehouse
from weathervane.simulate.logging_policy import LoggingPolicy, simulate_logged_history


def test_a_history_too_short_for_rolling_origins_is_not_evaluable(wv_env):
    from dagster_project.defs import marts
    from dagster_project.defs.replay import policy_replay
    from dagster_project.resources import WeathervaneResource
    from weathervane.landing import ingest_tenant

    # 22 weeks: the first outcome model alone needs 26 weeks of training
    history = simulate_logged_history("brief", seed=5, days=154, policy=LoggingPolicy(sigma=0.2))
    csv, truth = history.write(wv_env["landing"])
    (wv_env["landing"] / "brief" / "tenant.yaml").write_text(
        "grain: {product: all, geo: region}\nplanning: {max_change_pct: 30}\n")
    assert "propensity" not in csv.read_text() and "propensity" in truth.read_text()
    con = warehouse.connect(wv_env["warehouse"])
    warehouse.ensure_schemas(con)
    ingest_tenant(con, wv_env["landing"], "brief")
    con.close()

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["brief"])
    result = materialize([*marts.assets, policy_replay], partition_key="brief", instance=instance,
                         resources={"weathervane": WeathervaneResource(), **marts.resources})
    assert result.success
    meta = next(m.metadata for m in (e.event_specific_data.materialization
                                     for e in result.get_asset_materialization_events())
                if m.asset_key == AssetKey(["decisions", "policy_replay"]))
    assert meta["conclusion"].value.startswith("Not evaluable: the history is too short: 22 weeks")
    assert meta["periods"].value == 0 and meta["origins"].value == 0

    con = duckdb.connect(str(wv_env["warehouse"]), read_only=True)
    try:
        rows = con.execute("select policy, estimator, evaluable, reason, value_mean, n_origins, outcome_fit "
                           "from decisions.policy_replay where tenant_id = 'brief'").fetchall()
        n_models = con.execute("select count(*) from decisions.policy_replay_models "
                               "where tenant_id = 'brief'").fetchone()[0]
    finally:
        con.close()
    assert len(rows) == 15 and {(r[0], r[1]) for r in rows} >= {("weather_aware", "doubly_robust")}
    for _, _, evaluable, reason, value, n_origins, fit in rows:
        assert not evaluable and value is None and n_origins == 0 and fit == "none"
        assert "too short" in reason and "26 weeks to train the first model" in reason
    assert n_models == 0
    page = (wv_env["reports"] / "brief" / "policy_replay.html").read_text()
    assert page.count("could not be replayed yet: the history is too short") == 1 and "None fitted" in page

    # the outcome models' period is the tenant's model spec's (one decision of what the data carry), not a
    # default of the replay's own: a spec stored at daily grain makes the replay read the daily model input,
    # which a weekly table does not have
    from weathervane import config
    from weathervane.spec import default_spec, write_spec

    spec = default_spec("brief", config.load_tenant_config(wv_env["landing"], "brief"))
    assert spec.period == "week"
    spec.period = "day"
    con = warehouse.connect(wv_env["warehouse"])
    write_spec(con, spec)
    con.close()
    again = materialize([policy_replay], partition_key="brief", instance=instance,
                        resources={"weathervane": WeathervaneResource()}, raise_on_error=False)
    assert not again.success
    failure = next(e for e in again.all_events if e.event_type_value == "STEP_FAILURE")
    assert "marts.fct_model_input: no rows for this tenant and grain" in failure.event_specific_data.error.to_string()
