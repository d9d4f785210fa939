"""Effective samples per second: the weather-aware MMM against PyMC-Marketing's MMM with its default priors.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_fit.py                  # weekly and daily synthetic panels
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_fit.py --periods week    # one of them
    .venv/bin/python bench/bench_fit.py --tenant acme        # marts.fct_model_input of the configured warehouse

Both fits see the same panel (spend, KPI and controls), the same adstock length and yearly seasonality, the
same sampler and settings (production's `FitSettings()` draws, tuning, chains and target_accept); the
baseline is PyMC-Marketing's `MMM` out of the box (its default priors and scaling, no weather terms). Ours runs
first, so any one-off warm-up of the sampler is charged to it. Wall time covers build, compilation and sampling.
Also prints the weakest parameters of each fit and whether ours passes the production gate on its first try.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from weathervane.mmm import FitSettings, diagnostics, fit_mmm, prepare_model_data, read_model_input
from weathervane.mmm.model import model_lags, passes, sample_kwargs
from weathervane.mmm.synthetic import synthetic_panel


def pymc_marketing_default(data, settings: FitSettings):
    """PyMC-Marketing's MMM as its documentation builds it: default priors and scaling, our panel and lags."""
    from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

    n_years = (data.dates[-1] - data.dates[0]).days / 365.25
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        mmm = MMM(date_column="date", target_column="kpi", channel_columns=list(data.channels), dims=("geo",),
                  adstock=GeometricAdstock(l_max=model_lags(data.period, settings)),
                  saturation=LogisticSaturation(), control_columns=list(data.controls) or None,
                  yearly_seasonality=settings.yearly_seasonality if n_years >= 1.0 else None,
                  sampler_config={"nuts_sampler": settings.nuts_sampler})
    ds = data.to_dataset()
    t0 = time.perf_counter()
    mmm.build_model(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (FutureWarning, UserWarning, RuntimeWarning))
        mmm.fit(ds, **sample_kwargs(settings))
    return mmm, time.perf_counter() - t0


def weakest(mmm, k: int = 3) -> str:
    import arviz as az

    post = mmm.idata.posterior
    post = post.to_dataset() if hasattr(post, "to_dataset") else post
    names = [v.name for v in mmm.model.free_RVs if v.name in post]
    ess = az.ess(post[names], method="bulk")
    worst = sorted((float(np.nanmin(ess[v].values)), v) for v in ess.data_vars)[:k]
    return ", ".join(f"{v} {e:.0f}" for e, v in worst)


def _baseline_row(panel_args: tuple, settings: FitSettings) -> dict:
    period, geos, seed = panel_args
    p = synthetic_panel(n_geos=geos, period=period, seed=seed)
    return _row(*pymc_marketing_default(prepare_model_data(p.model_input, p.weather_daily, period), settings),
                settings)


def _row(mmm, seconds: float, settings: FitSettings) -> dict:
    d = diagnostics(mmm, settings)
    return dict(seconds=seconds, ess=d["min_ess_bulk"], ess_s=d["min_ess_bulk"] / seconds, rhat=d["max_rhat"],
                div=d["divergences"], gate=passes(d, settings), weakest=weakest(mmm))


def _in_child(panel_args: tuple, settings: FitSettings, timeout: float) -> dict | None:
    """The baseline in its own process, stopped after `timeout` seconds (None): a fit that does not finish must
    not hold the bench for hours."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        job = pool.apply_async(_baseline_row, (panel_args, settings))
        try:
            return job.get(timeout)
        except mp.TimeoutError:
            pool.terminate()
            return None


def run_panel(data, settings: FitSettings, panel_args: tuple | None = None, baseline_timeout: float = 0) -> dict:
    print(f"panel: {data.n_periods} {data.period}s x {len(data.cells)} cells x {len(data.channels)} channels, "
          f"{len(data.controls)} controls, adstock {model_lags(data.period, settings)} lags; {settings.nuts_sampler} "
          f"{settings.draws}+{settings.tune} x {settings.chains}, target_accept {settings.target_accept}", flush=True)
    rows = {}

    def ours():
        t0 = time.perf_counter()
        fit = fit_mmm(data, settings)
        if fit.warnings:
            print(f"  data warnings: {fit.warnings}")
        return fit.mmm, time.perf_counter() - t0

    for name, run in (("ours", ours), ("pymc-marketing default", lambda: pymc_marketing_default(data, settings))):
        if name != "ours" and baseline_timeout:
            row = _in_child(panel_args, settings, baseline_timeout)
            if row is None:
                # it samples 2 x draws; a bulk ESS above twice the draws it takes is rare, so this bounds its rate
                bound = 2 * settings.draws * settings.chains / baseline_timeout
                print(f"  {name:24s} did not finish in {baseline_timeout:.0f} s (stopped): ESS/s below about "
                      f"{bound:.2f}; ours / it > {rows['ours']['ess_s'] / bound:.2f}x", flush=True)
                return rows
            rows[name] = row
        else:
            rows[name] = _row(*run(), settings)
        r = rows[name]
        print(f"  {name:24s} {r['seconds']:7.1f} s  min bulk ESS {r['ess']:7.1f}  ESS/s {r['ess_s']:6.2f}  "
              f"max r-hat {r['rhat']:.3f}  divergences {r['div']}  gate {'pass' if r['gate'] else 'FAIL'}  "
              f"weakest: {r['weakest']}", flush=True)
    ratio = rows["ours"]["ess_s"] / max(rows["pymc-marketing default"]["ess_s"], np.finfo(float).tiny)
    print(f"  ESS/s ours / pymc-marketing default: {ratio:.2f}x   time ratio: "
          f"{rows['ours']['seconds'] / rows['pymc-marketing default']['seconds']:.2f}x", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tenant")
    ap.add_argument("--periods", nargs="+", choices=["week", "day"], default=["week", "day"])
    ap.add_argument("--geos", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--draws", type=int, default=FitSettings.draws)
    ap.add_argument("--tune", type=int, default=FitSettings.tune)
    ap.add_argument("--chains", type=int, default=FitSettings.chains)
    ap.add_argument("--baseline-timeout", type=float, default=0,
                    help="seconds before PyMC-Marketing's fit is stopped (synthetic panels; 0: no limit)")
    args = ap.parse_args()
    settings = FitSettings(method="nuts", draws=args.draws, tune=args.tune, chains=args.chains, holdout_weeks=0)
    if args.tenant:
        from weathervane import config
        from weathervane.mmm import duckdb_connect

        with duckdb_connect(config.warehouse_path())(True) as con:
            frame, weather = read_model_input(con, args.tenant)
        run_panel(prepare_model_data(frame, weather), settings)
        return
    for period in args.periods:
        p = synthetic_panel(n_geos=args.geos, period=period, seed=args.seed)
        run_panel(prepare_model_data(p.model_input, p.weather_daily, period), settings,
                  (period, args.geos, args.seed), args.baseline_timeout)


if __name__ == "__main__":
    main()
