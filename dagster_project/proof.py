"""`weathervane proof`: sniff a tenant, choose live or synthetic, run its pipeline through Dagster (recorded in the
local instance, so every run shows in the UI), and write the brand proof report."""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from weathervane import config


FAILED_PREFIX = "failed steps: "
CHILD_GRACE_S = 20.0  # how long an interrupted job may take to record its run as failed


def run_job(tenant_id: str, job_name: str, run_config: dict | None = None) -> list[str]:
    """Run one job for one tenant through Dagster in a child process, recorded in the local instance; the steps
    that failed. A fresh process per job: a run leaves no warehouse connection behind in this one."""
    import json
    import subprocess
    import sys

    tenant_id = config.validate_tenant_id(tenant_id)
    cmd = [sys.executable, "-m", "dagster_project.proof", job_name, tenant_id, json.dumps(run_config or {})]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    with _stopping_child_on_sigterm(proc):
        out, _ = proc.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith(FAILED_PREFIX)]
    if lines:
        return json.loads(lines[-1][len(FAILED_PREFIX):])
    return [] if proc.returncode == 0 else [f"{job_name} exited with status {proc.returncode}"]


@contextmanager
def _stopping_child_on_sigterm(proc, grace_s: float = CHILD_GRACE_S):
    """While the child runs, a SIGTERM to this process (or Ctrl-C) stops the child first: interrupted (so its run
    is marked failed in the instance), then terminated, then killed. Without it the child would outlive us and
    die later writing to a closed pipe."""
    import signal
    import subprocess
    import threading

    def stop_child():
        for send, wait in ((lambda: proc.send_signal(signal.SIGINT), grace_s), (proc.terminate, 5.0)):
            if proc.poll() is not None:
                return
            send()
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_term) if main else None
    try:
        yield
    except BaseException:
        stop_child()
        raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def sniff_run(tenant_id: str) -> list[str]:
    """Ingest, harmonize and sniff one tenant through Dagster (sniff_job); the steps that failed."""
    return run_job(tenant_id, "sniff_job")


def current_sniff(tenant_id: str):
    """The tenant's sniff, recomputed read-only from what the sniff job loaded (same data, same decisions)."""
    from weathervane.sniff import sniff_tenant

    cfg = config.load_tenant_config(config.landing_root(), tenant_id)
    con = _open(tenant_id)
    try:
        return sniff_tenant(con, tenant_id, cfg)
    finally:
        con.close()


def _open(tenant_id: str):
    """The tenant's warehouse file, read-only (its own file in a folder warehouse)."""
    from weathervane.warehouse import connect_tenant

    return connect_tenant(config.warehouse_path(), tenant_id, read_only=True, lock_wait_s=60.0)


