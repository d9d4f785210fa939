"""The DuckDB warehouse: connection, schemas, operations tables, transactions.

Kept generic: modules that own other schemas (mmm, decisions) create their tables themselves.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import time

import duckdb

from weathervane import config

SCHEMAS = ("raw", "ops", "marts", "mmm", "decisions")

OPS_DDL = (
    """
    CREATE TABLE IF NOT EXISTS ops.loaded_files (
        tenant_id VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,
        file_path VARCHAR NOT NULL,
        file_hash VARCHAR NOT NULL,
        records BIGINT NOT NULL,
        loaded_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ops.quarantined_files (
        tenant_id VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,
        file_path VARCHAR NOT NULL,
        file_hash VARCHAR,
        line INTEGER,
        field VARCHAR,
        reason VARCHAR NOT NULL,
        quarantined_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ops.tenant_channel_rules (
        tenant_id VARCHAR NOT NULL,
        priority INTEGER NOT NULL,
        channel VARCHAR NOT NULL,
        platform VARCHAR,
        campaign_name_regex VARCHAR
    )
    """,
)


def connect(path: Path | str | None = None, read_only: bool = False,
            lock_wait_s: float = 0.0) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (default `config.warehouse_path()`), creating its folder when writing.

    DuckDB lets one process hold the file: with `lock_wait_s` > 0 a conflicting lock held by another process is
    waited out (with backoff) instead of failing, so a step outside the writers' pool (a model fit writing its
    summaries) can take its short turn.
    """
    path = Path(path) if path is not None else config.warehouse_path()
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_wait_s
    delay = 0.2
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schemas and the ops tables when missing (idempotent, one commit)."""
    with transaction(con):
        for schema in SCHEMAS:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for ddl in OPS_DDL:
            con.execute(ddl)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, or ROLLBACK when the block raises: all of it lands or none of it."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")
