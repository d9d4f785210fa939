"""The replay report: one self-contained HTML page per tenant (plot embedded as base64 PNG)."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from weathervane.replay.estimators import ESTIMATORS


def _lift_fig(result) -> str:
    rows = result.rows
    if not np.isfinite(rows["lift_mean"].to_numpy(float)).any():
        return ""  # nothing was valued (a history too short to replay)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = [p.name for p in result.policies]
    fig, ax = plt.subplots(figsize=(7.5, 0.5 + 0.6 * len(policies)))
    for k, est in enumerate(ESTIMATORS):
        sub = rows[rows["estimator"] == est].set_index("policy").reindex(policies)
        y = np.arange(len(policies)) + (k - 1) * 0.22
        mean = sub["lift_mean"].to_numpy(float)
        err = np.vstack([mean - sub["lift_p05"].to_numpy(float), sub["lift_p95"].to_numpy(float) - mean])
        ok = sub["evaluable"].to_numpy(bool)
        ax.errorbar(mean, y, xerr=np.where(np.isfinite(err), err, 0), fmt="o", capsize=3,
                    label=est.replace("_", " "), alpha=1.0 if ok.any() else 0.4)
        for yi, m, e in zip(y, mean, ok):
            if not e:
                ax.plot([m], [yi], "x", color="grey")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(np.arange(len(policies)), [p.replace("_", " ") for p in policies])
    ax.set_xlabel(f"KPI over {result.n_periods} periods, difference to keeping the split (90% interval; x = not evaluable)")
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _fmt(v, nd=0) -> str:
    try:
        if v is None or not np.isfinite(float(v)):
            return "–"
    except (TypeError, ValueError):
        return html.escape(str(v))
    return f"{float(v):,.{nd}f}"


def write_replay_report(result, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    e = html.escape
    lines = []
    for _, r in result.rows.iterrows():
        lines.append(
            "<tr>" + "".join(f"<td>{c}</td>" for c in (
                e(r["policy"]), e(r["estimator"].replace("_", " ")),
                f"{_fmt(r['value_mean'])} [{_fmt(r['value_p05'])}, {_fmt(r['value_p95'])}]",
                f"{_fmt(r['lift_mean'])} [{_fmt(r['lift_p05'])}, {_fmt(r['lift_p95'])}]",
                _fmt(r["effective_sample_size"], 1), _fmt(r.get("bandwidth"), 2),
                "–" if not np.isfinite(r["support_share"]) else f"{r['support_share']:.0%}",
                "yes" if r["evaluable"] else f"no: {e(str(r['reason']))}",
            )) + "</tr>")
    models = "".join(
        f"<tr><td>{e(str(m.model_id))}</td><td>{m.train_start}</td><td>{m.train_end}</td><td>{e(str(m.method))}"
        f"{' (reused)' if m.reused else ''}</td><td>{m.n_draws}</td><td>{m.periods_served}</td>"
        f"<td>{m.first_period_start}</td></tr>"
        for m in result.models.itertuples()) or '<tr><td colspan="7">none fitted</td></tr>'
    window = (f"Window {result.window_start} to {result.window_end}: {result.n_periods} logged decision periods."
              if result.n_periods else "No decision period could be replayed.")
    policies = "".join(f"<li><b>{e(p.name)}</b>: {e(p.describe())}</li>" for p in result.policies)
    notes = "".join(f"<li>{e(n)}</li>" for n in result.notes)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Policy replay — {e(result.tenant_id)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}td,th{{padding:3px 8px;border-bottom:1px solid #ddd;
text-align:left}}table{{border-collapse:collapse}}.c{{font-size:1.2em;background:#f4f6f8;padding:1em}}</style></head><body>
<h1>Policy replay — {e(result.tenant_id)}</h1>
<p class="c">{e(result.conclusion)}</p>
<p>{window} Each candidate keeps
the period's logged total budget and is judged on what really happened: the logged spend, the weather that came and
the KPI observed. No synthetic shock is drawn.</p>
<h2>Candidates</h2><ul>{policies}</ul>
<h2>Value per candidate and estimator</h2>
<table><tr><th>policy</th><th>estimator</th><th>KPI over the window [90%]</th><th>vs keep the split [90%]</th>
<th>ESS</th><th>kernel h</th><th>support</th><th>evaluable</th></tr>{''.join(lines)}</table>
{_lift_fig(result)}
<h2>Outcome models (rolling origin)</h2>
<table><tr><th>model</th><th>trained from</th><th>trained to</th><th>fit</th><th>draws</th><th>periods served</th><th>first served</th></tr>
{models}</table>
<h2>How to read this</h2><ul>
<li><b>direct</b>: the outcome model's prediction under the candidate's allocation, from a model fitted only on
periods before the one judged.</li>
<li><b>snips</b>: self-normalised importance weighting of the observed KPI; weights compare the candidate's split
with the logged one through a kernel, over the density of how the logged split moved.</li>
<li><b>doubly robust</b>: direct plus the weighted residual of the observed KPI; right when either the model or the
weights are.</li>
<li><b>support</b>: share of periods whose candidate split lies within what the logged splits did;
<b>ESS</b>: effective sample size of the weights; <b>kernel h</b>: the kernel's width in units of how far the
logged split moved per period (Scott's rule, widened until the ESS reaches its target). Too little support or
ESS makes a row not evaluable.</li>
<li>Intervals: bootstrap over periods; for the direct and doubly robust estimators each replicate also takes one
draw of the outcome model's parameters (a Laplace approximation around a MAP fit, or posterior draws).</li>
{notes}</ul></body></html>"""
    path.write_text(page, encoding="utf-8")
    return path
