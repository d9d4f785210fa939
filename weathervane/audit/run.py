"""Audit every deployment and applied plan of a tenant and write `decisions.causal_audits` in one transaction.

Reading, fitting and writing are separate steps so a caller can release the warehouse while the posteriors are
sampled. The audit id is a hash of (tenant, deployment or plan, method): re-running replaces the same rows.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from weathervane.audit.methods import ITS, SYNTH, AuditSettings, MethodResult, audit_intervention, seed_for
from weathervane.audit.panel import (
    Intervention, kpi_panel, read_applied_plans, read_deployments, spend_panel,
)
from weathervane.config import TenantConfig, validate_tenant_id

DDL = """create table if not exists decisions.causal_audits (
    audit_id varchar, tenant_id varchar, deployment_id varchar, plan_id varchar, method varchar,
    treated_geo_ids varchar[], window_start date, window_end date,
    effect_mean double, effect_p05 double, effect_p95 double, relative_effect_mean double,
    prob_positive double, pre_period_fit double, placebo_p_value double, verdict varchar,
    is_primary boolean, reason varchar, pre_period_start date, data_through date,
    relative_effect_p05 double, relative_effect_p95 double, incremental_spend double,
    iroas_mean double, iroas_p05 double, iroas_p95 double, pre_period_mape double, n_placebos integer,
    donor_weights varchar, max_rhat double, min_ess_bulk double, divergences integer,
    report_path varchar, computed_at timestamp
)"""

COLUMNS = ("audit_id", "tenant_id", "deployment_id", "plan_id", "method", "treated_geo_ids", "window_start",
           "window_end", "effect_mean", "effect_p05", "effect_p95", "relative_effect_mean", "prob_positive",
           "pre_period_fit", "placebo_p_value", "verdict", "is_primary", "reason", "pre_period_start",
           "data_through", "relative_effect_p05", "relative_effect_p95", "incremental_spend", "iroas_mean",
           "iroas_p05", "iroas_p95", "pre_period_mape", "n_placebos", "donor_weights", "max_rhat", "min_ess_bulk",
           "divergences", "report_path", "computed_at")


def ensure_audit_table(con) -> None:
    con.execute("create schema if not exists decisions")
    con.execute(DDL)


def settings_from_config(cfg: TenantConfig, **overrides) -> AuditSettings:
    audit = getattr(cfg, "audit", None)
    base = {"pre_period_days": audit.pre_period_days} if audit is not None else {}
    return AuditSettings(**{**base, **overrides})


@dataclass
class AuditInputs:
    tenant_id: str
    kpi: pd.DataFrame
    spend: dict[tuple[str, ...], pd.DataFrame]
    interventions: list[Intervention]


@dataclass
class InterventionAudit:
    intervention: Intervention
    results: list[MethodResult]
    primary: MethodResult
    report_path: Path | None = None


@dataclass
class AuditRun:
    tenant_id: str
    data_through: date | None
    audits: list[InterventionAudit] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.audits:
            out[a.primary.verdict] = out.get(a.primary.verdict, 0) + 1
        return out


def load_inputs(con, tenant_id: str, cfg: TenantConfig) -> AuditInputs:
    tenant_id = validate_tenant_id(tenant_id)
    deployments = read_deployments(con, tenant_id, cfg.timezone)
    from_plans = {d.plan_id for d in deployments if d.plan_id}
    plans = [p for p in read_applied_plans(con, tenant_id) if p.plan_id not in from_plans]
    interventions = deployments + plans
    spend = {iv.channels: spend_panel(con, tenant_id, iv.channels) for iv in interventions}
    return AuditInputs(tenant_id, kpi_panel(con, tenant_id), spend, interventions)


def primary_of(results: list[MethodResult]) -> MethodResult:
    """The synthetic control, or the interrupted time series when there were no clean donors."""
    by = {r.method: r for r in results}
    return by[ITS] if ITS in by else by[SYNTH]


def audit_key(tenant_id: str, iv: Intervention, method: str = "") -> str:
    return hashlib.sha256("|".join([tenant_id, iv.deployment_id or "", iv.plan_id or "", method]).encode()).hexdigest()


def compute_audits(inputs: AuditInputs, settings: AuditSettings, reports_dir: Path | str | None = None,
                   audience=None) -> AuditRun:
    """Audit every intervention; with `reports_dir`, write each audit's page for `audience` (reports.Audience)."""
    data_through = inputs.kpi.index.max() if not inputs.kpi.empty else None
    run = AuditRun(inputs.tenant_id, data_through)
    for iv in inputs.interventions:
        others = [o for o in inputs.interventions if o is not iv]
        seed = seed_for(inputs.tenant_id, iv.key)
        results = audit_intervention(inputs.kpi, inputs.spend.get(iv.channels), iv, others, settings, seed=seed % 2**31)
        primary = primary_of(results)
        path = None
        if reports_dir is not None:
            from weathervane.audit.report import write_audit_report

            if audience is None:
                raise ValueError("an audit page needs its tenant's audience (weathervane.reports.audience)")

            path = write_audit_report(reports_dir, inputs.tenant_id, iv, results, primary,
                                      audit_key(inputs.tenant_id, iv), audience)
        run.audits.append(InterventionAudit(iv, results, primary, path))
    return run


