"""Jobs: ingest + harmonize on new files, and the full refresh (through model, plan) on schedule."""
from dagster import AssetSelection, define_asset_job

# What new landing files change: ingestion, the dbt models, and the sniff between the two dbt steps (new data can
# carry another grain); with the reference seeds the models read, so a tenant's first run on a new warehouse builds.
ingest_job = define_asset_job(
    "ingest_job",
    selection=(AssetSelection.groups("landing").downstream() - AssetSelection.key_prefixes("mmm", "decisions"))
    .upstream().required_multi_asset_neighbors(),
    description="Ingest a tenant's landing files, sniff them and rebuild its harmonized marts at its grain.",
)

refresh_job = define_asset_job(
    "refresh_job",
    selection=AssetSelection.all(),
    description="Everything for one tenant: ingest, marts, model fit, budget plan.",
)


def standalone_ingest_job():
    """ingest_job over the ingestion assets alone, for an ingestion-only worker (and step processes that should
    not load dbt or PyMC): `reconstructable(standalone_ingest_job)`."""
    from dagster import Definitions

    from dagster_project.defs import ingest
    from dagster_project.executor import weathervane_executor
    from dagster_project.resources import WeathervaneResource

    return Definitions(assets=ingest.assets, jobs=[ingest_job], executor=weathervane_executor,
                       resources={"weathervane": WeathervaneResource()}).resolve_job_def("ingest_job")
