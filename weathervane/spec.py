"""The model spec: what a tenant's data can carry, decided once, with a reason for every field.

One order of precedence, read by every path (the UI's Materialize all, sensors, the schedule, backfills, the
demo, `proof`, the benches): the data's decision (the sniff) < tenant.yaml pins (`grain:` and `model:`) < run
config for one run. A pin the data cannot carry is refused with its reason and the data's decision stands, so a
launch never runs a fit that cannot finish. Grain and period are decided here and nowhere else; dbt builds the
grain this module names, and the fit reads the period and everything else from the spec.

A fit that misses its diagnostics gate steps down the spec's ladder (coarser period, then coarser grain, then
fewer weather terms) within the spec's time budget; see weathervane.mmm.pipeline.fit_ladder.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from weathervane.config import TenantConfig, validate_tenant_id

from weathervane.grain import ALLOCATION_WINDOW_DAYS, GEO_LEVELS, PRODUCT_LEVELS


def adstock_lags(period: str) -> int:
    """The default carry-over length in periods (the one home of this default; a spec's or FitSettings'
    adstock_max_lag overrides it). Weekly: 10 weeks, so a decay of up to about 0.7 a week (carry-over felt for 8+
    weeks) is not cut short; the learnt decay decides how much of it is used. Daily: the simulator's carry-over
    reaches 8 days."""
    return 8 if period == "day" else 10


PERIODS = ("day", "week")
WEATHER_VARS = ("temperature_2m_mean", "precipitation_sum")

# Compute: what a fit on two cores finishes inside the launch budget. A daily panel of 6 regions over two years
# (4,380 cell-days) sampled in ~64 s a try; the 17,520 cell-days of category × region daily took 41 minutes and
# still missed the gate. Above these sizes the coarser choice is taken, with the size as the reason.
MAX_DAILY_CELL_DAYS = 3_000
MAX_CELLS = 30
# Seconds the fit step may spend over all rungs of the ladder (tries and holdout included); the rest of a
# launch (ingest, dbt, plan, audit, replay) fits in the remaining minutes of a 10-minute launch.
FIT_TIME_BUDGET_S = 420.0
# 1000 draws: at 500 the first try's minimum bulk ESS sat at 170-260 around the gate's 200 (half the fits retried
# at twice the cost); sampling is the cheap part of a fit (compiling is most of a weekly fit's seconds).
DRAWS, TUNE, CHAINS = 1000, 500, 2

SOURCE_DATA, SOURCE_PIN, SOURCE_RUN, SOURCE_DEFAULT = "data", "tenant.yaml", "run config", "default"
SAMPLER_FIELDS = ("draws", "tune", "chains", "time_budget_s")
TABLE = "ops.model_spec"
DDL = """
CREATE TABLE IF NOT EXISTS ops.model_spec (
    tenant_id VARCHAR NOT NULL,
    spec_id VARCHAR NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    field VARCHAR NOT NULL,
    value VARCHAR,
    source VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    reason VARCHAR
)"""
COLUMNS = ("tenant_id", "spec_id", "decided_at", "field", "value", "source", "status", "reason")


class SpecError(ValueError):
    """A run-config override names a field or value the spec does not have."""


@dataclass(frozen=True)
class Rung:
    """One step of the fallback ladder: what a fit at this step models."""

    period: str
    grain_product: str
    grain_geo: str
    weather_vars: tuple[str, ...]
    reason: str

    @property
    def label(self) -> str:
        weather = ", ".join(self.weather_vars) if self.weather_vars else "no weather terms"
        return f"{self.grain_product} × {self.grain_geo}, {self.period}ly, {weather}"


@dataclass
class ModelSpec:
    tenant_id: str
    period: str = "week"
    grain_product: str = "all"
    grain_geo: str = "region"
    channels: tuple[str, ...] = ()  # empty: every channel with spend
    held_channels: tuple[str, ...] = ()  # in the model, but the data cannot measure them: plans keep their spend
    controls: tuple[str, ...] | None = None  # None: every control the data has (promotions, sends, holidays, ...)
    weather_vars: tuple[str, ...] = WEATHER_VARS
    adstock_max_lag: int | None = None  # None: adstock_lags(period)
    draws: int = DRAWS
    tune: int = TUNE
    chains: int = CHAINS
    time_budget_s: float = FIT_TIME_BUDGET_S
    reasons: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # pinned field -> why the data cannot carry it
    spec_id: str = ""
    decided_at: datetime | None = None

    FIELDS = ("period", "grain_product", "grain_geo", "channels", "held_channels", "controls", "weather_vars",
              "adstock_max_lag", "draws", "tune", "chains", "time_budget_s")

    @property
    def grain(self) -> tuple[str, str]:
        return self.grain_product, self.grain_geo

    @property
    def lags(self) -> int:
        return self.adstock_max_lag or adstock_lags(self.period)

    def value(self, name: str) -> Any:
        v = getattr(self, name)
        return list(v) if isinstance(v, tuple) else v

    def ladder(self) -> list[Rung]:
        """The spec itself, then coarser period, coarser grain and fewer weather terms, each once."""
        rungs = [Rung(self.period, self.grain_product, self.grain_geo, self.weather_vars, "the spec")]

        def step(reason: str, **change) -> None:
            last = rungs[-1]
            nxt = replace(last, reason=reason, **change)
            if nxt != last and all((r.period, r.grain_product, r.grain_geo, r.weather_vars)
                                   != (nxt.period, nxt.grain_product, nxt.grain_geo, nxt.weather_vars) for r in rungs):
                rungs.append(nxt)

        if self.period == "day":
            step("weeks average the daily noise", period="week")
        if self.grain_product != "all":
            step("one product cell per geo pools the categories' noise", grain_product="all")
        if self.grain_geo == "region":
            step("one national cell: no geo differences to estimate", grain_geo="country")
        if len(self.weather_vars) > 1:
            step("one weather term (temperature) instead of all", weather_vars=self.weather_vars[:1])
        if self.weather_vars:
            step("no weather terms: the plain media model", weather_vars=())
        return rungs

    def fit_settings(self, base=None, rung: Rung | None = None):
        """FitSettings for this spec (or one rung of its ladder): draws, chains, weather and carry-over."""
        from weathervane.mmm.model import FitSettings

        base = base or FitSettings()
        period = rung.period if rung else self.period
        lags = self.adstock_max_lag if self.adstock_max_lag and period == self.period else adstock_lags(period)
        return replace(base, draws=self.draws, tune=self.tune, chains=self.chains,
                       weather=bool(rung.weather_vars if rung else self.weather_vars), adstock_max_lag=lags)

    def rows(self) -> list[tuple]:
        at = self.decided_at or datetime.now(UTC).replace(tzinfo=None)
        out = []
        for name in self.FIELDS:
            out.append((self.tenant_id, self.spec_id, at, name, json.dumps(self.value(name)),
                        self.sources.get(name, SOURCE_DEFAULT), "ok", self.reasons.get(name, "")))
        for name, why in self.refused.items():
            out.append((self.tenant_id, self.spec_id, at, name, None, SOURCE_PIN, "refused", why))
        return out

    def describe(self) -> list[str]:
        """One line per field: value, where it came from and why; refused pins last."""
        lines = [f"{name}: {json.dumps(self.value(name))} ({self.sources.get(name, SOURCE_DEFAULT)}) — "
                 f"{self.reasons.get(name, '')}" for name in self.FIELDS]
        lines += [f"tenant.yaml pin {name} refused — {why}" for name, why in self.refused.items()]
        return lines

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decided_at"] = str(self.decided_at) if self.decided_at else None
        return d


def _cells(grain_product: str, grain_geo: str, n_regions: int, n_categories: int) -> int:
    return max(n_regions, 1) * (max(n_categories, 1) if grain_product == "category" else 1) \
        if grain_geo == "region" else (max(n_categories, 1) if grain_product == "category" else 1)


def decide_spec(profile, decisions, cfg: TenantConfig) -> ModelSpec:
    """The spec from the sniff's profile and decisions, with tenant.yaml's pins applied where the data carries them."""
    p, d = profile, decisions
    spec = ModelSpec(tenant_id=validate_tenant_id(p.tenant_id))
    why, src = spec.reasons, spec.sources
    n_regions = len(p.region_geos) or len(p.aggregated_geos)
    n_categories = len([c for c in p.category_orders if c != "uncategorized"])
    days = max(p.span_days, 1)
    aggregated = p.orders == 0 and p.aggregated_rows > 0

    # grain: the sniff's finest supported grain, then capped by what a fit finishes
    spec.grain_product, spec.grain_geo = d.grain_product.value, d.grain_geo.value
    why["grain_product"], why["grain_geo"] = d.grain_product.reason, d.grain_geo.reason
    src["grain_product"] = src["grain_geo"] = SOURCE_DATA
    if aggregated:
        geo = "region" if len([g for g in p.aggregated_geos if g != "US"]) > 0 else "country"
        spec.grain_product, spec.grain_geo = "all", geo
        why["grain_product"] = "an aggregated MMM table has no product split"
        why["grain_geo"] = ("the aggregated table has one row per geo and period" if geo == "region"
                            else "the aggregated table has no geo column (one market)")
    pin = cfg.grain
    if pin is not None:
        for level, wanted, allowed in (("grain_product", pin.product, PRODUCT_LEVELS),
                                       ("grain_geo", pin.geo, GEO_LEVELS)):
            if wanted is None or wanted == getattr(spec, level):
                if wanted is not None:
                    src[level] = SOURCE_PIN
                continue
            finer = allowed.index(wanted) > allowed.index(getattr(spec, level))
            if finer:
                spec.refused[level] = (f"tenant.yaml asks for {wanted}; the data carries {getattr(spec, level)}: "
                                       f"{why[level]}")
            else:  # a coarser grain than the data allows is always carried
                setattr(spec, level, wanted)
                src[level], why[level] = SOURCE_PIN, f"pinned in tenant.yaml (the data would carry {why[level]})"
    cells = _cells(spec.grain_product, spec.grain_geo, n_regions, n_categories)
    if spec.grain_product != "all" and cells > MAX_CELLS:
        spec.refused.setdefault("grain_product", f"{cells} cells at {spec.grain_product} × {spec.grain_geo} "
                                                 f"(a fit within the budget holds {MAX_CELLS})")
        spec.grain_product = "all"
        why["grain_product"] = f"{cells} cells would exceed the {MAX_CELLS} a fit finishes within its budget"
        src["grain_product"] = SOURCE_DATA
        cells = _cells("all", spec.grain_geo, n_regions, n_categories)

    # period: the sniff's noise rule, then the compute rule
    spec.period, why["period"], src["period"] = d.period.value, d.period.reason, SOURCE_DATA
    if aggregated and p.aggregated_period:
        # the table is modelled at the period it was delivered in (fct_model_input keeps its rows as they are)
        spec.period = p.aggregated_period
        why["period"] = f"the aggregated table is {'weekly' if spec.period == 'week' else 'daily'}"
    if spec.period == "day" and cells * days > MAX_DAILY_CELL_DAYS and not aggregated:
        spec.period = "week"
        why["period"] = (f"{d.period.reason}; but a daily fit would be {cells:,} cells × {days:,} days = "
                         f"{cells * days:,} cell-days (a fit within the launch budget holds "
                         f"{MAX_DAILY_CELL_DAYS:,}): weekly")
    pins = cfg.model
    if pins is not None and pins.period is not None and pins.period != spec.period:
        if pins.period == "day":
            spec.refused["period"] = f"tenant.yaml asks for daily; {why['period']}"
        else:
            spec.period, src["period"], why["period"] = "week", SOURCE_PIN, "pinned in tenant.yaml"
    elif pins is not None and pins.period is not None:
        src["period"] = SOURCE_PIN

    # channels
    spec.channels = tuple(c.channel for c in d.channels) or tuple(getattr(p, "aggregated_channels", ()) or ())
    src["channels"] = SOURCE_DATA
    why["channels"] = (f"{len(spec.channels)} channel(s) with spend" if spec.channels else "no paid channel found")
    held = [c for c in d.channels if not c.identifiable]
    spec.held_channels = tuple(c.channel for c in held)
    src["held_channels"] = SOURCE_DATA
    why["held_channels"] = ("; ".join(f"{c.channel}: {c.reason}" for c in held) if held
                            else "every channel's spend moves enough to be measured")
    if pins is not None and pins.held_channels is not None:
        spec.held_channels = tuple(sorted(set(spec.held_channels) | set(pins.held_channels)))
        src["held_channels"], why["held_channels"] = SOURCE_PIN, f"pinned in tenant.yaml; {why['held_channels']}"

    # controls: every control the data has (the fit drops those that never move)
    src["controls"] = SOURCE_DATA
    why["controls"] = (("delivered columns by name (" + ", ".join(p.aggregated_controls) + "), " if
                        p.aggregated_controls else "") + "holidays, peak season and trend"
                       if aggregated else "promotions, lifecycle sends, holidays, peak season, trend and weekday "
                       "where daily; controls that never move are dropped at fit time")
    if pins is not None and pins.controls is not None:
        spec.controls, src["controls"], why["controls"] = tuple(pins.controls), SOURCE_PIN, "pinned in tenant.yaml"

    # weather
    if d.weather.value == "yes":
        spec.weather_vars, why["weather_vars"] = WEATHER_VARS, d.weather.reason
    else:
        spec.weather_vars, why["weather_vars"] = (), d.weather.reason
    src["weather_vars"] = SOURCE_DATA
    if pins is not None and pins.weather is not None:
        wanted = tuple(WEATHER_VARS if pins.weather is True else () if pins.weather is False else pins.weather)
        extra = [v for v in wanted if v not in spec.weather_vars]
        if extra:
            spec.refused["weather_vars"] = f"tenant.yaml asks for {', '.join(extra)}; {d.weather.reason}"
        spec.weather_vars = tuple(v for v in wanted if v in spec.weather_vars)
        src["weather_vars"] = SOURCE_PIN
        why["weather_vars"] = f"pinned in tenant.yaml; {d.weather.reason}"

    # carry-over and sampler
    spec.adstock_max_lag = adstock_lags(spec.period)
    src["adstock_max_lag"] = SOURCE_DEFAULT
    why["adstock_max_lag"] = (f"{spec.adstock_max_lag} {spec.period}s: long enough for the carry-over brands "
                              "show at this period; the decay itself is estimated")
    if pins is not None and pins.adstock_max_lag is not None:
        spec.adstock_max_lag, src["adstock_max_lag"] = pins.adstock_max_lag, SOURCE_PIN
        why["adstock_max_lag"] = "pinned in tenant.yaml"
    for name, default, text in (("draws", DRAWS, "draws per chain after tuning"), ("tune", TUNE, "tuning steps"),
                                ("chains", CHAINS, "one chain per core on a 2-core worker")):
        pinned = getattr(pins, name, None) if pins is not None else None
        setattr(spec, name, pinned or default)
        src[name] = SOURCE_PIN if pinned else SOURCE_DEFAULT
        why[name] = text
    budget = getattr(pins, "fit_minutes", None) if pins is not None else None
    spec.time_budget_s = 60.0 * budget if budget else FIT_TIME_BUDGET_S
    src["time_budget_s"] = SOURCE_PIN if budget else SOURCE_DEFAULT
    why["time_budget_s"] = "seconds the fit may spend over all rungs of its ladder"
    spec.spec_id = uuid.uuid4().hex[:12]
    spec.decided_at = datetime.now(UTC).replace(tzinfo=None)
    return spec


def default_spec(tenant_id: str, cfg: TenantConfig) -> ModelSpec:
    """The spec before any sniff: the defaults with tenant.yaml's pins on top (no data to refuse them with)."""
    spec = ModelSpec(tenant_id=validate_tenant_id(tenant_id))
    if cfg.grain is not None:
        spec.grain_product = cfg.grain.product or spec.grain_product
        spec.grain_geo = cfg.grain.geo or spec.grain_geo
        spec.sources["grain_product"] = spec.sources["grain_geo"] = SOURCE_PIN
    pins = cfg.model
    if pins is not None:
        for name in ("period", "adstock_max_lag", "draws", "tune", "chains"):
            if getattr(pins, name) is not None:
                setattr(spec, name, getattr(pins, name))
                spec.sources[name] = SOURCE_PIN
    spec.adstock_max_lag = spec.adstock_max_lag or adstock_lags(spec.period)
    for name in spec.FIELDS:
        spec.reasons.setdefault(name, "not sniffed yet: the default" if spec.sources.get(name) != SOURCE_PIN
                                else "pinned in tenant.yaml")
    return spec


