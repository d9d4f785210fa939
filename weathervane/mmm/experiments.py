"""Geo lift-test designs for channels whose return the data cannot identify (`needs_experiment`).

For each flagged channel: the treated geos and their matched control geos (the other geos whose KPI moved most
closely with theirs over the pre-period, weekly, Pearson correlation), a spend change in the treated geos and a
duration, the smallest such design whose measured lift is expected to be precise enough to decide the channel's
return (or a plain statement that no feasible test is), and the interval width the test should give. The lift
the model expects comes from its own posterior response at the treated geos' recent spend; the measurement
noise is the model's per-period observation noise (the likelihood sigma): the treated geos' lift is read
against a counterfactual of their controls scaled to their level, so over D periods
var(lift) = D sum_T sigma_t^2 + D sum_j (r_j sigma_j / k)^2.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from weathervane.config import validate_tenant_id
from weathervane.periods import period_length

DURATIONS_DAYS = (14, 21, 28, 42, 56)
SPEND_MULTIPLIER = 1.5  # the treated geo's spend during the smallest test, relative to its recent spend
SPEND_MULTIPLIERS = (SPEND_MULTIPLIER, 2.0, 3.0)  # larger changes tried when the smallest test is underpowered
PRE_PERIOD_DAYS = 182
MAX_CONTROLS = 3
MIN_CONTROL_CORR = 0.5
# precise enough: the 90% interval of the measured lift no wider than the lift itself (ROAS known to +-50%), so
# it excludes zero with room to spare
TARGET_RELATIVE_WIDTH = 1.0
Z90 = 1.6449

COLUMNS: list[tuple[str, str]] = [
    ("model_id", "VARCHAR"), ("tenant_id", "VARCHAR"), ("channel", "VARCHAR"), ("created_at", "TIMESTAMP"),
    ("treated_geo_ids", "VARCHAR"), ("control_geo_ids", "VARCHAR"), ("pre_period_start", "DATE"),
    ("pre_period_end", "DATE"), ("pre_period_corr", "DOUBLE"), ("duration_days", "INTEGER"),
    ("spend_multiplier", "DOUBLE"), ("spend_change", "DOUBLE"), ("expected_lift_mean", "DOUBLE"),
    ("expected_lift_p05", "DOUBLE"), ("expected_lift_p95", "DOUBLE"), ("expected_interval_width", "DOUBLE"),
    ("expected_roas_interval_width", "DOUBLE"), ("powered", "BOOLEAN"), ("why_flagged", "VARCHAR"),
    ("design_note", "VARCHAR"),
]


def _model_arrays(tree, resp) -> tuple[pd.DataFrame, np.ndarray]:
    """KPI [date x geo] (currency, cells summed to geos) and the per-period noise sd per geo (currency)."""
    const, post = tree["constant_data"], tree["posterior"]
    target = const["target_data"].transpose("date", "geo").values.astype(float)  # [date, cell]
    cells = list(resp.geos)
    geos = list(dict.fromkeys(resp.cell_geo.get(c, c) for c in cells))
    member = np.array([[resp.cell_geo.get(c, c) == g for g in geos] for c in cells], dtype=float)  # [cell, geo]
    kpi = pd.DataFrame(np.nan_to_num(target) @ member, index=pd.DatetimeIndex(resp.dates), columns=geos)
    sigma_name = next((n for n in ("y_sigma", "likelihood_sigma") if n in post), None)
    if sigma_name is not None:
        s = post[sigma_name].mean(("chain", "draw"))
        sigma_cell = (np.broadcast_to(np.asarray(s.values, dtype=float), (len(cells),)) * resp.target_scale)
    else:  # the residual spread around the fitted mean
        mu = post["mu"].mean(("chain", "draw")).transpose("date", "geo").values * resp.target_scale[None]
        sigma_cell = np.nanstd(target - mu, axis=0)
    sigma_geo = np.sqrt((sigma_cell ** 2) @ member)
    return kpi, sigma_geo


def _controls_for(pre: pd.DataFrame, treated: list[str], period_days: int) -> list[tuple[str, float]]:
    """The geos (not treated) whose weekly KPI moved most closely with the treated geos' total."""
    others = [g for g in pre.columns if g not in treated]
    if not others:
        return []
    weekly = pre.resample("W").sum() if period_days == 1 else pre
    total = weekly[treated].sum(axis=1)
    corr = [(o, float(total.corr(weekly[o]))) for o in others]
    return sorted([oc for oc in corr if np.isfinite(oc[1]) and oc[1] >= MIN_CONTROL_CORR], key=lambda oc: -oc[1])[
        :MAX_CONTROLS]


