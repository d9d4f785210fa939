"""Replay: candidate policies judged on the logged decision periods with models that never saw them."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from weathervane.periods import period_length
from weathervane.replay import behaviour as bh
from weathervane.replay.estimators import ESTIMATORS, CandidateInputs, bootstrap, interval, point
from weathervane.replay.outcome import OriginModel, fit_origin, rolling_origins
from weathervane.replay.periods import DecisionLog, ReplayInputError
from weathervane.replay.policies import KEEP_SPLIT, PolicySpec, act


@dataclass
class ReplaySettings:
    n_origins: int = 3  # at most: a short window gets fewer (min_periods_per_origin)
    min_periods_per_origin: int = 26  # decision periods each outcome model serves, at least (half a year of weeks)
    min_train_share: float = 0.5  # the first origin: at least this share of the history for training
    min_train_periods: int = 26  # decision periods before the first origin, at least
    n_boot: int = 2000
    level: float = 0.9
    min_support: float = 0.8  # share of periods whose candidate action is within the logged support
    min_ess: float = 10.0  # effective sample size of the weights (snips, doubly_robust)
    target_ess_share: float = 0.25  # the kernel widens until ESS >= max(min_ess, this share of the periods)
    min_periods: int = 8
    laplace_draws: int = 200  # draws of the Laplace approximation around a MAP outcome model (0: the point)
    seed: int = 0


@dataclass
class ReplayResult:
    replay_id: str
    tenant_id: str
    window_start: object
    window_end: object
    n_periods: int
    rows: pd.DataFrame  # decisions.policy_replay
    periods: pd.DataFrame  # decisions.policy_replay_periods
    models: pd.DataFrame  # decisions.policy_replay_models
    behaviour: bh.BehaviourModel | None  # None when the history was too short to replay
    policies: list[PolicySpec]
    origin_models: dict = field(default_factory=dict)  # origin -> OriginModel
    actions: dict = field(default_factory=dict)  # policy -> [period, channel, geo] allocation judged
    notes: list[str] = field(default_factory=list)
    conclusion: str = ""
    report_path: object = None

    def ranking(self) -> tuple[str, list[str]]:
        """The replay's order of the candidates, best first, and the estimator it rests on: doubly robust when
        every candidate's doubly robust row is evaluable, else the direct method's evaluable rows."""
        dr = self.rows[self.rows["estimator"] == "doubly_robust"]
        est = "doubly_robust" if dr["evaluable"].all() else "direct"
        sub = self.rows[(self.rows["estimator"] == est) & self.rows["evaluable"]]
        return est, list(sub.sort_values("value_mean", ascending=False)["policy"])

    def row(self, policy: str, estimator: str) -> pd.Series:
        r = self.rows[(self.rows["policy"] == policy) & (self.rows["estimator"] == estimator)]
        return r.iloc[0]


def _served(origins: list[int], idx: int) -> int:
    """The latest origin at or before model period `idx`."""
    return max(o for o in origins if o <= idx)


def run_replay(log: DecisionLog, policies: list[PolicySpec], fit_settings, settings: ReplaySettings | None = None,
               *, store=None, policy_response=None, reuse: dict[int, OriginModel] | None = None,
               save_models: bool = True) -> ReplayResult:
    """Fit the outcome model at rolling origins, act every candidate on every window period, estimate values.

    `fit_settings`: weathervane.mmm.model.FitSettings or its keyword arguments (built only when a model is fitted,
    so a history too short to replay never imports the modelling stack). `policy_response`: the response model
    the allocator candidates act with; None = the period's own origin model (the allocator as it would have run
    then). `reuse`: origin -> an already fitted OriginModel."""
    settings = settings or ReplaySettings()
    data = log.model_data
    if data is None:
        raise ReplayInputError("the decision log carries no model input to fit outcome models on")
    if not any(p.kind == KEEP_SPLIT for p in policies):
        raise ValueError("the candidates must include keep_split (the reference for lifts)")
    step_days = period_length(data.period)
    per_decision = log.period_days // step_days
    n_model = len(data.dates)
    first = max(int(np.ceil(settings.min_train_share * n_model)), settings.min_train_periods * per_decision)
    if n_model - first < settings.min_periods * per_decision:
        return too_short(log, policies, settings, n_model, first, data.period)
    # a refit per origin is the replay's main cost; one serving only a few periods adds little freshness, so a
    # short window gets fewer origins. Every period is still judged by a model fitted before it.
    n_origins = max(1, min(settings.n_origins, (n_model - first) // per_decision // settings.min_periods_per_origin))
    origins = rolling_origins(n_model, n_origins, first, per_decision)
    if isinstance(fit_settings, dict):
        from weathervane.mmm.model import FitSettings

        fit_settings = FitSettings(**fit_settings)
    offset = (data.dates[0].date() - log.start).days  # log day of model period 0
    all_periods = [(s, e) for s, e in log.periods() if s >= offset and (s - offset) % log.period_days == 0]
    window = [(s, e) for s, e in all_periods if (s - offset) // step_days >= origins[0]]

    # outcome models
    models: dict[int, OriginModel] = {}
    for i, o in enumerate(origins):
        stop = origins[i + 1] if i + 1 < len(origins) else n_model
        if reuse and o in reuse:
            models[o] = replace(reuse[o], reused=True)
        else:
            models[o] = fit_origin(data, o, stop, fit_settings, tenant_id=log.tenant_id, store=store,
                                   save=save_models, laplace_draws=settings.laplace_draws)

    # per period: logged action, outcome, predictions
    y = np.array([log.outcome(s, e) for s, e in window])
    logged = np.array([log.action(s, e) for s, e in window])
    prev = np.array([log.spend[max(0, s - log.period_days):s].sum(axis=0) for s, e in window])
    period_rows, cand_inputs, actions = [], {}, {}
    served = []
    m_pred = []
    for s, e in window:
        idx = (s - offset) // step_days
        o = _served(origins, idx)
        om = models[o]
        block = om.pred_block[:, idx - o: idx - o + per_decision].sum(axis=1)  # [draw]
        served.append(o)
        m_pred.append(block)
    n_draw = max(len(b) for b in m_pred)
    m = np.stack([np.resize(b, n_draw) for b in m_pred], axis=1)  # [draw, period]
    # the behaviour density learns from every logged step, the training periods' included
    behaviour = _behaviour(log, all_periods)
    target_ess = max(settings.min_ess, settings.target_ess_share * len(window))
    for spec in policies:
        acts, notes, deltas = [], [], []
        for t, (s, e) in enumerate(window):
            om = models[served[t]]
            a, note = act(spec, log, s, e, policy_response or om.actor or om.response)
            acts.append(a)
            notes.append(note)
            resp = om.response
            sp_c, z, hist = log.response_inputs(resp, s, e, a)
            sp_l, _, _ = log.response_inputs(resp, s, e, logged[t])
            c_cand = resp.sample_contribution(sp_c, z, hist).sum(axis=(1, 2, 3))
            c_log = resp.sample_contribution(sp_l, z, hist).sum(axis=(1, 2, 3))
            deltas.append(c_cand - c_log)
        acts = np.array(acts)
        delta = np.stack(deltas, axis=1)  # [draw_resp, period]
        dd = max(delta.shape[0], m.shape[0])
        q = np.resize(m, (dd, m.shape[1])) if m.shape[0] != dd else m
        q = q + (np.resize(delta, (dd, delta.shape[1])) if delta.shape[0] != dd else delta)
        wts = bh.weights(behaviour, prev, logged, acts, target_ess=target_ess)
        cand_inputs[spec.name] = (CandidateInputs(q=q, m=m, w=wts.w), wts)
        actions[spec.name] = acts
        for t, (s, e) in enumerate(window):
            period_rows.append(dict(
                period_start=log.date_of(s), period_end=log.date_of(e - 1), policy=spec.name,
                model_id=models[served[t]].model_id, logged_spend=float(logged[t].sum()),
                observed_kpi=float(y[t]), predicted_logged_kpi=float(m[:, t].mean()),
                predicted_kpi=float(q[:, t].mean()), weight=float(wts.w[t]), in_support=bool(wts.in_support[t]),
                action_distance=float(wts.distance[t]),
                moved_share=float(np.abs(acts[t] - logged[t]).sum() / max(logged[t].sum(), 1e-9) / 2),
                note=notes[t] or None, **log.plan_context(s, e),
            ))
    reps = bootstrap(y, {k: v[0] for k, v in cand_inputs.items()}, settings.n_boot, settings.seed)
    keep = next(p.name for p in policies if p.kind == KEEP_SPLIT)
    rows = []
    n = len(window)
    for spec in policies:
        ci, wts = cand_inputs[spec.name]
        for est in ESTIMATORS:
            val = point(est, y, ci)
            lo, hi = interval(reps[spec.name][est], settings.level)
            diff = reps[spec.name][est] - reps[keep][est]
            lift = val - point(est, y, cand_inputs[keep][0])
            llo, lhi = interval(diff, settings.level) if spec.name != keep else (0.0, 0.0)
            ok, reason = _evaluable(spec, est, wts, behaviour, n, settings)
            rows.append(dict(
                policy=spec.name, estimator=est, value_mean=val, value_p05=lo, value_p95=hi,
                effective_sample_size=wts.ess, support_share=wts.support_share, evaluable=ok, reason=reason,
                bandwidth=wts.bandwidth,
                lift_mean=lift, lift_p05=llo, lift_p95=lhi,
                prob_lift_positive=float(np.nanmean(diff > 0)) if spec.name != keep else None,
                n_periods=n, description=spec.describe(),
            ))
    res = ReplayResult(
        replay_id=f"{log.tenant_id}-replay-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
        tenant_id=log.tenant_id, window_start=log.date_of(window[0][0]), window_end=log.date_of(window[-1][1] - 1),
        n_periods=n, rows=pd.DataFrame(rows), periods=pd.DataFrame(period_rows),
        models=pd.DataFrame([dict(
            model_id=om.model_id, origin_date=data.dates[o].date(), train_start=om.train_start,
            train_end=om.train_end, method=om.method, fit_seconds=round(om.fit_seconds, 1), reused=om.reused,
            n_draws=om.n_draws, laplace_held=om.laplace_held,
            periods_served=int(sum(1 for x in served if x == o)),
            first_period_start=min((log.date_of(s) for (s, _), x in zip(window, served) if x == o), default=None),
            path=str(om.path) if om.path else None) for o, om in models.items()]),
        behaviour=behaviour, policies=list(policies), origin_models=models, actions=actions,
    )
    if n_origins < settings.n_origins:
        res.notes.append(f"{n_origins} outcome model(s) rather than the {settings.n_origins} asked for: each serves at "
                         f"least {settings.min_periods_per_origin} decision periods of this window")
    res.notes.append(f"{len(models)} outcome models at rolling origins ({', '.join(str(data.dates[o].date()) for o in origins)}), "
                     f"fitted by {', '.join(sorted({m.method for m in models.values()}))} "
                     f"({min(m.n_draws for m in models.values())} posterior draws or more); each period is valued by "
                     "the last model fitted before it")
    res.notes.append(behaviour.describe())
    if policy_response is not None:
        res.notes.append(f"allocator candidates acted with the response model {policy_response.model_id}")
    res.conclusion = conclusion(res)
    return res


def too_short(log: DecisionLog, policies: list[PolicySpec], settings: ReplaySettings, n_model: int, first: int,
              unit: str) -> ReplayResult:
    """The replay of a history too short for rolling origins: every row not evaluable, with the reason, and no
    outcome model fitted."""
    have = n_model * period_length(unit) // log.period_days
    need = first * period_length(unit) // log.period_days + settings.min_periods
    reason = (f"the history is too short: {n_model} {unit}s ({have} decision periods); rolling-origin outcome "
              f"models need {first} {unit}s to train the first model and {settings.min_periods} decision periods "
              f"after it ({need} in all)")
    rows = [dict(policy=spec.name, estimator=est, value_mean=np.nan, value_p05=np.nan, value_p95=np.nan,
                 effective_sample_size=np.nan, support_share=np.nan, evaluable=False, reason=reason, bandwidth=np.nan,
                 lift_mean=np.nan, lift_p05=np.nan, lift_p95=np.nan, prob_lift_positive=None, n_periods=0,
                 description=spec.describe())
            for spec in policies for est in ESTIMATORS]
    res = ReplayResult(
        replay_id=f"{log.tenant_id}-replay-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
        tenant_id=log.tenant_id, window_start=None, window_end=None, n_periods=0, rows=pd.DataFrame(rows),
        periods=pd.DataFrame(), models=pd.DataFrame(), behaviour=None, policies=list(policies))
    res.notes.append(f"no outcome model fitted: {reason}")
    res.conclusion = f"Not evaluable: {reason}."
    return res


def _behaviour(log: DecisionLog, periods) -> bh.BehaviourModel:
    return bh.fit_behaviour(np.array([log.action(s, e) for s, e in periods]))


def _evaluable(spec: PolicySpec, est: str, wts: bh.Weights, behaviour: bh.BehaviourModel, n: int,
               settings: ReplaySettings) -> tuple[bool, str | None]:
    if n < settings.min_periods:
        return False, f"only {n} periods in the window (need {settings.min_periods})"
    low_ess = est != "direct" and wts.ess < settings.min_ess
    if spec.kind == KEEP_SPLIT:
        if low_ess:
            return False, f"effective sample size {wts.ess:.1f} < {settings.min_ess:g} at the widest kernel (h = {wts.bandwidth:.2f})"
        return True, None
    if not behaviour.moved:
        return False, (f"the logged spend never moved enough (median log-share change {behaviour.median_move:.3f} "
                       f"< {bh.MIN_MOVE})")
    if wts.support_share < settings.min_support:
        return False, (f"the candidate left the logged support in {1 - wts.support_share:.0%} of periods "
                       f"(allowed {1 - settings.min_support:.0%})")
    if low_ess:
        return False, f"effective sample size {wts.ess:.1f} < {settings.min_ess:g} at the widest kernel (h = {wts.bandwidth:.2f})"
    return True, None


def conclusion(res: ReplayResult) -> str:
    """One plain sentence on the weather-aware policy against keeping the split (doubly robust, else direct)."""
    target = "weather_aware" if any(p.name == "weather_aware" for p in res.policies) else \
        next(p.name for p in res.policies if p.kind != KEEP_SPLIT)
    rows = res.rows[res.rows["policy"] == target].set_index("estimator")
    for est in ("doubly_robust", "direct"):
        r = rows.loc[est]
        if bool(r["evaluable"]):
            verb = "earned" if r["lift_mean"] >= 0 else "lost"
            why = "" if est == "doubly_robust" else \
                f"; the doubly robust estimate is not evaluable: {rows.loc['doubly_robust', 'reason']}"
            return (f"The {target.replace('_', '-')} policy would have {verb} {abs(r['lift_mean']):,.0f} "
                    f"[{r['lift_p05']:,.0f}, {r['lift_p95']:,.0f}] {'more' if r['lift_mean'] >= 0 else 'less'} than "
                    f"keeping the split over {res.n_periods} periods ({res.window_start} to {res.window_end}; "
                    f"{est.replace('_', ' ')} estimate, 90% interval{why}).")
    return f"Not evaluable: {rows.loc['doubly_robust', 'reason']}."
