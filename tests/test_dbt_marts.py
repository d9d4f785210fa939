"""The dbt harmonization layer on real DuckDB files: a small simulated tenant, the acme example, grains,
tenant isolation and the aggregated input path."""
from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from dbt.cli.main import dbtRunner

from weathervane import config, warehouse
from weathervane.spec import apply_overrides, dbt_vars, default_spec
from weathervane.landing import ingest_tenant
from weathervane.periods import period_length, period_start, period_sums
from weathervane.transforms import standardise_weather, weather_moments
from weathervane.simulate import simulate_tenant

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_DIR = REPO_ROOT / "dbt"
from tests.conftest import ACME_EXAMPLE as ACME  # noqa: E402
SIM = "sim"
MARTS = ["fct_sales_daily", "fct_ad_spend_daily", "dim_promotion", "fct_promo_daily", "fct_weather_daily",
         "fct_weather_forecast_daily", "fct_model_input"]
# The models whose rows depend on the grain (the harmonize_model_input step): enough to rebuild when only the
# grain changes.
GRAIN_MODELS = "tag:grain+"
NATIONAL_SPEND = {"2024-03-04": 500.0, "2024-03-05": 300.0}  # Google search spend with no geo breakdown


class Env:
    def __init__(self, root: Path):
        self.root = root
        self.landing = root / "landing"
        self.warehouse = root / "warehouse.duckdb"
        self.target = root / "dbt_target"

    def ingest(self, tenant: str) -> None:
        con = warehouse.connect(self.warehouse)
        try:
            warehouse.ensure_schemas(con)
            report = ingest_tenant(con, self.landing, tenant)
        finally:
            con.close()
        assert not [q for s in report.streams for q in s.quarantined], report

    def dbt(self, tenant: str, command: str = "build", select: str | None = None, product: str | None = None,
            geo: str | None = None) -> None:
        cfg = config.load_tenant_config(self.landing, tenant)
        spec = apply_overrides(default_spec(tenant, cfg), {"grain_product": product, "grain_geo": geo})
        variables = dbt_vars(tenant, cfg, spec)
        args = [command, "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
                "--target-path", str(self.target), "--log-path", str(self.root / "dbt_logs"),
                "--vars", json.dumps(variables), "--quiet"]
        if select:
            args += ["--select", *select.split()]
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WEATHERVANE_WAREHOUSE", str(self.warehouse))
            result = dbtRunner().invoke(args)
        failed = [f"{r.node.name}: {r.message}" for r in (result.result or []) if r.status in ("error", "fail")]
        assert result.success, failed or result.exception

    def query(self, sql: str, params=None):
        con = duckdb.connect(str(self.warehouse))  # same configuration as dbt-duckdb's open handle
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def df(self, sql: str, params=None):
        con = duckdb.connect(str(self.warehouse))  # same configuration as dbt-duckdb's open handle
        try:
            return con.execute(sql, params or []).df()
        finally:
            con.close()


