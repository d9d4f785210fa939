"""Sign-in sessions, CSRF tokens and sign-in throttling for the approvals page.

Sessions are kept on the server (in this process): the cookie holds only a signed, random session id and the
CSRF token, so signing out or the session's expiry ends it for good, and a password reset ends the person's
open sessions (each session remembers the fingerprint of the secret it was opened with).
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass
class SignedIn:
    user_id: str
    fingerprint: str
    expires_at: float


class SessionStore:
    def __init__(self, lifetime_s: float):
        self.lifetime_s = lifetime_s
        self._sessions: dict[str, SignedIn] = {}
        self._lock = threading.Lock()

    def open(self, user_id: str, fingerprint: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            # forget expired sessions as new ones open, so the table stays small
            for k in [k for k, s in self._sessions.items() if s.expires_at <= now]:
                del self._sessions[k]
            self._sessions[sid] = SignedIn(user_id, fingerprint, now + self.lifetime_s)
        return sid

    def get(self, sid: str | None) -> SignedIn | None:
        """The live session, or None when unknown or expired (an expired one is dropped)."""
        if not sid:
            return None
        with self._lock:
            s = self._sessions.get(sid)
            if s is not None and s.expires_at <= time.time():
                del self._sessions[sid]
                return None
            return s

    def close(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)


class Throttle:
    """At most `limit` failed sign-ins per key (user id, remote address) in `window_s` seconds."""

    def __init__(self, limit: int = 8, window_s: float = 900.0):
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def blocked(self, *keys: str) -> bool:
        with self._lock:
            now = time.time()
            return any(len(self._recent(k, now)) >= self.limit for k in keys)

    def fail(self, *keys: str) -> None:
        with self._lock:
            now = time.time()
            for k in keys:
                self._failures.setdefault(k, []).append(now)

    def clear(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and isinstance(given, str) and secrets.compare_digest(expected, given)
