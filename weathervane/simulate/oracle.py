"""Value any allocation under a simulated world's TRUE response, and score a model's plans against the oracle.

The truth json (`weathervane.simulate.truth`) holds each channel's response: normalised adstock weights, the
saturation form and its parameters, the scale spend is divided by, beta per geo and the weather log-multipliers
gamma; the horizon's actual weather (what the forecast files say) as within-geo z. An allocation's value is the
expected media revenue over the horizon: each cell's total spread evenly over the horizon's days, the last days of
observed spend prepended for carry-over, through the simulator's own media maths (`weathervane.simulate.media`).

Regret is against the oracle: the allocation that maximises that true value under the same budget and the same
±max_change_pct per cell the plan had, with the true horizon weather. regret_pct = 100 × (oracle − value) / oracle.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from weathervane.simulate.truth import Truth, load_truth


@dataclass
class TrueResponse:
    """The simulator's response as a ResponseModel with one draw (the truth itself), on the truth's geos."""

    truth: Truth
    channels: list[str]
    geos: list[str]
    weather_vars: list[str]
    period_days: int = 1
    model_id: str = "simulator-truth"

    @property
    def lags(self) -> int:
        return max(len(c.adstock_weights) for c in self.truth.channels.values()) - 1

    def sample_contribution(self, spend: np.ndarray, weather_z: np.ndarray, history: np.ndarray) -> np.ndarray:
        from weathervane.simulate.media import adstock, hill_saturation, logistic_saturation

        full = np.concatenate([history, spend], axis=0) if len(history) else spend  # [t, c, g]
        out = np.zeros((1, spend.shape[0], len(self.channels), len(self.geos)))
        for ci, name in enumerate(self.channels):
            ch = self.truth.channels[name]
            scale = (np.array([ch.scale_by_geo[g] for g in self.geos])[:, None]
                     if getattr(ch, "scale_by_geo", None) else ch.scale)  # geo_parity worlds: one per geo
            x = adstock(full[:, ci, :].T, np.asarray(ch.adstock_weights, dtype=float)) / scale  # [g, t]
            if getattr(ch, "saturation", "logistic") == "hill":
                sat = hill_saturation(x, ch.hill_slope, ch.hill_half)
            else:
                sat = logistic_saturation(x, ch.lam)
            log_mult = sum(ch.gamma.get(w, 0.0) * weather_z[:, :, k].T for k, w in enumerate(self.weather_vars))
            beta = np.array([ch.beta[g] for g in self.geos])[:, None]
            out[0, :, ci, :] = (beta * sat[:, len(history):] * np.exp(log_mult)).T
        return out


def true_response(truth: Truth) -> TrueResponse:
    channels = list(truth.channels)
    wvars = sorted({w for c in truth.channels.values() for w in c.gamma})
    return TrueResponse(truth=truth, channels=channels, geos=[g.geo_id for g in truth.geos], weather_vars=wvars)


def horizon_z(truth: Truth, weather_vars: list[str], start: date, days: int,
              landing_root: Path | str | None = None) -> np.ndarray:
    """[day, geo, var] true weather z over the horizon: the truth's own horizon record when it has one, else the
    tenant's forecast files (the simulator writes the actual weather there) standardised with the truth's moments."""
    geos = [g.geo_id for g in truth.geos]
    z = np.zeros((days, len(geos), len(weather_vars)))
    dates = [(start + timedelta(days=i)).isoformat() for i in range(days)]
    horizon = getattr(truth, "horizon", None)
    if horizon is not None and getattr(horizon, "z", None):
        pos = {d: i for i, d in enumerate(horizon.dates)}
        for k, w in enumerate(weather_vars):
            for gi, g in enumerate(geos):
                series = horizon.z.get(w, {}).get(g)
                if series:
                    z[:, gi, k] = [series[pos[d]] if d in pos else 0.0 for d in dates]
        return z
    if landing_root is None:
        raise ValueError("the truth has no horizon weather and no landing folder was given to read the forecast")
    folder = Path(landing_root) / truth.tenant_id / "weather" / "forecast"
    for gi, geo in enumerate(truth.geos):
        values: dict[str, dict[str, float]] = {}
        for path in sorted((folder / geo.geo_id).glob("*.json")):
            daily = json.loads(path.read_text(encoding="utf-8"))["daily"]
            for w in weather_vars:
                values.setdefault(w, {}).update(zip(daily["time"], daily[w]))
        for k, w in enumerate(weather_vars):
            mean, sd = geo.weather_mean.get(w), geo.weather_sd.get(w)
            if mean is None or not sd:
                continue
            z[:, gi, k] = [(values.get(w, {}).get(d, mean) - mean) / sd for d in dates]
    return z


@dataclass(frozen=True)
class WeatherEvent:
    """A stretch of unusual weather in a simulated horizon: what the forecast files say and what then happens.

    heat_wave: the daily mean, max and min temperature `size_sd` of the geo's own sd above what was simulated;
    wet_stretch: precipitation `size_sd` sd above the geo's mean on every day of the stretch."""

    kind: str  # heat_wave | wet_stretch
    geo_ids: tuple[str, ...]
    first_day: int = 3  # day of the horizon the stretch starts on
    days: int = 14
    size_sd: float = 2.5

    def label(self) -> str:
        return f"{self.kind.replace('_', ' ')} in {', '.join(self.geo_ids)}"


