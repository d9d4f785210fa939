"""What keeps the plan ledger honest against someone who can write the warehouse: a key and a head log outside it.

- Every event's hash is signed (HMAC-SHA256) with the ledger key. Recomputing the chain after an edit needs the
  key, which lives in a file outside the warehouse (`$WEATHERVANE_LEDGER_KEY`, default `<model store>/ledger.key`,
  created with mode 0600 on first use).
- After each decision commits, the tenant's chain head (event count and last hash, signed) is appended to the head
  log beside the key (`$WEATHERVANE_LEDGER_HEADS`, default `ledger-heads.jsonl` in the key's folder), a file only
  ever appended to. Deleting events from the end of the chain leaves the log claiming more than the chain holds.

See docs/governance.md for the trust model.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass
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


def event_mac(key: bytes, tenant_id: str, seq: int, event_hash: str) -> str:
    return sign(key, f"event|{tenant_id}|{seq}|{event_hash}")


def head_mac(key: bytes, tenant_id: str, seq: int, event_hash: str) -> str:
    return sign(key, f"head|{tenant_id}|{seq}|{event_hash}")


@dataclass(frozen=True)
class Head:
    tenant_id: str
    seq: int
    hash: str


def append_head(key: bytes, head: Head) -> None:
    """Append the signed head to the head log (O_APPEND, fsync): the log is never rewritten."""
    path = heads_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"tenant_id": head.tenant_id, "seq": head.seq, "hash": head.hash,
                       "at": datetime.now(UTC).isoformat(timespec="seconds"),
                       "mac": head_mac(key, head.tenant_id, head.seq, head.hash)}, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def latest_head(key: bytes | None, tenant_id: str) -> tuple[Head | None, list[str]]:
    """The highest signed head logged for the tenant, and problems with the log's lines of that tenant."""
    path = heads_path()
    problems: list[str] = []
    best: Head | None = None
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, problems
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if entry.get("tenant_id") != tenant_id:
                continue
            head = Head(tenant_id, int(entry["seq"]), str(entry["hash"]))
            mac = str(entry["mac"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"head log {path} line {number}: unreadable")
            continue
        if key is None:
            continue
        if not hmac.compare_digest(mac, head_mac(key, head.tenant_id, head.seq, head.hash)):
            problems.append(f"head log {path} line {number}: signature does not match (forged or edited)")
            continue
        if best is None or head.seq >= best.seq:
            best = head
    return best, problems
