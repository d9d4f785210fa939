"""Fit one tenant × grain: read inputs, release the warehouse, score a holdout, fit, gate, save, summarise."""
from __future__ import annotations

import json
import time
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
from weathervane.mmm.data import ModelData, ModelInputError, prepare_model_data, read_model_input
from weathervane.mmm.lift_tests import lift_measurements, read_lift_tests
from weathervane.mmm.model import FitSettings, diagnostics, fit_mmm, model_lags, passes
from weathervane.mmm.progress import Progress, reporting
from weathervane.mmm.response import META_ATTR, PosteriorResponse, model_path
from weathervane.mmm.store import STATUS_FAILED, STATUS_OK, write_model_outputs, write_selection
from weathervane.mmm import summaries

Connect = Callable[[bool], AbstractContextManager]
Report = Callable[[Progress], None]


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
              store: Path | str, reports: Path | str | None, audience=None,
              now: datetime | None = None, report: bool = True, progress: Report | None = None,
              deadline: float | None = None, extra_meta: dict | None = None,
              max_holdout_mape: float | None = None) -> FittedModel:
    """Fit on all periods, gate on diagnostics (one longer retry when time allows), score a holdout once the gate
    is passed, save NetCDF, summaries and the HTML report.

    `deadline` (time.monotonic) skips a retry that would not finish before it; `progress` receives sampling
    progress (weathervane.mmm.progress); `audience` (weathervane.reports.Audience) is who the report is for: the
    tenant's currency and, when simulated, the banner."""
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    model_id = new_model_id(data, now)
    lift = (lift_measurements(lift_raw, data, per_period=True)
            if lift_raw is not None and not lift_raw.empty else None)
    with reporting(progress, f"fit {data.period}ly {data.grain_product} × {data.grain_geo}"):
        fit = fit_mmm(data, settings, lift_tests=lift)
    diag = diagnostics(fit.mmm, settings)
    attempts = [dict(diag, tune=settings.tune, draws=settings.draws, seconds=round(fit.seconds, 1))]
    tried = settings
    while not passes(diag, tried) and tried.method == "nuts" and len(attempts) <= settings.retries:
        longer = tried.longer()
        # the retry samples (tune + draws) scaled up: it takes about that much longer than the first try
        expected = fit.seconds * (longer.tune + longer.draws) / max(tried.tune + tried.draws, 1)
        if deadline is not None and time.monotonic() + expected > deadline:
            attempts[-1]["retry_skipped"] = f"a retry would take about {expected:.0f} s, past the time budget"
            break
        tried = longer
        with reporting(progress, f"retry {data.period}ly {data.grain_product} × {data.grain_geo}"):
            fit = fit_mmm(data, tried, lift_tests=lift)
        diag = diagnostics(fit.mmm, tried)
        attempts.append(dict(diag, tune=tried.tune, draws=tried.draws, seconds=round(fit.seconds, 1)))
    status = STATUS_OK if passes(diag, tried) else STATUS_FAILED
    diag = {**diag, "attempts": len(attempts)}
    holdout_mape = None
    if status == STATUS_OK and (deadline is None or time.monotonic() + fit.seconds < deadline):
        with reporting(progress, "holdout fit"):
            holdout_mape = score_holdout(data, settings, lift)

    path = model_path(data.tenant_id, model_id, store)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**data.meta(), "model_id": model_id, "l_max": model_lags(data.period, tried), "status": status,
            "settings": tried.to_dict(), "diagnostics": diag, "attempts": attempts, "holdout_mape": holdout_mape,
            "fitted_at": now.isoformat(), "lift_tests": fit.lift_tests,
            "data_warnings": list(getattr(fit, "warnings", []) or []), **(extra_meta or {})}
    if holdout_mape is not None and max_holdout_mape is not None and holdout_mape > max_holdout_mape:
        meta["holdout_warning"] = holdout_warning(holdout_mape, max_holdout_mape)
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
            holdout_mape=holdout_mape, status=status, period=data.period,
            weather_vars=",".join(data.weather_vars) if settings.weather else "",
            ladder_rung=(extra_meta or {}).get("ladder_rung"))]),
        "channel_summary": summaries.channel_summary(resp, model_id, data.tenant_id, prior=prior, kpi=kpi,
                                                     lift_test_channels=lift_channels),
        "weather_effects": summaries.weather_effects(resp, model_id, data.tenant_id),
        "response_curves": summaries.response_curves(resp, model_id, data.tenant_id),
    }
    report_path = None
    if report and reports is not None:  # no folder: the caller wants the rows, not a page
        from weathervane import reports as rp
        from weathervane.mmm.report import write_report

        report_path = write_report(fit.mmm, resp, data, frames, meta,
                                   config.tenant_dir(Path(reports), data.tenant_id) / f"{model_id}.html",
                                   audience or rp.Audience())
    return FittedModel(model_id=model_id, tenant_id=data.tenant_id, status=status, diagnostics=diag,
                       holdout_mape=holdout_mape, path=path, report_path=report_path, frames=frames,
                       fit_seconds=fit.seconds, n_obs=int(data.kpi.size), lift_tests=fit.lift_tests,
                       attempts=attempts)


