"""Tenants are dynamic partitions, registered by the landing sensor."""
from dagster import DynamicPartitionsDefinition

tenant_partitions = DynamicPartitionsDefinition(name="tenants")

# DuckDB allows one writer process: every asset that writes the warehouse (dbt included) runs in this pool.
WAREHOUSE_POOL = "duckdb_warehouse"
