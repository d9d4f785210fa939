"""What the demo produced, read back from the warehouse and told as a marketer would read it: the data, the model's
estimates against the simulated truth, the plan and its regret against the true optimum, the replay, the reports."""
from __future__ import annotations

from pathlib import Path

import duckdb

from weathervane import config
from weathervane import reports as rp
from weathervane.console import console, print_table
from weathervane.warehouse import table_exists


def _say(text: str = "") -> None:
    # soft wrap: one printed line per sentence, the terminal wraps it
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _one(con, sql: str, params: list):
    row = con.execute(sql, params).fetchone()
    return row


def _data_lines(con, tenant_id: str, truth) -> list[str]:
    out = []
    if table_exists(con, "marts", "fct_sales_daily"):
        row = _one(con, "select min(date), max(date), count(distinct geo_id), sum(net_revenue) "
                        "from marts.fct_sales_daily where tenant_id = ?", [tenant_id])
        if row and row[0] is not None:
            out.append(f"Data: {row[0]} to {row[1]}, {row[2]} regions.")
    if table_exists(con, "ops", "quarantined_files"):
        bad = {r[0] for r in con.execute("select file_path from ops.quarantined_files where tenant_id = ?",
                                         [tenant_id]).fetchall()}
        if truth is not None and truth.bad_files:
            planted = {b.file_path for b in truth.bad_files}
            out.append(f"Refused files: {len(bad)} (the simulator planted {len(planted)} bad ones; "
                       f"{len(planted & bad)} of them refused" + (f", {len(bad - planted)} others" if bad - planted
                                                                  else "") + ").")
        elif bad:
            out.append(f"Refused files: {len(bad)} (names, lines and reasons: weathervane sniff).")
    return out


def _selected_model(con, tenant_id: str):
    if not table_exists(con, "mmm", "model_selection"):
        return None
    return _one(con, "select model_id, fallback_model_id, ladder_label, holdout_mape, reason "
                     "from mmm.model_selection where tenant_id = ?", [tenant_id])


def _truth_tables(con, tenant_id: str, model_id: str, truth, currency: str) -> None:
    rows = con.execute(
        "select channel, spend, roas_mean, roas_p05, roas_p95 from mmm.channel_summary "
        "where model_id = ? and tenant_id = ? and geo_id is null order by spend desc", [model_id, tenant_id]).fetchall()
    table = []
    for channel, spend, m, lo, hi in rows:
        true = truth.channels[channel].roas if truth is not None and channel in truth.channels else None
        inside = "—" if true is None or lo is None else ("yes" if lo <= true <= hi else "no")
        table.append((rp.channel_name(channel), rp.money(spend, currency),
                      f"{rp.ratio(m)} ({rp.ratio(lo)}–{rp.ratio(hi)})", rp.ratio(true), inside))
    if table:
        print_table("Return on ad spend: estimate against the simulated truth",
                    ["channel", "spend", "estimate (90% interval)", "truth", "truth inside?"], table)
    if not table_exists(con, "mmm", "weather_effects"):
        return
    spread = rp.weather_spread(con, tenant_id)
    effects = con.execute(
        "select channel, weather_variable, multiplier_per_sd_mean, multiplier_per_sd_p05, multiplier_per_sd_p95 "
        "from mmm.weather_effects where model_id = ? and tenant_id = ? order by channel, weather_variable",
        [model_id, tenant_id]).fetchall()
    rows = []
    for channel, var, m, lo, hi in effects:
        day = rp.weather_in_words(var, 1.0, spread.get(var)).removesuffix(" than usual")
        true = truth.channels[channel].multiplier_per_sd.get(var) if truth is not None and channel in truth.channels \
            else None
        sure = "" if not (rp.is_number(lo) and rp.is_number(hi)) or lo <= 1 <= hi else " *"
        rows.append((rp.channel_name(channel), day,
                     f"{rp.pct(m - 1, signed=True)} ({rp.pct(lo - 1, signed=True)} to {rp.pct(hi - 1, signed=True)})"
                     + sure, "—" if true is None else rp.pct(true - 1, signed=True)))
    if rows:
        print_table("Weather: change in a channel's effect on a day … than usual (* = sure of the sign)",
                    ["channel", "a day … than usual", "estimate (90% interval)", "truth"], rows)


