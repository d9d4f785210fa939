"""The robustness matrix: worlds the model was not written for, through simulate -> ingest -> dbt -> fit.

    nice -n 10 .venv/bin/python bench/bench_robustness.py --label before after   # every world, seeds 0 and 1
    .venv/bin/python bench/bench_robustness.py --worlds reference paced_search --seeds 0
    .venv/bin/python bench/bench_robustness.py --render data/robustness/after.jsonl   # table from saved results
    .venv/bin/python bench/bench_robustness.py --curve-credit --worlds reference hill_s_curve hill_concave --seeds 0

One fit at a time (it runs for an hour or more on two cores: start it in the background). Each world × seed is
appended to <workdir>/<label>.jsonl as it finishes, so a long run can be read while it goes on and a rerun
skips what is done; the simulated warehouses are kept under <workdir>/inputs and reused by later runs (a
model change refits on the same inputs). Each world is fitted by production's fit step (fit_tenant_spec: the
model spec its sniff decides, the ladder, gate and holdout, no second set of settings); `--override key=value`
sets a model-spec field as a run's config would, to measure a candidate (label the results with --label).
The table (markdown) goes to stdout and to --table.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from weathervane.sniff.decide import MIN_LIVE_DAYS  # noqa: E402
from bench.robustness import (  # noqa: E402
    build_warehouse, curve_credit, load_results, markdown_table, pooled_summary, run_world, tenant_for,
)
from weathervane.simulate.worlds import MATRIX, WORLDS  # noqa: E402


def _overrides(items: list[str]) -> dict:
    import json

    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _inputs(args, world, seed) -> Path:
    """The simulated warehouse of a world, seed and size (a run at another length must not reuse it)."""
    return args.workdir / "inputs" / f"{args.days}d-{args.geos}g" / tenant_for(world, seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", nargs="*", default=[w.name for w in MATRIX], choices=sorted(WORLDS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    # at least the history the sniff asks of a live fit with weather terms (decide.MIN_LIVE_DAYS): 420 days fell one
    # day short, and every world was fitted without weather
    ap.add_argument("--days", type=int, default=MIN_LIVE_DAYS + 14)
    ap.add_argument("--geos", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=REPO / "data" / "robustness")
    ap.add_argument("--label", default="production", help="name of the results file (<label>.jsonl)")
    ap.add_argument("--override", nargs="*", default=[], help="model-spec fields for every fit, key=value (JSON)")
    ap.add_argument("--table", type=Path)
    ap.add_argument("--no-regret", action="store_true")
    ap.add_argument("--render", type=Path, help="print the table of a saved .jsonl and exit")
    ap.add_argument("--curve-credit", action="store_true",
                    help="no fits: per world and channel, the share of the true return the model's curve family "
                         "credits when fitted to the true contributions beside a free level (robustness.curve_credit)")
    args = ap.parse_args()
    if args.render:
        results = load_results(args.render)
        print(markdown_table(results) + "\n" + pooled_summary(results))
        return
    if args.curve_credit:
        from weathervane.simulate.truth import load_truth

        print("| world | seed | channel | credited / true | fitted lam | within-geo R2 | rms residual / mean |\n"
              "|---|---|---|---|---|---|---|")
        for seed in args.seeds:
            for name in args.worlds:
                world = WORLDS[name]
                truth_path, _ = build_warehouse(world, seed, _inputs(args, world, seed),
                                                days=args.days, n_geos=args.geos)
                truth = load_truth(truth_path)
                for c in truth.channels:
                    cc = curve_credit(truth, c)
                    print(f"| {name} | {seed} | {c} | {cc['credited']:.2f} | {cc['lam']:.2f} | {cc['r2']:.3f} | "
                          f"{cc['resid']:.3f} |")
        return

    os.environ.setdefault("PYTENSOR_FLAGS", f"compiledir={tempfile.mkdtemp(prefix='wv-pytensor-')}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    overrides = _overrides(args.override)
    label = args.label
    print(f"matrix {label}: {len(args.worlds)} worlds x seeds {args.seeds}, {args.days} days, {args.geos} geos; "
          f"production's fit step (model spec per world){', overrides ' + str(overrides) if overrides else ''}",
          flush=True)
    out = args.workdir / f"{label}.jsonl"
    for seed in args.seeds:
        for name in args.worlds:
            if (name, seed) in {(r.world, r.seed) for r in load_results(out)}:
                continue
            world = WORLDS[name]
            t0 = time.perf_counter()
            r = run_world(world, seed, _inputs(args, world, seed), overrides or None,
                          days=args.days, n_geos=args.geos, regret=not args.no_regret)
            with out.open("a") as f:
                f.write(r.to_json() + "\n")
            cov, n = r.coverage()
            reg = "n/a" if r.regret is None else r.regret.get("regret_plan_pct", r.regret.get("error"))
            print(f"[{label}] {name} seed {seed}: {r.status} in {time.perf_counter() - t0:.0f} s (spec {r.spec}, "
                  f"rung {r.ladder_rung}); median ROAS error {r.median_roas_error:.1%}, coverage {cov}/{n}, gate "
                  f"first try {r.passed_first_try}; regret: {reg}" + (f"; ERROR {r.error}" if r.error else ""),
                  flush=True)
    results = load_results(out)
    text = f"### {label}\n\n" + markdown_table(results) + "\n" + pooled_summary(results) + "\n"
    print(text)
    print(f"total {time.perf_counter() - t_all:.0f} s")
    if args.table:
        args.table.write_text(text)


if __name__ == "__main__":
    main()
