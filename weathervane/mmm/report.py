"""A static HTML report per fitted model: figures embedded as PNGs with alt text, numbers in the tenant's currency,
and what each number means in plain words."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from weathervane import reports as rp


def _period_word(data) -> str:
    return "week" if data.period == "week" else "day"


def _fit_figure(mmm, data, currency: str) -> str:
    post = mmm.idata["posterior"]
    scale = mmm.idata["constant_data"]["target_scale"]
    mu = (post["mu"] * scale).sum("geo").stack(sample=("chain", "draw")).transpose("date", "sample").values
    fig, ax = rp.new_figure(10, 3.6)
    ax.plot(data.dates, data.kpi.sum(axis=1), color="k", lw=1, label="observed net revenue")
    ax.plot(data.dates, mu.mean(axis=1), color="C0", label="model (posterior mean)")
    ax.fill_between(data.dates, np.quantile(mu, 0.05, axis=1), np.quantile(mu, 0.95, axis=1), color="C0",
                    alpha=0.3, label="model, 90% interval")
    ax.set_xlabel(_period_word(data))
    ax.set_ylabel(f"net revenue per {_period_word(data)}")
    rp.money_axis(ax, currency)
    ax.legend(loc="upper left")
    return rp.figure(fig, alt=f"Line chart: observed net revenue per {_period_word(data)} against the model's "
                               "prediction with its 90% interval, all cells summed.",
                     caption="How well the model reproduces the history it was fitted on.")


def _contrib_figure(resp, data, currency: str) -> str:
    c = resp.incremental_kpi(resp.observed_spend, resp.observed_z, draws=200).mean(axis=0).sum(axis=2)  # [T, C]
    fig, ax = rp.new_figure(10, 3.6)
    ax.stackplot(data.dates, c.T, labels=[rp.channel_name(ch) for ch in resp.channels], alpha=0.8)
    ax.set_xlabel(_period_word(data))
    ax.set_ylabel(f"net revenue from media per {_period_word(data)}")
    rp.money_axis(ax, currency)
    ax.legend(loc="upper left", ncol=min(4, len(resp.channels)))
    return rp.figure(fig, alt="Stacked area chart of the net revenue each channel brought per period "
                              f"({', '.join(rp.channel_name(ch) for ch in resp.channels)}), posterior mean, "
                              "weather included.",
                     caption="Net revenue each channel brought, period by period (posterior mean).")


def _curves_figure(curves: pd.DataFrame, currency: str) -> str:
    fig, ax = rp.new_figure(10, 3.8)
    for i, (channel, g) in enumerate(curves.groupby("channel", sort=False)):
        ax.plot(g["spend"], g["contribution_mean"], color=f"C{i}", label=f"{rp.channel_name(channel)} (mean)")
        ax.fill_between(g["spend"], g["contribution_p05"], g["contribution_p95"], color=f"C{i}", alpha=0.2,
                        label=f"{rp.channel_name(channel)}, 90% interval")
    ax.set_xlabel("spend over the training window")
    ax.set_ylabel("net revenue from the channel")
    rp.money_axis(ax, currency, "x")
    rp.money_axis(ax, currency, "y")
    ax.legend(fontsize=8, ncol=2)
    return rp.figure(fig, alt="Response curves: net revenue each channel brings as its spend over the training "
                              "window goes from zero to twice what was spent, with 90% intervals.",
                     caption="Diminishing returns: each extra unit of spend brings less than the one before.")


def _weather_figure(weather: pd.DataFrame) -> str:
    fig, ax = rp.new_figure(10, max(2.4, 0.45 * len(weather) + 1))
    labels = [f"{rp.channel_name(r.channel)} · {r.weather_variable.replace('_', ' ')}" for r in weather.itertuples()]
    y = np.arange(len(weather))
    ax.errorbar((weather["multiplier_per_sd_mean"] - 1) * 100, y,
                xerr=[(weather["multiplier_per_sd_mean"] - weather["multiplier_per_sd_p05"]) * 100,
                      (weather["multiplier_per_sd_p95"] - weather["multiplier_per_sd_mean"]) * 100],
                fmt="o", label="change in effect per +1 sd (mean, 90% interval)")
    ax.axvline(0.0, color="grey", ls="--", label="no weather effect")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("change in the channel's effect when the weather is 1 sd above usual (%)")
    ax.legend(fontsize=8, loc="lower right")
    return rp.figure(fig, alt="Dot plot with 90% intervals: how much each channel's effect changes when "
                              "temperature or rain is one standard deviation above the geo's usual.",
                     caption="Weather and media: a dot right of the dashed line means the channel works better "
                             "in that weather.")


def channel_rows(overall: pd.DataFrame, currency: str) -> list[tuple]:
    rows = []
    for r in overall.itertuples():
        flag = ""
        if "needs_experiment" in overall.columns and bool(getattr(r, "needs_experiment")):
            flag = "needs an experiment: the data barely moved the prior"
        m = lambda v: rp.money(v, currency)  # noqa: E731
        rows.append((rp.channel_name(r.channel), m(r.spend),
                     rp.with_interval(r.contribution_mean, r.contribution_p05, r.contribution_p95, m),
                     rp.with_interval(r.roas_mean, r.roas_p05, r.roas_p95), rp.ratio(r.mroas_mean), flag))
    return rows


def write_report(mmm, resp, data, frames: dict[str, pd.DataFrame], meta: dict, path: Path,
                 audience: rp.Audience) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    currency = audience.currency
    weather = frames["weather_effects"]
    figures = [
        ("Does the model reproduce the history?", _fit_figure(mmm, data, currency)),
        ("What each channel brought", _contrib_figure(resp, data, currency)),
        ("Diminishing returns", _curves_figure(frames["response_curves"], currency)),
    ]
    if not weather.empty:
        figures.append(("Weather and media", _weather_figure(weather)))
    summary = frames["channel_summary"]
    overall = summary[summary["geo_id"].isna()]
    m = frames["models"].iloc[0]
    ok = m["status"] == "ok"
    point = str(m["sampler"]) in ("map", "advi")
    status = ("a quick point estimate: no sampler checks apply, and its intervals have no width" if point else
              "passed the sampler checks" if ok else "FAILED the sampler checks: not used for plans")
    diag = [
        ("status", status),
        ("sampler", f"{m['sampler']}, {m['draws']} draws × {m['chains']} chain(s)"),
        ("largest r-hat (≤ 1.05 means the chains agree)", rp.ratio(m["max_rhat"], 3)),
        ("smallest effective sample size", rp.ratio(m["min_ess_bulk"], 0)),
        ("divergent transitions (0 wanted)", m["divergences"]),
        ("holdout error (MAPE on the last weeks, unseen by the fit)",
         rp.pct(m["holdout_mape"], 1) if rp.is_number(m["holdout_mape"]) else "not scored (history too short)"),
        ("observations", f"{m['n_obs']:,}"),
    ]
    if meta.get("ladder_label"):
        diag.insert(1, ("model spec rung", f"{meta['ladder_rung']}: {meta['ladder_label']}"
                        + ("" if meta["ladder_rung"] == 1 else " (finer rungs missed the sampler checks)")))
    warnings = [w for w in (meta.get("holdout_warning"), *meta.get("data_warnings", [])) if w]
    sentences = [rp.weather_sentence(r.channel, r.weather_variable, r.multiplier_per_sd_mean,
                                     r.multiplier_per_sd_p05, r.multiplier_per_sd_p95) for r in weather.itertuples()]
    body = f"""
