"""Scale-free estimation: the unit of spend or of revenue changes nothing but the unit of the answer."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from weathervane.mmm import prepare_model_data
from weathervane.mmm.model import (
    FitSettings, adstock_lags, build_mmm, data_warnings, fit_mmm, model_lags,
)
from weathervane.mmm.response import PosteriorResponse
from weathervane.mmm.synthetic import synthetic_panel


@pytest.fixture(scope="module")
def weekly():
    p = synthetic_panel(n_geos=2, period="week", days=364)
    return prepare_model_data(p.model_input, p.weather_daily, "week")


def rescaled(data, spend: float = 1.0, kpi: float = 1.0):
    return replace(data, spend=data.spend * spend, kpi=data.kpi * kpi)


def _logp_at_start(data) -> float:
    mmm = build_mmm(data, FitSettings())
    mmm.build_model(data.to_dataset())
    model = mmm.model
    return float(model.compile_logp()(model.initial_point()))


@pytest.mark.parametrize("spend,kpi", [(1e3, 1.0), (1e-3, 1.0), (1.0, 1e3), (1.0, 1e-3)])
def test_rescaled_units_give_the_same_posterior_density(weekly, spend, kpi):
    # The model scales KPI and spend per cell and sets its priors from the data's own KPI per spend, so the
    # posterior over its parameters is the same function whatever the units: the log density agrees.
    assert _logp_at_start(rescaled(weekly, spend, kpi)) == pytest.approx(_logp_at_start(weekly), rel=1e-9, abs=1e-6)


@pytest.mark.heavy
def test_roas_moves_with_the_unit_and_only_with_it(weekly):
    settings = FitSettings(method="map", holdout_weeks=0)

    def roas(data):
        fit = fit_mmm(data, settings)
        resp = PosteriorResponse.from_idata(fit.mmm.idata)
        contribution = resp.incremental_kpi(resp.observed_spend).sum(axis=(1, 3)).mean(axis=0)
        return contribution / resp.observed_spend.sum(axis=(0, 2)), fit.warnings

    base, base_warnings = roas(weekly)
    small, small_warnings = roas(rescaled(weekly, spend=1e-3))  # spend delivered in thousands
    assert base_warnings == [] and len(small_warnings) == 1 and "revenue per unit of paid spend" in small_warnings[0]
    np.testing.assert_allclose(small / base, 1e3, rtol=0.02)


def test_implausible_revenue_per_spend_is_named(weekly):
    assert data_warnings(weekly) == []
    for spend, kpi in [(1e3, 1.0), (1.0, 1e3), (1e-3, 1.0)]:
        (w,) = data_warnings(rescaled(weekly, spend, kpi))
        assert "outside the 1 to 200" in w


def test_adstock_length_defaults_by_period_and_follows_the_setting(weekly):
    assert adstock_lags("week") >= 8  # carry-over felt for 8+ weeks is not cut short
    assert model_lags("week", FitSettings()) == adstock_lags("week")
    assert model_lags("day", FitSettings()) == adstock_lags("day")
    assert build_mmm(weekly, FitSettings(adstock_max_lag=4)).adstock.l_max == 4
    assert build_mmm(weekly, FitSettings()).adstock.l_max == adstock_lags("week")
    with pytest.raises(ValueError, match="adstock_max_lag"):
        model_lags("week", FitSettings(adstock_max_lag=0))


def test_the_same_data_summed_in_another_order_gives_the_same_model_arrays():
    """Warehouse sums differ in the last bits with the order rows arrive in; the model's arrays (PyTensor keys its
    compiled kernels by them) must not."""
    from weathervane.mmm.data import settled

    p = synthetic_panel(n_geos=2, period="week", days=364)
    frame, weather = p.model_input.copy(), p.weather_daily.copy()
    jittered = frame.copy()
    jittered["kpi"] = np.nextafter(jittered["kpi"].to_numpy(float), np.inf)  # one ulp up, as a re-summed total
    jittered["spend_meta"] = np.nextafter(jittered["spend_meta"].to_numpy(float), -np.inf)
    w2 = weather.copy()
    w2["temperature_2m_mean"] = w2["temperature_2m_mean"].to_numpy(float) * (1 + 1e-13)
    a = prepare_model_data(frame, weather, "week")
    b = prepare_model_data(jittered.sample(frac=1.0, random_state=0), w2.sample(frac=1.0, random_state=1), "week")
    assert np.array_equal(a.kpi, b.kpi) and np.array_equal(a.spend, b.spend)
    assert np.array_equal(a.weather_z, b.weather_z) and a.weather_stats == b.weather_stats
    assert all(np.array_equal(a.controls[k], b.controls[k]) for k in a.controls)
    # settling changes a value by at most half a unit in its ninth significant digit
    raw = frame["kpi"].to_numpy(float)
    assert np.all(np.abs(settled(raw) - raw) <= 5e-9 * np.abs(raw))
    assert settled(np.array([0.0, -123456.7891234, np.nan]))[1] == -123456.789