def write_spec(con, spec: ModelSpec, *, in_transaction: bool = False) -> int:
    """Replace the tenant's spec in ops.model_spec, in one transaction (or the caller's)."""
    from contextlib import nullcontext

    from weathervane.warehouse import transaction

    rows = spec.rows()
    with nullcontext() if in_transaction else transaction(con):
        con.execute("CREATE SCHEMA IF NOT EXISTS ops")
        con.execute(DDL)
        con.execute(f"DELETE FROM {TABLE} WHERE tenant_id = ?", [spec.tenant_id])
        con.executemany(f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                        rows)
    return len(rows)


def read_spec(con, tenant_id: str) -> ModelSpec | None:
    """The tenant's stored spec (None when it was never sniffed)."""
    from weathervane.warehouse import table_exists

    tenant_id = validate_tenant_id(tenant_id)
    if not table_exists(con, "ops", "model_spec"):
        return None
    rows = con.execute(f"SELECT field, value, source, status, reason, spec_id, decided_at FROM {TABLE} "
                       "WHERE tenant_id = ?", [tenant_id]).fetchall()
    if not rows:
        return None
    spec = ModelSpec(tenant_id=tenant_id, spec_id=rows[0][5], decided_at=rows[0][6])
    for name, value, source, status, reason, _, _ in rows:
        if status == "refused":
            spec.refused[name] = reason
            continue
        if name not in ModelSpec.FIELDS:
            continue
        v = json.loads(value)
        # a sampler default follows the release, not the day the spec was stored (a fit-only run reads it)
        if not (name in SAMPLER_FIELDS and source == SOURCE_DEFAULT):
            setattr(spec, name, tuple(v) if isinstance(v, list) else v)
        spec.sources[name], spec.reasons[name] = source, reason
    return spec


