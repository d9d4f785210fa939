"""Landing zone: stream registry, validation, quarantine and loading into DuckDB raw tables."""
from weathervane.landing.ingest import (
    LandingFile,
    LandingPathError,
    QuarantinedFile,
    StreamReport,
    TenantReport,
    ensure_raw_tables,
    ingest_stream,
    ingest_tenant,
    landing_files,
    list_tenants,
    pending_files,
    quarantine_summary,
    stream_files,
    write_channel_rules,
)
from weathervane.landing.parse import ParsedFile, Problem, parse_file
from weathervane.landing.schemas import export_json_schemas, json_schema, stale_schemas
from weathervane.landing.streams import STREAMS, Stream, UnknownStream, get_stream

__all__ = [
    "STREAMS",
    "LandingFile",
    "LandingPathError",
    "ParsedFile",
    "Problem",
    "QuarantinedFile",
    "Stream",
    "StreamReport",
    "TenantReport",
    "UnknownStream",
    "ensure_raw_tables",
    "export_json_schemas",
    "get_stream",
    "ingest_stream",
    "ingest_tenant",
    "json_schema",
    "landing_files",
    "list_tenants",
    "parse_file",
    "pending_files",
    "quarantine_summary",
    "stale_schemas",
    "stream_files",
    "write_channel_rules",
]
