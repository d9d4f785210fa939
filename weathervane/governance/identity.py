"""Who is acting: people known by a user id and a secret, kept only as salted scrypt hashes.

The users file lives outside the warehouse (default `data/users.json`, or `$WEATHERVANE_USERS`), so that write
access to the warehouse does not grant the power to sign in as an approver. It is written atomically with mode
0600. What a person may do is not stored here: tenant.yaml's `autopilot.approvers` and `autopilot.appliers` name
user ids, and the governance rules check them when a plan moves. A users file that others may read or write is
refused, as the ledger key is.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# A user id is what the ledger records as the actor and what tenant.yaml role lists name (often an e-mail).
USER_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,127}$")
MIN_SECRET_LENGTH = 12
MAX_SECRET_LENGTH = 1024
# scrypt at 2^14 x 8 takes ~16 MiB and tens of milliseconds: cheap for one sign-in, costly for guessing.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 1 << 14, 8, 1, 32
SCHEME = "scrypt"


class IdentityError(ValueError):
    """A bad user id, secret or users file."""


def users_path() -> Path:
    return Path(os.environ.get("WEATHERVANE_USERS") or "data/users.json")


def normalize_user_id(user_id: object) -> str:
    if not isinstance(user_id, str) or not USER_ID_PATTERN.fullmatch(user_id.strip().lower()):
        raise IdentityError(
            f"invalid user id {user_id!r}: lower-case letters, digits and . _ @ + - (at most 128), "
            "starting with a letter or digit"
        )
    return user_id.strip().lower()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_secret(secret: str, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
                p: int = SCRYPT_P) -> str:
    """`scrypt$n$r$p$salt$hash` (base64): the only form in which a secret is stored."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=SCRYPT_LEN, maxmem=64 << 20)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def check_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected), maxmem=64 << 20)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


# Checked against when the user id is unknown, so a failed sign-in takes as long whether or not the user exists.
_DUMMY_HASH = hash_secret("not a real secret", salt=b"\0" * 16)


def validate_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET_LENGTH:
        raise IdentityError(f"a password or token needs at least {MIN_SECRET_LENGTH} characters")
    if len(secret) > MAX_SECRET_LENGTH:
        raise IdentityError(f"a password or token has at most {MAX_SECRET_LENGTH} characters")
    if secret != secret.strip():
        raise IdentityError("a password or token must not start or end with spaces")
    return secret


@dataclass(frozen=True)
class User:
    user_id: str
    secret_hash: str
    updated_at: str

    @property
    def fingerprint(self) -> str:
        """Changes whenever the secret changes: sessions opened before a reset end with it."""
        return hashlib.sha256(self.secret_hash.encode()).hexdigest()[:16]


