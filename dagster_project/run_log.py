"""A run as people follow it: one line per finished step with its time, the full event log in a file, and a run
whose ERROR-severity checks failed marked failed (Dagster reports a run green when every step succeeded, whatever
its checks said)."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TextIO

from dagster import AssetCheckSeverity, DagsterEventType, DagsterInstance, DagsterRunStatus

# Step keys of the refresh job in words; any other step is shown by its key.
STEP_WORDS = {
    "landing_files": "ingest the landing files",
    "harmonize": "harmonize with dbt (staging, promotions)",
    "dbt_unit_tests": "dbt unit tests",
    "gx_marts": "data quality suites (Great Expectations)",
    "ops__dataset_sniff": "sniff the data, decide the model spec",
    "harmonize_model_input": "build the marts at the spec's grain (dbt)",
    "mmm__weather_mmm": "fit the weather-aware model",
    "mmm__experiment_recommendations": "recommend experiments",
    "decisions__plans": "make the budget plan",
    "decisions__plans_autopilot_gate": "check the rollout gate",
    "decisions__plan_adoption": "compare plans with what ran",
    "decisions__causal_audits": "audit past deployments",
    "decisions__policy_replay": "replay candidate policies on past decisions",
}


def step_words(step_key: str) -> str:
    return STEP_WORDS.get(step_key, step_key.replace("__", "/"))


def failed_error_checks(instance: DagsterInstance, run_id: str) -> list[str]:
    """'asset check_name' of every ERROR-severity check of the run that did not pass."""
    out = []
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records:
        ev = record.event_log_entry.dagster_event.event_specific_data
        if not ev.passed and ev.severity == AssetCheckSeverity.ERROR:
            out.append(f"{ev.asset_key.to_user_string()} {ev.check_name}")
    return sorted(set(out))


def mark_run_if_error_checks_failed(instance: DagsterInstance, run_id: str) -> list[str]:
    """Mark a successful run failed, naming the checks, when any ERROR-severity check of it failed; returns them."""
    failed = failed_error_checks(instance, run_id)
    run = instance.get_run_by_id(run_id)
    if failed and run is not None and run.status == DagsterRunStatus.SUCCESS:
        instance.report_run_failed(run, f"{len(failed)} ERROR-severity check(s) failed: {'; '.join(failed)}")
    return failed


def _line(entry) -> str:
    at = datetime.fromtimestamp(entry.timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    kind = entry.dagster_event.event_type_value if entry.dagster_event else "LOG"
    line = f"{at} {entry.level if isinstance(entry.level, str) else _LEVELS.get(entry.level, entry.level)} " \
           f"{entry.step_key or '-'} {kind} {entry.message or entry.user_message}\n"
    error = getattr(getattr(entry.dagster_event, "event_specific_data", None), "error", None)
    return line + error.to_string() if hasattr(error, "to_string") else line  # a failure's error and traceback


_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


class StepProgress:
    """An instance event listener: writes every event to `log` and calls `say(line)` when a step ends;
    `status(text)` (optional) gets the latest step start and log message, for a transient status line."""

    def __init__(self, log: TextIO, say: Callable[[str], None], status: Callable[[str], None] | None = None):
        self.log, self.say, self.status = log, say, status
        self.started: dict[str, float] = {}
        self.failed_steps: list[str] = []

    def __call__(self, entry) -> None:
        self.log.write(_line(entry))
        self.log.flush()
        ev = entry.dagster_event
        step = entry.step_key
        if ev is None:
            if self.status and step and entry.user_message:
                self.status(f"{step_words(step)}: {entry.user_message[:100]}")
            return
        kind = ev.event_type
        if kind == DagsterEventType.STEP_START:
            self.started[step] = entry.timestamp
            if self.status:
                self.status(f"{step_words(step)} …")
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            seconds = entry.timestamp - self.started.get(step, entry.timestamp)
            ok = kind == DagsterEventType.STEP_SUCCESS
            if not ok:
                self.failed_steps.append(step)
            self.say(f"{'ok  ' if ok else 'FAIL'} {step_words(step):45s} {seconds:6.1f} s")
        elif kind == DagsterEventType.STEP_SKIPPED:
            self.say(f"skip {step_words(step):45s}")


def event_log_path(root: Path, name: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return root / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
