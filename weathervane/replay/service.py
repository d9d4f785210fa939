"""One tenant's replay: read the logged periods, release the warehouse, fit and judge, write tables and report."""
from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable

from weathervane import config

Connect = Callable[[bool], AbstractContextManager]

REPORT_NAME = "policy_replay.html"


def candidate_policies(cfg: config.TenantConfig):
    from weathervane.replay.policies import PolicySpec, default_policies

    extra = [PolicySpec(p.name, max_change_pct=p.max_change_pct, weather=p.weather) for p in cfg.replay.policies]
    return default_policies(cfg.planning.max_change_pct, extra)


def replay_tenant(connect: Connect, tenant_id: str, cfg: config.TenantConfig, *, store: Path | str,
                  reports: Path | str, landing: Path | str, fit_settings=None, settings=None, period: str | None = None):
    """Replay every candidate over the tenant's logged decision periods and write decisions.policy_replay.

    The outcome models are fitted at cfg.replay.n_origins rolling origins with `fit_settings` (FitSettings or its
    keyword arguments; default: MAP,
    widened by a Laplace approximation so direct-method intervals carry parameter uncertainty too), at the tenant's
    model spec's period unless `period` overrides it (what the data carry is decided once, by the spec). A history
    too short for rolling origins gives rows that are not evaluable, with the reason, and no fit."""
    from weathervane import reports as rp
    from weathervane.replay.periods import load_decision_log
    from weathervane.replay.report import write_replay_report
    from weathervane.replay.run import ReplaySettings, run_replay
    from weathervane.replay.tables import write_replay

    tenant_id = config.validate_tenant_id(tenant_id)
    fit_settings = fit_settings or {"method": "map", "holdout_weeks": 0}
    settings = settings or ReplaySettings(n_origins=cfg.replay.n_origins)
    from weathervane.spec import resolve_spec

    with connect(True) as con:
        spec = resolve_spec(con, tenant_id, cfg)  # the grain harmonize built for this tenant
        log = load_decision_log(con, tenant_id, grain_product=spec.grain_product, grain_geo=spec.grain_geo,
                                period=period or spec.period, period_days=cfg.replay.period_days)
    result = run_replay(log, candidate_policies(cfg), fit_settings, settings, store=store)
    base = Path(reports)
    result.report_path = write_replay_report(result, config.tenant_dir(base, tenant_id) / REPORT_NAME,
                                             rp.Audience(cfg.currency, rp.simulated_banner(tenant_id, landing)))
    methods = sorted(set(result.models["method"])) if len(result.models) else []
    with connect(False) as con:
        write_replay(con, result, ", ".join(methods) or "none")
    return result
