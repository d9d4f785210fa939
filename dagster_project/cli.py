"""The `weathervane` console script: domain commands plus `demo` and `ui`, which need the code location."""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from weathervane import cli as domain_cli
from weathervane import config
from weathervane.web import port_number

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_TENANT = "demo"


def dagster_home() -> Path:
    """A persistent local instance, so `make ui` shows what `make demo` ran."""
    home = Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / "data" / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        from weathervane.warehouse import is_folder

        # a folder warehouse gets the instance that runs tenants side by side (docs/warehouse.md)
        shipped = "dagster.tenants.yaml" if is_folder(config.warehouse_path()) else "dagster.yaml"
        shutil.copy(REPO_ROOT / "deploy" / shipped, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    # the settings as absolute paths: dbt runs in its project folder, where a relative default names other files
    for var, path in (("WEATHERVANE_LANDING", config.landing_root()), ("WEATHERVANE_WAREHOUSE", config.warehouse_path()),
                      ("WEATHERVANE_MODEL_STORE", config.model_store()), ("WEATHERVANE_REPORTS", config.reports_dir())):
        os.environ[var] = str(Path(path).resolve())
    return home


def run_tenant_pipeline(tenant_id: str, job_name: str = "refresh_job", run_config: dict | None = None,
                        on_event=None, quiet: bool = False):
    """Register the tenant and run one job for it as the UI's *Materialize all* does: the code location's own
    executor (a step per forked process, independent steps side by side), recorded in the local instance.

    `on_event`: called with every event of the run, in order, as the steps write them (weathervane demo's progress
    and log file); `quiet`: no event on the terminal (the console logger set above CRITICAL; the instance still
    stores them)."""
    from dagster import DagsterInstance, build_reconstructable_job, execute_job

    from dagster_project.defs.marts import prepared_manifest
    from dagster_project.executor import CODE_LOCATION

    tenant_id = config.validate_tenant_id(tenant_id)
    dagster_home()
    # parsed again only when a dbt file changed: a step server already running reads this manifest
    prepared_manifest()
    instance = DagsterInstance.get()
    if not instance.has_dynamic_partition("tenants", tenant_id):
        instance.add_dynamic_partitions("tenants", [tenant_id])
    run_config = dict(run_config or {})
    if quiet:
        run_config.setdefault("loggers", {"console": {"config": {"log_level": "CRITICAL"}}})
    job = build_reconstructable_job(CODE_LOCATION, "job_named", (job_name,))
    launch = uuid.uuid4().hex  # finds the run execute_job creates, for the follower
    tags = {"dagster/partition": tenant_id, LAUNCH_TAG: launch}
    follower = _RunFollower(instance, launch, on_event) if on_event is not None else None
    if follower:
        follower.start()
    try:
        result = execute_job(job, instance=instance, run_config=run_config, tags=tags, raise_on_error=False)
    finally:
        if follower:
            follower.finish()
    return result


LAUNCH_TAG = "weathervane/launch"


class _RunFollower(threading.Thread):
    """Reads the run's events from the instance as the step processes write them and hands each to `on_event`
    (in-memory listeners see only the events of this process, not those of the steps' own processes)."""

    def __init__(self, instance, launch: str, on_event, every: float = 0.25):
        super().__init__(daemon=True)
        self.instance, self.launch, self.on_event, self.every = instance, launch, on_event, every
        self.done = threading.Event()
        self.cursor = None
        self.run_id = None

    def run(self) -> None:
        while not self.done.is_set():
            self._drain()
            self.done.wait(self.every)

    def finish(self) -> None:
        self.done.set()
        self.join()
        self._drain()  # the events written after the last poll

    def _drain(self) -> None:
        from dagster import RunsFilter

        if self.run_id is None:
            runs = self.instance.get_run_records(RunsFilter(tags={LAUNCH_TAG: self.launch}), limit=1)
            if not runs:
                return
            self.run_id = runs[0].dagster_run.run_id
        while True:
            batch = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=500)
            for record in batch.records:
                self.on_event(record.event_log_entry)
            self.cursor = batch.cursor
            if not batch.has_more:
                return


def fit_run_config(**overrides) -> dict:
    """Run config for a one-off override of the model spec (`--period`, `--draws`); empty when none is given."""
    fit = {k: v for k, v in overrides.items() if v is not None}
    if "draws" in fit:
        fit["tune"] = fit["draws"]
    return {"ops": {"mmm__weather_mmm": {"config": fit}}} if fit else {}


@contextlib.contextmanager
def _terminal_to(log):
    """Send everything written to stdout and stderr (dbt, progress bars, library warnings, child processes) to
    `log` and yield a console on the real terminal, for the lines meant for people."""
    from rich.console import Console

    is_tty = domain_cli.console.is_terminal
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    term_file = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8")
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        yield Console(file=term_file, force_terminal=is_tty, width=domain_cli.console.width)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        term_file.close()


