"""The rollout gate: how far automation may act for a tenant, and the evidence needed to move up.

Modes, lowest first: `shadow` (plans computed, never applied), `assisted` (applied only after a listed approver's
approval), `autopilot` (applied without approval). tenant.yaml `autopilot.mode` says what the tenant asks for; the
mode in force is the last mode event in the tenant's hash-chained ledger (decisions.plan_events, sentinel plan_id
`autopilot:<tenant>`, from_status / to_status = modes). A tenant starts at most at `assisted`; moving down is
always recorded; moving up is recorded only when the evidence holds: at least `min_improved_audits` primary audits
of past deployments with verdict `improved` and none `worse` whose windows ended within `evidence_lookback_days`
of the last day of data. Otherwise the request is refused and the mode in force stays.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from weathervane.config import TenantConfig, validate_tenant_id
from weathervane.governance.tables import ensure_decision_tables, table_exists

MODES = ("shadow", "assisted", "autopilot")
LEVEL = {m: i for i, m in enumerate(MODES)}
START_CEILING = "assisted"  # what a tenant may start at without evidence: a person approves every plan
GATE_ACTOR = "weathervane-gate"


def sentinel_plan_id(tenant_id: str) -> str:
    return f"autopilot:{validate_tenant_id(tenant_id)}"


@dataclass
class Evidence:
    improved: list[tuple[str, str]] = field(default_factory=list)  # (deployment or plan, window end)
    worse: list[tuple[str, str]] = field(default_factory=list)
    other: list[tuple[str, str, str]] = field(default_factory=list)  # (key, window end, verdict)
    since: str | None = None
    required: int = 2

    @property
    def holds(self) -> bool:
        return len(self.improved) >= self.required and not self.worse

    def describe(self) -> str:
        scope = f"audits with windows ending since {self.since}" if self.since else "no audits yet"
        text = f"{len(self.improved)} improved (need {self.required}), {len(self.worse)} worse, " \
               f"{len(self.other)} other, {scope}"
        if self.worse:
            text += "; worse: " + ", ".join(k for k, _ in self.worse)
        return text


@dataclass
class GateState:
    tenant_id: str
    configured: str
    recorded: str | None  # the mode in force per the ledger; None before the first mode event
    evidence: Evidence
    recorded_events: list = field(default_factory=list)  # events this call appended
    refused: str | None = None

    @property
    def effective(self) -> str:
        return self.recorded or min(self.configured, START_CEILING, key=LEVEL.__getitem__)

    @property
    def passed(self) -> bool:
        """The tenant runs at the mode it asked for."""
        return self.refused is None and self.effective == self.configured

    @property
    def applies_without_approval(self) -> bool:
        return self.passed and self.effective == "autopilot"

    def describe(self) -> str:
        head = f"mode {self.effective} (tenant.yaml asks for {self.configured})"
        if self.refused:
            return f"{head}: promotion refused: {self.refused}"
        return f"{head}; evidence: {self.evidence.describe()}"


def recorded_mode(con, tenant_id: str) -> str | None:
    if not table_exists(con, "decisions", "plan_events"):
        return None
    row = con.execute(
        "select to_status from decisions.plan_events where tenant_id = ? and plan_id = ? order by seq desc limit 1",
        [validate_tenant_id(tenant_id), sentinel_plan_id(tenant_id)],
    ).fetchone()
    return row[0] if row else None


def mode_events(con, tenant_id: str) -> list[tuple]:
    if not table_exists(con, "decisions", "plan_events"):
        return []
    return con.execute(
        "select seq, \"at\", actor, from_status, to_status, reason from decisions.plan_events "
        "where tenant_id = ? and plan_id = ? order by seq", [validate_tenant_id(tenant_id), sentinel_plan_id(tenant_id)],
    ).fetchall()


def evidence(con, tenant_id: str, cfg: TenantConfig) -> Evidence:
    """Primary audit rows (one per deployment or applied plan) whose window ended in the lookback."""
    ev = Evidence(required=cfg.autopilot.min_improved_audits)
    if not table_exists(con, "decisions", "causal_audits"):
        return ev
    through = con.execute(
        "select max(data_through) from decisions.causal_audits where tenant_id = ?", [validate_tenant_id(tenant_id)]
    ).fetchone()[0]
    if through is None:
        return ev
    since = through - timedelta(days=cfg.autopilot.evidence_lookback_days)
    ev.since = since.isoformat()
    rows = con.execute(
        "select coalesce(deployment_id, 'plan:' || plan_id), window_end, verdict from decisions.causal_audits "
        "where tenant_id = ? and is_primary and window_end is not null and window_end >= ? "
        "order by window_end, 1", [tenant_id, since],
    ).fetchall()
    for key, end, verdict in rows:
        if verdict == "improved":
            ev.improved.append((key, end.isoformat()))
        elif verdict == "worse":
            ev.worse.append((key, end.isoformat()))
        else:
            ev.other.append((key, end.isoformat(), verdict))
    return ev


def gate_state(con, tenant_id: str, cfg: TenantConfig) -> GateState:
    """Read-only: the mode in force, what tenant.yaml asks for, and whether the evidence would allow it."""
    tenant_id = validate_tenant_id(tenant_id)
    state = GateState(tenant_id, cfg.autopilot.mode, recorded_mode(con, tenant_id), evidence(con, tenant_id, cfg))
    current = state.effective
    if LEVEL[state.configured] > LEVEL[current] and not state.evidence.holds:
        state.refused = f"moving from {current} to {state.configured} needs {state.evidence.required} improved " \
                        f"audits and none worse; {state.evidence.describe()}"
    return state


def sync_mode(con, tenant_id: str, cfg: TenantConfig, actor: str = GATE_ACTOR) -> GateState:
    """Bring the ledger's mode to what tenant.yaml asks for, as far as the evidence allows; every change is an
    event in the hash chain. Returns the state after it (refused set when a promotion was refused)."""
    from weathervane.governance import events as ledger_events
    from weathervane.warehouse import transaction

    tenant_id = validate_tenant_id(tenant_id)
    ensure_decision_tables(con)
    appended = []
    with transaction(con):
        state = gate_state(con, tenant_id, cfg)
        plan_id = sentinel_plan_id(tenant_id)
        if state.recorded is None:
            start = state.effective
            note = "" if start == state.configured else f"; {state.configured} needs evidence"
            appended.append(ledger_events.append_event(
                con, tenant_id, plan_id, None, start, actor, f"initial mode {start} from tenant.yaml{note}"))
            state.recorded = start
        target = state.configured
        if target != state.recorded and (LEVEL[target] < LEVEL[state.recorded] or state.evidence.holds):
            why = ("demoted by tenant.yaml" if LEVEL[target] < LEVEL[state.recorded]
                   else f"promoted on evidence: {state.evidence.describe()}")
            appended.append(ledger_events.append_event(con, tenant_id, plan_id, state.recorded, target, actor, why))
            state.recorded = target
            state.refused = None
    if appended and hasattr(ledger_events, "anchor_head"):
        ledger_events.anchor_head(con, tenant_id)
    state.recorded_events = appended
    return state


def may_apply_without_approval(con, tenant_id: str, cfg: TenantConfig) -> bool:
    """What an applier asks before pushing a plan that no person approved."""
    return gate_state(con, tenant_id, cfg).applies_without_approval


# --- `weathervane autopilot status|sync` -------------------------------------------------------------------


def print_gate(con, tenant: str, cfg: TenantConfig) -> GateState:
    """The audits (primary method), the mode events and the gate's state, for people."""
    from weathervane.console import console, print_table

    state = gate_state(con, tenant, cfg)
    history = mode_events(con, tenant)
    audits = con.execute(
        "select coalesce(deployment_id, 'plan:' || plan_id), method, window_start, window_end, verdict, "
        "effect_mean, effect_p05, effect_p95, placebo_p_value, reason, report_path from decisions.causal_audits "
        "where tenant_id = ? and is_primary order by window_end nulls last, 1",
        [tenant]).fetchall() if table_exists(con, "decisions", "causal_audits") else []

    def effect(mean, lo, hi):
        return "—" if mean is None else f"{mean:,.0f} [{lo:,.0f}, {hi:,.0f}]"

    print_table(f"Causal audits of {tenant} (effect on net revenue over the window, 90% interval)",
                ["deployment", "window", "verdict", "effect", "placebo p"],
                [(a[0], f"{a[2]} .. {a[3] or 'live'}", a[4], effect(*a[5:8]),
                  "—" if a[8] is None else f"{a[8]:.2f}") for a in audits])
    for a in audits:
        console.print(f"  {a[0]} ({a[1].replace('_', ' ')}): {a[4]}" + (f" — {a[9]}" if a[9] else ""))
        if a[10]:
            console.print(f"  report: {a[10]}")
    console.print(f"[bold]{tenant}[/bold]: mode in force [bold]{state.effective}[/bold]"
                  f"{'' if state.recorded else ' (no mode event recorded yet)'}; tenant.yaml autopilot.mode: "
                  f"{state.configured}")
    console.print(f"evidence: {state.evidence.describe()}")
    if history:
        print_table("Mode events", ["seq", "at", "actor", "from", "to", "reason"], history)
    nxt = MODES[min(LEVEL[state.effective] + 1, len(MODES) - 1)]
    if state.configured != state.effective and state.refused:
        console.print(f"[red]promotion to {state.configured} refused:[/red] {state.refused}")
    elif nxt != state.effective:
        verdict = "allowed" if state.evidence.holds else "not allowed"
        console.print(f"promotion to {nxt}: {verdict} ({state.evidence.describe()})")
    else:
        console.print("already at the highest mode")
    return state


