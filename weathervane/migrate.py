"""`weathervane warehouse migrate --to <folder>`: a single-file warehouse moved to one DuckDB file per tenant.

Every table of the file is copied: a table with a `tenant_id` column goes to each tenant's file with that tenant's
rows; a table without one is shared (the reference seeds, the ledger's identity in decisions.ledger_instance) and
goes whole into every tenant's file, so each file has the same schemas and tables. The copy is verified (rows per
table per tenant, and the ledger verification of each tenant's plan events) before the single file is set aside as
`<file>.migrated`; on any mismatch the new files are removed and the single file stays where it was.

Set aside, not left in place: the ledger's head log names the file each event was written at, and a copy whose
original is still there is refused as a copy (weathervane.governance.events); once the original path is gone, the
tenant's own file is the ledger's home.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from weathervane import config

MIGRATED_SUFFIX = ".migrated"


class MigrationError(ValueError):
    """The warehouse cannot be migrated as asked; nothing was changed."""


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    ddl: str  # DuckDB's own CREATE TABLE for it, from the catalog
    per_tenant: bool  # has a tenant_id column

    @property
    def ref(self) -> str:
        return f"{_ident(self.schema)}.{_ident(self.name)}"

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class LedgerCheck:
    """What verify_chain said of one tenant's plan events: compared before and after the move."""
    events: int
    head: tuple[int, str] | None
    problems: int

    def describe(self) -> str:
        state = "intact" if not self.problems else f"{self.problems} problems"
        return f"{self.events} events, chain {state}"


@dataclass
class MigrationReport:
    source: Path
    folder: Path
    archived: Path
    tenants: list[str] = field(default_factory=list)
    rows: dict[tuple[str, str], int] = field(default_factory=dict)  # (tenant, schema.table) -> rows copied
    shared: list[str] = field(default_factory=list)  # tables without tenant_id, copied whole into every file
    ledgers: dict[str, LedgerCheck] = field(default_factory=dict)

    def describe(self) -> list[str]:
        lines = [f"moved {self.source} to {len(self.tenants)} tenant files under {self.folder}; "
                 f"the single file is kept as {self.archived}"]
        for tenant in self.tenants:
            rows = sum(n for (t, _), n in self.rows.items() if t == tenant)
            ledger = self.ledgers.get(tenant)
            lines.append(f"  {tenant}: {rows} rows in {sum(1 for t, _ in self.rows if t == tenant)} tables"
                         + (f"; ledger {ledger.describe()} (same as before)" if ledger else ""))
        if self.shared:
            lines.append(f"  shared by every tenant file: {', '.join(self.shared)}")
        return lines


def _ident(name: str) -> str:
    """A catalog identifier quoted for SQL (names come from the catalog, never from data)."""
    return '"' + name.replace('"', '""') + '"'


def _tables(con) -> list[Table]:
    rows = con.execute(
        "select t.schema_name, t.table_name, t.sql, exists(select 1 from duckdb_columns() c where "
        "c.database_name = t.database_name and c.schema_name = t.schema_name and c.table_name = t.table_name "
        "and c.column_name = 'tenant_id') from duckdb_tables() t where t.database_name = current_database() "
        "and not t.internal and not t.temporary order by 1, 2").fetchall()
    return [Table(s, n, ddl, bool(per_tenant)) for s, n, ddl, per_tenant in rows]


def _refuse_what_cannot_be_copied(con) -> None:
    # dbt materializes tables here; a view or sequence would be an object this command does not know how to move
    others = con.execute(
        "select 'view ' || schema_name || '.' || view_name from duckdb_views() where database_name = "
        "current_database() and not internal and not temporary union all select 'sequence ' || schema_name || '.' "
        "|| sequence_name from duckdb_sequences() where database_name = current_database() and not temporary"
    ).fetchall()
    if others:
        raise MigrationError("the warehouse holds objects this migration does not move: "
                             + ", ".join(r[0] for r in others))