EVENT_VARIABLES = {"heat_wave": ("temperature_2m_mean", "temperature_2m_max", "temperature_2m_min"),
                   "wet_stretch": ("precipitation_sum",)}


def _event_value(ev: WeatherEvent, geo, var: str, value: float) -> float:
    """The value of `var` on a day of the event, from the value simulated for that day."""
    if ev.kind == "heat_wave":
        return round(value + ev.size_sd * geo.weather_sd["temperature_2m_mean"], 1)
    return round(max(value, geo.weather_mean[var] + ev.size_sd * geo.weather_sd[var]), 1)


def impose_weather_events(truth: Truth, landing_root: Path | str, events: list[WeatherEvent]) -> Truth:
    """Put the events into the tenant's forecast files and into the truth's horizon (its weather, z and expected
    baseline), so the planner reads them as a forecast and the oracle values plans under them; the truth file is
    rewritten when it sits beside the tenant folder. Returns the updated truth."""
    horizon = truth.horizon
    if horizon is None:
        raise ValueError(f"truth {truth.tenant_id} has no horizon to put weather events in")
    geos = {g.geo_id: g for g in truth.geos}
    weather = {v: {g: list(s) for g, s in by_geo.items()} for v, by_geo in horizon.weather.items()}
    z = {v: {g: list(s) for g, s in by_geo.items()} for v, by_geo in horizon.z.items()}
    baseline = {g: list(s) for g, s in horizon.baseline.items()}
    eta = dict(truth.baseline_params) if truth.world.baseline_weather else {}
    pos = {d: i for i, d in enumerate(horizon.dates)}
    folder = Path(landing_root) / truth.tenant_id / "weather" / "forecast"
    for ev in events:
        if ev.kind not in EVENT_VARIABLES:
            raise ValueError(f"unknown weather event {ev.kind!r} (heat_wave or wet_stretch)")
        days = range(ev.first_day, min(ev.first_day + ev.days, len(horizon.dates)))
        for gid in ev.geo_ids:
            if gid not in geos:
                raise ValueError(f"weather event in {gid}: not a geo of {truth.tenant_id}")
            g = geos[gid]
            for v in EVENT_VARIABLES[ev.kind]:
                if v not in weather:
                    continue
                for d in days:
                    value = _event_value(ev, g, v, weather[v][gid][d])
                    dz = (value - g.weather_mean[v]) / g.weather_sd[v] - z[v][gid][d]
                    weather[v][gid][d] = value
                    z[v][gid][d] += dz
                    baseline[gid][d] *= float(np.exp(float(eta.get(f"eta_{v}", 0.0)) * dz))
            for path in sorted((folder / gid).glob("*.json")):
                doc = json.loads(path.read_text(encoding="utf-8"))
                daily = doc["daily"]
                for i, day in enumerate(daily["time"]):
                    if pos.get(day, -1) in days:
                        for v in EVENT_VARIABLES[ev.kind]:
                            # the horizon's record where it has the variable, so files and truth agree
                            daily[v][i] = (weather[v][gid][pos[day]] if v in weather
                                           else _event_value(ev, g, v, daily[v][i]))
                path.write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
    z = {v: {g: [round(x, 4) for x in s] for g, s in by_geo.items()} for v, by_geo in z.items()}
    out = truth.model_copy(update={"horizon": horizon.model_copy(update={"weather": weather, "z": z,
                                                                         "baseline": baseline})})
    truth_path = Path(landing_root) / f"{truth.tenant_id}.truth.json"
    if truth_path.exists():
        out.write(truth_path)
    return out


