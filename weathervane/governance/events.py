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
from pathlib import Path

from weathervane.config import TenantConfig, validate_tenant_id
from weathervane.governance import ledger
from weathervane.governance.tables import ensure_decision_tables, table_exists
from weathervane.warehouse import transaction

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


# What an approver sees of a plan and its lines (the plan page, the API, the report it links): signed with each
# event since version 2. Columns absent from an older warehouse, and null values, are left out, so adding a
# column never changes the hash of a plan written before it.
CONTENT_PLAN_FIELDS = ("model_id", "horizon_start", "horizon_end", "total_budget", "expected_kpi_mean",
                       "expected_kpi_p05", "expected_kpi_p95", "baseline_kpi_mean", "expected_lift_mean",
                       "expected_lift_p05", "expected_lift_p95", "prob_lift_positive", "prob_better",
                       "prob_beats_keep_split", "decision", "fallback_reason", "report_path")
CONTENT_LINE_FIELDS = ("channel", "geo_id", "recommended_spend", "previous_spend", "weather_multiplier",
                       "expected_contribution_mean", "expected_contribution_p05", "expected_contribution_p95",
                       "min_spend", "max_spend")
CONTENT_V2 = "v2:"


def _present(con, table: str, wanted: tuple[str, ...]) -> list[str]:
    have = {r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = 'decisions' and table_name = ?",
        [table]).fetchall()}
    return [c for c in wanted if c in have]


def _names(cols: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in cols)


def _plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def plan_content_hash(con, plan_id: str, version: int = 2) -> str | None:
    """A hash of what an approver sees of the plan (version 2: `v2:` + sha256 over CONTENT_PLAN_FIELDS and each
    line's CONTENT_LINE_FIELDS); version 1: budget, horizon and spend of the lines only. None for no plan."""
    if version == 1:
        return _plan_content_hash_v1(con, plan_id)
    cols = _present(con, "plans", CONTENT_PLAN_FIELDS)
    # column names from the fixed lists above, never from data
    row = con.execute(f"select {_names(['tenant_id', *cols])} "
                      "from decisions.plans where plan_id = ?", [plan_id]).fetchone()
    if row is None:
        return None
    plan = {c: _plain(v) for c, v in zip(cols, row[1:]) if v is not None}
    line_cols = _present(con, "plan_lines", CONTENT_LINE_FIELDS)
    lines = [{c: _plain(v) for c, v in zip(line_cols, r) if v is not None} for r in con.execute(
        f"select {_names(line_cols)} from decisions.plan_lines "
        "where plan_id = ? order by channel, geo_id, recommended_spend", [plan_id]).fetchall()]
    content = {"plan_id": plan_id, "tenant_id": row[0], "plan": plan, "lines": lines}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return CONTENT_V2 + digest


def content_matches(con, plan_id: str, recorded: str | None) -> bool:
    """Whether the plan still is what an event recorded of it (in the version the event used)."""
    if recorded is None:
        return True
    version = 2 if recorded.startswith(CONTENT_V2) else 1
    return plan_content_hash(con, plan_id, version) == recorded


def _plan_content_hash_v1(con, plan_id: str) -> str | None:
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


def locate_plan(warehouse: Path | str, plan_id: str, lock_wait_s: float = 30.0) -> str | None:
    """The tenant whose file holds the plan in a folder warehouse (each tenant's file opened read-only in turn);
    None for a single-file warehouse, whose one file holds every plan. Raises PlanNotFound."""
    from weathervane.warehouse import connect, is_folder, tenant_files

    if not is_folder(warehouse):
        return None
    for tenant, file in tenant_files(warehouse).items():
        con = connect(file, read_only=True, lock_wait_s=lock_wait_s)
        try:
            if table_exists(con, "decisions", "plans") and con.execute(
                    "select 1 from decisions.plans where plan_id = ? and tenant_id = ?", [plan_id, tenant]).fetchone():
                return tenant
        finally:
            con.close()
    raise PlanNotFound(f"plan {plan_id!r} not found in any tenant's warehouse under {warehouse}")


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