def _r(v, nd=6):
    return None if v is None else round(float(v), nd)


def audit_rows(run: AuditRun) -> list[dict]:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for a in run.audits:
        iv = a.intervention
        for r in a.results:
            post = r.posterior
            iroas = r.iroas
            rows.append({
                "audit_id": audit_key(run.tenant_id, iv, r.method)[:32], "tenant_id": run.tenant_id,
                "deployment_id": iv.deployment_id, "plan_id": iv.plan_id, "method": r.method,
                "treated_geo_ids": list(r.treated or iv.geo_ids), "window_start": iv.start, "window_end": iv.end,
                "effect_mean": _r(None if r.effect is None else r.effect.mean(), 2),
                "effect_p05": _r(r.q(r.effect, 0.05), 2), "effect_p95": _r(r.q(r.effect, 0.95), 2),
                "relative_effect_mean": _r(None if r.relative is None else r.relative.mean()),
                "prob_positive": _r(None if r.effect is None else (r.effect > 0).mean(), 4),
                "pre_period_fit": _r(r.pre_r2, 4), "placebo_p_value": _r(r.placebo_p, 4), "verdict": r.verdict,
                "is_primary": r is a.primary, "reason": r.reason, "pre_period_start": r.pre_start,
                "data_through": run.data_through,
                "relative_effect_p05": _r(r.q(r.relative, 0.05)), "relative_effect_p95": _r(r.q(r.relative, 0.95)),
                "incremental_spend": _r(r.incremental_spend, 2),
                "iroas_mean": _r(None if iroas is None else iroas.mean(), 4),
                "iroas_p05": _r(None if iroas is None else r.q(iroas, 0.05), 4),
                "iroas_p95": _r(None if iroas is None else r.q(iroas, 0.95), 4),
                "pre_period_mape": _r(r.pre_mape, 4),
                "n_placebos": None if r.placebo_z is None else int(len(r.placebo_z)),
                "donor_weights": json.dumps({k: round(v, 4) for k, v in r.donors.items()}) if r.donors else None,
                "max_rhat": _r(post and post.max_rhat, 4), "min_ess_bulk": _r(post and post.min_ess_bulk, 1),
                "divergences": None if post is None else post.divergences,
                "report_path": str(a.report_path) if a.report_path else None, "computed_at": now,
            })
    return rows


def write_audits(con, tenant_id: str, rows: list[dict]) -> int:
    """Replace the tenant's audits in one transaction."""
    from weathervane.warehouse import transaction

    tenant_id = validate_tenant_id(tenant_id)
    ensure_audit_table(con)
    with transaction(con):
        con.execute("delete from decisions.causal_audits where tenant_id = ?", [tenant_id])
        if rows:
            con.executemany(
                f"insert into decisions.causal_audits ({', '.join(COLUMNS)}) "
                f"values ({', '.join('?' for _ in COLUMNS)})",
                [[row[c] for c in COLUMNS] for row in rows],
            )
    return len(rows)


def run_audits(con, tenant_id: str, cfg: TenantConfig, reports_dir: Path | str | None = None,
               settings: AuditSettings | None = None, audience=None) -> AuditRun:
    """Read, audit and write in one call (for callers that may hold the warehouse throughout)."""
    inputs = load_inputs(con, tenant_id, cfg)
    run = compute_audits(inputs, settings or settings_from_config(cfg), reports_dir, audience)
    write_audits(con, tenant_id, audit_rows(run))
    return run
