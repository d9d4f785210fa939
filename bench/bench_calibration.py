"""Calibration of the plan's claims: does P(beats keep-the-split) come true at its stated rate?

Each world × seed goes through the production path: simulate -> ingest (bad files quarantined) -> dbt build ->
the sniff's model spec -> `weathervane.mmm.fit_tenant_spec`, the fit step the Dagster asset runs (the spec, its
ladder, holdout score, gate and retry, no second set of settings) -> the plan
(`weathervane.allocate.build_plan` on the saved posterior, the tenant's planning settings, every guard on) -> the
plan, keep-the-split and the ±30% oracle valued under the world's TRUE response and horizon weather
(`weathervane.simulate.oracle.evaluate_world_decision`). Worlds: the robustness matrix and the trait worlds
(`weathervane.simulate.worlds.TRAIT_WORLDS`). The period, grain and weather terms are what each world's spec says.

    nohup nice -n 10 .venv/bin/python bench/bench_calibration.py --fit > /tmp/calibration.log 2>&1 &
    .venv/bin/python bench/bench_calibration.py --replan          # plan the stored fits again with today's rules
    .venv/bin/python bench/bench_calibration.py --report          # reliability table, losses, regret, timidity

Fits run one at a time, each in its own process (dbt and the fit open the warehouse differently); each run is
appended to <workdir>/fits.jsonl and its plan to <workdir>/plans.jsonl as it finishes, so the report can be read
while the bench goes on, and a rerun skips what is done. `--replan` values the stored models again without
refitting (a change of plan rules costs seconds per run, not a fit).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from weathervane.simulate.worlds import ALL_WORLDS, MATRIX, TRAIT_WORLDS  # noqa: E402
from weathervane.sniff.decide import MIN_LIVE_DAYS  # noqa: E402

WORKDIR = REPO / "data" / "calibration"
# two weeks past what the sniff needs to keep weather terms: shorter worlds would be judged without weather
DAYS, GEOS = MIN_LIVE_DAYS + 14, 3
# the trait worlds first, then the matrix: the new traits are what the plans were not tested on
ORDER = ("geo_parity_paced", "reference", "small_bad_files", "paced_search", "promo_flights", "small_no_tests",
         "revenue_budgets", "hidden_like", "hill_s_curve", "small_parity_paced", "weather_swapped", "q4_push",
         "media_heavy", "hard_corner", "slow_adstock", "hill_concave", "fast_adstock", "delayed_peak",
         "promo_in_heat", "no_weather", "media_light")
assert set(ORDER) == {w.name for w in MATRIX + TRAIT_WORLDS}
P_BANDS = ((0.8, 0.9), (0.9, 0.95), (0.95, 0.99), (0.99, 1.0001))
LOSS_LIMIT_PCT = 0.5  # of the oracle's incremental revenue
TIMID_GAP_PCT = 3.0
BIG_WEATHER_LOG = 0.2


def tenant_for(world: str, seed: int) -> str:
    return f"cb-{world.replace('_', '-')}-{seed}"


def run_dir(workdir: Path, world: str, seed: int) -> Path:
    return workdir / "runs" / f"{world}-{seed}"


def build_inputs(world_name: str, seed: int, workdir: Path) -> None:
    """simulate -> ingest -> dbt build in the run's folder (once)."""
    from weathervane.simulate import simulate_tenant
    from bench.robustness import DBT_SELECT_VERSION, START, harmonize_as_production, ingest_simulated

    world = ALL_WORLDS[world_name]
    folder = run_dir(workdir, world_name, seed)
    done = folder / "inputs.done"
    if done.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    tenant, landing, wh = tenant_for(world_name, seed), folder / "landing", folder / "warehouse.duckdb"
    if wh.exists():
        wh.unlink()
    truth = simulate_tenant(tenant, landing, seed=seed, days=world.days or DAYS, n_geos=world.n_geos or GEOS,
                            start=START, world=world, **world.simulate_kwargs())
    quarantined = ingest_simulated(wh, landing, tenant)
    if quarantined and not truth.bad_files:
        raise RuntimeError(f"{tenant}: ingest quarantined files of a world without bad ones: {quarantined[:3]}")
    harmonize_as_production(wh, folder, landing, tenant)  # dbt, the sniff's model spec, dbt at its grain
    done.write_text(f"{DBT_SELECT_VERSION} quarantined={len(quarantined)} bad_files={len(truth.bad_files)}\n")


