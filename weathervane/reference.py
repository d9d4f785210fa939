"""Reference data shipped in assets/reference: geo ids with their Meta and Google names.

Read once per process (cached); the files are static assets versioned with the code.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from weathervane.config import assets_dir


@dataclass(frozen=True)
class GeoRegion:
    geo_id: str  # ISO 3166-2 (US-CA) or ISO 3166-1 alpha-2 (US) for the country row
    country_code: str
    region_code: str | None
    name: str
    latitude: float
    longitude: float
    timezone: str
    meta_region_name: str | None
    google_criterion_id: int | None

    @property
    def is_country(self) -> bool:
        return self.region_code is None


def geo_regions_path() -> Path:
    return assets_dir() / "reference" / "geo_regions.csv"


@lru_cache(maxsize=1)
def geo_regions() -> tuple[GeoRegion, ...]:
    """All rows of geo_regions.csv, country row included."""
    rows = []
    with geo_regions_path().open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows.append(
                GeoRegion(
                    geo_id=row["geo_id"],
                    country_code=row["country_code"],
                    region_code=row["region_code"] or None,
                    name=row["name"],
                    latitude=float(row["latitude"]),
                    longitude=float(row["longitude"]),
                    timezone=row["timezone"],
                    meta_region_name=row["meta_region_name"] or None,
                    google_criterion_id=int(row["google_criterion_id"])
                    if row["google_criterion_id"]
                    else None,
                )
            )
    return tuple(rows)


@lru_cache(maxsize=1)
def geo_by_id() -> dict[str, GeoRegion]:
    return {g.geo_id: g for g in geo_regions()}


@lru_cache(maxsize=1)
def known_geo_ids() -> frozenset[str]:
    return frozenset(geo_by_id())


@lru_cache(maxsize=1)
def meta_region_to_geo() -> dict[str, str]:
    """Meta insights `region` value -> geo_id."""
    return {g.meta_region_name: g.geo_id for g in geo_regions() if g.meta_region_name}


@lru_cache(maxsize=1)
def google_criterion_to_geo() -> dict[int, str]:
    """Google Ads geo target criterion id -> geo_id (the country row maps 2840 -> US)."""
    return {g.google_criterion_id: g.geo_id for g in geo_regions() if g.google_criterion_id}