def _cmd_status(args) -> int:
    from pathlib import Path

    import duckdb

    from weathervane import config
    from weathervane.console import console

    tenant = config.validate_tenant_id(args.tenant)
    cfg = config.load_tenant_config(Path(args.landing) if args.landing else config.landing_root(), tenant)
    from weathervane.warehouse import tenant_path

    path = tenant_path(Path(args.warehouse) if args.warehouse else config.warehouse_path(), tenant)
    if not path.exists():
        console.print(f"[red]error:[/red] warehouse {path} does not exist")
        return 2
    con = duckdb.connect(str(path), read_only=True)
    try:
        state = print_gate(con, tenant, cfg)
    finally:
        con.close()
    return 0 if state.passed else 5


def _cmd_sync(args) -> int:
    from pathlib import Path

    from weathervane import config
    from weathervane.console import console
    from weathervane.warehouse import connect_tenant

    tenant = config.validate_tenant_id(args.tenant)
    cfg = config.load_tenant_config(Path(args.landing) if args.landing else config.landing_root(), tenant)
    con = connect_tenant(Path(args.warehouse) if args.warehouse else config.warehouse_path(), tenant)
    try:
        state = sync_mode(con, tenant, cfg, actor=args.actor)
    finally:
        con.close()
    for ev in state.recorded_events:
        console.print(f"recorded: mode {ev.from_status} → {ev.to_status} by {ev.actor} (event {ev.seq})")
    console.print(state.describe())
    return 0 if state.passed else 5


def add_autopilot_cli(subparsers):
    ap = subparsers.add_parser("autopilot", help="the rollout gate: mode, evidence, promotion")
    sub = ap.add_subparsers(dest="autopilot_command", required=True)
    for name, func, text in (("status", _cmd_status, "mode in force, evidence, and whether promotion is allowed"),
                             ("sync", _cmd_sync, "record tenant.yaml's mode in the ledger as far as evidence allows")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--tenant", required=True)
        p.add_argument("--warehouse", help="DuckDB file (default $WEATHERVANE_WAREHOUSE)")
        p.add_argument("--landing", help="landing root holding tenant.yaml (default $WEATHERVANE_LANDING)")
        if name == "sync":
            p.add_argument("--actor", default=GATE_ACTOR)
        p.set_defaults(func=func)
    return ap
