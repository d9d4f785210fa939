"""From a measured profile to decisions, each with the reason a person can check.

Thresholds are stated once here; the README's onboarding section and the proof report quote them through
`Decision.reason`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from weathervane.sniff.profile import Profile

# A weekly fit keeps a year for training plus an eight-week holdout (weathervane.mmm.pipeline.holdout_periods).
MIN_LIVE_DAYS = 365 + 8 * 7
# Poisson noise of a cell's KPI: about 1/sqrt(orders). 20 orders a cell-week keeps it near 20%.
MIN_ORDERS_PER_CELL_WEEK = 20.0
# Daily cells need the same noise per day, and a year and a half so weekday and season separate.
MIN_ORDERS_PER_CELL_DAY = 20.0
MIN_DAILY_DAYS = 540
# Spend is not reported by category: category cells share their geo's spend by revenue, so they are worth
# their cost only when every cell is large.
MIN_ORDERS_PER_CATEGORY_CELL_WEEK = 50.0
MIN_REGION_ORDER_SHARE = 0.8  # orders with a resolvable region
MIN_REGIONAL_SPEND_SHARE = 0.5  # spend reported per region (else geo cells share national spend)
# A channel's effect separates from the baseline only if its spend moves.
MIN_WEEKS_WITH_SPEND = 26
MIN_WEEKLY_CV = 0.15
MIN_GEO_SHARE_CV = 0.2
MIN_PAUSED_WEEKS = 2
MIN_SPEND_SHARE = 0.02
# Weather interactions: most cell-days need weather, and temperature must vary within a geo.
MIN_WEATHER_COVERAGE = 0.9
MIN_TEMPERATURE_SD = 1.0

LIVE, GAPS, TWIN = "live", "live_with_synthetic_gaps", "synthetic_twin"


@dataclass
class Decision:
    name: str
    value: str
    reason: str


@dataclass
class ChannelVerdict:
    channel: str
    identifiable: bool
    reason: str


@dataclass
class Decisions:
    grain_product: Decision
    grain_geo: Decision
    period: Decision
    weather: Decision
    mode: Decision
    channels: list[ChannelVerdict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def identifiable(self) -> list[str]:
        return [c.channel for c in self.channels if c.identifiable]

    @property
    def weather_interactions(self) -> bool:
        return self.weather.value == "yes"

    def all(self) -> list[Decision]:
        return [self.mode, self.grain_product, self.grain_geo, self.period, self.weather,
                *[Decision(f"channel:{c.channel}", "identifiable" if c.identifiable else "not identifiable", c.reason)
                  for c in self.channels]]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _channel_verdict(p: Profile, name: str) -> ChannelVerdict:
    c = p.channels[name]
    share = c.spend / p.spend_total if p.spend_total > 0 else 0.0
    if share < MIN_SPEND_SHARE:
        return ChannelVerdict(name, False, f"only {_pct(share)} of spend (under {_pct(MIN_SPEND_SHARE)}): too small "
                                           "to measure; it is kept in the model but its ROAS is not reported as known")
    if c.weeks_with_spend < MIN_WEEKS_WITH_SPEND and not c.lift_tests:
        return ChannelVerdict(name, False, f"spend in {c.weeks_with_spend} weeks (needs {MIN_WEEKS_WITH_SPEND}) and "
                                           "no lift test")
    moves = []
    if c.weekly_cv >= MIN_WEEKLY_CV:
        moves.append(f"weekly spend varies (cv {c.weekly_cv:.2f})")
    if c.weeks_paused >= MIN_PAUSED_WEEKS:
        moves.append(f"{c.weeks_paused} paused weeks")
    if c.geo_share_cv >= MIN_GEO_SHARE_CV and c.geos > 1:
        moves.append(f"geos move differently (cv of geo shares {c.geo_share_cv:.2f})")
    if c.lift_tests:
        moves.append(f"{c.lift_tests} lift test{'s' if c.lift_tests > 1 else ''}")
    if not moves:
        return ChannelVerdict(name, False, f"spend is nearly constant (weekly cv {c.weekly_cv:.2f}, no pauses, geos "
                                           "in step, no lift test): its effect cannot be told from the baseline; "
                                           "run a geo holdout or vary it by flight")
    return ChannelVerdict(name, True, "; ".join(moves))


def decide(p: Profile) -> Decisions:
    """The finest grain the data supports, identifiable channels, weather interactions, period and mode."""
    warnings: list[str] = []
    span = p.span_days
    history_ok = span >= MIN_LIVE_DAYS and (p.orders > 0 or p.aggregated_rows > 0)
    if p.quarantined:
        warnings.append(f"{len(p.quarantined)} landing file(s) quarantined: fix and re-deliver them "
                        f"(first: {p.quarantined[0]['file_path']}: {p.quarantined[0]['reason']})")
    if p.missing_sales_days:
        warnings.append(f"{p.missing_sales_days} day(s) without any order inside the sales history: check the "
                        "Shopify export covers every day")

    # geo level
    region_orders = sum(v for g, v in p.geo_orders.items() if "-" in g)
    region_share = region_orders / p.orders if p.orders else 0.0
    regional_spend = (sum(c.spend * c.regional_share for c in p.channels.values()) / p.spend_total
                      if p.spend_total > 0 else 0.0)
    n_regions = len(p.region_geos)
    weekly_per_geo = 7 * p.median_orders_per_geo_day
    if n_regions >= 2 and region_share >= MIN_REGION_ORDER_SHARE and regional_spend >= MIN_REGIONAL_SPEND_SHARE \
            and weekly_per_geo >= MIN_ORDERS_PER_CELL_WEEK:
        geo = Decision("grain_geo", "region", f"{n_regions} regions hold {_pct(region_share)} of orders, "
                       f"{_pct(regional_spend)} of spend is reported per region, and a typical region has "
                       f"{weekly_per_geo:.0f} orders a week (needs {MIN_ORDERS_PER_CELL_WEEK:.0f})")
    else:
        why = []
        if n_regions < 2:
            why.append(f"{n_regions} region(s) with orders")
        if region_share < MIN_REGION_ORDER_SHARE:
            why.append(f"only {_pct(region_share)} of orders have a region")
        if regional_spend < MIN_REGIONAL_SPEND_SHARE:
            why.append(f"only {_pct(regional_spend)} of spend is reported per region")
        if weekly_per_geo < MIN_ORDERS_PER_CELL_WEEK:
            why.append(f"a typical region has {weekly_per_geo:.0f} orders a week (needs "
                       f"{MIN_ORDERS_PER_CELL_WEEK:.0f})")
        geo = Decision("grain_geo", "country", "; ".join(why) or "no regional data")

    # product level
    n_categories = len([c for c in p.category_orders if c != "uncategorized"])
    per_cat_cell = p.median_orders_per_category_geo_week
    if geo.value == "country" and n_regions:
        per_cat_cell *= max(n_regions, 1)  # country cells pool the regions
    if n_categories >= 2 and per_cat_cell >= MIN_ORDERS_PER_CATEGORY_CELL_WEEK:
        product = Decision("grain_product", "category", f"{n_categories} categories with a typical "
                           f"{per_cat_cell:.0f} orders per category cell a week (needs "
                           f"{MIN_ORDERS_PER_CATEGORY_CELL_WEEK:.0f}; spend is shared to categories by revenue)")
    else:
        product = Decision("grain_product", "all", (
            f"{n_categories} categor{'y' if n_categories == 1 else 'ies'}" if n_categories < 2 else
            f"a typical category cell has {per_cat_cell:.0f} orders a week (needs "
            f"{MIN_ORDERS_PER_CATEGORY_CELL_WEEK:.0f}), and spend is not reported by category"))

    # period
    per_cell_day = p.median_orders_per_geo_day if geo.value == "region" else \
        p.median_orders_per_geo_day * max(n_regions, 1)
    if span >= MIN_DAILY_DAYS and per_cell_day >= MIN_ORDERS_PER_CELL_DAY:
        period = Decision("period", "day", f"{span} days of history and {per_cell_day:.0f} orders per cell-day")
    else:
        why = []
        if span < MIN_DAILY_DAYS:
            why.append(f"{span} days of history (daily needs {MIN_DAILY_DAYS})")
        if per_cell_day < MIN_ORDERS_PER_CELL_DAY:
            why.append(f"{per_cell_day:.1f} orders per cell-day (daily needs {MIN_ORDERS_PER_CELL_DAY:.0f}); "
                       "weeks average the noise")
        period = Decision("period", "week", "; ".join(why))

    # channels
    channels = [_channel_verdict(p, name) for name in sorted(p.channels, key=lambda n: -p.channels[n].spend)]
    identifiable = [c.channel for c in channels if c.identifiable]

    # weather
    temp_sd = p.temperature_anomaly_sd or 0.0
    if p.weather_coverage >= MIN_WEATHER_COVERAGE and temp_sd >= MIN_TEMPERATURE_SD and history_ok:
        weather = Decision("weather_interactions", "yes", f"weather covers {_pct(p.weather_coverage)} of region-days "
                           f"and temperature varies (sd {temp_sd:.1f} °C within a geo) over {span} days")
    else:
        why = []
        if p.weather_coverage < MIN_WEATHER_COVERAGE:
            why.append(f"weather covers {_pct(p.weather_coverage)} of region-days (needs "
                       f"{_pct(MIN_WEATHER_COVERAGE)})")
        if temp_sd < MIN_TEMPERATURE_SD:
            why.append(f"temperature sd within a geo {temp_sd:.1f} °C (needs {MIN_TEMPERATURE_SD:.0f})")
        if not history_ok:
            why.append(f"{span} days of history (needs {MIN_LIVE_DAYS})")
        weather = Decision("weather_interactions", "no", "; ".join(why))
    if p.orders and not p.forecast_geos:
        warnings.append("no weather forecast files: plans will assume each geo's climate for the horizon")

    # mode
    blockers = []
    if not history_ok:
        blockers.append(f"{span} days of history (a live fit needs {MIN_LIVE_DAYS}: a year plus an eight-week "
                        "holdout)")
    if p.orders == 0 and p.aggregated_rows == 0:
        blockers.append("no sales (no Shopify orders and no aggregated MMM table)")
    if p.spend_total <= 0 and not p.aggregated_channels:
        blockers.append("no ad spend from Meta or Google")
    elif p.channels and not identifiable:
        blockers.append("no channel whose spend moves enough to be measured")
    if blockers:
        mode = Decision("mode", TWIN, "; ".join(blockers) + ". The walkthrough runs on a synthetic twin "
                        "configured from this data (known truth), and the live data is shown as coverage only")
    elif p.weather_coverage < MIN_WEATHER_COVERAGE or not p.forecast_geos:
        missing = []
        if p.weather_coverage < MIN_WEATHER_COVERAGE:
            missing.append(f"observed weather ({_pct(1 - p.weather_coverage)} of region-days missing)")
        if not p.forecast_geos:
            missing.append("the weather forecast")
        mode = Decision("mode", GAPS, "sales and spend carry a live fit; " + " and ".join(missing)
                        + " filled from each geo's climate, labelled synthetic")
    else:
        mode = Decision("mode", LIVE, f"{span} days of sales and spend, {len(identifiable)} identifiable "
                        f"channel(s), weather covered")
    return Decisions(grain_product=product, grain_geo=geo, period=period, weather=weather, mode=mode,
                     channels=channels, warnings=warnings)
