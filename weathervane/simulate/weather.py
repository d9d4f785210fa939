"""Daily weather per geo: seasonal climate + AR(1) temperature anomaly, zero-inflated gamma precipitation."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from weathervane.simulate.geos import GeoSpec

AR_PHI = 0.75  # day-to-day persistence of temperature anomalies


@dataclass
class GeoWeather:
    """Values exactly as written to the files (rounded to 0.1), over the observed days then the forecast days."""
    temperature_2m_mean: np.ndarray
    temperature_2m_max: np.ndarray
    temperature_2m_min: np.ndarray
    precipitation_sum: np.ndarray
    snowfall_sum: np.ndarray
    wind_speed_10m_max: np.ndarray  # nan = missing (written as null)


def day_of_year(dates: list[date]) -> np.ndarray:
    return np.array([d.timetuple().tm_yday for d in dates], dtype=float)


def simulate_weather(geo: GeoSpec, dates: list[date], rng: np.random.Generator) -> GeoWeather:
    n = len(dates)
    doy = day_of_year(dates)
    seasonal = geo.temp_mean + geo.temp_amplitude * np.cos(2 * np.pi * (doy - 200) / 365.25)
    eps = rng.normal(0.0, geo.anomaly_sd, n)
    anomaly = np.empty(n)
    prev = rng.normal(0.0, geo.anomaly_sd / np.sqrt(1 - AR_PHI**2))
    for t in range(n):
        prev = AR_PHI * prev + eps[t]
        anomaly[t] = prev
    t_mean = np.round(seasonal + anomaly, 1)
    t_max = np.round(t_mean + geo.half_range + rng.normal(0, 1.2, n), 1)
    t_min = np.round(t_mean - geo.half_range + rng.normal(0, 1.2, n), 1)
    t_max = np.maximum(t_max, t_mean + 0.5)
    t_min = np.minimum(t_min, t_mean - 0.5)

    p_wet = np.clip(geo.rain_prob + geo.rain_prob_amplitude * np.cos(2 * np.pi * (doy - geo.rain_peak_doy) / 365.25),
                    0.02, 0.9)
    wet = rng.random(n) < p_wet
    amount = rng.gamma(0.75, geo.rain_scale_mm, n)
    precip = np.where(wet, np.maximum(np.round(amount, 1), 0.1), 0.0)
    snow = np.where(t_mean < 0.5, np.round(precip * 0.7, 1), 0.0)
    wind = np.round(rng.gamma(6.0, 3.0, n), 1)
    wind[rng.random(n) < 0.01] = np.nan  # stations do drop out now and then
    return GeoWeather(t_mean, np.round(t_max, 1), np.round(t_min, 1), precip, snow, wind)


def _list(a: np.ndarray) -> list:
    return [None if np.isnan(v) else float(v) for v in a]


def open_meteo_response(geo: GeoSpec, dates: list[date], w: GeoWeather, idx: slice) -> dict:
    """One Open-Meteo archive/forecast response for the days in `idx`."""
    return {
        "latitude": geo.latitude,
        "longitude": geo.longitude,
        "timezone": geo.timezone,
        "elevation": 120.0,
        "daily_units": {
            "time": "iso8601",
            "temperature_2m_max": "°C",
            "temperature_2m_min": "°C",
            "temperature_2m_mean": "°C",
            "precipitation_sum": "mm",
            "snowfall_sum": "cm",
            "wind_speed_10m_max": "km/h",
        },
        "daily": {
            "time": [d.isoformat() for d in dates[idx]],
            "temperature_2m_max": _list(w.temperature_2m_max[idx]),
            "temperature_2m_min": _list(w.temperature_2m_min[idx]),
            "temperature_2m_mean": _list(w.temperature_2m_mean[idx]),
            "precipitation_sum": _list(w.precipitation_sum[idx]),
            "snowfall_sum": _list(w.snowfall_sum[idx]),
            "wind_speed_10m_max": _list(w.wind_speed_10m_max[idx]),
        },
    }


def month_slices(dates: list[date]) -> list[tuple[str, slice]]:
    """Consecutive runs of days in the same calendar month: ("YYYY-MM", slice)."""
    out: list[tuple[str, slice]] = []
    begin = 0
    for i in range(1, len(dates) + 1):
        if i == len(dates) or (dates[i].year, dates[i].month) != (dates[begin].year, dates[begin].month):
            out.append((dates[begin].strftime("%Y-%m"), slice(begin, i)))
            begin = i
    return out


def date_range(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]
