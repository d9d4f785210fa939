"""The capacity model (bench/bench_capacity.py): its schedules keep the pipeline's constraints and its sums add up."""
from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import yaml

from bench.bench_capacity import (
    POD_CORES,
    POD_MEMORY_GIB,
    TABLE,
    Cluster,
    Step,
    load_sizes,
    pod_schedule,
    simulate,
    smallest_nodes,
    tenant_mix,
)

# a launch's shape: ingest writes, two independent readers, the 2-core fit, a writer after it
TOY = [Step("ingest", 10, 1, (), True), Step("check", 30, 1, ("ingest",), False),
       Step("audit", 20, 1, ("ingest",), False), Step("fit", 100, 2, ("check", "audit"), False),
       Step("plan", 8, 1, ("fit",), True), Step("report", 6, 1, ("fit",), True)]


@pytest.fixture(scope="module")
def sizes():
    return load_sizes(TABLE) if TABLE.exists() else {"toy": TOY}


def _overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]


def _check_pod(steps, times):
    assert set(times) == {s.key for s in steps}
    for s in steps:
        start, end = times[s.key]
        assert end - start == pytest.approx(s.cpu_s / s.cores * s.stretch)
        for d in s.deps:
            assert times[d][1] <= start, (d, s.key)  # dependency order
    # at any step start: the cores in use fit the pod and at most one step writes the tenant's warehouse file
    for t in {v[0] for v in times.values()}:
        live = [s for s in steps if times[s.key][0] <= t < times[s.key][1]]
        assert sum(s.cores for s in live) <= POD_CORES
        assert sum(s.writes_warehouse for s in live) <= 1


def test_steps_of_a_run_keep_dependency_order_cores_and_one_writer(sizes):
    for steps in [TOY, *sizes.values()]:
        _check_pod(steps, pod_schedule(steps))


def test_independent_one_core_steps_share_the_pod_and_the_fit_takes_it_whole():
    times = pod_schedule(TOY)
    assert _overlap(times["check"], times["audit"])
    assert not any(_overlap(times["fit"], times[k]) for k in times if k != "fit")
    assert not _overlap(times["plan"], times["report"])  # both write the warehouse
    assert max(e for _, e in times.values()) == pytest.approx(10 + 30 + 50 + 8 + 6)


def test_runs_on_one_pod_never_overlap_and_every_tenant_runs_once(sizes):
    tenants = tenant_mix(120, {k: 1 for k in sizes}, seed=3)
    result = simulate(tenants, sizes, Cluster(2, cores=8, memory_gib=32))
    assert sorted(r.tenant for r in result.runs) == list(range(120))
    assert {r.pod for r in result.runs} == set(range(2 * 3))  # 7.5 allocatable cores: 3 pods of 2 per node
    for pod, runs in itertools.groupby(sorted(result.runs, key=lambda r: (r.pod, r.start)), key=lambda r: r.pod):
        runs = list(runs)
        assert all(a.end <= b.start for a, b in zip(runs, runs[1:]))


def test_more_nodes_never_finish_later(sizes):
    tenants = tenant_mix(300, {k: i + 1 for i, k in enumerate(sizes)}, seed=0)
    ends = [simulate(tenants, sizes, Cluster(n)).makespan_s for n in range(1, 16)]
    assert all(b <= a for a, b in zip(ends, ends[1:]))
    assert ends[-1] < ends[0]


def test_cost_is_core_hours_times_price_and_cpu_fits_in_them(sizes):
    tenants = tenant_mix(200, {k: 1 for k in sizes}, seed=1)
    r = simulate(tenants, sizes, Cluster(3, cores=16, price_per_core_hour=0.07))
    assert r.core_hours == pytest.approx(3 * 16 * r.makespan_s / 3600)
    assert r.cost == pytest.approx(r.core_hours * 0.07)
    assert r.cpu_s == pytest.approx(sum(s.cpu_s for t in tenants for s in sizes[t]))
    assert 0 < r.utilisation <= 1


def test_smallest_cluster_meets_the_deadline_and_one_node_less_does_not(sizes):
    tenants = tenant_mix(400, {k: 1 for k in sizes}, seed=2)
    deadline = 1.5 * 3600
    best = smallest_nodes(tenants, sizes, deadline)
    assert best.makespan_s <= deadline
    if best.cluster.nodes > 1:
        assert simulate(tenants, sizes, Cluster(best.cluster.nodes - 1)).makespan_s > deadline


def test_mix_has_the_stated_shares_and_the_same_seed_gives_the_same_queue():
    tenants = tenant_mix(1000, {"small": 0.6, "default": 0.4}, seed=0)
    assert (tenants.count("small"), tenants.count("default")) == (600, 400)
    assert tenant_mix(1000, {"small": 0.6, "default": 0.4}, seed=0) == tenants
    assert tenant_mix(1000, {"small": 0.6, "default": 0.4}, seed=1) != tenants
    assert len(tenant_mix(7, {"a": 1, "b": 1, "c": 1}, seed=0)) == 7


def test_memory_can_bound_the_pods_on_a_node():
    assert Cluster(1, cores=16, memory_gib=64).pods_per_node == 7
    assert Cluster(1, cores=16, memory_gib=16).pods_per_node == 2  # (16 - 2) GiB // 6 GiB
    with pytest.raises(ValueError, match="fits no run pod"):
        simulate(["toy"], {"toy": TOY}, Cluster(4, cores=1))


def test_slower_steps_need_more_nodes_but_use_the_same_cpu():
    sizes = load_sizes(TABLE) if TABLE.exists() else {"toy": TOY}
    slow = load_sizes(TABLE, stretch=1.5) if TABLE.exists() else {"toy": [replace(s, stretch=1.5) for s in TOY]}
    tenants = tenant_mix(300, {k: 1 for k in sizes}, seed=0)
    fast_r, slow_r = simulate(tenants, sizes, Cluster(2)), simulate(tenants, slow, Cluster(2))
    assert slow_r.makespan_s == pytest.approx(1.5 * fast_r.makespan_s, rel=0.02)
    assert slow_r.cpu_s == fast_r.cpu_s
    deadline = 2 * 3600
    nodes = [smallest_nodes(tenants, table, deadline).cluster.nodes for table in (sizes, slow)]
    assert nodes[1] >= nodes[0]


def test_the_modelled_run_pod_is_the_one_the_k8s_launcher_requests():
    from tests.conftest import REPO_ROOT

    config = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.k8s.yaml").read_text())
    requests = config["run_launcher"]["config"]["run_k8s_config"]["container_config"]["resources"]["requests"]
    assert float(requests["cpu"]) == POD_CORES
    assert requests["memory"] == f"{POD_MEMORY_GIB:g}Gi"