def approval_required(con, tenant_id: str, cfg: TenantConfig) -> bool:
    """Whether a plan needs a listed approver's approval before it is applied: always, unless tenant.yaml waives
    it (requires_approval: false) *and* the rollout gate has the tenant at autopilot on audited evidence. The
    flag alone never skips the gate."""
    if cfg.autopilot.requires_approval:
        return True
    from weathervane.governance.autopilot import may_apply_without_approval

    return not may_apply_without_approval(con, tenant_id, cfg)


def _check_transition(con, plan_id: str, current: str | None, to_status: str, actor: str, cfg: TenantConfig,
                      tenant_id: str | None = None) -> None:
    if to_status not in STATUSES:
        raise IllegalTransition(f"plan {plan_id}: unknown status {to_status!r}; expected one of {', '.join(STATUSES)}")
    allowed = set(TRANSITIONS[current])
    required = True if tenant_id is None else approval_required(con, tenant_id, cfg)
    if current == "proposed" and not required:
        allowed.add("applied")
    if to_status not in allowed:
        hint = ""
        if current == "proposed" and to_status == "applied":
            hint = (" (tenant.yaml autopilot.requires_approval is true: approve it first)"
                    if cfg.autopilot.requires_approval else
                    " (tenant.yaml waives approval, but the rollout gate is not at autopilot: approve it first; "
                    "`weathervane autopilot status` says why)")
        raise IllegalTransition(
            f"plan {plan_id}: cannot move from {current} to {to_status}{hint}; "
            f"allowed from {current}: {', '.join(sorted(allowed)) or 'none (final status)'}"
        )
    if to_status == "approved" and required:
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
    if to_status == "applied" and required:
        events = plan_events(con, plan_id)
        approvals = [e for e in events if e.to_status == "approved" and is_approver(e.actor, cfg)]
        if not approvals:
            raise NotAnApprover(f"plan {plan_id}: no recorded approval by a listed approver; it cannot be applied")
        if not content_matches(con, plan_id, approvals[-1].content_hash):
            raise IllegalTransition(f"plan {plan_id}: its lines or budget changed after the approval; "
                                    "it cannot be applied (approve the plan as it is now, or restore it)")


class LedgerMismatch(GovernanceError):
    """The warehouse's ledger is not the one the key and head log vouch for (a copy, or events written elsewhere):
    no decision is recorded on it."""


def ledger_id(con, create: bool = False) -> str | None:
    """This warehouse's ledger id (created inside the caller's transaction when `create` and absent)."""
    if not table_exists(con, "decisions", "ledger_instance"):
        if not create:
            return None
        ensure_decision_tables(con)
    row = con.execute("select ledger_id from decisions.ledger_instance order by created_at limit 1").fetchone()
    if row is not None or not create:
        return row[0] if row else None
    lid = uuid.uuid4().hex
    con.execute("insert into decisions.ledger_instance values (?, ?)", [lid, _now()])
    return lid


def _signed_events(con) -> int:
    if not table_exists(con, "decisions", "plan_events"):
        return 0
    return con.execute(f"select count(*) from decisions.plan_events where {'mac' if _has_mac(con) else 'false'} "
                       "is not null").fetchone()[0]


def _has_mac(con) -> bool:
    return bool(con.execute("select count(*) from information_schema.columns where table_schema = 'decisions' "
                            "and table_name = 'plan_events' and column_name = 'mac'").fetchone()[0])


def signing_key(con) -> bytes:
    """The ledger key; created only for a ledger with no history. A key missing while events are signed, or the
    head log holds lines, is an error: a new key would make every earlier event read as forged."""
    key = ledger.load_key(create=False)
    if key is not None:
        return key
    signed = _signed_events(con)
    heads = ledger.heads_path()
    logged = heads.is_file() and heads.stat().st_size > 0
    if signed or logged:
        held = f"{signed} events in this warehouse are signed" if signed else f"the head log {heads} has entries"
        raise ledger.LedgerKeyError(
            f"ledger key {ledger.key_path()} not found, but {held}: restore the key (or set "
            "WEATHERVANE_LEDGER_KEY to it); a new key would make every earlier event read as forged")
    return ledger.load_key(create=True)


def _line_here(line: ledger.LogLine, where: str) -> bool:
    """A log line of this instance: written at this warehouse's path, or at one that no longer exists (moved)."""
    return line.warehouse == where or (line.warehouse != ":memory:" and not Path(line.warehouse).exists())


