"""Notifications of plan transitions: a row in decisions.outbox for each, posted to the tenant's webhook.

The outbox row is written in the same transaction as the event, so no transition goes unannounced; the webhook
post happens after commit, with a short timeout, and its outcome is recorded on the row, never raised.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime

from weathervane.config import TenantConfig

WEBHOOK_TIMEOUT_S = 3.0
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


def post_json(url: str, payload: str, timeout: float = WEBHOOK_TIMEOUT_S) -> str | None:
    """POST the payload; None on a 2xx answer, else the reason it failed."""
    if not url.lower().startswith(("http://", "https://")):
        return f"webhook_url must be http(s): {url!r}"
    req = urllib.request.Request(
        url, data=payload.encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "weathervane"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    return None if 200 <= status < 300 else f"HTTP {status}"


def deliver_pending(con, tenant_id: str, timeout: float = WEBHOOK_TIMEOUT_S, retry_failed: bool = False) -> int:
    """Post the tenant's pending notifications (and earlier failures when asked); returns how many got through."""
    states = ["pending", "failed"] if retry_failed else ["pending"]
    rows = con.execute(
        "select notification_id, webhook_url, payload from decisions.outbox "
        "where tenant_id = ? and list_contains(?, delivery_status) order by created_at", [tenant_id, states]
    ).fetchall()
    delivered = 0
    for notification_id, url, payload in rows:
        error = post_json(url, payload, timeout)
        con.execute(
            "update decisions.outbox set delivery_status = ?, delivery_error = ?, delivered_at = ? "
            "where notification_id = ?",
            ["failed" if error else "delivered", error, None if error else _now(), notification_id],
        )
        delivered += error is None
    return delivered
