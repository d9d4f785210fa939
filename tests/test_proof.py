"""The proof's parts that need no fit: report wording, the not-enough-data story, and gap filling.

The end-to-end proof through Dagster (sniff -> twin -> pipeline -> report) and its browser check are in
tests/test_reports_browser.py, which shares one fitted tenant across its tests.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd
import pytest

from weathervane import reports as rp
from weathervane.landing.parse import parse_file
from weathervane.landing.streams import get_stream
from weathervane.proof import ProofRun, fill_gaps, render_proof
from weathervane.sniff import GAPS, TWIN, decide, twin_config
from weathervane.sniff.record import Sniff, write_sniff

from tests.test_sniff import rich_profile


def test_money_and_interval_words():
    assert rp.money(12345.6, "USD") == "$12,346"
    assert rp.money(-5, "EUR") == "-€5"
    assert rp.money(1000, "SEK") == "1,000 SEK"
    assert rp.money(None) == "—" and rp.money(float("nan")) == "—"
    assert rp.money_short(1_250_000, "GBP") == "£1.25M" and rp.money_short(-3500, "USD") == "-$3.5k"
    assert rp.with_interval(2.1, 1.8, 2.4) == "2.10 (90% interval 1.80–2.40)"
    # a posterior probability never reads as certainty
    assert (rp.probability(0.999), rp.probability(0.001), rp.probability(0.8)) == ("more than 99%", "less than 1%",
                                                                                   "80%")


def test_weather_sentence_states_size_direction_interval_and_when_data_cannot_tell():
    s = rp.weather_sentence("meta", "temperature_2m_mean", 1.28, 1.21, 1.35)
    assert s == ("A day 1 sd warmer than usual makes Meta about 28% more effective "
                 "(90% interval +21% to +35%).")
    s = rp.weather_sentence("google_search", "precipitation_sum", 0.9, 0.85, 0.95)
    assert "wetter" in s and "10% less effective" in s
    s = rp.weather_sentence("meta", "temperature_2m_mean", 1.05, 0.97, 1.12)
    assert "cannot tell" in s and "more effective" not in s


def _sniffed(tmp_path, profile, mode_expected):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema ops")
    d = decide(profile)
    assert d.mode.value == mode_expected
    write_sniff(con, Sniff("s1", datetime(2024, 6, 4), profile, d, twin_config(profile) if mode_expected == TWIN
                           else None))
    return con


def test_a_tenant_without_enough_data_gets_a_clear_story_labelled_synthetic_on_every_page(tmp_path):
    p = rich_profile(days=3, per_geo_day=2.0, geos=("US-CA", "US-WA"))
    con = _sniffed(tmp_path, p, TWIN)
    run = ProofRun(tenant_id="shop", model_tenant="shop-twin", mode=TWIN, period="week", fit={"method": "map"},
                   steps=[("sniff", 12.0, "ok"), ("pipeline", 30.0, "failed")],
                   problems=["pipeline steps that failed for shop-twin: mmm__weather_mmm"])
    html = render_proof(con, run, currency="EUR")
    banner = "SYNTHETIC TWIN — every number below comes from simulated data"
    assert html.count(banner) == 2  # top and bottom of the page
    assert "3 days of history (a live fit needs" in html
    assert "No model was fitted." in html and "No plan was proposed" in html
    assert "pipeline steps that failed for shop-twin" in html
    assert re.search(r'data-key="proof_seconds">42<', html)
    assert "€" in html and "$" not in html  # money in the tenant's currency only


def test_live_report_has_no_synthetic_label(tmp_path):
    p = rich_profile()
    con = _sniffed(tmp_path, p, "live")
    html = render_proof(con, ProofRun("shop", "shop", "live", "week", {}), currency="USD")
    assert "SYNTHETIC" not in html and 'class="banner"' not in html
    assert "live data" in html and "identifiable" in html


def _weather_fixture(tmp_path, days: pd.DatetimeIndex, geo: str):
    landing = tmp_path / "landing"
    tenant = landing / "shop"
    (tenant / "weather" / "daily" / geo).mkdir(parents=True)
    (tenant / "tenant.yaml").write_text("currency: USD\n")
    original = {"latitude": 36.8, "longitude": -119.4, "daily": {"time": [str(d.date()) for d in days]}}
    (tenant / "weather" / "daily" / geo / "obs.json").write_text(json.dumps(original))
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema staging")
    temp = 15 + 10 * np.sin(2 * np.pi * days.day_of_year / 365.25)
    obs = pd.DataFrame({"tenant_id": "shop", "geo_id": geo, "date": days.date, "temperature_2m_mean": temp,
                        "temperature_2m_max": temp + 5, "temperature_2m_min": temp - 5, "precipitation_sum": 1.0})
    con.execute("create table staging.stg_weather__daily as select * from obs")
    return landing, con, obs


def test_gap_fill_copies_the_tenant_and_adds_climatology_files_the_landing_parser_accepts(tmp_path):
    observed = pd.date_range("2023-01-01", "2023-12-31", freq="D")
    landing, con, obs = _weather_fixture(tmp_path, observed, "US-CA")
    p = rich_profile(geos=("US-CA",))
    p.tenant_id = "shop"
    p.sales_start, p.sales_end = date(2023, 1, 1), date(2024, 3, 31)  # 2024 has no weather
    p.forecast_geos = []
    before = sorted(x.relative_to(landing / "shop") for x in (landing / "shop").rglob("*"))
    filled, written = fill_gaps(con, landing, p, horizon_days=14)
    assert filled == "shop-filled"
    assert sorted(x.relative_to(landing / "shop") for x in (landing / "shop").rglob("*")) == before  # untouched
    assert len(written) == 2 and "91 day(s)" in written[0] and "14-day forecast" in written[1]
    daily = landing / filled / "weather" / "daily" / "US-CA" / "synthetic-gapfill.json"
    parsed = parse_file(get_stream("weather", "daily"), daily.read_bytes(), "US-CA/synthetic-gapfill.json")
    assert parsed.ok and parsed.geo_id == "US-CA"
    series = json.loads(daily.read_text())["daily"]
    assert series["time"][0] == "2024-01-01" and series["time"][-1] == "2024-03-31"
    # 2024-02-15 is filled with the mean of 2023's days within a week of day 46
    window = obs[(pd.to_datetime(obs["date"]).dt.day_of_year - 46).abs() <= 7]
    i = series["time"].index("2024-02-15")
    assert series["temperature_2m_mean"][i] == pytest.approx(window["temperature_2m_mean"].mean(), abs=0.01)
    forecast = landing / filled / "weather" / "forecast" / "US-CA" / "synthetic-gapfill-forecast.json"
    assert json.loads(forecast.read_text())["daily"]["time"][0] == "2024-04-01"
    assert (landing / filled / "weather" / "daily" / "US-CA" / "obs.json").exists()


def test_gap_fill_mode_is_chosen_when_weather_is_missing():
    p = rich_profile()
    p.weather_coverage = 0.5
    assert decide(p).mode.value == GAPS
