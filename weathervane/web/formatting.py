"""Jinja filters: money, numbers, intervals and shares as the pages show them."""
from __future__ import annotations

import math
from datetime import date, datetime


def num(v, digits: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v != 0 and abs(v) < 10 ** -digits:
            return f"{v:.2g}"
        return f"{v:,.{digits}f}"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def money(v) -> str:
    return num(v, 0) if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) >= 100 else num(v, 2)


def interval(mean, lo, hi) -> str:
    if mean is None:
        return "—"
    if lo is None or hi is None:
        return money(mean)
    return f"{money(mean)} [{money(lo)}, {money(hi)}]"


def pct(v, signed: bool = False) -> str:
    if v is None:
        return "—"
    return f"{v:+.0%}" if signed else f"{v:.0%}"


def cell(v) -> str:
    """A value of a table shown as stored (three decimals for small numbers)."""
    if isinstance(v, float) and not (math.isnan(v) or math.isinf(v)) and abs(v) < 100:
        return num(v, 3)
    return money(v) if isinstance(v, float) else num(v)


def install(app) -> None:
    app.jinja_env.filters.update(num=num, money=money, pct=pct, cell=cell)
    app.jinja_env.globals.update(interval=interval)
