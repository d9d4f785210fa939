"""Plan lifecycle: every status change is an event in an append-only, hash-chained log.

`decisions.plans.status` is only a projection of the newest event of each plan; the log is the record.
Each tenant has one chain: an event's hash is sha256 over a canonical JSON of its fields and the hash of the
tenant's previous event, so editing a field, deleting an event or reordering events breaks the chain and
`verify_chain` names where. A chain recomputed after an edit, or cut short at its end, is caught by what lives
outside the warehouse (weathervane.governance.ledger): each event's hash is signed with the ledger key, and each
committed head is appended to the head log. Events carry the hash of their plan's content (lines and budget),
so a plan edited after its approval no longer matches what was approved, and the operating-system user who ran
the command beside the actor they named.
"""
from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from weathervane.config import TenantConfig, validate_tenant_id
from weathervane.governance import ledger
from weathervane.governance.tables import ensure_decision_tables, table_exists

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
# Hashed when present (events written before they existed keep their hashes).
OPTIONAL_HASHED_FIELDS = ("os_user", "content_hash")
EVENT_COLUMNS = ("tenant_id", "seq", "event_id", "plan_id", "at", "actor", "from_status", "to_status", "reason",
                 "prev_hash", "hash", "os_user", "content_hash", "mac")


class GovernanceError(ValueError):
    """A plan decision that the rules refuse."""


class PlanNotFound(GovernanceError):
    pass


class IllegalTransition(GovernanceError):
    pass


class NotAnApprover(GovernanceError):
    pass


class NotAnApplier(NotAnApprover):
    """Applying and rolling back need a name in tenant.yaml autopilot.appliers."""


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
    os_user: str | None = None  # who ran the command, as the operating system knows them
    content_hash: str | None = None  # sha256 of the plan's lines and budget when the event was written
    mac: str | None = None  # the hash signed with the ledger key (not part of the hash)

    def fields(self) -> dict:
        out = {
            "tenant_id": self.tenant_id, "seq": self.seq, "event_id": self.event_id, "plan_id": self.plan_id,
            "at": self.at.isoformat(timespec="microseconds"), "actor": self.actor,
            "from_status": self.from_status, "to_status": self.to_status, "reason": self.reason,
        }
        for name in OPTIONAL_HASHED_FIELDS:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


def canonical_json(fields: dict, prev_hash: str) -> str:
    return json.dumps({**fields, "prev_hash": prev_hash}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(event: PlanEvent) -> str:
    return hashlib.sha256(canonical_json(event.fields(), event.prev_hash).encode()).hexdigest()


def _now() -> datetime:
    # Naive UTC: what a DuckDB TIMESTAMP stores and returns, so the hashed text round-trips exactly.
    return datetime.now(UTC).replace(tzinfo=None)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid:{os.getuid()}"


def plan_content_hash(con, plan_id: str) -> str | None:
    """sha256 over the plan's budget, horizon and lines (channel, geo, recommended spend); None for no plan."""
    plan = con.execute(
        "select tenant_id, horizon_start, horizon_end, total_budget from decisions.plans where plan_id = ?", [plan_id]
    ).fetchone()
    if plan is None:
        return None
    lines = con.execute(
        "select channel, geo_id, recommended_spend, min_spend, max_spend from decisions.plan_lines "
        "where plan_id = ? order by channel, geo_id, recommended_spend", [plan_id]
    ).fetchall()
    content = {"plan_id": plan_id, "tenant_id": plan[0], "horizon_start": str(plan[1]), "horizon_end": str(plan[2]),
               "total_budget": plan[3], "lines": [list(line) for line in lines]}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _event_select(con) -> str:
    """The event columns, with NULL for those an older warehouse lacks (verification must not write)."""
    have = {r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = 'decisions' "
        "and table_name = 'plan_events'").fetchall()}
    return ", ".join(f'"{c}"' if c in have else f'null as "{c}"' for c in EVENT_COLUMNS)


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
        f"select {_event_select(con)} from decisions.plan_events where plan_id = ? order by seq", [plan_id]
    ).fetchall()
    return [PlanEvent(*r) for r in rows]


def is_approver(actor: str, cfg: TenantConfig) -> bool:
    return actor.strip().lower() in {a.strip().lower() for a in cfg.autopilot.approvers}


def is_applier(actor: str, cfg: TenantConfig) -> bool:
    return actor.strip().lower() in {a.strip().lower() for a in cfg.autopilot.appliers}


