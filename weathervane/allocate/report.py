"""The plan report: one self-contained HTML file, figures embedded as PNGs with alt text, money in the tenant's
currency, and the decision in plain words (what the plan expects, how sure, what holds it back)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from weathervane import reports as rp
from weathervane.config import validate_tenant_id

MAX_GEOS_PER_PLOT = 8


def _allocation_fig(plan, currency: str) -> str:
    fig, ax = rp.new_figure(8, 3.4)
    x = np.arange(len(plan.channels))
    names = [rp.channel_name(c) for c in plan.channels]
    ax.bar(x - 0.2, plan.previous.sum(axis=1), 0.4, label=f"previous {len(_days(plan))} days")
    ax.bar(x + 0.2, plan.spend.sum(axis=1), 0.4, label="this plan")
    ax.set_xticks(x, names, rotation=15)
    ax.set_xlabel("channel")
    ax.set_ylabel("spend over the horizon")
    rp.money_axis(ax, currency)
    ax.legend()
    return rp.figure(fig, alt="Bar chart: spend per channel over the planning horizon, the previous window beside "
                              "this plan.", caption="Where the budget goes, channel by channel.")


def _days(plan) -> range:
    return range((plan.horizon_end - plan.horizon_start).days + 1)


def _lift_fig(plan, currency: str) -> str:
    fig, ax = rp.new_figure(8, 3.2)
    ax.hist(plan.lift_draws, bins=40, color="tab:green", alpha=0.8, label="plan minus keep-the-split (draws)")
    ax.axvline(0, color="k", lw=1, label="no difference")
    ax.set_xlabel("net revenue of the plan minus keeping the previous split")
    ax.set_ylabel("posterior draws")
    rp.money_axis(ax, currency, "x")
    ax.legend(fontsize=8)
    return rp.figure(fig, alt="Histogram of the expected difference in net revenue between the plan and keeping "
                              "the previous split, one bar per range of posterior draws, with a line at zero.",
                     caption="Expected lift over keeping the split: draws right of the line are wins.")


def _curves_fig(plan, currency: str) -> str:
    a = plan.allocation
    n = len(plan.channels)
    fig, axes = rp.new_figure(3.6 * n, 3.4, ncols=n, squeeze=False)
    mean = a.curves.mean(axis=1)  # [K, C, G]
    order = np.argsort(-plan.spend.sum(axis=0))[:MAX_GEOS_PER_PLOT]
    for ci, ch in enumerate(plan.channels):
        ax = axes[0, ci]
        for gi in order:
            line, = ax.plot(a.grid[:, ci, gi], mean[:, ci, gi], lw=1, label=plan.geos[gi])
            has = a.grid[-1, ci, gi] > 0
            chosen = np.interp(plan.spend[ci, gi], a.grid[:, ci, gi], mean[:, ci, gi]) if has else 0
            ax.plot([plan.spend[ci, gi]], [chosen], "o", color=line.get_color())
            prev = np.interp(plan.previous[ci, gi], a.grid[:, ci, gi], mean[:, ci, gi]) if has else 0
            ax.plot([plan.previous[ci, gi]], [prev], "x", color=line.get_color())
        ax.set_title(rp.channel_name(ch), fontsize=10)
        ax.set_xlabel("spend over the horizon")
        rp.money_axis(ax, currency, "x")
        rp.money_axis(ax, currency, "y")
    axes[0, 0].set_ylabel("expected net revenue brought")
    handles, labels = axes[0, -1].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles += [Line2D([], [], marker="o", ls="", color="grey"), Line2D([], [], marker="x", ls="", color="grey")]
    labels += ["this plan", "previous window"]
    axes[0, -1].legend(handles, labels, fontsize=7)
    return rp.figure(fig, alt="One response curve per channel and geo under the horizon's weather; a dot marks the "
                              "plan's spend, a cross the previous window's.",
                     caption="Why: the plan moves money toward cells whose next dollar still returns the most.")


def _weather_fig(plan) -> str | None:
    v = plan.weather.values
    cols = [c for c in v.columns if c not in ("date", "geo_id", "source")]
    if not cols:
        return None
    var = "temperature_2m_mean" if "temperature_2m_mean" in cols else cols[0]
    unit = rp.WEATHER_WORDS.get(var, ("", ""))[1]
    fig, ax = rp.new_figure(8, 3.2)
    for g in plan.geos[:MAX_GEOS_PER_PLOT]:
        sub = v[v["geo_id"] == g]
        line, = ax.plot(sub["date"], sub[var], lw=1, label=f"{g}")
        clim = sub[sub["source"] != "forecast"]
        if len(clim):
            ax.plot(clim["date"], clim[var], ".", color=line.get_color(), ms=3)
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker=".", ls="", color="grey"))
    labels.append("climatology (no forecast)")
    ax.legend(handles, labels, fontsize=7, ncol=2)
    ax.set_xlabel("date")
    ax.set_ylabel(f"{var.replace('_', ' ')} ({unit})" if unit else var.replace("_", " "))
    return rp.figure(fig, alt=f"Line chart of the {var.replace('_', ' ')} assumed for each geo over the horizon; "
                              "dots mark days taken from climatology rather than a forecast.",
                     caption="The weather the plan assumes.")


def _q(a) -> tuple[float, float, float]:
    return float(np.mean(a)), float(np.quantile(a, 0.05)), float(np.quantile(a, 0.95))


def decision_sentences(plan, currency: str) -> list[str]:
    """The plan's claim in plain words, with its interval and what it assumes."""
    m = lambda v: rp.money(v, currency)  # noqa: E731
    lift = _q(plan.lift_draws)
    prob = float(getattr(plan, "prob_better", (plan.lift_draws > 0).mean()))
    out = []
    reasons = list(getattr(plan, "fallback_reasons", []) or [])
    if reasons:
        out.append("Recommendation: keep the current split. " + "; ".join(reasons) + ".")
    else:
        move = float(getattr(plan, "move_fraction", 1.0))
        share = float(getattr(plan, "weather_share", 1.0))
        part = "" if move >= 1 and share >= 1 else f" (taking {plan.move_description()}, to limit the downside)"
        out.append(f"Recommendation: move the budget as below{part}.")
    out.append(f"Expected extra net revenue over keeping the split: {m(lift[0])} "
               f"({rp.interval(lift[1], lift[2], m)}).")
    if len(plan.lift_draws) <= 1:
        out.append("Probability the plan beats keeping the split: not given — the model is a point estimate (one "
                   "draw), so there is no uncertainty to weigh.")
    else:
        out.append(f"Probability the plan beats keeping the split: {rp.probability(prob)} — under the model's assumptions "
                   "(its adstock, saturation and weather effects hold over the horizon and the assumed weather "
                   "comes).")
    if plan.kpi_scope != "total":
        out.append("Totals count only the net revenue attributable to paid media: the model gives no baseline "
                   "forecast for this horizon.")
    return out


