"""Simulated decision logs: budget moves that follow a known stochastic logging policy, with every candidate
policy's true expected value over the logged periods.

Daily, per geo g (same functional form as `weathervane.simulate.core`, with the simulator's own media maths):
  media_c(g,t)  = beta[c,g] * sat(adstock_c(spend_c(g,.))(t) / scale_c, lam_c) * exp(sum_w gamma[c,w] z_w(g,t))
  baseline(g,t) = b0_g * trend * yearly * weekday * exp(eta . z(g,t)) * AR(1) demand shock
  kpi(g,t)      = (baseline + sum_c media_c) * (1 + N(0, noise_sd))

Logging policy, one decision per period (a week by default), on the split of the period's budget over the
channel x geo cells. Let y be the centred log shares (log share minus its mean over cells):
  y_t = y_{t-1} + kappa * (y_base - y_{t-1}) + e_t,   e_t ~ N(0, sigma^2) in the orthonormal coordinates of the
  centred subspace (d - 1 of them for d cells);
the period total is budget * lognormal(0, total_sd), spent evenly over the period's days. The density of each
logged step (its propensity) goes to the truth file only; the landing-style outputs hold spend and KPI.

Each candidate's true value over the logged periods is sum_t E[KPI_t | the period's context, the candidate's
allocation in period t, the logged spend before it]: the allocation of one period does not carry over into the
next period's value (the replay makes the same one-period assumption).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from weathervane.config import validate_tenant_id
from weathervane.periods import period_start
from weathervane.replay.behaviour import centred_basis
from weathervane.simulate.geos import first_geos
from weathervane.simulate.media import CHANNEL_BY_NAME, L_MAX, adstock, logistic_saturation
from weathervane.simulate.weather import simulate_weather

WEATHER_VARS = ("temperature_2m_mean", "precipitation_sum")


@dataclass
class LoggingPolicy:
    """The stochastic policy that moved the logged budget (see the module docstring)."""

    sigma: float = 0.15  # sd of a log-share step, per orthonormal coordinate
    kappa: float = 0.3  # pull back towards the base split per period
    total_sd: float = 0.1  # period-to-period sd of the log total budget
    base_split: list[float] | None = None  # [channel x geo] flattened channel-major; None = spend by market size

    def to_dict(self) -> dict:
        return {"sigma": self.sigma, "kappa": self.kappa, "total_sd": self.total_sd, "base_split": self.base_split}


@dataclass
class LoggedHistory:
    """A simulated tenant history at daily resolution plus the truth about how its spend was chosen."""

    tenant_id: str
    start: date
    geos: list[str]
    channels: list[str]
    spend: np.ndarray  # [day, channel, geo] logged spend
    kpi: np.ndarray  # [day, geo] observed KPI
    baseline: np.ndarray  # [day, geo] expected KPI without paid media
    weather: dict[str, np.ndarray]  # var -> [day, geo] raw values
    z: np.ndarray  # [day, geo, var] within-geo standardised weather (population sd)
    period_days: int
    params: dict  # the true media response: alpha, lam, scale [channel], beta [channel, geo], gamma [channel, var]
    policy: LoggingPolicy
    log_density: np.ndarray  # [period] log density of each logged step under the logging policy (nan: first)
    candidate_values: dict[str, dict] = field(default_factory=dict)  # filled by `score_candidates`

    @property
    def n_days(self) -> int:
        return self.spend.shape[0]

    @property
    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.n_days)]

    # -- the true response -------------------------------------------------------------------------------------
    def media(self, spend: np.ndarray, day0: int = 0) -> np.ndarray:
        """True media contribution [day, channel, geo] of `spend` [day, channel, geo] starting at day `day0`."""
        p = self.params
        out = np.zeros_like(spend, dtype=float)
        z = self.z[day0:day0 + spend.shape[0]]
        for ci in range(spend.shape[1]):
            ad = adstock(spend[:, ci, :].T, p["alpha"][ci], L_MAX).T  # [day, geo]
            sat = logistic_saturation(ad / p["scale"][ci], p["lam"][ci])
            mult = np.exp(np.einsum("w,dgw->dg", np.asarray(p["gamma"][ci]), z))
            out[:, ci, :] = np.asarray(p["beta"])[ci][None, :] * sat * mult
        return out

    def expected_kpi(self, day_start: int, day_stop: int, action: np.ndarray) -> float:
        """E[KPI over days start..stop-1] with `action` [channel, geo] spread evenly over them, logged spend before."""
        lo = max(0, day_start - L_MAX)
        window = self.spend[lo:day_stop].copy()
        window[day_start - lo:] = action[None] / (day_stop - day_start)
        media = self.media(window, lo)[day_start - lo:]
        return float(self.baseline[day_start:day_stop].sum() + media.sum())

    def truth_response(self, draws: int = 200):
        """The true response as the allocator's response model: the truth in every one of `draws` identical draws
        (no posterior uncertainty; the plan rules judge moves by draws, so a single one would keep the split)."""
        from weathervane.allocate.response import SaturatingResponse

        p = self.params
        return SaturatingResponse(
            channels=list(self.channels), geos=list(self.geos), weather_vars=list(WEATHER_VARS),
            alpha=np.asarray(p["alpha"], float), lam=np.asarray(p["lam"], float),
            scale=np.asarray(p["scale"], float),
            beta=np.repeat(np.asarray(p["beta"], float)[None], draws, axis=0),
            gamma=np.repeat(np.asarray(p["gamma"], float)[None], draws, axis=0), l_max=L_MAX, period_days=1,
            model_id="logging-truth",
        )

    # -- views the pipeline reads ------------------------------------------------------------------------------
    def model_input(self, period: str = "week") -> tuple[pd.DataFrame, pd.DataFrame]:
        """Rows shaped like marts.fct_model_input (grain all x region) and the daily weather rows."""
        dates = pd.to_datetime(self.dates)
        rows = []
        for gi, g in enumerate(self.geos):
            df = pd.DataFrame({"date": dates, "kpi": self.kpi[:, gi],
                               **{f"spend_{c}": self.spend[:, ci, gi] for ci, c in enumerate(self.channels)},
                               **{v: self.weather[v][:, gi] for v in WEATHER_VARS}})
            if period == "week":
                df["date"] = period_start(df["date"], "week")
                agg = {c: "sum" for c in df.columns if c.startswith("spend_") or c == "kpi"}
                agg.update({v: "mean" for v in WEATHER_VARS})
                df = df.groupby("date", as_index=False).agg(agg)
            df["geo_id"] = g
            rows.append(df)
        frame = pd.concat(rows, ignore_index=True)
        frame["tenant_id"], frame["grain_product"], frame["grain_geo"] = self.tenant_id, "all", "region"
        frame["period"], frame["product_key"] = period, "all"
        weather = pd.concat([pd.DataFrame({"date": dates, "geo_id": g, **{v: self.weather[v][:, gi] for v in WEATHER_VARS}})
                             for gi, g in enumerate(self.geos)], ignore_index=True)
        return frame, weather

    def model_data(self, period: str = "week"):
        from weathervane.mmm.data import prepare_model_data

        frame, weather = self.model_input(period)
        return prepare_model_data(frame, weather, period)

    def decision_log(self, period: str = "week"):
        """The replay's view: what was logged, nothing of the truth."""
        from weathervane.replay.periods import DecisionLog

        data = self.model_data(period)
        z = np.stack([(self.weather[v] - np.array([data.weather_stats[g][v][0] for g in self.geos]))
                      / np.array([data.weather_stats[g][v][1] for g in self.geos]) for v in WEATHER_VARS], axis=-1)
        return DecisionLog(tenant_id=self.tenant_id, start=self.start, geos=list(self.geos),
                           channels=list(self.channels), spend=self.spend.copy(), kpi=self.kpi.sum(axis=1),
                           z=z, weather_vars=list(WEATHER_VARS), period_days=self.period_days, model_data=data)

    def score_candidates(self, policies, day_periods: list[tuple[int, int]]) -> dict[str, dict]:
        """Each candidate's actions (allocator on the true response) and true expected KPI per period."""
        from weathervane.replay.policies import act

        log = self.decision_log()
        response = self.truth_response()
        out = {}
        for spec in policies:
            values, actions = [], []
            for start, stop in day_periods:
                a, _ = act(spec, log, start, stop, response)
                actions.append(a.tolist())
                values.append(self.expected_kpi(start, stop, a))
            out[spec.name] = {"value": float(np.sum(values)), "period_values": values, "actions": actions}
        self.candidate_values = out
        return out

    def truth_dict(self) -> dict:
        return {
            "tenant_id": self.tenant_id, "start": self.start.isoformat(), "days": self.n_days,
            "geos": self.geos, "channels": self.channels, "period_days": self.period_days,
            "logging_policy": self.policy.to_dict(),
            "propensity_log_density": [None if not np.isfinite(v) else float(v) for v in self.log_density],
            "media_params": {k: np.asarray(v).tolist() for k, v in self.params.items()},
            "candidates": self.candidate_values,
        }

    def write(self, out_dir: Path | str) -> tuple[Path, Path]:
        """The aggregated landing stream (weekly CSV, per the landing contract) and the truth file beside the
        tenant folder; the propensities and candidate values are only in the truth file."""
        out_dir = Path(out_dir)
        root = out_dir / self.tenant_id
        (root / "aggregated" / "mmm_input").mkdir(parents=True, exist_ok=True)
        frame, _ = self.model_input("week")
        csv = frame.rename(columns={"kpi": "revenue"})[
            ["date", "geo_id", "revenue", *[f"spend_{c}" for c in self.channels], *WEATHER_VARS]]
        csv = csv.assign(date=csv["date"].dt.date).round(2)
        path = root / "aggregated" / "mmm_input" / "weekly.csv"
        csv.to_csv(path, index=False)
        truth = out_dir / f"{self.tenant_id}.replay-truth.json"
        truth.write_text(json.dumps(self.truth_dict(), indent=1), encoding="utf-8")
        return path, truth


