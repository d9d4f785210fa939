"""Candidate budget policies: functions from a period's context to an allocation with the logged total.

Every candidate keeps the period's logged total and starts from the previous period's split:
- `keep_split`: the previous period's split, unchanged;
- `weather_aware`: the production plan rules (weathervane.allocate.plan.decide: held cells, the spend range run
  in comparable periods, geo splits kept without evidence, weather only where its interval excludes 1, the
  move sized and judged with the model-error allowance, keep-the-split unless P(better) clears the bar) at the
  tenant's max_change_pct, with the period's weather as its forecast (the replay stands in the weather that
  came for the forecast the brand would have had);
- `weather_blind`: the same rules at average weather (z = 0);
- `looser` / `tighter`: the weather-aware rules at twice / half the tenant's max change;
- any extra listed in tenant.yaml (replay.policies).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KEEP_SPLIT = "keep_split"


@dataclass(frozen=True)
class PolicySpec:
    name: str
    kind: str = "allocator"  # allocator | keep_split
    max_change_pct: float | None = 30.0
    weather: bool = True

    def describe(self) -> str:
        if self.kind == KEEP_SPLIT:
            return "keep the previous period's split"
        w = "weather-aware" if self.weather else "weather-blind (average weather)"
        limit = "no change limit" if self.max_change_pct is None else f"max change {self.max_change_pct:g}%"
        return f"{w} allocator, {limit}"


def default_policies(max_change_pct: float | None, extra: list[PolicySpec] | tuple = ()) -> list[PolicySpec]:
    p = 30.0 if max_change_pct is None else float(max_change_pct)
    specs = [
        PolicySpec(KEEP_SPLIT, kind=KEEP_SPLIT, max_change_pct=None, weather=False),
        PolicySpec("weather_aware", max_change_pct=p),
        PolicySpec("weather_blind", max_change_pct=p, weather=False),
        PolicySpec("looser", max_change_pct=min(2 * p, 100.0)),
        PolicySpec("tighter", max_change_pct=p / 2),
    ]
    names = {s.name for s in specs}
    for e in extra:
        if e.name in names:
            raise ValueError(f"replay.policies: {e.name!r} is already a built-in candidate")
        names.add(e.name)
        specs.append(e)
    return specs


def previous_split(log, start: int) -> np.ndarray:
    """Shares [channel, geo] of the previous decision period's spend (even when there is none)."""
    prev = log.spend[max(0, start - log.period_days):start].sum(axis=0)
    total = prev.sum()
    return prev / total if total > 0 else np.full(prev.shape, 1.0 / prev.size)


def act(spec: PolicySpec, log, start: int, stop: int, response) -> tuple[np.ndarray, str]:
    """The candidate's allocation [channel, geo] (log order) for days start..stop-1, and a note when the plan
    rules kept the split (why) or the allocator could not run.

    The plan rules are production's (`decide`); the replay's outcome model has no holdout score and no
    identifiability flags on record, so those two guards are off here and the model's draws stand as stated."""
    from weathervane.allocate.optimize import AllocationInfeasible
    from weathervane.allocate.plan import decide
    from weathervane.allocate.safety import ModelEvidence, support_range
    from weathervane.config import Planning

    total = float(log.action(start, stop).sum())
    keep = previous_split(log, start) * total
    if spec.kind == KEEP_SPLIT or total <= 0:
        return keep, ""
    spend, z, hist = log.response_inputs(response, start, stop, keep, weather=spec.weather)
    previous = spend.sum(axis=0)  # the kept split, in the response's channel / geo order
    ci = [log.channels.index(c) for c in response.channels]
    gi = [log.geos.index(g) for g in response.geos]
    support = support_range(log.spend[max(0, start - 365):start][:, ci][:, :, gi], stop - start)
    rules = Planning(max_change_pct=spec.max_change_pct, max_holdout_mape=None)
    evidence = ModelEvidence.assumed(response.model_id, holdout_mape=None)
    try:
        d = decide(response, z, hist, previous, total, rules, evidence, support=support)
    except AllocationInfeasible as exc:
        return keep, f"kept the split: {exc}"
    back_c = [response.channels.index(c) for c in log.channels]
    back_g = [list(response.geos).index(g) for g in log.geos]
    return d.spend[np.ix_(back_c, back_g)], (f"kept the split: {d.reasons[0]}" if d.reasons else "")
