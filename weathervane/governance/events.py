"""Plan lifecycle: every status change is an event in an append-only, hash-chained log.

`decisions.plans.status` is only a projection of the newest event of each plan; the log is the record.
Each tenant has one chain: an event's hash is sha256 over a canonical JSON of its fields and the hash of the
tenant's previous event, so editing a field, deleting an event or reordering events breaks the chain and
`verify_chain` names where.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from weathervane.config import TenantConfig, validate_tenant_id
from weathervane.governance.tables import ensure_decision_tables

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "weathervane"

STATUSES = ("proposed", "approved", "rejected", "applied", "rolled_back", "superseded")
# from_status -> allowed to_status. proposed -> applied is added only when approval is not required.
TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({"proposed"}),
    "proposed": frozenset({"approved", "rejected", "superseded"}),
    "approved": frozenset({"applied", "rejected", "superseded"}),
    "applied": frozenset({"rolled_back", "superseded"}),
    "rejected": frozenset(),
    "rolled_back": frozenset(),
    "superseded": frozenset(),
}
HASHED_FIELDS = ("tenant_id", "seq", "event_id", "plan_id", "at", "actor", "from_status", "to_status", "reason")


class GovernanceError(ValueError):
    """A plan decision that the rules refuse."""


class PlanNotFound(GovernanceError):
    pass


class IllegalTransition(GovernanceError):
    pass


class NotAnApprover(GovernanceError):
    pass


@dataclass(frozen=True)
class PlanEvent:
    tenant_id: str
    seq: int
    event_id: str
    plan_id: str
    at: datetime
    actor: str
    from_status: str | None
    to_status: str
    reason: str | None
    prev_hash: str
    hash: str = ""

    def fields(self) -> dict:
        return {
            "tenant_id": self.tenant_id, "seq": self.seq, "event_id": self.event_id, "plan_id": self.plan_id,
            "at": self.at.isoformat(timespec="microseconds"), "actor": self.actor,
            "from_status": self.from_status, "to_status": self.to_status, "reason": self.reason,
        }


def canonical_json(fields: dict, prev_hash: str) -> str:
    return json.dumps({**fields, "prev_hash": prev_hash}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(event: PlanEvent) -> str:
    return hashlib.sha256(canonical_json(event.fields(), event.prev_hash).encode()).hexdigest()


def _now() -> datetime:
    # Naive UTC: what a DuckDB TIMESTAMP stores and returns, so the hashed text round-trips exactly.
    return datetime.now(UTC).replace(tzinfo=None)


def _chain_head(con, tenant_id: str) -> tuple[int, str]:
    row = con.execute(
        "select seq, hash from decisions.plan_events where tenant_id = ? order by seq desc limit 1", [tenant_id]
    ).fetchone()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def plan_status(con, plan_id: str) -> tuple[str, str]:
    """(tenant_id, status) of a plan; raises PlanNotFound."""
    row = con.execute("select tenant_id, status from decisions.plans where plan_id = ?", [plan_id]).fetchone()
    if row is None:
        raise PlanNotFound(f"plan {plan_id!r} not found in decisions.plans")
    return row[0], row[1]


def plan_events(con, plan_id: str) -> list[PlanEvent]:
    rows = con.execute(
        "select tenant_id, seq, event_id, plan_id, \"at\", actor, from_status, to_status, reason, prev_hash, hash "
        "from decisions.plan_events where plan_id = ? order by seq", [plan_id]
    ).fetchall()
    return [PlanEvent(*r) for r in rows]


def is_approver(actor: str, cfg: TenantConfig) -> bool:
    return actor.strip().lower() in {a.strip().lower() for a in cfg.autopilot.approvers}


def _check_transition(con, plan_id: str, current: str | None, to_status: str, actor: str, cfg: TenantConfig) -> None:
    if to_status not in STATUSES:
        raise IllegalTransition(f"plan {plan_id}: unknown status {to_status!r}; expected one of {', '.join(STATUSES)}")
    allowed = set(TRANSITIONS[current])
    if current == "proposed" and not cfg.autopilot.requires_approval:
        allowed.add("applied")
    if to_status not in allowed:
        hint = ""
        if current == "proposed" and to_status == "applied":
            hint = " (tenant.yaml autopilot.requires_approval is true: approve it first)"
        raise IllegalTransition(
            f"plan {plan_id}: cannot move from {current} to {to_status}{hint}; "
            f"allowed from {current}: {', '.join(sorted(allowed)) or 'none (final status)'}"
        )
    if to_status == "approved" and cfg.autopilot.requires_approval:
        if not cfg.autopilot.approvers:
            raise NotAnApprover(
                f"plan {plan_id}: tenant.yaml autopilot.approvers is empty, so no one may approve plans"
            )
        if not is_approver(actor, cfg):
            raise NotAnApprover(
                f"plan {plan_id}: {actor!r} is not a listed approver (tenant.yaml autopilot.approvers: "
                f"{', '.join(cfg.autopilot.approvers)})"
            )
    if to_status == "applied" and cfg.autopilot.requires_approval:
        approvals = [e for e in plan_events(con, plan_id) if e.to_status == "approved" and is_approver(e.actor, cfg)]
        if not approvals:
            raise NotAnApprover(f"plan {plan_id}: no recorded approval by a listed approver; it cannot be applied")


def append_event(
    con, tenant_id: str, plan_id: str, from_status: str | None, to_status: str, actor: str, reason: str | None
) -> PlanEvent:
    """Append one event and move the plan's status. Runs inside the caller's transaction; checks nothing."""
    seq, prev = _chain_head(con, tenant_id)
    ev = PlanEvent(tenant_id, seq + 1, uuid.uuid4().hex, plan_id, _now(), actor, from_status, to_status, reason, prev)
    ev = PlanEvent(**{**ev.__dict__, "hash": event_hash(ev)})
    con.execute(
        "insert into decisions.plan_events (event_id, plan_id, \"at\", actor, from_status, to_status, reason, "
        "prev_hash, hash, tenant_id, seq) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ev.event_id, plan_id, ev.at, actor, from_status, to_status, reason, ev.prev_hash, ev.hash, tenant_id, ev.seq],
    )
    con.execute("update decisions.plans set status = ? where plan_id = ?", [to_status, plan_id])
    return ev


def record_proposal(con, tenant_id: str, plan_id: str, cfg: TenantConfig, actor: str = SYSTEM_ACTOR) -> list[PlanEvent]:
    """Inside the caller's transaction, after the plan row was inserted: the `proposed` event, and older
    proposals of the tenant superseded (a newer plan replaces them)."""
    from weathervane.governance.outbox import enqueue

    events = [append_event(con, tenant_id, plan_id, None, "proposed", actor, "new plan from the allocator")]
    stale = con.execute(
        "select plan_id from decisions.plans where tenant_id = ? and status = 'proposed' and plan_id <> ? "
        "order by created_at", [tenant_id, plan_id]
    ).fetchall()
    for (old,) in stale:
        events.append(append_event(con, tenant_id, old, "proposed", "superseded", actor, f"superseded by plan {plan_id}"))
    for ev in events:
        enqueue(con, ev, cfg)
    return events


def transition(
    con, plan_id: str, to_status: str, actor: str, reason: str | None, cfg: TenantConfig,
    tenant_id: str | None = None, deliver: bool = True,
) -> list[PlanEvent]:
    """Move a plan to `to_status` through a recorded event, or raise GovernanceError saying why not.

    Applying a plan supersedes the tenant's other applied plan (one budget is live at a time).
    Notifications go to decisions.outbox in the same transaction and are posted to the webhook afterwards.
    """
    from weathervane.governance.outbox import deliver_pending, enqueue

    if not actor or not actor.strip():
        raise GovernanceError(f"plan {plan_id}: an actor is required")
    ensure_decision_tables(con)
    con.execute("begin transaction")
    try:
        owner, current = plan_status(con, plan_id)
        if tenant_id is not None and validate_tenant_id(tenant_id) != owner:
            raise PlanNotFound(f"plan {plan_id!r} belongs to tenant {owner!r}, not {tenant_id!r}")
        _check_transition(con, plan_id, current, to_status, actor, cfg)
        events = [append_event(con, owner, plan_id, current, to_status, actor.strip(), reason)]
        if to_status == "applied":
            live = con.execute(
                "select plan_id from decisions.plans where tenant_id = ? and status = 'applied' and plan_id <> ?",
                [owner, plan_id],
            ).fetchall()
            for (old,) in live:
                events.append(append_event(con, owner, old, "applied", "superseded", actor.strip(),
                                           f"superseded by plan {plan_id}"))
        for ev in events:
            enqueue(con, ev, cfg)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    if deliver:
        deliver_pending(con, owner)
    return events


def approve(con, plan_id, actor, reason, cfg, tenant_id=None):
    return transition(con, plan_id, "approved", actor, reason, cfg, tenant_id)


def reject(con, plan_id, actor, reason, cfg, tenant_id=None):
    return transition(con, plan_id, "rejected", actor, reason, cfg, tenant_id)


def apply(con, plan_id, actor, reason, cfg, tenant_id=None):
    return transition(con, plan_id, "applied", actor, reason, cfg, tenant_id)


def roll_back(con, plan_id, actor, reason, cfg, tenant_id=None):
    return transition(con, plan_id, "rolled_back", actor, reason, cfg, tenant_id)


@dataclass
class ChainReport:
    tenant_id: str
    events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(con, tenant_id: str, cfg: TenantConfig | None = None) -> ChainReport:
    """Recompute the tenant's chain and cross-check plan statuses; every break is named by seq and event id."""
    tenant_id = validate_tenant_id(tenant_id)
    ensure_decision_tables(con)
    report = ChainReport(tenant_id)
    rows = con.execute(
        "select tenant_id, seq, event_id, plan_id, \"at\", actor, from_status, to_status, reason, prev_hash, hash "
        "from decisions.plan_events where tenant_id = ? order by seq, \"at\"", [tenant_id]
    ).fetchall()
    report.events = len(rows)
    prev_hash, last_status = GENESIS_HASH, {}
    for i, row in enumerate(rows, start=1):
        ev = PlanEvent(*row)
        where = f"event seq {ev.seq} ({ev.event_id}, plan {ev.plan_id})"
        if ev.seq != i:
            report.problems.append(f"{where}: expected seq {i}: an event was deleted or reordered")
        if ev.prev_hash != prev_hash:
            report.problems.append(f"{where}: prev_hash does not match the previous event's hash "
                                   "(an event before it was deleted, edited or reordered)")
        if event_hash(ev) != ev.hash:
            report.problems.append(f"{where}: hash does not match its fields (the event was edited)")
        if ev.from_status != last_status.get(ev.plan_id):
            report.problems.append(f"{where}: from_status {ev.from_status} but the plan's previous event left it "
                                   f"{last_status.get(ev.plan_id)}")
        if ev.to_status == "applied" and cfg is not None and cfg.autopilot.requires_approval:
            approved = any(
                PlanEvent(*r).to_status == "approved" and PlanEvent(*r).plan_id == ev.plan_id
                and is_approver(PlanEvent(*r).actor, cfg) for r in rows[: i - 1]
            )
            if not approved:
                report.problems.append(f"{where}: applied without a recorded approval by a listed approver")
        last_status[ev.plan_id] = ev.to_status
        prev_hash = ev.hash
    for plan_id, status in con.execute(
        "select plan_id, status from decisions.plans where tenant_id = ? order by plan_id", [tenant_id]
    ).fetchall():
        if last_status.get(plan_id) != status:
            report.problems.append(
                f"plan {plan_id}: status {status} but its last recorded event says {last_status.get(plan_id)}"
            )
    return report
