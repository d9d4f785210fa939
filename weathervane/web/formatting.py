"""Jinja filters: money, numbers, intervals and shares as the pages show them.

Money goes through the report kit (weathervane.reports) in the tenant's currency, which the view sets on `g`
(`g.currency`) once it knows the tenant; channel ids show as their display names, weather multipliers as changes."""
from __future__ import annotations

import math
import re
from datetime import date, datetime

from weathervane import reports as rp

# table columns that hold money (decisions and model tables shown as stored); shares and ratios never do
MONEY_COLUMN = re.compile(r"(spend|contribution|kpi|revenue|budget|^value|^lift|^effect)(_mean|_p05|_p95)?$")


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


def _currency() -> str:
    try:
        from flask import g

        return g.get("currency") or "USD"
    except RuntimeError:  # outside a request
        return "USD"


def money(v) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return num(v)
    return rp.money(v, _currency(), 0 if abs(v) >= 100 else 2)


def multiplier(v) -> str:
    """A weather multiplier as the change it makes: 1.063 -> '+6%'; 1.0 -> 'no change'."""
    if not rp.is_number(v):
        return "—"
    return "no change" if abs(float(v) - 1) < 0.005 else rp.pct(float(v) - 1, signed=True)


def channel(v) -> str:
    return rp.channel_name(v) if isinstance(v, str) else num(v)


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


def cell(v, column: str | None = None) -> str:
    """A value of a table shown as stored (three decimals for small numbers); by its column's name: money in the
    tenant's currency, a channel's display name, a weather multiplier as a change."""
    name = (column or "").lower()
    if name == "channel":
        return channel(v)
    if "multiplier" in name:
        return multiplier(v)
    if MONEY_COLUMN.search(name) and "share" not in name and "relative" not in name and isinstance(v, (int, float)) \
            and not isinstance(v, bool):
        return money(v)
    if isinstance(v, float) and not (math.isnan(v) or math.isinf(v)) and abs(v) < 100:
        return num(v, 3)
    return money(v) if isinstance(v, float) else num(v)


def install(app) -> None:
    app.jinja_env.filters.update(num=num, money=money, pct=pct, cell=cell, channel=channel, multiplier=multiplier)
    app.jinja_env.globals.update(interval=interval)