def run_proof(tenant_id: str, *, period: str | None = None, draws: int | None = None, chains: int | None = None,
              method: str | None = None, seed: int | None = None, twin_days: int | None = None,
              say=print) -> tuple[object, Path]:
    """Sniff -> (twin | gap fill | live) -> refresh_job -> proof report. Returns (ProofRun, path).

    The pipeline runs as the UI's Materialize all does: the modelled tenant's sniff decides its model spec, and
    only the arguments given here override it for this run. `twin_days` shortens the synthetic twin's history
    (tests); by default it is long enough for a holdout."""
    from weathervane.proof import ProofRun, fill_gaps, write_proof_report
    from weathervane.reports import truth_file as rp_truth
    from weathervane.sniff import GAPS, TWIN

    tenant = config.validate_tenant_id(tenant_id)
    landing = config.landing_root()
    cfg = config.load_tenant_config(landing, tenant)
    fit = {k: v for k, v in {"method": method, "period": period, "draws": draws, "tune": draws, "chains": chains,
                             "seed": seed}.items() if v is not None}
    run = ProofRun(tenant_id=tenant, model_tenant=tenant, mode="", period=period or "", fit=fit)

    def step(name: str, fn):
        say(f"→ {name}")
        started = time.perf_counter()
        out, outcome = fn()
        run.steps.append((name, time.perf_counter() - started, outcome))
        say(f"  {outcome} ({run.steps[-1][1]:.0f}s)")
        return out

    def sniff_step():
        failed = sniff_run(tenant)
        if failed:
            run.problems.append(f"the sniff run of {tenant} had failing steps: {', '.join(failed)}")
        return failed, "finished with failures: " + ", ".join(failed) if failed else "ok"

    step(f"ingest, harmonize and sniff {tenant} (Dagster run)", sniff_step)
    sniff = current_sniff(tenant)
    d = sniff.decisions
    run.mode = d.mode.value
    for dec in d.all():
        say(f"  {dec.name}: {dec.value} — {dec.reason}")
    if run.mode == TWIN:
        twin = sniff.twin
        if twin_days:
            twin.days = twin_days
        step(f"simulate the synthetic twin {twin.tenant_id}",
             lambda: (twin.simulate(landing), f"{twin.n_geos} geos, {', '.join(twin.channels)}, {twin.days} days"))
        run.model_tenant = twin.tenant_id
        run.truth_path = str(landing / f"{twin.tenant_id}.truth.json")
    elif run.mode == GAPS:
        def gaps():
            con = _open(tenant)
            try:
                filled, written = fill_gaps(con, landing, sniff.profile, cfg.planning.horizon_days)
            finally:
                con.close()
            return filled, f"{filled}: " + ("; ".join(written) or "nothing to fill")
        run.model_tenant = step(f"fill the gaps of {tenant} (copy as a tenant of its own)", gaps)

    elif rp_truth(tenant, landing) is not None:  # a simulated tenant run live (the demo): its truth is known
        run.truth_path = str(rp_truth(tenant, landing))

    run_config = {"ops": {"mmm__weather_mmm": {"config": fit}}} if fit else {}

    def pipeline():
        failed = run_job(run.model_tenant, "refresh_job", run_config)
        if failed:
            run.problems.append(f"pipeline steps that failed for {run.model_tenant}: {', '.join(failed)}")
        return failed, "finished with failures: " + ", ".join(failed) if failed else "ok"

    step(f"run the pipeline for {run.model_tenant} at its model spec (Dagster run)", pipeline)
    con = _open(run.model_tenant)
    try:
        from weathervane.mmm.store import selected_model
        from weathervane.spec import read_spec

        spec = read_spec(con, run.model_tenant)
        chosen = selected_model(con, run.model_tenant)
    finally:
        con.close()
    if spec is not None:
        run.period = spec.period
        for line in spec.describe():
            say(f"  model spec {line}")
    if chosen is None:
        run.problems.append(f"no model was fitted for {run.model_tenant}: the pipeline's fit step did not run "
                            "or failed before fitting (see the failed steps above)")
    elif chosen.model_id is None:
        run.problems.append(f"no model of {run.model_tenant} passed its diagnostics gate: {chosen.reason}")
    run.model_fitted = chosen is not None and chosen.model_id is not None

    def write_report() -> Path:
        from weathervane.warehouse import tenant_path

        con = _open(run.model_tenant)
        # a folder warehouse keeps a twin in its own file: the sniff is read from the sniffed tenant's
        apart = tenant_path(config.warehouse_path(), tenant) != tenant_path(config.warehouse_path(), run.model_tenant)
        sniff_con = _open(tenant) if apart else None
        try:
            return write_proof_report(con, run, config.reports_dir(), cfg.currency, cfg.kpi,
                                      cfg.planning.max_change_pct, sniff_con=sniff_con)
        finally:
            con.close()
            if sniff_con is not None:
                sniff_con.close()

    def report():
        path = write_report()
        return path, str(path)

    # the report shows its own timing: write it once to time it, then again with every step counted
    step("write the brand proof report", report)
    return run, write_report()


def main(argv: list[str] | None = None) -> int:
    """`python -m dagster_project.proof <job> <tenant> <run config JSON>`: one job, in this process."""
    import json
    import sys

    from dagster_project.cli import run_tenant_pipeline

    import signal

    # a parent that ignores SIGINT (nohup) passes that on; the CLI stops this job with SIGINT first
    signal.signal(signal.SIGINT, signal.default_int_handler)
    job_name, tenant, run_config = (argv if argv is not None else sys.argv[1:])[:3]
    result = run_tenant_pipeline(tenant, job_name=job_name, run_config=json.loads(run_config))
    failed = [e.step_key or "" for e in result.all_events if e.is_step_failure]
    print(FAILED_PREFIX + json.dumps(failed), flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main())
