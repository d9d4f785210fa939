"""What the approvals page reads from the warehouse. Every query takes an open connection and a validated tenant id.

Tables written by later stages (causal audits, policy replay, model diagnostics) may be absent or carry more
columns than the contract lists: readers check what exists and show every column there is.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from weathervane.config import TENANT_ID_PATTERN
from weathervane.governance.tables import table_exists

# P(plan beats keep-the-split): the first of these columns that exists on decisions.plans.
PROB_BETTER_COLUMNS = ("prob_better", "prob_beats_keep_split", "prob_lift_positive")
# A cell is at a bound when its spend is this close to it (relative to the bound, plus a cent).
BOUND_TOLERANCE = 1e-3


def columns(con, schema: str, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [schema, table]).fetchall()]


def _rows(con, sql: str, params: list) -> list[dict]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


@dataclass
class Table:
    """Rows to show as they are: column names and values."""
    columns: list[str]
    rows: list[tuple]

    @classmethod
    def of(cls, con, sql: str, params: list) -> Table:
        cur = con.execute(sql, params)
        return cls([d[0] for d in cur.description], cur.fetchall())

    def __bool__(self) -> bool:
        return bool(self.rows)


def tenant_ids(con, landing_root: Path) -> list[str]:
    """Tenants with plans in the warehouse or a folder in the landing zone (plain folders with a valid id)."""
    found = set()
    if con is not None and table_exists(con, "decisions", "plans"):
        found |= {r[0] for r in con.execute("select distinct tenant_id from decisions.plans").fetchall()}
    if landing_root.is_dir():
        found |= {p.name for p in landing_root.iterdir()
                  if p.is_dir() and not p.is_symlink() and TENANT_ID_PATTERN.fullmatch(p.name)}
    return sorted(t for t in found if isinstance(t, str) and TENANT_ID_PATTERN.fullmatch(t))


def tenant_overview(con, tenant_id: str) -> dict:
    if con is None or not table_exists(con, "decisions", "plans"):
        return {"plans": 0, "waiting": 0, "latest": None}
    n, waiting = con.execute(
        "select count(*), count(*) filter (where status = 'proposed') from decisions.plans where tenant_id = ?",
        [tenant_id]).fetchone()
    latest = _rows(con, "select plan_id, status, created_at from decisions.plans where tenant_id = ? "
                        "order by created_at desc limit 1", [tenant_id])
    return {"plans": n, "waiting": waiting, "latest": latest[0] if latest else None}


def prob_better_column(con) -> str | None:
    have = set(columns(con, "decisions", "plans"))
    return next((c for c in PROB_BETTER_COLUMNS if c in have), None)


def plans(con, tenant_id: str) -> list[dict]:
    if not table_exists(con, "decisions", "plans"):
        return []
    prob = prob_better_column(con)
    rows = _rows(con, "select * from decisions.plans where tenant_id = ? order by created_at desc", [tenant_id])
    for r in rows:
        r["prob_better"] = r.get(prob) if prob else None
    return rows


def plan(con, tenant_id: str, plan_id: str) -> dict | None:
    if not table_exists(con, "decisions", "plans"):
        return None
    rows = _rows(con, "select * from decisions.plans where plan_id = ? and tenant_id = ?", [plan_id, tenant_id])
    if not rows:
        return None
    row = rows[0]
    prob = prob_better_column(con)
    row["prob_better"] = row.get(prob) if prob else None
    try:
        notes = json.loads(row.get("notes") or "[]")
    except ValueError:
        notes = [row["notes"]]
    row["notes_list"] = [str(n) for n in notes] if isinstance(notes, list) else [str(notes)]
    row["held_list"] = _json_list(row.get("held_channels"))
    row["weather_table"] = _weather_assumed(row.get("weather_assumed"), _spread(con, tenant_id))
    return row


def _json_list(value) -> list[str]:
    if not value:
        return []
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return [str(value)]
    return [str(v) for v in parsed] if isinstance(parsed, list) else [str(parsed)]


def _spread(con, tenant_id: str) -> dict[str, float]:
    from weathervane.reports import weather_spread

    try:
        return weather_spread(con, tenant_id)
    except Exception:  # noqa: BLE001 - a page shows sd when the marts cannot say the unit
        return {}


def _weather_assumed(value, spread: dict | None = None) -> Table:
    """The plan's mean weather per geo and variable over the horizon, in words ('4 °C colder than usual') where
    the variable's typical spread is known, in standard deviations from the geo's mean otherwise."""
    from weathervane.reports import weather_in_words

    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    by_geo = parsed.get("mean_z") if isinstance(parsed, dict) else None
    if not isinstance(by_geo, dict) or not by_geo:
        return Table([], [])
    wvars = sorted({v for z in by_geo.values() if isinstance(z, dict) for v in z})
    spread = spread or {}
    rows = [(g, *[weather_in_words(v, (z or {}).get(v), spread.get(v)) for v in wvars])
            for g, z in sorted(by_geo.items())]
    return Table(["geo", *[v.replace("_", " ") for v in wvars]], rows)


def plan_lines(con, plan_id: str) -> list[dict]:
    """Lines with the change against the previous window and which of the cell's bounds the plan sits on."""
    rows = _rows(con, "select * from decisions.plan_lines where plan_id = ? order by channel, geo_id", [plan_id])
    for r in rows:
        spend, prev = r.get("recommended_spend"), r.get("previous_spend")
        r["change"] = (spend / prev - 1) if spend is not None and prev else None
        r["new"] = bool(spend) and not prev
        if "binding_constraint" in r:  # the allocator records what holds each line
            r["binding"] = r["binding_constraint"] or None
            continue
        r["binding"] = None
        for bound, label in (("min_spend", "at its lower bound"), ("max_spend", "at its upper bound")):
            b = r.get(bound)
            if spend is not None and b is not None and abs(spend - b) <= BOUND_TOLERANCE * abs(b) + 0.01:
                r["binding"] = label
        if r["binding"] and r.get("min_spend") is not None and r.get("max_spend") is not None \
                and abs(r["max_spend"] - r["min_spend"]) <= 0.01:
            r["binding"] = "held fixed"
    return rows