def _refuse_in_shadow(con, tenant_id: str, plan_id: str, cfg: TenantConfig) -> None:
    """Shadow mode computes plans and never applies them: tenant.yaml's mode or the ledger's recorded one."""
    from weathervane.governance.autopilot import recorded_mode

    if "shadow" in (cfg.autopilot.mode, recorded_mode(con, tenant_id)):
        raise IllegalTransition(f"plan {plan_id}: autopilot mode is shadow, so plans are computed and never "
                                "applied (tenant.yaml autopilot.mode; promotion needs audited evidence)")


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
    if to_status == "approved" and cfg.autopilot.requires_distinct_approver:
        proposer = next((e.actor for e in plan_events(con, plan_id) if e.to_status == "proposed"), None)
        if proposer is not None and proposer.strip().lower() == actor.strip().lower():
            raise NotAnApprover(f"plan {plan_id}: {actor!r} proposed it and may not approve it too "
                                "(tenant.yaml autopilot.requires_distinct_approver)")
    if to_status in ("applied", "rolled_back"):
        verb = "apply" if to_status == "applied" else "roll back"
        if not cfg.autopilot.appliers:
            raise NotAnApplier(
                f"plan {plan_id}: tenant.yaml autopilot.appliers is empty, so no one may {verb} plans"
            )
        if not is_applier(actor, cfg):
            raise NotAnApplier(
                f"plan {plan_id}: {actor!r} is not a listed applier (tenant.yaml autopilot.appliers: "
                f"{', '.join(cfg.autopilot.appliers)}), so may not {verb} it"
            )
    if to_status == "applied" and cfg.autopilot.requires_approval:
        events = plan_events(con, plan_id)
        approvals = [e for e in events if e.to_status == "approved" and is_approver(e.actor, cfg)]
        if not approvals:
            raise NotAnApprover(f"plan {plan_id}: no recorded approval by a listed approver; it cannot be applied")
        approved = approvals[-1].content_hash
        if approved is not None and approved != plan_content_hash(con, plan_id):
            raise IllegalTransition(f"plan {plan_id}: its lines or budget changed after the approval; "
                                    "it cannot be applied (approve the plan as it is now, or restore it)")


def append_event(
    con, tenant_id: str, plan_id: str, from_status: str | None, to_status: str, actor: str, reason: str | None
) -> PlanEvent:
    """Append one event and move the plan's status. Runs inside the caller's transaction; checks nothing.

    The event records the OS user and the plan's content hash, and is signed with the ledger key (created on
    first use). The head is anchored in the head log by `anchor_head` once the caller has committed."""
    key = ledger.load_key(create=True)
    seq, prev = _chain_head(con, tenant_id)
    ev = PlanEvent(tenant_id, seq + 1, uuid.uuid4().hex, plan_id, _now(), actor, from_status, to_status, reason, prev,
                   os_user=os_user(), content_hash=plan_content_hash(con, plan_id))
    digest = event_hash(ev)
    ev = PlanEvent(**{**ev.__dict__, "hash": digest, "mac": ledger.event_mac(key, tenant_id, ev.seq, digest)})
    con.execute(
        "insert into decisions.plan_events (event_id, plan_id, \"at\", actor, from_status, to_status, reason, "
        "prev_hash, hash, tenant_id, seq, os_user, content_hash, mac) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ev.event_id, plan_id, ev.at, actor, from_status, to_status, reason, ev.prev_hash, ev.hash, tenant_id, ev.seq,
         ev.os_user, ev.content_hash, ev.mac],
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


def anchor_head(con, tenant_id: str) -> ledger.Head | None:
    """After a commit: append the tenant's chain head to the head log when it is newer than the last logged one.

    Only a head whose signature checks is anchored, so an event forged into the warehouse is never vouched for."""
    row = con.execute(
        "select seq, hash from decisions.plan_events where tenant_id = ? order by seq desc limit 1", [tenant_id]
    ).fetchone()
    if row is None:
        return None
    mac = con.execute(
        "select mac from decisions.plan_events where tenant_id = ? and seq = ?", [tenant_id, row[0]]
    ).fetchone()[0]
    key = ledger.load_key(create=True)
    if mac is None or not hmac.compare_digest(mac, ledger.event_mac(key, tenant_id, row[0], row[1])):
        return None
    logged, _ = ledger.latest_head(key, tenant_id)
    head = ledger.Head(tenant_id, int(row[0]), row[1])
    if logged is None or logged.seq < head.seq:
        ledger.append_head(key, head)
    return head


