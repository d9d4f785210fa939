"""Plan adoption: executed ad spend (marts.fct_ad_spend_daily) against the plan, per channel × geo × week.

A plan is compared from the day it was applied (never before its horizon) to the end of its horizon or the last
day of ingested spend, whichever is first; the planned spend of a week is the line's horizon total spread evenly
over the horizon's days, counting only the days observed. Weeks start on Monday.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from weathervane.config import validate_tenant_id
from weathervane.governance.tables import ensure_decision_tables, table_exists
from weathervane.warehouse import transaction

ADOPTED_STATUSES = ("applied", "rolled_back", "superseded")
DEFAULT_TOLERANCE = 0.25


def compute_plan_adoption(con, tenant_id: str) -> int:
    """Rebuild decisions.plan_adoption for the tenant's plans that were applied; returns rows written."""
    tenant_id = validate_tenant_id(tenant_id)
    ensure_decision_tables(con)
    if not table_exists(con, "marts", "fct_ad_spend_daily"):
        raise LookupError("marts.fct_ad_spend_daily does not exist yet: run the marts first")
    with transaction(con):
        con.execute("delete from decisions.plan_adoption where tenant_id = ?", [tenant_id])
        con.execute(
            """
            insert into decisions.plan_adoption
            with applied as (
                select e.plan_id, min(e."at")::date as applied_on
                from decisions.plan_events e
                where e.tenant_id = $tenant and e.to_status = 'applied'
                group by 1
            ), ended as (
                -- a rolled back or superseded plan stops counting the day it left `applied`
                select e.plan_id, min(e."at")::date as ended_on
                from decisions.plan_events e
                where e.tenant_id = $tenant and e.from_status = 'applied'
                group by 1
            ), spend_end as (
                select max(date) as last_day from marts.fct_ad_spend_daily where tenant_id = $tenant
            ), windows as (
                select p.plan_id, p.horizon_start, p.horizon_end,
                       (p.horizon_end - p.horizon_start + 1) as horizon_days,
                       greatest(p.horizon_start, a.applied_on) as from_day,
                       least(p.horizon_end, coalesce(x.ended_on - 1, p.horizon_end), s.last_day) as to_day
                from decisions.plans p
                join applied a using (plan_id)
                left join ended x using (plan_id)
                cross join spend_end s
                where p.tenant_id = $tenant
            ), days as (
                select w.plan_id, w.horizon_days, unnest(generate_series(w.from_day, w.to_day, interval 1 day))::date as day
                from windows w where w.to_day >= w.from_day
            ), planned as (
                select d.plan_id, l.channel, l.geo_id, date_trunc('week', d.day)::date as period,
                       count(*) as days_observed,
                       sum(l.recommended_spend / d.horizon_days) as planned_spend
                from days d join decisions.plan_lines l on l.plan_id = d.plan_id and l.tenant_id = $tenant
                group by all
            ), plan_geos as (
                select distinct plan_id, geo_id from decisions.plan_lines where tenant_id = $tenant
            ), executed as (
                -- a regional row counts for its own geo, or for its country when the plan is national
                select d.plan_id, s.channel, coalesce(g.geo_id, c.geo_id) as geo_id,
                       date_trunc('week', d.day)::date as period, sum(s.spend) as executed_spend
                from days d
                join marts.fct_ad_spend_daily s on s.date = d.day and s.tenant_id = $tenant
                left join plan_geos g on g.plan_id = d.plan_id and g.geo_id = s.geo_id
                left join plan_geos c on c.plan_id = d.plan_id and c.geo_id = split_part(s.geo_id, '-', 1)
                where coalesce(g.geo_id, c.geo_id) is not null
                group by all
            )
            select p.plan_id, $tenant, p.channel, p.geo_id, p.period,
                   least(p.period + 6, w.to_day) as period_end, p.days_observed,
                   p.planned_spend, coalesce(e.executed_spend, 0) as executed_spend,
                   case when p.planned_spend > 0 then coalesce(e.executed_spend, 0) / p.planned_spend end,
                   $now
            from planned p
            join windows w using (plan_id)
            left join executed e using (plan_id, channel, geo_id, period)
            """,
            {"tenant": tenant_id, "now": datetime.now(UTC).replace(tzinfo=None)},
        )
        n = con.execute("select count(*) from decisions.plan_adoption where tenant_id = ?", [tenant_id]).fetchone()[0]
    return n


@dataclass(frozen=True)
class AdoptionIssue:
    plan_id: str
    channel: str | None
    geo_id: str | None
    planned_spend: float
    executed_spend: float

    @property
    def ratio(self) -> float | None:
        return self.executed_spend / self.planned_spend if self.planned_spend else None

    def describe(self) -> str:
        where = "whole plan" if self.channel is None else f"{self.channel} × {self.geo_id}"
        ratio = "n/a" if self.ratio is None else f"{self.ratio:.0%}"
        return (f"plan {self.plan_id}, {where}: executed {self.executed_spend:,.0f} vs planned "
                f"{self.planned_spend:,.0f} ({ratio})")


def adoption_issues(con, tenant_id: str, tolerance: float = DEFAULT_TOLERANCE, min_share: float = 0.05) -> list[AdoptionIssue]:
    """Plans executed far from what was approved: the plan's total, or any line holding at least `min_share` of
    the planned spend, off by more than `tolerance` (relative) over the observed days."""
    tenant_id = validate_tenant_id(tenant_id)
    ensure_decision_tables(con)
    rows = con.execute(
        """
        with lines as (
            select plan_id, channel, geo_id, sum(planned_spend) as planned, sum(executed_spend) as executed
            from decisions.plan_adoption where tenant_id = ? group by all
        ), totals as (
            select plan_id, sum(planned) as planned, sum(executed) as executed from lines group by all
        )
        select plan_id, null, null, planned, executed, 0 as ord from totals
        where abs(executed - planned) > ? * planned
        union all
        select l.plan_id, l.channel, l.geo_id, l.planned, l.executed, 1 from lines l join totals t using (plan_id)
        where l.planned >= ? * t.planned and abs(l.executed - l.planned) > ? * l.planned
        order by 1, 6, 2, 3
        """,
        [tenant_id, tolerance, min_share, tolerance],
    ).fetchall()
    return [AdoptionIssue(r[0], r[1], r[2], float(r[3]), float(r[4])) for r in rows]
