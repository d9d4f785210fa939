"""Backfill of several tenants side by side: a folder warehouse (one DuckDB file per tenant) through the UI's path.

    nice -n 5 .venv/bin/python bench/bench_backfill.py                    # 8 tenants, 435 days x 2 geos each
    .venv/bin/python bench/bench_backfill.py --tenants 3 --days 435 --geos 2

Simulated tenants land in a temporary landing folder; `weathervane ui` (what `make ui` runs: the webserver, the
daemon and the landing sensor) serves a local instance whose dagster.yaml is deploy/dagster.tenants.yaml (one run
per tenant, no instance-wide writer pool) over a warehouse folder. Once the sensor has registered every tenant, a
backfill of every asset over every tenant is launched through GraphQL's launchPartitionBackfill, what the UI's
*Materialize all → backfill* sends, with no run config; the default executor runs each run.

Printed: wall seconds from the launch to the last run's end; the machine's CPU seconds over that span (every
core's busy time from /proc/stat: on a quiet machine, the runs' own CPU) and the ratio wall / (CPU / cores), which
is 1.0 when the cores were never idle (the target is <= 1.3); steps that waited on a pool (none expected: a
tenant's writers only wait inside their own run); the most runs of different tenants at once; peak memory in use
(MemTotal - MemAvailable) above the start. Run it on a quiet machine: other work's CPU counts as the runs'.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORKSPACE = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError {
  ... on RepositoryLocation { repositories { assetNodes { assetKey { path } } } } } } } } }"""
PARTITIONS = """{ assetNodes(assetKeys: [{path: ["mmm", "weather_mmm"]}]) { partitionKeys } }"""
LAUNCH = """mutation Backfill($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename
  ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } ... on InvalidSubsetError { message } } }"""
STATUS = """query B($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status } ... on PythonError { message } } }"""
RUNS = """query R($id: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
  ... on Runs { results { runId status startTime endTime tags { key value } } } } }"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gql(port: int, query: str, variables: dict | None = None) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                 data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = json.loads(resp.read())
    if "errors" in body:
        raise RuntimeError(body["errors"])
    return body["data"]


def _until(what: str, probe, timeout: float, every: float = 3.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            got = probe()
        except OSError:
            got = None
        if got:
            return got
        time.sleep(every)
    raise SystemExit(f"bench_backfill: {what} did not happen in {timeout:.0f} s")


def _cpu_busy() -> float:
    """Seconds of busy CPU over all cores since boot (/proc/stat: everything but idle and iowait)."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    return (sum(parts) - parts[3] - parts[4]) / os.sysconf("SC_CLK_TCK")


def _mem_used() -> int:
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            info[k] = int(v.split()[0]) * 1024
    return info["MemTotal"] - info["MemAvailable"]


