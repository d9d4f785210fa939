"""`weathervane simulate`: write a simulated tenant into the landing root and summarize it."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


def _run(args: argparse.Namespace) -> int:
    from weathervane import config
    from weathervane.simulate.core import simulate_tenant

    out = Path(args.out) if args.out else config.landing_root()
    started = time.perf_counter()
    truth = simulate_tenant(args.tenant, out, scenario=args.scenario, seed=args.seed, days=args.days,
                            n_geos=args.geos, orders_per_geo_day=args.orders_per_geo_day)
    elapsed = time.perf_counter() - started
    console.print(
        f"Simulated tenant [bold]{truth.tenant_id}[/bold] ({truth.scenario}, seed {truth.seed}): "
        f"{truth.start_date} to {truth.end_date}, {truth.n_geos} geos, in {elapsed:.1f}s -> {out / truth.tenant_id}"
    )
    files = Table(title="Files written")
    files.add_column("stream")
    files.add_column("files", justify="right")
    for stream, count in truth.files.items():
        files.add_row(stream, str(count))
    console.print(files)
    o = truth.orders
    console.print(f"orders: {o.written:,} written ({o.valid:,} sales, {o.cancelled:,} cancelled, {o.test:,} test); "
                  f"net revenue {o.net_revenue_valid:,.0f} (expected {truth.expected_revenue_total:,.0f})")
    ch = Table(title="True channel effects")
    for col in ("channel", "spend", "contribution", "ROAS", "x/sd temperature", "x/sd precipitation"):
        ch.add_column(col, justify="right" if col != "channel" else "left")
    for c in truth.channels.values():
        ch.add_row(c.name, f"{c.spend:,.0f}", f"{c.contribution:,.0f}", f"{c.roas:.2f}",
                   f"{c.multiplier_per_sd['temperature_2m_mean']:.3f}",
                   f"{c.multiplier_per_sd['precipitation_sum']:.3f}")
    console.print(ch)
    if truth.bad_files:
        console.print(f"[yellow]{len(truth.bad_files)} deliberately bad files[/yellow]: "
                      + ", ".join(b.file_path for b in truth.bad_files))
    console.print(f"truth: {out / (truth.tenant_id + '.truth.json')}")
    return 0


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register `simulate` on an argparse subparsers object."""
    from weathervane.simulate.core import SCENARIOS

    p = subparsers.add_parser("simulate", help="write a simulated tenant (known ground truth) into the landing root")
    p.add_argument("--tenant", required=True)
    p.add_argument("--scenario", default="standard", choices=SCENARIOS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="landing root to write into (default $WEATHERVANE_LANDING or data/landing)")
    p.add_argument("--days", type=int, default=730)
    p.add_argument("--geos", type=int, default=6)
    p.add_argument("--orders-per-geo-day", type=float, default=10.0)
    p.set_defaults(func=_run)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m weathervane.simulate")
    sub = parser.add_subparsers(dest="command", required=True)
    add_cli(sub)
    args = parser.parse_args(["simulate", *(argv if argv is not None else __import__("sys").argv[1:])])
    return int(args.func(args))
