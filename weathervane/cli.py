"""`weathervane` command line: domain commands (no Dagster here; the code location adds demo and ui)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.markup import escape

from weathervane import config
from weathervane.console import console, print_table  # noqa: F401  (print_table: older importers)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from weathervane.landing import ingest_tenant
    from weathervane.landing.ingest import require_tenant_folder
    from weathervane.warehouse import connect_tenant, ensure_schemas

    tenant = config.validate_tenant_id(args.tenant)
    landing = Path(args.landing) if args.landing else config.landing_root()
    require_tenant_folder(landing, tenant)
    warehouse = Path(args.warehouse) if args.warehouse else config.warehouse_path()
    con = connect_tenant(warehouse, tenant, lock_wait_s=args.wait,
                         on_wait=lambda msg: console.print(escape(msg)))
    try:
        ensure_schemas(con)
        report = ingest_tenant(con, landing, tenant)
    finally:
        con.close()
    console.print(escape(report.summary()))
    # the files loaded; settings that could not be applied still need the sender's attention
    return 1 if report.config_error else 0


def _add_simulate(sub) -> None:
    from weathervane.simulate import add_cli

    add_cli(sub)


def _add_plans(sub) -> None:
    from weathervane.governance.cli import add_plans_cli

    add_plans_cli(sub)


def _add_users_and_serve(sub) -> None:
    from weathervane.governance.identity import add_users_cli
    from weathervane.web import add_serve_cli

    add_users_cli(sub)
    add_serve_cli(sub)


def _add_sniff(sub) -> None:
    from weathervane.sniff.cli import add_cli

    add_cli(sub)


def _add_autopilot(sub) -> None:
    from weathervane.governance.autopilot import add_autopilot_cli

    add_autopilot_cli(sub)


def _add_warehouse(sub) -> None:
    from weathervane.migrate import add_cli

    add_cli(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weathervane",
        description="Weather-aware marketing mix modelling, budget plans and causal audits.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_simulate(sub)

    ingest = sub.add_parser("ingest", help="load a tenant's landing files into the warehouse (no orchestrator)")
    ingest.add_argument("--tenant", required=True)
    ingest.add_argument("--landing", help="landing root (default $WEATHERVANE_LANDING or data/landing)")
    ingest.add_argument("--warehouse", help="DuckDB file or folder of tenant files (default $WEATHERVANE_WAREHOUSE)")
    ingest.add_argument("--wait", type=float, default=60.0,
                        help="seconds to wait for a warehouse another process holds (default 60)")
    ingest.set_defaults(func=_cmd_ingest)

    _add_plans(sub)
    _add_users_and_serve(sub)
    _add_autopilot(sub)
    _add_sniff(sub)
    _add_warehouse(sub)
    return parser


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a user sees a message, never a traceback
        import duckdb

        from weathervane.governance.events import GovernanceError

        if not isinstance(exc, (ValueError, OSError, duckdb.Error)):
            raise  # a defect, not a user error: keep its traceback
        if os.environ.get("WEATHERVANE_DEBUG"):
            import traceback

            traceback.print_exc()
        if isinstance(exc, GovernanceError):
            console.print(f"[red]refused:[/red] {escape(str(exc))}")
            return 3
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
