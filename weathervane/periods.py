"""The model's periods, in one place: a day, or a week of seven consecutive days.

History is cut into Monday-to-Sunday weeks: the dbt marts use DuckDB's `date_trunc('week', date)` (ISO weeks)
and every Python reader that turns observed days into the model's periods (the panel's weather, the posterior's
weather, simulated weekly panels) uses `period_start`. A plan's horizon is cut by `period_sums` into seven-day
blocks from its first day, which need not be a Monday: a weekly model has no day-of-week term, so any seven
consecutive days are one of its periods. tests/test_dbt_marts.py checks that the two rules give the same weeks.
"""
from __future__ import annotations

from datetime import timedelta

import pandas as pd

PERIOD_DAYS = {"day": 1, "week": 7}


def period_length(period: str) -> int:
    """Days in one period of `period` ("day" or "week")."""
    try:
        return PERIOD_DAYS[period]
    except KeyError:
        raise ValueError(f"period must be one of {', '.join(PERIOD_DAYS)}, not {period!r}") from None


def period_start(days, period: str):
    """The first day of the period holding each of `days` (a date, a Timestamp, a DatetimeIndex or a datetime
    Series): the Monday on or before it for weeks, the day itself for days."""
    if period_length(period) == 1:
        return days
    if isinstance(days, pd.Series):
        return days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    if isinstance(days, pd.DatetimeIndex):
        return days - pd.to_timedelta(days.day_of_week, unit="D")
    return days - timedelta(days=days.weekday())


def period_sums(daily, days: int):
    """Sum consecutive blocks of `days` days along the first axis, from its first day; a shorter tail is
    dropped."""
    if days == 1:
        return daily
    n = daily.shape[0] // days
    return daily[: n * days].reshape(n, days, *daily.shape[1:]).sum(axis=1)
