"""Fit one tenant × grain: read inputs, release the warehouse, score a holdout, fit, gate, save, summarise."""
from __future__ import annotations

import json
import uuid
import warnings
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from weathervane import config
from weathervane.mmm.artefact import save_lean
from weathervane.mmm.data import ModelData, prepare_model_data, read_model_input
from weathervane.mmm.lift_tests import lift_measurements, read_lift_tests
from weathervane.mmm.model import FitSettings, adstock_lags, diagnostics, fit_mmm, passes
from weathervane.mmm.response import META_ATTR, PosteriorResponse, model_path
from weathervane.mmm.store import STATUS_FAILED, STATUS_OK, write_model_outputs
from weathervane.mmm import summaries

Connect = Callable[[bool], AbstractContextManager]


@dataclass
class FittedModel:
    model_id: str
    tenant_id: str
    status: str
    diagnostics: dict
    holdout_mape: float | None
    path: Path
    report_path: Path | None
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    fit_seconds: float = 0.0
    n_obs: int = 0
    lift_tests: int = 0
    attempts: list[dict] = field(default_factory=list)  # diagnostics, tune and draws of each try, first first

    @property
    def usable(self) -> bool:
        return self.status == STATUS_OK

    @property
    def message(self) -> str:
        """One plain sentence on the fit's outcome, for logs and run metadata."""
        d = self.diagnostics
        tries = d.get("attempts", 1)
        if self.usable:
            return f"model {self.model_id} passed its diagnostics" + (f" on try {tries}" if tries > 1 else "")
        return (f"model {self.model_id} failed its diagnostics after {tries} tr{'ies' if tries > 1 else 'y'} "
                f"(max r-hat {d.get('max_rhat')}, min bulk ESS {d.get('min_ess_bulk')}, divergences "
                f"{d.get('divergences')}); it is stored but not used, and planning keeps the last usable model")


def new_model_id(data: ModelData, now: datetime) -> str:
    return f"{data.tenant_id}-{data.grain_product}-{data.grain_geo}-{data.period}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def holdout_periods(data: ModelData, settings: FitSettings) -> int:
    h = settings.holdout_weeks * (7 if data.period == "day" else 1)
    # keep at least a year (or 80%) of history for the holdout fit
    min_train = max(int(0.8 * data.n_periods), 365 if data.period == "day" else 52)
    return h if h > 0 and data.n_periods - h >= min(min_train, data.n_periods - 1) else 0


def score_holdout(data: ModelData, settings: FitSettings, lift: pd.DataFrame | None) -> float | None:
    """MAPE of the posterior-mean prediction on the last holdout periods, from a fit that never saw them."""
    h = holdout_periods(data, settings)
    if h == 0:
        return None
    stop = data.n_periods - h
    fit = fit_mmm(data, settings, stop=stop, lift_tests=lift)
    mmm = fit.mmm
    future = data.to_dataset().isel(date=slice(stop, None)).drop_vars("target")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = mmm.sample_posterior_predictive(future, extend_idata=False, include_last_observations=True,
                                               var_names=["y"], progressbar=False,
                                               random_seed=settings.seed)
    scale = mmm.idata.constant_data["target_scale"]
    yhat = (pred["y"].mean("sample") * scale).transpose("date", "geo").values
    actual = data.kpi[stop:]
    ok = np.abs(actual) > 0
    return float(np.mean(np.abs(yhat[ok] - actual[ok]) / np.abs(actual[ok])))