def holdout_warning(mape: float, limit: float) -> str:
    """The words for a holdout error above planning.max_holdout_mape (the plan's gate keeps the split then)."""
    return (f"holdout error {100 * mape:.1f}% is above the {100 * limit:.0f}% a plan can rely on "
            "(planning.max_holdout_mape): the model is shown but no budget is moved on it; more history, a coarser "
            "grain or a lift test would help")


@dataclass
class RungOutcome:
    rung: int
    label: str
    reason: str
    status: str  # ok / failed_diagnostics / skipped / error
    model_id: str | None = None
    seconds: float = 0.0
    detail: str = ""


@dataclass
class LadderFit:
    """What the fit step made of a tenant's spec: the model it chose (None when every rung failed) and why."""

    tenant_id: str
    spec_id: str
    chosen: FittedModel | None
    chosen_rung: int | None
    rungs: list[RungOutcome]
    seconds: float
    max_holdout_mape: float | None = None

    @property
    def fallback_model_id(self) -> str | None:
        """With no usable model: the spec's own fit (or the first stored), which the plan reads only to keep the
        split with its gate's reason."""
        return next((o.model_id for o in self.rungs if o.model_id), None)

    @property
    def usable(self) -> bool:
        return self.chosen is not None and self.chosen.usable

    @property
    def planning_warning(self) -> str | None:
        m = self.chosen
        limit = self.max_holdout_mape
        return holdout_warning(m.holdout_mape, limit) if m is not None and m.holdout_mape is not None \
            and limit is not None and m.holdout_mape > limit else None

    @property
    def reason(self) -> str:
        if self.chosen is not None:
            r = self.rungs[self.chosen_rung]
            head = (f"model {self.chosen.model_id} passed its gate on rung {self.chosen_rung + 1} of the ladder "
                    f"({r.label})")
            return head + ("" if self.chosen_rung == 0 else
                           "; finer rungs failed: " + "; ".join(f"{o.label}: {o.detail}" for o in self.rungs[:self.chosen_rung]))
        return "no model passed its gate: " + "; ".join(f"{o.label}: {o.detail}" for o in self.rungs)


def panel_for(frame: pd.DataFrame, weather: pd.DataFrame | None, spec, rung) -> ModelData:
    """The panel a ladder rung fits: the built grain's rows at the rung's period, coarsened to its grain, with its
    weather terms and the spec's controls."""
    from weathervane.mmm.data import coarsen, with_weather

    data = prepare_model_data(frame, weather, rung.period, weather_vars=spec.weather_vars, controls=spec.controls)
    if spec.channels:
        keep = [c for c in data.channels if c in set(spec.channels)] or data.channels
        if keep != data.channels:
            from dataclasses import replace

            idx = [data.channels.index(c) for c in keep]
            data = replace(data, channels=keep, spend=data.spend[:, :, idx])
    data = coarsen(data, rung.grain_product, rung.grain_geo)
    return with_weather(data, rung.weather_vars)


def fit_ladder(connect: Connect, tenant_id: str, spec, *, base: FitSettings | None = None,
               store: Path | str, reports: Path | str | None, audience=None,
               progress: Report | None = None, say: Callable[[str], None] | None = None,
               max_holdout_mape: float | None = None) -> LadderFit:
    """Fit the spec's first rung; on a missed gate step down its ladder while the time budget lasts. Every fit is
    stored (failed ones as failed_diagnostics); the choice is written to mmm.model_selection, which the plan,
    experiment, audit and replay steps read (weathervane.mmm.store.selected_model)."""
    from weathervane.grain import built_grains

    say = say or (lambda _: None)
    config.validate_tenant_id(tenant_id)
    started = time.monotonic()
    deadline = started + spec.time_budget_s
    with connect(True) as con:
        built = built_grains(con, tenant_id)
        finest = _finest_built(built, spec)
        frame, weather = read_model_input(con, tenant_id, finest[0], finest[1], None)
        lift_raw = read_lift_tests(con, tenant_id)
    rungs: list[RungOutcome] = []
    chosen, chosen_rung = None, None
    for i, rung in enumerate(spec.ladder()):
        outcome = RungOutcome(rung=i, label=rung.label, reason=rung.reason, status="skipped")
        rungs.append(outcome)
        left = deadline - time.monotonic()
        last = next((o for o in reversed(rungs[:-1]) if o.seconds), None)
        if i > 0 and last is not None and left < 0.5 * last.seconds:
            outcome.detail = f"skipped: {max(left, 0):.0f} s of the {spec.time_budget_s:.0f} s budget left"
            continue
        t0 = time.monotonic()
        try:
            data = panel_for(frame, weather, spec, rung)
        except ModelInputError as exc:
            outcome.status, outcome.detail = "error", str(exc)
            continue
        say(f"rung {i + 1}: fitting {rung.label} ({data.kpi.size:,} observations)")
        settings = spec.fit_settings(base, rung)
        fitted = fit_panel(data, settings, lift_raw=lift_raw, store=store, reports=reports, audience=audience,
                           progress=progress, deadline=deadline, max_holdout_mape=max_holdout_mape,
                           extra_meta={"ladder_rung": i + 1, "ladder_label": rung.label, "spec_id": spec.spec_id,
                                       "weather_reason": spec.reasons.get("weather_vars", "")})
        with connect(False) as con:
            write_model_outputs(con, fitted.model_id, fitted.frames)
        d = fitted.diagnostics
        outcome.seconds = time.monotonic() - t0
        outcome.model_id, outcome.status = fitted.model_id, fitted.status
        outcome.detail = (f"max r-hat {_num(d['max_rhat'])}, min bulk ESS {_num(d['min_ess_bulk'], 0)}, "
                          f"{d['divergences']} divergence(s), {outcome.seconds:.0f} s")
        say(f"rung {i + 1}: {fitted.status} — {outcome.detail}")
        if fitted.usable:
            chosen, chosen_rung = fitted, i
            break
    result = LadderFit(tenant_id=tenant_id, spec_id=spec.spec_id, chosen=chosen, chosen_rung=chosen_rung,
                       rungs=rungs, seconds=time.monotonic() - started, max_holdout_mape=max_holdout_mape)
    with connect(False) as con:
        write_selection(con, result)
    return result