def design_for_channel(resp, kpi: pd.DataFrame, sigma: np.ndarray, channel: str) -> dict:
    """One lift-test design for `channel` (see the module docstring), sized to be powered.

    Designs are tried from the smallest: +50% spend in one geo, then larger spend changes (SPEND_MULTIPLIERS), then
    more treated geos (by spend), each for the durations in DURATIONS_DAYS; the first whose expected 90% interval
    is no wider than the lift it expects (so it excludes zero) is the design. When none is, the smallest design's
    longest test is returned with powered False and a note that no feasible test is powered."""
    period_days = period_length(resp.period)
    geos = list(kpi.columns)
    ci = resp.channels.index(channel)
    pre_n = max(1, PRE_PERIOD_DAYS // period_days)
    pre = kpi.iloc[-pre_n:]
    cell_geo = np.array([resp.cell_geo.get(c, c) for c in resp.geos])
    spend_geo = np.array([resp.observed_spend[-pre_n:, ci, cell_geo == g].sum() for g in geos])
    spent = [g for gi, g in enumerate(geos) if spend_geo[gi] > 0]
    if not spent:
        raise ValueError(f"channel {channel} has no spend in the pre-period: nothing to test")
    # the first treated geo: matched controls first, then the most spend (the largest measurable change)
    first = max(spent, key=lambda g: (bool(_controls_for(pre, [g], period_days)), spend_geo[geos.index(g)]))
    by_spend = [first] + sorted((g for g in spent if g != first), key=lambda g: -spend_geo[geos.index(g)])
    lags = max(int(resp.l_max) - 1, 0)

    def evaluate(treated: list[str], multiplier: float, days: int) -> dict | None:
        controls = _controls_for(pre, treated, period_days)
        level_t = float(pre[treated].sum(axis=1).mean())
        ratios = [level_t / float(pre[c].mean()) if pre[c].mean() > 0 else 0.0 for c, _ in controls]
        k = max(len(controls), 1)
        var = sum(sigma[geos.index(t)] ** 2 for t in treated) + sum(
            (r * sigma[geos.index(c)] / k) ** 2 for (c, _), r in zip(controls, ratios))
        n = max(1, days // period_days)
        window = resp.observed_spend[-(lags + n):].copy()
        if len(window) < lags + n:
            return None
        cells = np.flatnonzero(np.isin(cell_geo, treated))
        test = window.copy()
        test[lags:, ci, cells] *= multiplier
        base = resp.incremental_kpi(window, n_history=lags, draws=200)[:, :, ci].sum(axis=(1, 2))
        lift = resp.incremental_kpi(test, n_history=lags, draws=200)[:, :, ci].sum(axis=(1, 2)) - base
        width = 2 * Z90 * float(np.sqrt(n * var))
        return dict(treated=treated, controls=controls, multiplier=multiplier, duration_days=n * period_days,
                    spend_change=float((test[lags:, ci, cells] - window[lags:, ci, cells]).sum()), lift=lift,
                    width=width, powered=width <= TARGET_RELATIVE_WIDTH * abs(float(lift.mean())))

    ladder = [(by_spend[:k], m) for k in range(1, max(len(by_spend) - 1, 1) + 1) for m in SPEND_MULTIPLIERS]
    smallest, best, largest = None, None, None
    for treated, m in ladder:
        for days in DURATIONS_DAYS:
            d = evaluate(treated, m, days)
            if d is None:
                break
            smallest = smallest or d
            largest = d
            if d["powered"]:
                best = d
                break
        if best is not None:
            break
    if smallest is None:
        raise ValueError(f"channel {channel}: too little history to place a test")
    note = []
    if best is None:
        # the smallest design's longest run, said plainly to be underpowered
        best = evaluate(smallest["treated"], smallest["multiplier"], DURATIONS_DAYS[-1]) or smallest
        note.append("no feasible test is powered: even the largest design tried (+"
                    f"{(largest['multiplier'] - 1):.0%} spend in {', '.join(largest['treated'])} for "
                    f"{largest['duration_days']} days) leaves the lift's 90% interval "
                    f"{largest['width'] / max(abs(float(largest['lift'].mean())), 1e-9):.1f} times the lift the "
                    "model expects; treat more geos or make the spend change larger than the brand can, or rely "
                    "on the model's interval as it is")
    if not best["controls"]:
        note.append("no geo's KPI moves with the treated geos' (pre-period weekly correlation >= "
                    f"{MIN_CONTROL_CORR}); the lift is read against the model's own forecast instead")
    lift = best["lift"]
    controls = best["controls"]
    return dict(
        channel=channel, treated_geo_ids=json.dumps(best["treated"]), control_geo_ids=json.dumps([c for c, _ in controls]),
        pre_period_start=pre.index[0].date(), pre_period_end=pre.index[-1].date(),
        pre_period_corr=float(np.mean([c for _, c in controls])) if controls else None,
        duration_days=int(best["duration_days"]), spend_multiplier=best["multiplier"],
        spend_change=round(best["spend_change"], 2), expected_lift_mean=float(lift.mean()),
        expected_lift_p05=float(np.quantile(lift, 0.05)), expected_lift_p95=float(np.quantile(lift, 0.95)),
        expected_interval_width=best["width"],
        expected_roas_interval_width=best["width"] / best["spend_change"] if best["spend_change"] > 0 else None,
        powered=bool(best["powered"]), design_note="; ".join(note) or None,
    )


def _why_flagged(con, tenant_id: str, model_id: str, channel: str) -> str | None:
    cols = {r[0] for r in con.execute("describe mmm.channel_summary").fetchall()}
    wanted = [c for c in ("roas_contraction", "spend_cv", "spend_baseline_corr", "has_lift_test") if c in cols]
    if not wanted:
        return None
    row = con.execute(f"select {', '.join(wanted)} from mmm.channel_summary where tenant_id = ? and model_id = ? "
                      "and channel = ? and geo_id is null", [tenant_id, model_id, channel]).fetchone()
    if row is None:
        return None
    return ", ".join(f"{c} {v:.2f}" if isinstance(v, float) else f"{c} {v}" for c, v in zip(wanted, row)
                     if v is not None)


def recommend_experiments(con, tenant_id: str, model_id: str, store: Path | str) -> pd.DataFrame:
    """Designs for every channel the model flags (`needs_experiment`, per channel or per geo); empty when none."""
    from weathervane.allocate.safety import read_evidence
    from weathervane.mmm.response import open_model

    tenant_id = validate_tenant_id(tenant_id)
    flagged = read_evidence(con, tenant_id, model_id).flagged_channels()
    if not flagged:
        return pd.DataFrame(columns=[c for c, _ in COLUMNS])
    tree, resp = open_model(model_id, tenant_id, store=store)
    kpi, sigma = _model_arrays(tree, resp)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for ch in flagged:
        if ch not in resp.channels:
            continue
        try:
            d = design_for_channel(resp, kpi, sigma, ch)
        except ValueError as exc:  # no design possible: say why rather than stop the plan that follows
            d = dict(channel=ch, powered=False, design_note=str(exc))
        rows.append(dict(model_id=model_id, tenant_id=tenant_id, created_at=now,
                         why_flagged=_why_flagged(con, tenant_id, model_id, ch), **d))
    return pd.DataFrame(rows, columns=[c for c, _ in COLUMNS])


def write_experiment_recommendations(con, tenant_id: str, model_id: str, frame: pd.DataFrame) -> int:
    """Replace the model's rows in mmm.experiment_recommendations (one transaction)."""
    con.execute("create schema if not exists mmm")
    con.execute(f"create table if not exists mmm.experiment_recommendations "
                f"({', '.join(f'{c} {t}' for c, t in COLUMNS)})")
    names = [c for c, _ in COLUMNS]
    from weathervane.warehouse import transaction

    with transaction(con):
        con.execute("delete from mmm.experiment_recommendations where tenant_id = ? and model_id = ?",
                    [tenant_id, model_id])
        if not frame.empty:
            con.register("_wv_experiments", frame[names])
            try:
                con.execute(f"insert into mmm.experiment_recommendations ({', '.join(names)}) "
                            f"select {', '.join(names)} from _wv_experiments")
            finally:
                con.unregister("_wv_experiments")
    return len(frame)
