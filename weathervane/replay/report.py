"""The replay report: one self-contained page per tenant on the shared report kit (weathervane.reports).

Its first paragraph is for a marketer: what was compared, which policy came out ahead, how sure, and what the
weather-blind policy got; the estimators, weights and models follow for whoever checks the work."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from weathervane import reports as rp
from weathervane.replay.estimators import ESTIMATORS

POLICY_WORDS = {
    "keep_split": "keeping last period's split",
    "weather_aware": "the weather-aware plan",
    "weather_blind": "the same plan ignoring the weather",
    "looser": "the weather-aware plan with twice the change limit",
    "tighter": "the weather-aware plan with half the change limit",
}
ESTIMATOR_WORDS = {"direct": "model estimate", "snips": "reweighted outcomes", "doubly_robust": "combined estimate"}


def policy_name(policy: str) -> str:
    return POLICY_WORDS.get(policy, policy.replace("_", " "))


def _estimator(rows: pd.DataFrame) -> str | None:
    """The estimator the verdict rests on: doubly robust when all its rows are evaluable, else the direct method's."""
    for est in ("doubly_robust", "direct"):
        sub = rows[rows["estimator"] == est]
        if len(sub) and sub["evaluable"].astype(bool).all():
            return est
    sub = rows[(rows["estimator"] == "direct") & rows["evaluable"].astype(bool)]
    return "direct" if len(sub) else None


def headline_from_rows(rows: pd.DataFrame, currency: str = "USD") -> str:
    """The replay's verdict in plain words from its rows (decisions.policy_replay or ReplayResult.rows)."""
    if rows is None or len(rows) == 0:
        return "No replay was run."
    n = int(rows["n_periods"].max()) if "n_periods" in rows and rows["n_periods"].notna().any() else 0
    est = _estimator(rows)
    if est is None or n == 0:
        reason = next((r for r in rows["reason"] if isinstance(r, str) and r), "too little logged history")
        return f"The past decisions could not be replayed yet: {reason}."
    sub = rows[(rows["estimator"] == est) & rows["evaluable"].astype(bool)].copy()
    others = sub[sub["policy"] != "keep_split"].sort_values("lift_mean", ascending=False)
    compared = ", ".join(policy_name(p) for p in others["policy"])
    text = (f"We replayed {n} past budget periods and asked what each policy would have earned against "
            f"{policy_name('keep_split')}: {compared}. ")
    if others.empty:
        return text + "No alternative policy could be judged on this history."
    best = others.iloc[0]

    def result(r) -> str:
        sign = "more" if r["lift_mean"] >= 0 else "less"
        return (f"{rp.money(abs(r['lift_mean']), currency)} {sign} net revenue (90% interval "
                f"{rp.money(r['lift_p05'], currency)} to {rp.money(r['lift_p95'], currency)})")

    sure = rp.probability(best.get("prob_lift_positive"))
    if best["lift_mean"] > 0 and best["lift_p05"] > 0:
        text += (f"Best: {policy_name(best['policy'])}, with {result(best)}; the chance it truly beats keeping the "
                 f"split is {sure}.")
    elif best["lift_mean"] > 0:
        text += (f"Ahead, but not clearly: {policy_name(best['policy'])}, with {result(best)}; the chance it truly "
                 f"beats keeping the split is {sure}, so the replay cannot call a winner.")
    else:
        text += f"No policy beat keeping the split; the closest was {policy_name(best['policy'])}, with {result(best)}."
    if best["policy"] != "weather_aware" and (others["policy"] == "weather_aware").any():
        text += f" The weather-aware plan got {result(others[others['policy'] == 'weather_aware'].iloc[0])}."
    if best["policy"] != "weather_blind" and (others["policy"] == "weather_blind").any():
        blind = others[others["policy"] == "weather_blind"].iloc[0]
        text += f" Ignoring the weather got {result(blind)}."
        if best["policy"] == "weather_aware":
            diff = best["lift_mean"] - blind["lift_mean"]
            text += f" What the weather adds is the difference: about {rp.money(diff, currency)}."
    return text + f" ({ESTIMATOR_WORDS[est]}.)"


