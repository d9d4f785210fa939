"""Notifications of plan transitions: a row in decisions.outbox for each, posted to the tenant's webhook.

The outbox row is written in the same transaction as the event, so no transition goes unannounced. Posting
happens after the commit: `deliver_outbox` holds no warehouse connection while it talks to the network (it
claims the rows, lets go of the warehouse, posts, then records the outcomes in a second short turn).

Every post has a total deadline (a server trickling bytes cannot hold it), goes only to http(s) hosts whose
addresses are public unless tenant.yaml `autopilot.webhook_allow_private` lists them (checked on the address the
socket actually reached), and its outcome - any failure, with its reason - is recorded on the row with the
attempt count, never raised. Retries are idempotent: a delivered row is never posted again, and every post
carries the notification id as `Idempotency-Key` for the receiver to drop duplicates.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from weathervane import config
from weathervane.config import TenantConfig
from weathervane.warehouse import transaction

WEBHOOK_TIMEOUT_S = 3.0  # total time for one post: connect, send, and the answer's status line
DELIVERY_BUDGET_S = 15.0  # total time for one delivery run; what is left waits for the next
CLAIM_EXPIRY = timedelta(minutes=10)  # a claim older than this belonged to a process that died
SUBJECTS = {
    "proposed": "New budget plan proposed, waiting for approval",
    "approved": "Budget plan approved",
    "rejected": "Budget plan rejected",
    "applied": "Budget plan applied",
    "rolled_back": "Budget plan rolled back",
    "superseded": "Budget plan superseded",
}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def enqueue(con, event, cfg: TenantConfig) -> str:
    """Inside the caller's transaction: one outbox row for the event."""
    plan = con.execute(
        "select horizon_start, horizon_end, total_budget, expected_kpi_mean, baseline_kpi_mean, report_path "
        "from decisions.plans where plan_id = ?", [event.plan_id]
    ).fetchone()
    payload = {
        "kind": f"plan_{event.to_status}",
        "subject": SUBJECTS.get(event.to_status, event.to_status),
        "tenant_id": event.tenant_id,
        "plan_id": event.plan_id,
        "event_id": event.event_id,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor": event.actor,
        "os_user": getattr(event, "os_user", None),
        "reason": event.reason,
        "at": event.at.isoformat(),
        "recipients": list(cfg.autopilot.approvers),
    }
    if plan:
        payload.update({
            "horizon_start": str(plan[0]), "horizon_end": str(plan[1]), "total_budget": plan[2],
            "expected_kpi_mean": plan[3], "baseline_kpi_mean": plan[4], "report_path": plan[5],
        })
    url = cfg.autopilot.webhook_url
    notification_id = uuid.uuid4().hex
    con.execute(
        "insert into decisions.outbox (notification_id, tenant_id, plan_id, event_id, created_at, kind, recipients, "
        "payload, webhook_url, delivery_status, delivery_error, delivered_at) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, null)",
        [notification_id, event.tenant_id, event.plan_id, event.event_id, _now(), payload["kind"],
         json.dumps(payload["recipients"]), json.dumps(payload, default=str), url,
         "pending" if url else "no_webhook"],
    )
    return notification_id


class WebhookRefused(ValueError):
    """A webhook target this host must not post to."""


def _allowed_private(address: str, host: str, allow: list[str]) -> bool:
    ip = ipaddress.ip_address(address)
    for entry in allow:
        if "/" in entry:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        elif entry.lower() in (host.lower(), address):
            return True
    return False


