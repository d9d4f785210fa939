"""Tables of the `decisions` schema (warehouse contract), created on first use.

No primary keys: DuckDB checks unique indexes eagerly on UPDATE, and plans change status in place.
Uniqueness is kept by the writers (delete-then-insert by tenant and plan_id).
"""
from __future__ import annotations

from weathervane.warehouse import table_exists  # noqa: F401  (one home; the decisions layer imports it from here)

DDL = [
    "create schema if not exists decisions",
    """create table if not exists decisions.plans (
        plan_id varchar, tenant_id varchar, model_id varchar, created_at timestamp,
        horizon_start date, horizon_end date, total_budget double,
        expected_kpi_mean double, expected_kpi_p05 double, expected_kpi_p95 double,
        baseline_kpi_mean double, status varchar,
        baseline_kpi_p05 double, baseline_kpi_p95 double,
        expected_lift_mean double, expected_lift_p05 double, expected_lift_p95 double, prob_lift_positive double,
        objective varchar, kpi_scope varchar, weather_source varchar, notes varchar, report_path varchar
    )""",
    """create table if not exists decisions.plan_lines (
        plan_id varchar, tenant_id varchar, channel varchar, geo_id varchar,
        recommended_spend double, previous_spend double, weather_multiplier double,
        expected_contribution_mean double, expected_contribution_p05 double, expected_contribution_p95 double,
        baseline_spend double, baseline_contribution_mean double, marginal_roas double,
        min_spend double, max_spend double
    )""",
    """create table if not exists decisions.plan_events (
        event_id varchar, plan_id varchar, "at" timestamp, actor varchar,
        from_status varchar, to_status varchar, reason varchar, prev_hash varchar, hash varchar,
        tenant_id varchar, seq bigint
    )""",
    """create table if not exists decisions.outbox (
        notification_id varchar, tenant_id varchar, plan_id varchar, event_id varchar, created_at timestamp,
        kind varchar, recipients varchar, payload varchar, webhook_url varchar,
        delivery_status varchar, delivery_error varchar, delivered_at timestamp
    )""",
    # added columns: who ran the command, what the plan held, the event's signature; delivery attempts
    "alter table decisions.plan_events add column if not exists os_user varchar",
    "alter table decisions.plan_events add column if not exists content_hash varchar",
    "alter table decisions.plan_events add column if not exists mac varchar",
    "alter table decisions.outbox add column if not exists attempts integer",
    "alter table decisions.outbox add column if not exists last_attempt_at timestamp",
    # the ledger's identity: one random id per warehouse, bound into every event's signature
    "create table if not exists decisions.ledger_instance (ledger_id varchar, created_at timestamp)",
    """create table if not exists decisions.plan_adoption (
        plan_id varchar, tenant_id varchar, channel varchar, geo_id varchar,
        period date, period_end date, days_observed integer,
        planned_spend double, executed_spend double, adoption_ratio double, computed_at timestamp
    )""",
]


def ensure_decision_tables(con) -> None:
    for stmt in DDL:
        con.execute(stmt)
