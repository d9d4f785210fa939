"""Fit time and ESS per second: the weather-aware MMM versus a plain PyMC-Marketing MMM on the same input.

    .venv/bin/python bench/bench_fit.py                      # a synthetic fct_model_input panel
    .venv/bin/python bench/bench_fit.py --tenant acme        # marts.fct_model_input of the configured warehouse

Both models share the data, priors, sampler (nutpie) and settings; the plain one lacks the weather terms.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from weathervane.mmm import FitSettings, diagnostics, fit_mmm, prepare_model_data, read_model_input
from weathervane.mmm.synthetic import synthetic_panel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tenant")
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--tune", type=int, default=300)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--geos", type=int, default=4)
    ap.add_argument("--adaptation", choices=["diag", "low_rank"], default=FitSettings.adaptation,
                    help="nutpie mass-matrix adaptation for both models")
    args = ap.parse_args()
    if args.tenant:
        from weathervane.mmm import duckdb_connect

        with duckdb_connect()(True) as con:
            frame, weather = read_model_input(con, args.tenant)
    else:
        p = synthetic_panel(n_geos=args.geos)
        frame, weather = p.model_input, p.weather_daily
    data = prepare_model_data(frame, weather)
    settings = FitSettings(method="nuts", draws=args.draws, tune=args.tune, chains=args.chains, holdout_weeks=0,
                           adaptation=args.adaptation)
    print(f"panel: {data.n_periods} {data.period}s x {len(data.cells)} cells x {len(data.channels)} channels, "
          f"nutpie {args.draws}+{args.tune} x {args.chains}, {args.adaptation} mass matrix")
    rows = {}
    for name, weather_on in (("plain", False), ("weather", True)):
        t0 = time.perf_counter()
        fit = fit_mmm(data, settings, weather=weather_on)
        seconds = time.perf_counter() - t0
        d = diagnostics(fit.mmm, settings)
        rows[name] = (seconds, d["min_ess_bulk"], d["min_ess_bulk"] / seconds, d["max_rhat"], d["divergences"])
        print(f"{name:8s} fit {seconds:7.1f} s  min bulk ESS {d['min_ess_bulk']:7.1f}  ESS/s {rows[name][2]:6.2f}  "
              f"max r-hat {d['max_rhat']:.3f}  divergences {d['divergences']}")
    print(f"time ratio weather/plain: {rows['weather'][0] / rows['plain'][0]:.2f}x   "
          f"ESS/s ratio plain/weather: {rows['plain'][2] / max(rows['weather'][2], np.finfo(float).tiny):.2f}x")


if __name__ == "__main__":
    main()