def binding_summary(p: dict, lines: list[dict]) -> list[str]:
    """Plain sentences: which constraints shape the plan."""
    if "binding_constraints" in p:  # the allocator's own summary
        return _json_list(p["binding_constraints"])
    out = []
    if p.get("total_budget") is not None:
        out.append(f"total budget {p['total_budget']:,.2f} is spent in full")
    at_bound = [f"{r['channel']} / {r['geo_id']} {r['binding']}" for r in lines if r["binding"]]
    if at_bound:
        out.append("cells at a bound (max change, channel or geo limits): " + "; ".join(at_bound))
    return out


def events_with_notifications(con, tenant_id: str, plan_id: str | None = None) -> list[dict]:
    """Ledger events (newest first) each with the outbox rows written for it."""
    if not table_exists(con, "decisions", "plan_events"):
        return []
    where, params = ("tenant_id = ? and plan_id = ?", [tenant_id, plan_id]) if plan_id else ("tenant_id = ?", [tenant_id])
    events = _rows(con, f"select * from decisions.plan_events where {where} order by seq desc", params)
    by_event: dict[str, list[dict]] = {}
    if events and table_exists(con, "decisions", "outbox"):
        for n in _rows(con, f"select * from decisions.outbox where {where} order by created_at", params):
            by_event.setdefault(n["event_id"], []).append(_notification(n))
    for e in events:
        e["notifications"] = by_event.get(e["event_id"], [])
    return events


def notifications_for(con, event_ids: list[str]) -> list[dict]:
    if not event_ids or not table_exists(con, "decisions", "outbox"):
        return []
    rows = _rows(con, "select * from decisions.outbox where list_contains(?, event_id) order by created_at",
                 [list(event_ids)])
    return [_notification(n) for n in rows]


def _notification(n: dict) -> dict:
    try:
        recipients = json.loads(n.get("recipients") or "[]")
    except ValueError:
        recipients = [n.get("recipients")]
    try:
        subject = json.loads(n.get("payload") or "{}").get("subject")
    except (ValueError, AttributeError):
        subject = None
    url = n.get("webhook_url")
    host = None
    if url:
        from urllib.parse import urlsplit

        host = urlsplit(url).hostname
    return {**n, "recipients_list": recipients, "subject": subject or n.get("kind"), "webhook_host": host}


