"""What keeps the plan ledger honest against someone who can write the warehouse: a key and a head log outside it.

- Every event's hash is signed (HMAC-SHA256) with the ledger key and the warehouse's ledger id. Recomputing the
  chain after an edit needs the key, which lives in a file outside the warehouse (`$WEATHERVANE_LEDGER_KEY`,
  default `<model store>/ledger.key`, created with mode 0600 when no ledger history exists yet).
- Before an event commits, a signed `intent` line (tenant, ledger id, the warehouse's path, seq, hash) is appended
  to the head log beside the key (`$WEATHERVANE_LEDGER_HEADS`, default `ledger-heads.jsonl` in the key's folder), a
  file only ever appended to; after a decision commits, a `head` line. An event this ledger did not log (made on
  a copy of the warehouse and inserted here) is caught, and deleting events from the end of the chain leaves the
  log claiming more than the chain holds.

See docs/governance.md for the trust model.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from weathervane import config

KEY_BYTES = 32


class LedgerKeyError(ValueError):
    """The ledger key file is missing where it must exist, or is not a safe file (a user error: the command line
    prints it without a traceback, the API answers it as JSON)."""


def key_path() -> Path:
    return Path(os.environ.get("WEATHERVANE_LEDGER_KEY") or config.model_store() / "ledger.key")


def heads_path() -> Path:
    return Path(os.environ.get("WEATHERVANE_LEDGER_HEADS") or key_path().parent / "ledger-heads.jsonl")


def _read_key(path: Path) -> bytes:
    st = path.lstat()
    if not stat.S_ISREG(st.st_mode):
        raise LedgerKeyError(f"ledger key {path} is not a regular file")
    if st.st_mode & 0o077:
        raise LedgerKeyError(f"ledger key {path} is readable or writable by others (mode {st.st_mode & 0o777:o}); "
                             "it must be 0600")
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (ValueError, UnicodeDecodeError) as exc:
        raise LedgerKeyError(f"ledger key {path} does not hold hex text: {exc}") from None
    if len(key) < KEY_BYTES:
        raise LedgerKeyError(f"ledger key {path} is shorter than {KEY_BYTES} bytes")
    return key


def load_key(create: bool = False) -> bytes | None:
    """The ledger key; created (0600) when `create` and absent, else None when absent."""
    path = key_path()
    try:
        return _read_key(path)
    except FileNotFoundError:
        if not create:
            return None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return _read_key(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(KEY_BYTES) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return _read_key(path)


def sign(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def event_mac(key: bytes, tenant_id: str, seq: int, event_hash: str, ledger_id: str | None = None) -> str:
    """The event's signature. Bound to the ledger's id (a random id kept in the warehouse), so an event signed for
    another ledger never verifies here; without one, the form written before ledgers had ids."""
    if ledger_id is None:
        return sign(key, f"event|{tenant_id}|{seq}|{event_hash}")
    return sign(key, f"event2|{ledger_id}|{tenant_id}|{seq}|{event_hash}")


def head_mac(key: bytes, tenant_id: str, seq: int, event_hash: str) -> str:
    return sign(key, f"head|{tenant_id}|{seq}|{event_hash}")


def line_mac(key: bytes, entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "mac"}
    return sign(key, "line2|" + json.dumps(body, sort_keys=True, separators=(",", ":")))


@dataclass(frozen=True)
class Head:
    tenant_id: str
    seq: int
    hash: str


@dataclass(frozen=True)
class LogLine:
    """A signed line of the head log written with a ledger id: `intent` before an event commits (so an event of
    this ledger is always in the log, even when the process dies before the commit ends), `head` after a decision
    committed, `abandon` for an intent whose transaction rolled back."""
    number: int
    kind: str
    tenant_id: str
    ledger_id: str
    warehouse: str
    seq: int
    hash: str


def warehouse_identity(con) -> str:
    """Where this warehouse lives (the resolved path of its file): a copy elsewhere is another instance."""
    row = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()
    path = row[0] if row and row[0] else ":memory:"
    return path if path == ":memory:" else str(Path(path).resolve())


def _append_line(entry: dict) -> None:
    path = heads_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def append_line(key: bytes, kind: str, tenant_id: str, ledger_id: str, warehouse: str, seq: int,
                event_hash: str) -> None:
    """Append one signed line to the head log (O_APPEND, fsync): the log is never rewritten."""
    entry = {"v": 2, "kind": kind, "tenant_id": tenant_id, "ledger_id": ledger_id, "warehouse": warehouse,
             "seq": int(seq), "hash": event_hash, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    entry["mac"] = line_mac(key, entry)
    _append_line(entry)


def append_head(key: bytes, head: Head) -> None:
    """A head line of the form written before ledgers had ids (kept for tests of old logs)."""
    _append_line({"tenant_id": head.tenant_id, "seq": head.seq, "hash": head.hash,
                  "at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "mac": head_mac(key, head.tenant_id, head.seq, head.hash)})


@dataclass
class HeadLog:
    """What the head log says about one tenant: the lines of each ledger id, the legacy heads, and problems."""
    exists: bool = False
    lines: list[LogLine] = field(default_factory=list)
    legacy: list[Head] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of(self, ledger_id: str | None) -> list[LogLine]:
        return [ln for ln in self.lines if ln.ledger_id == ledger_id]

    def latest_legacy(self) -> Head | None:
        return max(self.legacy, key=lambda h: h.seq, default=None)


def read_head_log(key: bytes | None, tenant_id: str) -> HeadLog:
    """The tenant's lines of the head log, each signature checked (a line that does not check is a problem and is
    not believed)."""
    path = heads_path()
    log = HeadLog()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return log
    log.exists = bool(text.strip())
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict):
                raise TypeError
            if entry.get("tenant_id") != tenant_id:
                continue
            mac = str(entry["mac"])
            if entry.get("v") == 2:
                line = LogLine(number, str(entry["kind"]), tenant_id, str(entry["ledger_id"]),
                               str(entry["warehouse"]), int(entry["seq"]), str(entry["hash"]))
            else:
                head = Head(tenant_id, int(entry["seq"]), str(entry["hash"]))
        except (ValueError, KeyError, TypeError):
            log.problems.append(f"head log {path} line {number}: unreadable")
            continue
        if key is None:
            continue
        expected = line_mac(key, entry) if entry.get("v") == 2 else head_mac(key, tenant_id, head.seq, head.hash)
        if not hmac.compare_digest(mac, expected):
            log.problems.append(f"head log {path} line {number}: signature does not match (forged or edited)")
            continue
        if entry.get("v") == 2:
            log.lines.append(line)
        else:
            log.legacy.append(head)
    return log


def latest_head(key: bytes | None, tenant_id: str) -> tuple[Head | None, list[str]]:
    """The highest signed head logged for the tenant (any ledger), and problems with the log's lines of that
    tenant."""
    log = read_head_log(key, tenant_id)
    heads = [Head(tenant_id, ln.seq, ln.hash) for ln in log.lines if ln.kind == "head"] + log.legacy
    return max(heads, key=lambda h: h.seq, default=None), log.problems
