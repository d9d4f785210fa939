"""The audit report: one self-contained HTML file per audited deployment (PNG plots embedded as base64)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from weathervane import reports as rp
from weathervane.config import validate_tenant_id


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig, alt: str = "audit plot") -> str:
    return rp.figure(fig, alt=alt)


def _window_mask(res) -> np.ndarray:
    return np.array([d >= res.window_start for d in res.dates])


def _observed_fig(res) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3.4))
    x = np.array(res.dates)
    lo, hi = np.quantile(res.counterfactual, [0.05, 0.95], axis=0)
    ax.fill_between(x, lo, hi, color="tab:orange", alpha=0.25, label="counterfactual 90% band")
    ax.plot(x, res.counterfactual.mean(axis=0), color="tab:orange", lw=1, label="counterfactual (mean)")
    ax.plot(x, res.observed, color="black", lw=0.8, label="observed")
    ax.axvline(res.window_start, color="grey", ls="--")
    ax.set_ylabel("net revenue per day (period mean)")
    ax.set_title("Treated geos: observed vs counterfactual")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return _png(fig)


def _effect_fig(res) -> str:
    plt = _plt()
    m = _window_mask(res)
    x = np.array(res.dates)[m]
    pointwise = (res.observed[m][None, :] - res.counterfactual[:, m]) * res.lengths[m]
    cumulative = np.cumsum(pointwise, axis=1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, draws, title in ((axes[0], pointwise, "Effect per period"), (axes[1], cumulative, "Cumulative effect")):
        lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
        ax.fill_between(x, lo, hi, alpha=0.3, label="90% interval")
        ax.plot(x, draws.mean(axis=0), lw=1, label="mean")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(title)
        ax.tick_params(axis="x", labelrotation=30)
    axes[0].legend(fontsize=8)
    return _png(fig)


def _weights_fig(res) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 0.4 + 0.35 * max(len(res.donors), 1)))
    items = sorted(res.donors.items(), key=lambda kv: kv[1])
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set_xlabel("weight (posterior mean)")
    ax.set_title("Donor weights")
    return _png(fig)


def _placebo_fig(res) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(res.placebo_z, bins=30, color="tab:blue", alpha=0.7, label=f"{len(res.placebo_z)} placebos")
    ax.axvline(res.treated_z, color="tab:red", lw=2, label="this deployment")
    ax.set_xlabel("standardized window effect (z)")
    ax.set_title(f"Placebos in space and time: p = {res.placebo_p:.2f}")
    ax.legend(fontsize=8)
    return _png(fig)


def plain_verdict(res, what: str = "the deployment", currency: str = "USD") -> str:
    if res.verdict == "not_evaluable":
        return f"{what.capitalize()} cannot be judged yet: {res.reason}."
    mean, lo, hi = float(res.effect.mean()), res.q(res.effect, 0.05), res.q(res.effect, 0.95)
    rel = float(res.relative.mean())

    def signed(v) -> str:
        return ("+" if v >= 0 else "") + rp.money(v, currency)

    body = (f"net revenue {signed(mean)} over the window ({rel:+.1%}), 90% interval {signed(lo)} to {signed(hi)}")
    if res.placebo_p is not None:
        body += f", placebo p-value {res.placebo_p:.2f}"
    if res.verdict == "improved":
        return f"{what.capitalize()} improved net revenue: {body}."
    if res.verdict == "worse":
        return f"{what.capitalize()} made net revenue worse: {body}."
    return f"No detectable effect of {what}: {body} ({res.reason})."


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80].strip("._") or "deployment"


def report_path(reports_dir: Path | str, tenant_id: str, key: str, audit_key: str) -> Path:
    # the deployment id comes from a landing file: only a sanitized slug plus a hash reaches the path
    return Path(reports_dir) / validate_tenant_id(tenant_id) / f"audit_{_slug(key)}_{audit_key[:8]}.html"


def render_audit_html(tenant_id: str, iv, results: list, primary, currency: str = "USD",
                      banner: str | None = None) -> str:
    money = lambda v: rp.money(v, currency)  # noqa: E731
    rows = []
    for r in results:
        rows.append((r.method.replace("_", " "), r.verdict.replace("_", " "),
                     money(None if r.effect is None else float(r.effect.mean())),
                     money(r.q(r.effect, 0.05)), money(r.q(r.effect, 0.95)),
                     "—" if r.relative is None else f"{float(r.relative.mean()):+.1%}",
                     "—" if r.effect is None else rp.probability(float((r.effect > 0).mean())),
                     money(r.incremental_spend),
                     "—" if r.iroas is None else rp.ratio(float(r.iroas.mean())),
                     "—" if r.pre_mape is None else f"{r.pre_mape:.1%}",
                     "—" if r.placebo_p is None else f"{r.placebo_p:.2f}", r.reason or ""))
    head = ["method", "verdict", "effect", "p05", "p95", "relative", "P(effect>0)", "incremental spend", "iROAS",
            "pre-period weekly MAPE", "placebo p", "why"]
    figs = ""
    if primary.counterfactual is not None:
        figs = (f"<h2>Observed vs counterfactual ({rp.esc(primary.method.replace('_', ' '))})</h2>"
                f"{_observed_fig(primary)}<h2>Effect</h2>{_effect_fig(primary)}")
        if primary.donors:
            figs += f"<h2>Donors</h2>{_weights_fig(primary)}"
        if primary.placebo_z is not None and len(primary.placebo_z):
            figs += f"<h2>Placebo distribution</h2>{_placebo_fig(primary)}"
        post = primary.posterior
        figs += (f"<p class=\"note\">Sampler: max r-hat {post.max_rhat:.3f}, min bulk ESS {post.min_ess_bulk:.0f}, "
                 f"{post.divergences} divergences, {post.n_draws} draws.</p>")
    what = "the deployment" if iv.deployment_id is not None else "the applied plan"
    title = iv.deployment_id or f"plan {iv.plan_id}"
    channels = ", ".join(rp.channel_name(c) for c in iv.channels) or "—"
    body = f"""
<p class="kpi lead" data-testid="headline"><b>{rp.esc(primary.verdict.replace('_', ' '))}</b>:
{rp.esc(plain_verdict(primary, what, currency))}</p>
<p>{rp.esc(iv.description or '')} Treated regions: {rp.esc(', '.join(iv.geo_ids))}; channels: {rp.esc(channels)};
window {rp.esc(iv.start)} to {rp.esc(iv.end or 'still live')}.</p>
{rp.table(head, rows, numeric_from=2)}
<p class="note">Effect = observed minus counterfactual net revenue summed over the window; intervals are central 90%
posterior intervals. The verdict is <i>improved</i> only when the whole interval is above zero and the placebo
p-value is at most 0.10 (<i>worse</i> symmetrically).</p>
{figs}
"""
    return rp.page(f"Causal audit: {title}", body, banner=banner, subtitle=f"Tenant {tenant_id}")


def write_audit_report(reports_dir: Path | str, tenant_id: str, iv, results: list, primary, audit_key: str,
                       audience: rp.Audience) -> Path:
    path = report_path(reports_dir, tenant_id, iv.key, audit_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_audit_html(tenant_id, iv, results, primary, currency=audience.currency,
                                      banner=audience.banner), encoding="utf-8")
    return path