def check_address(address: str, host: str, allow: list[str]) -> None:
    """Raise WebhookRefused for loopback, private, link-local (cloud metadata), multicast or reserved addresses
    unless tenant.yaml allows the host or the network."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    if ip.is_global and not ip.is_multicast:
        return
    if _allowed_private(str(ip), host, allow):
        return
    kind = ("loopback" if ip.is_loopback else "link-local" if ip.is_link_local else
            "private" if ip.is_private else "non-public")
    raise WebhookRefused(f"refused: {host} resolves to {kind} address {ip} "
                         "(allow it in tenant.yaml autopilot.webhook_allow_private)")


class _Connection:
    """http.client connection whose peer address is checked right after connecting."""

    def __init__(self, url: str, timeout: float, allow: list[str]):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WebhookRefused(f"refused: webhook_url must be an http(s) URL with a host: {url!r}")
        self.host = parts.hostname
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        kwargs = {"context": ssl.create_default_context()} if parts.scheme == "https" else {}
        self.conn = cls(parts.hostname, parts.port, timeout=timeout, **kwargs)
        self.allow = allow

    def connect(self) -> None:
        for *_, sockaddr in socket.getaddrinfo(self.host, None, type=socket.SOCK_STREAM):
            check_address(sockaddr[0], self.host, self.allow)  # every address the name resolves to
        self.conn.connect()
        check_address(self.conn.sock.getpeername()[0], self.host, self.allow)  # and the one reached

    def abort(self) -> None:
        sock = self.conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def post_json(url: str, payload: str, timeout: float = WEBHOOK_TIMEOUT_S, allow_private: list[str] | None = None,
              idempotency_key: str | None = None) -> str | None:
    """POST the payload; None on a 2xx answer, else the reason it failed. Never raises, never exceeds `timeout`."""
    result: dict = {}
    try:
        c = _Connection(url, timeout, list(allow_private or []))
    except WebhookRefused as exc:
        return str(exc)

    def run():
        try:
            c.connect()
            headers = {"Content-Type": "application/json", "User-Agent": "weathervane"}
            if idempotency_key:
                headers["Idempotency-Key"] = idempotency_key
            c.conn.request("POST", c.path, body=payload.encode(), headers=headers)
            resp = c.conn.getresponse()
            result["status"] = resp.status
            result["reason"] = resp.reason
        except WebhookRefused as exc:
            result["error"] = str(exc)
        except (http.client.HTTPException, OSError, ValueError) as exc:
            result["error"] = f"{type(exc).__name__}: {exc}".rstrip(": ")
        except Exception as exc:  # noqa: BLE001 - a webhook must never take the decision down with it
            result["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            c.conn.close()

    worker = threading.Thread(target=run, name="weathervane-webhook", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        c.abort()  # unblocks a read that a trickling server keeps alive
        worker.join(1.0)
        return f"no complete answer within {timeout:g}s (deadline for the whole post)"
    if "error" in result:
        return result["error"]
    status = result.get("status", 0)
    return None if 200 <= status < 300 else f"HTTP {status} {result.get('reason', '')}".rstrip()


@dataclass
class Claimed:
    notification_id: str
    url: str | None
    payload: str
    attempts: int


@dataclass
class DeliveryReport:
    tenant_id: str
    delivered: int = 0
    failed: list[str] = field(default_factory=list)  # "<kind> <notification id>: <reason>"
    skipped: int = 0  # no webhook configured

    def describe(self) -> str:
        parts = [f"{self.delivered} notification(s) delivered"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed (recorded on decisions.outbox; retry with "
                         "`weathervane plans notify --tenant <tenant> --retry-failed`)")
        return ", ".join(parts)


def claim(con, tenant_id: str, retry_failed: bool = False) -> list[Claimed]:
    """In one short write: mark the tenant's deliverable rows `sending` (so no second process posts them too)."""
    states = ["pending", "failed"] if retry_failed else ["pending"]
    now = _now()
    with transaction(con):
        rows = con.execute(
            "select notification_id, webhook_url, payload, coalesce(attempts, 0) from decisions.outbox "
            "where tenant_id = ? and (list_contains(?, delivery_status) "
            "or (delivery_status = 'sending' and last_attempt_at < ?)) order by created_at",
            [tenant_id, states, now - CLAIM_EXPIRY],
        ).fetchall()
        if rows:
            con.execute(
                "update decisions.outbox set delivery_status = 'sending', last_attempt_at = ? "
                "where list_contains(?, notification_id)", [now, [r[0] for r in rows]],
            )
    return [Claimed(*r) for r in rows]