<p>Tenant <b>{rp.esc(data.tenant_id)}</b>, modelled per {rp.esc(data.grain_product)} × {rp.esc(data.grain_geo)},
one row per {_period_word(data)}, {rp.esc(str(data.dates[0].date()))} to {rp.esc(str(data.dates[-1].date()))}.
KPI: {rp.esc(rp.kpi_name('net_revenue'))} in {rp.esc(currency)}.</p>
<h2>Can the model be trusted?</h2>
{''.join(f'<p class="warning"><b>Warning:</b> {rp.esc(w)}</p>' for w in warnings)}
{rp.table(['check', 'result'], diag)}
<h2>Return on ad spend per channel</h2>
<p class="note">ROAS = net revenue the channel brought over the training window ÷ its spend. Marginal ROAS = what the
next {rp.esc(rp.money(1, currency))} would bring at today's spend. Intervals are central 90% credible intervals.</p>
{rp.table(['channel', 'spend', 'net revenue brought', 'ROAS', 'marginal ROAS', 'flag'], channel_rows(overall, currency))}
<h2>Weather</h2>
<ul class="plain">{''.join(f'<li>{rp.esc(s)}</li>' for s in sentences) or
                    '<li>No weather terms in this model: ' + rp.esc(meta.get('weather_reason') or
                    'the data has no weather to estimate them from') + '.</li>'}</ul>
{''.join(f'<h2>{rp.esc(t)}</h2>{b}' for t, b in figures)}"""
    path.write_text(rp.page(f"Model {meta['model_id']}", body, banner=audience.banner,
                            subtitle="Weather-aware marketing mix model: fit, diagnostics and channel returns."),
                    encoding="utf-8")
    return path
