"""Policy replay against the truth: bias, RMSE and 90%-interval coverage per estimator, and rank-1 accuracy.

Each simulated log (weathervane.simulate.logging_policy) moves its budget split by a known stochastic logging
policy; its truth holds every candidate's true expected KPI over the replayed periods. The replay runs as in
production except for its cost: 78 weeks of history (`--days`), the first 52 training the outcome model (a year:
trained on less, its seasonality cannot forecast the replayed half-year's level), the last 26 replayed; the
outcome model is the
weather MMM fitted by MAP and widened by a Laplace approximation (`--laplace-draws`) at `--origins` rolling
origins (default 1), and the allocator candidates act with the true response (so the truth file and the replay
judge the same actions). The baseline, printed beside each estimator, is the naive replay that credits every candidate with the
logged KPI (lift 0): RMSE ratios below 1 mean the estimator learned something from the log.

    nice -n 10 .venv/bin/python bench/bench_replay.py --logs 30
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("PYTENSOR_FLAGS", f"compiledir={tempfile.mkdtemp(prefix='wv-pytensor-')}")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny BLAS calls in the optimiser; threads only contend
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def one_log(seed: int, origins: int, days: int = 546, laplace_draws: int = 100, min_train: int = 52) -> list[dict]:
    from weathervane.mmm.model import FitSettings
    from weathervane.replay.policies import default_policies
    from weathervane.replay.run import ReplaySettings, run_replay
    from weathervane.simulate.logging_policy import LoggingPolicy, simulate_logged_history

    rng = np.random.default_rng(seed)
    base = rng.dirichlet(np.full(4, 1.5))
    history = simulate_logged_history(
        tenant_id=f"bench{seed}", seed=seed, days=days, media_share=float(rng.uniform(0.12, 0.3)),
        policy=LoggingPolicy(sigma=float(rng.uniform(0.1, 0.3)), base_split=base.tolist()))
    log = history.decision_log()
    policies = default_policies(30)
    res = run_replay(log, policies, FitSettings(method="map", holdout_weeks=0),
                     ReplaySettings(n_origins=origins, n_boot=1000, seed=seed, laplace_draws=laplace_draws,
                                    min_train_periods=min_train),
                     save_models=False,
                     policy_response=history.truth_response())
    window = [(s, e) for s, e in log.periods() if log.date_of(s) >= res.window_start]
    # the true value of the very allocations the replay judged (the allocator on the true response: the same
    # actions `LoggedHistory.score_candidates` writes to the truth file, without computing them twice)
    truth = {name: {"value": sum(history.expected_kpi(s, e, a) for (s, e), a in zip(window, acts))}
             for name, acts in res.actions.items()}
    observed = float(sum(log.outcome(s, e) for s, e in window))
    keep_true = truth["keep_split"]["value"]
    out = []
    for r in res.rows.itertuples():
        out.append(dict(log=seed, policy=r.policy, estimator=r.estimator, value=r.value_mean, lo=r.value_p05,
                        hi=r.value_p95, lift=r.lift_mean, lift_lo=r.lift_p05, lift_hi=r.lift_p95,
                        evaluable=bool(r.evaluable), ess=r.effective_sample_size, support=r.support_share,
                        bandwidth=r.bandwidth,
                        true_value=truth[r.policy]["value"], true_lift=truth[r.policy]["value"] - keep_true,
                        observed=observed, n_periods=res.n_periods))
    return out


def summarise(rows: list[dict]) -> dict:
    """Accuracy over every candidate row (evaluable or not: the flags are judged separately by how often they
    hold), lift metrics over the candidates that move budget."""
    import pandas as pd

    df = pd.DataFrame(rows)
    movers = df[df["policy"] != "keep_split"]
    summary = {}
    for est, g in df.groupby("estimator"):
        mv = movers[movers["estimator"] == est]
        err = g["value"] - g["true_value"]
        lift_err = mv["lift"] - mv["true_lift"]
        naive_lift_rmse = float(np.sqrt((mv["true_lift"] ** 2).mean()))
        naive_value_rmse = float(np.sqrt(((g["observed"] - g["true_value"]) ** 2).mean()))
        covered = (mv["lift_lo"] <= mv["true_lift"]) & (mv["true_lift"] <= mv["lift_hi"])
        ranks = [lg.loc[lg["value"].idxmax(), "policy"] == lg.loc[lg["true_value"].idxmax(), "policy"]
                 for _, lg in g.groupby("log")]
        summary[est] = {
            "evaluable_share": float(mv["evaluable"].mean()),
            "value_bias": float(err.mean()), "value_rmse": float(np.sqrt((err ** 2).mean())),
            "value_rmse_vs_naive": float(np.sqrt((err ** 2).mean()) / naive_value_rmse),
            "value_coverage90": float(((g["lo"] <= g["true_value"]) & (g["true_value"] <= g["hi"])).mean()),
            "lift_bias": float(lift_err.mean()), "lift_rmse": float(np.sqrt((lift_err ** 2).mean())),
            "lift_rmse_vs_naive": float(np.sqrt((lift_err ** 2).mean()) / naive_lift_rmse),
            "lift_coverage90": float(covered.mean()),
            "lift_coverage90_evaluable": float(covered[mv["evaluable"]].mean()) if mv["evaluable"].any() else float("nan"),
            "rank1_accuracy": float(np.mean(ranks)),
            "median_ess": float(mv["ess"].median()),
            "median_bandwidth": float(mv["bandwidth"].median()) if "bandwidth" in mv else float("nan"),
            "mean_true_lift": float(mv["true_lift"].mean()),
        }
    # the replay's own choice: doubly robust when all its rows are evaluable, else the direct method
    picks = []
    for _, lg in df.groupby("log"):
        dr = lg[lg["estimator"] == "doubly_robust"]
        est = "doubly_robust" if dr["evaluable"].all() else "direct"
        e = lg[(lg["estimator"] == est) & lg["evaluable"]]
        if len(e):
            picks.append((e.loc[e["value"].idxmax(), "policy"] == lg.loc[lg["true_value"].idxmax(), "policy"], est))
    summary["replay_choice"] = {"rank1_accuracy": float(np.mean([p for p, _ in picks])) if picks else float("nan"),
                                "doubly_robust_used": float(np.mean([e == "doubly_robust" for _, e in picks]))
                                if picks else float("nan")}
    return summary


def report(summary: dict, rows: list[dict], origins: int, seconds: float) -> None:
    logs = len({r["log"] for r in rows})
    print(f"\npolicy replay, {logs} simulated logs, {origins} MAP + Laplace origin(s) per log, "
          f"{rows[0]['n_periods']} periods each, {seconds:.0f}s")
    cols = ["evaluable_share", "value_bias", "value_rmse", "value_rmse_vs_naive", "value_coverage90", "lift_bias",
            "lift_rmse", "lift_rmse_vs_naive", "lift_coverage90", "lift_coverage90_evaluable", "rank1_accuracy",
            "median_ess", "median_bandwidth", "mean_true_lift"]
    print(f"{'estimator':<14}" + "".join(f"{c:>26}" for c in cols))
    for est, s in summary.items():
        if est != "replay_choice":
            print(f"{est:<14}" + "".join(f"{s[c]:>26.3f}" for c in cols))
    print(f"replay's own choice (doubly robust when all evaluable, else direct): rank-1 accuracy "
          f"{summary['replay_choice']['rank1_accuracy']:.3f}, doubly robust used in "
          f"{summary['replay_choice']['doubly_robust_used']:.0%} of logs")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", type=int, default=30)
    ap.add_argument("--origins", type=int, default=1)
    ap.add_argument("--days", type=int, default=546)
    ap.add_argument("--min-train", type=int, default=52, help="weeks before the first origin, at least")
    ap.add_argument("--laplace-draws", type=int, default=100)
    ap.add_argument("--seed0", type=int, default=1000)
    ap.add_argument("--out", default="data/bench/replay.json")
    ap.add_argument("--summarise", action="store_true", help="only summarise the rows already in --out")
    args = ap.parse_args(argv)
    if args.summarise:
        done = json.loads(Path(args.out).read_text())
        report(summarise(done["rows"]), done["rows"], done["args"]["origins"], 0.0)
        return 0
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    rows = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for i in range(args.logs):
        t = time.perf_counter()
        rows.extend(one_log(args.seed0 + i, args.origins, args.days, args.laplace_draws, args.min_train))
        print(f"log {i + 1}/{args.logs}: {time.perf_counter() - t:.0f}s", flush=True)
        # partial results survive an interrupted run
        out.write_text(json.dumps({"args": vars(args), "logs_done": i + 1, "rows": rows}, default=float))
    summary = summarise(rows)
    report(summary, rows, args.origins, time.perf_counter() - t0)
    out.write_text(json.dumps({"args": vars(args), "summary": summary, "rows": rows}, indent=1, default=float))
    print(f"rows: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
