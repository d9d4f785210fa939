"""The media maths used by the model's NumPy response, its synthetic panel and the allocator: one copy.

- `adstock_weights` / `geometric_adstock`: normalised geometric carry-over, weights alpha^l / sum_l alpha^l over
  l = 0..l_max-1, no spend before the first period (PyMC-Marketing's `GeometricAdstock(normalize=True)`).
- `logistic_saturation`: (1 - e^(-lam x)) / (1 + e^(-lam x)) (PyMC-Marketing's `LogisticSaturation` without beta).
- `media_contribution`: beta * logistic(adstock(spend / scale)) * exp(gamma . z).
- `weather_moments` / `standardise_weather`: the one weather standardisation (within a geo, over its daily history,
  with the sample standard deviation, ddof=1) that dbt's weather anomalies, the model's z and the allocator's
  forecast z share.

The simulator (`weathervane.simulate.media`) keeps an independent copy of the data-generating maths on purpose,
so a bug here cannot make the model agree with its own ground truth.
"""
from __future__ import annotations

import numpy as np

WEATHER_SD_DDOF = 1  # sample sd, as dbt's stddev_samp


def adstock_weights(alpha, l_max: int) -> np.ndarray:
    """Normalised geometric weights with the lag as the last axis: [*alpha.shape, l_max]."""
    a = np.asarray(alpha, dtype=float)[..., None]
    w = a ** np.arange(l_max)
    return w / w.sum(axis=-1, keepdims=True)


def geometric_adstock(x: np.ndarray, alpha, l_max: int) -> np.ndarray:
    """Normalised geometric adstock along axis 0 of x [time, *rest].

    `alpha` broadcasts against x[t] (e.g. [channel, 1] for x [time, channel, geo]); leading axes of alpha beyond
    x's rank are kept in front of time (alpha [draw, 1, channel, 1] gives [draw, time, channel, geo]).
    """
    x = np.asarray(x, dtype=float)
    w = adstock_weights(alpha, l_max)
    T = x.shape[0]
    if x.ndim == 3 and w.ndim == 5 and w.shape[1] == 1 and w.shape[2] == x.shape[1] and w.shape[3] == 1:
        return _adstock_draws(x, w[:, 0, :, 0, :])
    shape = np.broadcast_shapes(w[..., 0].shape, x.shape)
    out = np.zeros(shape)
    t_axis = len(shape) - x.ndim
    for lag in range(min(l_max, T)):
        index = (slice(None),) * t_axis + (slice(lag, None),)
        out[index] += w[..., lag] * x[: T - lag]
    return out


def _adstock_draws(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`geometric_adstock` of x [time, channel, geo] under per-draw weights w [draw, channel, lag], as one batched
    matrix product per channel (the allocator evaluates this thousands of times per plan; the lag loop was 8x
    slower): [draw, time, channel, geo]."""
    T, C, G = x.shape
    S, L = w.shape[0], min(w.shape[-1], T)
    lagged = np.zeros((L, T, C, G))
    for lag in range(L):
        lagged[lag, lag:] = x[: T - lag]
    out = np.matmul(w[..., :L].transpose(1, 0, 2), lagged.transpose(2, 0, 1, 3).reshape(C, L, T * G))
    return out.reshape(C, S, T, G).transpose(1, 2, 0, 3)


def logistic_saturation(x, lam) -> np.ndarray:
    e = np.exp(-np.asarray(lam, dtype=float) * np.asarray(x, dtype=float))
    return (1 - e) / (1 + e)


def media_contribution(spend_scaled: np.ndarray, alpha, lam, beta, l_max: int, weather_log_multiplier=0.0):
    """beta * logistic(adstock(spend_scaled), lam) * exp(weather_log_multiplier); all arguments broadcast as in
    `geometric_adstock` (spend scaled by the channel's scale already)."""
    return np.asarray(beta) * logistic_saturation(geometric_adstock(spend_scaled, alpha, l_max), lam) * np.exp(
        weather_log_multiplier)


def weather_moments(values) -> tuple[float, float]:
    """Mean and sample sd (ddof=1) of a geo's daily history of one weather variable, ignoring missing days;
    sd 1.0 when it does not vary (so z stays 0 rather than undefined)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    mean = float(v.mean())
    sd = float(v.std(ddof=WEATHER_SD_DDOF)) if v.size > WEATHER_SD_DDOF else 0.0
    return mean, (sd if sd > 0 and np.isfinite(sd) else 1.0)


def standardise_weather(values, mean: float, sd: float) -> np.ndarray:
    """z = (value - mean) / sd with the geo's stored history moments (see `weather_moments`)."""
    return (np.asarray(values, dtype=float) - mean) / (sd or 1.0)
