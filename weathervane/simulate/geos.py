"""The simulated markets: six US states with their platform identifiers and a credible climate each."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GeoSpec:
    geo_id: str
    name: str
    meta_region_name: str
    google_criterion_id: int
    latitude: float
    longitude: float
    timezone: str
    province_code: str
    zips: tuple[str, ...]
    size: float  # relative market size (orders, spend and media effect scale with it)
    # climate: daily mean temperature = temp_mean + temp_amplitude * cos(2 pi (doy - 200) / 365.25) + AR(1) anomaly
    temp_mean: float
    temp_amplitude: float
    anomaly_sd: float  # innovation sd of the AR(1) temperature anomaly, degC
    half_range: float  # (max - min) / 2, degC
    rain_prob: float  # mean probability of a wet day
    rain_prob_amplitude: float  # seasonal swing of that probability
    rain_peak_doy: int  # day of year when wet days are most likely
    rain_scale_mm: float  # gamma scale of wet-day precipitation


GEOS: tuple[GeoSpec, ...] = (
    GeoSpec("US-CA", "California", "California", 21137, 36.78, -119.42, "America/Los_Angeles", "CA",
            ("94110", "90012", "92101", "95814"), 1.4,
            16.5, 7.5, 1.6, 7.5, 0.14, 0.12, 15, 9.0),
    GeoSpec("US-TX", "Texas", "Texas", 21176, 31.97, -99.90, "America/Chicago", "TX",
            ("78701", "77002", "75201", "78205"), 1.2,
            20.0, 8.5, 2.4, 6.5, 0.22, 0.06, 140, 10.0),
    GeoSpec("US-NY", "New York", "New York", 21167, 42.17, -74.95, "America/New_York", "NY",
            ("10001", "11201", "14604", "12207"), 1.1,
            10.5, 11.5, 2.9, 5.0, 0.36, 0.04, 180, 6.5),
    GeoSpec("US-FL", "Florida", "Florida", 21142, 27.99, -81.76, "America/New_York", "FL",
            ("33101", "32801", "33602", "32301"), 1.0,
            23.0, 4.5, 1.3, 5.0, 0.32, 0.16, 205, 11.0),
    GeoSpec("US-IL", "Illinois", "Illinois", 21147, 40.00, -89.20, "America/Chicago", "IL",
            ("60601", "61602", "62701", "60505"), 0.8,
            11.5, 13.0, 3.3, 5.5, 0.31, 0.06, 150, 7.0),
    GeoSpec("US-WA", "Washington", "Washington", 21180, 47.40, -120.50, "America/Los_Angeles", "WA",
            ("98101", "99201", "98402", "98501"), 0.7,
            10.5, 8.0, 2.0, 6.0, 0.38, 0.22, 350, 5.0),
)

GEO_BY_ID = {g.geo_id: g for g in GEOS}


def first_geos(n_geos: int) -> tuple[GeoSpec, ...]:
    if not 1 <= n_geos <= len(GEOS):
        raise ValueError(f"n_geos must be between 1 and {len(GEOS)}, got {n_geos}")
    return GEOS[:n_geos]
