"""The weather-aware MMM: input preparation, lift tests, response API, gating, warehouse rows, Dagster asset."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from weathervane.mmm import (
    STATUS_FAILED,
    STATUS_OK,
    FitSettings,
    LiftTestError,
    ModelInputError,
    PosteriorResponse,
    duckdb_connect,
    fit_tenant,
    latest_usable_model,
    lift_measurements,
    prepare_model_data,
)
from weathervane.mmm.store import TABLES
from weathervane.mmm.synthetic import synthetic_panel

TENANT = "mmmtest"


@pytest.fixture(scope="module")
def panel():
    # 62 weeks x 2 geos: long enough for yearly seasonality and an 8-week holdout, small enough to fit quickly
    return synthetic_panel(TENANT, days=434, n_geos=2, seed=1)


@pytest.fixture(scope="module")
def tiny_panel():
    return synthetic_panel(TENANT, days=182, n_geos=1, seed=2)


def _load_warehouse(path, panel, lift_csv_rows=()):
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA IF NOT EXISTS marts; CREATE SCHEMA IF NOT EXISTS raw")
    mi, wd = panel.model_input, panel.weather_daily
    con.register("mi", mi)
    con.register("wd", wd)
    con.execute("CREATE OR REPLACE TABLE marts.fct_model_input AS SELECT * REPLACE (CAST(date AS DATE) AS date) FROM mi")
    con.execute("CREATE OR REPLACE TABLE marts.fct_weather_daily AS SELECT * REPLACE (CAST(date AS DATE) AS date) FROM wd")
    con.execute("CREATE TABLE IF NOT EXISTS raw.experiments__lift_tests (tenant_id VARCHAR, file_path VARCHAR, "
                "file_hash VARCHAR, source_line INTEGER, loaded_at TIMESTAMP, geo_id VARCHAR, record JSON)")
    for i, rec in enumerate(lift_csv_rows, start=2):
        con.execute("INSERT INTO raw.experiments__lift_tests VALUES (?, 'experiments/lift_tests/q1.csv', 'h', ?, "
                    "now(), NULL, ?)", [TENANT, i, pd.Series(rec).to_json()])
    con.close()


def _lift_of_test(resp, rows, g, c):
    """(added spend as the adstock carries it into each week of the window, the lift per week before weather) of
    a test's per-period rows, from the first draw of `resp`: the model's lift likelihood written out by hand. The
    added spend reaches week k through normalised geometric weights; what lands after the window is not in the
    test's measurement."""
    a, n, cs = resp.alpha[0, c], resp.l_max, resp.channel_scale[g, c]
    w = a ** np.arange(n) / (a ** np.arange(n)).sum()
    dx = rows["delta_x"].to_numpy()
    carried = np.array([sum(w[k - j] * dx[j] for j in range(k + 1) if k - j < n) for k in range(len(dx))])

    def sat(x):
        return (1 - np.exp(-resp.lam[0, c] * x / cs)) / (1 + np.exp(-resp.lam[0, c] * x / cs))

    return carried, resp.beta[0, g, c] * (sat(rows["x"].to_numpy() + carried) - sat(rows["x"].to_numpy()))


def test_weekly_weather_z_is_the_mean_of_daily_z_in_daily_sd_units(panel):
    data = prepare_model_data(panel.model_input, panel.weather_daily)
    assert data.period == "week" and data.channels == ["meta", "google_search", "google_shopping"]
    geo = data.cells[1]
    daily = panel.weather_daily[panel.weather_daily["geo_id"] == geo].copy()
    daily["date"] = pd.to_datetime(daily["date"])
    t = daily["temperature_2m_mean"]
    z = (t - t.mean()) / t.std(ddof=1)  # sample sd, as dbt and weathervane.transforms
    week = 5
    days = (daily["date"] >= data.dates[week]) & (daily["date"] < data.dates[week] + pd.Timedelta(days=7))
    assert data.weather_z[week, 1, 0] == pytest.approx(z[days].mean(), abs=1e-6)  # z is settled to 6 decimals
    # weekly means of daily z vary less than daily z: the sd is not re-standardised to 1
    assert 0.3 < data.weather_z[:, 1, 0].std() < 1.0


def test_bad_model_input_names_row_and_column(panel):
    frame = panel.model_input.copy()
    frame.loc[7, "spend_meta"] = -5.0
    with pytest.raises(ModelInputError, match=r"fct_model_input row \(date=.*geo_id=US-.*\), column spend_meta"):
        prepare_model_data(frame)
    frame = panel.model_input.drop(index=3)
    with pytest.raises(ModelInputError, match="column kpi: period missing"):
        prepare_model_data(frame)