def _plan_lines(con, tenant_id: str, currency: str) -> tuple[str | None, list[str]]:
    if not table_exists(con, "decisions", "plans"):
        return None, []
    cols = {r[0] for r in con.execute("describe decisions.plans").fetchall()}
    extra = ", decision, fallback_reason, prob_better" if "decision" in cols else ", null, null, null"
    row = _one(con, "select plan_id, status, horizon_start, horizon_end, total_budget, expected_kpi_mean, "
                    f"baseline_kpi_mean, model_id{extra} from decisions.plans where tenant_id = ? "
                    "order by created_at desc limit 1", [tenant_id])
    if row is None:
        return None, []
    plan_id, status, start, end, budget, kpi, base, model_id, decision, reason, prob = row
    out = [f"Plan {plan_id} ({status}) for {start} to {end}: budget {rp.money(budget, currency)}."]
    if decision == "keep_split" or (decision is None and kpi == base):
        out.append(f"  It keeps the current split{': ' + reason if reason else '.'}")
    else:
        gain = (kpi or 0) - (base or 0)
        out.append(f"  Expected net revenue {rp.money(kpi, currency)}, {rp.money(gain, currency)} more than keeping "
                   f"the split; chance it beats keeping the split: {rp.probability(prob)}.")
    return plan_id, out


def _regret_lines(con, tenant_id: str, model_id: str, truth_path: Path, landing: Path, store: Path) -> list[str]:
    """The plan remade with the same model and valued under the simulator's true response and weather."""
    from weathervane.simulate.oracle import evaluate_world_decision

    try:
        r = evaluate_world_decision(con, tenant_id, truth_path, model_id, landing, store=store)
    except Exception as exc:  # the summary still prints; the reason is shown
        return [f"Regret against the truth could not be computed: {exc}"]
    return [
        f"Against the truth: the plan leaves {rp.ratio(r['regret_plan_pct'], 1)}% of the best possible media revenue "
        f"on the table (the true optimum under the same budget and change limits); keeping the split leaves "
        f"{rp.ratio(r['regret_keep_split_pct'], 1)}%, the weather-blind plan {rp.ratio(r['regret_weather_blind_pct'], 1)}%."
    ]


def _replay_lines(con, tenant_id: str, currency: str) -> list[str]:
    if not table_exists(con, "decisions", "policy_replay"):
        return []
    from weathervane.replay.report import headline_from_rows

    rows = con.execute("select * from decisions.policy_replay where tenant_id = ?", [tenant_id]).df()
    if rows.empty:
        return []
    return [f"Replay of past decisions: {headline_from_rows(rows, currency)}"]


def print_demo_summary(tenant_id: str, *, warehouse: Path, landing: Path, store: Path, reports: Path,
                       failed_checks: list[str] | None = None) -> None:
    """The demo's closing summary: the tenant's file under `warehouse`, its landing folder (currency, truth, tenant
    settings) under `landing`, saved models under `store`, reports under `reports`."""
    tenant_id = config.validate_tenant_id(tenant_id)
    currency = rp.tenant_currency(tenant_id, landing)
    truth_path = rp.truth_file(tenant_id, landing)
    truth = None
    if truth_path is not None:
        from weathervane.simulate import load_truth

        truth = load_truth(truth_path)
    from weathervane.warehouse import tenant_path

    con = duckdb.connect(str(tenant_path(warehouse, tenant_id)), read_only=True)
    try:
        _say()
        _say(f"What the pipeline found for {tenant_id}" + (" (simulated: the truth is known)" if truth else ""))
        for line in _data_lines(con, tenant_id, truth):
            _say(line)
        for check in failed_checks or []:
            _say(f"Failed ERROR check (the run is marked failed in Dagster): {check}")
        sel = _selected_model(con, tenant_id)
        model_id = None
        if sel is not None:
            model_id, fallback, label, mape, reason = sel
            if model_id:
                _say(f"Model: {label}; it passed its checks" + (f", holdout error {rp.pct(mape, 1)}" if mape is not None
                                                                  else "") + ".")
            else:
                _say(f"Model: no fit passed its checks ({reason}); plans keep the split.")
                model_id = fallback
        if model_id:
            _truth_tables(con, tenant_id, model_id, truth, currency)
        plan_id, lines = _plan_lines(con, tenant_id, currency)
        for line in lines:
            _say(line)
        if truth_path is not None and model_id:
            for line in _regret_lines(con, tenant_id, model_id, truth_path, landing, store):
                _say(line)
        for line in _replay_lines(con, tenant_id, currency):
            _say(line)
        proposed = plan_id is not None and _one(con, "select status from decisions.plans where plan_id = ?",
                                                [plan_id])[0] == "proposed"
    finally:
        con.close()
    if proposed:
        approvers = config.load_tenant_config(landing, tenant_id).autopilot.approvers
        actor = approvers[0] if approvers else "<approver>"
        _say(f"Approve it: .venv/bin/weathervane plans approve --tenant {tenant_id} --plan-id {plan_id} "
             f"--actor {actor} --reason 'looks right'")
        _say(f"  or on the approvals page: .venv/bin/weathervane users add --user {actor} --tenant {tenant_id} "
             "--role approver, then "
             f"make ui and open http://localhost:3001/t/{tenant_id}/plans/{plan_id}")
    folder = Path(reports) / tenant_id
    pages = sorted(folder.glob("*.html")) if folder.is_dir() else []
    if pages:
        _say(f"Reports ({len(pages)}): {folder.resolve()}/ — " + ", ".join(r.name for r in pages))
