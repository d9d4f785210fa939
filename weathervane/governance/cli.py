"""`weathervane plans list|show|approve|reject|apply|rollback|verify`."""
from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from weathervane import config
from weathervane.governance.events import (
    GovernanceError,
    plan_events,
    plan_status,
    transition,
    verify_chain,
)
from weathervane.governance.tables import ensure_decision_tables

ACTIONS = {"approve": "approved", "reject": "rejected", "apply": "applied", "rollback": "rolled_back"}


def _connect(args, read_only: bool = False):
    path = Path(args.warehouse) if args.warehouse else config.warehouse_path()
    if read_only and not path.exists():
        raise GovernanceError(f"warehouse {path} does not exist")
    con = duckdb.connect(str(path), read_only=read_only)
    if not read_only:
        ensure_decision_tables(con)
    return con


def _landing(args) -> Path:
    return Path(args.landing) if getattr(args, "landing", None) else config.landing_root()


def _cmd_list(args) -> int:
    from weathervane.cli import print_table

    tenant = config.validate_tenant_id(args.tenant)
    con = _connect(args)
    try:
        rows = con.execute(
            "select plan_id, status, created_at, horizon_start, horizon_end, round(total_budget, 2), "
            "round(expected_kpi_mean, 2), round(baseline_kpi_mean, 2), model_id from decisions.plans "
            "where tenant_id = ? order by created_at desc", [tenant]
        ).fetchall()
    finally:
        con.close()
    print_table(f"Plans of {tenant}", ["plan_id", "status", "created", "from", "to", "budget", "expected KPI",
                                       "baseline KPI", "model"], rows)
    return 0


def _cmd_show(args) -> int:
    from weathervane.cli import console, print_table

    con = _connect(args)
    try:
        tenant, status = plan_status(con, args.plan_id)
        plan = con.execute("select * from decisions.plans where plan_id = ?", [args.plan_id]).fetchdf()
        lines = con.execute(
            "select channel, geo_id, round(previous_spend, 2), round(recommended_spend, 2), "
            "round(weather_multiplier, 3), round(expected_contribution_mean, 2), round(expected_contribution_p05, 2), "
            "round(expected_contribution_p95, 2) from decisions.plan_lines where plan_id = ? order by channel, geo_id",
            [args.plan_id],
        ).fetchall()
        events = plan_events(con, args.plan_id)
    finally:
        con.close()
    console.print(f"[bold]plan {args.plan_id}[/bold] tenant {tenant} status [bold]{status}[/bold]")
    for col in plan.columns:
        console.print(f"  {col}: {plan[col].iloc[0]}")
    print_table("Lines", ["channel", "geo", "previous", "recommended", "weather x", "contribution", "p05", "p95"], lines)
    print_table("Events", ["seq", "at", "actor", "from", "to", "reason"],
                [(e.seq, e.at, e.actor, e.from_status, e.to_status, e.reason) for e in events])
    return 0


def _cmd_decide(args) -> int:
    from weathervane.cli import console

    con = _connect(args)
    try:
        tenant, _ = plan_status(con, args.plan_id)
        if args.tenant:
            config.validate_tenant_id(args.tenant)
        cfg = config.load_tenant_config(_landing(args), tenant)
        events = transition(con, args.plan_id, ACTIONS[args.plans_command], args.actor, args.reason, cfg,
                            tenant_id=args.tenant)
    except GovernanceError as exc:
        console.print(f"[red]refused:[/red] {exc}")
        return 3
    finally:
        con.close()
    for ev in events:
        console.print(f"plan {ev.plan_id}: {ev.from_status} → {ev.to_status} by {ev.actor} (event {ev.seq})")
    return 0


def _cmd_verify(args) -> int:
    from weathervane.cli import console

    tenant = config.validate_tenant_id(args.tenant)
    con = _connect(args)
    try:
        report = verify_chain(con, tenant, config.load_tenant_config(_landing(args), tenant))
    finally:
        con.close()
    if report.ok:
        console.print(f"[green]ok[/green]: {report.events} events of {tenant}, chain intact")
        return 0
    console.print(f"[red]tampered[/red]: {len(report.problems)} problems in {report.events} events of {tenant}")
    for p in report.problems:
        console.print(f"  - {p}")
    return 4


def add_plans_cli(subparsers) -> argparse.ArgumentParser:
    plans = subparsers.add_parser("plans", help="list, inspect and decide budget plans")
    sub = plans.add_subparsers(dest="plans_command", required=True)

    def common(p, tenant_required: bool):
        p.add_argument("--tenant", required=tenant_required)
        p.add_argument("--warehouse", help="DuckDB file (default $WEATHERVANE_WAREHOUSE)")
        p.add_argument("--landing", help="landing root holding tenant.yaml (default $WEATHERVANE_LANDING)")
        return p

    common(sub.add_parser("list", help="plans of a tenant, newest first"), True).set_defaults(func=_cmd_list)
    show = common(sub.add_parser("show", help="a plan, its lines and its events"), False)
    show.add_argument("--plan-id", required=True)
    show.set_defaults(func=_cmd_show)
    for action, status in ACTIONS.items():
        p = common(sub.add_parser(action, help=f"record that a plan is {status.replace('_', ' ')}"), False)
        p.add_argument("--plan-id", required=True)
        p.add_argument("--actor", required=True, help="who decides (an approver's e-mail for approve)")
        p.add_argument("--reason", default=None)
        p.set_defaults(func=_cmd_decide)
    common(sub.add_parser("verify", help="check the tenant's event hash chain for tampering"), True).set_defaults(
        func=_cmd_verify)
    return plans
