"""Live data with synthetic gaps: a copy of the tenant's landing folder with missing weather filled.

The sender's folder is never written: the copy is a tenant of its own (`<tenant>-filled`), and every filled day
comes from the geo's own climatology (same day of year in its observed history, else the same month, else the
mean of the other geos), in files named `synthetic-gapfill*.json` so anyone reading the landing zone sees them.
An existing `<tenant>-filled` folder is replaced only when a gap fill wrote it (it holds the marker file);
anything else by that name is a tenant's own data and is refused, as the synthetic twin refuses it.
"""
from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from weathervane.config import validate_tenant_id
from weathervane.landing.ingest import QUARANTINE_DIR
from weathervane.sniff.profile import Profile, table_exists

FILLED_SUFFIX = "-filled"
# Written into every copy; a hidden file, so ingest never reads it as a delivery.
MARKER = ".weathervane-gapfill.json"
VARIABLES = ("temperature_2m_mean", "temperature_2m_max", "temperature_2m_min", "precipitation_sum")
UNITS = {"time": "iso8601", "temperature_2m_mean": "°C", "temperature_2m_max": "°C", "temperature_2m_min": "°C",
         "precipitation_sum": "mm"}


def filled_tenant_id(tenant_id: str) -> str:
    return validate_tenant_id(validate_tenant_id(tenant_id)[: 63 - len(FILLED_SUFFIX)] + FILLED_SUFFIX)


def _climatology(obs: pd.DataFrame, geo: str, days: pd.DatetimeIndex) -> pd.DataFrame:
    own = obs[obs["geo_id"] == geo]
    pool = own if not own.empty else obs
    out = pd.DataFrame({"date": days})
    doy = days.day_of_year.values
    for var in VARIABLES:
        vals = np.full(len(days), np.nan)
        if var in pool and pool[var].notna().any():
            p = pool.dropna(subset=[var])
            pdoy = p["date"].dt.day_of_year.values
            pmonth = p["date"].dt.month.values
            for i, (d, m) in enumerate(zip(doy, days.month.values)):
                near = np.minimum(np.abs(pdoy - d), 366 - np.abs(pdoy - d)) <= 7
                sel = p[var].values[near] if near.any() else p[var].values[pmonth == m]
                vals[i] = float(np.mean(sel)) if len(sel) else float(p[var].mean())
        out[var] = np.round(vals, 2)
    return out


def _open_meteo(frame: pd.DataFrame, geo: str) -> dict:
    from weathervane.reference import geo_by_id

    ref = geo_by_id().get(geo)
    return {"latitude": ref.latitude if ref else 0.0, "longitude": ref.longitude if ref else 0.0,
            "timezone": ref.timezone if ref else "UTC", "daily_units": UNITS,
            "daily": {"time": [d.strftime("%Y-%m-%d") for d in frame["date"]],
                      **{v: [None if not np.isfinite(x) else float(x) for x in frame[v]] for v in VARIABLES}}}


def fill_gaps(con, landing_root: Path | str, profile: Profile, horizon_days: int = 28) -> tuple[str, list[str]]:
    """Copy the tenant to `<tenant>-filled` and add climatology weather for missing region-days and the forecast.

    Returns the filled tenant id and one line per file written."""
    landing_root = Path(landing_root)
    src = landing_root / validate_tenant_id(profile.tenant_id)
    target_id = filled_tenant_id(profile.tenant_id)
    dst = landing_root / target_id
    if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
        raise FileExistsError(f"{dst} exists and is not a folder written by the gap fill; not overwriting it")
    if dst.exists() and any(dst.iterdir()):
        # only a copy this function made (it carries the marker) is replaced: a real tenant may be named so
        if not (dst / MARKER).is_file() or (dst / MARKER).is_symlink():
            raise FileExistsError(f"{dst} exists and was not written by the gap fill; not overwriting it")
        shutil.rmtree(dst)
    elif dst.exists():
        dst.rmdir()  # empty
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(QUARANTINE_DIR, MARKER), symlinks=False)
    (dst / MARKER).write_text(json.dumps({"filled_from": profile.tenant_id}) + "\n", encoding="utf-8")
    obs = pd.DataFrame(columns=["geo_id", "date", *VARIABLES])
    if table_exists(con, "staging", "stg_weather__daily"):
        obs = con.execute(f"select geo_id, date, {', '.join(VARIABLES)} from staging.stg_weather__daily "
                          "where tenant_id = ?", [profile.tenant_id]).df()
    obs["date"] = pd.to_datetime(obs["date"])
    written = []
    if profile.sales_start is None:
        return target_id, written
    days = pd.date_range(profile.sales_start, profile.sales_end, freq="D")
    for geo in profile.region_geos:
        have = set(obs.loc[(obs["geo_id"] == geo) & obs["temperature_2m_mean"].notna(), "date"])
        missing = days[~days.isin(list(have))]
        if len(missing):
            clim = _climatology(obs, geo, missing)
            path = dst / "weather" / "daily" / geo / "synthetic-gapfill.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_open_meteo(clim, geo)) + "\n", encoding="utf-8")
            written.append(f"{path.relative_to(dst)}: {len(missing)} day(s) from climatology")
        if geo not in profile.forecast_geos:
            start: date = profile.sales_end + timedelta(days=1)
            horizon = pd.date_range(start, periods=horizon_days, freq="D")
            clim = _climatology(obs, geo, horizon)
            path = dst / "weather" / "forecast" / geo / "synthetic-gapfill-forecast.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_open_meteo(clim, geo)) + "\n", encoding="utf-8")
            written.append(f"{path.relative_to(dst)}: {horizon_days}-day forecast from climatology")
    return target_id, written