def simulate_logged_history(
    tenant_id: str = "replaysim",
    seed: int = 0,
    *,
    days: int = 560,
    n_geos: int = 2,
    channels: tuple[str, ...] = ("meta", "google_shopping"),
    period_days: int = 7,
    policy: LoggingPolicy | None = None,
    daily_budget: float = 2000.0,
    media_share: float = 0.15,
    noise_sd: float = 0.04,
    demand_shock_sd: float = 0.03,
    roas: dict[str, float] | None = None,
    start: date = date(2024, 1, 1),
) -> LoggedHistory:
    """A history whose budget split follows `policy` (default LoggingPolicy()); deterministic in `seed`.

    `noise_sd`: daily relative KPI noise; `demand_shock_sd`: innovation sd of the daily AR(1) (0.9) log demand
    shock no model can foresee; `roas`: each channel's return at the base split (default the channel's target)."""
    tenant_id = validate_tenant_id(tenant_id)
    if start.weekday() != 0:
        raise ValueError(f"start must be a Monday (weeks start on Monday in the marts), got {start}")
    if days % period_days:
        raise ValueError(f"days ({days}) must be a whole number of decision periods of {period_days} days")
    policy = policy or LoggingPolicy()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 15]))
    geos = first_geos(n_geos)
    specs = [CHANNEL_BY_NAME[c] for c in channels]
    n_c, n_g, d = len(specs), len(geos), len(specs) * len(geos)
    dates = [start + timedelta(days=i) for i in range(days)]

    # weather, standardised within geo with the population sd: the simulator keeps its own maths on purpose
    # (the model uses weathervane.transforms, ddof=1; the difference is under 0.1% at a year of days)
    wx = [simulate_weather(g, dates, rng) for g in geos]
    weather = {v: np.stack([getattr(w, v) for w in wx], axis=1).astype(float) for v in WEATHER_VARS}
    z = np.stack([(weather[v] - weather[v].mean(axis=0)) / weather[v].std(axis=0) for v in WEATHER_VARS], axis=-1)

    # logging policy: the split's centred log shares follow a mean-reverting Gaussian walk
    sizes = np.array([g.size for g in geos])
    sizes = sizes / sizes.mean()
    if policy.base_split is not None:
        base = np.asarray(policy.base_split, float).reshape(n_c, n_g)
    else:
        base = np.array([s.spend_share for s in specs])[:, None] * sizes[None, :]
    base = base / base.sum()
    y_base = np.log(base.ravel()) - np.log(base.ravel()).mean()
    basis = centred_basis(d)
    n_periods = days // period_days
    y = y_base + basis @ rng.normal(0.0, policy.sigma / np.sqrt(max(1e-9, 1 - (1 - policy.kappa) ** 2)), d - 1)
    spend = np.zeros((days, n_c, n_g))
    log_density = np.full(n_periods, np.nan)
    budget = daily_budget * period_days
    for t in range(n_periods):
        if t > 0:
            mean = y + policy.kappa * (y_base - y)
            step = rng.normal(0.0, policy.sigma, d - 1)
            y = mean + basis @ step
            if policy.sigma > 0:  # sigma 0: a deterministic policy, no density
                log_density[t] = float(-0.5 * (step @ step) / policy.sigma**2
                                       - (d - 1) * np.log(policy.sigma * np.sqrt(2 * np.pi)))
        share = np.exp(y) / np.exp(y).sum()
        total = budget * np.exp(rng.normal(-0.5 * policy.total_sd**2, policy.total_sd))
        spend[t * period_days:(t + 1) * period_days] = (total * share).reshape(n_c, n_g)[None] / period_days

    # true media response, calibrated at the base split to each channel's ROAS
    roas = roas or {s.name: s.target_roas for s in specs}
    cell_daily = daily_budget * base  # [c, g]
    alpha = np.array([s.alpha for s in specs])
    lam = np.array([s.lam for s in specs])
    scale = cell_daily.mean(axis=1)
    sat0 = logistic_saturation(cell_daily / scale[:, None], lam[:, None])
    beta = np.array([roas[s.name] for s in specs])[:, None] * cell_daily / sat0
    gamma = np.array([[s.gamma_temp, s.gamma_precip] for s in specs])
    params = {"alpha": alpha, "lam": lam, "scale": scale, "beta": beta, "gamma": gamma}

    # baseline sized so paid media is about `media_share` of revenue
    doy = np.array([dd.timetuple().tm_yday for dd in dates], float)
    weekday = np.array([0.96, 0.97, 0.98, 1.0, 1.04, 1.06, 0.99])[[dd.weekday() for dd in dates]]
    shock = np.empty((days, n_g))
    prev = np.zeros(n_g)
    for i in range(days):
        prev = 0.9 * prev + rng.normal(0.0, demand_shock_sd, n_g)
        shock[i] = prev
    shape = ((np.exp(0.12 * np.arange(days) / 365.25) * (1 + 0.15 * np.cos(2 * np.pi * (doy - 330) / 365.25))
              * weekday)[:, None] * np.exp(0.04 * z[..., 0] - 0.05 * z[..., 1]) * np.exp(shock))
    history = LoggedHistory(tenant_id=tenant_id, start=start, geos=[g.geo_id for g in geos],
                            channels=[s.name for s in specs], spend=spend, kpi=np.zeros((days, n_g)),
                            baseline=np.zeros((days, n_g)), weather=weather, z=z, period_days=period_days,
                            params=params, policy=policy, log_density=log_density)
    media = history.media(spend).sum(axis=1)  # [day, geo]
    level = media.mean(axis=0) * (1 - media_share) / media_share / shape.mean(axis=0)
    history.baseline = shape * level[None, :]
    mu = history.baseline + media
    history.kpi = mu * (1 + rng.normal(0.0, noise_sd, mu.shape))
    return history
