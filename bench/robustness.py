"""The robustness matrix: simulate a world, take it through ingest -> dbt -> sniff (model spec) -> the fit step
production runs (weathervane.mmm.fit_tenant_spec), and score the fit.

A bench harness, not part of the runtime library (it runs dbt and sets the warehouse environment). Used by
bench/bench_robustness.py (the whole matrix, in the background) and tests/test_robustness.py (a slice).
Scores per world: each channel's ROAS error and whether its 90% interval covers the truth; each weather
multiplier's error, sign and coverage; false positives (a true multiplier of 1 whose interval excludes 1) and
wrong-side effects (|log truth| >= 0.1, the interval excluding 1 on the other side); whether the default fit
passed its gate on the first try and after its retry; fit time; the channels flagged `needs_experiment`.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from weathervane.simulate.worlds import World

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_DIR = REPO_ROOT / "dbt"
START = date(2023, 5, 1)  # with 420 days the planning horizon falls in high summer, where the weather matters
WRONG_SIDE_LOG = 0.1
# the model's input and what the plan reads (recent spend, sales, forecasts)
DBT_SELECT = ("+fct_model_input", "+fct_weather_daily", "+fct_ad_spend_daily", "+fct_sales_daily",
              "+fct_weather_forecast_daily")
DBT_SELECT_VERSION = "marts-v3-spec"


@dataclass
class WorldResult:
    world: str
    seed: int
    tenant_id: str
    status: str = "error"
    passed_first_try: bool = False
    attempts: int = 0
    max_rhat: float | None = None
    min_ess_bulk: float | None = None
    divergences: int | None = None
    fit_seconds: float = 0.0
    roas: dict = field(default_factory=dict)  # channel -> {true, mean, p05, p95, rel_err, covered}
    weather: dict = field(default_factory=dict)  # "channel|variable" -> {true, mean, p05, p95, covered, ...}
    needs_experiment: list[str] = field(default_factory=list)
    tries: list = field(default_factory=list)  # each try's r-hat, ESS, divergences, tune, draws, seconds
    regret: dict | None = None
    error: str | None = None
    ladder_rung: int | None = None  # 1: the spec itself passed; more: a coarser rung of its ladder
    spec: dict = field(default_factory=dict)  # period, grain, weather terms, lags the spec chose
    model_id: str | None = None

    # summaries
    @property
    def median_roas_error(self) -> float:
        return float(np.median([r["rel_err"] for r in self.roas.values()])) if self.roas else float("nan")

    def coverage(self) -> tuple[int, int]:
        items = list(self.roas.values()) + list(self.weather.values())
        return sum(bool(r["covered"]) for r in items), len(items)

    @property
    def false_positives(self) -> tuple[int, int]:
        nulls = [w for w in self.weather.values() if w["null"]]
        return sum(bool(w["excludes_one"]) for w in nulls), len(nulls)

    @property
    def wrong_side(self) -> int:
        return sum(bool(w["wrong_side"]) for w in self.weather.values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=float)


def model_input_from_truth(truth, period: str = "week") -> tuple[pd.DataFrame, pd.DataFrame]:
    """fct_model_input-shaped rows (grain all × region) and daily weather rows aggregated from what the simulator
    wrote: daily net revenue and spend per geo, promotions and sends, weather (mean + sd * z). A cross-check of
    what simulate -> ingest_tenant -> dbt build puts in marts.fct_model_input."""
    dates = pd.to_datetime(truth.daily.dates)
    n = len(dates)
    promo_depth = np.zeros(n)
    sends = np.zeros(n)
    for p in truth.promotions:
        idx = (dates >= pd.Timestamp(p.start_date)) & (dates <= pd.Timestamp(p.end_date))
        if p.source == "klaviyo_campaign":
            sends[idx] += 1.0
        else:
            promo_depth[idx] = np.maximum(promo_depth[idx], p.depth_pct)
    rows, weather = [], []
    for g in truth.geos:
        geo = g.geo_id
        w = {v: g.weather_mean[v] + g.weather_sd[v] * np.asarray(truth.daily.z[v][geo]) for v in g.weather_mean}
        frame = pd.DataFrame({
            "tenant_id": truth.tenant_id, "grain_product": "all", "grain_geo": "region", "period": "day",
            "product_key": "all", "geo_id": geo, "date": dates, "kpi": truth.daily.net_revenue[geo],
            **{f"spend_{c}": truth.daily.spend[c][geo] for c in truth.daily.spend},
            "promo_active": (promo_depth > 0).astype(float), "promo_depth_pct": promo_depth,
            "realized_discount_rate": promo_depth / 100, "lifecycle_sends": sends,
            "temperature_2m_mean": w["temperature_2m_mean"], "temperature_2m_max": w["temperature_2m_mean"] + 4,
            "precipitation_sum": w["precipitation_sum"], "temperature_anomaly": 0.0, "precipitation_anomaly": 0.0,
            "is_holiday": 0, "day_of_week": dates.day_of_week + 1, "spend_allocated_share": 0.0,
        })
        rows.append(frame)
        weather.append(frame[["tenant_id", "date", "geo_id", "temperature_2m_mean", "temperature_2m_max",
                              "precipitation_sum"]])
    daily = pd.concat(rows, ignore_index=True)
    if period == "week":
        daily["week"] = daily["date"] - pd.to_timedelta(daily["date"].dt.day_of_week, unit="D")
        full = daily.groupby("week")["date"].transform("nunique") == 7  # whole weeks only
        daily = daily[full]
        keys = ["tenant_id", "grain_product", "grain_geo", "product_key", "geo_id", "week"]
        sums = ["kpi", "lifecycle_sends", "precipitation_sum", *[c for c in daily if c.startswith("spend_")
                                                               and c != "spend_allocated_share"]]
        means = ["promo_active", "promo_depth_pct", "realized_discount_rate", "temperature_2m_mean",
                 "temperature_2m_max", "temperature_anomaly", "precipitation_anomaly", "spend_allocated_share"]
        daily = daily.groupby(keys, as_index=False).agg({**{c: "sum" for c in sums}, **{c: "mean" for c in means},
                                                         "is_holiday": "max"})
        daily = daily.rename(columns={"week": "date"}).assign(period="week", day_of_week=1)
    return daily, pd.concat(weather, ignore_index=True)


def tenant_for(world: World, seed: int) -> str:
    return f"rb-{world.name.replace('_', '-')}-{seed}"


def build_warehouse(world: World, seed: int, workdir: Path, *, days: int = 420, n_geos: int = 3) -> tuple[Path, Path]:
    """simulate_tenant -> ingest_tenant -> dbt build (grain all x region) in `workdir`; returns (truth path,
    warehouse path). Reuses a warehouse already built there for the same world and seed."""
    from weathervane.simulate import simulate_tenant

    tenant = tenant_for(world, seed)
    landing, wh = workdir / "landing", workdir / "warehouse.duckdb"
    truth_path = landing / f"{tenant}.truth.json"
    done = workdir / "inputs.done"
    if done.exists() and truth_path.exists() and wh.exists():
        if done.read_text().strip() != DBT_SELECT_VERSION:  # built before the spec decided the grain
            harmonize_as_production(wh, workdir, landing, tenant)
            done.write_text(DBT_SELECT_VERSION + "\n")
        return truth_path, wh
    workdir.mkdir(parents=True, exist_ok=True)
    if wh.exists():
        wh.unlink()
    simulate_tenant(tenant, landing, seed=seed, days=days, n_geos=n_geos, start=START, world=world,
                    **world.simulate_kwargs())
    quarantined = ingest_simulated(wh, landing, tenant)
    if quarantined:
        raise RuntimeError(f"{tenant}: ingest quarantined files: {quarantined[:3]}")
    harmonize_as_production(wh, workdir, landing, tenant)
    done.write_text(DBT_SELECT_VERSION + "\n")
    return truth_path, wh


def ingest_simulated(wh: Path, landing: Path, tenant: str) -> list:
    """Ingest a simulated tenant's landing files into the warehouse file; the files quarantined."""
    from weathervane import warehouse
    from weathervane.landing import ingest_tenant

    con = warehouse.connect(wh)
    try:
        warehouse.ensure_schemas(con)
        report = ingest_tenant(con, landing, tenant)
    finally:
        con.close()
    return [q for s in report.streams for q in s.quarantined]


