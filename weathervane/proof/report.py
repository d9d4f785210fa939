"""The brand proof: one self-contained HTML page a marketer can read, from what the warehouse holds.

It reads the live tenant's sniff (ops.dataset_sniff) and the modelled tenant's outputs (the live tenant, or its
synthetic twin): model, channel returns, weather effects, the latest plan, audits, replay, identifiability and
experiment recommendations. Tables written by other stages may be absent or carry more columns: every read checks
what exists. Key numbers carry `data-key` attributes so a test can compare the page with the warehouse.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from weathervane import reports as rp
from weathervane.config import validate_tenant_id
from weathervane.sniff.decide import GAPS, TWIN
from weathervane.sniff.profile import table_exists


@dataclass
class ProofRun:
    """What the proof did: which tenant it sniffed, which it modelled, and how long each step took."""
    tenant_id: str
    model_tenant: str
    mode: str
    period: str
    fit: dict
    model_fitted: bool = False  # a model passed its gate (the proof exits non-zero otherwise)
    steps: list[tuple[str, float, str]] = field(default_factory=list)  # (step, seconds, outcome)
    truth_path: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def synthetic(self) -> bool:
        return self.mode in (TWIN, GAPS)

    @property
    def seconds(self) -> float:
        return sum(s for _, s, _ in self.steps)


def _cols(con, schema: str, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [schema, table]).fetchall()]


def _frame(con, schema: str, table: str, where: str, params: list, order: str | None = None,
           limit: int | None = None) -> pd.DataFrame:
    """All columns of `schema.table` for a fixed filter; empty frame when the table is absent. `schema`, `table`,
    `where` and `order` are literals of this module, never input."""
    if not table_exists(con, schema, table):
        return pd.DataFrame()
    sql = f'select * from "{schema}"."{table}" where {where}'
    if order:
        sql += f" order by {order}"
    if limit:
        sql += f" limit {int(limit)}"
    return con.execute(sql, params).df()


def _k(key: str, text: str) -> str:
    """A number on the page the browser test reads back."""
    return f'<span data-key="{rp.esc(key)}">{rp.esc(text)}</span>'


def _synthetic_banner(run: ProofRun) -> str | None:
    if run.mode == TWIN:
        return (f"SYNTHETIC TWIN — every number below comes from simulated data configured from {run.tenant_id}'s "
                "sniff (same scale, geos count, channels), not from the brand's own results.")
    if run.mode == GAPS:
        return (f"LIVE DATA WITH SYNTHETIC GAPS — {run.tenant_id}'s own sales and spend; missing weather filled "
                "from each geo's climate.")
    if run.truth_path:
        return (f"SIMULATED TENANT — {run.tenant_id} is simulated data with known truth, run as if it were a brand's "
                "own (live mode); the estimates are compared with the truth below.")
    return None


def _coverage_section(sniff: pd.DataFrame, currency: str) -> str:
    if sniff.empty:
        return "<p>No sniff recorded for this tenant.</p>"
    get = lambda kind, name: sniff[(sniff["kind"] == kind) & (sniff["name"] == name)]  # noqa: E731

    def num(kind, name):
        r = get(kind, name)
        return r["number"].iloc[0] if len(r) else None

    def val(kind, name):
        r = get(kind, name)
        return r["value"].iloc[0] if len(r) else None

    streams = sniff[sniff["kind"] == "stream"]
    rows = [(r.name, f"{int(r.number):,}") for r in streams.itertuples()]
    facts = [
        ("history", f"{val('sales', 'first_date') or '—'} to {val('sales', 'last_date') or '—'} "
                    f"({int(num('sales', 'history_days') or 0)} days)"),
        ("orders", f"{int(num('sales', 'orders') or 0):,}"),
        ("net revenue", rp.money(num("sales", "net_revenue"), currency)),
        ("ad spend", rp.money(num("spend", "total"), currency)),
        ("days without any order", f"{int(num('sales', 'days_without_orders') or 0)}"),
        ("typical orders per geo-day", rp.ratio(num("sales", "median_orders_per_geo_day"), 1)),
        ("geos with orders", ", ".join(sniff[sniff["kind"] == "geo"]["name"]) or "—"),
        ("categories", ", ".join(sniff[sniff["kind"] == "category"]["name"]) or "—"),
        ("weather coverage of region-days", rp.pct(num("weather", "coverage"))),
        ("weather forecast for", val("weather", "forecast_geos") or "none"),
        ("lift tests", f"{int(num('experiments', 'lift_tests') or 0)}"),
        ("automated deployments", f"{int(num('experiments', 'deployments') or 0)}"),
        ("promotions found", ", ".join(f"{r.name}: {int(r.number)}" for r in
                                       sniff[sniff["kind"] == "promotions"].itertuples()) or "—"),
    ]
    channels = sniff[sniff["kind"] == "channel"]
    ch_rows = [(rp.channel_name(r.name), r.value, rp.money(r.number, currency), r.reason) for r in channels.itertuples()]
    quarantined = sniff[sniff["kind"] == "quarantine"]
    q = ("" if quarantined.empty else "<h3>Files refused (fix and re-deliver)</h3>" +
         rp.table(["file", "where", "reason"], [(r.name, r.value, r.reason) for r in quarantined.itertuples()],
                  numeric_from=9))
    return (rp.table(["what", "found"], facts, numeric_from=9)
            + "<h3>Spend per channel</h3>"
            + (rp.table(["channel", "platform", "spend", "how it varied"], ch_rows, numeric_from=2) if ch_rows
               else "<p>No ad spend found.</p>")
            + "<h3>Records loaded per stream</h3>" + rp.table(["stream", "records"], rows) + q)


def _decisions_section(sniff: pd.DataFrame) -> str:
    d = sniff[sniff["kind"] == "decision"]
    labels = {"mode": "walkthrough runs on", "grain_product": "product level", "grain_geo": "geo level",
              "period": "period", "weather_interactions": "weather × media estimable"}
    rows = [(labels.get(r.name, r.name.replace("channel:", "channel ")), r.value.replace("_", " "), r.reason)
            for r in d.itertuples()]
    warnings = sniff[sniff["kind"] == "warning"]
    w = "".join(f"<li class=warn>{rp.esc(r.reason)}</li>" for r in warnings.itertuples())
    return (rp.table(["decision", "choice", "why"], rows, numeric_from=9)
            + (f"<h3>What to fix in the data</h3><ul class=plain>{w}</ul>" if w else ""))


def _is_point(model: pd.Series | None) -> bool:
    """A MAP (or variational) preview: one draw, so intervals and probabilities say nothing."""
    if model is None:
        return False
    return str(model.get("sampler")) in ("map", "advi") or (rp.is_number(model.get("draws"))
                                                           and int(model["draws"]) <= 1)


def _day(value) -> str:
    try:
        return str(pd.Timestamp(value).date())
    except (TypeError, ValueError):
        return str(value)


def _model_section(model: pd.Series | None) -> str:
    if model is None:
        return "<p>No model was fitted.</p>"
    ok = model["status"] == "ok"
    mape = model.get("holdout_mape")
    if _is_point(model):
        checks = ("This fit is a quick point estimate (MAP): it has no sampler checks, and its intervals below have "
                  "no width — they are not a measure of certainty. Plans need a full (NUTS) fit.")
    elif ok:
        checks = ("Its sampler checks passed: the chains agree (largest r-hat "
                  f"{rp.ratio(model['max_rhat'], 3)}, at most 1.05 wanted) and no divergent transitions were seen.")
    else:
        checks = "Its sampler checks FAILED: the numbers below are for inspection only and no plan uses this model."
    # every value from the warehouse is escaped where it enters the page
    words = [
        rp.esc(f"The model was fitted on {int(model['n_obs']):,} observations from {_day(model['train_start'])} to "
               f"{_day(model['train_end'])} ({model['grain_product']} × {model['grain_geo']})."),
        rp.esc(checks),
        (f"On the last weeks, which the fit never saw, its predictions were off by {_k('holdout_mape', rp.pct(mape, 1))} "
         "on average." if rp.is_number(mape) else "The history was too short to hold weeks out and score them."),
    ]
    return "<ul class=plain>" + "".join(f"<li>{w}</li>" for w in words) + "</ul>"


def _roas_figure(channels: pd.DataFrame, truth: dict | None) -> str:
    import numpy as np

    fig, ax = rp.new_figure(8, max(2.4, 0.55 * len(channels) + 1))
    y = np.arange(len(channels))
    ax.errorbar(channels["roas_mean"], y, xerr=[channels["roas_mean"] - channels["roas_p05"],
                                                channels["roas_p95"] - channels["roas_mean"]],
                fmt="o", color="C0", label="estimate (90% interval)")
    if truth:
        t = [truth.get(c, {}).get("roas") for c in channels["channel"]]
        ax.plot([v if v is not None else np.nan for v in t], y, "D", color="C3", label="true (simulated)")
    ax.axvline(1.0, color="grey", ls="--", label="break-even (1.0)")
    ax.set_yticks(y, [rp.channel_name(c) for c in channels["channel"]])
    ax.set_xlabel("net revenue per unit of spend (ROAS)")
    ax.legend(fontsize=8, loc="lower right")
    return rp.figure(fig, alt="Dot plot of return on ad spend per channel with 90% intervals"
                              + (" and the simulated true value" if truth else "") + ", with a break-even line at 1.",
                     caption="Return on ad spend per channel over the training window.")


def _coverage_figure(con, tenant: str, currency: str) -> str | None:
    if not table_exists(con, "marts", "fct_model_input"):
        return None
    rows = con.execute("select * from marts.fct_model_input where tenant_id = ? and period = 'week'", [tenant]).df()
    if rows.empty:
        rows = con.execute("select * from marts.fct_model_input where tenant_id = ?", [tenant]).df()
    if rows.empty:
        return None
    spend_cols = [c for c in rows.columns if c.startswith("spend_") and c != "spend_allocated_share"]
    g = rows.groupby("date")[["kpi", *spend_cols]].sum().sort_index()
    fig, ax = rp.new_figure(10, 3.4)
    ax.plot(g.index, g["kpi"], color="k", lw=1.2, label="net revenue")
    ax.set_ylabel("net revenue per period")
    ax.set_xlabel("period start")
    rp.money_axis(ax, currency)
    ax2 = ax.twinx()
    for i, c in enumerate(spend_cols):
        ax2.plot(g.index, g[c], lw=0.9, color=f"C{i}", label=f"spend: {rp.channel_name(c.removeprefix('spend_'))}")
    ax2.set_ylabel("spend per period")
    rp.money_axis(ax2, currency)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left", ncol=2)
    return rp.figure(fig, alt="Line chart over time: net revenue (left axis) and spend per channel (right axis), "
                              "summed over all cells.",
                     caption="The data the model learnt from: sales and the spend that may have driven them.")


def _channel_section(con, model_id: str, currency: str, truth: dict | None,
                     point: bool = False) -> tuple[str, pd.DataFrame]:
    cs = _frame(con, "mmm", "channel_summary", "model_id = ? and geo_id is null", [model_id], order="spend desc")
    if cs.empty:
        return "<p>No channel results.</p>", cs
    m = lambda v: rp.esc(rp.money(v, currency))  # noqa: E731 - cells below are HTML: escaped here
    rows = []
    for r in cs.itertuples():
        flag = "—"
        if "needs_experiment" in cs.columns and bool(r.needs_experiment):
            flag = "needs an experiment"
            if "roas_contraction" in cs.columns and rp.is_number(r.roas_contraction):
                flag += f" (data narrowed the prior by {rp.pct(r.roas_contraction)})"
        elif "roas_contraction" in cs.columns and rp.is_number(r.roas_contraction):
            flag = f"learnt from data (prior narrowed by {rp.pct(r.roas_contraction)})"
        row = [rp.esc(rp.channel_name(r.channel)), m(r.spend),
               f"{m(r.contribution_mean)} ({m(r.contribution_p05)}–{m(r.contribution_p95)})",
               _k(f"roas:{r.channel}", rp.ratio(r.roas_mean)) + f" ({rp.ratio(r.roas_p05)}–{rp.ratio(r.roas_p95)})",
               _k(f"mroas:{r.channel}", rp.ratio(r.mroas_mean)), rp.esc(flag)]
        if truth is not None:
            t = truth.get(r.channel, {}).get("roas")
            covered = t is not None and r.roas_p05 <= t <= r.roas_p95
            where = ("point estimate: no interval" if point else
                     f"{'inside' if covered else 'outside'} the interval")
            row.append(rp.esc(f"{rp.ratio(t)} ({where})") if t is not None else "—")
        rows.append(row)
    headers = ["channel", "spend", "net revenue brought (90% interval)", "ROAS (90% interval)", "marginal ROAS",
               "identifiability"] + (["true ROAS (simulated)"] if truth is not None else [])
    head = "".join(f"<th scope=col>{rp.esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    html_table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    note = (f"<p class=note>ROAS = net revenue a channel brought ÷ its spend, over the training window. Marginal ROAS "
            f"= what the next {m(1)} would bring at today's spend: above 1 it pays for itself.</p>")
    return note + html_table + _roas_figure(cs, truth), cs


def _weather_section(con, model_id: str, truth: dict | None) -> str:
    we = _frame(con, "mmm", "weather_effects", "model_id = ?", [model_id], order="channel, weather_variable")
    if we.empty:
        return "<p>This model has no weather interactions.</p>"
    items = []
    for r in we.itertuples():
        s = rp.weather_sentence(r.channel, r.weather_variable, r.multiplier_per_sd_mean, r.multiplier_per_sd_p05,
                                r.multiplier_per_sd_p95)
        if truth is not None:
            t = truth.get(r.channel, {}).get("multiplier_per_sd", {}).get(r.weather_variable)
            if t is not None:
                s += f" Simulated truth: {(t - 1) * 100:+.0f}%."
        items.append(f'<li data-key="weather:{rp.esc(r.channel)}:{rp.esc(r.weather_variable)}">{rp.esc(s)}</li>')
    return ("<p class=note>1 sd = one standard deviation of that geo's own daily weather history (about how much "
            "a normal day differs from the seasonal usual).</p><ul class=plain>" + "".join(items) + "</ul>")


def _promo_section(con, tenant: str, sniff: pd.DataFrame, currency: str, truth_obj) -> str:
    items = []
    promos = sniff[sniff["kind"] == "promotions"] if not sniff.empty else pd.DataFrame()
    if not promos.empty:
        items.append("Found: " + ", ".join(f"{int(r.number)} {r.name.replace('_', ' ')}" for r in promos.itertuples())
                     + ".")
    items.append("The model counts promotion days, their depth, the realised discount rate and email/SMS sends as "
                 "controls, so media is not credited with what promotions and emails did.")
    if truth_obj is not None:
        items.append(f"In the simulation, promotions truly added {rp.money(truth_obj.promo_lift_total, currency)} and "
                     f"emails/SMS {rp.money(truth_obj.lifecycle_lift_total, currency)} of net revenue "
                     f"(out of {rp.money(truth_obj.expected_revenue_total, currency)}).")
    else:
        items.append("Their own contributions are not yet reported by the model; measure them with a holdout "
                     "(skip a send to a random half of the list) before crediting them.")
    return "<ul class=plain>" + "".join(f"<li>{rp.esc(i)}</li>" for i in items) + "</ul>"


def _binding_counts(lines: pd.DataFrame) -> list[str]:
    if lines.empty:
        return []
    if "binding_constraint" in lines.columns:
        b = lines["binding_constraint"].fillna("")
        counts = b[b != ""].value_counts()
        return [f"{n} of {len(lines)} lines: {what}" for what, n in counts.items()]
    tol = 1e-3 * lines["recommended_spend"].abs() + 0.01
    at_min = int(((lines["recommended_spend"] - lines["min_spend"]).abs() <= tol).sum()) \
        if "min_spend" in lines.columns else 0
    at_max = int(((lines["recommended_spend"] - lines["max_spend"]).abs() <= tol).sum()) \
        if "max_spend" in lines.columns else 0
    out = []
    if at_max:
        out.append(f"{at_max} of {len(lines)} lines are at their upper limit")
    if at_min:
        out.append(f"{at_min} of {len(lines)} lines are at their lower limit")
    return out


def _plan_section(con, tenant: str, currency: str, max_change_pct,
                  point: bool = False) -> tuple[str, pd.Series | None]:
    plans = _frame(con, "decisions", "plans", "tenant_id = ?", [tenant], order="created_at desc", limit=1)
    if plans.empty:
        return "<p>No plan was proposed (the model did not pass its checks, or no spend to plan).</p>", None
    p = plans.iloc[0]
    m = lambda v: rp.money(v, currency)  # noqa: E731
    lines = _frame(con, "decisions", "plan_lines", "plan_id = ?", [p["plan_id"]], order="channel, geo_id")
    prob = next((p[c] for c in ("prob_better", "prob_beats_keep_split", "prob_lift_positive")
                 if c in p.index and rp.is_number(p[c])), None)
    decision = p.get("decision") if "decision" in p.index else None
    items = []  # HTML: plain text is escaped as it is added
    if decision == "keep_split" or (isinstance(p.get("fallback_reason"), str) and p.get("fallback_reason")):
        items.append(rp.esc(f"Recommendation: keep the current split. Why: {p.get('fallback_reason')}."))
    else:
        items.append(rp.esc(f"Recommendation: re-split {m(p['total_budget'])} over {_day(p['horizon_start'])} to "
                            f"{_day(p['horizon_end'])} as in the plan."))
    scope = "net revenue from paid media" if p.get("kpi_scope") == "media_contribution" else "net revenue"
    if rp.is_number(p.get("expected_lift_mean")):
        items.append(f"Expected extra {rp.esc(scope)} over keeping the split: "
                     f"{_k('plan_lift', m(p['expected_lift_mean']))} "
                     f"({rp.esc(rp.interval(p['expected_lift_p05'], p['expected_lift_p95'], m))}).")
    if prob is not None and point:
        items.append(rp.esc("Probability it beats keeping the split: not given — the model is a point estimate, so "
                            "there is no uncertainty to weigh."))
    elif prob is not None:
        items.append(f"Probability it beats keeping the split: {_k('plan_prob', rp.probability(prob))} — assuming the model's "
                     "response curves and weather effects hold over the horizon and the assumed weather comes; it is "
                     "not a guarantee.")
    if "media_kpi_mean" in p.index and rp.is_number(p.get("media_kpi_mean")):
        items.append(rp.esc(f"Net revenue from paid media under the plan: {m(p['media_kpi_mean'])} "
                            f"({rp.interval(p['media_kpi_p05'], p['media_kpi_p95'], m)})."))
    binds = _binding_counts(lines)
    limit = f" (tenant.yaml allows ±{max_change_pct:.0f}% per line)" if rp.is_number(max_change_pct) else ""
    items.append(rp.esc(("What holds it: " + "; ".join(binds) + limit + ".") if binds else "No limit binds."))
    rows = []
    if not lines.empty:
        for r in lines.itertuples():
            prev = r.previous_spend
            change = rp.pct(r.recommended_spend / prev - 1, signed=True) if prev and prev > 0 else "new"
            rows.append((rp.channel_name(r.channel), r.geo_id, m(prev), m(r.recommended_spend), change,
                         getattr(r, "binding_constraint", None) or "—"))
    table = rp.table(["channel", "geo", "previous", "plan", "change", "what holds it"], rows, numeric_from=2)
    return ("<ul class=plain>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>" + table), p


def _audit_section(con, tenant: str, currency: str) -> str:
    parts = []
    audits = _frame(con, "decisions", "causal_audits", "tenant_id = ?", [tenant],
                    order="window_end desc nulls last", limit=5)
    if not audits.empty:
        rows = [(r.get("deployment_id"), r.get("method"), r.get("verdict"),
                 rp.money(r.get("effect_mean"), currency) + f" ({rp.money(r.get('effect_p05'), currency)}–"
                 f"{rp.money(r.get('effect_p95'), currency)})", rp.pct(r.get("prob_positive")),
                 r.get("reason") or "") for _, r in audits.iterrows()]
        parts.append("<h3>Causal audits of automated changes</h3>" + rp.table(
            ["deployment", "method", "verdict", "effect on net revenue (90% interval)", "P(positive)", "note"], rows,
            numeric_from=9))
    replay = _frame(con, "decisions", "policy_replay", "tenant_id = ?", [tenant], order="policy, estimator")
    if not replay.empty:
        rows = [(r.get("policy"), r.get("estimator"),
                 rp.money(r.get("value_mean"), currency) + f" ({rp.money(r.get('value_p05'), currency)}–"
                 f"{rp.money(r.get('value_p95'), currency)})",
                 rp.ratio(r.get("effective_sample_size"), 0), rp.pct(r.get("support_share")),
                 "yes" if r.get("evaluable") else "no") for _, r in replay.iterrows()]
        parts.append("<h3>Policy replay on logged data</h3><p class=note>What each budgeting rule would have "
                     "earned on past periods, estimated from the logged decisions.</p>" + rp.table(
                         ["policy", "estimator", "value (90% interval)", "effective sample", "support",
                          "evaluable"], rows, numeric_from=9))
    return "".join(parts) or "<p>No automated deployment has been audited and no replay has run yet.</p>"


def _experiments_section(con, model_id: str, channels: pd.DataFrame) -> str:
    recs = _frame(con, "mmm", "experiment_recommendations", "model_id = ?", [model_id], order="channel")
    items = []
    if not channels.empty and "needs_experiment" in channels.columns:
        flagged = channels[channels["needs_experiment"].fillna(False).astype(bool)]["channel"].tolist()
        items.append("Channels the data cannot pin down: " + (", ".join(rp.channel_name(c) for c in flagged)
                                                              if flagged else "none") + ".")
    if not recs.empty:
        def geos(value) -> str:
            try:
                return ", ".join(json.loads(value)) or "—"
            except (TypeError, ValueError):
                return str(value)

        for _, r in recs.iterrows():
            txt = f"{rp.channel_name(r['channel'])}: "
            if "treated_geo_ids" in r.index:
                txt += f"change spend in {geos(r['treated_geo_ids'])}"
            if "spend_multiplier" in r.index and rp.is_number(r["spend_multiplier"]):
                txt += f" (×{r['spend_multiplier']:.2f} spend)"
            if "duration_days" in r.index and rp.is_number(r["duration_days"]):
                txt += f" for {int(r['duration_days'])} days"
            if "control_geo_ids" in r.index:
                txt += f", compared with {geos(r['control_geo_ids'])}"
            if "design_note" in r.index and isinstance(r["design_note"], str) and r["design_note"]:
                txt += f". {r['design_note']}"
            items.append(txt)
    elif not items:
        return "<p>No identifiability flags or experiment recommendations recorded for this model.</p>"
    return "<ul class=plain>" + "".join(f"<li>{rp.esc(i)}</li>" for i in items) + "</ul>"


def _caveats(run: ProofRun, model: pd.Series | None, twin_differences: list[str]) -> str:
    items = ["Every interval is a central 90% credible interval: under the model, the true value lies inside it "
             "with 90% probability. Results outside the data's range (new channels, much larger budgets) are "
             "extrapolations."]
    if run.fit:
        items.append("This proof overrode the model spec for its run (" + ", ".join(f"{k} {v}" for k, v in
                     run.fit.items()) + "); the scheduled pipeline fits the spec as the sniff decided it.")
    if run.mode == TWIN:
        items.append("The twin shows what the walkthrough looks like and that the method recovers known effects at "
                     "this scale. It says nothing about the brand's own channel returns.")
        items += twin_differences
    if model is not None and model["status"] != "ok":
        items.append("The model failed its sampler checks; no plan is built on it.")
    items += run.problems
    return "<ul class=plain>" + "".join(f"<li>{rp.esc(i)}</li>" for i in items) + "</ul>"


def _truth_channels(truth_obj) -> dict | None:
    if truth_obj is None:
        return None
    return {name: {"roas": c.roas, "multiplier_per_sd": c.multiplier_per_sd} for name, c in truth_obj.channels.items()}


def render_proof(con, run: ProofRun, currency: str, kpi: str = "net_revenue", max_change_pct=None,
                 sniff_con=None) -> str:
    """The proof page from `con` (the modelled tenant's warehouse); the sniffed tenant's sniff from `sniff_con`
    when it lives in another file (a folder warehouse, where a twin has its own file), else from `con`."""
    tenant = validate_tenant_id(run.tenant_id)
    model_tenant = validate_tenant_id(run.model_tenant)
    from weathervane.sniff.record import read_sniff

    sniff = read_sniff(sniff_con if sniff_con is not None else con, tenant)
    twin_differences = []
    if not sniff.empty:
        twin_differences = sniff[(sniff["kind"] == "twin") & (sniff["name"] == "difference")]["reason"].tolist()
    truth_obj = None
    if run.truth_path and Path(run.truth_path).exists():
        from weathervane.simulate import load_truth

        truth_obj = load_truth(run.truth_path)
    truth = _truth_channels(truth_obj)
    models = _frame(con, "mmm", "models", "tenant_id = ?", [model_tenant], order="fitted_at desc", limit=1)
    model = models.iloc[0] if not models.empty else None
    mode_row = sniff[(sniff["kind"] == "decision") & (sniff["name"] == "mode")] if not sniff.empty else sniff
    mode_reason = mode_row["reason"].iloc[0] if len(mode_row) else ""
    headline = {TWIN: "a synthetic twin", GAPS: "live data with synthetic gaps filled"}.get(run.mode, "live data")
    summary = [f"The walkthrough runs on {_k('mode', headline)}. {rp.esc(mode_reason)}."]
    if run.mode == TWIN:
        summary.append(f"Twin tenant: <b>{rp.esc(model_tenant)}</b>. Its true channel effects are known, so this "
                       "page also shows how close the estimates come.")
    sections = [("In short", "<ul class=plain>" + "".join(f"<li>{s}</li>" for s in summary) + "</ul>"),
                (f"The data {tenant} delivered", _coverage_section(sniff, currency)),
                ("What the data can carry", _decisions_section(sniff))]
    cov = _coverage_figure(con, model_tenant, currency)
    if cov:
        sections.append(("Sales and spend over time" + (" (twin)" if run.mode == TWIN else ""), cov))
    sections.append(("Model fit and diagnostics", _model_section(model)))
    ch_html, channels = (_channel_section(con, model["model_id"], currency, truth, _is_point(model))
                         if model is not None
                         else ("<p>No model.</p>", pd.DataFrame()))
    sections.append((f"Return on ad spend per channel ({rp.kpi_name(kpi)}, {currency})", ch_html))
    if model is not None:
        sections.append(("How weather changes each channel's effect", _weather_section(con, model["model_id"], truth)))
    sections.append(("Promotions and emails", _promo_section(con, model_tenant, sniff, currency, truth_obj)))
    plan_html, _ = _plan_section(con, model_tenant, currency, max_change_pct, _is_point(model))
    sections.append(("Recommended plan vs keeping the split", plan_html))
    sections.append(("Audits of past changes", _audit_section(con, model_tenant, currency)))
    sections.append(("Identifiability and experiments to run",
                     _experiments_section(con, model["model_id"], channels) if model is not None else "<p>—</p>"))
    sections.append(("Caveats", _caveats(run, model, twin_differences)))
    steps = rp.table(["step", "seconds", "outcome"], [(s, f"{t:.0f}", o) for s, t, o in run.steps])
    sections.append(("How this proof was made", f"<p class=note>Fit: {rp.esc(json.dumps(run.fit))}. "
                     f"End to end: {_k('proof_seconds', f'{run.seconds:.0f}')} s. Every run is recorded in the "
                     "Dagster instance (make ui).</p>" + steps))
    body = "".join(f"<h2>{rp.esc(t)}</h2>{b}" for t, b in sections)
    return rp.page(f"Brand proof: {tenant}", body, banner=_synthetic_banner(run),
                   subtitle=f"Where the next marketing dollar should go, given the weather — KPI: {rp.kpi_name(kpi)} "
                            f"in {currency}.")


def write_proof_report(con, run: ProofRun, reports_dir: Path | str, currency: str, kpi: str = "net_revenue",
                       max_change_pct=None, sniff_con=None) -> Path:
    path = Path(reports_dir) / validate_tenant_id(run.tenant_id) / "proof.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_proof(con, run, currency, kpi, max_change_pct, sniff_con), encoding="utf-8")
    return path
