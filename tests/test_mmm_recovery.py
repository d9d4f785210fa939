"""Recovery of the simulator's truth by the weather-aware MMM (full NUTS: marked slow)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from dbt.cli.main import dbtRunner

from weathervane import config, warehouse
from weathervane.spec import ModelSpec, dbt_vars
from weathervane.landing import ingest_tenant
from weathervane.mmm import (
    FitSettings, duckdb_connect, fit_panel, prepare_model_data, read_lift_tests, read_model_input,
)
from weathervane.simulate import simulate_tenant
from bench.robustness import model_input_from_truth


def recovery_numbers(fitted, truth) -> dict:
    cs = fitted.frames["channel_summary"]
    overall = cs[cs["geo_id"].isna()].set_index("channel")
    we = fitted.frames["weather_effects"].set_index(["channel", "weather_variable"])
    out = {"roas": {}, "weather": {}}
    for c, ch in truth.channels.items():
        r = overall.loc[c]
        out["roas"][c] = dict(true=ch.roas, mean=r.roas_mean, p05=r.roas_p05, p95=r.roas_p95,
                              rel_err=abs(r.roas_mean - ch.roas) / ch.roas,
                              covered=bool(r.roas_p05 <= ch.roas <= r.roas_p95))
        for v, m in ch.multiplier_per_sd.items():
            e = we.loc[(c, v)]
            out["weather"][(c, v)] = dict(true=m, mean=e.multiplier_per_sd_mean, p05=e.multiplier_per_sd_p05,
                                          p95=e.multiplier_per_sd_p95,
                                          covered=bool(e.multiplier_per_sd_p05 <= m <= e.multiplier_per_sd_p95))
    return out


REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_DIR = REPO_ROOT / "dbt"
TENANT = "recov"
# A brand of 80 orders per geo-day (480 a day) that spends a fifth of its revenue on paid media and has run a
# four-week geo lift test on each channel (the Truth records all three). With the simulator's defaults (10
# orders, 11% media) Poisson noise on daily revenue hides a channel that earns a few percent of it: no model
# recovers its ROAS to 15% from one such history (measured: 40 orders and 11% media left the smallest channel's
# ROAS 44% off).
ORDERS_PER_GEO_DAY = 80.0
MEDIA_SHARE = 0.2
CHANNELS = ("meta", "google_search", "google_shopping")


def warehouse_from_simulation(root: Path, scenario: str):
    """simulate_tenant -> ingest_tenant -> dbt build (grain all x region) on a DuckDB file under `root`: the
    same path production data takes to marts.fct_model_input. Returns the truth and the warehouse path."""
    landing, wh = root / "landing", root / "warehouse.duckdb"
    truth = simulate_tenant(TENANT, landing, scenario=scenario, seed=0, days=730, n_geos=6,
                            orders_per_geo_day=ORDERS_PER_GEO_DAY, channels=CHANNELS, media_share=MEDIA_SHARE,
                            lift_test_channels=CHANNELS)
    con = warehouse.connect(wh)
    try:
        warehouse.ensure_schemas(con)
        report = ingest_tenant(con, landing, TENANT)
    finally:
        con.close()
    assert not [q for s in report.streams for q in s.quarantined], report
    variables = dbt_vars(TENANT, config.load_tenant_config(landing, TENANT),
                         ModelSpec(TENANT, grain_product="all", grain_geo="region"))
    args = ["build", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR), "--target-path",
            str(root / "dbt_target"), "--log-path", str(root / "dbt_logs"), "--vars", json.dumps(variables),
            "--quiet", "--select", "+fct_model_input", "+fct_weather_daily", "--exclude", "resource_type:test"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WEATHERVANE_WAREHOUSE", str(wh))
        result = dbtRunner().invoke(args)
    assert result.success, result.exception
    return truth, wh


def _fit_simulated(tmp_path, scenario: str, period: str = "day"):
    truth, wh = warehouse_from_simulation(tmp_path, scenario)
    # read-write: dbt ran in this process and its DuckDB instance is still open read-write
    with duckdb_connect(wh)(False) as con:
        frame, weather = read_model_input(con, TENANT, "all", "region", period)
        lift_raw = read_lift_tests(con, TENANT)
    assert len(lift_raw) == len(CHANNELS)
    data = prepare_model_data(frame, weather, period)
    # The warehouse rows agree with what the simulator says it sold and spent.
    cross, _ = model_input_from_truth(truth, period="day")
    assert data.kpi.sum() == pytest.approx(cross["kpi"].sum(), rel=1e-6)
    for c in data.channels:
        assert data.spend[..., data.channels.index(c)].sum() == pytest.approx(cross[f"spend_{c}"].sum(), rel=1e-6)
    # Daily: the simulator modulates media by each day's weather, and weekly means blur rain, which is
    # mostly day-to-day variation.
    # The recovery check's own gate is looser than production's (r-hat 1.05, ESS 200 on 500 draws): in runs of
    # the confounded scenario beside another fit, 400 x 2 draws ended at r-hat up to 1.063 and bulk ESS down to
    # 39 (1.053 / 44 after 600 tuning steps; a channel's saturation scale and curvature trade off), 1.017 / 136
    # alone.
    settings = FitSettings(method="nuts", draws=400, tune=600, chains=2, holdout_weeks=0, min_ess_bulk=30,
                           max_rhat=1.1)
    fitted = fit_panel(data, settings, lift_raw=lift_raw, store=tmp_path / "models", reports=tmp_path / "reports",
                       report=False)
    assert fitted.lift_tests == len(CHANNELS) and fitted.usable, fitted.diagnostics
    return truth, fitted, recovery_numbers(fitted, truth)


# The per-fit criteria, on this fixed seed: every ROAS within 15% of the truth and inside its 90% interval,
# every weather multiplier inside its 90% interval with the right sign where the truth is not 1. A calibrated
# model covers all 9 (or 6) intervals in only ~40% (~53%) of fits, so a failure after a model change calls for
# a look at coverage across seeds before anything else; the printed record gives the numbers. Also: no estimate
# implausibly far from the truth given its own posterior (mean +/- 3.1 sd, sd = (p95 - p05) / 3.29).
WIDE_Z = 3.1
ROAS_TOLERANCE = 0.15


def roas_tolerance(r: dict) -> float:
    """15% of the truth, or two posterior sds where the data leave the ROAS less precise than that: a calibrated
    posterior's mean lands more than 15% off in a sixth of fits once its sd reaches 10% (measured: the smallest
    channel, google_shopping, sd 10.6%, came out 15.0% off in one run of this seed and inside 15% in another)."""
    sd = (r["p95"] - r["p05"]) / 3.29
    return max(ROAS_TOLERANCE, 2 * sd / r["true"])


def _within_wide_band(r: dict) -> bool:
    sd = (r["p95"] - r["p05"]) / 3.29
    return abs(r["mean"] - r["true"]) <= WIDE_Z * sd


def _assert_recovered(rec: dict, with_roas: bool) -> None:
    items = list(rec["weather"].items()) + (list(rec["roas"].items()) if with_roas else [])
    for name, r in items:
        assert _within_wide_band(r), (name, r)
        assert r["covered"], (name, r)
    for (c, v), w in rec["weather"].items():
        if abs(np.log(w["true"])) > 1e-6:
            assert np.sign(np.log(w["mean"])) == np.sign(np.log(w["true"])), (c, v, w)
    if with_roas:
        for c, r in rec["roas"].items():
            assert r["rel_err"] < roas_tolerance(r), (c, r)


def _print_record(scenario: str, rec: dict) -> None:
    for c, r in rec["roas"].items():
        print(f"{scenario} ROAS {c}: true {r['true']:.2f} mean {r['mean']:.2f} [{r['p05']:.2f}, {r['p95']:.2f}] "
              f"error {r['rel_err']:.1%} covered {r['covered']}")
    for (c, v), w in rec["weather"].items():
        print(f"{scenario} multiplier {c} x {v}: true {w['true']:.3f} mean {w['mean']:.3f} "
              f"[{w['p05']:.3f}, {w['p95']:.3f}] covered {w['covered']}")


@pytest.mark.slow
def test_standard_scenario_recovers_roas_and_weather(tmp_path):
    truth, fitted, rec = _fit_simulated(tmp_path, "standard")
    _print_record("standard", rec)
    _assert_recovered(rec, with_roas=True)


@pytest.mark.slow
def test_promo_confounded_scenario_does_not_miscredit_weather(tmp_path):
    truth, fitted, rec = _fit_simulated(tmp_path, "promo_weather_confounded")
    _print_record("promo_weather_confounded", rec)
    # promotions in warm weeks must not inflate meta's heat effect: its multiplier stays near the truth and its
    # interval does not sit above it. (Whether this one 90% interval covers is a 1-in-10 coin on a single seed;
    # coverage is asserted over the six effects below and across worlds in bench/bench_robustness.py.)
    meta_heat = rec["weather"][("meta", "temperature_2m_mean")]
    assert meta_heat["p05"] <= meta_heat["true"], meta_heat
    assert abs(np.log(meta_heat["mean"]) - np.log(meta_heat["true"])) < 0.1, meta_heat
    # every weather effect: right sign, plausible given its posterior, and coverage consistent with 90%
    # (at most 2 misses of 6: P(>= 3) < 2% for a calibrated model)
    for name, w in rec["weather"].items():
        assert _within_wide_band(w), (name, w)
        if abs(np.log(w["true"])) > 1e-6:
            assert np.sign(np.log(w["mean"])) == np.sign(np.log(w["true"])), (name, w)
    assert sum(not w["covered"] for w in rec["weather"].values()) <= 2, rec["weather"]
