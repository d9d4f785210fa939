"""Step start-up under the multiprocess executor a UI run gets: spawn (a fresh interpreter per step, Dagster's default)
against forkserver with the code location preloaded (weathervane_executor's default).

    nice -n 10 .venv/bin/python bench/bench_step_startup.py [--tenant-fixture tests/fixtures/acme] [--repeat 1]

Each arm materializes the landing group (the ingest step and the sniff: short steps, so the runs are about
start-up) for the small fixture tenant through `dagster asset materialize` (the code location loaded from its
module, as the UI's code server does) into its own instance and warehouse. A step's start-up is the time from
the executor's STEP_WORKER_STARTING event to the step's STEP_START: the process start, the imports and the job's
reconstruction, before any of the step's own work. Printed per step with the median (target <= 3 s on an idle
machine) and the load average, since the machine may be shared.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARMS = {
    "spawn (before)": {"multiprocess": {"start_method": {"spawn": {}}}},
    "forkserver (default now)": {"multiprocess": {}},
}
STARTUPS = """
import json, sys
from dagster import DagsterEventType, DagsterInstance
i = DagsterInstance.get()
run = i.get_runs(limit=1)[0]
starting, started = {}, {}
for e in i.all_logs(run.run_id):
    d = e.dagster_event
    if d is None or not d.step_key:
        continue
    if d.event_type == DagsterEventType.STEP_WORKER_STARTING:
        starting.setdefault(d.step_key, e.timestamp)
    elif d.event_type == DagsterEventType.STEP_START:
        started.setdefault(d.step_key, e.timestamp)
print(json.dumps({"status": run.status.value,
                  "steps": {k: started[k] - starting[k] for k in started if k in starting}}))
"""


def _env(tmp: Path, name: str, landing: Path) -> dict:
    home = tmp / f"{name}-home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    return dict(os.environ, WEATHERVANE_LANDING=str(landing), WEATHERVANE_WAREHOUSE=str(tmp / f"{name}.duckdb"),
                WEATHERVANE_MODEL_STORE=str(tmp / f"{name}-models"), WEATHERVANE_REPORTS=str(tmp / f"{name}-reports"),
                DAGSTER_HOME=str(home),
                PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def _arm(tmp: Path, name: str, landing: Path, tenant: str, executor: dict) -> tuple[float, dict]:
    env = _env(tmp, name, landing)
    subprocess.run([sys.executable, "-c", "import sys; from dagster import DagsterInstance; "
                    "DagsterInstance.get().add_dynamic_partitions('tenants', [sys.argv[1]])", tenant],
                   check=True, env=env, cwd=ROOT)
    config = tmp / f"{name}.json"
    config.write_text(json.dumps({"execution": {"config": executor}}))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "dagster_project.definitions",
                    "--select", "group:landing", "--partition", tenant, "-c", str(config)],
                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    out = subprocess.run([sys.executable, "-c", STARTUPS], check=True, cwd=ROOT, env=env, capture_output=True,
                         text=True).stdout
    return wall, json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenant-fixture", default=str(ROOT / "tests" / "fixtures" / "acme"))
    parser.add_argument("--repeat", type=int, default=2, help="runs per arm; start-ups of all runs pooled")
    args = parser.parse_args()
    fixture = Path(args.tenant_fixture)
    tenant = fixture.name
    print(f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="wv-bench-startup-") as d:
        tmp = Path(d)
        landing = tmp / "landing"
        shutil.copytree(fixture, landing / tenant)
        medians = {}
        for label, executor in ARMS.items():
            startups: dict[str, list[float]] = {}
            walls = []
            for k in range(args.repeat):
                wall, result = _arm(tmp, f"{label.split()[0]}{k}", landing, tenant, executor)
                walls.append(wall)
                for step, s in result["steps"].items():
                    startups.setdefault(step, []).append(s)
                print(f"{label}: run {k + 1} {result['status']} in {wall:.1f} s", flush=True)
            for step, values in sorted(startups.items()):
                print(f"  {step:45s} start-up {statistics.median(values):6.2f} s", flush=True)
            pooled = [v for values in startups.values() for v in values]
            medians[label] = statistics.median(pooled) if pooled else float("nan")
            print(f"{label}: median step start-up {medians[label]:.2f} s over {len(pooled)} steps "
                  f"(target <= 3 s)", flush=True)
        before, after = medians.values()
        print(f"ratio forkserver / spawn: {after / before:.2f}; load average after: "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