def _lift_fig(result, currency: str) -> str:
    rows = result.rows
    if not np.isfinite(rows["lift_mean"].to_numpy(float)).any():
        return ""  # nothing was valued (a history too short to replay)
    policies = [p.name for p in result.policies]
    fig, ax = rp.new_figure(8, 0.8 + 0.6 * len(policies))
    ax = ax if not isinstance(ax, np.ndarray) else ax[0]
    for k, est in enumerate(ESTIMATORS):
        sub = rows[rows["estimator"] == est].set_index("policy").reindex(policies)
        y = np.arange(len(policies)) + (k - 1) * 0.22
        mean = sub["lift_mean"].to_numpy(float)
        err = np.vstack([mean - sub["lift_p05"].to_numpy(float), sub["lift_p95"].to_numpy(float) - mean])
        ok = sub["evaluable"].to_numpy(bool)
        ax.errorbar(mean, y, xerr=np.where(np.isfinite(err), err, 0), fmt="o", capsize=3,
                    label=ESTIMATOR_WORDS.get(est, est), alpha=1.0 if ok.any() else 0.4)
        for yi, m, e in zip(y, mean, ok):
            if not e:
                ax.plot([m], [yi], "x", color="grey")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(np.arange(len(policies)), [policy_name(p) for p in policies])
    rp.money_axis(ax, currency, axis="x")
    ax.set_xlabel(f"net revenue over {result.n_periods} periods, difference to keeping the split "
                  "(90% interval; x = not evaluable)")
    ax.legend(fontsize=8)
    return rp.figure(fig, alt="Dot plot of each policy's net revenue against keeping the split, with 90% intervals, "
                              "per estimator", caption="Right of the line: better than keeping the split.")


def render_replay_html(result, currency: str = "USD", banner: str | None = None) -> str:
    money = lambda v: rp.money(v, currency)  # noqa: E731
    value_rows, detail_rows = [], []
    for _, r in result.rows.iterrows():
        ok = bool(r["evaluable"])
        value_rows.append((policy_name(r["policy"]), ESTIMATOR_WORDS.get(r["estimator"], r["estimator"]),
                           f"{money(r['value_mean'])} ({rp.INTERVAL_WORDS} {money(r['value_p05'])}–{money(r['value_p95'])})",
                           f"{money(r['lift_mean'])} ({rp.INTERVAL_WORDS} {money(r['lift_p05'])}–{money(r['lift_p95'])})",
                           "yes" if ok else f"no: {r['reason']}"))
        detail_rows.append((policy_name(r["policy"]), r["estimator"].replace("_", " "),
                            rp.ratio(r["effective_sample_size"], 1), rp.ratio(r.get("bandwidth"), 2),
                            rp.pct(r["support_share"]) if rp.is_number(r["support_share"]) else "—"))
    models = [(m.model_id, m.train_start, m.train_end, f"{m.method}{' (reused)' if m.reused else ''}", m.n_draws,
               m.periods_served, m.first_period_start) for m in result.models.itertuples()]
    window = (f"Window {result.window_start} to {result.window_end}: {result.n_periods} logged decision periods."
              if result.n_periods else "No decision period could be replayed.")
    policies = "".join(f"<li><b>{rp.esc(policy_name(p.name))}</b> ({rp.esc(p.name)}): {rp.esc(p.describe())}</li>"
                       for p in result.policies)
    notes = "".join(f"<li>{rp.esc(n)}</li>" for n in result.notes)
    body = f"""
<p class="kpi lead" data-testid="headline">{rp.esc(headline_from_rows(result.rows, currency))}</p>
<p>{rp.esc(window)} Each policy keeps the period's logged total budget and is judged on what really happened: the
logged spend, the weather that came and the net revenue observed, with models that never saw the period judged.</p>
<h2>The policies</h2><ul class="plain">{policies}</ul>
<h2>What each policy would have earned</h2>
{rp.table(['policy', 'estimate', 'net revenue over the window', 'against keeping the split', 'can be judged'],
          value_rows, numeric_from=2)}
{_lift_fig(result, currency)}
<h2>For analysts: how the estimates were made</h2>
<ul class="plain">
<li><b>model estimate</b> (direct): the outcome model's prediction under the policy's split, from a model fitted
only on periods before the one judged.</li>
<li><b>reweighted outcomes</b> (SNIPS): the observed net revenue, weighted by how close the policy's split was to
what was really spent.</li>
<li><b>combined estimate</b> (doubly robust): the model estimate corrected by the weighted gap between observed and
predicted; right when either part is.</li>
<li><b>support</b>: share of periods whose policy split lies within what the logged splits did; <b>ESS</b>:
effective sample size of the weights; <b>kernel h</b>: the weights' kernel width. Too little support or ESS makes a
row not evaluable. Intervals: bootstrap over periods, with draws of the outcome model's parameters.</li>
{notes}</ul>
{rp.table(['policy', 'estimator', 'ESS', 'kernel h', 'support'], detail_rows, numeric_from=2)}
<h3>Outcome models (rolling origin)</h3>
{rp.table(['model', 'trained from', 'trained to', 'fit', 'draws', 'periods served', 'first served'], models,
          numeric_from=4) if models else '<p>None fitted.</p>'}
"""
    return rp.page(f"Policy replay — {result.tenant_id}", body, banner=banner,
                   subtitle="Would a different budget policy have done better on the brand's own past decisions?")


def write_replay_report(result, path: Path | str, audience: rp.Audience) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_replay_html(result, audience.currency, audience.banner), encoding="utf-8")
    return path