def _refuse_foreign_ledger(con, key: bytes, tenant_id: str, lid: str, where: str, seq: int, head: str) -> None:
    """Refuse to extend a ledger that is a copy of another still in place, or whose newest event is not one
    this ledger logged (inserted from a copy, or written without Weathervane)."""
    log = ledger.read_head_log(key, tenant_id)
    mine = log.of(lid)
    for line in mine:
        if not _line_here(line, where):
            raise LedgerMismatch(
                f"this warehouse ({where}) is a copy of the ledger kept at {line.warehouse} (ledger {lid[:12]}): "
                "decisions are recorded on the original only")
    if seq == 0:
        return
    if any(ln.seq == seq and ln.hash == head and ln.kind != "abandon" for ln in mine):
        return
    mac = con.execute("select mac from decisions.plan_events where tenant_id = ? and seq = ?",
                      [tenant_id, seq]).fetchone()[0] if _has_mac(con) else None
    if mac is not None and hmac.compare_digest(mac, ledger.event_mac(key, tenant_id, seq, head)):
        return  # signed before ledgers had ids: vouched for as it was then
    raise LedgerMismatch(
        f"the newest event of {tenant_id} (seq {seq}, hash {head[:12]}) is not in this ledger's head log: it was "
        f"written on a copy of the warehouse or outside Weathervane. Run `weathervane plans verify --tenant "
        f"{tenant_id}`; no decision is recorded on a ledger that does not verify")


def append_event(
    con, tenant_id: str, plan_id: str, from_status: str | None, to_status: str, actor: str, reason: str | None
) -> PlanEvent:
    """Append one event and move the plan's status. Runs inside the caller's transaction; checks nothing.

    The event records the OS user and the plan's content hash, and is signed with the ledger key (created on
    first use). The head is anchored in the head log by `anchor_head` once the caller has committed."""
    key = signing_key(con)
    lid = ledger_id(con, create=True)
    where = ledger.warehouse_identity(con)
    seq, prev = _chain_head(con, tenant_id)
    _refuse_foreign_ledger(con, key, tenant_id, lid, where, seq, prev)
    ev = PlanEvent(tenant_id, seq + 1, uuid.uuid4().hex, plan_id, _now(), actor, from_status, to_status, reason, prev,
                   os_user=os_user(), content_hash=plan_content_hash(con, plan_id))
    digest = event_hash(ev)
    ev = PlanEvent(**{**ev.__dict__, "hash": digest, "mac": ledger.event_mac(key, tenant_id, ev.seq, digest, lid)})
    # logged before the commit: an event of this ledger is always in its head log, even if the process dies
    ledger.append_line(key, "intent", tenant_id, lid, where, ev.seq, digest)
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
    key = signing_key(con)
    lid = ledger_id(con)
    if mac is None or lid is None or not hmac.compare_digest(mac, ledger.event_mac(key, tenant_id, row[0], row[1],
                                                                                   lid)):
        return None
    where = ledger.warehouse_identity(con)
    mine = [ln for ln in ledger.read_head_log(key, tenant_id).of(lid) if _line_here(ln, where)]
    if not any(ln.seq == row[0] and ln.hash == row[1] and ln.kind == "intent" for ln in mine):
        return None  # not an event this ledger wrote: never vouched for
    head = ledger.Head(tenant_id, int(row[0]), row[1])
    if not any(ln.kind == "head" and ln.seq >= head.seq for ln in mine):
        ledger.append_line(key, "head", tenant_id, lid, where, head.seq, head.hash)
    return head