def _num(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _finest_built(built, spec) -> tuple[str | None, str | None]:
    """The built grain the spec's ladder starts from: the spec's own when harmonize built it, else the finest
    built grain the spec's grain can be coarsened from."""
    if not built:
        return spec.grain_product, spec.grain_geo
    levels_p, levels_g = ("all", "category", "product"), ("country", "region")
    for g in built:
        if (g.product, g.geo) == spec.grain:
            return g.product, g.geo
    finer = [g for g in built if levels_p.index(g.product) >= levels_p.index(spec.grain_product)
             and levels_g.index(g.geo) >= levels_g.index(spec.grain_geo) and g.product != "product"]
    if finer:
        g = min(finer, key=lambda g: (levels_p.index(g.product), levels_g.index(g.geo)))
        return g.product, g.geo
    raise ModelInputError(f"marts.fct_model_input holds {', '.join(f'{g.product} × {g.geo}' for g in built)} for "
                          f"{spec.tenant_id}; the model spec asks for {spec.grain_product} × {spec.grain_geo}: "
                          "materialize the harmonize step again")


def fit_tenant_spec(connect: Connect, tenant_id: str, tenant_config, overrides: dict | None = None, *,
                    method: str = "nuts", holdout_weeks: int = 8, max_rhat: float = 1.05,
                    min_ess_bulk: float = 200.0, max_divergences: int = 0, seed: int = 0,
                    store: Path | str, reports: Path | str | None, audience=None,
                    progress: Report | None = None, say: Callable[[str], None] | None = None):
    """The fit step every path runs (the Dagster asset, the demo, `proof`, the benches): the tenant's model spec
    with this run's overrides, then its ladder. Returns (LadderFit, the spec used, the base FitSettings)."""
    from weathervane.spec import resolve_spec

    with connect(True) as con:
        spec = resolve_spec(con, tenant_id, tenant_config, overrides)
    for line in spec.describe():
        (say or (lambda _: None))(f"model spec {line}")
    base = FitSettings(method=method, holdout_weeks=holdout_weeks, max_rhat=max_rhat, min_ess_bulk=min_ess_bulk,
                       max_divergences=max_divergences, seed=seed)
    ladder = fit_ladder(connect, tenant_id, spec, base=base, store=store, reports=reports, audience=audience,
                        progress=progress, say=say, max_holdout_mape=tenant_config.planning.max_holdout_mape)
    return ladder, spec, base


def fit_tenant(connect: Connect, tenant_id: str, settings: FitSettings | None = None, *,
               grain_product: str | None = None, grain_geo: str | None = None, period: str | None = None,
               store: Path | str, reports: Path | str | None, audience=None) -> FittedModel:
    """One fit of one panel, no ladder (tests and benches of the model itself): read fct_model_input (and lift
    tests), close the warehouse, fit, then reopen it to write the mmm tables.

    `connect(read_only)` returns a context manager yielding a DuckDB connection (the Dagster resource's
    `connect`, or `duckdb_connect` below).
    """
    settings = settings or FitSettings()
    config.validate_tenant_id(tenant_id)
    with connect(True) as con:
        frame, weather = read_model_input(con, tenant_id, grain_product, grain_geo, period)
        lift_raw = read_lift_tests(con, tenant_id)
    data = prepare_model_data(frame, weather, period)
    fitted = fit_panel(data, settings, lift_raw=lift_raw, store=store, reports=reports, audience=audience)
    with connect(False) as con:
        write_model_outputs(con, fitted.model_id, fitted.frames)
    return fitted


def duckdb_connect(path: Path | str) -> Connect:
    """A `connect(read_only)` over a DuckDB file."""
    from contextlib import contextmanager

    import duckdb

    @contextmanager
    def _connect(read_only: bool):
        target = Path(path)
        con = duckdb.connect(str(target), read_only=read_only and target.exists())
        try:
            yield con
        finally:
            con.close()

    return _connect
