"""The response model the allocator optimises over: a small protocol, and a closed-form implementation.

Any posterior that can say "with this spend, this recent spend and this weather, each channel in each geo adds
this much KPI in each period, per draw" fits. The MMM's posterior is wrapped as one (`weathervane.mmm.response`);
`SaturatingResponse` is the same functional form with explicit parameters (geometric adstock, logistic saturation,
exp(gamma . z) weather modulation), used for the simulator's ground truth and for tests.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from weathervane.transforms import media_contribution


@runtime_checkable
class ResponseModel(Protocol):
    model_id: str
    channels: Sequence[str]
    geos: Sequence[str]
    weather_vars: Sequence[str]
    period_days: int  # 1 for a daily model, 7 for a weekly one
    lags: int  # periods of recent spend that still carry over into the horizon

    def sample_contribution(self, spend: np.ndarray, weather_z: np.ndarray, history: np.ndarray) -> np.ndarray:
        """Posterior draws of incremental KPI.

        spend [period, channel, geo] over the horizon, weather_z [period, geo, weather_var] (within-geo z-scores),
        history [lags, channel, geo] of the periods just before the horizon (oldest first).
        Returns [draw, period, channel, geo]. A cell's contribution may depend only on its own spend.
        """
        ...


@dataclass
class SaturatingResponse:
    """contribution[d,t,c,g] = beta[d,c,g] * tanh-logistic(adstock(spend)/scale[c], lam[c]) * exp(sum_w gamma[d,c,w] z[t,g,w]).

    beta is the maximum contribution per period at average weather; draws of beta and gamma stand for posterior
    uncertainty.
    """

    channels: list[str]
    geos: list[str]
    weather_vars: list[str]
    alpha: np.ndarray  # [channel]
    lam: np.ndarray  # [channel]
    scale: np.ndarray  # [channel], spend per period
    beta: np.ndarray  # [draw, channel, geo]
    gamma: np.ndarray  # [draw, channel, weather_var]
    l_max: int = 8
    period_days: int = 1
    model_id: str = "saturating"
    weather_stats: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def lags(self) -> int:
        return self.l_max - 1

    def sample_contribution(self, spend: np.ndarray, weather_z: np.ndarray, history: np.ndarray) -> np.ndarray:
        full = np.concatenate([history, spend], axis=0) if len(history) else spend
        # normalised adstock is linear, so scaling spend first is the same as scaling the adstock
        shape = media_contribution(full / self.scale[None, :, None], self.alpha[:, None], self.lam[:, None], 1.0,
                                   self.l_max)[len(history):]  # [t, c, g]
        mult = np.exp(np.einsum("dcw,tgw->dtcg", self.gamma, weather_z))
        return self.beta[:, None, :, :] * shape[None] * mult

    @classmethod
    def from_truth(cls, truth, draws: int = 200, spread: float = 0.1, seed: int = 0) -> "SaturatingResponse":
        """The simulator's ground truth (weathervane.simulate Truth) with `spread` relative noise as draws."""
        rng = np.random.default_rng(seed)
        chans = list(truth.channels.values())
        channels = [c.name for c in chans]
        geos = [g.geo_id for g in truth.geos]
        wvars = sorted({w for c in chans for w in c.gamma})
        beta0 = np.array([[c.beta[g] for g in geos] for c in chans])
        gamma0 = np.array([[c.gamma.get(w, 0.0) for w in wvars] for c in chans])
        return cls(
            channels=channels, geos=geos, weather_vars=wvars,
            alpha=np.array([c.alpha for c in chans]), lam=np.array([c.lam for c in chans]),
            scale=np.array([c.scale for c in chans]),
            beta=beta0[None] * np.exp(rng.normal(0, spread, (draws, *beta0.shape))),
            gamma=gamma0[None] + rng.normal(0, spread * 0.5, (draws, *gamma0.shape)) * (gamma0[None] != 0),
            l_max=int(chans[0].l_max), model_id="simulator-truth",
            weather_stats={g.geo_id: {w: [g.weather_mean[w], g.weather_sd[w]] for w in wvars if w in g.weather_mean}
                           for g in truth.geos},
        )
