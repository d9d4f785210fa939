"""The sniff as rows of ops.dataset_sniff (one sniff per tenant kept: delete-then-insert) and as console text."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from weathervane.config import TenantConfig, validate_tenant_id
from weathervane.sniff.decide import TWIN, Decisions, decide
from weathervane.sniff.profile import Profile, measure, table_exists
from weathervane.sniff.twin import TwinConfig, twin_config
from weathervane.warehouse import transaction

TABLE = "ops.dataset_sniff"
DDL = """
CREATE TABLE IF NOT EXISTS ops.dataset_sniff (
    tenant_id VARCHAR NOT NULL,
    sniff_id VARCHAR NOT NULL,
    sniffed_at TIMESTAMP NOT NULL,
    kind VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    value VARCHAR,
    number DOUBLE,
    status VARCHAR,
    reason VARCHAR
)"""
COLUMNS = ("tenant_id", "sniff_id", "sniffed_at", "kind", "name", "value", "number", "status", "reason")


@dataclass
class Sniff:
    sniff_id: str
    sniffed_at: datetime
    profile: Profile
    decisions: Decisions
    twin: TwinConfig | None
    spec: object = None  # weathervane.spec.ModelSpec: what every fit of this tenant follows

    @property
    def tenant_id(self) -> str:
        return self.profile.tenant_id

    @property
    def mode(self) -> str:
        return self.decisions.mode.value

    def rows(self) -> list[tuple]:
        p, d = self.profile, self.decisions
        out: list[tuple] = []

        def add(kind, name, value=None, number=None, status="info", reason=None):
            out.append((p.tenant_id, self.sniff_id, self.sniffed_at, kind, name,
                        None if value is None else str(value), None if number is None else float(number), status,
                        reason))

        for dec in d.all():
            status = "ok" if dec.value in ("identifiable", "yes", "live") else "warn" if dec.value in (
                "not identifiable", "no", TWIN, "live_with_synthetic_gaps") else "info"
            add("decision", dec.name, dec.value, status=status, reason=dec.reason)
        for w in d.warnings:
            add("warning", "warning", status="warn", reason=w)
        if self.spec is not None:
            for name, why in self.spec.refused.items():
                add("warning", f"pin:{name}", status="warn", reason=f"tenant.yaml pin refused: {why}")
        for stream, n in p.streams.items():
            add("stream", stream, number=n, status="ok")
        for q in p.quarantined:
            where = q["file_path"] + (f" line {q['line']}" if q["line"] is not None else "") + \
                (f" field {q['field']}" if q["field"] else "")
            add("quarantine", q["file_path"], where, status="fail", reason=q["reason"])
        add("sales", "history_days", number=p.span_days)
        firsts = [d for d in (p.sales_start, p.aggregated_start) if d]
        lasts = [d for d in (p.sales_end, p.aggregated_end) if d]
        add("sales", "first_date", min(firsts) if firsts else None)
        add("sales", "last_date", max(lasts) if lasts else None)
        add("sales", "orders", number=p.orders)
        add("sales", "net_revenue", p.currency, number=round(p.net_revenue, 2))
        add("sales", "days_without_orders", number=p.missing_sales_days,
            status="warn" if p.missing_sales_days else "ok")
        add("sales", "median_orders_per_geo_day", number=round(p.median_orders_per_geo_day, 3))
        add("sales", "median_orders_per_category_geo_week", number=round(p.median_orders_per_category_geo_week, 3))
        for g, n in sorted(p.geo_orders.items()):
            add("geo", g, number=n)
        for c, n in sorted(p.category_orders.items()):
            add("category", c, number=n)
        add("spend", "total", p.currency, number=round(p.spend_total, 2))
        add("spend", "first_date", p.spend_start)
        add("spend", "last_date", p.spend_end)
        for c in p.channels.values():
            add("channel", c.channel, c.platform, number=round(c.spend, 2),
                reason=f"{c.first}..{c.last}; {c.weeks_with_spend} weeks with spend, {c.weeks_paused} paused; "
                       f"weekly cv {c.weekly_cv:.2f}; geo share cv {c.geo_share_cv:.2f}; {c.geos} geo(s); "
                       f"{c.regional_share:.0%} regional; {c.lift_tests} lift test(s)")
        for source, n in p.promotions.items():
            add("promotions", source, number=n)
        add("promotions", "lifecycle_sends", number=p.lifecycle_sends)
        add("weather", "geos", ", ".join(p.weather_geos), number=len(p.weather_geos))
        add("weather", "coverage", number=p.weather_coverage)
        add("weather", "temperature_sd", number=p.temperature_anomaly_sd)
        add("weather", "forecast_geos", ", ".join(p.forecast_geos), number=len(p.forecast_geos),
            status="ok" if p.forecast_geos else "warn")
        add("weather", "forecast_days", number=p.forecast_days)
        add("experiments", "lift_tests", ", ".join(f"{k}: {v}" for k, v in p.lift_test_channels.items()),
            number=p.lift_tests)
        add("experiments", "deployments", number=p.deployments)
        if p.aggregated_rows:
            add("aggregated", "rows", p.aggregated_period, number=p.aggregated_rows,
                reason=f"{p.aggregated_start}..{p.aggregated_end}; channels {', '.join(p.aggregated_channels)}")
        if self.twin is not None:
            t = self.twin
            add("twin", "tenant_id", t.tenant_id)
            add("twin", "n_geos", number=t.n_geos)
            add("twin", "channels", ", ".join(t.channels), number=len(t.channels))
            add("twin", "orders_per_geo_day", number=t.orders_per_geo_day)
            add("twin", "media_share", number=t.media_share)
            add("twin", "days", number=t.days)
            for diff in t.differences:
                add("twin", "difference", status="info", reason=diff)
        return out

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows(), columns=list(COLUMNS))


def sniff_tenant(con, tenant_id: str, cfg: TenantConfig, seed: int = 0) -> Sniff:
    """Measure and decide; a twin configuration comes with every sniff so a live tenant can be compared too,
    but the proof uses it only when the mode says so."""
    profile = measure(con, validate_tenant_id(tenant_id), currency=cfg.currency, timezone=cfg.timezone)
    decisions = decide(profile)
    twin = twin_config(profile, seed=seed) if decisions.mode.value == TWIN else None
    from weathervane.spec import decide_spec

    return Sniff(sniff_id=uuid.uuid4().hex[:12], sniffed_at=datetime.now(UTC).replace(tzinfo=None),
                 profile=profile, decisions=decisions, twin=twin, spec=decide_spec(profile, decisions, cfg))


def write_sniff(con, sniff: Sniff) -> int:
    """Replace the tenant's sniff in ops.dataset_sniff and its model spec in ops.model_spec, in one transaction."""
    from weathervane.spec import write_spec

    rows = sniff.rows()
    with transaction(con):
        con.execute(DDL)
        con.execute(f"DELETE FROM {TABLE} WHERE tenant_id = ?", [sniff.tenant_id])
        con.executemany(f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                        rows)
        if sniff.spec is not None:
            write_spec(con, sniff.spec, in_transaction=True)
    return len(rows)


def read_sniff(con, tenant_id: str) -> pd.DataFrame:
    """The tenant's latest sniff rows (empty frame when it was never sniffed)."""
    tenant_id = validate_tenant_id(tenant_id)
    if not table_exists(con, "ops", "dataset_sniff"):
        return pd.DataFrame(columns=list(COLUMNS))
    return con.execute(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE tenant_id = ? ORDER BY kind, name",
                       [tenant_id]).df()


def decisions_of(frame: pd.DataFrame) -> dict[str, str]:
    """{decision name: value} from read_sniff rows."""
    d = frame[frame["kind"] == "decision"]
    return dict(zip(d["name"], d["value"]))
