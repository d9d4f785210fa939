"""A small `fct_model_input`-shaped panel with known truth, for previews, benchmarks and tests.

It follows the simulator's data-generating process in miniature: per geo and day, geometric adstock, logistic
saturation of adstocked spend / scale, times beta, times exp(sum_w gamma[c, w] * z_w) with z standardised within
the geo over its daily history. Heat helps meta, rain hurts google_shopping, google_search ignores weather.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from weathervane.periods import period_start
from weathervane.transforms import geometric_adstock, logistic_saturation, weather_moments

WEATHER_VARS = ("temperature_2m_mean", "precipitation_sum")
CHANNELS = ("meta", "google_search", "google_shopping")
TRUE_GAMMA = {
    "meta": {"temperature_2m_mean": 0.25, "precipitation_sum": 0.0},
    "google_search": {"temperature_2m_mean": 0.0, "precipitation_sum": 0.0},
    "google_shopping": {"temperature_2m_mean": 0.0, "precipitation_sum": -0.2},
}
GEOS = ("US-CA", "US-TX", "US-NY", "US-FL", "US-IL", "US-WA", "US-GA", "US-OH")


@dataclass
class SyntheticPanel:
    model_input: pd.DataFrame  # fct_model_input rows
    weather_daily: pd.DataFrame  # fct_weather_daily rows (tenant_id, date, geo_id, weather columns)
    roas: dict[str, float]
    gamma: dict[str, dict[str, float]] = field(default_factory=lambda: TRUE_GAMMA)

    def multiplier_per_sd(self) -> dict[str, dict[str, float]]:
        return {c: {w: float(np.exp(g)) for w, g in ws.items()} for c, ws in self.gamma.items()}


def synthetic_panel(
    tenant_id: str = "synth",
    *,
    days: int = 728,
    n_geos: int = 6,
    period: str = "week",
    promo_confounded: bool = False,
    seed: int = 0,
) -> SyntheticPanel:
    """Build the panel; `period` "week" sums daily rows into Monday-start weeks."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-02")  # a Monday
    dates = pd.date_range(start, periods=days, freq="D")
    t = np.arange(days)
    doy = dates.dayofyear.to_numpy()
    geos = GEOS[:n_geos]
    alpha = {"meta": 0.5, "google_search": 0.2, "google_shopping": 0.35}
    lam = {"meta": 2.0, "google_search": 1.5, "google_shopping": 1.8}
    base_spend = {"meta": 400.0, "google_search": 300.0, "google_shopping": 250.0}
    roi_beta = {"meta": 1.6, "google_search": 2.2, "google_shopping": 1.2}  # contribution per unit spend at mean

    rows, weather_rows = [], []
    contrib_tot = {c: 0.0 for c in CHANNELS}
    spend_tot = {c: 0.0 for c in CHANNELS}
    for gi, geo in enumerate(geos):
        size = 0.6 + 0.8 * rng.random()
        season = np.sin(2 * np.pi * (doy - 110) / 365.25)
        noise = np.zeros(days)
        for i in range(1, days):
            noise[i] = 0.7 * noise[i - 1] + rng.normal(0, 2.5)
        temp = 12 + 4 * gi - 2 + 10 * season + noise
        rain = np.where(rng.random(days) < 0.3 + 0.1 * np.cos(2 * np.pi * doy / 365.25), rng.gamma(1.2, 5, days), 0.0)
        weather = {"temperature_2m_mean": temp, "precipitation_sum": rain}
        z = {w: (v - weather_moments(v)[0]) / weather_moments(v)[1] for w, v in weather.items()}

        promo = np.zeros(days)
        for s in rng.choice(days - 10, size=8, replace=False):
            promo[s : s + 7] = 1.0
        if promo_confounded:
            # Promotions run in warm spells: a model without promo control would credit heat to meta.
            promo = np.maximum(promo, (z["temperature_2m_mean"] > 1.2).astype(float))
        depth = promo * 20.0
        sends = rng.poisson(2000 * size, days) * (rng.random(days) < 0.25)

        spend, contrib = {}, {}
        for ci, c in enumerate(CHANNELS):
            level = base_spend[c] * size * (1 + 0.3 * np.sin(2 * np.pi * t / 180 + ci) + 0.15 * promo)
            s = level * rng.lognormal(0, 0.35, days)
            s[rng.random(days) < 0.03] = 0.0
            ad = geometric_adstock(s, alpha[c], 8)
            scale = base_spend[c] * size
            sat = logistic_saturation(ad / scale, lam[c])
            beta = roi_beta[c] * scale / logistic_saturation(1.0, lam[c])
            mult = np.exp(sum(TRUE_GAMMA[c][w] * z[w] for w in WEATHER_VARS))
            spend[c], contrib[c] = s, beta * sat * mult
            contrib_tot[c] += contrib[c].sum()
            spend_tot[c] += s.sum()

        weekday = np.array([1.0, 0.95, 0.95, 1.0, 1.1, 1.2, 1.15])[dates.day_of_week]
        baseline = size * (
            3000 * (1 + 0.15 * t / days) * (1 + 0.12 * season) * weekday
            + 150 * z["temperature_2m_mean"] - 120 * z["precipitation_sum"]
            + 900 * promo + 0.15 * sends / size
        )
        kpi = baseline + sum(contrib.values()) + rng.normal(0, 150 * size, days)
        frame = pd.DataFrame(
            {
                "tenant_id": tenant_id, "grain_product": "all", "grain_geo": "region", "period": "day",
                "product_key": "all", "geo_id": geo, "date": dates.date, "kpi": kpi,
                **{f"spend_{c}": spend[c] for c in CHANNELS},
                "promo_active": promo, "promo_depth_pct": depth, "realized_discount_rate": depth / 100 * 0.8,
                "lifecycle_sends": sends.astype(float),
                "temperature_2m_mean": temp, "temperature_2m_max": temp + 5, "precipitation_sum": rain,
                "temperature_anomaly": noise, "precipitation_anomaly": rain - rain.mean(),
                "is_holiday": np.isin(dates.strftime("%m-%d"), ["01-01", "07-04", "12-25", "11-28"]).astype(int),
                "day_of_week": dates.day_of_week + 1, "spend_allocated_share": 0.0,
            }
        )
        rows.append(frame)
        weather_rows.append(
            pd.DataFrame({"tenant_id": tenant_id, "date": dates.date, "geo_id": geo,
                          "temperature_2m_mean": temp, "temperature_2m_max": temp + 5, "precipitation_sum": rain})
        )
    daily = pd.concat(rows, ignore_index=True)
    model_input = daily if period == "day" else _to_weeks(daily)
    return SyntheticPanel(
        model_input=model_input,
        weather_daily=pd.concat(weather_rows, ignore_index=True),
        roas={c: contrib_tot[c] / spend_tot[c] for c in CHANNELS},
    )


def _to_weeks(daily: pd.DataFrame) -> pd.DataFrame:
    d = daily.copy()
    d["date"] = pd.to_datetime(d["date"])
    d["week"] = period_start(d["date"], "week")
    keys = ["tenant_id", "grain_product", "grain_geo", "product_key", "geo_id", "week"]
    sums = [c for c in d.columns if c.startswith("spend_") and c != "spend_allocated_share"]
    agg = {c: "sum" for c in ["kpi", *sums, "lifecycle_sends", "precipitation_sum"]}
    agg |= {c: "mean" for c in ["promo_active", "promo_depth_pct", "realized_discount_rate", "temperature_2m_mean",
                                "temperature_2m_max", "temperature_anomaly", "precipitation_anomaly",
                                "spend_allocated_share"]}
    agg["is_holiday"] = "max"
    w = d.groupby(keys, as_index=False).agg(agg).rename(columns={"week": "date"})
    w["period"] = "week"
    w["day_of_week"] = 1
    w["date"] = w["date"].dt.date
    return w
