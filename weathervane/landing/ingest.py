"""Find a tenant's landing files, validate them, append valid files to raw.*, quarantine the rest.

Rules that keep the raw layer trustworthy:
- a file is known by the sha256 of its bytes: a hash already loaded (or already quarantined) for the tenant's
  stream is skipped, so re-delivery is a no-op (weather: per geo folder, since the folder names the geo);
- a valid file's rows and its ops.loaded_files row are written in one transaction: a crash never leaves half
  a file;
- an invalid file is refused whole: nothing of it is loaded; it is recorded in ops.quarantined_files and
  copied (never moved: the landing folder belongs to the sender) under `<tenant>/_quarantine/`;
- raw rows are never deleted; superseding by primary key happens downstream.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from weathervane import config
from weathervane.config import TenantConfigError, validate_tenant_id
from weathervane.landing.parse import MAX_FILE_BYTES, ParsedFile, Problem, parse_file
from weathervane.landing.streams import STREAMS, Stream, get_stream
from weathervane.warehouse import ensure_schemas, transaction

QUARANTINE_DIR = "_quarantine"
SMALL_BATCH = 2000
# Names a sender may give files and folders; anything else is refused before it is used anywhere.
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=+@-]{0,199}$")

RAW_COLUMNS_DDL = """(
    tenant_id VARCHAR NOT NULL,
    file_path VARCHAR NOT NULL,
    file_hash VARCHAR NOT NULL,
    source_line INTEGER NOT NULL,
    loaded_at TIMESTAMP NOT NULL,
    geo_id VARCHAR,
    record JSON NOT NULL
)"""


class LandingPathError(ValueError):
    """A tenant folder that cannot be read safely."""


# --- reports ---------------------------------------------------------------------------------------------


def printable(text: str) -> str:
    """A sender's file name as it may be shown on a terminal or a page: control, format (bidi) and separator
    characters written as escapes (\\x1b, \\u202e), so a name can neither move the cursor nor recolour output."""
    out = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\\\")
        elif unicodedata.category(ch)[0] in "CZ" and ch != " ":
            out.append(ascii(ch)[1:-1])
        else:
            out.append(ch)
    return "".join(out)


@dataclass
class QuarantinedFile:
    file_path: str  # relative to the tenant folder
    file_hash: str | None
    line: int | None
    field: str | None
    reason: str
    problems_total: int = 1
    copied_to: str | None = None

    def describe(self) -> str:
        # names and fields come from the sender's files: shown with control characters escaped
        where = printable(self.file_path)
        if self.line is not None:
            where += f" line {self.line}"
        if self.field is not None:
            where += f" field {printable(self.field)}"
        more = f" (and {self.problems_total - 1} more problems)" if self.problems_total > 1 else ""
        return f"{where}: {printable(self.reason)}{more}"


@dataclass
class StreamReport:
    tenant_id: str
    source: str
    stream: str
    files_seen: int = 0
    files_loaded: int = 0
    files_skipped: int = 0  # content hash already loaded or already quarantined
    files_quarantined: int = 0
    rows: int = 0  # rows appended by this run
    loaded: list[str] = field(default_factory=list)
    quarantined: list[QuarantinedFile] = field(default_factory=list)

    @property
    def table(self) -> str:
        return f"raw.{self.source}__{self.stream}"

    def metadata(self) -> dict:
        """Plain values (for asset metadata or logs)."""
        return {
            "table": self.table,
            "files_seen": self.files_seen,
            "files_loaded": self.files_loaded,
            "files_skipped": self.files_skipped,
            "files_quarantined": self.files_quarantined,
            "rows_appended": self.rows,
            "quarantined": [q.describe() for q in self.quarantined],
        }

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TenantReport:
    tenant_id: str
    streams: list[StreamReport] = field(default_factory=list)
    channel_rules: int | None = None  # rows written to ops.tenant_channel_rules; None when tenant.yaml is bad
    config_error: str | None = None

    def stream(self, source: str, stream: str) -> StreamReport:
        for s in self.streams:
            if (s.source, s.stream) == (source, stream):
                return s
        raise KeyError(f"{source}/{stream}")

    @property
    def files_seen(self) -> int:
        return sum(s.files_seen for s in self.streams)

    @property
    def files_loaded(self) -> int:
        return sum(s.files_loaded for s in self.streams)

    @property
    def files_skipped(self) -> int:
        return sum(s.files_skipped for s in self.streams)

    @property
    def files_quarantined(self) -> int:
        return sum(s.files_quarantined for s in self.streams)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.streams)

    @property
    def quarantined(self) -> list[QuarantinedFile]:
        return [q for s in self.streams for q in s.quarantined]

    def metadata(self) -> dict:
        return {
            "tenant_id": self.tenant_id,
            "files_seen": self.files_seen,
            "files_loaded": self.files_loaded,
            "files_skipped": self.files_skipped,
            "files_quarantined": self.files_quarantined,
            "rows_appended": self.rows,
            "channel_rules": self.channel_rules,
            "config_error": self.config_error,
            "quarantined": [q.describe() for q in self.quarantined],
        }

    def summary(self) -> str:
        lines = [f"tenant {self.tenant_id}: {self.files_loaded} files loaded ({self.rows} rows), "
                 f"{self.files_skipped} already known, {self.files_quarantined} quarantined"]
        for s in self.streams:
            if s.files_seen:
                lines.append(f"  {s.source}/{s.stream}: seen {s.files_seen}, loaded {s.files_loaded}, "
                             f"skipped {s.files_skipped}, quarantined {s.files_quarantined}, rows {s.rows}")
        for q in self.quarantined:
            lines.append(f"  QUARANTINED {q.describe()}")
        if self.config_error:
            lines.append(f"  tenant.yaml not applied: {printable(self.config_error)}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self)


# --- finding files ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LandingFile:
    stream: Stream
    rel_path: str  # relative to the tenant folder, "/"-separated
    path: Path
    refusal: str | None = None  # why the file is refused before its content is read
    readable: bool = True  # False: never open it (a link leading outside, not a regular file)

    @property
    def path_in_stream(self) -> str:
        return self.rel_path[len(self.stream.folder) + 1:]


def _tenant_folder(landing_root: Path | str, tenant_id: str) -> Path:
    tenant_id = validate_tenant_id(tenant_id)
    root = Path(landing_root)
    folder = root / tenant_id
    if folder.is_symlink():
        # even a link to a sibling would load another tenant's files under this id
        raise LandingPathError(f"tenant folder {folder} is a symbolic link; links are refused")
    if folder.exists() and not folder.is_dir():
        raise LandingPathError(f"tenant folder {folder} is not a folder")
    return folder


def require_tenant_folder(landing_root: Path | str, tenant_id: str) -> Path:
    """The tenant's folder, or LandingPathError saying the landing root or the tenant is unknown."""
    root = Path(landing_root)
    if not root.is_dir():
        raise LandingPathError(f"landing root {root} does not exist or is not a folder "
                               "(set --landing or $WEATHERVANE_LANDING)")
    folder = _tenant_folder(root, tenant_id)
    if not folder.is_dir():
        raise LandingPathError(f"unknown tenant {tenant_id!r}: no folder {folder}")
    return folder