def apply_overrides(spec: ModelSpec, overrides: Mapping[str, Any] | None) -> ModelSpec:
    """Run config on top of the spec for one run: every non-None field replaces the spec's, marked as such."""
    if not overrides:
        return spec
    out = replace(spec, reasons=dict(spec.reasons), sources=dict(spec.sources), refused=dict(spec.refused))
    for name, v in overrides.items():
        if v is None:
            continue
        if name not in ModelSpec.FIELDS:
            raise SpecError(f"run config: unknown model spec field {name!r}; fields: {', '.join(ModelSpec.FIELDS)}")
        checks = {"period": PERIODS, "grain_product": PRODUCT_LEVELS, "grain_geo": GEO_LEVELS}
        if name in checks and v not in checks[name]:
            raise SpecError(f"run config: field {name} must be one of {', '.join(checks[name])}, got {v!r}")
        if name == "weather_vars" and any(w not in WEATHER_VARS for w in v):
            raise SpecError(f"run config: field weather_vars takes {', '.join(WEATHER_VARS)}, got {v!r}")
        if name in ("draws", "tune", "chains", "adstock_max_lag") and (not isinstance(v, int) or v < 1):
            raise SpecError(f"run config: field {name} must be a positive whole number, got {v!r}")
        setattr(out, name, tuple(v) if isinstance(v, list) else v)
        out.sources[name], out.reasons[name] = SOURCE_RUN, "set for this run in its run config"
    if "period" in overrides and overrides.get("period") and "adstock_max_lag" not in overrides:
        out.adstock_max_lag = adstock_lags(out.period)
    return out


def resolve_spec(con, tenant_id: str, cfg: TenantConfig, overrides: Mapping[str, Any] | None = None) -> ModelSpec:
    """The spec a run uses: the stored one (or the defaults with pins before any sniff), then the run's overrides."""
    spec = read_spec(con, tenant_id) or default_spec(tenant_id, cfg)
    return apply_overrides(spec, overrides)


def dbt_vars(tenant_id: str, cfg: TenantConfig, spec: ModelSpec) -> dict[str, Any]:
    """The `--vars` of a dbt run for one tenant: its id, timezone and the spec's grain."""
    return {
        "tenant_id": validate_tenant_id(tenant_id),
        "timezone": cfg.timezone,
        "grain_product": spec.grain_product,
        "grain_geo": spec.grain_geo,
        "allocation_window_days": ALLOCATION_WINDOW_DAYS,
    }
