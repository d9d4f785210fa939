"""Shared report pieces: money and units, plain-word numbers, figures with alt text, one page style.

Every report (model, plan, proof) renders through these so a marketer sees the same currency, the same interval
wording and the same labels everywhere. matplotlib is imported only by the functions that draw.
"""
from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "JPY": "¥", "NZD": "NZ$"}
KPI_NAMES = {"net_revenue": "net revenue"}
WEATHER_WORDS = {
    # variable: (noun for "1 sd ___ than usual", unit)
    "temperature_2m_mean": ("warmer", "°C"),
    "temperature_2m_max": ("hotter", "°C"),
    "precipitation_sum": ("wetter", "mm"),
}
CHANNEL_NAMES = {"meta": "Meta", "google_search": "Google Search", "google_shopping": "Google Shopping",
                 "google_performance_max": "Google Performance Max", "google_display": "Google Display",
                 "google_video": "Google Video (YouTube)"}
INTERVAL_WORDS = "90% interval"


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def is_number(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def currency_code(currency: str) -> str:
    """The upper-case three-letter code; anything else is refused, since it is printed into pages as it is."""
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise ValueError(f"not a currency code: {currency!r}")
    return currency.upper()


def currency_symbol(currency: str) -> str:
    return CURRENCY_SYMBOLS.get(currency_code(currency), "")


def money(x, currency: str = "USD", digits: int = 0) -> str:
    """12345.6 -> '$12,346' (or '12,346 SEK' for a currency without a symbol here); '—' for a missing value."""
    if not is_number(x):
        return "—"
    x = float(x)
    sym = currency_symbol(currency)
    sign = "-" if x < 0 else ""
    body = f"{abs(x):,.{digits}f}"
    return f"{sign}{sym}{body}" if sym else f"{sign}{body} {currency_code(currency)}"


def money_short(x, currency: str = "USD") -> str:
    """Axis-friendly money: $1.2M, $35k, $950."""
    if not is_number(x):
        return "—"
    x = float(x)
    a = abs(x)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            v = x / div
            s = f"{v:,.2f}".rstrip("0").rstrip(".") + suffix
            break
    else:
        s = f"{x:,.0f}"
    sym = currency_symbol(currency)
    if s.startswith("-"):
        return f"-{sym}{s[1:]}" if sym else f"{s} {currency_code(currency)}"
    return f"{sym}{s}" if sym else f"{s} {currency_code(currency)}"


def pct(x, digits: int = 0, signed: bool = False) -> str:
    if not is_number(x):
        return "—"
    return f"{float(x) * 100:+.{digits}f}%" if signed else f"{float(x) * 100:.{digits}f}%"


def probability(p) -> str:
    """A posterior probability in words that never read as certainty: 'more than 99%', 'less than 1%'."""
    if not is_number(p):
        return "—"
    p = float(p)
    if p >= 0.995:
        return "more than 99%"
    if p <= 0.005:
        return "less than 1%"
    return f"{p * 100:.0f}%"


def ratio(x, digits: int = 2) -> str:
    return "—" if not is_number(x) else f"{float(x):.{digits}f}"


def interval(lo, hi, fmt=ratio) -> str:
    """'90% interval 1.80–2.40'."""
    return f"{INTERVAL_WORDS} {fmt(lo)}–{fmt(hi)}"


def with_interval(mean, lo, hi, fmt=ratio) -> str:
    """'2.10 (90% interval 1.80–2.40)'."""
    return f"{fmt(mean)} ({interval(lo, hi, fmt)})"


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel.replace("_", " ").title())


def kpi_name(kpi: str) -> str:
    return KPI_NAMES.get(kpi, kpi.replace("_", " "))


# variable: (unit, word above usual, word below usual)
WEATHER_PHRASES = {
    "temperature_2m_mean": ("°C", "warmer", "colder"),
    "temperature_2m_max": ("°C", "hotter", "cooler"),
    "precipitation_sum": ("mm", "wetter", "drier"),
}


def weather_in_words(variable: str, z, sd=None) -> str:
    """A weather anomaly as people say it: '4 °C colder than usual', '3 mm wetter than usual'; in standard
    deviations only when the variable's spread in its unit is unknown; 'usual' when it rounds to nothing."""
    if not is_number(z):
        return "—"
    unit, up, down = WEATHER_PHRASES.get(variable, ("", f"higher {variable.replace('_', ' ')}",
                                                    f"lower {variable.replace('_', ' ')}"))
    word = up if float(z) > 0 else down
    if is_number(sd) and unit:
        size = abs(float(z) * float(sd))
        shown = f"{size:.0f}" if size >= 1.5 else f"{size:.1f}"
        return "usual weather" if shown in ("0", "0.0") else f"{shown} {unit} {word} than usual"
    size = abs(float(z))
    return "usual weather" if size < 0.05 else f"{size:.1f} sd {word} than usual"


def weather_spread(con, tenant_id: str) -> dict[str, float]:
    """Each weather variable's typical day-to-day spread in its own unit: the median over geos of the sample sd of
    the geo's daily history (the spread the model's z is measured in). Empty when the warehouse has no weather."""
    from weathervane.warehouse import table_exists

    if not table_exists(con, "marts", "fct_weather_daily"):
        return {}
    cols = {r[0] for r in con.execute("describe marts.fct_weather_daily").fetchall()}
    out = {}
    for var in WEATHER_PHRASES:
        if var not in cols:
            continue
        row = con.execute(f'select median(sd) from (select stddev_samp("{var}") as sd from marts.fct_weather_daily '
                          "where tenant_id = ? group by geo_id)", [tenant_id]).fetchone()
        if row and is_number(row[0]) and float(row[0]) > 0:
            out[var] = float(row[0])
    return out