def fit_run(world_name: str, seed: int, workdir: Path) -> dict:
    """The fit step production runs (the tenant's model spec and its ladder, as the Dagster asset calls it); the
    chosen model lands in the run's store and warehouse."""
    from weathervane import config
    from weathervane.mmm.pipeline import duckdb_connect, fit_tenant_spec
    from bench.robustness import WorldResult, score
    from weathervane.simulate.truth import load_truth

    folder = run_dir(workdir, world_name, seed)
    tenant = tenant_for(world_name, seed)
    landing = folder / "landing"
    cfg = config.load_tenant_config(landing, tenant)
    t0 = time.perf_counter()
    ladder, spec, _ = fit_tenant_spec(duckdb_connect(folder / "warehouse.duckdb"), tenant, cfg,
                                      store=folder / "models", reports=folder / "reports")
    seconds = time.perf_counter() - t0
    fitted = ladder.chosen
    if fitted is None:  # no rung passed: the plan reads the spec's own fit and keeps the split
        return dict(world=world_name, seed=seed, tenant_id=tenant, model_id=ladder.fallback_model_id,
                    status="failed_diagnostics", holdout_mape=None, fit_seconds=round(seconds, 1), diagnostics={},
                    roas={}, weather={}, needs_experiment=[], spec_period=spec.period)
    truth = load_truth(landing / f"{tenant}.truth.json")
    scored = score(WorldResult(world=world_name, seed=seed, tenant_id=tenant), truth,
                   fitted.frames["channel_summary"], fitted.frames["weather_effects"])
    return dict(world=world_name, seed=seed, tenant_id=tenant, model_id=fitted.model_id, status=fitted.status,
                holdout_mape=fitted.holdout_mape, fit_seconds=round(seconds, 1), diagnostics=fitted.diagnostics,
                roas=scored.roas, weather=scored.weather, needs_experiment=scored.needs_experiment,
                spec_period=spec.period, ladder_rung=(ladder.chosen_rung or 0) + 1)


def plan_run(fit: dict, workdir: Path) -> dict:
    """The production plan for the stored model, scored against the truth (every guard on, holdout included)."""
    import duckdb

    from weathervane.simulate.oracle import evaluate_world_decision

    folder = run_dir(workdir, fit["world"], fit["seed"])
    tenant = fit["tenant_id"]
    os.environ["WEATHERVANE_MODEL_STORE"] = str(folder / "models")
    os.environ["WEATHERVANE_WAREHOUSE"] = str(folder / "warehouse.duckdb")
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    try:
        out = evaluate_world_decision(con, tenant, folder / "landing" / f"{tenant}.truth.json", fit["model_id"],
                                      folder / "landing", store=folder / "models")
    finally:
        con.close()
    return {"world": fit["world"], "seed": fit["seed"], "fit_status": fit["status"],
            **{k: v for k, v in out.items() if isinstance(v, (int, float, str, bool, list, dict)) or v is None}}


def adopt(workdir: Path, results: Path, inputs: Path) -> int:
    """Take in the robustness matrix's runs (bench_robustness.py: the same simulate -> ingest -> dbt -> fit_tenant_spec
    path at the same length and geos) as fitted calibration runs, so a world x seed is fitted once for both benches."""
    have = {(f["world"], f["seed"]) for f in load(workdir / "fits.jsonl")}
    (workdir / "runs").mkdir(parents=True, exist_ok=True)
    n = 0
    for r in load(results):
        if (r["world"], r["seed"]) in have or not r.get("model_id"):
            continue
        src = inputs / r["tenant_id"]
        if not (src / "warehouse.duckdb").exists():
            print(f"{r['tenant_id']}: no run folder under {inputs}", flush=True)
            continue
        dst = run_dir(workdir, r["world"], r["seed"])
        if not dst.exists():
            dst.symlink_to(src.resolve(), target_is_directory=True)
        _append(workdir / "fits.jsonl", dict(
            world=r["world"], seed=r["seed"], tenant_id=r["tenant_id"], model_id=r["model_id"], status=r["status"],
            holdout_mape=None, fit_seconds=r.get("fit_seconds"), diagnostics={}, roas=r["roas"], weather=r["weather"],
            needs_experiment=r.get("needs_experiment", []), spec_period=(r.get("spec") or {}).get("period"),
            ladder_rung=r.get("ladder_rung"), adopted_from=str(results)))
        n += 1
    return n


def _append(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row, default=float) + "\n")


