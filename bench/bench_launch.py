"""Launch benchmark: a fresh brand through what the UI's *Materialize all* runs, with no run config.

    .venv/bin/python bench/bench_launch.py [--tenant beta] [--grain category,region] [--days 730] [--geos 6]

A simulated tenant at the simulator's default size is written to a temporary landing folder, registered as a
partition (what the landing sensor does), and `dagster asset materialize --select '*' --partition <tenant>` runs
it through the code location's default executor on a local instance: the same steps, settings and model spec a
data engineer gets. Printed: wall seconds in all and per step, the model spec, the ladder rung the fit chose,
every step's outcome, and whether the plan step ended in a plan or keep-the-split with its reason. The target is
a plan (or keep-the-split with its reason) within 600 s on 2 cores with every step succeeding.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TARGET_S = 600.0


def launch(tenant: str, tmp: Path, *, grain: tuple[str, str] | None, days: int, geos: int, seed: int) -> dict:
    from weathervane.simulate import simulate_tenant

    env = {**os.environ, "WEATHERVANE_LANDING": str(tmp / "landing"),
           "WEATHERVANE_WAREHOUSE": str(tmp / "warehouse.duckdb"), "WEATHERVANE_MODEL_STORE": str(tmp / "models"),
           "WEATHERVANE_REPORTS": str(tmp / "reports"), "DAGSTER_HOME": str(tmp / "dagster_home"),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    (tmp / "landing").mkdir(parents=True, exist_ok=True)
    (tmp / "dagster_home").mkdir(exist_ok=True)
    (tmp / "dagster_home" / "dagster.yaml").write_text((REPO / "deploy" / "dagster.yaml").read_text())
    simulate_tenant(tenant, tmp / "landing", seed=seed, days=days, n_geos=geos, grain=grain)
    register = ("from dagster import DagsterInstance; i = DagsterInstance.get(); "
                f"i.add_dynamic_partitions('tenants', [{tenant!r}])")
    subprocess.run([sys.executable, "-c", register], env=env, check=True, cwd=REPO)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "dagster_project.definitions",
                           "--select", "*", "--partition", tenant], env=env, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - started
    (tmp / "materialize.log").write_text(proc.stdout)
    return {"wall_s": wall, "rc": proc.returncode, **_outcome(tenant, env, proc.stdout)}


def _outcome(tenant: str, env: dict, log: str) -> dict:
    import re

    import duckdb

    steps = {}
    for m in re.finditer(r" - \d+ - (\S+) - STEP_(SUCCESS|FAILURE) - (?:.* in (\S+?)\.?$)?", log, re.M):
        steps[m.group(1)] = m.group(2) + (f" {m.group(3)}" if m.group(3) else "")
    con = duckdb.connect(env["WEATHERVANE_WAREHOUSE"], read_only=True)
    try:
        spec = con.execute("select field, value, source, status from ops.model_spec where tenant_id = ? order by 1",
                           [tenant]).fetchall()
        sel = con.execute("select model_id, ladder_rung, ladder_label, holdout_mape, reason from mmm.model_selection "
                          "where tenant_id = ?", [tenant]).fetchone()
        plan = con.execute("select plan_id, decision, prob_better, fallback_reason from decisions.plans "
                           "where tenant_id = ? order by created_at desc limit 1", [tenant]).fetchone()
        fits = con.execute("select model_id, period, ladder_rung, status, min_ess_bulk, max_rhat, divergences "
                           "from mmm.models where tenant_id = ? order by fitted_at", [tenant]).fetchall()
    finally:
        con.close()
    return {"steps": steps, "spec": spec, "selection": sel, "plan": plan, "fits": fits}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tenant", default="beta")
    ap.add_argument("--grain", default=None, help="pin product,geo in tenant.yaml (e.g. category,region)")
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--geos", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    grain = tuple(args.grain.split(",")) if args.grain else None
    tmp = Path(tempfile.mkdtemp(prefix="wv-launch-"))
    out = launch(args.tenant, tmp, grain=grain, days=args.days, geos=args.geos, seed=args.seed)
    failed = [k for k, v in out["steps"].items() if not v.startswith("SUCCESS")]
    print(f"tenant {args.tenant}, grain pin {grain}, {args.days} days x {args.geos} geos: "
          f"{out['wall_s']:.0f} s wall (target {TARGET_S:.0f} s, ratio {out['wall_s'] / TARGET_S:.2f}), "
          f"exit {out['rc']}, {len(out['steps'])} steps, failed: {failed or 'none'}")
    for step, outcome in sorted(out["steps"].items()):
        print(f"  step {step}: {outcome}")
    for field, value, source, status in out["spec"]:
        print(f"  spec {field} = {value} ({source}{', REFUSED' if status == 'refused' else ''})")
    for f in out["fits"]:
        print(f"  fit {f}")
    print(f"  selection: {out['selection']}")
    print(f"  plan: {out['plan']}")
    print(f"  log: {tmp / 'materialize.log'}")
    ok = out["rc"] == 0 and not failed and out["plan"] is not None
    print(json.dumps({"wall_s": round(out["wall_s"], 1), "ok": ok, "within_target": out["wall_s"] <= TARGET_S}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