def demo_summary(tenant: str, failed_checks: list[str] | None = None) -> None:
    """The demo's closing summary, over the folders this process is configured with."""
    from weathervane.demo import print_demo_summary

    print_demo_summary(tenant, warehouse=config.warehouse_path(), landing=config.landing_root(),
                       store=config.model_store(), reports=config.reports_dir(), failed_checks=failed_checks)


def _cmd_demo(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from dagster_project.executor import start_step_server
    from dagster_project.run_log import StepProgress, event_log_path, mark_run_if_error_checks_failed
    from weathervane.simulate import simulate_tenant

    con = domain_cli.console
    landing = config.landing_root()
    started = time.perf_counter()
    # progress bars of libraries (GX's "Calculating Metrics") would drown the step lines
    os.environ.setdefault("TQDM_DISABLE", "1")
    con.print("[bold]Weathervane demo[/bold]: a simulated brand with known truth, through every step of the pipeline",
              soft_wrap=True)
    log_dir = dagster_home().parent / "logs"
    log_path = event_log_path(log_dir, "demo")
    cwd = os.getcwd()
    with log_path.open("a", encoding="utf-8") as log, _terminal_to(log) as term:
        # the steps' forkserver imports the modelling stack and the code location while this process parses the
        # dbt project (when a dbt file changed; one process at a time, the other waits), simulates the tenant and
        # sets up the run. Its output, like the steps', goes to the log.
        start_step_server(DagsterInstance.get())
        if args.resimulate or not (landing / DEMO_TENANT).exists():
            t0 = time.perf_counter()
            simulate_tenant(DEMO_TENANT, landing, scenario="standard", seed=args.seed)
            term.print(f"ok   {'simulate the demo tenant':45s} {time.perf_counter() - t0:6.1f} s", markup=False,
                       highlight=False)
        else:
            term.print(f"demo tenant already in {landing / DEMO_TENANT} (use --resimulate to redo)", markup=False,
                       highlight=False)
        status = term.status("starting Dagster …") if term.is_terminal else None
        progress = StepProgress(log, say=lambda line: term.print(line, markup=False, highlight=False),
                                status=(lambda text: status.update(text)) if status else None)
        if status:
            status.start()
        try:
            # What the UI's Materialize all runs: no fit config, so the model spec the sniff decides is fitted.
            result = run_tenant_pipeline(DEMO_TENANT, run_config=fit_run_config(period=args.period, draws=args.draws),
                                         on_event=progress, quiet=True)
        finally:
            if status:
                status.stop()
            os.chdir(cwd)  # a step that changed the working folder (dbt's) must not move the summary's paths
    failed_checks = mark_run_if_error_checks_failed(DagsterInstance.get(), result.run_id)
    if not result.success:
        con.print("[red]Steps that failed:[/red] " + ", ".join(progress.failed_steps or ["(see the event log)"]))
    demo_summary(DEMO_TENANT, failed_checks)
    con.print(f"\nDagster's full event log of this run ({result.run_id[:8]}): {log_path}", markup=False, soft_wrap=True)
    con.print(f"[bold]Done in {time.perf_counter() - started:.0f} s.[/bold] Browse the runs, assets and reports with: "
              "[bold]make ui[/bold] (Dagster http://localhost:3000, reports http://localhost:3002/demo/)", soft_wrap=True)
    return 0 if result.success else 1


def ui_environment() -> dict[str, str]:
    """The environment of the UI's processes: this Python's bin folder (dbt, dagster) first on PATH, so nothing
    has to be activated, and the local instance."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["DAGSTER_HOME"] = str(dagster_home())
    env["VIRTUAL_ENV"] = sys.prefix  # dg checks that the environment it runs in is the project's
    return env


def _cmd_ui(args: argparse.Namespace) -> int:
    from dagster_project.defs.marts import prepare_dbt_manifest
    from weathervane.report_server import make_report_server

    env = ui_environment()
    # A parent that ignores SIGINT (nohup, some supervisors, test runners) would pass that on to dagster dev, which
    # maps SIGTERM to its SIGINT handler: it could then never be stopped in order. Handle it here so the children
    # start with the default.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    prepare_dbt_manifest()
    reports = make_report_server(port=args.reports_port)
    threading.Thread(target=reports.serve_forever, daemon=True).start()
    helpers = []
    if args.approvals_port:
        helpers.append(subprocess.Popen([sys.executable, "-m", "dagster_project.cli", "serve", "--port",
                                         str(args.approvals_port)], cwd=REPO_ROOT, env=env))
    con = domain_cli.console
    con.print(f"Dagster UI: http://localhost:{args.port}   reports: http://localhost:{args.reports_port}"
              + (f"   approvals: http://localhost:{args.approvals_port}" if args.approvals_port else ""))
    con.print("The landing sensor is on; the weekly refresh schedule is off until you turn it on (Automation).")
    # `dg dev`, the command Dagster recommends over `dagster dev`: it loads the project dg.toml names
    cmd = [str(Path(sys.executable).parent / "dg"), "dev", "--port", str(args.port)]
    dev = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env)
    # A stop (Ctrl-C, or SIGTERM from a service manager) lets `dagster dev` shut its webserver, daemon and code
    # server down in order; it is killed only if that takes longer than a minute.
    signal.signal(signal.SIGTERM, lambda *_: dev.send_signal(signal.SIGINT))
    try:
        return dev.wait()
    except KeyboardInterrupt:  # dagster dev got the same Ctrl-C from the terminal; let it finish below
        return 130
    finally:
        if dev.poll() is None:
            dev.send_signal(signal.SIGINT)
            try:
                dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                dev.kill()
        reports.shutdown()
        for p in helpers:
            p.terminate()


def _known_tenant(tenant: str) -> str:
    """The tenant id when its landing folder exists; else a user error, before any Dagster run starts."""
    from weathervane.landing.ingest import require_tenant_folder

    tenant = config.validate_tenant_id(tenant)
    require_tenant_folder(config.landing_root(), tenant)
    return tenant


def _cmd_sniff(args: argparse.Namespace) -> int:
    from dagster_project.proof import current_sniff, sniff_run
    from weathervane.sniff.cli import print_sniff, sniff_dict

    tenant = _known_tenant(args.tenant)
    failed = sniff_run(tenant)
    sniff = current_sniff(tenant)
    if args.json:
        import json

        domain_cli.console.print_json(json.dumps(sniff_dict(sniff), default=str))
    else:
        print_sniff(sniff, domain_cli.console)
    if failed:
        domain_cli.console.print(f"[yellow]steps that failed: {', '.join(failed)}[/yellow]")
    return 1 if failed else 0


def _cmd_proof(args: argparse.Namespace) -> int:
    from dagster_project.proof import run_proof

    con = domain_cli.console
    started = time.perf_counter()
    if args.tenant == DEMO_TENANT and not (config.landing_root() / DEMO_TENANT).exists():
        from weathervane.simulate import simulate_tenant

        con.print("simulating the demo tenant (as `weathervane demo` does)")
        simulate_tenant(DEMO_TENANT, config.landing_root(), scenario="standard", seed=7)
    _known_tenant(args.tenant)
    run, path = run_proof(args.tenant, period=args.period, draws=args.draws, chains=args.chains,
                          method=args.method, seed=args.seed, say=con.print)
    con.print(f"\n[bold]Brand proof for {run.tenant_id}[/bold] ({run.mode.replace('_', ' ')}, modelled tenant "
              f"{run.model_tenant}) in {time.perf_counter() - started:.0f}s: {path.resolve()}")
    for problem in run.problems:
        con.print(f"[yellow]{problem}[/yellow]")
    if not run.model_fitted:
        con.print("[red]No usable model: the proof shows the data, not what it supports.[/red]")
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = domain_cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    demo = sub.add_parser("demo", help="simulate the demo tenant and run every asset for it")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--resimulate", action="store_true")
    demo.add_argument("--period", choices=["day", "week"], help="override the model spec's period for this run")
    demo.add_argument("--draws", type=int, help="override the model spec's NUTS draws (and tuning steps) per chain")
    demo.set_defaults(func=_cmd_demo)
    ui = sub.add_parser("ui", help="start the Dagster UI on the local instance, the reports server and the approvals page")
    ui.add_argument("--port", type=port_number, default=3000)
    ui.add_argument("--reports-port", type=port_number, default=3002)
    ui.add_argument("--approvals-port", type=lambda v: port_number(v, allow_zero=True), default=3001,
                    help="0: do not start the approvals page")
    ui.set_defaults(func=_cmd_ui)
    # through Dagster here: ingest and harmonize first, so the sniff sees what the pipeline would load
    sub.choices["sniff"].set_defaults(func=_cmd_sniff)
    proof = sub.add_parser("proof", help="sniff a tenant, run its pipeline live or on a synthetic twin, and write "
                                         "the brand proof report")
    proof.add_argument("--tenant", required=True)
    proof.add_argument("--period", choices=["day", "week"], help="override the model spec's period for this run")
    proof.add_argument("--draws", type=int, help="override the model spec's NUTS draws (and tuning steps) per chain")
    proof.add_argument("--chains", type=int, help="override the model spec's chains")
    proof.add_argument("--method", choices=["nuts", "map"], default="nuts", help="map: a quick point estimate")
    proof.add_argument("--seed", type=int, default=0)
    proof.set_defaults(func=_cmd_proof)
    return parser


def main(argv: list[str] | None = None) -> int:
    return domain_cli.main(argv, parser=build_parser())


if __name__ == "__main__":
    sys.exit(main())