def test_lift_tests_become_per_period_measurements(panel):
    data = prepare_model_data(panel.model_input, panel.weather_daily)
    geo = data.cells[0]
    raw = pd.DataFrame([
        ("experiments/lift_tests/q1.csv", 2, {"channel": "meta", "geo_id": geo, "start_date": "2023-03-06",
                                              "end_date": "2023-04-02", "spend_delta": "400", "kpi_delta": "900",
                                              "kpi_delta_sd": "200"}),
        ("experiments/lift_tests/q1.csv", 3, {"channel": "google_search", "geo_id": "", "start_date": "2023-03-06",
                                              "end_date": "2023-04-02", "spend_delta": "300", "kpi_delta": "600",
                                              "kpi_delta_sd": "100"}),
    ], columns=["file_path", "source_line", "record"])
    m = lift_measurements(raw, data)
    one = m[m["channel"] == "meta"].iloc[0]
    assert one["geo"] == geo and one["delta_x"] == pytest.approx(100.0) and one["delta_y"] == pytest.approx(225.0)
    national = m[m["channel"] == "google_search"]
    assert len(national) == len(data.cells)  # split over cells by spend share
    assert national["delta_x"].sum() == pytest.approx(75.0) and national["delta_y"].sum() == pytest.approx(150.0)
    # x is the spend before the test: the window's spend less what the test added
    window = (data.dates >= "2023-03-06") & (data.dates <= "2023-04-02")
    spent = data.spend[window, 0, data.channels.index("meta")].sum()
    assert one["x"] == pytest.approx((spent - 400.0) / window.sum())

    # per period: one row per period of the window; the added spend follows each period's spend and the rows
    # of a test add up to the test (the model observes their sum against kpi_delta with sd kpi_delta_sd)
    rows = lift_measurements(raw, data, per_period=True)
    meta = rows[rows["channel"] == "meta"]
    assert len(meta) == window.sum() and meta["test"].nunique() == 1
    assert list(pd.to_datetime(meta["date"])) == list(data.dates[window])
    assert meta["delta_x"].sum() == pytest.approx(400.0) and meta["delta_y"].sum() == pytest.approx(900.0)
    assert (meta["x"] + meta["delta_x"]).to_numpy() == pytest.approx(data.spend[window, 0, data.channels.index("meta")])
    assert meta["sigma"].unique() == pytest.approx([200.0])
    national = rows[rows["channel"] == "google_search"]
    assert national["test"].nunique() == len(data.cells) and national["delta_x"].sum() == pytest.approx(300.0)

    raw["record"] = [raw["record"][0], {**raw["record"][1], "kpi_delta": "lots"}]
    with pytest.raises(LiftTestError, match="q1.csv line 3, field kpi_delta"):
        lift_measurements(raw, data)


