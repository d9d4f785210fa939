"""Sampling progress as it happens: share done, draws per second and the time left, for the Dagster event log.

PyMC hands nutpie a progress callback (its progress-bar manager's `update`, called with one `ChainProgress` per
chain); with the bar off it draws nothing. Inside `reporting(...)` that callback also reaches `report`, at most
every `every_s` seconds and once at the end.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    label: str
    done: int  # draws finished over all chains, tuning included
    total: int
    seconds: float
    divergences: int

    @property
    def share(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def draws_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        rate = self.draws_per_s
        return (self.total - self.done) / rate if rate > 0 else None

    def describe(self) -> str:
        left = self.seconds_left
        return (f"{self.label}: {100 * self.share:.0f}% of {self.total:,} draws, {self.draws_per_s:.0f} draws/s, "
                f"{'about ' + _duration(left) + ' left' if left is not None else 'starting'}"
                + (f", {self.divergences} divergence(s)" if self.divergences else ""))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


_lock = threading.Lock()


@contextmanager
def reporting(report: Callable[[Progress], None] | None, label: str, every_s: float = 10.0) -> Iterator[None]:
    """Forward nutpie's per-chain progress to `report` while the block samples (no-op when `report` is None)."""
    if report is None:
        yield
        return
    from pymc.sampling import mcmc

    base = mcmc.NutpieProgressBarManager
    started = time.perf_counter()
    last = [0.0]

    class Reporting(base):  # type: ignore[misc, valid-type]
        def update(self, chain_progresses) -> None:
            super().update(chain_progresses)
            now = time.perf_counter()
            done = sum(int(cp.finished_draws) for cp in chain_progresses)
            total = sum(int(cp.total_draws) for cp in chain_progresses)
            if now - last[0] < every_s and done < total:
                return
            last[0] = now
            divergences = sum(len(cp.divergent_draws) for cp in chain_progresses)
            try:
                report(Progress(label, done, total, now - started, divergences))
            except Exception:  # a progress line must never stop a fit
                pass

    with _lock:
        mcmc.NutpieProgressBarManager = Reporting
        try:
            yield
        finally:
            mcmc.NutpieProgressBarManager = base
