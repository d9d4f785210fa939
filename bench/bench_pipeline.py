"""Pipeline benchmark: ingest + dbt per tenant, cold and incremental, and how time grows with tenants and history.

    .venv/bin/python bench/bench_pipeline.py [--quick]

Everything runs for real in a temporary folder (simulated landing files, a DuckDB warehouse, dbt builds through
the Dagster assets on an ephemeral instance). Model fitting is left out: its cost is measured in bench_allocate /
the MMM tests and does not depend on the warehouse.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _setup(tmp: Path) -> None:
    os.environ["WEATHERVANE_LANDING"] = str(tmp / "landing")
    os.environ["WEATHERVANE_WAREHOUSE"] = str(tmp / "warehouse.duckdb")
    os.environ["WEATHERVANE_MODEL_STORE"] = str(tmp / "models")
    os.environ["WEATHERVANE_REPORTS"] = str(tmp / "reports")


def _pipeline(tenants: list[str]) -> tuple[float, dict[str, int]]:
    """Ingest + dbt for each tenant in turn (what a serialized backfill does). Returns (seconds, steps run)."""
    from dagster import DagsterInstance, materialize

    from dagster_project.defs import ingest, marts, sniff
    from dagster_project.resources import WeathervaneResource

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", tenants)
    started = time.perf_counter()
    rows = {}
    for t in tenants:
        result = materialize([*ingest.assets, *marts.assets, sniff.dataset_sniff], partition_key=t,
                             instance=instance, resources={"weathervane": WeathervaneResource(), **marts.resources},
                             raise_on_error=True)
        rows[t] = sum(int(m.metadata["rows_appended"].value) for m in
                      (e.event_specific_data.materialization for e in result.get_asset_materialization_events())
                      if "rows_appended" in m.metadata)
    return time.perf_counter() - started, rows


def _incremental(tenant: str) -> tuple[float, list[str], int]:
    """One new orders file (a new order): the run the landing sensor requests reruns only the orders stream and
    the assets downstream of it. Returns (seconds, raw streams that loaded rows, assets materialized)."""
    import json

    from dagster import DagsterInstance, materialize

    from dagster_project.defs import ingest, marts, sniff
    from dagster_project.resources import WeathervaneResource
    from dagster_project.sensors import affected_assets

    landing = Path(os.environ["WEATHERVANE_LANDING"]) / tenant / "shopify" / "orders"
    newest = sorted(landing.glob("*.jsonl*"))[-1]
    order = json.loads(newest.read_text().splitlines()[0])
    order["id"] += 10**12  # a new order, so a new content hash
    (landing / ("extra-" + newest.name)).write_text(json.dumps(order) + "\n")
    selection = affected_assets([f"shopify/orders/extra-{newest.name}"])
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", [tenant])
    started = time.perf_counter()
    result = materialize([*ingest.assets, *marts.assets, sniff.dataset_sniff], partition_key=tenant, instance=instance,
                         selection=selection,
                         resources={"weathervane": WeathervaneResource(), **marts.resources}, raise_on_error=True)
    seconds = time.perf_counter() - started
    events = result.get_asset_materialization_events()
    changed = [
        "/".join(e.asset_key.path) for e in events
        if e.asset_key.path[0] == "raw"
        and int(e.event_specific_data.materialization.metadata["rows_appended"].value) > 0
    ]
    return seconds, changed, len({e.asset_key for e in events})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1 and 3 tenants only, shorter histories")
    args = parser.parse_args()
    from weathervane.simulate import simulate_tenant

    results = []
    with tempfile.TemporaryDirectory(prefix="wv-bench-") as d:
        tmp = Path(d)
        _setup(tmp)
        simulate_tenant("demo", tmp / "landing", scenario="standard", seed=7,
                        days=180 if args.quick else 365)
        cold, rows = _pipeline(["demo"])
        incr, changed, n_assets = _incremental("demo")
        print(f"demo tenant cold (ingest + dbt): {cold:6.1f} s  ({rows['demo']} raw rows)")
        print(f"demo tenant incremental (1 new orders file): {incr:6.1f} s  ratio {incr / cold:.2f}  "
              f"streams that loaded rows: {changed}; assets rerun: {n_assets}")
        results.append(("demo cold", cold))

    counts = [1, 3] if args.quick else [1, 3, 10]
    base = None
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="wv-bench-") as d:
            tmp = Path(d)
            _setup(tmp)
            tenants = [f"t{i:02d}" for i in range(n)]
            for i, t in enumerate(tenants):
                simulate_tenant(t, tmp / "landing", seed=i, days=60, n_geos=2, orders_per_geo_day=3.0)
            seconds, _ = _pipeline(tenants)
            base = base or seconds
            print(f"{n:3d} small tenants: {seconds:6.1f} s  per tenant {seconds / n:5.1f} s  "
                  f"x{seconds / base:.2f} of 1 tenant")

    days_list = [90, 180] if args.quick else [90, 180, 365, 730]
    base = None
    for days in days_list:
        with tempfile.TemporaryDirectory(prefix="wv-bench-") as d:
            tmp = Path(d)
            _setup(tmp)
            simulate_tenant("hist", tmp / "landing", seed=1, days=days, n_geos=3, orders_per_geo_day=5.0)
            seconds, rows = _pipeline(["hist"])
            base = base or seconds
            print(f"history {days:4d} days: {seconds:6.1f} s  ({rows['hist']} raw rows)  x{seconds / base:.2f} of "
                  f"{days_list[0]} days")
    return 0


if __name__ == "__main__":
    sys.exit(main())
