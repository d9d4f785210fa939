"""Allocator run time vs PyMC-Marketing's BudgetOptimizer on the same fitted model (no weather: the optimizer
cannot take it), and the allocator on the demo tenant's warehouse when one has been built (`make demo`).

    .venv/bin/python bench/bench_allocate.py [--weeks 104] [--geos 3]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")


def fit_model(weeks: int, geos: int):
    from weathervane.mmm.data import prepare_model_data
    from weathervane.mmm.model import FitSettings, fit_mmm
    from weathervane.mmm.synthetic import synthetic_panel

    panel = synthetic_panel("bench", days=weeks * 7, n_geos=geos, period="week")
    data = prepare_model_data(panel.model_input, panel.weather_daily)
    # the weather-aware model; both optimisers below see average weather (z = 0), all BudgetOptimizer can use
    settings = FitSettings(method="map", holdout_weeks=0)
    t0 = time.perf_counter()
    fit = fit_mmm(data, settings)
    return data, fit.mmm, time.perf_counter() - t0


def bench_weathervane(data, mmm, horizon_weeks: int, budget_per_week: float):
    from weathervane.allocate import Constraints, optimize_allocation
    from weathervane.allocate.mmm_response import MMMResponse
    from weathervane.mmm.response import PosteriorResponse

    t0 = time.perf_counter()
    resp = MMMResponse(PosteriorResponse.from_idata(mmm.idata, model_id="bench"), draws=None)
    z = np.zeros((horizon_weeks, len(resp.geos), len(resp.weather_vars)))
    history = np.zeros((resp.lags, len(resp.channels), len(resp.geos)))  # as BudgetOptimizer: no carry-over in
    prev = data.spend[-horizon_weeks:].sum(axis=0).T  # [channel, geo]
    alloc = optimize_allocation(resp, z, history, Constraints(total_budget=budget_per_week * horizon_weeks,
                                                              previous=prev, max_change_pct=None))
    seconds = time.perf_counter() - t0
    value = resp.sample_contribution(np.broadcast_to(alloc.spend[None] / horizon_weeks,
                                                     (horizon_weeks, *alloc.spend.shape)).copy(), z, history)
    return seconds, float(value.sum(axis=(1, 2, 3)).mean()), alloc


def bench_pymc_marketing(data, mmm, horizon_weeks: int, budget_per_week: float):
    start = data.dates[-1] + np.timedelta64(7, "D")
    end = start + np.timedelta64(7 * (horizon_weeks - 1), "D")
    t0 = time.perf_counter()
    try:
        optimizer = mmm.budget_optimizer(start_date=str(start.date()), end_date=str(end.date()))
    except AttributeError:
        from pymc_marketing.mmm.multidimensional import MultiDimensionalBudgetOptimizerWrapper as Wrapper

        optimizer = Wrapper(model=mmm, start_date=str(start.date()), end_date=str(end.date()))
    if hasattr(optimizer, "allocate_budget"):
        result = optimizer.allocate_budget(total_budget=budget_per_week)
    else:
        result = optimizer.optimize_budget(budget=budget_per_week)
    seconds = time.perf_counter() - t0
    allocation = result[0] if isinstance(result, tuple) else getattr(result, "allocation", result)
    return seconds, allocation


def bench_demo_tenant(tenant: str):
    from weathervane import config
    from weathervane.allocate import build_plan
    from weathervane.allocate.mmm_response import load_latest_response

    src = config.warehouse_path()
    if not src.exists():
        return None
    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "warehouse.duckdb"
        shutil.copy(src, copy)
        con = duckdb.connect(str(copy))
        try:
            t0 = time.perf_counter()
            resp = load_latest_response(con, tenant, config.model_store())
            plan = build_plan(con, tenant, config.load_tenant_config(config.landing_root(), tenant), resp)
            return time.perf_counter() - t0, plan
        except Exception as exc:  # no usable model yet: report why
            return exc
        finally:
            con.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weeks", type=int, default=104)
    parser.add_argument("--geos", type=int, default=3)
    parser.add_argument("--horizon-weeks", type=int, default=4)
    parser.add_argument("--tenant", default="demo")
    args = parser.parse_args()

    data, mmm, fit_s = fit_model(args.weeks, args.geos)
    budget_per_week = float(data.spend[-args.horizon_weeks:].sum() / args.horizon_weeks)
    print(f"model: {args.weeks} weeks x {args.geos} geos x {len(data.channels)} channels, MAP fit {fit_s:.1f}s")
    wv_s = pm_s = None
    try:
        wv_s, wv_value, alloc = bench_weathervane(data, mmm, args.horizon_weeks, budget_per_week)
        print(f"weathervane allocator: {wv_s:.2f}s ({alloc.evaluations} response evaluations), "
              f"expected media contribution {wv_value:,.0f}")
    except Exception as exc:
        print(f"weathervane allocator failed: {type(exc).__name__}: {exc}")
    try:
        pm_s, _ = bench_pymc_marketing(data, mmm, args.horizon_weeks, budget_per_week)
        print(f"pymc-marketing BudgetOptimizer: {pm_s:.2f}s")
    except Exception as exc:
        print(f"pymc-marketing BudgetOptimizer failed: {type(exc).__name__}: {exc}")
    if wv_s and pm_s:
        print(f"ratio allocator / BudgetOptimizer = {wv_s / pm_s:.4f}")
    demo = bench_demo_tenant(args.tenant)
    if demo is None:
        print("demo tenant: no warehouse (run `make demo` first)")
    elif isinstance(demo, Exception):
        print(f"demo tenant: not timed ({type(demo).__name__}: {demo})")
    else:
        print(f"demo tenant {args.tenant}: plan built in {demo[0]:.2f}s (weather: {demo[1].weather.source})")


if __name__ == "__main__":
    main()
