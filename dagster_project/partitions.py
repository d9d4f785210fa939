"""Tenants are dynamic partitions, registered by the landing sensor."""
from dagster import DynamicPartitionsDefinition

tenant_partitions = DynamicPartitionsDefinition(name="tenants")

# DuckDB allows one writer process per file. Every asset step that writes the warehouse (dbt included) is in this
# pool and carries WRITER_TAGS. One file for every tenant: the instance limits the pool to 1 across all runs. A folder
# of tenant files (docs/warehouse.md): the instance leaves the pool unlimited and runs one run per tenant at a time
# (tag limit on dagster/partition), and the executor runs one writer step at a time within a run (WRITER_LIMITS), so
# each tenant file has one writer while other tenants' runs go on (deploy/dagster.tenants.yaml).
WAREHOUSE_POOL = "duckdb_warehouse"
WRITER_TAG = "weathervane/warehouse"
WRITER_TAGS = {WRITER_TAG: "writer"}
WRITER_LIMITS = [{"key": WRITER_TAG, "value": "writer", "limit": 1}]

# The multiprocess executor runs as many steps at once as there are cores, highest dagster/priority first. The
# fit heads a run's longest chain (fit, experiments, plan): it takes a free core before the replay and the audits,
# which only feed reports (on two cores the fit otherwise waited 20 s for the audits to finish).
FIRST_TAGS = {"dagster/priority": "10"}
LAST_TAGS = {"dagster/priority": "-10"}