class MemoryPeak(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.start_used = self.peak = _mem_used()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(1.0):
            self.peak = max(self.peak, _mem_used())


def pool_waits(home: Path, run_ids: list[str]) -> int:
    """Steps that logged a wait on an instance pool (Dagster's 'blocked by limit for pool' engine event)."""
    code = ("import json, sys; from dagster import DagsterInstance; i = DagsterInstance.get(); "
            "print(sum(1 for r in json.loads(sys.argv[1]) for e in i.all_logs(r) "
            "if 'blocked by limit for pool' in (e.message or '')))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(run_ids)], env={**os.environ, "DAGSTER_HOME": str(home)},
                         capture_output=True, text=True, check=True, cwd=REPO)
    return int(out.stdout.strip().splitlines()[-1])


def most_tenants_at_once(runs: list[dict]) -> int:
    edges = sorted([(r["startTime"], 1) for r in runs if r["startTime"]] +
                   [(r["endTime"], -1) for r in runs if r["endTime"]], key=lambda e: (e[0], e[1]))
    now = best = 0
    for _, d in edges:
        now += d
        best = max(best, now)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tenants", type=int, default=8)
    ap.add_argument("--days", type=int, default=435)
    ap.add_argument("--geos", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--workdir", type=Path, help="kept after the run (default: a temporary folder, removed)")
    args = ap.parse_args()
    from weathervane.simulate import simulate_tenant

    tmp = args.workdir or Path(tempfile.mkdtemp(prefix="wv-backfill-"))
    landing, warehouse, home = tmp / "landing", tmp / "warehouse", tmp / "home"
    for d in (landing, warehouse, home):
        d.mkdir(parents=True, exist_ok=True)  # an existing warehouse folder: one DuckDB file per tenant
    tenants = [f"bf-{i + 1}" for i in range(args.tenants)]
    for i, t in enumerate(tenants):
        simulate_tenant(t, landing, seed=args.seed + i, days=args.days, n_geos=args.geos)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV",)}
    env.update(DAGSTER_HOME=str(home), WEATHERVANE_LANDING=str(landing), WEATHERVANE_WAREHOUSE=str(warehouse),
               WEATHERVANE_REPORTS=str(tmp / "reports"), WEATHERVANE_MODEL_STORE=str(tmp / "models"))
    port = _port()
    log = (tmp / "ui.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "dagster_project.cli", "ui", "--port", str(port), "--reports-port",
                             str(_port()), "--approvals-port", "0"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        entry = _until("the code location loading", lambda: next(
            (e for e in _gql(port, WORKSPACE)["workspaceOrError"].get("locationEntries") or []
             if e["loadStatus"] == "LOADED"), None), 600)
        keys = [a["assetKey"]["path"] for a in entry["locationOrLoadError"]["repositories"][0]["assetNodes"]]
        _until("the landing sensor registering every tenant", lambda: set(tenants) <= set(
            (_gql(port, PARTITIONS)["assetNodes"] or [{}])[0].get("partitionKeys") or []), 300)
        print(f"{len(tenants)} tenants ({args.days} days x {args.geos} geos) registered; instance "
              f"{(home / 'dagster.yaml').read_text().count('applyLimitPerUniqueValue')} per-tenant run limit(s)",
              flush=True)
        mem = MemoryPeak()
        mem.start()
        cpu0, t0 = _cpu_busy(), time.time()
        out = _gql(port, LAUNCH, {"p": {"partitionNames": tenants, "assetSelection": [{"path": k} for k in keys],
                                        "fromFailure": False}})["launchPartitionBackfill"]
        if out["__typename"] != "LaunchBackfillSuccess":
            raise SystemExit(f"bench_backfill: the backfill was refused: {out}")
        bid = out["backfillId"]

        def done():
            status = _gql(port, STATUS, {"id": bid})["partitionBackfillOrError"].get("status")
            runs = _gql(port, RUNS, {"id": bid})["runsOrError"]["results"]
            finished = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
            if status in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED") and \
                    len(finished) == len(runs) and runs:
                return runs
            return None

        runs = _until("the backfill finishing", done, args.timeout, every=5)
        wall = max(r["endTime"] for r in runs) - t0
        cpu = _cpu_busy() - cpu0
        mem.stop.set()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    cores = os.cpu_count() or 1
    by_tenant = {}
    for r in runs:
        tenant = next(t["value"] for t in r["tags"] if t["key"] == "dagster/partition")
        by_tenant.setdefault(tenant, []).append(r)
    waits = pool_waits(home, [r["runId"] for r in runs])
    print(f"runs: {len(runs)} ({sum(r['status'] == 'SUCCESS' for r in runs)} succeeded) over {len(by_tenant)} tenants")
    for t, rs in sorted(by_tenant.items()):
        print(f"  {t}: " + ", ".join(f"{r['status'].lower()} {r['endTime'] - r['startTime']:.0f} s "
                                     f"(started at +{r['startTime'] - t0:.0f} s)" for r in rs))
    print(f"wall {wall:.0f} s; CPU {cpu:.0f} s on {cores} cores; wall / (CPU / cores) = {wall / (cpu / cores):.2f} "
          f"(target <= 1.3); pool waits {waits}; most tenants running at once {most_tenants_at_once(runs)}; "
          f"peak memory +{(mem.peak - mem.start_used) / 2**30:.2f} GiB; load {open('/proc/loadavg').read().split()[:3]}")
    print(f"files kept in {tmp}" if args.workdir else f"(temporary files in {tmp})")
    return 0 if all(r["status"] == "SUCCESS" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