def _abandon(con, events: list[PlanEvent]) -> None:
    """After a rollback: the intents of events that were never committed, marked so in the head log."""
    if not events:
        return
    try:
        key, lid, where = ledger.load_key(create=False), ledger_id(con), ledger.warehouse_identity(con)
        if key is None or lid is None:
            return
        for ev in events:
            ledger.append_line(key, "abandon", ev.tenant_id, lid, where, ev.seq, ev.hash)
    except (OSError, ValueError):
        pass  # verify then reports the intent as events deleted from the end, and says it may be this


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
    events: list[PlanEvent] = []
    try:
        with transaction(con):
            owner, current = plan_status(con, plan_id)
            if tenant_id is not None and validate_tenant_id(tenant_id) != owner:
                raise PlanNotFound(f"plan {plan_id!r} belongs to tenant {owner!r}, not {tenant_id!r}")
            _check_transition(con, plan_id, current, to_status, actor, cfg, tenant_id=owner)
            if to_status == "applied":
                _refuse_in_shadow(con, owner, plan_id, cfg)
            events.append(append_event(con, owner, plan_id, current, to_status, actor.strip(), reason))
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
    except BaseException:
        _abandon(con, events)
        raise
    anchor_head(con, owner)
    if deliver:
        deliver_pending(con, owner, cfg)
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

    Beyond the warehouse's own records: each event's signature with the ledger key (bound to this ledger's id),
    each event's line in the head log (written before it committed, at this warehouse's path), the head log's
    highest line (a shorter chain was cut), each plan's content against the hash its last event recorded (what
    the approver saw), and every plan with events still present."""
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
    lid = ledger_id(con)
    where = ledger.warehouse_identity(con)
    log = ledger.read_head_log(key, tenant_id) if key is not None else ledger.HeadLog()
    mine = log.of(lid) if lid is not None else []
    report.problems.extend(log.problems)
    if key is not None and any(ev.mac is not None for ev in events) and not log.exists:
        report.problems.append(
            f"head log {ledger.heads_path()} is missing or empty although {len(events)} events are signed: "
            "events deleted from the end of the chain could not be seen (restore the head log)")
    legacy_head = log.latest_legacy()
    prev_hash, last_status = GENESIS_HASH, {}
    approved_content: dict[str, str | None] = {}
    last_content: dict[str, str] = {}
    for i, ev in enumerate(events, start=1):
        where_ev = f"event seq {ev.seq} ({ev.event_id}, plan {ev.plan_id})"
        if ev.seq != i:
            report.problems.append(f"{where_ev}: expected seq {i}: an event was deleted or reordered")
        if ev.prev_hash != prev_hash:
            report.problems.append(f"{where_ev}: prev_hash does not match the previous event's hash "
                                   "(an event before it was deleted, edited or reordered)")
        if event_hash(ev) != ev.hash:
            report.problems.append(f"{where_ev}: hash does not match its fields (the event was edited)")
        if key is not None:
            report.problems.extend(_signature_problems(key, tenant_id, lid, where, mine, legacy_head, ev, where_ev))
        if ev.from_status != last_status.get(ev.plan_id):
            report.problems.append(f"{where_ev}: from_status {ev.from_status} but the plan's previous event left it "
                                   f"{last_status.get(ev.plan_id)}")
        if ev.to_status == "applied" and cfg is not None:
            approved = any(
                e.to_status == "approved" and e.plan_id == ev.plan_id and is_approver(e.actor, cfg)
                for e in events[: i - 1]
            )
            if not approved and (cfg.autopilot.requires_approval or _mode_at(events[: i - 1], tenant_id)
                                 != "autopilot"):
                report.problems.append(f"{where_ev}: applied without a recorded approval by a listed approver"
                                       + ("" if cfg.autopilot.requires_approval else
                                          " while the rollout gate was not at autopilot"))
        if ev.to_status == "approved":
            approved_content[ev.plan_id] = ev.content_hash
        elif ev.to_status == "applied" and ev.content_hash is not None \
                and approved_content.get(ev.plan_id) not in (None, ev.content_hash):
            report.problems.append(f"{where_ev}: the plan applied differs from the plan approved")
        if ev.content_hash is not None:
            last_content[ev.plan_id] = ev.content_hash
        last_status[ev.plan_id] = ev.to_status
        prev_hash = ev.hash
    if key is not None:
        report.problems.extend(_truncation_problems(events, mine, legacy_head))
    plans = dict(con.execute(
        "select plan_id, status from decisions.plans where tenant_id = ? order by plan_id", [tenant_id]
    ).fetchall())
    for plan_id, content in last_content.items():
        if plan_id not in plans:
            continue
        if not content_matches(con, plan_id, content):
            what = ("after the approval" if last_status.get(plan_id) in ("approved", "applied")
                    else f"after its last recorded event ({last_status.get(plan_id)})")
            report.problems.append(f"plan {plan_id}: its lines, budget or figures changed {what} "
                                   "(content hash differs from the one recorded)")
    from weathervane.governance.autopilot import sentinel_plan_id

    for plan_id in sorted(set(last_status) - set(plans) - {sentinel_plan_id(tenant_id)}):
        report.problems.append(f"plan {plan_id}: has recorded events (last: {last_status[plan_id]}) but is missing "
                               "from decisions.plans (the plan was deleted)")
    for plan_id, status in plans.items():
        if last_status.get(plan_id) != status:
            report.problems.append(
                f"plan {plan_id}: status {status} but its last recorded event says {last_status.get(plan_id)}"
            )
    return report


def _mode_at(earlier: list[PlanEvent], tenant_id: str) -> str:
    """The rollout gate's mode in force after these events (its mode events are in the same chain)."""
    from weathervane.governance.autopilot import START_CEILING, sentinel_plan_id

    sentinel = sentinel_plan_id(tenant_id)
    modes = [e.to_status for e in earlier if e.plan_id == sentinel]
    return modes[-1] if modes else START_CEILING


