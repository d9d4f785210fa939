"""Calibration study of the causal audit: many simulated deployments with known effects on one simulated geo panel.

Half are A/A (nothing happened), the rest add 2%, 5% or 10% to the treated geos' revenue over a 28-day window.
The panel is the simulator's realized daily net revenue per geo (Poisson orders, order-value spread, weather,
promotions, national seasonality), before the simulator's own deployment and without the lift-test geo, with a
slow AR(1) demand swing per geo on top (phi 0.7, sd 4%). Each deployment is audited by the synthetic control exactly
as the audit asset does it (NUTS posterior, placebos in space and time, verdict), with nutpie reusing one compiled
model per shape. Reported: 90%-interval coverage of the true increment, the A/A false-positive rate (verdict
improved or worse), power per effect size, seconds per audit, and the cross-check of the interval's width against
the spread of A/A point estimates.

    nice -n 10 .venv/bin/python bench/bench_audit.py [--deployments 100] [--seed 11] [--orders 60]
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
logging.getLogger("pymc").setLevel(logging.ERROR)

WINDOW_DAYS = 28
EFFECTS = (0.02, 0.05, 0.10)


def study_panel(seed: int, orders: float, folder: Path):
    from weathervane.simulate import simulate_tenant
    from weathervane.simulate.deployments import add_ar1_noise, revenue_panel

    truth = simulate_tenant("audit-bench", folder, seed=seed, days=600, n_geos=6, orders_per_geo_day=orders,
                            grain=("all", "region"))
    panel = revenue_panel(truth)
    panel = panel.drop(columns=sorted({lt.geo_id for lt in truth.lift_tests}))
    panel = panel.loc[panel.index < date.fromisoformat(truth.deployment.start_date)]
    return add_ar1_noise(panel, phi=0.7, sd=0.04, rng=np.random.default_rng(seed))


def run(n: int, seed: int, orders: float) -> dict:
    from weathervane.audit.methods import AuditSettings, audit_intervention
    from weathervane.audit.panel import Intervention
    from weathervane.simulate.deployments import inject

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        panel = study_panel(seed, orders, Path(tmp))
    simulate_s = time.perf_counter() - t0
    settings = AuditSettings(sampler="nutpie", cross_check=False)
    rng = np.random.default_rng(seed + 1)
    geos = list(panel.columns)
    lo, hi = settings.pre_period_days + WINDOW_DAYS, len(panel) - WINDOW_DAYS
    rows = []
    for i in range(n):
        effect = 0.0 if i % 2 == 0 else EFFECTS[(i // 2) % len(EFFECTS)]
        treated = tuple(sorted(rng.choice(geos, size=1 + i % 4 // 2, replace=False)))
        s = int(rng.integers(lo, hi + 1))
        start, end = panel.index[s], panel.index[s + WINDOW_DAYS - 1]
        injected, known = inject(panel, f"study-{i}", treated, start, end, effect)
        iv = Intervention(known.deployment_id, None, start, end, treated)
        t = time.perf_counter()
        res = audit_intervention(injected, None, iv, [], settings, seed=seed * 1000 + i)[0]
        secs = time.perf_counter() - t
        row = {"effect": effect, "treated": list(treated), "start": str(start), "verdict": res.verdict,
               "truth": known.increment, "seconds": secs, "reason": res.reason}
        if res.effect is not None:
            p05, p50, p95 = np.quantile(res.effect, [0.05, 0.5, 0.95])
            row.update(p05=float(p05), median=float(p50), p95=float(p95), covered=bool(p05 <= known.increment <= p95),
                       placebo_p=res.placebo_p, pre_mape=res.pre_mape, rhat=res.posterior.max_rhat,
                       ess=res.posterior.min_ess_bulk, divergences=res.posterior.divergences)
        rows.append(row)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return summarize(rows, simulate_s)


def summarize(rows: list[dict], simulate_s: float) -> dict:
    ev = [r for r in rows if "covered" in r]
    aa = [r for r in rows if r["effect"] == 0.0]
    secs = np.array([r["seconds"] for r in rows])
    out = {
        "deployments": len(rows), "evaluable": len(ev),
        "not_evaluable": sorted({r["reason"] for r in rows if r["verdict"] == "not_evaluable"}),
        "coverage_90": round(float(np.mean([r["covered"] for r in ev])), 3),
        "coverage_90_by_effect": {str(e): round(float(np.mean([r["covered"] for r in ev if r["effect"] == e])), 3)
                                  for e in (0.0, *EFFECTS)},
        "aa_false_positive_rate": round(float(np.mean([r["verdict"] in ("improved", "worse") for r in aa])), 3),
        "aa_interval_excludes_zero": round(float(np.mean([not (r["p05"] <= 0 <= r["p95"]) for r in aa
                                                          if "p05" in r])), 3),
        "power_improved": {str(e): round(float(np.mean([r["verdict"] == "improved" for r in rows
                                                        if r["effect"] == e])), 3) for e in EFFECTS},
        "worse_when_effect_positive": int(sum(r["verdict"] == "worse" for r in rows if r["effect"] > 0)),
        "seconds_per_audit_mean": round(float(secs.mean()), 2),
        "seconds_per_audit_median": round(float(np.median(secs)), 2),
        "seconds_first_audits_incl_compile": [round(float(s), 1) for s in secs[:4]],
        "simulate_seconds": round(simulate_s, 1),
        "max_rhat": round(max(r["rhat"] for r in ev), 3),
        "min_ess_bulk": round(min(r["ess"] for r in ev), 1),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deployments", type=int, default=100)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--orders", type=float, default=60.0, help="orders per geo-day of the simulated brand")
    args = ap.parse_args()
    t0 = time.perf_counter()
    summary = run(args.deployments, args.seed, args.orders)
    summary["total_seconds"] = round(time.perf_counter() - t0, 1)
    print("SUMMARY " + json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
