"""Per-step cost of one tenant's launch, measured: wall seconds, CPU seconds and peak memory of every step.

    nice -n 5 .venv/bin/python bench/measure_steps.py --size small --geos 2 [--days 730] [--out FILE]
    nice -n 5 .venv/bin/python bench/measure_steps.py --graph   # the step graph and pools only

Runs bench_launch.launch (a fresh simulated brand through `dagster asset materialize --select '*'`, the default
executor, no run config) while a sampler reads /proc every 0.2 s. Each step runs in its own process (the multiprocess
executor); the step's pid comes from its STEP_START event, and its cost is that process plus its descendants (the
NUTS chain processes, the dbt CLI): CPU = user + system time, children included once reaped; peak memory = the
largest sum of their resident sets at one sample (shared pages counted per process, so an upper bound). Wall = the
executor's STEP_WORKER_STARTING to STEP_SUCCESS/FAILURE, so the process start-up is in it. The load average is
sampled beside it: the machine may be shared, and CPU seconds are less sensitive to that than wall seconds.
The result is merged into --out under the tenant size's name, with the date and the machine.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

STEP_EVENTS = """
import json
from dagster import DagsterEventType, DagsterInstance
i = DagsterInstance.get()
run = i.get_runs(limit=1)[0]
steps = {}
for e in i.all_logs(run.run_id):
    d = e.dagster_event
    if d is None or not d.step_key:
        continue
    s = steps.setdefault(d.step_key, {})
    t = d.event_type
    if t == DagsterEventType.STEP_WORKER_STARTING:
        s.setdefault("worker_starting", e.timestamp)
    elif t == DagsterEventType.STEP_START:
        s["start"], s["pid"] = e.timestamp, d.pid
    elif t in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
        s["end"], s["status"] = e.timestamp, t.value
print(json.dumps({"run_status": run.status.value, "steps": steps}))
"""


def _proc_table() -> dict[int, tuple[int, float, int]]:
    """pid -> (ppid, cpu seconds incl. reaped children, resident bytes) for every live process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{name}/statm") as f:
                rss = int(f.read().split()[1]) * PAGE
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
        ppid = int(fields[1])
        cpu = sum(int(x) for x in fields[11:15]) / TICK  # utime, stime, cutime, cstime
        table[int(name)] = (ppid, cpu, rss)
    return table


class Sampler(threading.Thread):
    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval, self.samples, self.loads = interval, [], []
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            table = _proc_table()
            mine = {p for p in table if _descends(p, me, table)}
            self.samples.append({p: table[p] for p in mine})
            self.loads.append(os.getloadavg()[0])
            self.stop.wait(self.interval)


def _descends(pid: int, root: int, table: dict) -> bool:
    seen = 0
    while pid in table and seen < 64:
        if pid == root:
            return True
        pid, seen = table[pid][0], seen + 1
    return pid == root


def step_costs(samples: list[dict], pid: int) -> tuple[float, float]:
    """(CPU seconds, peak resident bytes) of `pid` and its descendants over the samples."""
    cpu = rss = 0.0
    for table in samples:
        tree = [p for p in table if _descends(p, pid, table)]
        cpu = max(cpu, sum(table[p][1] for p in tree))
        rss = max(rss, sum(table[p][2] for p in tree))
    return cpu, rss


def measure(size: str, *, days: int, geos: int, seed: int, tenant: str) -> dict:
    from bench_launch import launch

    tmp = Path(tempfile.mkdtemp(prefix=f"wv-capacity-{size}-"))
    sampler = Sampler()
    load_before = os.getloadavg()
    sampler.start()
    out = launch(tenant, tmp, grain=None, days=days, geos=geos, seed=seed)
    sampler.stop.set()
    sampler.join()
    env = {**os.environ, "DAGSTER_HOME": str(tmp / "dagster_home")}
    events = json.loads(subprocess.run([sys.executable, "-c", STEP_EVENTS], env=env, cwd=REPO, check=True,
                                       capture_output=True, text=True).stdout.strip().splitlines()[-1])
    steps = {}
    for key, s in sorted(events["steps"].items()):
        cpu, rss = step_costs(sampler.samples, s["pid"]) if s.get("pid") else (0.0, 0.0)
        begin = s.get("worker_starting", s.get("start"))
        steps[key] = {"wall_s": round(s["end"] - begin, 1) if "end" in s and begin else None,
                      "cpu_s": round(cpu, 1), "peak_rss_mib": round(rss / 2**20), "status": s.get("status")}
    loads = sampler.loads or [0.0]
    return {"tenant": tenant, "days": days, "geos": geos, "seed": seed, "run_status": events["run_status"],
            "plan": list(out["plan"]) if out["plan"] else None, "spec": [list(r) for r in out["spec"]],
            "run_wall_s": round(out["wall_s"], 1),
            "loadavg_1m": {"before": round(load_before[0], 2), "mean_during": round(sum(loads) / len(loads), 2),
                           "max_during": round(max(loads), 2)},
            "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version()},
            "steps": steps, "log": str(tmp / "materialize.log")}


def step_graph() -> dict[str, dict]:
    """Each step of the launch's job (`--select '*'`), the steps it waits for and its concurrency pool (None: it
    holds no warehouse slot), from Dagster's execution plan."""
    from dagster._core.execution.api import create_execution_plan

    from dagster_project.definitions import defs

    plan = create_execution_plan(defs.resolve_implicit_global_asset_job_def())
    return {s.key: {"deps": sorted(s.get_execution_dependency_keys()), "pool": s.pool}
            for s in plan.get_all_steps_in_topo_order()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--graph", action="store_true", help="only record the step dependency graph in --out")
    ap.add_argument("--size", help="name of the tenant size in the table (e.g. small, default)")
    ap.add_argument("--tenant", default=None)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--geos", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "bench" / "capacity_steps.json"))
    args = ap.parse_args()
    path = Path(args.out)
    table = json.loads(path.read_text()) if path.exists() else {}
    if args.graph:
        table["steps"] = step_graph()
        path.write_text(json.dumps(table, indent=1) + "\n")
        return 0
    if not args.size:
        ap.error("--size is required (or --graph)")
    result = measure(args.size, days=args.days, geos=args.geos, seed=args.seed, tenant=args.tenant or args.size)
    table = json.loads(path.read_text()) if path.exists() else {}  # re-read: a --graph run may have written it
    table.setdefault("sizes", {})[args.size] = {k: v for k, v in result.items() if k != "log"}  # a temp folder
    path.write_text(json.dumps(table, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0 if result["run_status"] == "SUCCESS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