def _signature_problems(key: bytes, tenant_id: str, lid: str | None, where: str, mine: list, legacy_head,
                        ev: PlanEvent, where_ev: str) -> list[str]:
    if ev.mac is None:
        return [f"{where_ev}: not signed with the ledger key (written outside Weathervane, or before signing "
                "existed)"]
    if lid is not None and hmac.compare_digest(ev.mac, ledger.event_mac(key, tenant_id, ev.seq, ev.hash, lid)):
        lines = [ln for ln in mine if ln.seq == ev.seq and ln.hash == ev.hash and ln.kind in ("intent", "head")]
        if any(_line_here(ln, where) for ln in lines):
            return []
        if lines:
            return [f"{where_ev}: written on another copy of this ledger (warehouse {lines[0].warehouse}), not here"]
        return [f"{where_ev}: not in this ledger's head log: written on a copy of the warehouse, or the head log "
                "was cut short"]
    if hmac.compare_digest(ev.mac, ledger.event_mac(key, tenant_id, ev.seq, ev.hash)):
        if legacy_head is not None and legacy_head.seq >= ev.seq:
            return []  # signed and anchored before ledgers had ids
        return [f"{where_ev}: signed without this ledger's id and not anchored in the head log"]
    return [f"{where_ev}: signature does not match (the chain was recomputed, the event forged without the ledger "
            "key, or signed for another ledger)"]


def _truncation_problems(events: list[PlanEvent], mine: list, legacy_head) -> list[str]:
    """The head log's highest line against the chain: more logged than held means events were cut from its end."""
    out = []
    abandoned = {(ln.seq, ln.hash) for ln in mine if ln.kind == "abandon"}
    logged = [ln for ln in mine if ln.kind in ("intent", "head") and (ln.seq, ln.hash) not in abandoned]
    top = max(logged, key=lambda ln: (ln.seq, ln.kind == "head"), default=None)
    if top is not None and top.seq > len(events):
        hint = "" if top.kind == "head" else \
            " (or a decision stopped between logging its event and committing it: check the plan's status)"
        out.append(f"the head log recorded {top.seq} events ending in {top.hash[:12]}, the chain holds "
                   f"{len(events)}: events were deleted from its end{hint}")
    for ln in mine:
        if ln.kind == "head" and ln.seq <= len(events) and events[ln.seq - 1].hash != ln.hash:
            out.append(f"event seq {ln.seq}: hash differs from the one the head log recorded for it "
                       f"({ln.hash[:12]}): the chain was rewritten")
    if legacy_head is not None:
        at = events[legacy_head.seq - 1] if 0 < legacy_head.seq <= len(events) else None
        if legacy_head.seq > len(events):
            out.append(f"the head log recorded {legacy_head.seq} events ending in {legacy_head.hash[:12]}, the "
                       f"chain holds {len(events)}: events were deleted from its end")
        elif at is None or at.hash != legacy_head.hash:
            out.append(f"event seq {legacy_head.seq}: hash differs from the one the head log recorded for it "
                       f"({legacy_head.hash[:12]}): the chain was rewritten")
    return out