@pytest.mark.heavy
def test_map_fit_through_dagster_writes_contract_rows_report_and_consistent_response(wv_env, panel):
    from dagster import DagsterInstance, materialize

    from dagster_project.defs.mmm import DIAGNOSTICS_CHECK, HOLDOUT_CHECK, weather_mmm
    from dagster_project.resources import WeathervaneResource

    lift = {"channel": "meta", "geo_id": "US-CA", "start_date": "2023-06-05", "end_date": "2023-07-02",
            "spend_delta": "500", "kpi_delta": "800", "kpi_delta_sd": "150"}
    _load_warehouse(wv_env["warehouse"], panel, [lift])
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenants", [TENANT])
    result = materialize(
        [weather_mmm], partition_key=TENANT, instance=instance, resources={"weathervane": WeathervaneResource()},
        run_config={"ops": {"mmm__weather_mmm": {"config": {"method": "map", "holdout_weeks": 8, "period": "week"}}}},
    )
    assert result.success
    mat = result.asset_materializations_for_node("mmm__weather_mmm")[0]
    model_id = mat.metadata["model_id"].value
    assert mat.metadata["lift_tests"].value == 1
    checks = result.get_asset_check_evaluations()
    assert {c.check_name: c.passed for c in checks} == {DIAGNOSTICS_CHECK: True, HOLDOUT_CHECK: True}
    assert "rung 1 of the ladder" in mat.metadata["decision"].value

    con = duckdb.connect(str(wv_env["warehouse"]), read_only=True)
    for table, cols in TABLES.items():
        got = [r[0] for r in con.execute(f"DESCRIBE mmm.{table}").fetchall()]
        assert got == [c for c, _ in cols]
        assert con.execute(f"SELECT count(*) FROM mmm.{table} WHERE model_id = ?", [model_id]).fetchone()[0] > 0
    row = con.execute("SELECT status, sampler, holdout_mape, n_obs FROM mmm.models WHERE model_id = ?",
                      [model_id]).fetchone()
    n_weeks, n_geos = 62, 2
    assert row[0] == STATUS_OK and row[1] == "map" and 0 < row[2] < 0.5 and row[3] == n_weeks * n_geos
    overall = con.execute("SELECT channel, spend, contribution_mean, roas_mean, mroas_mean FROM mmm.channel_summary "
                          "WHERE model_id = ? AND geo_id IS NULL ORDER BY channel", [model_id]).df()
    per_geo = con.execute("SELECT channel, sum(spend) s, sum(contribution_mean) c FROM mmm.channel_summary "
                          "WHERE model_id = ? AND geo_id IS NOT NULL GROUP BY channel ORDER BY channel",
                          [model_id]).df()
    curves = con.execute("SELECT channel, spend, contribution_mean FROM mmm.response_curves WHERE model_id = ? "
                         "ORDER BY channel, spend", [model_id]).df()
    record = latest_usable_model(con, TENANT)
    con.close()
    assert record.model_id == model_id
    np.testing.assert_allclose(overall["spend"], per_geo["s"], rtol=1e-9)
    np.testing.assert_allclose(overall["contribution_mean"], per_geo["c"], rtol=1e-6)
    # saturation: the marginal return is below the average return, and curves rise and flatten
    assert (overall["mroas_mean"] < overall["roas_mean"]).all()
    for _, g in curves.groupby("channel"):
        steps = np.diff(g["contribution_mean"].to_numpy())
        assert (steps > 0).all() and steps[-1] < steps[0]
        assert g["contribution_mean"].iloc[0] == 0.0
    # the curve point at today's spend is the channel's contribution
    at_one = curves.groupby("channel").apply(lambda g: g.iloc[10]["contribution_mean"], include_groups=False)
    np.testing.assert_allclose(at_one.sort_index(), overall.set_index("channel")["contribution_mean"].sort_index(),
                               rtol=1e-6)

    # the response API reproduces the model's own weather-modulated contribution from the saved NetCDF
    resp = PosteriorResponse.from_model_id(model_id, TENANT, store=wv_env["model_store"])
    import xarray as xr

    tree = xr.open_datatree(next(wv_env["model_store"].glob(f"*/{model_id}.nc")))
    # the lean file keeps the model's media contribution summed over channels (weathervane.mmm.artefact)
    assert "weather_channel_contribution" not in tree["posterior"]
    modeled = (tree["posterior"]["media_contribution"] * tree["constant_data"]["target_scale"])
    modeled = modeled.stack(s=("chain", "draw")).transpose("s", "date", "geo").values
    lift_model = tree["posterior"]["lift_measurements_model_estimated_lift"].values.ravel()
    tree.close()
    # the lift test's model lift: each week of its window at that week's spend and weather, summed
    data = prepare_model_data(panel.model_input, panel.weather_daily, "week")
    rows = lift_measurements(pd.DataFrame([("experiments/lift_tests/q1.csv", 2, lift)],
                                          columns=["file_path", "source_line", "record"]), data, per_period=True)
    g, c = resp.geos.index("US-CA"), resp.channels.index("meta")
    t = data.dates.get_indexer(pd.to_datetime(rows["date"]))
    weather = np.exp(data.weather_z[t, g] @ resp.gamma[0, c])
    carried, per_week = _lift_of_test(resp, rows, g, c)
    assert carried.sum() < rows["delta_x"].sum()  # some of it lands after the window
    expected = (per_week * weather).sum()
    assert len(rows) == 4 and lift_model == pytest.approx([expected], rel=1e-6)
    ours = resp.incremental_kpi(resp.observed_spend, resp.observed_z)
    np.testing.assert_allclose(ours.sum(axis=2), modeled, rtol=1e-5, atol=1e-3)
    # history rows carry over into the plan and are dropped from the result
    hist = resp.recent_spend()
    plan = np.repeat(resp.observed_spend.mean(axis=0, keepdims=True), 4, axis=0)
    with_hist = resp.incremental_kpi(np.concatenate([hist, plan]), n_history=len(hist))
    cold = resp.incremental_kpi(plan)
    assert with_hist.shape == cold.shape == (resp.n_draws, 4, 3, n_geos)
    assert (with_hist[:, 0] > cold[:, 0]).all()
    # heat raises meta's effect when gamma > 0
    z = np.zeros((4, n_geos, 2))
    z[:, :, 0] = 1.0
    warm = resp.incremental_kpi(plan, z)
    ratio = warm[:, :, 0] / cold[:, :, 0]
    np.testing.assert_allclose(ratio, np.broadcast_to(np.exp(resp.gamma[:, 0, 0])[:, None, None], ratio.shape), rtol=1e-9)

    # PyMC-Marketing's own loader rebuilds the weather-aware model from the NetCDF
    from pymc_marketing.mmm import MMM

    loaded = MMM.load(str(next(wv_env["model_store"].glob(f"*/{model_id}.nc"))))
    assert "WeatherModulation" in [type(e).__name__ for e in loaded.mu_effects]
    np.testing.assert_allclose(loaded.model["weather_z"].get_value(),
                               loaded.idata.constant_data["weather_z"].transpose("date", "geo", "weather").values)

    report = wv_env["reports"] / TENANT / f"{model_id}.html"
    assert report.exists() and report.read_text().count("data:image/png;base64,") == 4
    assert mat.metadata["report"].value.endswith(f"/{TENANT}/{model_id}.html")


