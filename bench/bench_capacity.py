"""Capacity model: a weekly refresh of many tenants on N nodes, from measured per-step costs.

    .venv/bin/python bench/bench_capacity.py [--tenants 1000] [--mix small=0.6,default=0.4] [--cores 16]
        [--memory-gib 64] [--price 0.05] [--stretch 1] [--deadline-h 3] [--seed 0]

Input: bench/capacity_steps.json, written by bench/measure_steps.py: each step's CPU seconds and peak memory for a
launch of each tenant size, the step dependency graph and which steps write the warehouse.

The cluster it models is deploy/dagster.k8s.yaml: every run is one pod (K8sRunLauncher) that requests 2 cores and
6 GiB, one run per tenant at a time (the weekly schedule starts one run per tenant, all queued at 06:00, in a
seeded random order; the queue starts them first come first served as pods free up). Inside a pod the run's
steps go in dependency order on its 2 cores: the fit takes both (its 2 NUTS chains), any other step one, and the
steps that write the tenant's warehouse file one at a time (one writer per DuckDB file). A step lasts its measured
CPU seconds divided by the cores it holds, so a measurement on a busy machine does not inflate it; each run adds
a fixed pod start. Nodes are billed from 06:00 until the last run ends (the cluster scales back down after).
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "capacity_steps.json"
FIT_STEPS = frozenset({"mmm__weather_mmm"})  # 2 chains in parallel: the only step that uses 2 cores
POD_CORES = 2
POD_MEMORY_GIB = 6.0  # deploy/dagster.k8s.yaml's request
DEADLINE_S = 3 * 3600  # 06:00 start, Monday 09:00 deadline


@dataclass(frozen=True)
class Step:
    key: str
    cpu_s: float
    cores: int
    deps: tuple[str, ...]
    writes_warehouse: bool
    stretch: float = 1.0  # wall per CPU second on its cores: above 1 for I/O waits and the fit's serial start

    @property
    def seconds(self) -> float:
        return self.cpu_s / self.cores * self.stretch


@dataclass(frozen=True)
class Cluster:
    nodes: int
    cores: int = 16
    memory_gib: float = 64.0
    reserved_cores: float = 0.5  # kubelet and system daemons: a 16-core node allocates 15.5 cores to pods
    reserved_gib: float = 2.0
    pod_start_s: float = 20.0  # schedule the pod and start the run worker (image already on the node)
    price_per_core_hour: float = 0.05

    @property
    def pods_per_node(self) -> int:
        return max(0, min(int((self.cores - self.reserved_cores) // POD_CORES),
                          int((self.memory_gib - self.reserved_gib) // POD_MEMORY_GIB)))


def load_sizes(path: Path = TABLE, stretch: float = 1.0) -> dict[str, list[Step]]:
    """Tenant size -> its steps, from the measured table."""
    table = json.loads(path.read_text())
    graph = table["steps"]
    sizes = {}
    for size, run in table["sizes"].items():
        sizes[size] = [Step(key, float(run["steps"][key]["cpu_s"]), 2 if key in FIT_STEPS else 1,
                            tuple(graph[key]["deps"]), graph[key]["pool"] is not None, stretch)
                       for key in graph]
    return sizes


def pod_schedule(steps: list[Step], cores: int = POD_CORES) -> dict[str, tuple[float, float]]:
    """(start, end) of each step of one run in its pod: dependency order, `cores` cores, one warehouse writer.

    `steps` is in topological order; at every moment the earliest listed step that is ready and fits starts."""
    by_key = {s.key: s for s in steps}
    times: dict[str, tuple[float, float]] = {}
    running: list[tuple[float, str]] = []  # (end, key)
    now, free, writing = 0.0, cores, False
    while len(times) < len(steps):
        for s in steps:
            finished = all(d in times and times[d][1] <= now for d in s.deps)
            if s.key in times or not finished or s.cores > free or (s.writes_warehouse and writing):
                continue
            times[s.key] = (now, now + s.seconds)
            heapq.heappush(running, (now + s.seconds, s.key))
            free -= s.cores
            writing = writing or s.writes_warehouse
        if len(times) == len(steps):
            break
        if not running:
            raise ValueError("steps cannot all run: a dependency is missing or a step needs more cores than the pod")
        now, key = heapq.heappop(running)
        free += by_key[key].cores
        writing = writing and not by_key[key].writes_warehouse
    return times


@dataclass(frozen=True)
class Run:
    tenant: int
    size: str
    pod: int  # node * pods_per_node + slot
    start: float
    end: float


@dataclass(frozen=True)
class Result:
    cluster: Cluster
    runs: tuple[Run, ...]
    cpu_s: float  # measured CPU seconds of all steps of all runs

    @property
    def makespan_s(self) -> float:
        return max((r.end for r in self.runs), default=0.0)

    @property
    def core_hours(self) -> float:
        return self.cluster.nodes * self.cluster.cores * self.makespan_s / 3600

    @property
    def cost(self) -> float:
        return self.core_hours * self.cluster.price_per_core_hour

    @property
    def utilisation(self) -> float:
        return self.cpu_s / 3600 / self.core_hours if self.core_hours else 0.0

    @property
    def mean_wait_s(self) -> float:
        return sum(r.start for r in self.runs) / len(self.runs)

    @property
    def max_wait_s(self) -> float:
        return max(r.start for r in self.runs)


def tenant_mix(n: int, mix: dict[str, float], seed: int) -> list[str]:
    """`n` tenant sizes in the shares of `mix` (largest remainders), in a seeded random queue order."""
    total = sum(mix.values())
    exact = {k: n * v / total for k, v in mix.items()}
    counts = {k: math.floor(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: counts[k] - exact[k])[:n - sum(counts.values())]:
        counts[k] += 1
    tenants = [k for k in sorted(counts) for _ in range(counts[k])]
    random.Random(seed).shuffle(tenants)
    return tenants


def simulate(tenants: list[str], sizes: dict[str, list[Step]], cluster: Cluster) -> Result:
    """Runs queued at t=0 in `tenants` order, each started on the first pod slot that frees up."""
    pods = cluster.nodes * cluster.pods_per_node
    if pods == 0:
        raise ValueError(f"a node with {cluster.cores} cores and {cluster.memory_gib} GiB fits no run pod")
    run_s = {size: max(e for _, e in pod_schedule(steps).values()) for size, steps in sizes.items()}
    free = [(0.0, pod) for pod in range(pods)]
    runs = []
    for i, size in enumerate(tenants):
        start, pod = heapq.heappop(free)
        end = start + cluster.pod_start_s + run_s[size]
        runs.append(Run(i, size, pod, start, end))
        heapq.heappush(free, (end, pod))
    cpu = sum(s.cpu_s for size in tenants for s in sizes[size])
    return Result(cluster, tuple(runs), cpu)


def smallest_nodes(tenants: list[str], sizes: dict[str, list[Step]], deadline_s: float = DEADLINE_S,
                   **cluster) -> Result:
    """The smallest cluster (in nodes) whose refresh ends within `deadline_s`."""
    lo, hi = 1, 1
    while simulate(tenants, sizes, Cluster(hi, **cluster)).makespan_s > deadline_s:
        lo, hi = hi + 1, hi * 2
        if hi > 100_000:
            raise ValueError("no cluster size meets the deadline (one run is longer than the deadline)")
    while lo < hi:  # makespan never grows with more nodes (tests/test_capacity.py), so bisection is exact
        mid = (lo + hi) // 2
        if simulate(tenants, sizes, Cluster(mid, **cluster)).makespan_s <= deadline_s:
            hi = mid
        else:
            lo = mid + 1
    return simulate(tenants, sizes, Cluster(hi, **cluster))


def _hm(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", default=str(TABLE))
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--mix", default="small=0.6,default=0.4", help="share of each measured tenant size")
    ap.add_argument("--cores", type=int, default=16, help="cores per node")
    ap.add_argument("--memory-gib", type=float, default=64.0, help="memory per node")
    ap.add_argument("--price", type=float, default=0.05, help="price per core-hour (USD)")
    ap.add_argument("--pod-start-s", type=float, default=20.0)
    ap.add_argument("--deadline-h", type=float, default=3.0, help="hours from the 06:00 start to the deadline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stretch", type=float, default=1.0, help="each step's wall seconds per CPU second on its cores")
    args = ap.parse_args()
    sizes = load_sizes(Path(args.table), args.stretch)
    mix = {k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    tenants = tenant_mix(args.tenants, mix, args.seed)
    cluster = dict(cores=args.cores, memory_gib=args.memory_gib, price_per_core_hour=args.price,
                   pod_start_s=args.pod_start_s)
    for size, steps in sizes.items():
        sched = pod_schedule(steps)
        print(f"{size}: {sum(s.cpu_s for s in steps):.0f} CPU s, one run {max(e for _, e in sched.values()):.0f} s "
              f"in a {POD_CORES}-core pod; warehouse writers {sum(s.cpu_s for s in steps if s.writes_warehouse):.0f} s")
    counts = {k: tenants.count(k) for k in sorted(set(tenants))}
    best = smallest_nodes(tenants, sizes, args.deadline_h * 3600, **cluster)
    n = best.cluster.nodes
    print(f"{args.tenants} tenants {counts}, nodes of {args.cores} cores / {args.memory_gib:g} GiB "
          f"({best.cluster.pods_per_node} run pods each), ${args.price}/core-hour, start 06:00")
    print(f"smallest cluster finishing by {_hm(6 * 3600 + args.deadline_h * 3600)}: {n} nodes "
          f"(done {_hm(6 * 3600 + best.makespan_s)}, ${best.cost / args.tenants:.4f} per tenant)")
    print(f"{'nodes':>5} {'done at':>7} {'mean wait':>9} {'max wait':>8} {'util':>5} {'core-h':>7} {'cost':>8} "
          f"{'per tenant':>10}")
    for k in sorted({1, max(1, n // 4), max(1, n // 2), max(1, n - 1), n, n + 1, 2 * n, 4 * n}):
        r = simulate(tenants, sizes, Cluster(k, **cluster))
        print(f"{k:>5} {_hm(6 * 3600 + r.makespan_s):>7} {_hm(r.mean_wait_s):>9} {_hm(r.max_wait_s):>8} "
              f"{r.utilisation:>5.0%} {r.core_hours:>7.0f} {r.cost:>8.2f} {r.cost / args.tenants:>10.4f}"
              f"{'  <- smallest by the deadline' if k == n else ''}")
    writers = sum(s.cpu_s for size in tenants for s in sizes[size] if s.writes_warehouse)
    print(f"with one warehouse writer for the whole instance (pools.default_limit 1 over one shared file) the "
          f"writer steps alone take {writers / 3600:.1f} h end to end, whatever the node count")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
