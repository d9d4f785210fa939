"""The DuckDB warehouse: connection, schemas, operations tables, transactions.

Kept generic: modules that own other schemas (mmm, decisions) create their tables themselves.

Two layouts (docs/warehouse.md): `$WEATHERVANE_WAREHOUSE` names one DuckDB file holding every tenant, or an
existing folder of per-tenant files, tenant T's tables in `<folder>/T.duckdb`. `tenant_path` is the one place
that decides which file holds a tenant.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

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


class WarehouseError(ValueError, duckdb.IOException):
    """The warehouse file cannot be opened: a bad path, or another process holds it past the wait.

    Also a duckdb.IOException, as callers written before it expect."""


class WarehouseLocked(WarehouseError):
    pass


TENANT_FILE_SUFFIX = ".duckdb"


def is_folder(path: Path | str) -> bool:
    """Folder mode: the warehouse path is an existing folder. Anything else is one file holding every tenant, so
    an install that never made the folder keeps its single file."""
    return Path(path).is_dir()


def tenant_path(path: Path | str, tenant_id: str) -> Path:
    """The DuckDB file that holds `tenant_id`'s tables: `<folder>/<tenant>.duckdb` in folder mode, else the one
    file. The id is validated first, so no id reaches a path it could climb out of."""
    tenant_id = config.validate_tenant_id(tenant_id)
    path = Path(path)
    return path / f"{tenant_id}{TENANT_FILE_SUFFIX}" if is_folder(path) else path


def tenant_files(path: Path | str) -> dict[str, Path]:
    """{tenant id: its file} of a folder warehouse (plain files named by a valid id; links and other names are
    left out, as a linked file would show another tenant's tables under this id). Empty for a single file."""
    path = Path(path)
    if not is_folder(path):
        return {}
    found = {}
    for file in sorted(path.glob(f"*{TENANT_FILE_SUFFIX}")):
        tenant = file.name.removesuffix(TENANT_FILE_SUFFIX)
        if config.TENANT_ID_PATTERN.fullmatch(tenant) and file.is_file() and not file.is_symlink():
            found[tenant] = file
    return found


def connect_tenant(path: Path | str, tenant_id: str, read_only: bool = False, lock_wait_s: float = 0.0,
                   on_wait: Callable[[str], None] | None = None) -> duckdb.DuckDBPyConnection:
    """A connection to the file that holds `tenant_id` (see `connect`). In folder mode the connection cannot
    attach or read any other file: a query written for one tenant never reaches another tenant's file."""
    path = Path(path)
    target = tenant_path(path, tenant_id)
    con = connect(target, read_only=read_only, lock_wait_s=lock_wait_s, on_wait=on_wait)
    if target != path:
        # DuckDB refuses to turn this back on while the database is open. No lock_configuration: a second
        # connection to the same file in this process shares the instance and sets it again.
        con.execute("SET enable_external_access = false")
    return con


def lock_holder(exc: BaseException) -> str:
    """Who holds the lock, from DuckDB's message ("... is held in <program> (PID n)"), else "another process"."""
    m = re.search(r"held in (.+?) \(PID (\d+)\)", str(exc))
    return f"{m.group(1)} (PID {m.group(2)})" if m else "another process"


def connect(path: Path | str, read_only: bool = False, lock_wait_s: float = 0.0,
            on_wait: Callable[[str], None] | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file at `path`, creating its folder when writing.

    DuckDB lets one process hold the file: with `lock_wait_s` > 0 a conflicting lock held by another process is
    waited out (with backoff) instead of failing, so a step outside the writers' pool (a model fit writing its
    summaries) can take its short turn. `on_wait` is told once, with the holder, when waiting starts. A lock
    still held at the end raises WarehouseLocked naming the holder; a path that cannot hold a file raises
    WarehouseError.
    """
    path = Path(path)
    if not read_only:
        if path.parent.exists() and not path.parent.is_dir():
            raise WarehouseError(f"cannot open warehouse {path}: {path.parent} is a file, not a folder")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseError(f"cannot create the warehouse folder {path.parent}: {exc.strerror or exc}") from exc
    if path.is_dir():
        raise WarehouseError(f"warehouse {path} is a folder of per-tenant files: name the tenant whose file to open")
    if path.exists() and not path.is_file():
        raise WarehouseError(f"warehouse {path} is not a file")
    deadline = time.monotonic() + lock_wait_s
    delay = 0.2
    told = False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise WarehouseError(f"cannot open warehouse {path}: {str(exc).splitlines()[0]}") from exc
            if time.monotonic() + delay > deadline:
                waited = f" after waiting {lock_wait_s:g}s" if lock_wait_s > 0 else ""
                raise WarehouseLocked(f"warehouse {path} is in use by {lock_holder(exc)}{waited}; "
                                      "try again when it has finished") from exc
            if on_wait is not None and not told:
                on_wait(f"warehouse {path} is in use by {lock_holder(exc)}; waiting up to {lock_wait_s:g}s")
                told = True
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


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether schema.table exists (a tenant may lack any stream, and marts appear only once dbt built them)."""
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()[0])
