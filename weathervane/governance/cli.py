"""`weathervane plans list|show|approve|reject|apply|rollback|verify|notify`.

A decision is committed and the warehouse released before any webhook is posted; user errors end with a
message and a non-zero exit, never a traceback (weathervane.cli.main). Values from files and the ledger are
printed with Rich markup escaped.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

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
DEFAULT_LOCK_WAIT_S = 30.0


def _warehouse_path(args) -> Path:
    return Path(args.warehouse) if args.warehouse else config.warehouse_path()


def _connect(args, must_exist: bool = False, tenant: str | None = None):
    """The warehouse, or with a tenant the file that holds it (its own file in a folder warehouse)."""
    from weathervane.console import console
    from weathervane.warehouse import connect, tenant_path

    path = _warehouse_path(args) if tenant is None else tenant_path(_warehouse_path(args), tenant)
    if must_exist:
        _require_warehouse(path)
    con = connect(path, lock_wait_s=getattr(args, "wait", DEFAULT_LOCK_WAIT_S),
                  on_wait=lambda msg: console.print(escape(msg)))
    try:
        ensure_decision_tables(con)
    except BaseException:
        con.close()
        raise
    return con


def _plan_home(args) -> str | None:
    """The tenant whose file to open for --plan-id: --tenant, else (folder warehouse) the file that holds it."""
    from weathervane.governance.events import locate_plan

    if args.tenant:
        return config.validate_tenant_id(args.tenant)
    return locate_plan(_warehouse_path(args), args.plan_id, lock_wait_s=getattr(args, "wait", DEFAULT_LOCK_WAIT_S))


def _require_warehouse(path: Path) -> None:
    from weathervane.warehouse import WarehouseError

    if not path.is_file():
        raise WarehouseError(f"warehouse {path} does not exist (no plans were ever written there)")


def _landing(args) -> Path:
    return Path(args.landing) if getattr(args, "landing", None) else config.landing_root()


def _known_tenant(args, tenant: str) -> str:
    from weathervane.landing.ingest import require_tenant_folder

    tenant = config.validate_tenant_id(tenant)
    require_tenant_folder(_landing(args), tenant)
    return tenant


def _cmd_list(args) -> int:
    from weathervane.console import print_table

    tenant = _known_tenant(args, args.tenant)
    con = _connect(args, must_exist=True, tenant=tenant)
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
    from weathervane.console import console, print_table

    con = _connect(args, must_exist=True, tenant=_plan_home(args))
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
    console.print(f"[bold]plan {escape(args.plan_id)}[/bold] tenant {escape(tenant)} "
                  f"status [bold]{escape(str(status))}[/bold]")
    for col in plan.columns:
        console.print(f"  {escape(str(col))}: {escape(str(plan[col].iloc[0]))}")
    print_table("Lines", ["channel", "geo", "previous", "recommended", "weather x", "contribution", "p05", "p95"], lines)
    print_table("Events", ["seq", "at", "actor", "os user", "from", "to", "reason"],
                [(e.seq, e.at, e.actor, e.os_user, e.from_status, e.to_status, e.reason) for e in events])
    return 0


def _print_delivery(report) -> None:
    from weathervane.console import console

    if report.delivered or report.failed:
        console.print(escape(report.describe()))
    for failure in report.failed:
        console.print(f"  [yellow]notification failed:[/yellow] {escape(failure)}")


def _cmd_decide(args) -> int:
    from weathervane.console import console
    from weathervane.governance.outbox import deliver_outbox

    if args.tenant:
        config.validate_tenant_id(args.tenant)
    con = _connect(args, must_exist=True, tenant=_plan_home(args))
    try:
        tenant, _ = plan_status(con, args.plan_id)
        cfg = config.load_tenant_config(_landing(args), tenant)
        events = transition(con, args.plan_id, ACTIONS[args.plans_command], args.actor, args.reason, cfg,
                            tenant_id=args.tenant, deliver=False)
    except GovernanceError as exc:
        console.print(f"[red]refused:[/red] {escape(str(exc))}")
        return 3
    finally:
        con.close()
    for ev in events:
        console.print(escape(f"plan {ev.plan_id}: {ev.from_status} → {ev.to_status} by {ev.actor} "
                             f"(OS user {ev.os_user}, event {ev.seq})"))
    # the decision is committed and the warehouse released: only now talk to the network
    _print_delivery(deliver_outbox(tenant, _warehouse_path(args), cfg, lock_wait_s=args.wait))
    return 0


def _cmd_notify(args) -> int:
    from weathervane.warehouse import tenant_path

    tenant = _known_tenant(args, args.tenant)
    path = tenant_path(_warehouse_path(args), tenant)
    _require_warehouse(path)
    from weathervane.console import console
    from weathervane.governance.outbox import deliver_outbox

    cfg = config.load_tenant_config(_landing(args), tenant)
    report = deliver_outbox(tenant, path, cfg, retry_failed=args.retry_failed, lock_wait_s=args.wait)
    if not (report.delivered or report.failed):
        console.print(escape(f"nothing to deliver for {tenant}"))
    _print_delivery(report)
    return 5 if report.failed else 0


def _cmd_verify(args) -> int:
    from weathervane.console import console

    tenant = _known_tenant(args, args.tenant)
    con = _connect(args, must_exist=True, tenant=tenant)
    try:
        report = verify_chain(con, tenant, config.load_tenant_config(_landing(args), tenant))
    finally:
        con.close()
    if report.ok:
        console.print(f"[green]ok[/green]: {report.events} events of {escape(tenant)}, chain intact")
        return 0
    console.print(f"[red]tampered[/red]: {len(report.problems)} problems in {report.events} events of {escape(tenant)}")
    for p in report.problems:
        console.print(f"  - {escape(p)}")
    return 4


def add_plans_cli(subparsers) -> argparse.ArgumentParser:
    plans = subparsers.add_parser("plans", help="list, inspect and decide budget plans")
    sub = plans.add_subparsers(dest="plans_command", required=True)

    def common(p, tenant_required: bool):
        p.add_argument("--tenant", required=tenant_required)
        p.add_argument("--warehouse", help="DuckDB file or folder of tenant files (default $WEATHERVANE_WAREHOUSE)")
        p.add_argument("--landing", help="landing root holding tenant.yaml (default $WEATHERVANE_LANDING)")
        p.add_argument("--wait", type=float, default=DEFAULT_LOCK_WAIT_S,
                       help=f"seconds to wait for a warehouse another process holds (default {DEFAULT_LOCK_WAIT_S:g})")
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
    notify = common(sub.add_parser("notify", help="post the tenant's pending notifications to its webhook"), True)
    notify.add_argument("--retry-failed", action="store_true", help="also retry notifications that failed before")
    notify.set_defaults(func=_cmd_notify)
    return plans
