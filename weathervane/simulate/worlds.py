"""Worlds: switches on the simulator's data-generating process that the model is never told about.

`World()` is the standard simulator (every switch off, files byte-identical to calling `simulate_tenant` without a
world). Each switch is realistic for a DTC brand:

- saturation: "logistic" (the model's own family), "hill" with a slope k != 1 (k > 1: an S-curve with a
  threshold; k < 1: sharply concave), half-saturated at `hill_half` x the channel's typical adstocked spend;
- adstock: "fast" (most of the effect the same day), "slow" (a long tail), "delayed" (the effect peaks
  `delay_peak` days after the spend);
- paced budgets: `paced_channels` (typically search and shopping) spend in proportion to the organic demand
  to the power `pacing_exponent` < 1 and have no on/off flights;
- holiday season: baseline demand up by `holiday_demand` from a week before Black Friday to Christmas Eve, and
  every channel's budget up by `q4_budget_bump` over the same days (budget pushes that coincide with demand);
- weather: `gamma` replaces the channels' log-multipliers per sd ({} for no weather effect on any channel);
  `baseline_weather` False removes the weather's effect on the organic baseline as well;
- promotions in warm weeks: `scenario="promo_weather_confounded"`;
- geo parity (`geo_parity`): each geo's response curve is the same up to its size and each geo's budget is
  exactly its population share (no per-geo random level), so true ROAS and marginal ROAS are identical across
  geos and only weather can make one geo worth more than another;
- geo-paced budgets (`geo_paced`): every channel's budget in a geo follows that geo's own demand (its seasonal
  shape and the weather's effect on its baseline, last 7 days) to the power `pacing_exponent`: geo spend and
  geo baseline move together;
- budgets from last month's revenue (`budget_from_revenue`): each month's budget in a geo is proportional to the
  geo's expected revenue in the month before;
- flights with promotions (`promo_flight_channels`): those channels are on exactly while a promotion runs;
- bad files: `scenario="bad_files"` writes the simulator's deliberately bad extracts beside the good ones
  (ingest quarantines them; the data the model sees are the standard scenario's).

Promotions, emails and weather act multiplicatively on the baseline in every world (see core.py). Brand size,
media share and lift tests are `simulate_tenant` arguments; a world carries them for the robustness matrix.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from weathervane.simulate.media import ChannelSpec

ADSTOCK_ALPHA = {"fast": 0.1, "slow": 0.8, "delayed": 0.6}
DELAY_PEAK_DAYS = 2.0


@dataclass(frozen=True)
class World:
    name: str = "standard"
    saturation: str = "logistic"  # logistic | hill
    hill_slope: float = 1.0
    hill_half: float = 1.0
    adstock: str = "default"  # default | fast | slow | delayed
    paced_channels: tuple[str, ...] = ()
    pacing_exponent: float = 0.7
    holiday_demand: float = 0.0
    q4_budget_bump: float = 0.0
    gamma: dict[str, dict[str, float]] | None = None  # channel -> weather variable -> log-multiplier per sd
    baseline_weather: bool = True
    geo_parity: bool = False
    geo_paced: bool = False
    budget_from_revenue: bool = False
    promo_flight_channels: tuple[str, ...] = ()
    # simulate_tenant arguments, carried for the matrix
    scenario: str = "standard"
    orders_per_geo_day: float = 40.0
    media_share: float = 0.2
    lift_test_channels: tuple[str, ...] = ()
    channels: tuple[str, ...] = ("meta", "google_search", "google_shopping")
    n_geos: int | None = None  # the bench's default when None
    days: int | None = None
    notes: str = field(default="", compare=False)

    @property
    def is_standard(self) -> bool:
        """Every data-generating switch off (the simulate_tenant arguments do not count)."""
        return (self.saturation == "logistic" and self.adstock == "default" and not self.paced_channels
                and self.holiday_demand == 0 and self.q4_budget_bump == 0 and self.gamma is None
                and self.baseline_weather and not self.geo_parity and not self.geo_paced
                and not self.budget_from_revenue and not self.promo_flight_channels)

    def channel(self, spec: ChannelSpec) -> ChannelSpec:
        """The channel as this world generates it."""
        out = spec
        if self.saturation == "hill":
            out = replace(out, saturation="hill", hill_slope=self.hill_slope, hill_half=self.hill_half)
        elif self.saturation != "logistic":
            raise ValueError(f"world {self.name}: unknown saturation {self.saturation!r} (logistic or hill)")
        if self.adstock in ADSTOCK_ALPHA:
            out = replace(out, alpha=ADSTOCK_ALPHA[self.adstock])
            if self.adstock == "delayed":
                out = replace(out, adstock_kind="delayed", delay_peak=DELAY_PEAK_DAYS)
        elif self.adstock != "default":
            raise ValueError(f"world {self.name}: unknown adstock {self.adstock!r} (default, fast, slow, delayed)")
        if self.gamma is not None:
            g = self.gamma.get(spec.name, {})
            out = replace(out, gamma_temp=float(g.get("temperature_2m_mean", 0.0)),
                          gamma_precip=float(g.get("precipitation_sum", 0.0)))
        return out

    def simulate_kwargs(self) -> dict:
        return dict(scenario=self.scenario, orders_per_geo_day=self.orders_per_geo_day, media_share=self.media_share,
                    lift_test_channels=self.lift_test_channels, channels=self.channels)


NO_WEATHER: dict[str, dict[str, float]] = {}
# heat helps search, rain hurts meta, shopping ignores the weather (the standard world has heat on meta, rain on
# shopping)
SWAPPED_WEATHER = {"google_search": {"temperature_2m_mean": 0.2}, "meta": {"precipitation_sum": -0.2}}
PACED = ("google_search", "google_shopping")
ALL3 = ("meta", "google_search", "google_shopping")

# The robustness matrix: not only the easy corner. Brand sizes 12-60 orders per geo-day, media 10-40%, lift tests
# none / one / one per channel.
MATRIX: tuple[World, ...] = (
    World("reference", orders_per_geo_day=60, media_share=0.2, lift_test_channels=ALL3,
          notes="the recovery tests' world, smaller"),
    World("small_no_tests", orders_per_geo_day=12, media_share=0.15, notes="a new brand: small, no lift test"),
    World("hill_s_curve", saturation="hill", hill_slope=2.0, lift_test_channels=("meta",)),
    World("hill_concave", saturation="hill", hill_slope=0.7, hill_half=0.8),
    World("fast_adstock", adstock="fast", lift_test_channels=("meta",)),
    World("slow_adstock", adstock="slow"),
    World("delayed_peak", adstock="delayed", lift_test_channels=("meta",)),
    World("paced_search", paced_channels=PACED, pacing_exponent=0.7),
    World("q4_push", holiday_demand=0.3, q4_budget_bump=0.6, lift_test_channels=("meta",)),
    World("promo_in_heat", scenario="promo_weather_confounded", orders_per_geo_day=15, media_share=0.15),
    World("no_weather", gamma=NO_WEATHER, baseline_weather=False, lift_test_channels=("meta",)),
    World("weather_swapped", gamma=SWAPPED_WEATHER),
    World("media_heavy", media_share=0.4, orders_per_geo_day=20, lift_test_channels=("meta",)),
    World("media_light", media_share=0.1, orders_per_geo_day=60),
    World("hard_corner", saturation="hill", hill_slope=2.0, paced_channels=PACED, holiday_demand=0.3,
          q4_budget_bump=0.6, scenario="promo_weather_confounded", orders_per_geo_day=14, media_share=0.15,
          notes="paced search and shopping, Q4 pushes, an S-curve, promotions in warm weeks, small, no lift test"),
)
WORLDS = {w.name: w for w in MATRIX}

# Worlds with the traits of brands the matrix above did not have (issue 27): the plan's claims must hold here too.
# Small brands get no lift test, as small brands rarely run one.
TRAIT_WORLDS: tuple[World, ...] = (
    World("geo_parity_paced", geo_parity=True, geo_paced=True, orders_per_geo_day=40,
          notes="true ROAS identical across geos; each geo's spend follows its population and its own demand"),
    World("revenue_budgets", budget_from_revenue=True, geo_parity=True, lift_test_channels=("meta",),
          notes="each month's budget in a geo set from the geo's revenue the month before"),
    World("promo_flights", promo_flight_channels=("meta",), orders_per_geo_day=40,
          notes="meta's flights run exactly while a promotion does"),
    World("small_bad_files", scenario="bad_files", orders_per_geo_day=12, media_share=0.15,
          notes="a small brand (12 orders per geo-day), no lift test, bad files in its landing folder"),
    World("small_parity_paced", geo_parity=True, geo_paced=True, budget_from_revenue=True, orders_per_geo_day=14,
          media_share=0.15, notes="small (14 orders), no lift test, equal geo ROAS, geo spend follows geo demand"),
    World("hidden_like", geo_parity=True, geo_paced=True, budget_from_revenue=True, promo_flight_channels=("meta",),
          scenario="bad_files", orders_per_geo_day=14, media_share=0.15, n_geos=6,
          notes="six geos, 14 orders per geo-day, no lift test, bad files, equal geo ROAS, spend following geo "
                "demand and last month's revenue, meta flights with promotions"),
)
ALL_WORLDS = {w.name: w for w in MATRIX + TRAIT_WORLDS}