def harmonize_as_production(wh: Path, workdir: Path, landing: Path, tenant: str) -> None:
    """dbt, then the sniff's model spec (written to ops.model_spec as the sniff asset does), then dbt again at the
    spec's grain when it differs: the grain and everything the fit reads are what production decides."""
    from weathervane import config
    from weathervane.sniff import sniff_tenant, write_sniff
    from weathervane.spec import ModelSpec, dbt_vars

    cfg = config.load_tenant_config(landing, tenant)
    first = ModelSpec(tenant_id=tenant)
    run_dbt(wh, workdir, dbt_vars(tenant, cfg, first))
    import duckdb

    con = duckdb.connect(str(wh))
    try:
        sniff = sniff_tenant(con, tenant, cfg)
        write_sniff(con, sniff)
    finally:
        con.close()
    if sniff.spec.grain != first.grain:
        run_dbt(wh, workdir, dbt_vars(tenant, cfg, sniff.spec))


def run_dbt(wh: Path, workdir: Path, variables: dict) -> None:
    from dbt.cli.main import dbtRunner

    args = ["build", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR), "--target-path",
            str(workdir / "dbt_target"), "--log-path", str(workdir / "dbt_logs"), "--vars", json.dumps(variables),
            "--quiet", "--select", *DBT_SELECT, "--exclude", "resource_type:test"]
    before = os.environ.get("WEATHERVANE_WAREHOUSE")
    os.environ["WEATHERVANE_WAREHOUSE"] = str(wh)
    try:
        result = dbtRunner().invoke(args)
    finally:
        if before is None:
            os.environ.pop("WEATHERVANE_WAREHOUSE", None)
        else:
            os.environ["WEATHERVANE_WAREHOUSE"] = before
    if not result.success:
        raise RuntimeError(f"dbt build failed: {result.exception}")


