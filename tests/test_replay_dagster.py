"""The policy replay asset through Dagster on a tenant that delivers an aggregated MMM table (real ingest, dbt)."""
from __future__ import annotations

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from weathervane import warehouse
from weathervane.simulate.logging_policy import LoggingPolicy, simulate_logged_history

pytestmark = pytest.mark.heavy


def test_a_log_whose_spend_never_moved_is_not_evaluable(wv_env):
    from dagster_project.defs.marts import harmonize
    from dagster_project.defs.replay import policy_replay
    from dagster_project.resources import WeathervaneResource
    from weathervane.landing import ingest_tenant

    # one split kept throughout; only the weekly total moved
    history = simulate_logged_history("still", seed=5, days=364, policy=LoggingPolicy(sigma=0.0, total_sd=0.1))
    csv, truth = history.write(wv_env["landing"])
    (wv_env["landing"] / "still" / "tenant.yaml").write_text(
        "grain: {product: all, geo: region}\nplanning: {max_change_pct: 30}\nreplay: {n_origins: 1}\n")
    assert "propensity" not in csv.read_text() and "propensity" in truth.read_text()
    con = warehouse.connect(wv_env["warehouse"])
    warehouse.ensure_schemas(con)
    ingest_tenant(con, wv_env["landing"], "still")
    con.close()

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", ["still"])
    result = materialize([harmonize, policy_replay], partition_key="still", instance=instance,
                         resources={"weathervane": WeathervaneResource()})
    assert result.success
    meta = next(m.metadata for m in (e.event_specific_data.materialization
                                     for e in result.get_asset_materialization_events())
                if m.asset_key == AssetKey(["decisions", "policy_replay"]))
    assert meta["conclusion"].value.startswith("Not evaluable: the logged spend never moved enough")

    con = duckdb.connect(str(wv_env["warehouse"]), read_only=True)
    try:
        rows = con.execute("select policy, estimator, evaluable, reason, n_origins from decisions.policy_replay "
                           "where tenant_id = 'still'").fetchall()
        train_end, first_served = con.execute(
            "select train_end, first_period_start from decisions.policy_replay_models where tenant_id = 'still'"
        ).fetchone()
    finally:
        con.close()
    assert len(rows) == 15 and {r[4] for r in rows} == {1}
    for policy, _, evaluable, reason, _ in rows:
        if policy == "keep_split":
            assert evaluable
        else:
            assert not evaluable and "never moved" in reason
    assert train_end < first_served
    assert (wv_env["reports"] / "still" / "policy_replay.html").read_text().count("Not evaluable") == 1