WEATHER_STRETCH_SD = 1.0  # a day this many sd from the geo's average counts toward a stretch worth naming
MAX_WEATHER_LINES = 3


def _longest_run(flags: np.ndarray) -> tuple[int, int]:
    """(start, length) of the longest run of True."""
    best, start, run_start = (0, 0), None, 0
    for i, f in enumerate(list(flags) + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            if i - start > best[1]:
                best = (start, i - start)
            start = None
    return best


def weather_sentences(plan) -> list[str]:
    """What the plan assumed about the horizon's weather, in words: where it came from, the stretches of unusual
    weather in it, and the lines whose expected return it moves most."""
    if getattr(plan, "weather_blind", False):
        return ["Average weather assumed in every geo (a weather-blind plan)."]
    w = plan.weather
    out = [f"Source: {w.source}. " + "; ".join(w.notes) + "."] if w.notes else [f"Source: {w.source}."]
    wvars = [c for c in w.values.columns if c not in ("date", "geo_id", "source")]
    for gi, g in enumerate(plan.geos):
        for k, v in enumerate(wvars):
            z = w.z[:, gi, k]
            word = rp.WEATHER_WORDS.get(v, (v.replace("_", " "),))[0]
            for sign, what in ((1, word), (-1, {"warmer": "cooler", "hotter": "cooler", "wetter": "drier"}.get(
                    word, f"less {word}"))):
                start, n = _longest_run(sign * z >= WEATHER_STRETCH_SD)
                if n >= 3:
                    out.append(f"{g}: {n} days {what} than usual from {w.dates[start]} to {w.dates[start + n - 1]} "
                               f"({float(np.abs(z[start:start + n]).mean()):.1f} sd on average).")
    mult = np.asarray(plan.weather_multiplier, dtype=float)
    order = [idx for idx in sorted(np.ndindex(mult.shape), key=lambda i: -abs(mult[i] - 1))
             if abs(mult[idx] - 1) >= 0.05][:MAX_WEATHER_LINES]
    for ci, gi in order:
        out.append(f"{rp.channel_name(plan.channels[ci])} in {plan.geos[gi]} is expected to work "
                   f"{rp.pct(abs(mult[ci, gi] - 1))} {'better' if mult[ci, gi] > 1 else 'worse'} than under average "
                   "weather.")
    if len(out) == 1:
        out.append("No geo's forecast is far from its average weather: the weather barely moves this plan.")
    share = float(getattr(plan, "weather_share", 1.0))
    if share < 1 and not getattr(plan, "fallback_reasons", None):
        out.append(f"The plan follows {rp.pct(share)} of the forecast's pull on the allocation: the model is unsure "
                   "how strongly this weather moves those channels.")
    return out


def binding_sentences(plan) -> list[str]:
    if hasattr(plan, "binding_summary"):
        return list(plan.binding_summary())
    return []


def experiment_sentences(plan, currency: str) -> list[str]:
    """The lift tests the model recommends for the channels it cannot measure (mmm.experiment_recommendations)."""
    import json

    out = []
    for e in getattr(plan, "experiments", []) or []:
        if not e.get("treated_geo_ids"):
            out.append(f"{rp.channel_name(e['channel'])}: no test can be designed yet ({e.get('design_note')}).")
            continue
        controls = ", ".join(json.loads(e["control_geo_ids"])) or "the model's own forecast"
        out.append(f"{rp.channel_name(e['channel'])}: raise spend in {', '.join(json.loads(e['treated_geo_ids']))} "
                   f"by {rp.money(e['spend_change'], currency)} over {e['duration_days']} days, compared with "
                   f"{controls}; the measured lift should come within ±{rp.money(e['expected_interval_width'] / 2, currency)} "
                   f"(90%) of the truth, against an expected lift of {rp.money(e['expected_lift_mean'], currency)}."
                   + (f" {e['design_note']}." if e.get("design_note") else ""))
    return out


def render_plan_html(plan, audience: rp.Audience) -> str:
    currency = audience.currency
    m = lambda v: rp.money(v, currency)  # noqa: E731
    kpi, base, lift = _q(plan.kpi_draws), _q(plan.baseline_kpi_draws), _q(plan.lift_draws)
    c = plan.contribution
    binding = plan.line_binding() if hasattr(plan, "line_binding") else None
    rows = []
    for ci, ch in enumerate(plan.channels):
        for gi, g in enumerate(plan.geos):
            cq = _q(c[:, ci, gi])
            prev = plan.previous[ci, gi]
            rows.append((rp.channel_name(ch), g, m(prev), m(plan.spend[ci, gi]),
                         rp.pct(plan.spend[ci, gi] / prev - 1, signed=True) if prev > 0 else "new",
                         rp.pct(plan.weather_multiplier[ci, gi] - 1, signed=True),
                         f"{m(cq[0])} ({m(cq[1])}–{m(cq[2])})",
                         rp.ratio(plan.allocation.marginal_roas[ci, gi]),
                         (binding[ci, gi] if binding is not None else "") or "—"))
    scope = "total net revenue" if plan.kpi_scope == "total" else "net revenue from paid media"
    outcome = rp.table(["", f"{scope} (mean)", "90% interval"], [
        ("this plan", m(kpi[0]), f"{m(kpi[1])} – {m(kpi[2])}"),
        ("keep the previous split", m(base[0]), f"{m(base[1])} – {m(base[2])}"),
        ("difference", m(lift[0]), f"{m(lift[1])} – {m(lift[2])}"),
    ])
    weather_fig = _weather_fig(plan)
    binds = binding_sentences(plan)
    body = f"""
<p>Tenant <b>{rp.esc(plan.tenant_id)}</b>, model {rp.esc(plan.model_id)}. Horizon {plan.horizon_start} to
{plan.horizon_end}; total budget {rp.esc(m(plan.total_budget))}; objective: {rp.esc(plan.objective.describe())}.</p>
<h2>The decision</h2>
<ul class="plain">{''.join(f'<li>{rp.esc(s)}</li>' for s in decision_sentences(plan, currency))}</ul>
<h2>Expected outcome over the horizon</h2>{outcome}
{_lift_fig(plan, currency) if len(plan.lift_draws) > 1 else ''}
<h2>What holds the plan back</h2>
<ul class="plain">{''.join(f'<li>{rp.esc(s)}</li>' for s in binds) or '<li>No constraint binds.</li>'}</ul>
{'<h2>Experiments that would let the plan move held channels</h2><ul class="plain">' + ''.join(
    f'<li>{rp.esc(s)}</li>' for s in experiment_sentences(plan, currency)) + '</ul>' if getattr(plan, "experiments", None) else ''}
<h2>Allocation</h2>{_allocation_fig(plan, currency)}
<p class="note">Weather effect = how much better (or worse) each line is expected to work under the horizon's weather
than under its geo's average weather. Marginal ROAS = net revenue the next {rp.esc(m(1))} of spend would bring.</p>
{rp.table(["channel", "geo", "previous", "plan", "change", "weather effect", "net revenue brought (90% interval)",
           "marginal ROAS", "what holds it"], rows, numeric_from=2)}
<h2>Why: response curves at the chosen points</h2>{_curves_fig(plan, currency)}
<h2>Weather assumed ({rp.esc("average" if getattr(plan, "weather_blind", False) else plan.weather.source)})</h2>
<ul class="plain">{''.join(f'<li>{rp.esc(s)}</li>' for s in weather_sentences(plan))}</ul>
{weather_fig or ''}
<h2>Notes</h2><ul class="plain">{"".join(f"<li>{rp.esc(n)}</li>" for n in plan.notes)}</ul>"""
    return rp.page(f"Budget plan {plan.plan_id}", body, banner=audience.banner,
                   subtitle="Weather-aware budget plan, proposed for approval.")


def write_plan_report(plan, reports_dir: Path | str, audience: rp.Audience) -> Path:
    path = Path(reports_dir) / validate_tenant_id(plan.tenant_id) / f"plan_{plan.plan_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_plan_html(plan, audience), encoding="utf-8")
    return path