def _tenants(con, tables: list[Table]) -> list[str]:
    found: set[str] = set()
    for table in tables:
        if not table.per_tenant:
            continue
        nulls = con.execute(f"select count(*) from {table.ref} where tenant_id is null").fetchone()[0]
        if nulls:
            raise MigrationError(f"{table.label} has {nulls} rows without a tenant_id: no tenant file can hold "
                                 "them (fix or delete them first)")
        for (tenant,) in con.execute(f"select distinct tenant_id from {table.ref}").fetchall():
            try:
                found.add(config.validate_tenant_id(tenant))
            except config.InvalidTenantId as exc:
                raise MigrationError(f"{table.label}: {exc}") from None
    return sorted(found)


def _counts(con, tables: list[Table], tenant: str) -> dict[str, int]:
    return {t.label: con.execute(f"select count(*) from {t.ref}" + (" where tenant_id = ?" if t.per_tenant else ""),
                                 [tenant] if t.per_tenant else []).fetchone()[0] for t in tables}


def _ledger(con, tenant: str, landing: Path) -> LedgerCheck:
    from weathervane.governance.events import verify_chain

    try:
        cfg = config.load_tenant_config(landing, tenant) if (landing / tenant).is_dir() else None
    except config.TenantConfigError:
        cfg = None  # the same None before and after: the comparison stays fair
    report = verify_chain(con, tenant, cfg)
    head = con.execute("select seq, hash from decisions.plan_events where tenant_id = ? order by seq desc limit 1",
                       [tenant]).fetchone()
    return LedgerCheck(report.events, tuple(head) if head else None, len(report.problems))


def _copy_tenant(src, target: Path, tables: list[Table], tenant: str) -> None:
    """One new file with every table; the tenant's rows (or all rows of a shared table), in one transaction."""
    import duckdb

    from weathervane.warehouse import transaction

    dst = duckdb.connect(str(target))
    reader = src.cursor()  # its own result stream, beside the counts run on `src`
    try:
        with transaction(dst):
            for schema in sorted({t.schema for t in tables}):
                dst.execute(f"create schema if not exists {_ident(schema)}")
            for table in tables:
                dst.execute(table.ddl)
                where = " where tenant_id = ?" if table.per_tenant else ""
                # streamed as Arrow batches: a tenant's table never has to fit in memory at once
                batches = reader.sql(f"select * from {table.ref}{where}",
                                  params=[tenant] if table.per_tenant else None).to_arrow_reader(100_000)
                dst.register("migrating_rows", batches)
                try:
                    dst.execute(f"insert into {table.ref} select * from migrating_rows")
                finally:
                    dst.unregister("migrating_rows")
        dst.execute("checkpoint")
    finally:
        reader.close()
        dst.close()


def _remove(files: list[Path]) -> None:
    for file in files:
        for path in (file, file.with_name(file.name + ".wal")):
            path.unlink(missing_ok=True)