class UserStore:
    """The users file: `{"users": {"<user id>": {"secret_hash": ..., "updated_at": ...}}}`."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else users_path()

    def _read(self) -> dict:
        if not self.path.exists():
            return {"users": {}}
        if not self.path.is_file() or self.path.is_symlink():
            raise IdentityError(f"{self.path}: the users file must be a regular file")
        mode = stat.S_IMODE(self.path.lstat().st_mode)
        if mode & 0o077:
            # whoever can write it can add themselves as an approver; whoever can read it can guess offline
            raise IdentityError(f"{self.path}: the users file is readable or writable by others (mode {mode:o}); "
                                f"it must be 0600 (chmod 600 {self.path})")
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IdentityError(f"{self.path}: not a readable users file: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
            raise IdentityError(f"{self.path}: top level must be a mapping with a `users` mapping")
        return data

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".users-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
                fh.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, user_id: str) -> User | None:
        try:
            uid = normalize_user_id(user_id)
        except IdentityError:
            return None
        rec = self._read()["users"].get(uid)
        if not isinstance(rec, dict) or not isinstance(rec.get("secret_hash"), str):
            return None
        return User(uid, rec["secret_hash"], str(rec.get("updated_at", "")))

    def list(self) -> list[User]:
        return [u for u in (self.get(uid) for uid in sorted(self._read()["users"])) if u is not None]

    def set_secret(self, user_id: str, secret: str) -> User:
        uid = normalize_user_id(user_id)
        data = self._read()
        data["users"][uid] = {
            "secret_hash": hash_secret(validate_secret(secret)),
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._write(data)
        return self.get(uid)

    def remove(self, user_id: str) -> bool:
        uid = normalize_user_id(user_id)
        data = self._read()
        if uid not in data["users"]:
            return False
        del data["users"][uid]
        self._write(data)
        return True

    def authenticate(self, user_id: str, secret: str) -> User | None:
        """The user when the secret is theirs, else None (same work either way)."""
        user = self.get(user_id) if isinstance(user_id, str) else None
        ok = check_secret(secret if isinstance(secret, str) else "", user.secret_hash if user else _DUMMY_HASH)
        return user if ok and user is not None else None


def generate_token() -> str:
    return secrets.token_urlsafe(32)


# ---- command line: `weathervane users set-password|list|remove` ----

def _read_secret(args) -> tuple[str, bool]:
    """(secret, generated): a fresh token with --generate, else the prompt (twice) or one line of stdin."""
    import getpass
    import sys

    if args.generate:
        return generate_token(), True
    if sys.stdin.isatty():
        first = getpass.getpass(f"password for {args.user}: ")
        if getpass.getpass("again: ") != first:
            raise IdentityError("the two passwords differ")
        return first, False
    line = sys.stdin.readline()
    return line.rstrip("\r\n"), False


def _cmd_set_password(args) -> int:
    from weathervane.console import console

    store = UserStore(args.users_file)
    try:
        secret, generated = _read_secret(args)
        user = store.set_secret(args.user, secret)
    except IdentityError as exc:
        console.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    console.print(f"secret of {user.user_id} set (salted scrypt hash in {store.path})", markup=False)
    if generated:
        # shown once: only its hash is kept
        print(secret)
    return 0


ROLES = {"approver": "approvers", "applier": "appliers", "viewer": "viewers"}


def grant_role(landing_root, tenant_id: str, user_id: str, role: str) -> tuple[Path, bool]:
    """Add `user_id` to the tenant.yaml list of `role` (autopilot.approvers / appliers / viewers); returns the file
    and whether it changed. The file is validated before and after and replaced atomically; its comments are not
    kept (the YAML is rewritten)."""
    import yaml

    from weathervane import config

    user_id = normalize_user_id(user_id)
    if role not in ROLES:
        raise IdentityError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    config.load_tenant_config(landing_root, tenant_id)  # a broken tenant.yaml is reported, not rewritten
    path = config.tenant_dir(Path(landing_root), tenant_id) / "tenant.yaml"
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else {}
    people = data.setdefault("autopilot", {}).setdefault(ROLES[role], [])
    if user_id in people:
        return path, False
    people.append(user_id)
    config.TenantConfig.model_validate(data)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tenant.yaml.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, sort_keys=False, allow_unicode=True)
    os.replace(tmp, path)
    return path, True


def _cmd_add(args) -> int:
    """A new person: their secret (prompt, stdin or --generate) and their role on a tenant in tenant.yaml."""
    from weathervane import config
    from weathervane.console import console

    store = UserStore(args.users_file)
    try:
        tenant = config.validate_tenant_id(args.tenant)
        user_id = normalize_user_id(args.user)
        if args.role not in ROLES:
            raise IdentityError(f"role must be one of {', '.join(ROLES)}, not {args.role!r}")
        if not (config.landing_root() / tenant).is_dir():
            raise IdentityError(f"no tenant {tenant!r} under {config.landing_root()}")
        secret, generated = _read_secret(args)
        user = store.set_secret(user_id, secret)
        path, changed = grant_role(config.landing_root(), tenant, user.user_id, args.role)
    except (IdentityError, ValueError) as exc:
        console.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    console.print(f"{user.user_id} can sign in to the approvals page (salted scrypt hash in {store.path}); "
                  f"{args.role} of {tenant}: {'added to' if changed else 'already in'} {path}", markup=False,
                  highlight=False)
    if generated:
        print(secret)  # shown once: only its hash is kept
    return 0


def _cmd_list(args) -> int:
    from weathervane.console import print_table

    try:
        users = UserStore(args.users_file).list()
    except IdentityError as exc:
        print(f"error: {exc}")
        return 2
    print_table("Users", ["user", "secret set at"], [(u.user_id, u.updated_at) for u in users])
    return 0


def _cmd_remove(args) -> int:
    try:
        removed = UserStore(args.users_file).remove(args.user)
    except IdentityError as exc:
        print(f"error: {exc}")
        return 2
    print(f"{args.user}: {'removed' if removed else 'not found'}")
    return 0 if removed else 3


def add_users_cli(subparsers):
    users = subparsers.add_parser("users", help="people who sign in to the approvals page (salted hashes only)")
    sub = users.add_subparsers(dest="users_command", required=True)

    def common(p):
        p.add_argument("--users-file", help="users file (default $WEATHERVANE_USERS or data/users.json)")
        return p

    s = common(sub.add_parser("set-password", help="set a person's password (prompt, or one line on stdin)"))
    s.add_argument("--user", required=True, help="user id as tenant.yaml role lists name it (e.g. an e-mail)")
    s.add_argument("--generate", action="store_true", help="generate a random token, print it once")
    s.set_defaults(func=_cmd_set_password)
    a = common(sub.add_parser("add", help="add a person: a password and a role on one tenant (tenant.yaml)"))
    a.add_argument("--user", required=True, help="user id the ledger records (e.g. an e-mail)")
    a.add_argument("--tenant", required=True)
    a.add_argument("--role", required=True, choices=sorted(ROLES),
                   help="approver: approve or reject plans; applier: apply and roll back; viewer: read only")
    a.add_argument("--generate", action="store_true", help="generate a random token, print it once")
    a.set_defaults(func=_cmd_add)
    common(sub.add_parser("list", help="user ids and when their secret was set")).set_defaults(func=_cmd_list)
    r = common(sub.add_parser("remove", help="remove a person (their sessions end)"))
    r.add_argument("--user", required=True)
    r.set_defaults(func=_cmd_remove)
    return users
