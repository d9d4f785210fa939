"""The model spec: one decision per tenant, with reasons, pins the data cannot carry refused, and a ladder."""
from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pytest

from weathervane.config import Grain, ModelPins, TenantConfig
from weathervane.sniff import ChannelProfile, Profile, decide
from weathervane.spec import (
    DRAWS,
    MAX_DAILY_CELL_DAYS,
    SpecError,
    apply_overrides,
    decide_spec,
    default_spec,
    read_spec,
    resolve_spec,
    write_spec,
)

START = date(2024, 1, 1)


def _profile(tenant="shop", *, days=730, regions=6, orders_per_geo_day=10.0, categories=4, weather=True,
             flat_channel=False) -> Profile:
    geos = [f"US-{c}" for c in ("CA", "TX", "NY", "FL", "IL", "WA", "PA", "OH")[:regions]]
    per_geo = int(orders_per_geo_day * days)
    p = Profile(tenant_id=tenant, currency="USD", timezone="UTC", sales_start=START,
                sales_end=START + timedelta(days=days - 1), sales_days=days, orders=per_geo * regions,
                net_revenue=1e6, geo_orders={g: per_geo for g in geos},
                category_orders={f"c{i}": per_geo * regions // categories for i in range(categories)},
                median_orders_per_geo_day=orders_per_geo_day,
                median_orders_per_category_geo_week=7 * orders_per_geo_day / categories,
                spend_total=100_000.0, weather_geos=geos if weather else [],
                weather_coverage=1.0 if weather else 0.0, temperature_anomaly_sd=4.0 if weather else None,
                forecast_geos=geos if weather else [])
    for name, cv in (("meta", 0.4), ("google_search", 0.02 if flat_channel else 0.3)):
        p.channels[name] = ChannelProfile(channel=name, platform="x", spend=50_000.0, first=START, last=p.sales_end,
                                          weeks_with_spend=days // 7, weeks_paused=0, weekly_cv=cv,
                                          geo_share_cv=0.0, geos=regions, regional_share=1.0)
    return p


def _spec(profile: Profile, cfg: TenantConfig | None = None):
    return decide_spec(profile, decide(profile), cfg or TenantConfig())


def test_a_simulated_brand_is_modelled_weekly_at_all_by_region_with_a_reason_for_each_field():
    spec = _spec(_profile())
    assert (spec.period, spec.grain_product, spec.grain_geo) == ("week", "all", "region")
    assert spec.weather_vars == ("temperature_2m_mean", "precipitation_sum")
    assert set(spec.channels) == {"meta", "google_search"} and spec.held_channels == ()
    assert all(spec.reasons.get(f) for f in spec.FIELDS), spec.reasons
    assert "orders per cell-day" in spec.reasons["period"]
    assert spec.lags >= 8  # weekly carry-over of two months


def test_daily_only_where_the_data_and_the_compute_carry_it():
    rich_small = _spec(_profile(regions=2, orders_per_geo_day=40, days=600, categories=1))
    assert rich_small.period == "day" and 2 * 600 <= MAX_DAILY_CELL_DAYS
    rich_large = _spec(_profile(regions=6, orders_per_geo_day=40, days=730, categories=1))
    assert rich_large.period == "week" and "cell-days" in rich_large.reasons["period"]


def test_pins_the_data_cannot_carry_are_refused_with_the_reason_and_the_data_decides():
    cfg = TenantConfig(grain=Grain(product="category", geo="region"), model=ModelPins(period="day"))
    spec = _spec(_profile(orders_per_geo_day=3.0), cfg)
    assert (spec.period, spec.grain_product) == ("week", "all")
    assert "daily" in spec.refused["period"] and "3.0 orders per cell-day" in spec.refused["period"]
    assert "category" in spec.refused["grain_product"]
    assert any("refused" in line for line in spec.describe())


def test_pins_the_data_carries_are_kept_and_marked():
    cfg = TenantConfig(grain=Grain(product="all", geo="country"),
                       model=ModelPins(weather=["temperature_2m_mean"], draws=300, held_channels=["meta"]))
    spec = _spec(_profile(), cfg)
    assert spec.grain_geo == "country" and spec.sources["grain_geo"] == "tenant.yaml"
    assert spec.weather_vars == ("temperature_2m_mean",) and spec.draws == 300
    assert spec.held_channels == ("meta",) and not spec.refused


def test_a_channel_whose_spend_never_moves_is_held_and_weather_without_data_is_off():
    spec = _spec(_profile(flat_channel=True, weather=False))
    assert spec.held_channels == ("google_search",) and "nearly constant" in spec.reasons["held_channels"]
    assert spec.weather_vars == () and "weather covers 0%" in spec.reasons["weather_vars"]


def test_the_ladder_steps_down_period_then_grain_then_weather():
    spec = _spec(_profile(regions=2, orders_per_geo_day=40, days=600, categories=1))
    spec.grain_product = "category"
    rungs = [(r.period, r.grain_product, r.grain_geo, len(r.weather_vars)) for r in spec.ladder()]
    assert rungs == [("day", "category", "region", 2), ("week", "category", "region", 2),
                     ("week", "all", "region", 2), ("week", "all", "country", 2), ("week", "all", "country", 1),
                     ("week", "all", "country", 0)]
    settings = spec.fit_settings(rung=spec.ladder()[-1])
    assert settings.weather is False and settings.draws == spec.draws


def test_run_config_overrides_one_run_and_bad_values_are_named():
    spec = _spec(_profile())
    run = apply_overrides(spec, {"period": "day", "draws": 200, "grain_geo": None})
    assert (run.period, run.draws, run.grain_geo) == ("day", 200, "region")
    assert run.sources["period"] == "run config" and spec.period == "week"  # the stored spec is untouched
    assert run.lags == 8  # the period's own carry-over follows a period override
    with pytest.raises(SpecError, match="field period must be one of day, week"):
        apply_overrides(spec, {"period": "month"})
    with pytest.raises(SpecError, match="unknown model spec field 'colour'"):
        apply_overrides(spec, {"colour": "red"})


def test_the_spec_round_trips_through_the_warehouse_and_every_path_resolves_the_same(tmp_path):
    cfg = TenantConfig(model=ModelPins(period="day"))
    spec = _spec(_profile(orders_per_geo_day=3.0), cfg)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert resolve_spec(con, "shop", cfg).period == "day"  # before any sniff: the pin, nothing to refuse it with
    write_spec(con, spec)
    back = read_spec(con, "shop")
    assert back.to_dict() | {"decided_at": None} == spec.to_dict() | {"decided_at": None}
    assert resolve_spec(con, "shop", cfg).period == "week"
    assert read_spec(con, "other") is None and default_spec("other", TenantConfig()).period == "week"
    # a sampler default stored by an older release gives way to today's; a pinned value would not
    con.execute("update ops.model_spec set value = '500' where tenant_id = 'shop' and field = 'draws'")
    assert read_spec(con, "shop").draws == DRAWS != 500
    rows = con.execute("select field, status from ops.model_spec where tenant_id = 'shop'").fetchall()
    assert ("period", "refused") in rows and ("period", "ok") in rows
    con.close()


def test_coarsening_a_panel_keeps_kpi_and_spend_totals():
    from weathervane.mmm.data import coarsen, prepare_model_data, with_weather
    from weathervane.mmm.synthetic import synthetic_panel

    panel = synthetic_panel("shop", days=182, n_geos=3, seed=3)
    data = prepare_model_data(panel.model_input, panel.weather_daily, "week")
    national = coarsen(data, "all", "country")
    assert national.cells == ["US"] and national.cell_geo == {"US": "US"}
    np.testing.assert_allclose(national.kpi[:, 0], data.kpi.sum(axis=1))
    np.testing.assert_allclose(national.spend[:, 0], data.spend.sum(axis=1))
    assert set(national.weather_stats["US"]) == set(data.weather_vars)
    with pytest.raises(Exception, match="cannot refine"):
        coarsen(national, "all", "region")
    temp_only = with_weather(data, ["temperature_2m_mean"])
    assert temp_only.weather_vars == ["temperature_2m_mean"] and temp_only.weather_z.shape[2] == 1
    assert "precipitation_sum_z" not in temp_only.controls


def test_channels_the_spec_holds_are_held_by_the_plan(tmp_path):
    from weathervane.allocate.safety import read_evidence

    spec = _spec(_profile(flat_channel=True))
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    write_spec(con, spec)
    ev = read_evidence(con, "shop", "some-model")
    assert ev.held(["meta", "google_search"], ["US-CA"]).tolist() == [[False], [True]]
    assert "held by the model spec" in ev.flag_source
    con.close()
