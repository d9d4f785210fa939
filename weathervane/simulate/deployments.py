"""Deployments with a known effect on a simulated geo panel, for audit tests and the calibration study.

The simulator's own deployment (core.py) moves one channel's budget; its revenue effect goes through the media
response and is small. Here the effect is set directly: the treated geos' realized revenue is multiplied by
(1 + effect) over the window, so the true increment is known to the cent.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from weathervane.simulate.truth import Truth


def revenue_panel(truth: Truth) -> pd.DataFrame:
    """Realized net revenue of valid orders per day (rows) x geo (columns), as the sales mart sums it."""
    days = [date.fromisoformat(d) for d in truth.daily.dates]
    return pd.DataFrame({g: np.asarray(v, dtype=float) for g, v in truth.daily.net_revenue.items()},
                        index=days).sort_index(axis=1)


def add_ar1_noise(panel: pd.DataFrame, phi: float, sd: float, rng: np.random.Generator) -> pd.DataFrame:
    """Multiply each geo's series by exp(AR(1)) with stationary sd `sd`: slow, geo-specific demand swings."""
    n, k = panel.shape
    e = rng.standard_normal((n, k)) * sd * np.sqrt(1 - phi**2)
    x = np.empty((n, k))
    x[0] = rng.standard_normal(k) * sd
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return panel * np.exp(x - sd**2 / 2)


@dataclass(frozen=True)
class KnownDeployment:
    deployment_id: str
    geo_ids: tuple[str, ...]
    start: date
    end: date
    effect: float  # relative: 0.05 = +5% of the treated geos' revenue over the window
    increment: float  # the true increment in money


def inject(panel: pd.DataFrame, deployment_id: str, geo_ids, start: date, end: date,
           effect: float) -> tuple[pd.DataFrame, KnownDeployment]:
    """The panel with the treated geos' revenue scaled by (1 + effect) from `start` to `end` (inclusive)."""
    out = panel.copy()
    rows = (out.index >= start) & (out.index <= end)
    cols = list(geo_ids)
    increment = float(out.loc[rows, cols].to_numpy().sum() * effect)
    out.loc[rows, cols] = out.loc[rows, cols] * (1 + effect)
    return out, KnownDeployment(deployment_id, tuple(cols), start, end, effect, increment)
