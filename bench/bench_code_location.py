"""Code-location benchmark: import time, one tenant through the UI's default executor vs in-process, model file size.

    nice -n 10 .venv/bin/python bench/bench_code_location.py [--days 730] [--fit map|nuts] [--draws 500]
        [--skip-pipeline] [--skip-artefact] [--skip-weekly]

1. `import dagster_project.definitions` vs `import dagster` alone, each in a fresh interpreter (median of 3).
2. Every asset for one simulated tenant: `dagster asset materialize --select '*' --partition demo` (a subprocess
   per step, the multiprocess executor a UI user gets) vs the same assets in-process (`weathervane demo`'s path),
   on the same landing files, each into its own warehouse, with the same fit settings in both (default MAP: the
   fit is the same work in both arms, so a quick fit makes the ratio the strictest measure of the executor's
   overhead; `--fit nuts` for the demo's own NUTS fit). Each step's seconds are printed for both arms.
3. The saved model file of a daily and of a weekly NUTS fit at the demo's size (730 days, 6 geos, 3 channels,
   `--draws` x 2 chains), lean (weathervane.mmm.artefact) vs everything the fit holds (PyMC-Marketing's plain
   save). The file's size follows the draws and the data's shape; `--tune` only shortens the run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _import_seconds(module: str) -> tuple[float, float]:
    """(wall, CPU) seconds of a fresh interpreter importing `module`, medians of 3; CPU is steadier on a busy
    machine."""
    import resource

    walls, cpus = [], []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, cwd=ROOT)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def _env(tmp: Path, name: str, landing: Path) -> dict:
    env = dict(os.environ, WEATHERVANE_LANDING=str(landing), WEATHERVANE_WAREHOUSE=str(tmp / f"{name}.duckdb"),
               WEATHERVANE_MODEL_STORE=str(tmp / f"{name}-models"), WEATHERVANE_REPORTS=str(tmp / f"{name}-reports"),
               DAGSTER_HOME=str(tmp / f"{name}-home"))
    Path(env["DAGSTER_HOME"]).mkdir()
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


STEP_SECONDS = ("import sys; from dagster import DagsterInstance; i = DagsterInstance.get(); "
                "run = i.get_runs(limit=1)[0]; "
                "[print(f'{s.step_key}\\t{(s.end_time or s.start_time) - s.start_time:.1f}') "
                "for s in i.get_run_step_stats(run.run_id) if s.start_time]; print(f'status\\t{run.status.value}')")


def _steps(env: dict) -> dict[str, str]:
    """Seconds of each step of the instance's latest run, and the run's status."""
    out = subprocess.run([sys.executable, "-c", STEP_SECONDS], check=True, cwd=ROOT, env=env, capture_output=True,
                         text=True).stdout
    return dict(line.split("\t") for line in out.splitlines() if "\t" in line)


def _pipeline(tmp: Path, days: int, fit_settings: dict) -> tuple[float, float, dict, dict]:
    from weathervane.simulate import simulate_tenant

    landing = tmp / "landing"
    simulate_tenant("demo", landing, scenario="standard", seed=7, days=days, grain=("all", "region"))
    fit = {"ops": {"mmm__weather_mmm": {"config": fit_settings}}}
    (tmp / "fit.yaml").write_text(json.dumps(fit))

    env = _env(tmp, "inproc", landing)
    code = ("import sys; from dagster_project.cli import run_tenant_pipeline; "
            "r = run_tenant_pipeline('demo', run_config=__import__('json').load(open(sys.argv[1]))); "
            "sys.exit(0 if r.success else 1)")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(tmp / "fit.yaml")], cwd=ROOT, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    in_process = time.perf_counter() - started
    in_process_steps = _steps(env)

    env = _env(tmp, "default", landing)
    subprocess.run([sys.executable, "-c", "from dagster import DagsterInstance; "
                    "DagsterInstance.get().add_dynamic_partitions('tenants', ['demo'])"], check=True, env=env)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "dagster_project.definitions",
                    "--select", "*", "--partition", "demo", "--config", str(tmp / "fit.yaml")],
                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    default = time.perf_counter() - started
    return in_process, default, in_process_steps, _steps(env)


def _artefact(tmp: Path, period: str, draws: int, tune: int) -> tuple[float, float]:
    from weathervane.mmm import FitSettings
    from weathervane.mmm.artefact import save_lean
    from weathervane.mmm.data import prepare_model_data
    from weathervane.mmm.model import fit_mmm
    from weathervane.mmm.synthetic import synthetic_panel

    # the demo's history and geos (two years, six geos), three channels
    panel = synthetic_panel("demo", days=730, n_geos=6, period=period, seed=7)
    data = prepare_model_data(panel.model_input, panel.weather_daily, period)
    fit = fit_mmm(data, FitSettings(method="nuts", draws=draws, tune=tune, chains=2, holdout_weeks=0))
    full, lean = tmp / f"full-{period}.nc", tmp / f"lean-{period}.nc"
    fit.mmm.save(str(full))
    save_lean(fit.mmm, lean)
    return full.stat().st_size / 2**20, lean.stat().st_size / 2**20


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--fit", choices=["map", "nuts"], default="map", help="fit method in both pipeline arms")
    parser.add_argument("--draws", type=int, default=500, help="NUTS draws per chain (pipeline with --fit nuts, "
                                                               "model files)")
    parser.add_argument("--tune", type=int, default=None, help="NUTS tuning steps (default: --draws)")
    parser.add_argument("--skip-imports", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--skip-artefact", action="store_true")
    parser.add_argument("--skip-weekly", action="store_true", help="model file of the daily fit only")
    args = parser.parse_args()
    tune = args.draws if args.tune is None else args.tune

    if not args.skip_imports:
        for label, module in (("dagster", "dagster"), ("the code location", "dagster_project.definitions")):
            wall, cpu = _import_seconds(module)
            if module == "dagster":
                base_wall, base_cpu = wall, cpu
            print(f"import {label:18s} wall {wall:5.2f} s  CPU {cpu:5.2f} s   ratio to dagster alone: wall "
                  f"{wall / base_wall:.2f}  CPU {cpu / base_cpu:.2f}" + ("" if module == "dagster" else
                                                                         "   (target: ratio <= 3)"), flush=True)
    with tempfile.TemporaryDirectory(prefix="wv-bench-cl-") as d:
        tmp = Path(d)
        if not args.skip_pipeline:
            fit = {"period": "week", "method": args.fit}
            fit |= {"draws": args.draws, "tune": tune, "chains": 2} if args.fit == "nuts" else {}
            in_process, default, steps_in, steps_default = _pipeline(tmp, args.days, fit)
            label = f"NUTS {args.draws}+{tune} x 2" if args.fit == "nuts" else "MAP"
            for step in sorted(set(steps_in) | set(steps_default)):
                print(f"  {step:40s} in-process {steps_in.get(step, '-'):>8s}   default executor "
                      f"{steps_default.get(step, '-'):>8s}", flush=True)
            print(f"one tenant, every asset ({args.days} days, weekly {label} fit in both): in-process "
                  f"{in_process:6.1f} s   dagster asset materialize (default executor) {default:6.1f} s   "
                  f"ratio {default / in_process:.2f} (target <= 1.5)", flush=True)
        if not args.skip_artefact:
            for period in ("day",) if args.skip_weekly else ("day", "week"):
                full, lean = _artefact(tmp, period, args.draws, tune)
                print(f"{'daily' if period == 'day' else 'weekly'} fit model file (730 days x 6 geos x 3 channels, "
                      f"NUTS {args.draws} x 2 draws): everything {full:7.1f} MB   lean {lean:6.1f} MB   ratio "
                      f"{lean / full:.3f}" + ("   (target <= 50 MB)" if period == "day" else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
