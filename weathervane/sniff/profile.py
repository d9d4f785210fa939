"""What a tenant's data holds, measured from the warehouse after ingestion and staging.

The staging and intermediate layers are grain-independent (orders at order-line level, spend at campaign × geo ×
day), so the sniff can judge every grain before one is chosen. Every read checks that its table exists: a tenant
may lack any stream.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from weathervane.config import validate_tenant_id
from weathervane.warehouse import table_exists

WEATHER_VARIABLES = ("temperature_2m_mean", "precipitation_sum")


def column_exists(con, schema: str, table: str, column: str) -> bool:
    return bool(con.execute(
        "select count(*) from information_schema.columns where table_schema = ? and table_name = ? "
        "and column_name = ?", [schema, table, column]).fetchone()[0])


@dataclass
class ChannelProfile:
    channel: str
    platform: str
    spend: float
    first: date | None
    last: date | None
    weeks_with_spend: int
    weeks_paused: int  # weeks inside the channel's span with (almost) no spend: flights and pauses
    weekly_cv: float  # coefficient of variation of national weekly spend
    geo_share_cv: float  # how differently geos' spend moves: cv over geos of their share of the channel
    geos: int
    regional_share: float  # share of spend reported for a region rather than nationally
    lift_tests: int = 0


@dataclass
class Profile:
    tenant_id: str
    currency: str
    timezone: str
    streams: dict[str, int] = field(default_factory=dict)  # source/stream -> records loaded
    quarantined: list[dict] = field(default_factory=list)
    # sales (valid orders)
    sales_start: date | None = None
    sales_end: date | None = None
    sales_days: int = 0
    orders: int = 0
    net_revenue: float = 0.0
    geo_orders: dict[str, int] = field(default_factory=dict)  # region geo_id -> orders (national: 'US')
    category_orders: dict[str, int] = field(default_factory=dict)
    median_orders_per_geo_day: float = 0.0
    median_orders_per_category_geo_week: float = 0.0
    missing_sales_days: int = 0  # days without any order inside the sales span
    # spend
    channels: dict[str, ChannelProfile] = field(default_factory=dict)
    spend_total: float = 0.0
    spend_start: date | None = None
    spend_end: date | None = None
    # promotions and sends
    promotions: dict[str, int] = field(default_factory=dict)  # source -> count
    lifecycle_sends: int = 0
    # weather
    weather_geos: list[str] = field(default_factory=list)
    weather_coverage: float = 0.0  # share of sales geo-days (region geos) with a temperature reading
    forecast_geos: list[str] = field(default_factory=list)
    forecast_days: int = 0
    temperature_anomaly_sd: float | None = None  # median over geos of the within-geo sd of temperature
    # experiments and automation
    lift_tests: int = 0
    lift_test_channels: dict[str, int] = field(default_factory=dict)
    deployments: int = 0
    # a pre-aggregated MMM table instead of connectors
    aggregated_rows: int = 0
    aggregated_start: date | None = None
    aggregated_end: date | None = None
    aggregated_period: str | None = None
    aggregated_channels: list[str] = field(default_factory=list)
    aggregated_geos: list[str] = field(default_factory=list)
    aggregated_controls: list[str] = field(default_factory=list)  # delivered columns other than spend and revenue

    @property
    def span_days(self) -> int:
        starts = [d for d in (self.sales_start, self.aggregated_start) if d]
        ends = [d for d in (self.sales_end, self.aggregated_end) if d]
        if not starts:
            return 0
        return (max(ends) - min(starts)).days + 1

    @property
    def region_geos(self) -> list[str]:
        return sorted(g for g in self.geo_orders if "-" in g)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)


def _df(con, sql: str, params: list) -> pd.DataFrame:
    return con.execute(sql, params).df()


def measure(con, tenant_id: str, currency: str = "USD", timezone: str = "UTC") -> Profile:
    """Read what the tenant has loaded: streams, sales, spend, promotions, weather, lift tests, deployments."""
    t = validate_tenant_id(tenant_id)
    p = Profile(tenant_id=t, currency=currency, timezone=timezone)
    if table_exists(con, "ops", "loaded_files"):
        for source, stream, records in con.execute(
                "select source, stream, sum(records) from ops.loaded_files where tenant_id = ? group by all "
                "order by 1, 2", [t]).fetchall():
            p.streams[f"{source}/{stream}"] = int(records or 0)
    if table_exists(con, "ops", "quarantined_files"):
        rows = con.execute("select file_path, line, field, reason from ops.quarantined_files where tenant_id = ? "
                           "order by quarantined_at, file_path", [t]).fetchall()
        p.quarantined = [dict(file_path=f, line=ln, field=fd, reason=r) for f, ln, fd, r in rows]
    _measure_sales(con, p)
    _measure_spend(con, p)
    _measure_promotions(con, p)
    _measure_weather(con, p)
    _measure_experiments(con, p)
    _measure_aggregated(con, p)
    return p


def _measure_sales(con, p: Profile) -> None:
    if not table_exists(con, "staging", "stg_shopify__order_lines"):
        return
    has_products = table_exists(con, "staging", "stg_shopify__products")
    category = "coalesce(pr.category, 'uncategorized')" if has_products else "'uncategorized'"
    join = ("left join staging.stg_shopify__products pr on pr.tenant_id = l.tenant_id "
            "and pr.product_id = l.product_id") if has_products else ""
    lines = _df(con, f"""
        select l.order_date as date, coalesce(l.geo_id, 'US') as geo_id, {category} as category,
               count(distinct l.order_id) as orders, sum(l.gross_amount - l.discount_amount) as net_revenue
        from staging.stg_shopify__order_lines l {join}
        where l.tenant_id = ? and l.is_sale
        group by all""", [p.tenant_id])
    if lines.empty:
        return
    lines["date"] = pd.to_datetime(lines["date"])
    by_day_geo = lines.groupby(["date", "geo_id"])["orders"].sum()
    days = pd.date_range(lines["date"].min(), lines["date"].max(), freq="D")
    p.sales_start, p.sales_end = days[0].date(), days[-1].date()
    p.sales_days = int(lines["date"].nunique())
    p.missing_sales_days = len(days) - p.sales_days
    # an order spanning categories counts once per category; the total counts it once
    orders = con.execute("select count(distinct order_id) from staging.stg_shopify__order_lines "
                         "where tenant_id = ? and is_sale", [p.tenant_id]).fetchone()[0]
    p.orders = int(orders)
    p.net_revenue = float(lines["net_revenue"].sum())
    p.geo_orders = {g: int(n) for g, n in con.execute(
        "select coalesce(geo_id, 'US'), count(distinct order_id) from staging.stg_shopify__order_lines "
        "where tenant_id = ? and is_sale group by all order by 1", [p.tenant_id]).fetchall()}
    p.category_orders = {c: int(v) for c, v in lines.groupby("category")["orders"].sum().items()}
    # orders per geo-day counts an order once per category it touches: an upper bound, close for most shops
    full = by_day_geo.unstack("geo_id").reindex(days).fillna(0.0)
    p.median_orders_per_geo_day = float(np.median(full.mean(axis=0).values))
    weekly = (lines.assign(week=lines["date"].dt.to_period("W-SUN"))
              .groupby(["week", "geo_id", "category"])["orders"].sum())
    cells = weekly.groupby(["geo_id", "category"]).sum() / max(len(days) / 7.0, 1.0)
    p.median_orders_per_category_geo_week = float(np.median(cells.values)) if len(cells) else 0.0


def _measure_spend(con, p: Profile) -> None:
    if not table_exists(con, "intermediate", "int_ad_spend_daily"):
        return
    spend = _df(con, """
        select date, channel, platform, coalesce(geo_id, 'US') as geo_id, sum(spend) as spend
        from intermediate.int_ad_spend_daily where tenant_id = ? group by all""", [p.tenant_id])
    if spend.empty or spend["spend"].sum() <= 0:
        return
    spend["date"] = pd.to_datetime(spend["date"])
    p.spend_total = float(spend["spend"].sum())
    p.spend_start, p.spend_end = spend["date"].min().date(), spend["date"].max().date()
    for channel, g in spend.groupby("channel"):
        total = float(g["spend"].sum())
        active = g[g["spend"] > 0]
        if active.empty:
            continue
        weekly = g.set_index("date")["spend"].resample("W-SUN").sum()
        weekly = weekly.loc[active["date"].min():active["date"].max() + pd.Timedelta(days=6)]
        typical = weekly[weekly > 0].median() if (weekly > 0).any() else 0.0
        paused = int((weekly < 0.1 * typical).sum()) if typical > 0 else 0
        cv = float(weekly.std(ddof=0) / weekly.mean()) if len(weekly) > 1 and weekly.mean() > 0 else 0.0
        regional = g[g["geo_id"].str.contains("-")]
        geo_weekly = (regional.set_index("date").groupby("geo_id")["spend"].resample("W-SUN").sum()
                      .unstack("geo_id").fillna(0.0)) if not regional.empty else pd.DataFrame()
        geo_cv = 0.0
        if geo_weekly.shape[1] > 1:
            shares = geo_weekly.div(geo_weekly.sum(axis=1).replace(0, np.nan), axis=0).dropna()
            # movement of each geo's share over time relative to its level: geo-level experiments and flights
            geo_cv = float((shares.std(ddof=0) / shares.mean().replace(0, np.nan)).median()) if len(shares) else 0.0
        p.channels[channel] = ChannelProfile(
            channel=channel, platform=str(g["platform"].iloc[0]), spend=total,
            first=active["date"].min().date(), last=active["date"].max().date(),
            weeks_with_spend=int((weekly > 0).sum()), weeks_paused=paused, weekly_cv=round(cv, 4),
            geo_share_cv=round(geo_cv if np.isfinite(geo_cv) else 0.0, 4), geos=int(active["geo_id"].nunique()),
            regional_share=round(float(regional["spend"].sum() / total), 4) if total > 0 else 0.0,
        )


def _measure_promotions(con, p: Profile) -> None:
    if table_exists(con, "marts", "dim_promotion"):
        for source, n in con.execute("select source, count(*) from marts.dim_promotion where tenant_id = ? "
                                     "group by all order by 1", [p.tenant_id]).fetchall():
            p.promotions[str(source)] = int(n)
    if table_exists(con, "staging", "stg_klaviyo__campaigns"):
        p.lifecycle_sends = int(con.execute("select count(*) from staging.stg_klaviyo__campaigns where tenant_id = ?",
                                            [p.tenant_id]).fetchone()[0])


def _measure_weather(con, p: Profile) -> None:
    if table_exists(con, "staging", "stg_weather__daily"):
        w = _df(con, "select geo_id, date, temperature_2m_mean from staging.stg_weather__daily where tenant_id = ?",
                [p.tenant_id])
        w = w.dropna(subset=["temperature_2m_mean"])
        p.weather_geos = sorted(w["geo_id"].unique().tolist())
        if not w.empty:
            w["date"] = pd.to_datetime(w["date"])
            sds = w.groupby("geo_id")["temperature_2m_mean"].std(ddof=1).dropna()
            p.temperature_anomaly_sd = round(float(sds.median()), 3) if len(sds) else None
        geos = p.region_geos
        if p.sales_start and geos:
            days = pd.date_range(p.sales_start, p.sales_end, freq="D")
            have = set(zip(w["geo_id"], w["date"]))
            covered = sum((g, d) in have for g in geos for d in days)
            p.weather_coverage = round(covered / (len(geos) * len(days)), 4)
    if table_exists(con, "staging", "stg_weather__forecast"):
        f = con.execute("select geo_id, count(distinct date) from staging.stg_weather__forecast where tenant_id = ? "
                        "group by all order by 1", [p.tenant_id]).fetchall()
        p.forecast_geos = [g for g, _ in f]
        p.forecast_days = int(min((n for _, n in f), default=0))


def _measure_experiments(con, p: Profile) -> None:
    from weathervane.landing.ingest import current_records

    for _, _, rec in current_records(con, p.tenant_id, "experiments", "lift_tests"):
        rec = rec if isinstance(rec, dict) else json.loads(rec)
        channel = str(rec.get("channel") or "").strip()
        p.lift_tests += 1
        p.lift_test_channels[channel] = p.lift_test_channels.get(channel, 0) + 1
    for ch, n in p.lift_test_channels.items():
        if ch in p.channels:
            p.channels[ch].lift_tests = n
    p.deployments = len(current_records(con, p.tenant_id, "autopilot", "deployments"))


def _measure_aggregated(con, p: Profile) -> None:
    """A delivered MMM table: its span, period, geos, revenue, and each channel's spend and how it moved (the
    same measures as connector spend, so the same rules decide what it can carry)."""
    if not table_exists(con, "staging", "stg_aggregated__mmm_input"):
        return
    rows = con.execute("select date, geo_id, revenue, record from staging.stg_aggregated__mmm_input "
                       "where tenant_id = ? order by date", [p.tenant_id]).fetchall()
    if not rows:
        return
    dates = sorted({r[0] for r in rows})
    p.aggregated_rows = len(rows)
    p.aggregated_start, p.aggregated_end = dates[0], dates[-1]
    gaps = {(b - a).days for a, b in zip(dates, dates[1:])}
    p.aggregated_period = "week" if gaps and min(gaps) >= 7 else "day"
    records = [r[3] if isinstance(r[3], dict) else json.loads(r[3]) for r in rows]
    keys = sorted({k for rec in records for k in rec})
    p.aggregated_channels = sorted(k.removeprefix("spend_") for k in keys if k.startswith("spend_"))
    p.aggregated_geos = sorted({str(r[1]) for r in rows if r[1]})
    p.aggregated_controls = [k for k in keys if not k.startswith("spend_") and k not in ("date", "geo_id", "revenue")]
    if p.orders:  # connectors are the source of truth when both exist
        return
    p.net_revenue = float(sum(float(r[2] or 0.0) for r in rows))

    def number(v) -> float:
        try:
            return float(v)
        except (TypeError, ValueError):
            return 0.0

    frame = pd.DataFrame({"date": pd.to_datetime([r[0] for r in rows]),
                          "geo_id": [str(r[1] or "US") for r in rows],
                          **{c: [number(rec.get(f"spend_{c}")) for rec in records] for c in p.aggregated_channels}})
    p.spend_total = float(frame[p.aggregated_channels].to_numpy().sum()) if p.aggregated_channels else 0.0
    p.spend_start, p.spend_end = dates[0], dates[-1]
    for channel in p.aggregated_channels:
        if channel in p.channels:
            continue
        per_date = frame.groupby("date")[channel].sum()
        weekly = per_date.resample("W-SUN").sum() if p.aggregated_period == "day" else per_date
        active = weekly[weekly > 0]
        if active.empty:
            continue
        typical = active.median()
        cv = float(weekly.std(ddof=0) / weekly.mean()) if len(weekly) > 1 and weekly.mean() > 0 else 0.0
        geo_cv = 0.0
        if len(p.aggregated_geos) > 1:
            by_geo = frame.pivot_table(index="date", columns="geo_id", values=channel, aggfunc="sum").fillna(0.0)
            shares = by_geo.div(by_geo.sum(axis=1).replace(0, np.nan), axis=0).dropna()
            geo_cv = float((shares.std(ddof=0) / shares.mean().replace(0, np.nan)).mean()) if len(shares) else 0.0
        p.channels[channel] = ChannelProfile(
            channel=channel, platform="aggregated", spend=float(weekly.sum()),
            first=active.index.min().date(), last=active.index.max().date(), weeks_with_spend=int(len(active)),
            weeks_paused=int((weekly < 0.1 * typical).sum()), weekly_cv=cv, geo_share_cv=geo_cv,
            geos=max(len(p.aggregated_geos), 1), regional_share=1.0 if len(p.aggregated_geos) > 1 else 0.0)
