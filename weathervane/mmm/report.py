"""A static HTML report per fitted model: matplotlib figures embedded as base64 PNGs."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _fit_figure(mmm, data) -> str:
    post = mmm.idata["posterior"]
    scale = mmm.idata["constant_data"]["target_scale"]
    mu = (post["mu"] * scale).sum("geo").stack(sample=("chain", "draw")).transpose("date", "sample").values
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(data.dates, data.kpi.sum(axis=1), color="k", lw=1, label="observed")
    ax.plot(data.dates, mu.mean(axis=1), color="C0", label="posterior mean")
    ax.fill_between(data.dates, np.quantile(mu, 0.05, axis=1), np.quantile(mu, 0.95, axis=1), color="C0",
                    alpha=0.3, label="90% interval")
    ax.set_title("Fit: KPI (all cells)")
    ax.legend()
    return _png(fig)


def _contrib_figure(resp, data) -> str:
    c = resp.incremental_kpi(resp.observed_spend, resp.observed_z, draws=200).mean(axis=0).sum(axis=2)  # [T, C]
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.stackplot(data.dates, c.T, labels=resp.channels, alpha=0.8)
    ax.set_title("Channel contributions over time (posterior mean, weather-modulated)")
    ax.legend(loc="upper left")
    return _png(fig)


def _curves_figure(curves: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for i, (channel, g) in enumerate(curves.groupby("channel", sort=False)):
        ax.plot(g["spend"], g["contribution_mean"], color=f"C{i}", label=channel)
        ax.fill_between(g["spend"], g["contribution_p05"], g["contribution_p95"], color=f"C{i}", alpha=0.2)
    ax.set_xlabel("spend over the training window")
    ax.set_ylabel("contribution")
    ax.set_title("Response curves (90% bands)")
    ax.legend()
    return _png(fig)


def _weather_figure(weather: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(10, 3.5))
    labels = [f"{r.channel}\n{r.weather_variable}" for r in weather.itertuples()]
    y = np.arange(len(weather))
    ax.errorbar(weather["multiplier_per_sd_mean"], y,
                xerr=[weather["multiplier_per_sd_mean"] - weather["multiplier_per_sd_p05"],
                      weather["multiplier_per_sd_p95"] - weather["multiplier_per_sd_mean"]], fmt="o")
    ax.axvline(1.0, color="grey", ls="--")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_title("Weather multiplier per sd (90% intervals)")
    return _png(fig)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:,.3f}", na_rep="", border=0)


def write_report(mmm, resp, data, frames: dict[str, pd.DataFrame], meta: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = [
        ("Posterior predictive fit", _fit_figure(mmm, data)),
        ("Channel contributions", _contrib_figure(resp, data)),
        ("Response curves", _curves_figure(frames["response_curves"])),
        ("Weather multipliers", _weather_figure(frames["weather_effects"])),
    ]
    summary = frames["channel_summary"]
    overall = summary[summary["geo_id"].isna()].drop(columns=["model_id", "tenant_id", "geo_id"])
    diag = frames["models"].drop(columns=["model_id", "tenant_id"]).T.reset_index()
    diag.columns = ["field", "value"]
    body = "".join(f"<h2>{html.escape(t)}</h2><img src='data:image/png;base64,{b}'/>" for t, b in figures)
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(meta['model_id'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{padding:2px 8px;
border-bottom:1px solid #ddd;text-align:right}}</style></head><body>
<h1>Model {html.escape(meta['model_id'])}</h1>
<p>Tenant {html.escape(data.tenant_id)}, grain {html.escape(data.grain_product)} × {html.escape(data.grain_geo)},
{html.escape(data.period)}ly, {html.escape(str(data.dates[0].date()))} – {html.escape(str(data.dates[-1].date()))}.
Status <b>{html.escape(meta['status'])}</b>.</p>
<h2>Diagnostics</h2>{_table(diag)}
<h2>Channels (all geos)</h2>{_table(overall)}
<h2>Weather effects</h2>{_table(frames['weather_effects'].drop(columns=['model_id', 'tenant_id']))}
{body}</body></html>"""
    path.write_text(doc)
    return path