def _add_national_google_spend(tenant_dir: Path) -> None:
    lines = [json.dumps({
        "segments.date": d, "campaign.id": "99000000001", "campaign.name": "Search - National",
        "campaign.advertising_channel_type": "SEARCH", "segments.geo_target_region": "geoTargetConstants/2840",
        "metrics.cost_micros": str(int(spend * 1_000_000)), "metrics.impressions": "1000", "metrics.clicks": "50",
        "metrics.conversions": 1.0, "metrics.conversions_value": 80.0,
    }) for d, spend in NATIONAL_SPEND.items()]
    (tenant_dir / "google_ads" / "campaign_geo" / "national.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    e = Env(tmp_path_factory.mktemp("dbt"))
    e.landing.mkdir()
    truth = simulate_tenant(SIM, e.landing, days=120, n_geos=3, seed=3, grain=("category", "region"))
    _add_national_google_spend(e.landing / SIM)
    shutil.copytree(ACME, e.landing / "acme")
    e.truth = truth
    e.ingest(SIM)
    e.dbt(SIM)  # tenant.yaml grain: category x region
    return e


def _tenant_rows_digest(e: Env, tenant: str, columns: dict[str, list[str]]) -> dict[str, str]:
    out = {}
    for table, cols in columns.items():
        rows = e.query(f"select {', '.join(cols)} from marts.{table} where tenant_id = ? order by all", [tenant])
        out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def _columns(e: Env, table: str) -> list[str]:
    return [r[0] for r in e.query(
        "select column_name from information_schema.columns where table_schema = 'marts' and table_name = ? "
        "order by ordinal_position", [table])]


def test_net_revenue_reconciles_with_the_simulated_orders(env):
    t = env.truth.orders
    units, gross, disc, net = env.query(
        "select sum(units), sum(gross_revenue), sum(discount_amount), sum(net_revenue) "
        "from marts.fct_sales_daily where tenant_id = ?", [SIM])[0]
    # test and cancelled orders are flagged in staging and are not sales
    assert env.query("select count(*), count(*) filter (where is_sale), count(*) filter (where is_test), "
                     "count(*) filter (where is_cancelled) from staging.stg_shopify__orders where tenant_id = ?",
                     [SIM]) == [(t.written, t.valid, t.test, t.cancelled)]
    assert units == t.units_valid
    assert gross == pytest.approx(t.gross_revenue_valid, abs=0.01)
    assert disc == pytest.approx(t.discounts_valid, abs=0.01)
    assert net == pytest.approx(t.net_revenue_valid, abs=0.01)
    by_category = dict(env.query(
        "select product_key, sum(net_revenue) from marts.fct_sales_daily where tenant_id = ? group by 1", [SIM]))
    assert by_category == pytest.approx(t.net_revenue_by_category, abs=0.01)
    by_geo = dict(env.query(
        "select geo_id, sum(net_revenue) from marts.fct_sales_daily where tenant_id = ? group by 1", [SIM]))
    assert by_geo == pytest.approx({g.geo_id: g.net_revenue_valid_orders for g in env.truth.geos}, abs=0.01)


def test_spend_per_channel_geo_and_day_is_what_the_platforms_reported(env):
    rows = env.query(
        "select channel, geo_id, date, sum(spend) from marts.fct_ad_spend_daily "
        "where tenant_id = ? and geo_id <> 'US' group by all", [SIM])
    got = {(c, g, d.isoformat()): s for c, g, d, s in rows}
    dates = env.truth.daily.dates
    expected = {(c, g, dates[i]): s for c, by_geo in env.truth.daily.spend.items()
                for g, series in by_geo.items() for i, s in enumerate(series) if s > 0}
    assert set(got) == set(expected)
    for key, spend in expected.items():
        assert got[key] == pytest.approx(spend, abs=0.005), key
    national = dict((d.isoformat(), s) for d, s in env.query(
        "select date, sum(spend) from marts.fct_ad_spend_daily where tenant_id = ? and geo_id = 'US' "
        "and channel = 'google_search' group by 1", [SIM]))
    assert national == pytest.approx(NATIONAL_SPEND)


def test_national_spend_is_allocated_to_regions_and_flagged(env):
    rows = env.df(
        "select date, geo_id, sum(spend_google_search) as spend, max(spend_allocated_share) as share "
        "from marts.fct_model_input where tenant_id = ? and period = 'day' group by all", [SIM])
    rows["date"] = rows["date"].dt.strftime("%Y-%m-%d")
    dates = env.truth.daily.dates
    reported = {d: sum(env.truth.daily.spend["google_search"][g][dates.index(d)] for g in env.truth.daily.spend["google_search"])
                for d in NATIONAL_SPEND}
    for d, national in NATIONAL_SPEND.items():
        day = rows[rows["date"] == d]
        assert day["spend"].sum() == pytest.approx(reported[d] + national, abs=0.01)
        assert (day["share"] > 0).all() and (day["share"] < 1).all()
    other = rows[~rows["date"].isin(list(NATIONAL_SPEND))]
    assert (other["share"] == 0).all()
    total = env.query("select sum(spend_meta) from marts.fct_model_input where tenant_id = ? and period = 'day'",
                      [SIM])[0][0]
    assert total == pytest.approx(env.truth.channels["meta"].spend, abs=0.05)


def test_every_simulated_promotion_is_in_dim_promotion(env):
    promos = env.df("select * from marts.dim_promotion where tenant_id = ?", [SIM])
    last_day = env.truth.end_date
    offers = [p for p in env.truth.promotions if p.depth_pct > 0]
    assert {p.source for p in offers} >= {"shopify_price_rule", "shopify_automatic", "shopify_compare_at",
                                          "klaviyo_campaign"}
    for p in offers:
        match = promos[(promos["source"] == p.source)
                       & (promos["start_date"].dt.strftime("%Y-%m-%d") == p.start_date)]
        assert len(match) == 1, (p, promos[promos["source"] == p.source])
        row = match.iloc[0]
        assert row["depth_pct"] == pytest.approx(p.depth_pct), p
        end = None if row["end_date"] is None or str(row["end_date"]) == "NaT" else row["end_date"].strftime("%Y-%m-%d")
        # a markdown still running at the last delivered product version is open-ended
        assert end == p.end_date or (end is None and p.end_date == last_day), (p, end)
        assert row["scope"] == p.scope or p.source == "klaviyo_campaign", (p, row["scope"])
        assert row["detection_method"]
    newsletters = [p for p in env.truth.promotions if p.depth_pct == 0]
    assert newsletters
    ids = set(promos["promotion_id"])
    assert not {p.promotion_id for p in newsletters} & ids  # lifecycle sends are a control, not promotions
    send_days = {d.isoformat() for (d,) in env.query(
        "select distinct date from marts.fct_promo_daily where tenant_id = ? and lifecycle_sends > 0", [SIM])}
    assert send_days == {p.start_date for p in newsletters}


def test_promo_controls_follow_the_promotions(env):
    code = next(p for p in env.truth.promotions if p.source == "shopify_price_rule")
    rows = env.df("select date, max(promo_active) as active, max(promo_depth_pct) as depth, "
                  "max(realized_discount_rate) as realized from marts.fct_promo_daily "
                  "where tenant_id = ? group by 1 order by 1", [SIM])
    rows["date"] = rows["date"].dt.strftime("%Y-%m-%d")
    inside = rows[(rows["date"] >= code.start_date) & (rows["date"] <= code.end_date)]
    assert (inside["active"] == 1).all() and (inside["depth"] >= code.depth_pct).all()
    assert (inside["realized"] > 0).any()
    quiet_day = (date.fromisoformat(code.start_date) - timedelta(days=2)).isoformat()
    assert rows.loc[rows["date"] == quiet_day, "active"].item() == 0  # promotions are 3 quiet days apart


def test_model_input_columns_and_weekly_rows(env):
    cols = _columns(env, "fct_model_input")
    for c in ["tenant_id", "grain_product", "grain_geo", "period", "product_key", "geo_id", "date", "kpi",
              "promo_active", "promo_depth_pct", "realized_discount_rate", "lifecycle_sends",
              "temperature_2m_mean", "temperature_2m_max", "precipitation_sum", "temperature_anomaly",
              "precipitation_anomaly", "is_holiday", "day_of_week", "spend_allocated_share"]:
        assert c in cols
    assert {f"spend_{c}" for c in env.truth.channels} <= set(cols)
    grain = env.query("select distinct grain_product, grain_geo from marts.fct_model_input where tenant_id = ?",
                      [SIM])
    assert grain == [("category", "region")]  # tenant.yaml
    weeks = env.df("select * from marts.fct_model_input where tenant_id = ? and period = 'week'", [SIM])
    assert (weeks["date"].dt.day_of_week == 0).all()  # Monday
    daily_in_weeks = env.query(
        "select sum(kpi) from marts.fct_model_input where tenant_id = ? and period = 'day' "
        "and date_trunc('week', date) in (select date from marts.fct_model_input where tenant_id = ? and period = 'week')",
        [SIM, SIM])[0][0]
    assert weeks["kpi"].sum() == pytest.approx(daily_in_weeks)
    # the Python period rules agree with dbt's weeks: the same week starts, and seven-day sums from a Monday
    # (the plan's blocks) are the weekly rows
    cell = "product_key = 'Apparel' and geo_id = 'US-CA'"
    days = env.df(f"select date, kpi, spend_meta from marts.fct_model_input where tenant_id = ? and period = 'day' "
                  f"and {cell} order by date", [SIM])
    cell_weeks = env.df(f"select date, kpi, spend_meta from marts.fct_model_input where tenant_id = ? "
                        f"and period = 'week' and {cell} order by date", [SIM])
    starts = period_start(days["date"], "week").value_counts()
    assert set(cell_weeks["date"]) == set(starts[starts == period_length("week")].index)  # whole weeks only
    first = days.index[days["date"] == cell_weeks["date"].iloc[0]][0]
    block = days[["kpi", "spend_meta"]].to_numpy()[first:first + 7 * len(cell_weeks)]
    assert period_sums(block, period_length("week")) == pytest.approx(cell_weeks[["kpi", "spend_meta"]].to_numpy())
    holidays = env.df("select date, is_holiday, day_of_week from marts.fct_model_input "
                      "where tenant_id = ? and period = 'day' and product_key = 'Apparel' and geo_id = 'US-CA'", [SIM])
    assert set(holidays.loc[holidays["is_holiday"] == 1, "date"].dt.strftime("%m-%d")) >= {"01-01", "01-15", "02-19"}
    assert (holidays["day_of_week"] == holidays["date"].dt.day_of_week + 1).all()
    z = env.truth.daily.z["temperature_2m_mean"]["US-CA"]
    anomalies = env.df("select date, temperature_anomaly from marts.fct_weather_daily where tenant_id = ? "
                       "and geo_id = 'US-CA' order by date", [SIM])
    first = env.truth.daily.dates.index(anomalies["date"].iloc[0].strftime("%Y-%m-%d"))
    assert anomalies["temperature_anomaly"].iloc[:30].to_numpy() == pytest.approx(z[first:first + 30], abs=0.02)
    # the model's own standardisation (weathervane.transforms) gives the marts' anomalies exactly
    daily = env.df("select temperature_2m_mean, precipitation_sum, temperature_anomaly, precipitation_anomaly "
                   "from marts.fct_weather_daily where tenant_id = ? and geo_id = 'US-CA' order by date", [SIM])
    for var, anomaly in (("temperature_2m_mean", "temperature_anomaly"), ("precipitation_sum", "precipitation_anomaly")):
        values = daily[var].to_numpy(dtype=float)
        assert standardise_weather(values, *weather_moments(values)) == pytest.approx(
            daily[anomaly].to_numpy(dtype=float), abs=1e-9)


def test_the_grain_changes_the_model_input(env):
    seen = {}
    for product, geo in [("all", "region"), ("product", "region"), ("category", "country")]:
        env.dbt(SIM, "run", select=GRAIN_MODELS, product=product, geo=geo)
        df = env.df("select * from marts.fct_model_input where tenant_id = ? and period = 'day'", [SIM])
        assert set(zip(df["grain_product"], df["grain_geo"])) == {(product, geo)}
        seen[(product, geo)] = df
        assert df["kpi"].sum() == pytest.approx(env.truth.orders.net_revenue_valid, abs=0.05)
        assert df["spend_meta"].sum() == pytest.approx(env.truth.channels["meta"].spend, abs=0.05)
    geos = [g.geo_id for g in env.truth.geos]
    assert set(seen[("all", "region")]["product_key"]) == {"all"}
    assert set(seen[("all", "region")]["geo_id"]) == set(geos)
    assert set(seen[("category", "country")]["geo_id"]) == {"US"}
    assert set(seen[("category", "country")]["product_key"]) == set(env.truth.orders.net_revenue_by_category)
    n_products = seen[("product", "region")]["product_key"].nunique()
    assert n_products > len(env.truth.orders.net_revenue_by_category)
    sizes = {k: len(v) for k, v in seen.items()}
    assert len(set(sizes.values())) == 3, sizes
    env.dbt(SIM, "run", select=GRAIN_MODELS)  # back to tenant.yaml's grain for the other tests
    assert env.query("select distinct grain_product from marts.fct_model_input where tenant_id = ?",
                     [SIM]) == [("category",)]


def test_acme_example_loads_end_to_end_and_leaves_the_other_tenant_untouched(env):
    columns = {t: _columns(env, t) for t in MARTS}
    before = _tenant_rows_digest(env, SIM, columns)
    env.ingest("acme")
    env.dbt("acme")
    assert _tenant_rows_digest(env, SIM, columns) == before

    counts = dict(env.query(" union all ".join(
        f"select '{t}', count(*) from marts.{t} where tenant_id = 'acme'" for t in MARTS)))
    assert all(n > 0 for n in counts.values()), counts
    # the test order is not a sale; the one real order spans two category cells
    assert env.query("select product_key, net_revenue, gross_revenue, orders from marts.fct_sales_daily "
                     "where tenant_id = 'acme' order by 1") == [("Accessories", 25.5, 30.0, 1), ("Apparel", 51.0, 60.0, 1)]
    spend = dict(env.query("select geo_id || ':' || channel, spend from marts.fct_ad_spend_daily "
                           "where tenant_id = 'acme'"))
    assert spend == pytest.approx({"US-CA:meta": 412.37, "US-WA:meta": 120.05, "US-CA:google_search": 188.42,
                                   "US-CA:google_shopping": 95.30})
    promos = env.df("select * from marts.dim_promotion where tenant_id = 'acme'").set_index("promotion_id")
    rule = promos.loc["shopify_price_rule:4401"]
    assert (rule["depth_pct"], rule["code"], str(rule["start_date"].date()), str(rule["end_date"].date())) == \
        (15.0, "SUMMER15", "2024-06-01", "2024-06-09")
    assert promos.loc["klaviyo_campaign:01HZX3K9Q8", "depth_pct"] == 15.0
    assert "ad_campaign" in set(promos["source"])  # "Prospecting - Summer Sale"
    markdown = promos[promos["source"] == "shopify_compare_at"]
    assert markdown["depth_pct"].round(1).tolist() == [14.3]  # 30.00 against 35.00
    weather = env.query("select count(*), count(temperature_2m_max) from marts.fct_weather_daily "
                        "where tenant_id = 'acme'")
    assert weather == [(3, 2)]  # a null inside the arrays stays missing
    assert env.query("select count(*) from marts.fct_weather_forecast_daily where tenant_id = 'acme'") == [(2,)]
    grains = env.query("select distinct grain_product, grain_geo from marts.fct_model_input where tenant_id = 'acme'")
    assert grains == [("category", "region")]


def test_aggregated_input_becomes_model_input_rows(env):
    tenant_dir = env.landing / "agg"
    (tenant_dir / "aggregated" / "mmm_input").mkdir(parents=True)
    shutil.copy(ACME / "aggregated" / "mmm_input" / "weekly.csv", tenant_dir / "aggregated" / "mmm_input")
    env.ingest("agg")
    env.dbt("agg", "run", select="stg_aggregated__mmm_input fct_model_input")
    df = env.df("select * from marts.fct_model_input where tenant_id = 'agg' order by date")
    assert df["period"].tolist() == ["week", "week"]
    assert df["geo_id"].tolist() == ["US-CA", "US-CA"]
    assert df["kpi"].tolist() == [182340.5, 201120.0]
    assert df["spend_meta"].tolist() == [8120.0, 8400.0]
    assert df["spend_google_search"].tolist() == [5230.1, 5100.0]
    assert df["promo_active"].tolist() == [0.0, 1.0]
    assert df["temperature_2m_mean"].tolist() == [19.4, 21.0]
    assert set(df["grain_geo"]) == {"region"}


def test_forecast_anomalies_are_measured_against_the_observed_history(env):
    """A forecast day's anomaly uses the geo's observed climate, the scale the model was fitted on."""
    observed = env.query(
        "select geo_id, avg(temperature_2m_mean), stddev_samp(temperature_2m_mean) from marts.fct_weather_daily "
        f"where tenant_id = '{SIM}' group by 1"
    )
    forecast = env.query(
        "select geo_id, temperature_2m_mean, temperature_anomaly from marts.fct_weather_forecast_daily "
        f"where tenant_id = '{SIM}'"
    )
    assert forecast
    climate = {g: (m, s) for g, m, s in observed}
    for geo, temp, anomaly in forecast:
        mean, sd = climate[geo]
        assert anomaly == pytest.approx((temp - mean) / sd, abs=1e-9)