def true_history(truth: Truth, channels: list[str], lags: int, start: date) -> np.ndarray:
    """[lag, channel, geo] the true daily spend of the `lags` days before `start` (carry-over into the horizon)."""
    geos = [g.geo_id for g in truth.geos]
    pos = {d: i for i, d in enumerate(truth.daily.dates)}
    out = np.zeros((lags, len(channels), len(geos)))
    for li in range(lags):
        d = (start - timedelta(days=lags - li)).isoformat()
        if d not in pos:
            continue
        for ci, ch in enumerate(channels):
            for gi, g in enumerate(geos):
                out[li, ci, gi] = truth.daily.spend.get(ch, {}).get(g, [0.0] * len(pos))[pos[d]]
    return out


class WorldValuer:
    """Values allocations [channel, geo] (totals over the horizon, in a plan's channel and geo order) under the
    truth; plan geos may be the truth's geos or countries (spread over their regions by previous spend)."""

    def __init__(self, truth: Truth, start: date, days: int, landing_root: Path | str | None = None):
        self.truth = truth
        self.response = true_response(truth)
        self.start, self.days = start, days
        self.z = horizon_z(truth, self.response.weather_vars, start, days, landing_root)
        self.history = true_history(truth, self.response.channels, self.response.lags, start)

    def to_truth_cells(self, spend: np.ndarray, channels: list[str], geos: list[str],
                       previous: np.ndarray | None = None) -> np.ndarray:
        tgeos = self.response.geos
        out = np.zeros((len(self.response.channels), len(tgeos)))
        for ci, ch in enumerate(channels):
            if ch not in self.response.channels:
                continue
            tc = self.response.channels.index(ch)
            for gi, g in enumerate(geos):
                if g in tgeos:
                    out[tc, tgeos.index(g)] += spend[ci, gi]
                    continue
                members = [j for j, t in enumerate(tgeos) if t.split("-")[0] == g]
                if not members:
                    raise ValueError(f"plan geo {g} is neither a simulated geo nor their country")
                w = self.history[:, tc, members].sum(axis=0)
                w = w / w.sum() if w.sum() > 0 else np.full(len(members), 1 / len(members))
                out[tc, members] += spend[ci, gi] * w
        return out

    def value(self, cells: np.ndarray) -> float:
        """Expected media revenue over the horizon of truth-cell totals [channel, geo]: the allocator's own
        evaluation, with the truth as its response model."""
        from weathervane.allocate.optimize import evaluate

        return float(evaluate(self.response, cells, self.z, self.history).sum())

    def oracle(self, previous: np.ndarray, budget: float, max_change_pct: float | None,
               weather_known: bool = True) -> np.ndarray:
        """The true-value maximising allocation (truth cells) within ±max_change_pct of `previous` (truth cells);
        `weather_known=False`: the best allocation for average weather (what knowing the forecast adds over it)."""
        from weathervane.allocate.optimize import Constraints, optimize_allocation

        z = self.z if weather_known else np.zeros_like(self.z)
        alloc = optimize_allocation(self.response, z, self.history,
                                    Constraints(total_budget=budget, previous=previous, max_change_pct=max_change_pct),
                                    grid_points=65)
        return alloc.spend


def regret(oracle_value: float, value: float) -> float:
    return 100.0 * (oracle_value - value) / oracle_value if oracle_value > 0 else float("nan")


