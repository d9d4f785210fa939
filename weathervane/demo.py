"""What the demo produced, read back from the warehouse."""
from __future__ import annotations

from pathlib import Path

import duckdb

from weathervane import config
from weathervane.console import console, print_table
from weathervane.warehouse import table_exists


def print_demo_summary(tenant_id: str, warehouse: Path | None = None) -> None:
    tenant_id = config.validate_tenant_id(tenant_id)
    con = duckdb.connect(str(warehouse or config.warehouse_path()), read_only=True)
    try:
        rows = []
        for schema in ("raw", "marts", "mmm", "decisions", "ops"):
            tables = con.execute(
                "select table_name from information_schema.tables where table_schema = ? order by 1", [schema]
            ).fetchall()
            for (table,) in tables:
                cols = {c[0] for c in con.execute(f'describe "{schema}"."{table}"').fetchall()}
                if "tenant_id" not in cols:
                    continue
                n = con.execute(f'select count(*) from "{schema}"."{table}" where tenant_id = ?', [tenant_id]).fetchone()[0]
                rows.append((f"{schema}.{table}", f"{n:,}"))
        print_table(f"Warehouse {warehouse or config.warehouse_path()} — tenant {tenant_id}", ["table", "rows"], rows)

        if table_exists(con, "ops", "quarantined_files"):
            bad = con.execute(
                "select file_path, line, field, reason from ops.quarantined_files where tenant_id = ?", [tenant_id]
            ).fetchall()
            if bad:
                print_table("Quarantined files", ["file", "line", "field", "reason"], bad)
        if table_exists(con, "mmm", "models"):
            models = con.execute(
                "select model_id, status, sampler, max_rhat, min_ess_bulk, divergences, holdout_mape from mmm.models "
                "where tenant_id = ? order by fitted_at desc limit 3", [tenant_id]
            ).fetchall()
            print_table("Models", ["model_id", "status", "sampler", "max r-hat", "min ESS", "divergences", "holdout MAPE"], models)
        if table_exists(con, "decisions", "plans"):
            plans = con.execute(
                "select plan_id, status, horizon_start, horizon_end, round(total_budget), round(expected_kpi_mean), "
                "round(baseline_kpi_mean) from decisions.plans where tenant_id = ? order by created_at desc limit 3",
                [tenant_id],
            ).fetchall()
            print_table("Budget plans", ["plan_id", "status", "from", "to", "budget", "expected KPI", "baseline KPI"], plans)
            if plans:
                from weathervane.allocate.plan import describe_decision

                for line in describe_decision(con, plans[0][0]):
                    console.print(line, markup=False)
            proposed = [p for p in plans if p[1] == "proposed"]
            if proposed:
                approvers = config.load_tenant_config(config.landing_root(), tenant_id).autopilot.approvers
                actor = approvers[0] if approvers else "<approver>"
                console.print(
                    f"Approve the plan with: [bold].venv/bin/weathervane plans approve --tenant {tenant_id} "
                    f"--plan-id {proposed[0][0]} --actor {actor} --reason 'looks right'[/bold]"
                )
                from rich.markup import escape

                console.print(
                    "or in the approvals page, signed in as that approver: "
                    f"[bold].venv/bin/weathervane users set-password --user {escape(actor)}[/bold], then "
                    f"[bold]make ui[/bold] and open [bold]http://localhost:3001/t/{tenant_id}/plans/{escape(proposed[0][0])}[/bold]"
                )
        if table_exists(con, "decisions", "policy_replay"):
            replay = con.execute(
                "select policy, estimator, round(lift_mean)::bigint, round(lift_p05)::bigint, round(lift_p95)::bigint, "
                "round(effective_sample_size, 1), round(support_share, 2), evaluable from decisions.policy_replay "
                "where tenant_id = ? order by policy, estimator", [tenant_id],
            ).fetchall()
            if replay:
                print_table("Policy replay on the logged periods (KPI vs keeping the split, 90% interval)",
                            ["policy", "estimator", "lift", "p05", "p95", "ESS", "support", "evaluable"], replay)
        if table_exists(con, "decisions", "causal_audits"):
            from weathervane.governance.autopilot import print_gate

            print_gate(con, tenant_id, config.load_tenant_config(config.landing_root(), tenant_id))
    finally:
        con.close()
    reports = sorted((config.reports_dir() / tenant_id).glob("*.html")) if (config.reports_dir() / tenant_id).exists() else []
    for report in reports:
        console.print(f"report: {report.resolve()}")