def read_regular_file(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a plain file, never following a link, never blocking on a FIFO, never more than `limit`+1."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise LandingPathError(f"{path}: not a regular file")
        return fh.read(limit + 1)


def _stream_files(tenant_folder: Path, stream: Stream) -> Iterator[LandingFile]:
    base = tenant_folder / stream.source / stream.stream
    if not base.is_dir():
        return
    if base.parent.is_symlink() or base.is_symlink():
        yield LandingFile(stream, stream.folder, base, "a link to a folder is not followed", readable=False)
        return
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        here = Path(dirpath)
        dirnames.sort()
        for d in list(dirnames):
            sub = here / d
            if d.startswith("."):
                dirnames.remove(d)  # hidden folders (editors, sync tools) are not deliveries
            elif sub.is_symlink():
                dirnames.remove(d)
                rel = sub.relative_to(tenant_folder).as_posix()
                yield LandingFile(stream, rel, sub, "a link to a folder is not followed", readable=False)
        for name in sorted(filenames):
            if name.startswith("."):
                continue  # hidden files: partial uploads, .DS_Store
            path = here / name
            rel = path.relative_to(tenant_folder).as_posix()
            yield _classify(tenant_folder, stream, path, rel)


def _classify(tenant_folder: Path, stream: Stream, path: Path, rel: str) -> LandingFile:
    try:
        st = path.lstat()
    except OSError as exc:
        return LandingFile(stream, rel, path, f"cannot be read: {exc.strerror}", readable=False)
    if stat.S_ISLNK(st.st_mode):
        # a link's target may change between check and read, or be another tenant's file
        try:
            inside = path.resolve(strict=True).is_relative_to(tenant_folder.resolve())
        except (OSError, RuntimeError):
            inside = False
        where = "" if inside else " (this one leads outside the tenant folder)"
        return LandingFile(stream, rel, path, f"a symbolic link is refused{where}: deliver the file itself",
                           readable=False)
    if not stat.S_ISREG(st.st_mode):
        return LandingFile(stream, rel, path, "not a regular file", readable=False)
    if st.st_size > stream.max_file_bytes:
        return LandingFile(stream, rel, path, f"file of {st.st_size} bytes is larger than the "
                                              f"{stream.max_file_bytes} {stream.folder} allows", readable=False)
    parts = rel[len(stream.folder) + 1:].split("/")
    bad = [p for p in parts if not SAFE_NAME.fullmatch(p)]
    if bad:
        return LandingFile(stream, rel, path,
                           f"name {bad[0]!r} has characters outside A-Z a-z 0-9 _ . = + @ - "
                           f"(or is longer than 200 characters)")
    if not any(parts[-1].endswith(s) for s in stream.suffixes):
        return LandingFile(stream, rel, path,
                           f"unexpected file type: {stream.folder} takes {', '.join(stream.suffixes)}")
    if stream.geo_folders and len(parts) != 2:
        return LandingFile(stream, rel, path,
                           f"weather files must sit directly in {stream.folder}/<geo_id>/")
    return LandingFile(stream, rel, path)


def stream_files(landing_root: Path | str, tenant_id: str, source: str, stream: str) -> list[LandingFile]:
    """Every file under one stream folder of a tenant, with the reason it is refused, if any."""
    folder = _tenant_folder(landing_root, tenant_id)
    return list(_stream_files(folder, get_stream(source, stream)))


def landing_files(landing_root: Path | str, tenant_id: str) -> list[tuple[str, Path]]:
    """(path relative to the tenant folder, path) of every file a stream would read, safe or not.

    Links leading outside the tenant folder are left out: nothing should ever open them.
    """
    folder = _tenant_folder(landing_root, tenant_id)
    if not folder.is_dir():
        return []
    return [(f.rel_path, f.path) for s in STREAMS for f in _stream_files(folder, s) if f.readable]


def list_tenants(landing_root: Path | str) -> tuple[list[str], list[str]]:
    """(valid tenant ids, rejected folder names) under the landing root. Hidden entries are ignored."""
    root = Path(landing_root)
    valid, rejected = [], []
    if not root.is_dir():
        return valid, rejected
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if not config.TENANT_ID_PATTERN.fullmatch(entry.name) or entry.is_symlink():
            rejected.append(entry.name)
        else:
            valid.append(entry.name)
    return valid, rejected


# --- warehouse side --------------------------------------------------------------------------------------


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Schemas, ops tables and one raw table per stream (dbt sources exist even for absent streams)."""
    present = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' AND table_name IN "
        f"({', '.join('?' for _ in STREAMS)})",
        [s.key for s in STREAMS],
    ).fetchone()[0]
    ops = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ops' "
        "AND table_name IN ('loaded_files', 'quarantined_files', 'tenant_channel_rules')"
    ).fetchone()[0]
    if present == len(STREAMS) and ops == 3:
        return
    ensure_schemas(con)
    with transaction(con):
        for s in STREAMS:
            con.execute(f"CREATE TABLE IF NOT EXISTS {s.table} {RAW_COLUMNS_DDL}")


def _ops_ready(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ops' "
        "AND table_name IN ('loaded_files', 'quarantined_files')"
    ).fetchone()[0] == 2


def _identity(stream: Stream, rel_path: str, digest: str) -> tuple[str, str]:
    # A file is known by its hash; in weather streams the folder carries the geo, so the same bytes under
    # another geo folder are another file.
    scope = rel_path.split("/")[2] if stream.geo_folders and rel_path.count("/") >= 3 else ""
    return scope, digest


def _known_hashes(con: duckdb.DuckDBPyConnection, tenant_id: str, stream: Stream) -> set[tuple[str, str]]:
    rows = con.execute(
        """
        SELECT file_path, file_hash FROM ops.loaded_files WHERE tenant_id = $t AND source = $s AND stream = $st
        UNION
        SELECT file_path, file_hash FROM ops.quarantined_files
        WHERE tenant_id = $t AND source = $s AND stream = $st AND file_hash IS NOT NULL
        """,
        {"t": tenant_id, "s": stream.source, "st": stream.stream},
    ).fetchall()
    return {_identity(stream, path, digest) for path, digest in rows}


def _known_refusals(con: duckdb.DuckDBPyConnection, tenant_id: str, stream: Stream) -> set[tuple[str, str]]:
    rows = con.execute(
        "SELECT file_path, reason FROM ops.quarantined_files "
        "WHERE tenant_id = $t AND source = $s AND stream = $st AND file_hash IS NULL",
        {"t": tenant_id, "s": stream.source, "st": stream.stream},
    ).fetchall()
    return {(r[0], r[1]) for r in rows}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _append(con, tenant_id: str, stream: Stream, f: LandingFile, digest: str, parsed: ParsedFile) -> None:
    loaded_at = _now()
    with transaction(con):
        if parsed.records:
            lines, texts = zip(*parsed.records)
            params = {"tenant": tenant_id, "path": f.rel_path, "hash": digest, "at": loaded_at,
                      "geo": parsed.geo_id}
            if len(lines) <= SMALL_BATCH:
                # list parameters: cheapest for small files
                con.execute(
                    f"INSERT INTO {stream.table} SELECT $tenant, $path, $hash, unnest($lines), $at, $geo, "
                    "unnest($records)::JSON",
                    {**params, "lines": list(lines), "records": list(texts)},
                )
            else:
                # one columnar batch: DuckDB scans it without a per-row Python round trip
                batch = pd.DataFrame({"source_line": pd.array(lines, dtype="int32"), "record": list(texts)})
                con.register("_wv_raw_batch", batch)
                try:
                    con.execute(
                        f"INSERT INTO {stream.table} "
                        "SELECT $tenant, $path, $hash, source_line, $at, $geo, record::JSON FROM _wv_raw_batch",
                        params,
                    )
                finally:
                    con.unregister("_wv_raw_batch")
        con.execute(
            "INSERT INTO ops.loaded_files VALUES (?, ?, ?, ?, ?, ?, ?)",
            [tenant_id, stream.source, stream.stream, f.rel_path, digest, len(parsed.records), loaded_at],
        )


def _quarantine(con, landing_root: Path, tenant_id: str, f: LandingFile, digest: str | None,
                problems: list[Problem], problem_count: int) -> QuarantinedFile:
    first = problems[0]
    entry = QuarantinedFile(f.rel_path, digest, first.line, first.field, first.message, problem_count)
    with transaction(con):
        con.execute(
            "INSERT INTO ops.quarantined_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [tenant_id, f.stream.source, f.stream.stream, f.rel_path, digest, first.line, first.field,
             first.message, _now()],
        )
    if f.refusal is None:
        entry.copied_to = _copy_to_quarantine(landing_root, tenant_id, f, digest, problems, problem_count)
    return entry


def _copy_to_quarantine(landing_root: Path, tenant_id: str, f: LandingFile, digest: str | None,
                        problems: list[Problem], problem_count: int) -> str | None:
    folder = _tenant_folder(landing_root, tenant_id)
    dest = folder / QUARANTINE_DIR / f.stream.source / f.stream.stream / f.path_in_stream
    try:
        if dest.exists() and digest and hashlib.sha256(dest.read_bytes()).hexdigest() != digest:
            # Another file of the same name was quarantined before: keep both.
            dest = dest.with_name(f"{digest[:12]}-{dest.name}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f.path, dest)
        reason = {
            "file": f.rel_path,
            "sha256": digest,
            "quarantined_at": _now().isoformat() + "Z",
            "problems_total": problem_count,
            "problems": [{"line": p.line, "field": p.field, "reason": p.message} for p in problems],
        }
        dest.with_name(dest.name + ".reason.json").write_text(json.dumps(reason, indent=2) + "\n")
        return dest.relative_to(folder).as_posix()
    except OSError:
        return None  # the landing folder may be read-only to us; ops.quarantined_files still holds it


def ingest_stream(con: duckdb.DuckDBPyConnection, landing_root: Path | str, tenant_id: str,
                  source: str, stream: str) -> StreamReport:
    """Load the new files of one stream of one tenant; quarantine the invalid ones."""
    validate_tenant_id(tenant_id)
    get_stream(source, stream)
    ensure_raw_tables(con)
    return _ingest_stream(con, landing_root, tenant_id, source, stream)


def _ingest_stream(con: duckdb.DuckDBPyConnection, landing_root: Path | str, tenant_id: str,
                   source: str, stream: str) -> StreamReport:
    tenant_id = validate_tenant_id(tenant_id)
    spec = get_stream(source, stream)
    landing_root = Path(landing_root)
    report = StreamReport(tenant_id, spec.source, spec.stream)
    folder = _tenant_folder(landing_root, tenant_id)
    if not folder.is_dir():
        return report
    known = _known_hashes(con, tenant_id, spec)
    refusals = _known_refusals(con, tenant_id, spec)
    for f in _stream_files(folder, spec):
        report.files_seen += 1
        if f.refusal is not None:
            # Refused for its name, place or kind: never read, so known by path and reason, not by hash
            # (the same bytes under a proper name must still load).
            if (f.rel_path, f.refusal) in refusals:
                report.files_skipped += 1
                continue
            report.quarantined.append(
                _quarantine(con, landing_root, tenant_id, f, None, [Problem(None, None, f.refusal)], 1))
            report.files_quarantined += 1
            refusals.add((f.rel_path, f.refusal))
            continue
        try:
            data = read_regular_file(f.path, spec.max_file_bytes)
        except (OSError, LandingPathError) as exc:
            # swapped for a link or a FIFO after it was listed: refuse it this time, look again next time
            reason = f"cannot be read as a regular file: {getattr(exc, 'strerror', None) or exc}"
            report.quarantined.append(QuarantinedFile(f.rel_path, None, None, None, reason))
            report.files_quarantined += 1
            continue
        digest = hashlib.sha256(data).hexdigest()
        identity = _identity(spec, f.rel_path, digest)
        if identity in known:
            report.files_skipped += 1
            continue
        known.add(identity)
        parsed = parse_file(spec, data, f.path_in_stream)
        if parsed.ok:
            _append(con, tenant_id, spec, f, digest, parsed)
            report.files_loaded += 1
            report.rows += len(parsed.records)
            report.loaded.append(f.rel_path)
        else:
            report.quarantined.append(
                _quarantine(con, landing_root, tenant_id, f, digest, parsed.problems, parsed.problem_count))
            report.files_quarantined += 1
    return report


def write_channel_rules(con: duckdb.DuckDBPyConnection, tenant_id: str, cfg: config.TenantConfig) -> int:
    """Replace the tenant's rows of ops.tenant_channel_rules with tenant.yaml's `channels` (first = 0)."""
    tenant_id = validate_tenant_id(tenant_id)
    rows = [[tenant_id, i, r.name, r.platform, r.campaign_name] for i, r in enumerate(cfg.channels)]
    with transaction(con):
        con.execute("DELETE FROM ops.tenant_channel_rules WHERE tenant_id = ?", [tenant_id])
        if rows:
            con.executemany("INSERT INTO ops.tenant_channel_rules VALUES (?, ?, ?, ?, ?)", rows)
    return len(rows)


def ingest_tenant(con: duckdb.DuckDBPyConnection, landing_root: Path | str, tenant_id: str) -> TenantReport:
    """Every stream of the tenant, then tenant.yaml's channel rules.

    A bad tenant.yaml does not stop the data from loading: the previous rules stay and the report says why.
    """
    tenant_id = validate_tenant_id(tenant_id)
    report = TenantReport(tenant_id)
    ensure_raw_tables(con)
    for s in STREAMS:
        report.streams.append(_ingest_stream(con, landing_root, tenant_id, s.source, s.stream))
    try:
        cfg = config.load_tenant_config(landing_root, tenant_id)
    except TenantConfigError as exc:
        report.config_error = str(exc)
    else:
        report.channel_rules = write_channel_rules(con, tenant_id, cfg)
    return report


def pending_files(con: duckdb.DuckDBPyConnection | None, landing_root: Path | str,
                  tenant_id: str) -> list[tuple[str, str | None]]:
    """(path relative to the tenant folder, sha256) of files an ingest would still look at.

    Without a connection every file is pending. Files refused for their name, place or kind are never read:
    they carry None as hash until their refusal is recorded.
    """
    folder = _tenant_folder(landing_root, tenant_id)
    if not folder.is_dir():
        return []
    use_ops = con is not None and _ops_ready(con)
    out = []
    for s in STREAMS:
        known = _known_hashes(con, tenant_id, s) if use_ops else set()
        refusals = _known_refusals(con, tenant_id, s) if use_ops else set()
        for f in _stream_files(folder, s):
            if f.refusal is not None:
                if (f.rel_path, f.refusal) not in refusals:
                    out.append((f.rel_path, None))
                continue
            try:
                digest = hashlib.sha256(read_regular_file(f.path)).hexdigest()
            except (OSError, LandingPathError):
                out.append((f.rel_path, None))
                continue
            if _identity(s, f.rel_path, digest) not in known:
                out.append((f.rel_path, digest))
    return out


def current_records(con: duckdb.DuckDBPyConnection, tenant_id: str, source: str,
                    stream: str) -> list[tuple[str, int, str]]:
    """(file_path, source_line, record JSON) of the stream's records, one per primary key: the latest file wins.

    A corrected file for the same key supersedes the older one (landing contract); key values are compared
    trimmed, with empty and missing alike. Key fields are passed as parameters, never pasted into the SQL.
    """
    tenant_id = validate_tenant_id(tenant_id)
    spec = get_stream(source, stream)
    from weathervane.warehouse import table_exists

    if not table_exists(con, "raw", spec.key):
        return []
    key = ", ".join("coalesce(trim(json_extract_string(record, ?)), '')" for _ in spec.primary_key)
    paths = ["$." + json.dumps(k) for k in spec.primary_key]  # '$."segments.date"': dots are part of the name
    return con.execute(
        f"SELECT file_path, source_line, record FROM {spec.table} WHERE tenant_id = ? "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY loaded_at DESC, file_path DESC, "
        "source_line DESC) = 1 ORDER BY loaded_at, file_path, source_line",
        [tenant_id, *paths],
    ).fetchall()


def quarantine_summary(con: duckdb.DuckDBPyConnection, tenant_id: str, source: str,
                       stream: str) -> list[dict]:
    """The stream's quarantined files with their reasons, oldest first (for a data check)."""
    tenant_id = validate_tenant_id(tenant_id)
    spec = get_stream(source, stream)
    if not _ops_ready(con):
        return []
    cur = con.execute(
        "SELECT file_path, file_hash, line, field, reason, quarantined_at FROM ops.quarantined_files "
        "WHERE tenant_id = ? AND source = ? AND stream = ? ORDER BY quarantined_at, file_path",
        [tenant_id, spec.source, spec.stream],
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]
