"""Jobs: ingest + harmonize on new files, and the full refresh (through model, plan) on schedule."""
from dagster import AssetSelection, define_asset_job


ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.groups("landing").downstream().required_multi_asset_neighbors()
    - AssetSelection.key_prefixes("mmm", "decisions"),
    description="Ingest a tenant's landing files and rebuild its harmonized marts.",
)

refresh_job = define_asset_job(
    "refresh_job",
    selection=AssetSelection.all(),
    description="Everything for one tenant: ingest, marts, model fit, budget plan.",
)
