"""Code-location benchmark: import time, one tenant through the UI's default executor vs in-process, model file size.

    .venv/bin/python bench/bench_code_location.py [--days 730] [--draws 500] [--skip-pipeline] [--skip-artefact]

1. `import dagster_project.definitions` vs `import dagster` alone, each in a fresh interpreter (median of 3).
2. Every asset for one simulated tenant: `dagster asset materialize --select '*'` (a subprocess per step, the
   multiprocess executor a UI user gets) vs the same assets in-process (`weathervane demo`'s path), on the same
   landing files, each into its own warehouse.
3. The saved model file of a daily fit at the demo's size, lean (weathervane.mmm.artefact) vs everything the
   fit holds (PyMC-Marketing's plain save).
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


def _pipeline(tmp: Path, days: int, draws: int) -> tuple[float, float]:
    from weathervane.simulate import simulate_tenant

    landing = tmp / "landing"
    simulate_tenant("demo", landing, scenario="standard", seed=7, days=days, grain=("all", "region"))
    fit = {"ops": {"mmm__weather_mmm": {"config": {"period": "week", "draws": draws, "tune": draws, "chains": 2}}}}
    (tmp / "fit.yaml").write_text(json.dumps(fit))

    env = _env(tmp, "inproc", landing)
    code = ("import sys; from dagster_project.cli import run_tenant_pipeline; "
            "r = run_tenant_pipeline('demo', run_config=__import__('json').load(open(sys.argv[1]))); "
            "sys.exit(0 if r.success else 1)")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(tmp / "fit.yaml")], check=True, cwd=ROOT, env=env)
    in_process = time.perf_counter() - started

    env = _env(tmp, "default", landing)
    subprocess.run([sys.executable, "-c", "from dagster import DagsterInstance; "
                    "DagsterInstance.get().add_dynamic_partitions('tenants', ['demo'])"], check=True, env=env)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "dagster_project.definitions",
                    "--select", "*", "--partition", "demo", "--config", str(tmp / "fit.yaml")],
                   check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    default = time.perf_counter() - started
    return in_process, default


def _artefact(tmp: Path, draws: int) -> tuple[float, float]:
    from weathervane.mmm import FitSettings
    from weathervane.mmm.artefact import save_lean
    from weathervane.mmm.data import prepare_model_data
    from weathervane.mmm.model import fit_mmm
    from weathervane.mmm.synthetic import synthetic_panel

    # the demo's history and geos (two years daily, six geos), three channels
    panel = synthetic_panel("demo", days=730, n_geos=6, period="day", seed=7)
    data = prepare_model_data(panel.model_input, panel.weather_daily, "day")
    fit = fit_mmm(data, FitSettings(method="nuts", draws=draws, tune=draws, chains=2, holdout_weeks=0))
    full, lean = tmp / "full.nc", tmp / "lean.nc"
    fit.mmm.save(str(full))
    save_lean(fit.mmm, lean)
    return full.stat().st_size / 2**20, lean.stat().st_size / 2**20


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--skip-artefact", action="store_true")
    args = parser.parse_args()

    for label, module in (("dagster", "dagster"), ("dagster + dagster-dbt", "dagster_dbt"),
                          ("the code location", "dagster_project.definitions")):
        wall, cpu = _import_seconds(module)
        if module == "dagster":
            base_wall, base_cpu = wall, cpu
        print(f"import {label:22s} wall {wall:5.2f} s  CPU {cpu:5.2f} s   ratio to dagster alone: wall "
              f"{wall / base_wall:.2f}  CPU {cpu / base_cpu:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="wv-bench-cl-") as d:
        tmp = Path(d)
        if not args.skip_pipeline:
            in_process, default = _pipeline(tmp, args.days, args.draws)
            print(f"one tenant, every asset ({args.days} days, weekly fit {args.draws}+{args.draws} x 2): in-process "
                  f"{in_process:6.1f} s   dagster asset materialize (default executor) {default:6.1f} s   "
                  f"ratio {default / in_process:.2f} (target <= 1.5)", flush=True)
        if not args.skip_artefact:
            full, lean = _artefact(tmp, args.draws)
            print(f"daily fit model file (730 days x 6 geos x 3 channels, {args.draws} x 2 draws): everything "
                  f"{full:7.1f} MB   lean {lean:6.1f} MB   ratio {lean / full:.3f} (target <= 50 MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