def model_evidence(con, tenant_id: str, model_id: str | None) -> dict:
    """The model's diagnostics row, channel summary (with any identifiability columns) and weather effects."""
    out = {"model": None, "channel_summary": Table([], []), "weather_effects": Table([], []), "flags": Table([], [])}
    if not model_id:
        return out
    if table_exists(con, "mmm", "models"):
        rows = _rows(con, "select * from mmm.models where model_id = ? and tenant_id = ?", [model_id, tenant_id])
        out["model"] = rows[0] if rows else None
    if table_exists(con, "mmm", "channel_summary"):
        out["channel_summary"] = Table.of(
            con, "select * exclude (model_id, tenant_id) from mmm.channel_summary where model_id = ? "
                 "and tenant_id = ? order by channel, geo_id nulls first", [model_id, tenant_id])
    if table_exists(con, "mmm", "weather_effects"):
        out["weather_effects"] = Table.of(
            con, "select * exclude (model_id, tenant_id) from mmm.weather_effects where model_id = ? "
                 "and tenant_id = ? order by channel, weather_variable", [model_id, tenant_id])
    # identifiability flags, where the model stage writes them to a table of their own
    for (table,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'mmm' "
            "and (table_name like '%identif%' or table_name like '%flag%') order by 1").fetchall():
        cols = columns(con, "mmm", table)
        if {"model_id", "tenant_id"} <= set(cols):
            t = Table.of(con, f'select * exclude (model_id, tenant_id) from mmm."{table}" '
                              "where model_id = ? and tenant_id = ?", [model_id, tenant_id])
            if t:
                out["flags"] = t
                break
    return out


# What a marketer reads first, in this order, where the table has it (else every column is shown).
AUDIT_COLUMNS = ("deployment_id", "plan_id", "method", "is_primary", "treated_geo_ids", "window_start", "window_end",
                 "effect_mean", "effect_p05", "effect_p95", "relative_effect_mean", "prob_positive", "iroas_mean",
                 "placebo_p_value", "pre_period_fit", "verdict", "reason")
REPLAY_COLUMNS = ("policy", "estimator", "window_start", "window_end", "value_mean", "value_p05", "value_p95",
                  "lift_mean", "lift_p05", "lift_p95", "prob_lift_positive", "effective_sample_size",
                  "support_share", "evaluable", "reason")


def _shown(cols: list[str], preferred: tuple[str, ...]) -> list[str]:
    picked = [c for c in preferred if c in cols]
    return picked or [c for c in cols if c != "tenant_id"]


def causal_audits(con, tenant_id: str, plan_id: str | None = None, limit: int = 12) -> Table:
    if not table_exists(con, "decisions", "causal_audits"):
        return Table([], [])
    cols = columns(con, "decisions", "causal_audits")
    order = ["case when plan_id = ? then 0 else 1 end"] if "plan_id" in cols else []
    params = [plan_id] if order else []
    for c in ("computed_at", "audited_at", "window_end"):
        if c in cols:
            order.append(f'"{c}" desc nulls last')
    if "is_primary" in cols:
        order.append("is_primary desc")
    shown = _shown(cols, AUDIT_COLUMNS)
    sql = (f"select {', '.join(chr(34) + c + chr(34) for c in shown)} from decisions.causal_audits "
           f"where tenant_id = ? order by {', '.join(order) or '1'} limit {int(limit)}")
    # the plan_id parameter sits in the order by, after the where
    return Table.of(con, sql, [tenant_id, *params])


def policy_replay(con, tenant_id: str, limit: int = 24) -> Table:
    if not table_exists(con, "decisions", "policy_replay"):
        return Table([], [])
    cols = columns(con, "decisions", "policy_replay")
    shown = _shown(cols, REPLAY_COLUMNS)
    order = [f'"{c}" desc' for c in ("computed_at", "window_end", "evaluated_at") if c in cols][:1]
    order += [f'"{c}"' for c in ("policy", "estimator") if c in cols]
    sql = (f"select {', '.join(chr(34) + c + chr(34) for c in shown)} from decisions.policy_replay "
           f"where tenant_id = ? order by {', '.join(order) or '1'} limit {int(limit)}")
    return Table.of(con, sql, [tenant_id])


def audit_verdicts(con, tenant_id: str) -> dict[str, int]:
    if not table_exists(con, "decisions", "causal_audits"):
        return {}
    # one verdict per deployment: the primary method's, where the table marks it
    primary = " and is_primary" if "is_primary" in columns(con, "decisions", "causal_audits") else ""
    return dict(con.execute("select verdict, count(*) from decisions.causal_audits where tenant_id = ?"
                            f"{primary} group by verdict order by verdict", [tenant_id]).fetchall())


@dataclass
class GateView:
    mode: str | None
    requires_approval: bool
    approvers: list[str]
    appliers: list[str]
    webhook_host: str | None
    verdicts: dict[str, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    configured: str | None = None  # the mode tenant.yaml asks for; `mode` is the one in force
    evidence: object | None = None  # the rollout gate's Evidence
