"""The fitted MMM's posterior (weathervane.mmm.response) as the allocator's response model.

The MMM's cells may be product × geo (`category|US-CA`); a plan decides spend per channel × geo, so a geo's spend
is split over its cells by each cell's share of that channel's spend in the geo over the training window, and the
cells' contributions are summed back to the geo. A plain geo model passes through unchanged.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from weathervane.config import validate_tenant_id
from weathervane.periods import period_length


# Posterior draws a plan is made from: half choose the move, half judge it. 1,000 were measured on the calibration
# bench's 60 fits and did worse (more plans just over the bar, which win about 70% of the time; docs/plan_regret.md).
PLAN_DRAWS = 200


class NoUsableModel(LookupError):
    """No model of the tenant passed its diagnostics."""


class MMMResponse:
    def __init__(self, posterior, draws: int | None = PLAN_DRAWS, nonmedia: np.ndarray | None = None):
        """`nonmedia` [draw, period]: the model's fitted KPI less all media, summed over cells, per posterior draw
        (the same thinned draws), over the training periods; it gives the plan its baseline forecast."""
        self.posterior = posterior
        self.model_id = posterior.model_id
        self.channels = list(posterior.channels)
        self.weather_vars = list(posterior.weather_vars)
        self.weather_stats = posterior.weather_stats
        self.period_days = period_length(posterior.period)
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
        self.nonmedia = nonmedia
        self.dates = pd.DatetimeIndex(posterior.dates)

    def sample_contribution(self, spend: np.ndarray, weather_z: np.ndarray, history: np.ndarray) -> np.ndarray:
        full = np.concatenate([history, spend], axis=0) if len(history) else spend
        cell_spend = full[:, :, self._geo_of_cell] * self._share[None]
        z = np.concatenate([np.zeros((len(history), *weather_z.shape[1:])), weather_z], axis=0)[:, self._geo_of_cell]
        out = self.posterior.incremental_kpi(cell_spend, z, n_history=len(history), draws=self.draws)
        return out @ self._sum  # [draw, time, channel, geo]

    def sample_base(self, start: date, periods: int, draws: int) -> tuple[np.ndarray | None, str]:
        """Draws of the KPI without paid media over `periods` periods from `start`: the same periods a year
        earlier scaled by how the recent level compares with the level a year before it (seasonal naive with
        drift), else the recent level; (None, why) when the model did not store its fitted baseline."""
        nm = self.nonmedia
        if nm is None or nm.shape[0] != draws:
            return None, "expected KPI covers paid media only: the model stores no fitted baseline"
        step = self.period_days
        per_year = 52 if step == 7 else 365
        n = nm.shape[1]
        gap = max(0, int(round((pd.Timestamp(start) - self.dates[-1]).days / step)) - 1)
        h = periods
        if n >= per_year + h and gap + h <= per_year:
            last_year = nm[:, n + gap - per_year: n + gap - per_year + h].sum(axis=1)
            recent, before = nm[:, n - h:].mean(axis=1), nm[:, n - per_year - h: n - per_year].mean(axis=1)
            ratio = np.divide(recent, before, out=np.ones_like(recent), where=before > 0)
            return last_year * ratio, ("baseline KPI (without paid media): the same weeks a year earlier, scaled "
                                       "by the change in level over the last year (no promotion calendar assumed)")
        return nm[:, max(0, n - h):].mean(axis=1) * h, (
            f"baseline KPI (without paid media): its level over the last {h} periods held flat (under a year of "
            "history: no seasonality assumed)")


def load_latest_response(con, tenant_id: str, store: Path | str, draws: int | None = PLAN_DRAWS) -> MMMResponse:
    """The model the tenant's fit step chose, as a response model. When no rung of its ladder passed the gate, the
    spec's own (failed) fit: the plan's gate then keeps the split and says why. NoUsableModel when none exists."""
    from weathervane.mmm.store import latest_usable_model, selected_model

    tenant_id = validate_tenant_id(tenant_id)
    record = latest_usable_model(con, tenant_id)
    if record is not None:
        return load_model_response(record.model_id, tenant_id, store, draws)
    chosen = selected_model(con, tenant_id)
    if chosen is not None and chosen.fallback_model_id:
        return load_model_response(chosen.fallback_model_id, tenant_id, store, draws)
    raise NoUsableModel(f"tenant {tenant_id}: no model in mmm.models with status ok; fit one before planning")


def load_model_response(model_id: str, tenant_id: str, store: Path | str,
                        draws: int | None = PLAN_DRAWS) -> MMMResponse:
    """A saved model (any status) as a response model, with its fitted baseline when the file holds it."""
    from weathervane.mmm.response import open_model

    tree, posterior = open_model(model_id, validate_tenant_id(tenant_id), store=store)
    idx = np.arange(posterior.n_draws) if draws is None else posterior._draw_index(draws)
    return MMMResponse(posterior, draws=draws, nonmedia=_nonmedia(tree, idx))


def _nonmedia(tree, idx: np.ndarray) -> np.ndarray | None:
    """[draw, period] fitted KPI less media (currency, summed over cells), or None when the file lacks the
    additive mean it needs or the result does not reproduce the observed KPI level (a model on another scale)."""
    post, const = tree["posterior"], tree["constant_data"]
    media_name = next((n for n in ("media_contribution", "weather_channel_contribution", "channel_contribution")
                       if n in post), None)
    if "mu" not in post or media_name is None or "target_scale" not in const or "target_data" not in const:
        return None

    def flat(name):
        da = post[name].stack(sample=("chain", "draw")).isel(sample=idx)
        return da

    mu = flat("mu").transpose("sample", "date", "geo")
    media = flat(media_name)
    media = (media.sum("channel") if "channel" in media.dims else media).transpose("sample", "date", "geo")
    scale = const["target_scale"]  # global or per geo: xarray broadcasts either against mu
    nonmedia = ((mu - media) * scale).sum("geo").values.astype(float)  # [sample, date]
    fitted = (mu * scale).sum("geo").mean("sample").values
    observed = np.nansum(const["target_data"].transpose("date", "geo").values, axis=1)
    if not np.isfinite(nonmedia).all() or abs(fitted.sum() / max(observed.sum(), 1e-9) - 1) > 0.2:
        return None
    return nonmedia
