"""Lift tests from raw.experiments__lift_tests, as PyMC-Marketing lift-test measurements."""
from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd

from weathervane.mmm.data import ModelData

RAW_TABLE = "raw.experiments__lift_tests"
FIELDS = ("channel", "geo_id", "start_date", "end_date", "spend_delta", "kpi_delta", "kpi_delta_sd")


class LiftTestError(ValueError):
    """A lift-test row cannot be used; the message names file, line and field."""


def read_lift_tests(con, tenant_id: str) -> pd.DataFrame:
    """Raw lift-test records of the tenant (file_path, source_line, record as a dict); empty when none loaded.

    A corrected file for the same channel, geo and window supersedes the older one."""
    from weathervane.landing.ingest import current_records

    rows = current_records(con, tenant_id, "experiments", "lift_tests")
    return pd.DataFrame(
        [(f, int(line), rec if isinstance(rec, dict) else json.loads(rec)) for f, line, rec in rows],
        columns=["file_path", "source_line", "record"],
    )


def _field(row, name: str, kind):
    raw = row.record.get(name)
    where = f"{row.file_path} line {row.source_line}, field {name}"
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        if name == "geo_id":
            return None
        raise LiftTestError(f"{where}: missing value")
    try:
        if kind is float:
            value = float(raw)
            if not np.isfinite(value):
                raise ValueError
            return value
        if kind is date:
            return date.fromisoformat(str(raw).strip())
        return str(raw).strip()
    except ValueError:
        raise LiftTestError(f"{where}: cannot read {raw!r} as {kind.__name__}") from None


def lift_measurements(raw: pd.DataFrame, data: ModelData, *, per_period: bool = False) -> pd.DataFrame:
    """Lift measurements: columns geo, channel, x, delta_x, delta_y, sigma (+ date, test with `per_period`).

    A test over a window of n periods that added `spend_delta` and measured `kpi_delta` (sd `kpi_delta_sd`).
    Default, one row per test and cell for PyMC-Marketing's likelihood: x = the spend per period before the
    test (window spend less the added spend), delta_x = spend_delta / n, delta_y = kpi_delta / n, sigma =
    kpi_delta_sd / n. With `per_period`, one row per period of the window, grouped by `test`: x and delta_x
    are that period's spend before the test and its added share (in proportion to its spend), delta_y =
    kpi_delta / n, and sigma is the sd of the test's total (the model observes the sum over the window). A
    national test (empty geo_id) is split over the model's cells by their share of the channel's spend."""
    out = []
    for row in raw.itertuples(index=False):
        channel = _field(row, "channel", str)
        geo = _field(row, "geo_id", str)
        start, end = _field(row, "start_date", date), _field(row, "end_date", date)
        values = {k: _field(row, k, float) for k in ("spend_delta", "kpi_delta", "kpi_delta_sd")}
        where = f"{row.file_path} line {row.source_line}"
        if end < start:
            raise LiftTestError(f"{where}, field end_date: {end} is before start_date {start}")
        if values["kpi_delta_sd"] <= 0:
            raise LiftTestError(f"{where}, field kpi_delta_sd: must be positive")
        if channel not in data.channels:
            continue  # a channel the model does not have (no spend in this grain): nothing to calibrate
        in_window = (data.dates >= pd.Timestamp(start) - pd.Timedelta(days=6 if data.period == "week" else 0)) & (
            data.dates <= pd.Timestamp(end))
        n = int(in_window.sum())
        if n == 0:
            continue  # outside the training window
        ci = data.channels.index(channel)
        cells = [c for c in data.cells if geo is None or data.cell_geo[c] == geo]
        if not cells:
            continue
        spend = {c: float(data.spend[in_window, data.cells.index(c), ci].sum()) for c in cells}
        total = sum(spend.values())
        for c in cells:
            share = spend[c] / total if total > 0 else 1.0 / len(cells)
            if share <= 0:
                continue
            added = values["spend_delta"] * share
            if per_period:
                # the added spend in proportion to each period's spend; the measured total belongs to the test
                days = data.spend[in_window, data.cells.index(c), ci]
                frac = added / spend[c] if spend[c] > 0 else 0.0
                test = f"{row.file_path}:{row.source_line}:{c}"
                out.extend(dict(geo=c, channel=channel, x=float(v) * (1 - frac), delta_x=float(v) * frac,
                                delta_y=values["kpi_delta"] * share / n,
                                sigma=values["kpi_delta_sd"] * np.sqrt(share), date=d, test=test)
                           for v, d in zip(days, data.dates[in_window]))
            else:
                out.append(dict(geo=c, channel=channel, x=max(spend[c] - added, 0.0) / n, delta_x=added / n,
                                delta_y=values["kpi_delta"] * share / n,
                                sigma=values["kpi_delta_sd"] * np.sqrt(share) / n))
    columns = ["geo", "channel", "x", "delta_x", "delta_y", "sigma"] + (["date", "test"] if per_period else [])
    return pd.DataFrame(out, columns=columns)