def evaluate_world_decision(con, tenant_id: str, truth_path: Path | str, model_id: str, landing_root: Path | str,
                            reports_dir: Path | str | None = None, *, store: Path | str,
                            require_holdout: bool = True) -> dict:
    """Make the production plan and the weather-blind plan (z = 0) with model `model_id`, and value them,
    keep-the-split and the optimiser's unscaled candidate under the world's true response and horizon weather.

    Returns the values (expected media revenue over the horizon, currency) and the regrets (percent of the
    oracle's value) of: plan, keep_split, weather_blind, candidate; with the plan's decision, P(better), the share
    of the move it took, the channels it held and why it fell back (if it did). When the plan fell back because
    the model has no holdout score (benchmarks skip it to save a fit), `*_no_holdout` also gives the plan the
    other guards alone would have proposed. `require_holdout=False` makes both plans as if the holdout had passed
    (planning.max_holdout_mape off), every other guard as production has it."""
    from weathervane.allocate.mmm_response import load_model_response
    from weathervane.allocate.plan import build_plan
    from weathervane.config import load_tenant_config

    truth = load_truth(truth_path)
    cfg = load_tenant_config(landing_root, tenant_id)
    if not require_holdout:
        cfg = cfg.model_copy(update={"planning": cfg.planning.model_copy(update={"max_holdout_mape": None})})
    response = load_model_response(model_id, tenant_id, store)
    start = date.fromisoformat(truth.forecast_start)
    plan = build_plan(con, tenant_id, cfg, response, start=start)
    blind = build_plan(con, tenant_id, cfg, response, start=start, weather_blind=True)
    others = {}
    if plan.evidence is not None and plan.evidence.holdout_mape is None and cfg.planning.max_holdout_mape:
        relaxed = cfg.model_copy(update={"planning": cfg.planning.model_copy(update={"max_holdout_mape": None})})
        others["plan_no_holdout"] = build_plan(con, tenant_id, relaxed, response, start=start)
    if reports_dir is not None:
        from weathervane import reports as rp
        from weathervane.allocate.report import write_plan_report

        plan.report_path = str(write_plan_report(plan, reports_dir, rp.audience(tenant_id, landing_root)))
    return score_plans(truth, plan, blind, cfg.planning.max_change_pct, landing_root, others)


def score_plans(truth: Truth, plan, blind, max_change_pct: float | None,
                landing_root: Path | str | None = None, others: dict | None = None) -> dict:
    """Value a plan, its weather-blind twin, keep-the-split and the unscaled candidate against the oracle."""
    days = (plan.horizon_end - plan.horizon_start).days + 1
    valuer = WorldValuer(truth, plan.horizon_start, days, landing_root)

    def cells(spend):
        return valuer.to_truth_cells(spend, plan.channels, plan.geos)

    previous = cells(plan.previous)
    oracle = valuer.oracle(previous, plan.total_budget, max_change_pct)
    v = {"oracle": valuer.value(oracle), "plan": valuer.value(cells(plan.spend)),
         "keep_split": valuer.value(cells(plan.baseline_spend)), "weather_blind": valuer.value(cells(blind.spend)),
         "candidate": valuer.value(cells(plan.candidate_spend if plan.candidate_spend is not None else plan.spend))}
    for name, other in (others or {}).items():
        v[name] = valuer.value(cells(other.spend))
    # what knowing the weather is worth: the oracle's regret had it planned for average weather
    weather_worth = regret(v["oracle"], valuer.value(valuer.oracle(previous, plan.total_budget, max_change_pct,
                                                                   weather_known=False)))
    out = {
        "tenant_id": plan.tenant_id, "model_id": plan.model_id, "decision": plan.decision,
        "fallback_reason": plan.fallback_reason, "prob_better": round(float(plan.prob_better), 3),
        "move_fraction": round(float(plan.move_fraction), 2),
        "weather_share": round(float(getattr(plan, "weather_share", 1.0)), 2),
        "held_channels": sorted({plan.channels[c] for c, _ in zip(*np.nonzero(plan.held))}) if plan.held is not None else [],
        "blind_decision": blind.decision, "weather_worth_pct": round(weather_worth, 3),
        "horizon_start": plan.horizon_start.isoformat(), "budget": round(float(plan.total_budget), 2),
        # what the plan claims beside its decision: its lift interval and what it left out of the weather
        "expected_lift_mean": round(float(np.mean(plan.lift_draws)), 2),
        "expected_lift_p05": round(float(np.quantile(plan.lift_draws, 0.05)), 2),
        "geo_split_kept": list(getattr(plan, "geo_split_kept", [])),
        "weather_not_applied": list(getattr(plan, "weather_not_applied", [])),
        "weather_multiplier_range": [round(float(plan.weather_multiplier.min()), 3),
                                     round(float(plan.weather_multiplier.max()), 3)],
    }
    for name, other in (others or {}).items():
        out[f"decision_{name}"] = other.decision
        out[f"prob_better_{name}"] = round(float(other.prob_better), 3)
    for k, val in v.items():
        out[f"value_{k}"] = round(val, 2)
        if k != "oracle":
            out[f"regret_{k}_pct"] = round(regret(v["oracle"], val), 3)
    return out