def transition(
    con, plan_id: str, to_status: str, actor: str, reason: str | None, cfg: TenantConfig,
    tenant_id: str | None = None, deliver: bool = True,
) -> list[PlanEvent]:
    """Move a plan to `to_status` through a recorded event, or raise GovernanceError saying why not.

    Applying a plan supersedes the tenant's other applied plan (one budget is live at a time).
    Notifications go to decisions.outbox in the same transaction. With `deliver`, they are posted right after
    the commit, within the outbox's total deadline, on this connection; a caller that shares the warehouse with
    other processes passes deliver=False, releases its connection and then calls `outbox.deliver_outbox`.
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
        if to_status == "applied":
            _refuse_in_shadow(con, owner, plan_id, cfg)
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
    anchor_head(con, owner)
    if deliver:
        deliver_pending(con, owner, cfg=cfg)
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
    """Recompute the tenant's chain and cross-check plan statuses; every break is named by seq and event id.

    Beyond the warehouse's own records: each event's signature with the ledger key, the head log's last signed
    head (a shorter chain was cut), and each approved or applied plan's content against its hash at the time."""
    tenant_id = validate_tenant_id(tenant_id)
    if not table_exists(con, "decisions", "plan_events"):
        ensure_decision_tables(con)
    report = ChainReport(tenant_id)
    rows = con.execute(
        f"select {_event_select(con)} from decisions.plan_events where tenant_id = ? order by seq, \"at\"",
        [tenant_id],
    ).fetchall()
    events = [PlanEvent(*r) for r in rows]
    report.events = len(events)
    try:
        key = ledger.load_key(create=False)
    except ledger.LedgerKeyError as exc:
        key = None
        report.problems.append(str(exc))
    if key is None and events:
        report.problems.append(f"ledger key {ledger.key_path()} not found: signatures and the head log cannot be "
                               "checked (set WEATHERVANE_LEDGER_KEY to the key this ledger was written with)")
    prev_hash, last_status = GENESIS_HASH, {}
    approved_content: dict[str, str | None] = {}
    for i, ev in enumerate(events, start=1):
        where = f"event seq {ev.seq} ({ev.event_id}, plan {ev.plan_id})"
        if ev.seq != i:
            report.problems.append(f"{where}: expected seq {i}: an event was deleted or reordered")
        if ev.prev_hash != prev_hash:
            report.problems.append(f"{where}: prev_hash does not match the previous event's hash "
                                   "(an event before it was deleted, edited or reordered)")
        if event_hash(ev) != ev.hash:
            report.problems.append(f"{where}: hash does not match its fields (the event was edited)")
        if key is not None:
            if ev.mac is None:
                report.problems.append(f"{where}: not signed with the ledger key (written outside Weathervane, "
                                       "or before signing existed)")
            elif not hmac.compare_digest(ev.mac, ledger.event_mac(key, tenant_id, ev.seq, ev.hash)):
                report.problems.append(f"{where}: signature does not match (the chain was recomputed or the event "
                                       "forged without the ledger key)")
        if ev.from_status != last_status.get(ev.plan_id):
            report.problems.append(f"{where}: from_status {ev.from_status} but the plan's previous event left it "
                                   f"{last_status.get(ev.plan_id)}")
        if ev.to_status == "applied" and cfg is not None and cfg.autopilot.requires_approval:
            approved = any(
                e.to_status == "approved" and e.plan_id == ev.plan_id and is_approver(e.actor, cfg)
                for e in events[: i - 1]
            )
            if not approved:
                report.problems.append(f"{where}: applied without a recorded approval by a listed approver")
        if ev.to_status == "approved":
            approved_content[ev.plan_id] = ev.content_hash
        elif ev.to_status == "applied" and ev.content_hash is not None \
                and approved_content.get(ev.plan_id) not in (None, ev.content_hash):
            report.problems.append(f"{where}: the plan applied differs from the plan approved")
        last_status[ev.plan_id] = ev.to_status
        prev_hash = ev.hash
    if key is not None:
        head, log_problems = ledger.latest_head(key, tenant_id)
        report.problems.extend(log_problems)
        if head is not None:
            at = events[head.seq - 1] if 0 < head.seq <= len(events) else None
            if head.seq > len(events):
                report.problems.append(
                    f"the head log recorded {head.seq} events ending in {head.hash[:12]}, the chain holds "
                    f"{len(events)}: events were deleted from its end")
            elif at is None or at.hash != head.hash:
                report.problems.append(
                    f"event seq {head.seq}: hash differs from the one the head log recorded for it "
                    f"({head.hash[:12]}): the chain was rewritten")
    for plan_id, content in approved_content.items():
        if content is not None and plan_id in last_status and last_status[plan_id] in ("approved", "applied"):
            now = plan_content_hash(con, plan_id)
            if now != content:
                report.problems.append(f"plan {plan_id}: its lines or budget changed after the approval "
                                       "(content hash differs from the one approved)")
    for plan_id, status in con.execute(
        "select plan_id, status from decisions.plans where tenant_id = ? order by plan_id", [tenant_id]
    ).fetchall():
        if last_status.get(plan_id) != status:
            report.problems.append(
                f"plan {plan_id}: status {status} but its last recorded event says {last_status.get(plan_id)}"
            )
    return report