def weather_sentence(channel: str, variable: str, mean, lo, hi, sd=None) -> str:
    """'A day 1 sd warmer than usual makes Meta about 28% more effective (90% interval 21% to 35%).'; with `sd`
    (the variable's typical spread in its unit) the day is described in that unit: 'A day 4 °C warmer ...'."""
    word, _ = WEATHER_WORDS.get(variable, (f"higher in {variable.replace('_', ' ')}", ""))
    if is_number(sd) and variable in WEATHER_PHRASES:
        word = weather_in_words(variable, 1.0, sd).removesuffix(" than usual")
    else:
        word = f"1 sd {word}"
    name = channel_name(channel)
    if not all(is_number(v) for v in (mean, lo, hi)):
        return f"The effect of {variable.replace('_', ' ')} on {name} was not estimated."
    m, a, b = (float(v) - 1 for v in (mean, lo, hi))
    span = f"{INTERVAL_WORDS} {a * 100:+.0f}% to {b * 100:+.0f}%"
    if a <= 0 <= b:
        return (f"A day {word} than usual changes {name}'s effect by about {m * 100:+.0f}%, but the "
                f"{span} includes no change: the data cannot tell.")
    direction = "more" if m > 0 else "less"
    return f"A day {word} than usual makes {name} about {abs(m) * 100:.0f}% {direction} effective ({span})."


def tenant_currency(tenant_id: str, landing_root, default: str = "USD") -> str:
    """The tenant's currency from tenant.yaml under `landing_root`; a page is never refused over it (the default
    stands)."""
    from weathervane import config

    try:
        return config.load_tenant_config(landing_root, tenant_id).currency
    except (OSError, ValueError):
        return default


def truth_file(tenant_id: str, landing_root):
    """The ground-truth file the simulator writes beside a simulated tenant's folder, or None for real data."""
    from pathlib import Path

    from weathervane import config

    path = Path(landing_root) / f"{config.validate_tenant_id(tenant_id)}.truth.json"
    return path if path.is_file() else None


def simulated_banner(tenant_id: str, landing_root) -> str | None:
    """The label every page about a simulated tenant carries."""
    if truth_file(tenant_id, landing_root) is None:
        return None
    return (f"SIMULATED DATA — {tenant_id} is a simulated tenant with known truth, not a real brand's results.")


@dataclass(frozen=True)
class Audience:
    """What every page about one tenant shows the same way: its currency and, for a simulated tenant, the banner.
    Resolved once by the caller that knows the landing folder (`audience`), then handed to the report writers."""
    currency: str = "USD"
    banner: str | None = None


def audience(tenant_id: str, landing_root) -> Audience:
    return Audience(tenant_currency(tenant_id, landing_root), simulated_banner(tenant_id, landing_root))


def figure(fig, alt: str, caption: str | None = None, dpi: int = 90) -> str:
    """A matplotlib figure as an embedded PNG with alt text and an optional caption; closes the figure."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return (f'<figure class="plot"><img src="data:image/png;base64,{data}" alt="{esc(alt)}" role="img">'
            f"{cap}</figure>")


def new_figure(width: float = 9.0, height: float = 3.6, ncols: int = 1, **kwargs):
    """A figure drawn off-screen, laid out so titles and labels never overlap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width, height), layout="constrained", **kwargs)


def money_axis(ax, currency: str, axis: str = "y") -> None:
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _pos: money_short(v, currency))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def table(headers: Sequence[str], rows: Iterable[Sequence], numeric_from: int = 1, cls: str = "") -> str:
    """An HTML table; cells are escaped text, columns from `numeric_from` on are right-aligned."""
    head = "".join(f'<th scope="col"{" class=num" if i >= numeric_from else ""}>{esc(h)}</th>'
                   for i, h in enumerate(headers))
    def cls(i, c):
        # short cells (ids, money, dates) never break inside; long text wraps
        names = (["num"] if i >= numeric_from else []) + (["nw"] if len(str(c)) <= 24 else [])
        return f' class="{" ".join(names)}"' if names else ""

    body = "".join("<tr>" + "".join(f"<td{cls(i, c)}>{esc(c)}</td>" for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;max-width:1100px;margin:2em auto;
padding:0 1em;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #d9e2ec;padding-bottom:.2em}
h3{margin-bottom:.3em}
table{border-collapse:collapse;font-size:14px;margin:.6em 0}th,td{padding:4px 10px;border-bottom:1px solid #e4e7eb;
text-align:left;vertical-align:top}th.num,td.num{text-align:right;font-variant-numeric:tabular-nums}
thead th{background:#f5f7fa}td.nw{white-space:nowrap}
figure.plot{margin:1em 0}figure.plot img{max-width:100%;height:auto}figcaption{color:#52606d;font-size:13px}
.banner{background:#fff3c4;border:1px solid #f0b429;padding:.5em 1em;margin:1em 0;font-weight:600}
.note{color:#52606d;font-size:14px}.warn{color:#8d2b0b}.ok{color:#0e7c3a}
.kpi{display:inline-block;margin:.3em 1.5em .3em 0}.kpi b{display:block;font-size:1.4em}
ul.plain li{margin:.25em 0}
"""


def page(title: str, body: str, banner: str | None = None, subtitle: str | None = None) -> str:
    """A self-contained HTML page; `banner` (e.g. the synthetic-data label) is shown at the top and bottom."""
    top = f'<div class="banner" role="note">{esc(banner)}</div>' if banner else ""
    sub = f'<p class="note">{esc(subtitle)}</p>' if subtitle else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body>{top}<h1>{esc(title)}</h1>{sub}{body}{top}</body></html>")
