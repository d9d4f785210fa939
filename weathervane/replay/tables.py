"""decisions.policy_replay (the warehouse contract's columns first) and its two companion tables."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from weathervane.warehouse import transaction

TABLES: dict[str, list[tuple[str, str]]] = {
    "policy_replay": [
        ("policy", "VARCHAR"), ("estimator", "VARCHAR"), ("value_mean", "DOUBLE"), ("value_p05", "DOUBLE"),
        ("value_p95", "DOUBLE"), ("effective_sample_size", "DOUBLE"), ("support_share", "DOUBLE"),
        ("evaluable", "BOOLEAN"),
        ("tenant_id", "VARCHAR"), ("replay_id", "VARCHAR"), ("window_start", "DATE"), ("window_end", "DATE"),
        ("n_periods", "INTEGER"), ("reason", "VARCHAR"), ("lift_mean", "DOUBLE"), ("lift_p05", "DOUBLE"),
        ("lift_p95", "DOUBLE"), ("prob_lift_positive", "DOUBLE"), ("description", "VARCHAR"),
        ("n_origins", "INTEGER"), ("outcome_fit", "VARCHAR"), ("computed_at", "TIMESTAMP"), ("bandwidth", "DOUBLE"),
    ],
    "policy_replay_periods": [
        ("tenant_id", "VARCHAR"), ("replay_id", "VARCHAR"), ("period_start", "DATE"), ("period_end", "DATE"),
        ("policy", "VARCHAR"), ("model_id", "VARCHAR"), ("logged_spend", "DOUBLE"), ("observed_kpi", "DOUBLE"),
        ("predicted_logged_kpi", "DOUBLE"), ("predicted_kpi", "DOUBLE"), ("weight", "DOUBLE"),
        ("in_support", "BOOLEAN"), ("action_distance", "DOUBLE"), ("moved_share", "DOUBLE"), ("note", "VARCHAR"),
        ("plan_id", "VARCHAR"), ("plan_status", "VARCHAR"), ("planned_spend", "DOUBLE"), ("executed_spend", "DOUBLE"),
    ],
    "policy_replay_models": [
        ("tenant_id", "VARCHAR"), ("replay_id", "VARCHAR"), ("model_id", "VARCHAR"), ("origin_date", "DATE"),
        ("train_start", "DATE"), ("train_end", "DATE"), ("method", "VARCHAR"), ("fit_seconds", "DOUBLE"),
        ("reused", "BOOLEAN"), ("periods_served", "INTEGER"), ("first_period_start", "DATE"), ("path", "VARCHAR"),
        ("n_draws", "INTEGER"), ("laplace_held", "INTEGER"),
    ],
}


def ensure_replay_tables(con) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS decisions")
    for table, cols in TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS decisions.{table} ({', '.join(f'{c} {t}' for c, t in cols)})")
        for c, t in cols:  # a warehouse written by an earlier version gains the columns added since
            con.execute(f"ALTER TABLE decisions.{table} ADD COLUMN IF NOT EXISTS {c} {t}")


def frames(result, outcome_fit: str) -> dict[str, pd.DataFrame]:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = result.rows.copy()
    rows["tenant_id"], rows["replay_id"] = result.tenant_id, result.replay_id
    rows["window_start"], rows["window_end"] = result.window_start, result.window_end
    rows["n_origins"], rows["outcome_fit"], rows["computed_at"] = len(result.models), outcome_fit, now
    periods = result.periods.copy()
    periods["tenant_id"], periods["replay_id"] = result.tenant_id, result.replay_id
    models = result.models.copy()
    models["tenant_id"], models["replay_id"] = result.tenant_id, result.replay_id
    return {"policy_replay": rows, "policy_replay_periods": periods, "policy_replay_models": models}


def write_replay(con, result, outcome_fit: str) -> None:
    """Delete-then-insert the tenant's replay (one replay per tenant: the latest), in one transaction."""
    ensure_replay_tables(con)
    data = frames(result, outcome_fit)
    with transaction(con):
        for table, cols in TABLES.items():
            con.execute(f"DELETE FROM decisions.{table} WHERE tenant_id = ?", [result.tenant_id])
            names = [c for c, _ in cols]
            frame = data[table].reindex(columns=names)
            if frame.empty:
                continue
            con.register("_wv_replay_rows", frame)
            try:
                con.execute(f"INSERT INTO decisions.{table} ({', '.join(names)}) "
                            f"SELECT {', '.join(names)} FROM _wv_replay_rows")
            finally:
                con.unregister("_wv_replay_rows")