@pytest.mark.heavy
def test_failed_diagnostics_are_recorded_and_skipped(wv_env, tiny_panel):
    _load_warehouse(wv_env["warehouse"], tiny_panel)
    connect = duckdb_connect(wv_env["warehouse"])
    paths = dict(store=wv_env["model_store"], reports=wv_env["reports"])
    ok = fit_tenant(connect, TENANT, FitSettings(method="map", holdout_weeks=0), **paths)
    # a short NUTS run cannot reach an absurd ESS threshold: it must be kept, but marked failed. PyMC's own NUTS
    # reuses the C the MAP fit compiled, so this tiny run starts in seconds.
    # It is refitted once (same length here, to stay quick) before being stored as failed, and says so plainly.
    strict = FitSettings(method="nuts", nuts_sampler="pymc", draws=30, tune=30, chains=2, holdout_weeks=0,
                         min_ess_bulk=1e9, retry_scale=1.0)
    failed = fit_tenant(connect, TENANT, strict, **paths)
    assert ok.status == STATUS_OK and failed.status == STATUS_FAILED
    assert failed.diagnostics["min_ess_bulk"] < 1e9 and failed.path.exists()
    assert [a["draws"] for a in failed.attempts] == [30, 30] and failed.diagnostics["attempts"] == 2
    assert "failed its diagnostics after 2 tries" in failed.message and "last usable model" in failed.message
    with connect(True) as con:
        statuses = dict(con.execute("SELECT model_id, status FROM mmm.models").fetchall())
        assert statuses == {ok.model_id: STATUS_OK, failed.model_id: STATUS_FAILED}
        assert con.execute("SELECT sampler FROM mmm.models WHERE model_id = ?", [failed.model_id]).fetchone() == ("pymc",)
        assert latest_usable_model(con, TENANT).model_id == ok.model_id
        assert latest_usable_model(con, "someone-else") is None


def test_the_fit_starts_from_the_built_grain_the_spec_can_be_coarsened_from(tmp_path):
    from weathervane.grain import built_grains
    from weathervane.mmm.pipeline import _finest_built
    from weathervane.spec import ModelSpec

    spec = ModelSpec(TENANT, grain_product="all", grain_geo="region")
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    assert _finest_built(built_grains(con, TENANT), spec) == ("all", "region")  # nothing built yet: the spec's
    con.execute("CREATE SCHEMA marts; CREATE TABLE marts.fct_model_input (tenant_id VARCHAR, grain_product VARCHAR, "
                "grain_geo VARCHAR)")
    con.execute("INSERT INTO marts.fct_model_input VALUES (?, 'category', 'region'), ('other', 'all', 'region')",
                [TENANT])
    # harmonize built a finer grain (a one-off run): the fit coarsens it rather than finding no rows
    assert _finest_built(built_grains(con, TENANT), spec) == ("category", "region")
    con.execute("DELETE FROM marts.fct_model_input WHERE tenant_id = ?", [TENANT])
    con.execute("INSERT INTO marts.fct_model_input VALUES (?, 'all', 'country')", [TENANT])
    with pytest.raises(ModelInputError, match="materialize the harmonize step again"):
        _finest_built(built_grains(con, TENANT), spec)  # coarser than the spec: it cannot be refined
    con.close()