def score(result: WorldResult, truth, channel_summary, weather_effects) -> WorldResult:
    overall = channel_summary[channel_summary["geo_id"].isna()].set_index("channel")
    we = weather_effects.set_index(["channel", "weather_variable"])  # no rows when the spec kept no weather term
    for c, ch in truth.channels.items():
        if c not in overall.index:
            continue
        r = overall.loc[c]
        result.roas[c] = dict(true=ch.roas, mean=float(r.roas_mean), p05=float(r.roas_p05), p95=float(r.roas_p95),
                              rel_err=abs(float(r.roas_mean) - ch.roas) / ch.roas,
                              covered=bool(r.roas_p05 <= ch.roas <= r.roas_p95),
                              mroas=float(r.mroas_mean),
                              contraction=_num(r.get("roas_contraction")),
                              spend_baseline_corr=_num(r.get("spend_baseline_corr")))
        if bool(r.get("needs_experiment", False)):
            result.needs_experiment.append(c)
        for v, m in ch.multiplier_per_sd.items():
            if (c, v) not in we.index:
                continue
            e = we.loc[(c, v)]
            lo, hi, mean = float(e.multiplier_per_sd_p05), float(e.multiplier_per_sd_p95), float(e.multiplier_per_sd_mean)
            log_true = float(np.log(m))
            excludes = lo > 1 or hi < 1
            wrong = abs(log_true) >= WRONG_SIDE_LOG and excludes and np.sign(np.log(mean)) != np.sign(log_true)
            result.weather[f"{c}|{v}"] = dict(true=m, mean=mean, p05=lo, p95=hi, covered=bool(lo <= m <= hi),
                                              abs_log_err=abs(float(np.log(mean)) - log_true),
                                              null=abs(log_true) < 1e-9, excludes_one=bool(excludes),
                                              wrong_side=bool(wrong))
    return result


