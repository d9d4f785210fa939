"""The synthetic twin: the simulator configured from what the sniff measured, with known truth.

The simulator's own parameters are used as they are (its markets, catalogue and channel shapes are fixed); what
the twin cannot copy is listed in `TwinConfig.differences` so the report says it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from weathervane.config import validate_tenant_id
from weathervane.sniff.profile import Profile

TWIN_SUFFIX = "-twin"
# Long enough for a weekly fit with its holdout (see decide.MIN_LIVE_DAYS), short enough for a quick proof.
TWIN_DAYS = 434
MAX_TWIN_GEOS = 6
MIN_ORDERS_PER_GEO_DAY, MAX_ORDERS_PER_GEO_DAY = 8.0, 60.0
MIN_MEDIA_SHARE, MAX_MEDIA_SHARE, DEFAULT_MEDIA_SHARE = 0.03, 0.3, 0.11
DEFAULT_CHANNELS = ("meta", "google_search")


def twin_tenant_id(tenant_id: str) -> str:
    return validate_tenant_id(validate_tenant_id(tenant_id)[: 63 - len(TWIN_SUFFIX)] + TWIN_SUFFIX)


@dataclass
class TwinConfig:
    tenant_id: str
    source_tenant: str
    n_geos: int
    channels: list[str]
    orders_per_geo_day: float
    media_share: float
    days: int = TWIN_DAYS
    grain: tuple[str, str] = ("all", "region")
    seed: int = 0
    lift_test_channels: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def simulate(self, landing_root: Path | str):
        """Write the twin into the landing root (replacing an earlier twin) and return its Truth."""
        from weathervane.simulate import simulate_tenant

        return simulate_tenant(self.tenant_id, Path(landing_root), scenario="standard", seed=self.seed,
                               days=self.days, n_geos=self.n_geos, orders_per_geo_day=self.orders_per_geo_day,
                               channels=tuple(self.channels), grain=self.grain, media_share=self.media_share,
                               lift_test_channels=tuple(self.lift_test_channels or self.channels[:1]))


def twin_config(p: Profile, seed: int = 0) -> TwinConfig:
    """Same number of geos, the channels the simulator knows, the tenant's order volume and media share."""
    from weathervane.simulate.geos import GEOS
    from weathervane.simulate.media import CHANNELS

    known = [c.name for c in CHANNELS]
    differences = []
    live_channels = sorted(set(p.channels) | set(p.aggregated_channels), key=lambda c: -p.channels[c].spend
                           if c in p.channels else 0.0)
    channels = [c for c in known if c in live_channels]
    unknown = [c for c in live_channels if c not in known]
    if unknown:
        differences.append(f"channels {', '.join(unknown)} have no simulated counterpart and are left out")
    if not channels:
        channels = list(DEFAULT_CHANNELS)
        differences.append(f"no channel the simulator knows was found; the twin runs {', '.join(channels)}")
    geos = p.region_geos
    n_geos = min(max(len(geos), 2), MAX_TWIN_GEOS)
    twin_geos = [g.geo_id for g in GEOS[:n_geos]]
    if geos and sorted(geos) != sorted(twin_geos):
        differences.append(f"{n_geos} simulated states ({', '.join(twin_geos)}) stand in for the tenant's "
                           f"{len(geos)} region(s) ({', '.join(geos[:8])}{'…' if len(geos) > 8 else ''})")
    elif not geos:
        differences.append(f"no regional sales found; the twin uses {n_geos} simulated states")
    days = max(p.span_days, 1)
    opgd = p.orders / days / max(len(geos), 1) if p.orders else 0.0
    if opgd < MIN_ORDERS_PER_GEO_DAY or opgd > MAX_ORDERS_PER_GEO_DAY:
        clipped = min(max(opgd, MIN_ORDERS_PER_GEO_DAY), MAX_ORDERS_PER_GEO_DAY)
        differences.append(f"order volume {opgd:.1f} per geo-day is set to {clipped:.0f} (the twin's range is "
                           f"{MIN_ORDERS_PER_GEO_DAY:.0f} to {MAX_ORDERS_PER_GEO_DAY:.0f})")
        opgd = clipped
    revenue = p.net_revenue
    share = p.spend_total / revenue if revenue > 0 and p.spend_total > 0 else DEFAULT_MEDIA_SHARE
    if not MIN_MEDIA_SHARE <= share <= MAX_MEDIA_SHARE:
        clipped = min(max(share, MIN_MEDIA_SHARE), MAX_MEDIA_SHARE)
        differences.append(f"spend is {share:.0%} of net revenue in the data; the twin uses {clipped:.0%}")
        share = clipped
    differences.append("the twin's catalogue, promotion calendar, weather and channel response shapes are the "
                       "simulator's own; their true effects are known and shown beside the estimates")
    lift = [c for c in channels if p.lift_test_channels.get(c)] or channels[:1]
    return TwinConfig(tenant_id=twin_tenant_id(p.tenant_id), source_tenant=p.tenant_id, n_geos=n_geos,
                      channels=channels, orders_per_geo_day=round(float(opgd), 2), media_share=round(float(share), 4),
                      seed=seed, lift_test_channels=lift, differences=differences)
