"""Data-quality suites on the harmonized marts (Great Expectations 1.x), one tenant at a time.

Each suite runs in an ephemeral GX context on a pandas DataFrame read from the mart for one tenant, so it
needs no GX project on disk and never touches another tenant's rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

from weathervane.config import validate_tenant_id

# Physical bounds of daily weather (world records, with margin): beyond them a value is an error, not weather.
TEMPERATURE_RANGE_C = (-90.0, 60.0)
PRECIPITATION_RANGE_MM = (0.0, 2000.0)
# Share of a tenant's days a geo must have rows for (fct_model_input daily rows).
MIN_DATE_COVERAGE = 0.95
MARTS = ("fct_model_input", "fct_promo_daily", "dim_promotion", "fct_weather_daily", "fct_sales_daily",
         "fct_ad_spend_daily", "fct_weather_forecast_daily")


@dataclass
class QualityResult:
    suite: str
    tenant_id: str
    success: bool
    rows: int
    failures: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.success and not self.rows and self.failures:
            return f"{self.suite}: nothing to check for tenant {self.tenant_id} ({self.failures[0]})"
        if self.success:
            return f"{self.suite}: {self.rows} rows of tenant {self.tenant_id} pass"
        return f"{self.suite} failed for tenant {self.tenant_id}: " + "; ".join(self.failures)


def read_mart(con: duckdb.DuckDBPyConnection, table: str, tenant_id: str, where: str = "true") -> pd.DataFrame:
    """One tenant's rows of marts.<table> (empty frame when the mart does not exist yet)."""
    if table not in MARTS:
        raise ValueError(f"unknown mart {table!r}")
    tenant_id = validate_tenant_id(tenant_id)
    from weathervane.warehouse import table_exists

    if not table_exists(con, "marts", table):
        return pd.DataFrame()
    return con.execute(f"select * from marts.{table} where tenant_id = ? and {where}", [tenant_id]).df()


def _run(suite_name: str, tenant_id: str, df: pd.DataFrame, expectations: list,
         absent: str | None = None) -> QualityResult:
    """Validate `df`. No rows fail the suite, unless `absent` says why a tenant may have none (a stream it does not
    deliver): then it passes, with that note."""
    import great_expectations as gx

    if df.empty:
        if absent:
            return QualityResult(suite_name, tenant_id, True, 0, [f"no rows: {absent}"])
        return QualityResult(suite_name, tenant_id, False, 0, ["no rows for this tenant"])
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas(f"{suite_name}_source")
    asset = source.add_dataframe_asset(f"{suite_name}_{tenant_id}")
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": df})
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    for e in expectations:
        suite.add_expectation(e)
    result = batch.validate(suite)
    failures = []
    for r in result.results:
        if not r.success:
            cfg = r.expectation_config
            kwargs = {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}
            observed = (r.result or {}).get("observed_value", (r.result or {}).get("unexpected_count"))
            failures.append(f"{cfg.type} {kwargs} (observed {observed})")
    return QualityResult(suite_name, tenant_id, bool(result.success), len(df), failures)


def model_input_suite(df: pd.DataFrame, tenant_id: str) -> QualityResult:
    """fct_model_input at its finest period (daily rows; a weekly aggregated table's weeks): revenue and spend not
    collapsed to zero, every cell covers the tenant's periods."""
    import great_expectations.expectations as gxe

    finest = "day" if "period" in df and (df["period"] == "day").any() else "week"
    daily = df[df["period"] == finest].copy() if "period" in df else df.copy()
    spend_cols = [c for c in daily.columns if c.startswith("spend_") and c != "spend_allocated_share"]
    daily["spend_total"] = daily[spend_cols].fillna(0).sum(axis=1) if spend_cols else 0.0
    if not daily.empty:
        days = daily["date"].nunique()
        coverage = daily.groupby(["product_key", "geo_id"])["date"].nunique() / days
        daily["cell_date_coverage"] = daily.set_index(["product_key", "geo_id"]).index.map(coverage).to_numpy()
    return _run("model_input", tenant_id, daily, [
        gxe.ExpectColumnMeanToBeBetween(column="kpi", min_value=0, strict_min=True),
        gxe.ExpectColumnMeanToBeBetween(column="spend_total", min_value=0, strict_min=True),
        gxe.ExpectColumnValuesToBeBetween(column="kpi", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="spend_total", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="cell_date_coverage", min_value=MIN_DATE_COVERAGE, max_value=1.0),
        gxe.ExpectColumnValuesToNotBeNull(column="date"),
    ])


def promotion_suite(promo_daily: pd.DataFrame, tenant_id: str) -> QualityResult:
    """fct_promo_daily: depth in [0, 100], realized discount rate in [0, 1], activity flag 0/1."""
    import great_expectations.expectations as gxe

    return _run("promotions", tenant_id, promo_daily, absent="the tenant delivers no orders or promotions", expectations=[
        gxe.ExpectColumnValuesToBeBetween(column="promo_depth_pct", min_value=0, max_value=100),
        gxe.ExpectColumnValuesToBeBetween(column="realized_discount_rate", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeInSet(column="promo_active", value_set=[0, 1]),
        gxe.ExpectColumnValuesToBeBetween(column="lifecycle_sends", min_value=0),
    ])


def weather_suite(weather: pd.DataFrame, tenant_id: str) -> QualityResult:
    """fct_weather_daily: temperatures and precipitation within physical ranges, max >= mean."""
    import great_expectations.expectations as gxe

    lo, hi = TEMPERATURE_RANGE_C
    return _run("weather", tenant_id, weather, absent="the tenant delivers no weather", expectations=[
        gxe.ExpectColumnValuesToBeBetween(column="temperature_2m_mean", min_value=lo, max_value=hi),
        gxe.ExpectColumnValuesToBeBetween(column="temperature_2m_max", min_value=lo, max_value=hi),
        gxe.ExpectColumnValuesToBeBetween(column="precipitation_sum", min_value=PRECIPITATION_RANGE_MM[0],
                                          max_value=PRECIPITATION_RANGE_MM[1]),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="temperature_2m_max", column_B="temperature_2m_mean",
                                                    or_equal=True, ignore_row_if="either_value_is_missing"),
    ])