def test_identifiability_flags_channels_the_data_cannot_pin_down():
    from weathervane.mmm.summaries import identifiability

    rng = np.random.default_rng(0)
    prior = np.exp(rng.normal(np.log(1.5), 1.0, 400))
    t = np.arange(60)
    demand = 100 + 40 * np.sin(2 * np.pi * t / 52)
    flighted = np.where((t // 6) % 2 == 0, 10.0, 1.0) * rng.lognormal(0, 0.1, 60)
    learnt = np.exp(rng.normal(np.log(2.0), 0.1, 400))  # posterior log sd 0.1 vs the prior's 1.0
    ok = identifiability(learnt, prior, flighted, demand, has_lift_test=False)
    assert ok["roas_contraction"] == pytest.approx(0.99, abs=0.01) and not ok["needs_experiment"]
    assert ok["roas_prior_sd"] > ok["roas_posterior_sd"] > 0 and ok["spend_cv"] > 0.5
    # the posterior is still nearly the prior: flagged
    vague = identifiability(np.exp(rng.normal(np.log(1.5), 0.8, 400)), prior, flighted, demand, False)
    assert vague["roas_contraction"] < 0.5 and vague["needs_experiment"]
    # contracted, but still uncertain by more than a factor of 4 across its 90% interval: flagged
    wide = identifiability(np.exp(rng.normal(np.log(1.5), 0.5, 400)), prior, flighted, demand, False)
    assert wide["roas_contraction"] > 0.5 and wide["needs_experiment"]
    # spend paced by demand: flagged unless a lift test covers the channel
    paced = demand ** 0.7 * rng.lognormal(0, 0.02, 60)
    assert identifiability(learnt, prior, paced, demand, False)["spend_baseline_corr"] > 0.9
    assert identifiability(learnt, prior, paced, demand, False)["needs_experiment"]
    assert not identifiability(learnt, prior, paced, demand, True)["needs_experiment"]
    # spend that never moves, and a MAP point (one draw: no spread to judge)
    assert identifiability(learnt, prior, np.full(60, 5.0) * rng.lognormal(0, 0.01, 60), demand, True)["needs_experiment"]
    point = identifiability(learnt[:1], prior, flighted, demand, False)
    assert np.isnan(point["roas_contraction"]) and not point["needs_experiment"]


@pytest.mark.heavy
def test_a_model_without_weather_terms_reads_lift_tests_through_the_adstock(panel, tmp_path):
    """The plain model takes the same lift likelihood as the weather model, with a weather factor of 1."""
    import xarray as xr

    from weathervane.mmm import fit_panel

    data = prepare_model_data(panel.model_input, panel.weather_daily, "week")
    lift = {"channel": "meta", "geo_id": "US-CA", "start_date": "2023-06-05", "end_date": "2023-07-02",
            "spend_delta": "500", "kpi_delta": "800", "kpi_delta_sd": "150"}
    raw = pd.DataFrame([("experiments/lift_tests/q1.csv", 2, lift)], columns=["file_path", "source_line", "record"])
    fitted = fit_panel(data, FitSettings(method="map", holdout_weeks=0, weather=False), lift_raw=raw,
                       store=tmp_path, reports=None)
    assert fitted.lift_tests == 1
    resp = PosteriorResponse.from_model_id(fitted.model_id, TENANT, store=tmp_path)
    tree = xr.open_datatree(fitted.path)
    lift_model = tree["posterior"]["lift_measurements_model_estimated_lift"].values.ravel()
    tree.close()
    rows = lift_measurements(raw, data, per_period=True)
    g, c = resp.geos.index("US-CA"), resp.channels.index("meta")
    expected = _lift_of_test(resp, rows, g, c)[1].sum()
    assert not resp.weather_vars or np.allclose(resp.gamma, 0)
    assert lift_model == pytest.approx([expected], rel=1e-6)


@pytest.mark.heavy
def test_sampling_progress_reaches_the_event_log_callback(tiny_panel, tmp_path):
    """The fit step reports share done, draws per second and time left while nutpie samples."""
    from weathervane.mmm import fit_panel

    data = prepare_model_data(tiny_panel.model_input, tiny_panel.weather_daily, "week")
    seen = []
    settings = FitSettings(draws=40, tune=40, chains=2, holdout_weeks=0, retries=0)
    # no reports folder: the fit writes its rows and model and no page (a caller that wants numbers only)
    fitted = fit_panel(data, settings, store=tmp_path, reports=None, progress=seen.append)
    assert fitted.report_path is None and fitted.path.exists() and len(fitted.frames["channel_summary"])
    assert seen, "no progress was reported"
    last = seen[-1]
    assert last.done == last.total == 2 * (40 + 40) and last.share == 1.0
    assert "100% of 160 draws" in last.describe() and "draws/s" in last.describe()
    import pymc.sampling.mcmc as mcmc

    assert mcmc.NutpieProgressBarManager.__name__ == "NutpieProgressBarManager"  # restored after the fit