def post_claimed(claimed: list[Claimed], cfg: TenantConfig, timeout: float = WEBHOOK_TIMEOUT_S,
                 budget: float = DELIVERY_BUDGET_S) -> list[tuple]:
    """Post each claimed row to the tenant's webhook (tenant.yaml, outside the warehouse; no warehouse involved);
    returns (notification_id, status, error, url, attempts)."""
    url, allow = cfg.autopilot.webhook_url, list(cfg.autopilot.webhook_allow_private)
    outcomes = []
    deadline = time.monotonic() + budget
    for c in claimed:
        if url is None:
            outcomes.append((c.notification_id, "no_webhook", None, None, c.attempts))
            continue
        left = deadline - time.monotonic()
        if left <= 0.05:
            outcomes.append((c.notification_id, "failed", "not attempted: this run's delivery time was spent",
                             url, c.attempts))
            continue
        error = post_json(url, c.payload, min(timeout, left), allow, idempotency_key=c.notification_id)
        outcomes.append((c.notification_id, "failed" if error else "delivered", error, url, c.attempts + 1))
    return outcomes


def record_outcomes(con, outcomes: list[tuple]) -> None:
    now = _now()
    with transaction(con):
        for notification_id, status, error, url, attempts in outcomes:
            con.execute(
                "update decisions.outbox set delivery_status = ?, delivery_error = ?, delivered_at = ?, "
                "webhook_url = ?, attempts = ?, last_attempt_at = ? where notification_id = ?",
                [status, error, now if status == "delivered" else None, url, attempts, now, notification_id],
            )


def _report(tenant_id: str, claimed: list[Claimed], outcomes: list[tuple]) -> DeliveryReport:
    report = DeliveryReport(tenant_id)
    kinds = {c.notification_id: json.loads(c.payload).get("kind", "") for c in claimed}
    for notification_id, status, error, *_ in outcomes:
        if status == "delivered":
            report.delivered += 1
        elif status == "no_webhook":
            report.skipped += 1
        else:
            report.failed.append(f"{kinds.get(notification_id)} {notification_id}: {error}")
    return report


def deliver_pending(con, tenant_id: str, cfg: TenantConfig, timeout: float = WEBHOOK_TIMEOUT_S,
                    retry_failed: bool = False) -> int:
    """Post the tenant's pending notifications (and earlier failures when asked) on `con`; returns how many got
    through. The caller's connection stays open while posting (bounded by DELIVERY_BUDGET_S): a process sharing
    the warehouse uses `deliver_outbox` instead."""
    from weathervane.governance.events import anchor_head

    anchor_head(con, tenant_id)  # a proposal committed by the caller
    claimed = claim(con, tenant_id, retry_failed)
    if not claimed:
        return 0
    outcomes = post_claimed(claimed, cfg, timeout)
    record_outcomes(con, outcomes)
    return sum(o[1] == "delivered" for o in outcomes)


def deliver_outbox(tenant_id: str, warehouse: Path | str, cfg: TenantConfig, *,
                   retry_failed: bool = False, timeout: float = WEBHOOK_TIMEOUT_S,
                   lock_wait_s: float = 30.0) -> DeliveryReport:
    """Post the tenant's pending notifications while holding no warehouse connection: claim (short write),
    release, post, then record the outcomes (short write)."""
    from weathervane.governance.events import anchor_head
    from weathervane.governance.tables import ensure_decision_tables
    from weathervane.warehouse import connect, tenant_path

    tenant_id = config.validate_tenant_id(tenant_id)
    warehouse = tenant_path(warehouse, tenant_id)  # the tenant's own file in a folder warehouse
    con = connect(warehouse, lock_wait_s=lock_wait_s)
    try:
        ensure_decision_tables(con)
        anchor_head(con, tenant_id)
        claimed = claim(con, tenant_id, retry_failed)
    finally:
        con.close()
    if not claimed:
        return DeliveryReport(tenant_id)
    outcomes = post_claimed(claimed, cfg, timeout)
    con = connect(warehouse, lock_wait_s=lock_wait_s)
    try:
        record_outcomes(con, outcomes)
    finally:
        con.close()
    return _report(tenant_id, claimed, outcomes)