def _num(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


def run_world(world: World, seed: int, workdir: Path, overrides: dict | None = None, *, days: int = 420,
              n_geos: int = 3, regret: bool = True) -> WorldResult:
    """One world × seed through production's fit step (weathervane.mmm.fit_tenant_spec: the tenant's model spec,
    its ladder, the gate and holdout, exactly what the Dagster asset runs; `overrides` as a run's config would).
    The fit's models and summaries land in the world's warehouse and model store (under `workdir`), so the
    oracle can value the plan made from the chosen model."""
    from weathervane import config
    from weathervane.mmm import duckdb_connect, fit_tenant_spec
    from weathervane.simulate.truth import load_truth

    tenant = tenant_for(world, seed)
    result = WorldResult(world=world.name, seed=seed, tenant_id=tenant)
    try:
        truth_path, wh = build_warehouse(world, seed, workdir, days=days, n_geos=n_geos)
        truth = load_truth(truth_path)
        cfg = config.load_tenant_config(workdir / "landing", tenant)
        t0 = time.perf_counter()
        ladder, spec, _ = fit_tenant_spec(duckdb_connect(wh), tenant, cfg, overrides, store=workdir / "models",
                                          reports=workdir / "reports")
        result.fit_seconds = time.perf_counter() - t0
        fitted = ladder.chosen
        first = ladder.rungs[0]
        result.ladder_rung = (ladder.chosen_rung + 1) if ladder.chosen_rung is not None else None
        result.spec = {"period": spec.period, "grain": f"{spec.grain_product} x {spec.grain_geo}",
                       "weather_vars": list(spec.weather_vars), "lags": spec.lags}
        if fitted is None:
            result.status = "failed_diagnostics"
            result.error = ladder.reason[:500]
            return result
        d = fitted.diagnostics
        result.model_id = fitted.model_id
        result.status = fitted.status
        result.attempts = int(d.get("attempts", 1))
        result.passed_first_try = ladder.chosen_rung == 0 and result.attempts == 1 and first.status == "ok"
        result.tries = fitted.attempts
        result.max_rhat, result.min_ess_bulk, result.divergences = d["max_rhat"], d["min_ess_bulk"], d["divergences"]
        score(result, truth, fitted.frames["channel_summary"], fitted.frames["weather_effects"])
        result.error = None
        if regret:
            result.regret = world_regret(wh, tenant, truth_path, fitted.model_id, workdir,
                                         holdout_scored=fitted.holdout_mape is not None)
    except Exception as exc:  # a world that breaks the pipeline is a finding, not a crash of the matrix
        result.error = f"{type(exc).__name__}: {exc}"[:500]
    return result


def world_regret(wh: Path, tenant: str, truth_path: Path, model_id: str, workdir: Path,
                 holdout_scored: bool = True) -> dict:
    """Regrets of the plan, keep-the-split and the weather-blind plan against the oracle
    (`oracle.evaluate_world_decision`).

    The bench skips the holdout score (it would cost a second fit per world) and the plan requires one, which
    would make every plan keep-the-split; without a holdout score the plans are therefore made as if the holdout
    had passed (planning.max_holdout_mape off), every other guard as production has it, and the result says so."""
    import duckdb

    from weathervane.simulate.oracle import evaluate_world_decision

    before = {k: os.environ.get(k) for k in ("WEATHERVANE_MODEL_STORE", "WEATHERVANE_WAREHOUSE")}
    os.environ["WEATHERVANE_MODEL_STORE"] = str(workdir / "models")
    os.environ["WEATHERVANE_WAREHOUSE"] = str(wh)
    con = duckdb.connect(str(wh))
    try:
        out = evaluate_world_decision(con, tenant, truth_path, model_id, workdir / "landing",
                                      reports_dir=workdir / "reports", store=workdir / "models",
                                      require_holdout=holdout_scored)
        out["holdout_guard"] = "scored" if holdout_scored else "not scored: plans made as if it passed"
        return {k: v for k, v in out.items() if isinstance(v, (int, float, str, bool, list)) or v is None}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        con.close()
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def curve_credit(truth, channel: str, l_max: int = 3) -> dict:
    """What the model's curve family can tell from the data, with the truth's own contributions as data.

    Fits the model's form (geometric adstock over `l_max` weeks, a logistic curve shared by the geos, a scale
    per geo) plus a free level per geo to the channel's true weekly contributions by least squares. The level
    stands for the baseline: a return that no variation in spend reveals cannot be told from it. `credited` is
    the fitted curve's total over the true total: 1 when the family pins the return down from the spend that
    was observed, off 1 when the family's extrapolation below the lowest observed spend decides it. `r2`
    (within geo) and `resid` (rms residual over the mean weekly contribution) say how well it fits what was
    observed: a family that fits as well as another leaves no out-of-sample evidence to choose between them."""
    from scipy.optimize import least_squares

    from weathervane.simulate.media import adstock, logistic_saturation

    spend, contrib = [], []
    for g in truth.geos:
        s = np.asarray(truth.daily.spend[channel][g.geo_id], dtype=float)
        y = np.asarray(truth.daily.contribution[channel][g.geo_id], dtype=float)
        n = len(s) // 7 * 7
        spend.append(s[:n].reshape(-1, 7).sum(axis=1))
        contrib.append(y[:n].reshape(-1, 7).sum(axis=1))
    x = np.array(spend) / np.array(spend).max(axis=1, keepdims=True)
    y = np.array(contrib)
    unit = y.max()
    n_geo = len(x)

    def parts(p):
        alpha, lam = 1 / (1 + np.exp(-p[0])), np.exp(p[1])
        curve = np.exp(p[2:2 + n_geo])[:, None] * logistic_saturation(adstock(x, alpha ** np.arange(l_max)), lam)
        return curve, p[2 + n_geo:][:, None]

    fits = [least_squares(lambda p: (sum(parts(p)) - y / unit).ravel(),
                          x0=[-1.0, np.log(lam0), *np.zeros(2 * n_geo)]) for lam0 in (0.3, 1.0, 3.0, 8.0)]
    best = min(fits, key=lambda f: f.cost)
    curve, level = parts(best.x)
    fit = (curve + level) * unit
    return dict(credited=float(curve.sum() * unit / y.sum()), lam=float(np.exp(best.x[1])),
                r2=float(1 - ((fit - y) ** 2).sum() / ((y - y.mean(axis=1, keepdims=True)) ** 2).sum()),
                resid=float(np.sqrt(((fit - y) ** 2).mean()) / y.mean()))


def load_results(path: Path) -> list[WorldResult]:
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if line.strip():
            out.append(WorldResult(**json.loads(line)))
    return out


def _fmt(x, spec: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    text = format(x, spec)
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.0"


def targets(r: WorldResult) -> dict[str, bool]:
    """The issue's targets, per world × seed."""
    cov, n = r.coverage()
    return {
        "roas_err<=15%": r.median_roas_error <= 0.15,
        "coverage>=85%": n > 0 and cov / n >= 0.85,
        "no_wrong_side": r.wrong_side == 0,
        # the default fit includes its bounded retry; the first try is reported beside it
        "gate": r.status == "ok",
    }


def markdown_table(results: list[WorldResult]) -> str:
    head = ("| world | seed | median ROAS err | worst channel (err) | ROAS cover | weather cover | false +/nulls | "
            "wrong side | gate 1st / final | fit s | needs experiment | regret plan / keep / blind | misses |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for r in results:
        if r.error and not r.roas:
            rows.append(f"| {r.world} | {r.seed} | error: {r.error[:80]} |" + " |" * 11)
            continue
        worst = max(r.roas.items(), key=lambda kv: kv[1]["rel_err"]) if r.roas else ("-", {"rel_err": float("nan")})
        rc = sum(v["covered"] for v in r.roas.values())
        wc = sum(v["covered"] for v in r.weather.values())
        fp, nulls = r.false_positives
        reg = r.regret or {}
        # without a holdout score (the bench skips it) the plans were made as if it had passed (world_regret)
        if not r.regret:
            regret = "n/a"
        elif "regret_plan_pct" not in reg:
            regret = f"error: {str(reg.get('error'))[:60]}"
        else:
            regret = (f"{_fmt(reg.get('regret_plan_pct'), '.1f')} / {_fmt(reg.get('regret_keep_split_pct'), '.1f')}"
                      f" / {_fmt(reg.get('regret_weather_blind_pct'), '.1f')} ({reg.get('decision', '?')}"
                      + (", holdout assumed passed" if reg.get("holdout_guard", "").startswith("not") else "")
                      + (f"; as if the holdout passed: {_fmt(reg.get('regret_plan_no_holdout_pct'), '.1f')} "
                         f"{reg.get('decision_plan_no_holdout', '')}" if "regret_plan_no_holdout_pct" in reg else "")
                      + ")")
        misses = ", ".join(k for k, ok in targets(r).items() if not ok) or "-"
        rows.append(
            f"| {r.world} | {r.seed} | {r.median_roas_error:.0%} | {worst[0]} ({worst[1]['rel_err']:.0%}) | "
            f"{rc}/{len(r.roas)} | {wc}/{len(r.weather)} | {fp}/{nulls} | {r.wrong_side} | "
            f"{'yes' if r.passed_first_try else 'no'} / {'yes' if r.status == 'ok' else 'no'} | "
            f"{r.fit_seconds:.0f} | {', '.join(r.needs_experiment) or '-'} | {regret} | {misses} |")
    return head + "\n".join(rows) + "\n"


def pooled_summary(results: list[WorldResult]) -> str:
    ok = [r for r in results if r.roas]
    if not ok:
        return "no completed fits\n"
    cov = sum(r.coverage()[0] for r in ok)
    n = sum(r.coverage()[1] for r in ok)
    fp = sum(r.false_positives[0] for r in ok)
    nulls = sum(r.false_positives[1] for r in ok)
    errs = [v["rel_err"] for r in ok for v in r.roas.values()]
    lines = [
        f"- fits: {len(ok)} of {len(results)} world × seed runs completed",
        f"- median ROAS error (all channels): {np.median(errs):.1%}; worlds meeting median <= 15%: "
        f"{sum(r.median_roas_error <= 0.15 for r in ok)}/{len(ok)}",
        f"- pooled 90% coverage of ROAS and weather truths: {cov}/{n} = {cov / max(n, 1):.0%} (target >= 85%)",
        f"- false positives on true-zero weather effects: {fp}/{nulls} = {fp / max(nulls, 1):.0%} (nominal 10%)",
        f"- wrong-side weather effects: {sum(r.wrong_side for r in ok)}",
        f"- default fit passed its gate on the first try: {sum(r.passed_first_try for r in ok)}/{len(ok)}; "
        f"after the retry: {sum(r.status == 'ok' for r in ok)}/{len(ok)}",
    ]
    return "\n".join(lines) + "\n"
