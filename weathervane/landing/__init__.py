"""Landing zone: stream registry, validation, quarantine and loading into DuckDB raw tables.

Names are imported on first use (PEP 562): the code location reads the stream registry without paying for the
loader's pandas/DuckDB imports.
"""
from __future__ import annotations

from weathervane.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "weathervane.landing.ingest": [
        "LandingFile", "LandingPathError", "QuarantinedFile", "StreamReport", "TenantReport", "current_records",
        "ensure_raw_tables", "ingest_stream", "ingest_tenant", "landing_files", "list_tenants", "pending_files",
        "quarantine_summary", "stream_files", "write_channel_rules",
    ],
    "weathervane.landing.parse": ["ParsedFile", "Problem", "parse_file"],
    "weathervane.landing.schemas": ["export_json_schemas", "json_schema", "stale_schemas"],
    "weathervane.landing.streams": ["STREAMS", "Stream", "UnknownStream", "get_stream"],
})
