"""`weathervane sniff --tenant T`: what a tenant's loaded data holds and what it can carry, with reasons."""
from __future__ import annotations

import argparse
import json


def print_sniff(sniff, console) -> None:
    from rich.table import Table

    p, d = sniff.profile, sniff.decisions
    console.rule(f"Dataset sniff: {p.tenant_id}")
    facts = Table(title="What the data holds", show_header=False)
    facts.add_column("what")
    facts.add_column("found")
    facts.add_row("history", f"{p.sales_start or p.aggregated_start} to {p.sales_end or p.aggregated_end} "
                             f"({p.span_days} days, {p.missing_sales_days} without orders)")
    facts.add_row("orders / net revenue", f"{p.orders:,} / {p.net_revenue:,.0f} {p.currency}")
    facts.add_row("geos", ", ".join(f"{g} ({n:,})" for g, n in sorted(p.geo_orders.items())) or "—")
    facts.add_row("categories", ", ".join(f"{c} ({n:,})" for c, n in sorted(p.category_orders.items())) or "—")
    facts.add_row("orders per geo-day (median)", f"{p.median_orders_per_geo_day:.1f}")
    facts.add_row("spend", f"{p.spend_total:,.0f} {p.currency} over {len(p.channels)} channel(s)")
    facts.add_row("promotions / sends", f"{sum(p.promotions.values())} / {p.lifecycle_sends}")
    facts.add_row("weather", f"{len(p.weather_geos)} geo(s), {p.weather_coverage:.0%} of region-days; forecast for "
                             f"{', '.join(p.forecast_geos) or 'none'}")
    facts.add_row("lift tests / deployments", f"{p.lift_tests} / {p.deployments}")
    facts.add_row("quarantined files", str(len(p.quarantined)))
    if p.aggregated_rows:
        facts.add_row("aggregated MMM table", f"{p.aggregated_rows} {p.aggregated_period}ly rows, "
                                              f"{p.aggregated_start}..{p.aggregated_end}")
    console.print(facts)
    table = Table(title="Decisions")
    for col in ("decision", "choice", "why"):
        table.add_column(col, overflow="fold")
    for dec in d.all():
        table.add_row(dec.name, dec.value, dec.reason)
    console.print(table)
    for w in d.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    spec = sniff.spec
    if spec is not None:
        table = Table(title="Model spec (what every fit of this tenant follows; ops.model_spec)")
        for col in ("field", "value", "from", "why"):
            table.add_column(col, overflow="fold")
        for name in spec.FIELDS:
            table.add_row(name, str(spec.value(name)), spec.sources.get(name, "default"), spec.reasons.get(name, ""))
        console.print(table)
        for name, why in spec.refused.items():
            from rich.markup import escape

            console.print(f"[yellow]tenant.yaml pin refused:[/yellow] {escape(name)} — {escape(why)}")
    if sniff.twin is not None:
        t = sniff.twin
        console.print(f"synthetic twin: {t.tenant_id} — {t.n_geos} geos, {', '.join(t.channels)}, "
                      f"{t.orders_per_geo_day:g} orders per geo-day, media {t.media_share:.0%} of revenue, "
                      f"{t.days} days")
        for diff in t.differences:
            console.print(f"  · {diff}")


def sniff_dict(sniff) -> dict:
    d = sniff.decisions
    return {"tenant_id": sniff.tenant_id, "decisions": {x.name: {"value": x.value, "reason": x.reason}
                                                        for x in d.all()},
            "warnings": d.warnings, "twin": sniff.twin.to_dict() if sniff.twin else None,
            "model_spec": sniff.spec.to_dict() if sniff.spec is not None else None}


def _run(args: argparse.Namespace) -> int:
    """Sniff what the warehouse holds for the tenant (after ingestion and harmonization) and record it."""
    from pathlib import Path

    from weathervane import config
    from weathervane.console import console
    from weathervane.sniff import sniff_tenant, write_sniff
    from weathervane.warehouse import connect_tenant, ensure_schemas

    tenant = config.validate_tenant_id(args.tenant)
    cfg = config.load_tenant_config(config.landing_root(), tenant)
    con = connect_tenant(Path(args.warehouse) if getattr(args, "warehouse", None) else config.warehouse_path(), tenant)
    try:
        ensure_schemas(con)
        sniff = sniff_tenant(con, tenant, cfg)
        write_sniff(con, sniff)
    finally:
        con.close()
    if args.json:
        console.print_json(json.dumps(sniff_dict(sniff), default=str))
    else:
        print_sniff(sniff, console)
    return 0


def add_cli(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("sniff", help="what a tenant's data holds and can carry (grain, channels, weather, "
                                            "period, live or synthetic twin), with reasons")
    p.add_argument("--tenant", required=True)
    p.add_argument("--warehouse", help="DuckDB file (default $WEATHERVANE_WAREHOUSE)")
    p.add_argument("--json", action="store_true", help="print the decisions as JSON")
    p.set_defaults(func=_run)
    return p