def fit_panel(data: ModelData, settings: FitSettings, *, lift_raw: pd.DataFrame | None = None,
              store: Path | str | None = None, reports: Path | str | None = None,
              now: datetime | None = None, report: bool = True) -> FittedModel:
    """Holdout score, final fit on all periods, diagnostics gate, NetCDF save, summaries and HTML report."""
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    model_id = new_model_id(data, now)
    lift = (lift_measurements(lift_raw, data, per_period=settings.weather)
            if lift_raw is not None and not lift_raw.empty else None)
    holdout_mape = score_holdout(data, settings, lift)
    fit = fit_mmm(data, settings, lift_tests=lift)
    diag = diagnostics(fit.mmm, settings)
    attempts = [dict(diag, tune=settings.tune, draws=settings.draws, seconds=round(fit.seconds, 1))]
    tried = settings
    while not passes(diag, tried) and tried.method == "nuts" and len(attempts) <= settings.retries:
        tried = tried.longer()
        fit = fit_mmm(data, tried, lift_tests=lift)
        diag = diagnostics(fit.mmm, tried)
        attempts.append(dict(diag, tune=tried.tune, draws=tried.draws, seconds=round(fit.seconds, 1)))
    status = STATUS_OK if passes(diag, tried) else STATUS_FAILED
    diag = {**diag, "attempts": len(attempts)}

    path = model_path(data.tenant_id, model_id, store)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**data.meta(), "model_id": model_id, "l_max": adstock_lags(data.period), "status": status,
            "settings": tried.to_dict(), "diagnostics": diag, "attempts": attempts, "holdout_mape": holdout_mape,
            "fitted_at": now.isoformat(), "lift_tests": fit.lift_tests}
    fit.mmm.idata.attrs[META_ATTR] = json.dumps(meta, default=str)
    save_lean(fit.mmm, path)

    resp = PosteriorResponse.from_idata(fit.mmm.idata, model_id=model_id)
    prior = resp.under_prior(fit.mmm.model, seed=settings.seed)
    kpi = data.kpi[:, [data.cells.index(g) for g in resp.geos]]
    lift_channels = frozenset(lift["channel"]) if lift is not None else frozenset()
    frames = {
        "models": pd.DataFrame([dict(
            model_id=model_id, tenant_id=data.tenant_id, grain_product=data.grain_product,
            grain_geo=data.grain_geo, fitted_at=pd.Timestamp(now), train_start=data.dates[0].date(),
            train_end=data.dates[-1].date(), n_obs=int(data.kpi.size),
            sampler=settings.nuts_sampler if settings.method == "nuts" else settings.method,
            draws=int(tried.draws if settings.method != "map" else 1),
            chains=int(settings.chains if settings.method == "nuts" else 1),
            max_rhat=diag["max_rhat"], min_ess_bulk=diag["min_ess_bulk"], divergences=int(diag["divergences"]),
            holdout_mape=holdout_mape, status=status)]),
        "channel_summary": summaries.channel_summary(resp, model_id, data.tenant_id, prior=prior, kpi=kpi,
                                                     lift_test_channels=lift_channels),
        "weather_effects": summaries.weather_effects(resp, model_id, data.tenant_id),
        "response_curves": summaries.response_curves(resp, model_id, data.tenant_id),
    }
    report_path = None
    if report:
        from weathervane.mmm.report import write_report

        base = Path(reports) if reports is not None else config.reports_dir()
        report_path = write_report(fit.mmm, resp, data, frames, meta,
                                   config.tenant_dir(base, data.tenant_id) / f"{model_id}.html")
    return FittedModel(model_id=model_id, tenant_id=data.tenant_id, status=status, diagnostics=diag,
                       holdout_mape=holdout_mape, path=path, report_path=report_path, frames=frames,
                       fit_seconds=fit.seconds, n_obs=int(data.kpi.size), lift_tests=fit.lift_tests,
                       attempts=attempts)


def fit_tenant(connect: Connect, tenant_id: str, settings: FitSettings | None = None, *,
               grain_product: str | None = None, grain_geo: str | None = None, period: str | None = None,
               store: Path | str | None = None, reports: Path | str | None = None) -> FittedModel:
    """Read fct_model_input (and lift tests), close the warehouse, fit, then reopen it to write the mmm tables.

    `connect(read_only)` returns a context manager yielding a DuckDB connection (the Dagster resource's
    `connect`, or `duckdb_connect` below).
    """
    settings = settings or FitSettings()
    config.validate_tenant_id(tenant_id)
    with connect(True) as con:
        frame, weather = read_model_input(con, tenant_id, grain_product, grain_geo, period)
        lift_raw = read_lift_tests(con, tenant_id)
    data = prepare_model_data(frame, weather, period)
    fitted = fit_panel(data, settings, lift_raw=lift_raw, store=store, reports=reports)
    with connect(False) as con:
        write_model_outputs(con, fitted.model_id, fitted.frames)
    return fitted


def duckdb_connect(path: Path | str | None = None) -> Connect:
    """A `connect(read_only)` over a DuckDB file (default: the configured warehouse)."""
    from contextlib import contextmanager

    import duckdb

    @contextmanager
    def _connect(read_only: bool):
        target = Path(path) if path is not None else config.warehouse_path()
        con = duckdb.connect(str(target), read_only=read_only and target.exists())
        try:
            yield con
        finally:
            con.close()

    return _connect
