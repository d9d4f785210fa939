"""Ingest throughput: weathervane.landing.ingest_tenant vs DuckDB's own read_json on the same JSONL files.

    .venv/bin/python bench/bench_ingest.py                       # simulate the demo tenant (or synthesize)
    .venv/bin/python bench/bench_ingest.py --landing DIR --tenant ID

The comparison is deliberately unfair to ingest: read_json only parses, while ingest also hashes, validates
every record against its stream model, keeps each record's text, and records the file in ops.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from weathervane.landing import STREAMS, ingest_tenant  # noqa: E402
from weathervane.warehouse import connect  # noqa: E402


def _synthesize(out: Path, tenant: str, days: int, orders_per_day: int, seed: int = 0) -> None:
    """A contract-shaped tenant for when the simulator is not installed: orders, Meta and Google rows."""
    rng = random.Random(seed)
    root = out / tenant
    regions = [("California", 21137, "CA"), ("Texas", 21176, "TX"), ("New York", 21167, "NY"),
               ("Florida", 21142, "FL"), ("Illinois", 21147, "IL"), ("Washington", 21180, "WA")]
    start = date(2023, 1, 1)
    (root / "shopify/orders").mkdir(parents=True)
    (root / "meta_ads/ads_insights_region").mkdir(parents=True)
    (root / "google_ads/campaign_geo").mkdir(parents=True)
    oid = 5_000_000_000
    for month in range(0, days, 30):
        orders, meta, google = [], [], []
        for d in range(month, min(month + 30, days)):
            day = start + timedelta(days=d)
            for _ in range(orders_per_day):
                oid += 1
                region = rng.choice(regions)
                qty = rng.randint(1, 3)
                price = rng.choice([19.0, 30.0, 45.0])
                ts = f"{day.isoformat()}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00-07:00"
                orders.append({
                    "id": oid, "created_at": ts, "updated_at": ts, "cancelled_at": None, "test": False,
                    "currency": "USD", "financial_status": "paid", "total_price": f"{qty * price:.2f}",
                    "subtotal_price": f"{qty * price:.2f}", "total_discounts": "0.00",
                    "discount_codes": [], "discount_applications": [],
                    "line_items": [{"id": oid * 10, "product_id": 801, "variant_id": 8011, "sku": "TEE",
                                    "quantity": qty, "price": f"{price:.2f}", "total_discount": "0.00",
                                    "discount_allocations": []}],
                    "shipping_address": {"province_code": region[2], "country_code": "US", "zip": "94110"},
                })
            for name, crit, _code in regions:
                meta.append({
                    "account_id": "1", "campaign_id": "238", "campaign_name": "Prospecting", "adset_id": "2381",
                    "adset_name": "Broad", "date_start": day.isoformat(), "date_stop": day.isoformat(),
                    "region": name, "spend": f"{rng.uniform(50, 500):.2f}", "impressions": "1000",
                    "clicks": "20", "reach": "900", "actions": [], "action_values": []})
                google.append({
                    "segments.date": day.isoformat(), "campaign.id": "17", "campaign.name": "Search",
                    "campaign.advertising_channel_type": "SEARCH",
                    "segments.geo_target_region": f"geoTargetConstants/{crit}",
                    "metrics.cost_micros": str(rng.randint(10**7, 10**9)), "metrics.impressions": "900",
                    "metrics.clicks": "30", "metrics.conversions": 2.0, "metrics.conversions_value": 90.5})
        tag = (start + timedelta(days=month)).isoformat()
        for folder, rows in (("shopify/orders", orders), ("meta_ads/ads_insights_region", meta),
                             ("google_ads/campaign_geo", google)):
            with (root / folder / f"{tag}.jsonl").open("w") as fh:
                fh.writelines(json.dumps(r) + "\n" for r in rows)


def _prepare(args, work: Path) -> tuple[Path, str, str]:
    if args.landing:
        return Path(args.landing), args.tenant, "given"
    landing = work / "landing"
    try:
        from weathervane.simulate import simulate_tenant
    except ImportError:
        _synthesize(landing, args.tenant, days=args.days, orders_per_day=args.orders_per_day)
        return landing, args.tenant, "synthesized (weathervane.simulate not available)"
    simulate_tenant(args.tenant, landing, scenario="standard", seed=0, days=args.days)
    return landing, args.tenant, "simulated"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", help="landing root holding the tenant (default: simulate one)")
    parser.add_argument("--tenant", default="demo")
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--orders-per-day", type=int, default=150, help="synthesized tenant only")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="wv-bench-ingest-") as tmp:
        work = Path(tmp)
        landing, tenant, origin = _prepare(args, work)
        tenant_root = landing / tenant
        jsonl = sorted(p for s in STREAMS if s.format == "jsonl"
                       for p in (tenant_root / s.folder).rglob("*.jsonl"))
        size_mb = sum(p.stat().st_size for p in tenant_root.rglob("*") if p.is_file()) / 1e6
        print(f"tenant {tenant} ({origin}): {size_mb:.1f} MB, {len(jsonl)} JSONL files")

        con = connect(work / "ingest.duckdb")
        t0 = time.perf_counter()
        report = ingest_tenant(con, landing, tenant)
        t_ingest = time.perf_counter() - t0
        con.close()
        if report.files_quarantined:
            print(report.summary())
        jsonl_rows = sum(s.rows for s in report.streams if any(
            st.format == "jsonl" and (st.source, st.stream) == (s.source, s.stream) for st in STREAMS))

        # DuckDB alone, same JSONL files, one table per stream: parse only, no validation, no bookkeeping.
        con = connect(work / "raw_read_json.duckdb")
        t0 = time.perf_counter()
        raw_rows = 0
        for s in STREAMS:
            files = [str(p) for p in jsonl if p.is_relative_to(tenant_root / s.folder)]
            if not files:
                continue
            con.execute(f"CREATE TABLE {s.key} AS SELECT * FROM read_json_auto(?, "
                        "format = 'newline_delimited')", [files])
            raw_rows += con.execute(f"SELECT count(*) FROM {s.key}").fetchone()[0]
        t_raw = time.perf_counter() - t0
        con.close()

    ingest_rate = report.rows / t_ingest if t_ingest else float("inf")
    raw_rate = raw_rows / t_raw if t_raw else float("inf")
    print(f"ingest_tenant : {report.rows:>9,d} rows ({jsonl_rows:,d} JSONL) in {t_ingest:6.2f} s "
          f"= {ingest_rate:>10,.0f} rows/s  ({report.files_loaded} files, {report.files_quarantined} quarantined)")
    print(f"read_json     : {raw_rows:>9,d} rows in {t_raw:6.2f} s = {raw_rate:>10,.0f} rows/s")
    print(f"ratio read_json/ingest: {raw_rate / ingest_rate:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