def migrate_to_folder(source: Path | str, folder: Path | str, landing: Path | str,
                      lock_wait_s: float = 0.0) -> MigrationReport:
    """Move the single-file warehouse `source` to `<folder>/<tenant>.duckdb` files; see the module docstring."""
    import duckdb

    from weathervane.warehouse import TENANT_FILE_SUFFIX, WarehouseError, connect, is_folder

    source, folder = Path(source), Path(folder)
    landing = Path(landing)
    if is_folder(source):
        raise MigrationError(f"{source} is already a folder of tenant files")
    if not source.is_file():
        raise MigrationError(f"no warehouse file at {source}")
    if folder.exists() and not folder.is_dir():
        raise MigrationError(f"{folder} exists and is not a folder")
    if folder.resolve() == source.parent.resolve() and source.name.endswith(TENANT_FILE_SUFFIX):
        # the folder would hold the single file beside the tenant files, and it would read as a tenant's
        raise MigrationError(f"choose a folder other than the one holding {source.name}")
    archived = source.with_name(source.name + MIGRATED_SUFFIX)
    if archived.exists():
        raise MigrationError(f"{archived} exists (an earlier migration?): move it away first")
    report = MigrationReport(source, folder, archived)

    # Held read-write for the whole copy: no pipeline can write the file between the counts and the copy.
    src = connect(source, lock_wait_s=lock_wait_s)
    created: list[Path] = []
    try:
        src.execute("checkpoint")
        _refuse_what_cannot_be_copied(src)
        tables = _tables(src)
        report.tenants = _tenants(src, tables)
        if not report.tenants:
            raise MigrationError(f"{source} holds no tenant's rows: nothing to migrate")
        report.shared = [t.label for t in tables if not t.per_tenant]
        targets = {t: folder / f"{t}{TENANT_FILE_SUFFIX}" for t in report.tenants}
        taken = [str(p) for p in targets.values() if p.exists() or p.with_name(p.name + ".wal").exists()]
        if taken:
            raise MigrationError(f"refusing to overwrite existing tenant files: {', '.join(taken)}")
        has_ledger = any(t.label == "decisions.plan_events" for t in tables)
        before = {t: _counts(src, tables, t) for t in report.tenants}
        ledgers_before = {t: _ledger(src, t, landing) for t in report.tenants} if has_ledger else {}
        made_folder = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        try:
            for tenant, target in targets.items():
                created.append(target)
                _copy_tenant(src, target, tables, tenant)
                check = duckdb.connect(str(target), read_only=True)
                try:
                    after = _counts(check, tables, tenant)
                finally:
                    check.close()
                if after != before[tenant]:
                    diff = [f"{k}: {before[tenant][k]} -> {after.get(k)}" for k in before[tenant]
                            if before[tenant][k] != after.get(k)]
                    raise MigrationError(f"rows of {tenant} differ after the copy ({'; '.join(diff)})")
                report.rows.update({(tenant, k): n for k, n in after.items()})
        except BaseException:
            _remove(created)
            if made_folder:
                folder.rmdir()
            raise
    finally:
        src.close()

    try:
        source.rename(archived)
    except OSError as exc:
        _remove(created)
        raise WarehouseError(f"cannot set {source} aside as {archived}: {exc.strerror or exc}") from exc
    try:
        for tenant, target in targets.items():
            if not has_ledger:
                break
            con = connect(target, read_only=True)
            try:
                report.ledgers[tenant] = _ledger(con, tenant, landing)
            finally:
                con.close()
            if report.ledgers[tenant] != ledgers_before[tenant]:
                raise MigrationError(f"the ledger of {tenant} verifies differently after the move "
                                     f"(before: {ledgers_before[tenant].describe()}, after: "
                                     f"{report.ledgers[tenant].describe()})")
    except BaseException:
        archived.rename(source)
        _remove(created)
        raise
    return report


def _cmd_migrate(args) -> int:
    from rich.markup import escape

    from weathervane.console import console

    source = Path(args.warehouse) if args.warehouse else config.warehouse_path()
    report = migrate_to_folder(source, Path(args.to), Path(args.landing) if args.landing else config.landing_root(),
                               lock_wait_s=args.wait)
    for line in report.describe():
        console.print(escape(line))
    console.print(escape(f"point WEATHERVANE_WAREHOUSE at {report.folder} (and use deploy/dagster.tenants.yaml)"))
    return 0


def add_cli(subparsers) -> argparse.ArgumentParser:
    wh = subparsers.add_parser("warehouse", help="the warehouse's layout: one file, or a file per tenant")
    sub = wh.add_subparsers(dest="warehouse_command", required=True)
    migrate = sub.add_parser("migrate", help="move a single-file warehouse to one DuckDB file per tenant")
    migrate.add_argument("--to", required=True, help="folder for the tenant files (created if missing)")
    migrate.add_argument("--warehouse", help="the single DuckDB file (default $WEATHERVANE_WAREHOUSE)")
    migrate.add_argument("--landing", help="landing root holding tenant.yaml (default $WEATHERVANE_LANDING)")
    migrate.add_argument("--wait", type=float, default=0.0,
                         help="seconds to wait for a warehouse another process holds (default 0: stop the "
                              "pipelines first)")
    migrate.set_defaults(func=_cmd_migrate)
    return wh