def load(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def one(world_name: str, seed: int, workdir: Path, stage: str) -> None:
    if stage == "inputs":
        build_inputs(world_name, seed, workdir)
        return
    fit = fit_run(world_name, seed, workdir)
    _append(workdir / "fits.jsonl", fit)
    try:
        row = plan_run(fit, workdir)
    except Exception as exc:  # a plan that cannot be made is a finding, recorded with the run
        row = {"world": world_name, "seed": seed, "fit_status": fit["status"], "error": f"{type(exc).__name__}: {exc}"}
    _append(workdir / "plans.jsonl", row)


def replan(workdir: Path, label: str) -> Path:
    out = workdir / f"plans-{label}.jsonl"
    done = {(r["world"], r["seed"]) for r in load(out)}
    for fit in load(workdir / "fits.jsonl"):
        if (fit["world"], fit["seed"]) in done:
            continue
        try:
            row = plan_run(fit, workdir)
        except Exception as exc:
            row = {"world": fit["world"], "seed": fit["seed"], "fit_status": fit["status"],
                   "error": f"{type(exc).__name__}: {exc}"}
        _append(out, row)
        print(f"{fit['world']} s{fit['seed']}: {row.get('decision')} P={row.get('prob_better')} "
              f"regret {row.get('regret_plan_pct')} / keep {row.get('regret_keep_split_pct')}", flush=True)
    return out


def report(plans: list[dict], fits: list[dict]) -> str:
    ok = [p for p in plans if "regret_plan_pct" in p]
    lines = [f"runs with a plan scored: {len(ok)} (of {len(plans)} recorded; fits {len(fits)}, "
             f"passed the gate {sum(f['status'] == 'ok' for f in fits)})", ""]
    proposed = [p for p in ok if p["decision"] == "plan"]

    def gain(p):  # the plan's true lift over keep-the-split, % of the oracle's value
        return p["regret_keep_split_pct"] - p["regret_plan_pct"]

    lines += ["| claimed P(better) | plans | realised wins | realised rate | mean claimed |", "|---|---|---|---|---|"]
    for lo, hi in P_BANDS:
        band = [p for p in proposed if lo <= p["prob_better"] < hi]
        wins = sum(gain(p) > 0 for p in band)
        lines.append(f"| [{lo:.2f}, {min(hi, 1):.2f}{')' if hi < 1 else ']'} | {len(band)} | {wins} | "
                     + (f"{wins / len(band):.0%}" if band else "–") + " | "
                     + (f"{np.mean([p['prob_better'] for p in band]):.2f}" if band else "–") + " |")
    losses = sorted(gain(p) for p in proposed)
    lines += ["", f"proposed plans: {len(proposed)} of {len(ok)}; keep-the-split: {len(ok) - len(proposed)}"]
    if losses:
        lines.append("true gain of proposed plans over keep-the-split (% of the oracle): min {:.2f}, 5% {:.2f}, "
                     "median {:.2f}, max {:.2f}".format(losses[0], np.quantile(losses, 0.05), np.median(losses),
                                                        losses[-1]))
        bad = [p for p in proposed if gain(p) < -LOSS_LIMIT_PCT]
        lines.append(f"plans losing to keep-the-split by more than {LOSS_LIMIT_PCT}% of the oracle: {len(bad)} "
                     + ", ".join(f"{p['world']} s{p['seed']} ({gain(p):.2f})" for p in bad))
        lines.append("plans losing at all: " + (", ".join(f"{p['world']} s{p['seed']} ({gain(p):.2f})"
                                                      for p in proposed if gain(p) < 0) or "none"))
        claimed = [p for p in proposed if "expected_lift_p05" in p]
        below = [p for p in claimed if p["value_plan"] - p["value_keep_split"] < p["expected_lift_p05"]]
        lines.append(f"true lift below the plan's claimed 5% quantile: {len(below)} of {len(claimed)} plans")
    if ok:
        regrets = [p["regret_plan_pct"] for p in ok]
        lines.append(f"median regret of the proposal (plan or keep-the-split): {np.median(regrets):.2f}% "
                     f"(keep-the-split: {np.median([p['regret_keep_split_pct'] for p in ok]):.2f}%)")
    room = [p for p in ok if p["regret_keep_split_pct"] >= TIMID_GAP_PCT]
    if room:
        lines.append(f"timidity: where the oracle beats keep-the-split by >= {TIMID_GAP_PCT}%, a plan is proposed in "
                     f"{sum(p['decision'] == 'plan' for p in room)} of {len(room)} runs")
    big = [w for f in fits for w in f.get("weather", {}).values()
           if abs(np.log(w["true"])) >= BIG_WEATHER_LOG - 1e-6]  # the truth's -0.2 is 0.2 less rounding
    if big:
        lines.append(f"weather effects with |log multiplier| >= {BIG_WEATHER_LOG}: 90% interval covers "
                     f"{sum(w['covered'] for w in big)} of {len(big)}")
    wm = [p for p in ok if "weather_not_applied" in p]
    if wm:
        left = [x for p in wm for x in p["weather_not_applied"]]
        lo = min(p["weather_multiplier_range"][0] for p in wm)
        hi = max(p["weather_multiplier_range"][1] for p in wm)
        lines.append(f"weather effects left out of the plan (90% interval includes 1): {len(left)} in "
                     f"{sum(bool(p['weather_not_applied']) for p in wm)} of {len(wm)} plans; plan-line weather "
                     f"multipliers applied range {lo:.2f}-{hi:.2f}")
        kept = [p for p in wm if p.get("geo_split_kept")]
        lines.append(f"plans keeping a channel's geo split (no evidence about the geo difference): {len(kept)} of "
                     f"{len(wm)}")
    lines += ["", "| world | seed | fit | decision | P(better) | plan | keep | gain | why kept |",
              "|---|---|---|---|---|---|---|---|---|"]
    for p in plans:
        if "regret_plan_pct" not in p:
            lines.append(f"| {p['world']} | {p['seed']} | {p.get('fit_status')} | error | | | | | "
                         f"{str(p.get('error'))[:80]} |")
            continue
        lines.append(f"| {p['world']} | {p['seed']} | {p['fit_status']} | {p['decision']} | {p['prob_better']:.2f} | "
                     f"{p['regret_plan_pct']:.2f} | {p['regret_keep_split_pct']:.2f} | {gain(p):+.2f} | "
                     f"{(p.get('fallback_reason') or '')[:90]} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fit", action="store_true", help="fit and plan every world x seed not yet done")
    ap.add_argument("--replan", action="store_true", help="plan the stored fits again (plans-<label>.jsonl)")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--label", default="replan")
    ap.add_argument("--worlds", nargs="*", default=list(ORDER), choices=sorted(ALL_WORLDS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--workdir", type=Path, default=WORKDIR)
    ap.add_argument("--plans", type=Path, help="plans file for --report (default: plans.jsonl)")
    ap.add_argument("--channel-sd", type=float, help="--replan with this model-error allowance (channel part)")
    ap.add_argument("--geo-sd", type=float, help="--replan with this model-error allowance (geo part)")
    ap.add_argument("--adopt", nargs=2, type=Path, metavar=("RESULTS_JSONL", "INPUTS_DIR"),
                    help="take in bench_robustness.py's fitted runs (its --out file and its inputs folder)")
    ap.add_argument("--shape-sd", type=float, help="--replan with this curvature allowance (safety.MISSPEC_SHAPE_SD)")
    ap.add_argument("--one", nargs=3, metavar=("WORLD", "SEED", "STAGE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.adopt:
        print(f"adopted {adopt(args.workdir, *args.adopt)} fitted runs", flush=True)
    if args.one:
        one(args.one[0], int(args.one[1]), args.workdir, args.one[2])
        return
    if args.fit:
        for seed in args.seeds:
            for world in args.worlds:
                if any(f["world"] == world and f["seed"] == seed for f in load(args.workdir / "fits.jsonl")):
                    continue
                t0 = time.time()
                for stage in ("inputs", "fit"):
                    rc = subprocess.call([sys.executable, __file__, "--workdir", str(args.workdir), "--one", world,
                                          str(seed), stage])
                    if rc:
                        print(f"{world} s{seed}: {stage} failed (exit {rc})", flush=True)
                        _append(args.workdir / "plans.jsonl", {"world": world, "seed": seed, "fit_status": "error",
                                                               "error": f"{stage} exited {rc}"})
                        break
                print(f"{world} s{seed}: {time.time() - t0:.0f} s", flush=True)
    if args.replan:
        from weathervane.allocate import safety

        if args.channel_sd is not None:
            safety.MISSPEC_CHANNEL_LOG_SD = args.channel_sd
        if args.geo_sd is not None:
            safety.MISSPEC_GEO_LOG_SD = args.geo_sd
        if args.shape_sd is not None:
            safety.MISSPEC_SHAPE_SD = args.shape_sd
        args.plans = replan(args.workdir, args.label)
    if args.report or args.replan:
        print(report(load(args.plans or args.workdir / "plans.jsonl"), load(args.workdir / "fits.jsonl")))


if __name__ == "__main__":
    main()
