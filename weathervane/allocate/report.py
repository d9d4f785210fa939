"""The plan report: one self-contained HTML file (PNG plots embedded as base64)."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from weathervane.config import validate_tenant_id  # noqa: E402

MAX_GEOS_PER_PLOT = 8


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _allocation_fig(plan) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(plan.channels))
    ax.bar(x - 0.2, plan.previous.sum(axis=1), 0.4, label="previous window")
    ax.bar(x + 0.2, plan.spend.sum(axis=1), 0.4, label="plan")
    ax.set_xticks(x, plan.channels, rotation=20)
    ax.set_ylabel("spend over the horizon")
    ax.legend()
    ax.set_title("Spend by channel")
    return _png(fig)


def _lift_fig(plan) -> str:
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(plan.lift_draws, bins=40, color="tab:green", alpha=0.8)
    ax.axvline(0, color="k", lw=1)
    ax.set_xlabel("KPI of the plan minus KPI of keeping the previous split (posterior draws)")
    ax.set_title("Expected lift vs baseline")
    return _png(fig)


def _curves_fig(plan) -> str:
    a = plan.allocation
    n = len(plan.channels)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3), squeeze=False)
    mean = a.curves.mean(axis=1)  # [K, C, G]
    order = np.argsort(-plan.spend.sum(axis=0))[:MAX_GEOS_PER_PLOT]
    for ci, ch in enumerate(plan.channels):
        ax = axes[0, ci]
        for gi in order:
            line, = ax.plot(a.grid[:, ci, gi], mean[:, ci, gi], lw=1, label=plan.geos[gi])
            chosen = np.interp(plan.spend[ci, gi], a.grid[:, ci, gi], mean[:, ci, gi]) if a.grid[-1, ci, gi] > 0 else 0
            ax.plot([plan.spend[ci, gi]], [chosen], "o", color=line.get_color())
            prev = np.interp(plan.previous[ci, gi], a.grid[:, ci, gi], mean[:, ci, gi]) if a.grid[-1, ci, gi] > 0 else 0
            ax.plot([plan.previous[ci, gi]], [prev], "x", color=line.get_color())
        ax.set_title(ch)
        ax.set_xlabel("horizon spend")
    axes[0, 0].set_ylabel("expected contribution")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle("Response curves under the horizon's weather (o plan, x previous)")
    return _png(fig)


def _weather_fig(plan) -> str:
    v = plan.weather.values
    var = "temperature_2m_mean" if "temperature_2m_mean" in v.columns else [c for c in v.columns
                                                                             if c not in ("date", "geo_id", "source")][0]
    fig, ax = plt.subplots(figsize=(7, 3))
    for g in plan.geos[:MAX_GEOS_PER_PLOT]:
        sub = v[v["geo_id"] == g]
        line, = ax.plot(sub["date"], sub[var], lw=1, label=g)
        clim = sub[sub["source"] != "forecast"]
        ax.plot(clim["date"], clim[var], ".", color=line.get_color(), ms=3)
    ax.set_ylabel(var)
    ax.set_title("Weather assumed (line: forecast; dots: climatology)")
    ax.legend(fontsize=7, ncol=2)
    fig.autofmt_xdate()
    return _png(fig)


def _table(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_plan_html(plan) -> str:
    kpi, base, lift = plan.kpi_draws, plan.baseline_kpi_draws, plan.lift_draws
    q = lambda a: f"{a.mean():,.0f} [{np.quantile(a, .05):,.0f}, {np.quantile(a, .95):,.0f}]"  # noqa: E731
    c = plan.contribution
    rows = [
        (ch, g, f"{plan.previous[ci, gi]:,.0f}", f"{plan.spend[ci, gi]:,.0f}",
         f"{(plan.spend[ci, gi] / plan.previous[ci, gi] - 1):+.0%}" if plan.previous[ci, gi] > 0 else "new",
         f"{plan.weather_multiplier[ci, gi]:.3f}", q(c[:, ci, gi]), f"{plan.allocation.marginal_roas[ci, gi]:.2f}")
        for ci, ch in enumerate(plan.channels) for gi, g in enumerate(plan.geos)
    ]
    scope = ("total KPI" if plan.kpi_scope == "total"
             else "KPI attributable to paid media (the model gives no baseline forecast)")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Plan {html.escape(plan.plan_id)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}</style></head><body>
<h1>Budget plan {html.escape(plan.plan_id)}</h1>
<p>Tenant <b>{html.escape(plan.tenant_id)}</b>, model {html.escape(plan.model_id)}, horizon {plan.horizon_start} to
{plan.horizon_end}, total budget {plan.total_budget:,.2f}, objective: {html.escape(plan.objective.describe())}.</p>
<h2>Expected outcome ({html.escape(scope)}; mean [90% interval])</h2>
{_table(["", "KPI"], [("plan", q(kpi)), ("keep previous split", q(base)), ("lift", q(lift)),
                       ("probability the plan does better", f"{(lift > 0).mean():.0%}")])}
{_lift_fig(plan)}
<h2>Allocation</h2>{_allocation_fig(plan)}
{_table(["channel", "geo", "previous", "plan", "change", "weather multiplier", "contribution", "marginal ROAS"], rows)}
<h2>Why: response curves at the chosen points</h2>{_curves_fig(plan)}
<p>Budget moves toward cells whose next unit of spend returns most under the weather expected; the weather
multiplier is each cell's expected effect under the horizon's weather divided by its effect under average weather,
from the model's own weather coefficients.</p>
<h2>Weather assumed ({html.escape(plan.weather.source)})</h2>{_weather_fig(plan)}
<ul>{"".join(f"<li>{html.escape(n)}</li>" for n in plan.notes)}</ul>
</body></html>"""


def write_plan_report(plan, reports_dir: Path | str) -> Path:
    path = Path(reports_dir) / validate_tenant_id(plan.tenant_id) / f"plan_{plan.plan_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_plan_html(plan), encoding="utf-8")
    return path
