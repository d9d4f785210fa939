"""Plan regret over simulated worlds: the production plan, keep-the-split, the weather-blind plan and the
optimiser's unguarded candidate, each valued under the world's TRUE response and horizon weather against the
±max_change_pct oracle (weathervane.simulate.oracle).

No fits here (bench/bench_robustness.py fits the real pipeline and calls the same oracle): each world's model is
its own truth seen through a posterior of a known quality, so the guards are measured against the model errors
that matter to a plan:

- right: the truth's response with 10% log-sd posterior scatter per cell (the model is right and knows it);
- shaky: 50% scatter (right on average, unsure);
- undecided: 100% scatter (the data cannot decide);
- wrong: meta's return overstated 2.3x with 5% scatter (confidently wrong), not flagged;
- wrong_flagged: the same model with meta flagged `needs_experiment`;
- geo_wrong: every cell's return off by a fixed factor exp(N(0, 0.3)) with 5% scatter: confident, wrong geo
  gaps (the failure when geo spend follows geo demand), not flagged.

The model's response is the allocator's logistic / geometric form with the truth's parameters, so in worlds with
Hill saturation or delayed adstock it is also misspecified in shape.

Weather horizons: the worlds in --weather-worlds are also planned for a horizon whose forecast (and actual weather)
holds a heat wave (first geo, +2.5 sd for 14 days) or a wet stretch (second geo, precipitation 2.5 sd above its
mean every day for 14 days), put in by `weathervane.simulate.oracle.impose_weather_events`; there the weather-aware
plan is compared with the weather-blind plan.

    nice -n 10 .venv/bin/python bench/bench_plans.py [--worlds reference ...] [--weather-worlds ...] [--seeds 0 1]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_WORLDS = ("reference", "small_no_tests", "hill_s_curve", "slow_adstock", "paced_search", "no_weather",
                  "weather_swapped", "media_heavy")
VARIANTS = ("right", "shaky", "undecided", "wrong", "wrong_flagged", "geo_wrong")
P_BANDS = ((0.8, 0.9), (0.9, 0.95), (0.95, 0.99), (0.99, 1.0001))
# horizons where weather matters: (event kind, index of the geo it hits), put into the forecast and the truth
WEATHER_HORIZONS = {"heat_wave": ("heat_wave", 0), "wet_stretch": ("wet_stretch", 1)}
WEATHER_WORLDS = ("reference", "small_no_tests", "hill_s_curve", "weather_swapped", "no_weather")
# weather matters where knowing the forecast is worth this much of the oracle's value (weather_worth_pct)
WEATHER_MATTERS_PCT = 0.1


def load_marts(con, folder: Path, truth) -> None:
    """The simulated spend (as written to the files) and weather into marts.fct_ad_spend_daily /
    fct_weather_daily and the forecast files into raw.weather__forecast, without the ingest and dbt steps."""
    rows = [(truth.tenant_id, d, ch, f"c-{ch}", g, s) for ch, by_geo in truth.daily.spend.items()
            for g, series in by_geo.items() for d, s in zip(pd.to_datetime(truth.daily.dates).date, series)]
    spend = pd.DataFrame(rows, columns=["tenant_id", "date", "channel", "campaign_id", "geo_id", "spend"])
    weather = []
    bad = {b.file_path for b in truth.bad_files}
    for path in sorted((folder / "weather" / "daily").glob("*/*.json")):
        if str(path.relative_to(folder)) in bad:  # the bad-files worlds' broken extracts: ingest quarantines them
            continue
        daily = json.loads(path.read_text())["daily"]
        weather.append(pd.DataFrame({"tenant_id": truth.tenant_id, "date": pd.to_datetime(daily["time"]).date,
                                     "geo_id": path.parent.name, **{v: daily[v] for v in (
                                         "temperature_2m_mean", "temperature_2m_max", "precipitation_sum")}}))
    weather = pd.concat(weather, ignore_index=True)
    con.execute("create schema if not exists marts; create schema if not exists raw")
    con.register("spend_rows", spend)
    con.register("weather_rows", weather)
    con.execute("create or replace table marts.fct_ad_spend_daily as select tenant_id, date, channel, campaign_id, "
                "geo_id, spend, 0::bigint as impressions, 0::bigint as clicks, 'x' as platform from spend_rows")
    con.execute("create or replace table marts.fct_weather_daily as select * from weather_rows")
    con.execute("create or replace table raw.weather__forecast (tenant_id varchar, file_path varchar, "
                "file_hash varchar, source_line integer, loaded_at timestamp, geo_id varchar, record json)")
    for path in sorted((folder / "weather" / "forecast").glob("*/*.json")):
        con.execute("insert into raw.weather__forecast values (?, ?, 'h', 1, ?, ?, ?)",
                    [truth.tenant_id, str(path.relative_to(folder)), datetime(2025, 1, 1), path.parent.name,
                     path.read_text()])


def model(truth, variant: str):
    from weathervane.allocate import SaturatingResponse
    from weathervane.allocate.safety import ModelEvidence

    spread = {"right": 0.1, "shaky": 0.5, "undecided": 1.0}.get(variant, 0.05)
    r = SaturatingResponse.from_truth(truth, draws=200, seed=1, spread=spread)
    flags = {}
    if variant == "geo_wrong":
        r.beta = r.beta * np.exp(np.random.default_rng(7).normal(0, 0.3, r.beta.shape[1:]))[None]
    if variant.startswith("wrong") and "meta" in r.channels:
        r.beta[:, r.channels.index("meta")] *= 2.3
        if variant == "wrong_flagged":
            flags = {("meta", None): True}
    return r, ModelEvidence.assumed("simulator-truth", flags)


def run_world(name: str, seed: int, days: int, geos: int, workdir: Path, horizon: str = "as simulated",
              variants: tuple[str, ...] = VARIANTS) -> list[dict]:
    import duckdb

    from weathervane.allocate import build_plan
    from weathervane.config import TenantConfig
    from weathervane.simulate import simulate_tenant
    from weathervane.simulate.oracle import WeatherEvent, impose_weather_events, score_plans
    from weathervane.simulate.worlds import ALL_WORLDS

    world = ALL_WORLDS[name]
    tag = "" if horizon == "as simulated" else "-" + horizon.split("_")[0]
    tenant = f"p{seed}-{name.replace('_', '-')}"[:34] + tag
    truth = simulate_tenant(tenant, workdir, days=days, n_geos=world.n_geos or geos, seed=seed, world=world,
                            grain=("all", "region"), **world.simulate_kwargs())
    if horizon != "as simulated":
        kind, gi = WEATHER_HORIZONS[horizon]
        truth = impose_weather_events(truth, workdir, [WeatherEvent(kind, (truth.geos[gi].geo_id,))])
    con = duckdb.connect(str(workdir / f"{tenant}.duckdb"))
    load_marts(con, workdir / tenant, truth)
    cfg = TenantConfig()
    rows = []
    for variant in variants:
        response, evidence = model(truth, variant)
        plan = build_plan(con, tenant, cfg, response, evidence=evidence)
        blind = build_plan(con, tenant, cfg, response, evidence=evidence, weather_blind=True)
        s = score_plans(truth, plan, blind, cfg.planning.max_change_pct, workdir)
        rows.append({"world": name, "seed": seed, "horizon": horizon, "variant": variant, **s})
    con.close()
    return rows


def weather_matters(r: dict) -> bool:
    return r["horizon"] != "as simulated" and r["weather_worth_pct"] >= WEATHER_MATTERS_PCT


def table(rows: list[dict]) -> str:
    out = ["| world | horizon | model | decision | P(better) | move | weather share | regret plan | keep | "
           "weather-blind | candidate | weather worth |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['world']} s{r['seed']} | {r['horizon']} | {r['variant']} | {r['decision']} | "
                   f"{r['prob_better']:.2f} | {r['move_fraction']:.2f} | {r['weather_share']:.2f} | "
                   f"{r['regret_plan_pct']:.2f}% | {r['regret_keep_split_pct']:.2f}% | "
                   f"{r['regret_weather_blind_pct']:.2f}% | {r['regret_candidate_pct']:.2f}% | "
                   f"{r['weather_worth_pct']:.2f}% |")
    return "\n".join(out)


def summary(rows: list[dict]) -> str:
    lines = []
    for variant in VARIANTS:
        sub = [r for r in rows if r["variant"] == variant]
        if not sub:
            continue
        plan = np.array([r["regret_plan_pct"] for r in sub])
        keep = np.array([r["regret_keep_split_pct"] for r in sub])
        cand = np.array([r["regret_candidate_pct"] for r in sub])
        wm = [r for r in sub if weather_matters(r)]
        beat = sum(r["regret_plan_pct"] < r["regret_weather_blind_pct"] for r in wm)
        lines.append(f"{variant}: plan regret median {np.median(plan):.2f}% (max {plan.max():.2f}%), keep-the-split "
                     f"median {np.median(keep):.2f}%; plan <= keep in {(plan <= keep + 1e-9).sum()}/{len(sub)} "
                     f"worlds; unguarded candidate <= keep in {(cand <= keep + 1e-9).sum()}/{len(sub)}; "
                     f"plan < weather-blind in {beat}/{len(wm)} horizons where weather matters")
    return "\n".join(lines)


def reliability(rows: list[dict]) -> str:
    """Claimed P(better) of the proposed plans against how often they truly beat keep-the-split."""
    plans = [r for r in rows if r["decision"] == "plan"]
    out = ["| claimed P(better) | plans | truly better | rate |", "|---|---|---|---|"]
    for lo, hi in P_BANDS:
        band = [r for r in plans if lo <= r["prob_better"] < hi]
        wins = sum(r["regret_plan_pct"] < r["regret_keep_split_pct"] for r in band)
        out.append(f"| [{lo:.2f}, {min(hi, 1):.2f}) | {len(band)} | {wins} | "
                   + (f"{wins / len(band):.0%}" if band else "–") + " |")
    gain = np.array([r["regret_keep_split_pct"] - r["regret_plan_pct"] for r in plans])
    if len(gain):
        out.append(f"proposed {len(plans)} of {len(rows)}; true gain over keep-the-split (% of the oracle): "
                   f"min {gain.min():.2f}, median {np.median(gain):.2f}; losing by > 0.5: {(gain < -0.5).sum()}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", nargs="*", default=list(DEFAULT_WORLDS))
    ap.add_argument("--weather-worlds", nargs="*", default=list(WEATHER_WORLDS),
                    help="worlds also planned with each of the weather horizons (a heat wave, a wet stretch)")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--days", type=int, default=400)
    ap.add_argument("--geos", type=int, default=3)
    ap.add_argument("--out", type=Path, help="also write the rows as JSON lines here")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--channel-sd", type=float, help="the plan's model-error allowance, channel part")
    ap.add_argument("--geo-sd", type=float, help="the plan's model-error allowance, geo part")
    args = ap.parse_args()
    from weathervane.allocate import safety

    if args.channel_sd is not None:
        safety.MISSPEC_CHANNEL_LOG_SD = args.channel_sd
    if args.geo_sd is not None:
        safety.MISSPEC_GEO_LOG_SD = args.geo_sd
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            runs = [(name, "as simulated") for name in args.worlds]
            runs += [(name, h) for name in args.weather_worlds for h in WEATHER_HORIZONS]
            for name, horizon in runs:
                t = time.perf_counter()
                got = run_world(name, seed, args.days, args.geos, Path(tmp), horizon, tuple(args.variants))
                rows += got
                print(f"{name} seed {seed} {horizon}: {time.perf_counter() - t:.0f} s", flush=True)
    print(table(rows))
    print(summary(rows))
    print(reliability(rows))
    print(f"{len(rows)} plans in {time.perf_counter() - t0:.0f} s")
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
