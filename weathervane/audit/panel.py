"""What an audit reads from the warehouse: the KPI and spend panels (date x geo) and the interventions
(automated deployments and applied plans) with their treated geos and windows."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from weathervane.config import validate_tenant_id
from weathervane.governance.tables import table_exists


@dataclass(frozen=True)
class Intervention:
    """A change that went live: an automated deployment, or an applied budget plan."""

    deployment_id: str | None
    plan_id: str | None
    start: date
    end: date | None  # last day in effect; None = still live
    geo_ids: tuple[str, ...]
    channels: tuple[str, ...] = ()
    description: str | None = None
    kind: str = "deployment"
    source: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        return self.deployment_id if self.deployment_id is not None else f"plan:{self.plan_id}"

    def touches(self, geo: str, first: date, last: date, national: set[str]) -> bool:
        """Whether it changed anything in `geo` between `first` and `last` (a national change touches all)."""
        end = self.end or date.max
        overlaps = self.start <= last and end >= first
        return overlaps and (geo in self.geo_ids or bool(national & set(self.geo_ids)))


def _local_day(ts: str, tz: ZoneInfo, last_moment: bool = False) -> date:
    t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    local = t.astimezone(tz)
    # an end at local midnight means the change was off for the whole of that day
    return (local - timedelta(microseconds=1)).date() if last_moment else local.date()


def read_deployments(con, tenant_id: str, timezone: str = "UTC") -> list[Intervention]:
    """Latest version of each deployment in raw.autopilot__deployments (newest load, then the later file line)."""
    tenant_id = validate_tenant_id(tenant_id)
    if not table_exists(con, "raw", "autopilot__deployments"):
        return []
    rows = con.execute(
        "select record from (select record, row_number() over (partition by json_extract_string(record, "
        "'$.deployment_id') order by loaded_at desc, file_path desc, source_line desc) as rn "
        "from raw.autopilot__deployments where tenant_id = ?) where rn = 1 "
        "order by json_extract_string(record, '$.started_at'), json_extract_string(record, '$.deployment_id')",
        [tenant_id],
    ).fetchall()
    tz = ZoneInfo(timezone)
    out = []
    for (text,) in rows:
        rec = json.loads(text)
        out.append(Intervention(
            deployment_id=str(rec["deployment_id"]), plan_id=rec.get("plan_id"),
            start=_local_day(rec["started_at"], tz),
            end=_local_day(rec["ended_at"], tz, last_moment=True) if rec.get("ended_at") else None,
            geo_ids=tuple(sorted(rec.get("geo_ids") or ())), channels=tuple(rec.get("channels") or ()),
            description=rec.get("description"), source=rec,
        ))
    return out


def read_applied_plans(con, tenant_id: str, min_change: float = 0.05) -> list[Intervention]:
    """Plans that were applied: from the day of their `applied` event (or the horizon start, if later) to the
    horizon end or the day they were rolled back / superseded. Treated geos: those whose spend the plan moved by
    more than `min_change` of the previous spend."""
    tenant_id = validate_tenant_id(tenant_id)
    if not (table_exists(con, "decisions", "plans") and table_exists(con, "decisions", "plan_events")):
        return []
    plans = con.execute(
        "select p.plan_id, p.horizon_start, p.horizon_end, min(e.\"at\") filter (where e.to_status = 'applied'), "
        "min(e.\"at\") filter (where e.from_status = 'applied') from decisions.plans p join decisions.plan_events e "
        "on e.plan_id = p.plan_id and e.tenant_id = p.tenant_id where p.tenant_id = ? group by all "
        "having count(*) filter (where e.to_status = 'applied') > 0 order by 1", [tenant_id],
    ).fetchall()
    out = []
    for plan_id, h_start, h_end, applied_at, left_at in plans:
        lines = con.execute(
            "select geo_id, channel, sum(recommended_spend), sum(previous_spend) from decisions.plan_lines "
            "where plan_id = ? group by all", [plan_id],
        ).fetchall()
        geos = sorted({g for g, _, rec, prev in lines
                       if g is not None and abs((rec or 0) - (prev or 0)) > min_change * max(abs(prev or 0), 1e-9)})
        channels = sorted({c for _, c, rec, prev in lines if abs((rec or 0) - (prev or 0)) > 0})
        start = max(h_start, applied_at.date()) if applied_at else h_start
        end = min(h_end, left_at.date() - timedelta(days=1)) if left_at else h_end
        if not geos or end < start:
            continue
        out.append(Intervention(None, plan_id, start, end, tuple(geos), tuple(channels),
                                f"applied budget plan {plan_id}", kind="plan"))
    return out


def kpi_panel(con, tenant_id: str) -> pd.DataFrame:
    """Net revenue per day (rows, every day from the first to the last day of sales) x geo (columns)."""
    tenant_id = validate_tenant_id(tenant_id)
    if not table_exists(con, "marts", "fct_sales_daily"):
        return pd.DataFrame()
    df = con.execute(
        "select date, geo_id, sum(net_revenue) as kpi from marts.fct_sales_daily where tenant_id = ? group by all",
        [tenant_id],
    ).fetchdf()
    return _pivot(df, "kpi")


def spend_panel(con, tenant_id: str, channels: tuple[str, ...] = ()) -> pd.DataFrame:
    """Ad spend per day x geo, over `channels` when any of them is present, else over every channel."""
    tenant_id = validate_tenant_id(tenant_id)
    if not table_exists(con, "marts", "fct_ad_spend_daily"):
        return pd.DataFrame()
    present = {c for (c,) in con.execute(
        "select distinct channel from marts.fct_ad_spend_daily where tenant_id = ?", [tenant_id]).fetchall()}
    chosen = sorted(present & set(channels)) or sorted(present)
    if not chosen:
        return pd.DataFrame()
    df = con.execute(
        "select date, geo_id, sum(spend) as spend from marts.fct_ad_spend_daily where tenant_id = ? "
        "and list_contains(?, channel) group by all", [tenant_id, chosen],
    ).fetchdf()
    return _pivot(df, "spend")


def _pivot(df: pd.DataFrame, value: str) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame()
    df["date"] = pd.to_datetime(df["date"]).dt.date
    wide = df.pivot_table(index="date", columns="geo_id", values=value, aggfunc="sum")
    days = pd.date_range(min(wide.index), max(wide.index), freq="D").date
    # a geo-day without a row sold (or spent) nothing; days outside the range are unknown
    return wide.reindex(days).fillna(0.0).sort_index(axis=1)
