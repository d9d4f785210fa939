"""The fitted MMM's posterior (weathervane.mmm.response) as the allocator's response model.

The MMM's cells may be product × geo (`category|US-CA`); a plan decides spend per channel × geo, so a geo's spend
is split over its cells by each cell's share of that channel's spend in the geo over the training window, and the
cells' contributions are summed back to the geo. A plain geo model passes through unchanged.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from weathervane.config import validate_tenant_id


class NoUsableModel(LookupError):
    """No model of the tenant passed its diagnostics."""


class MMMResponse:
    def __init__(self, posterior, draws: int | None = 200):
        self.posterior = posterior
        self.model_id = posterior.model_id
        self.channels = list(posterior.channels)
        self.weather_vars = list(posterior.weather_vars)
        self.weather_stats = posterior.weather_stats
        self.period_days = 7 if posterior.period == "week" else 1
        self.lags = max(int(posterior.l_max) - 1, 0)
        self.draws = draws
        cells = list(posterior.geos)
        cell_geo = [posterior.cell_geo.get(c, c) for c in cells]
        self.geos = list(dict.fromkeys(cell_geo))
        self._geo_of_cell = np.array([self.geos.index(g) for g in cell_geo])
        spent = np.asarray(posterior.observed_spend, dtype=float).sum(axis=0)  # [channel, cell]
        per_geo = np.zeros((len(self.channels), len(self.geos)))
        np.add.at(per_geo.T, self._geo_of_cell, spent.T)
        n_cells_in_geo = np.bincount(self._geo_of_cell, minlength=len(self.geos))
        geo_total = per_geo[:, self._geo_of_cell]
        self._share = np.where(geo_total > 0, spent / np.where(geo_total > 0, geo_total, 1.0),
                               1.0 / n_cells_in_geo[self._geo_of_cell][None, :])  # [channel, cell]
        self._sum = np.zeros((len(cells), len(self.geos)))
        self._sum[np.arange(len(cells)), self._geo_of_cell] = 1.0

    def sample_contribution(self, spend: np.ndarray, weather_z: np.ndarray, history: np.ndarray) -> np.ndarray:
        full = np.concatenate([history, spend], axis=0) if len(history) else spend
        cell_spend = full[:, :, self._geo_of_cell] * self._share[None]
        z = np.concatenate([np.zeros((len(history), *weather_z.shape[1:])), weather_z], axis=0)[:, self._geo_of_cell]
        out = self.posterior.incremental_kpi(cell_spend, z, n_history=len(history), draws=self.draws)
        return out @ self._sum  # [draw, time, channel, geo]


def load_latest_response(con, tenant_id: str, store: Path | str | None = None, draws: int | None = 200) -> MMMResponse:
    """The newest model of the tenant with status ok, as a response model; NoUsableModel when there is none."""
    from weathervane.mmm.response import load_response
    from weathervane.mmm.store import latest_usable_model

    tenant_id = validate_tenant_id(tenant_id)
    record = latest_usable_model(con, tenant_id)
    if record is None:
        raise NoUsableModel(f"tenant {tenant_id}: no model in mmm.models with status ok; fit one before planning")
    return MMMResponse(load_response(record.model_id, tenant_id, store), draws=draws)
