"""Policy replay against the truth: bias, RMSE and 90%-interval coverage per estimator, and rank-1 accuracy.

Each simulated log (weathervane.simulate.logging_policy) moves its budget split by a known stochastic logging
policy; its truth holds every candidate's true expected KPI over the replayed periods. The replay runs as in
production except for its cost: the outcome model is the weather MMM fitted by MAP (a point estimate, so the
direct method's intervals carry period-to-period uncertainty only) at `--origins` rolling origins (default 1),
and the allocator candidates act with the true response (so the truth file and the replay judge the same
actions). The baseline, printed beside each estimator, is the naive replay that credits every candidate with the
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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def one_log(seed: int, origins: int) -> list[dict]:
    from weathervane.mmm.model import FitSettings
    from weathervane.replay.policies import default_policies
    from weathervane.replay.run import ReplaySettings, run_replay
    from weathervane.simulate.logging_policy import LoggingPolicy, simulate_logged_history

    rng = np.random.default_rng(seed)
    base = rng.dirichlet(np.full(4, 1.5))
    history = simulate_logged_history(
        tenant_id=f"bench{seed}", seed=seed, days=476, media_share=float(rng.uniform(0.12, 0.3)),
        policy=LoggingPolicy(sigma=float(rng.uniform(0.1, 0.3)), base_split=base.tolist()))
    log = history.decision_log()
    policies = default_policies(30)
    res = run_replay(log, policies, FitSettings(method="map", holdout_weeks=0),
                     ReplaySettings(n_origins=origins, n_boot=1000, seed=seed), save_models=False,
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
                        true_value=truth[r.policy]["value"], true_lift=truth[r.policy]["value"] - keep_true,
                        observed=observed, n_periods=res.n_periods))
    return out


def summarise(rows: list[dict]) -> dict:
    import pandas as pd

    df = pd.DataFrame(rows)
    movers = df[df["policy"] != "keep_split"]
    summary = {}
    for est, g in df.groupby("estimator"):
        ok = g[g["evaluable"]]
        mv = movers[(movers["estimator"] == est) & movers["evaluable"]]
        err = ok["value"] - ok["true_value"]
        lift_err = mv["lift"] - mv["true_lift"]
        naive_lift_rmse = float(np.sqrt((mv["true_lift"] ** 2).mean())) if len(mv) else float("nan")
        naive_value_rmse = float(np.sqrt(((ok["observed"] - ok["true_value"]) ** 2).mean())) if len(ok) else float("nan")
        ranks = []
        for _, lg in g.groupby("log"):
            e = lg[lg["evaluable"]]
            if len(e) >= 2:
                ranks.append(e.loc[e["value"].idxmax(), "policy"] == lg.loc[lg["true_value"].idxmax(), "policy"])
        summary[est] = {
            "evaluable_share": float(g["evaluable"].mean()),
            "value_bias": float(err.mean()), "value_rmse": float(np.sqrt((err ** 2).mean())),
            "value_rmse_vs_naive": float(np.sqrt((err ** 2).mean()) / naive_value_rmse),
            "value_coverage90": float(((ok["lo"] <= ok["true_value"]) & (ok["true_value"] <= ok["hi"])).mean()),
            "lift_bias": float(lift_err.mean()), "lift_rmse": float(np.sqrt((lift_err ** 2).mean())),
            "lift_rmse_vs_naive": float(np.sqrt((lift_err ** 2).mean()) / naive_lift_rmse),
            "lift_coverage90": float(((mv["lift_lo"] <= mv["true_lift"]) & (mv["true_lift"] <= mv["lift_hi"])).mean()),
            "rank1_accuracy": float(np.mean(ranks)) if ranks else float("nan"), "logs_ranked": len(ranks),
            "median_ess": float(mv["ess"].median()) if len(mv) else float("nan"),
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", type=int, default=30)
    ap.add_argument("--origins", type=int, default=1)
    ap.add_argument("--seed0", type=int, default=1000)
    ap.add_argument("--out", default="data/bench/replay.json")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    rows = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for i in range(args.logs):
        t = time.perf_counter()
        rows.extend(one_log(args.seed0 + i, args.origins))
        print(f"log {i + 1}/{args.logs}: {time.perf_counter() - t:.0f}s", flush=True)
        # partial results survive an interrupted run
        out.write_text(json.dumps({"args": vars(args), "logs_done": i + 1, "rows": rows}, default=float))
    summary = summarise(rows)
    print(f"\npolicy replay, {args.logs} simulated logs, {args.origins} MAP origin(s) per log, "
          f"{rows[0]['n_periods']} periods each, {time.perf_counter() - t0:.0f}s")
    cols = ["evaluable_share", "value_bias", "value_rmse", "value_rmse_vs_naive", "value_coverage90", "lift_bias",
            "lift_rmse", "lift_rmse_vs_naive", "lift_coverage90", "rank1_accuracy", "median_ess"]
    print(f"{'estimator':<14}" + "".join(f"{c:>20}" for c in cols))
    for est, s in summary.items():
        if est != "replay_choice":
            print(f"{est:<14}" + "".join(f"{s[c]:>20.3f}" for c in cols))
    print(f"replay's own choice (doubly robust when all evaluable, else direct): rank-1 accuracy "
          f"{summary['replay_choice']['rank1_accuracy']:.3f}, doubly robust used in "
          f"{summary['replay_choice']['doubly_robust_used']:.0%} of logs")
    out.write_text(json.dumps({"args": vars(args), "summary": summary, "rows": rows}, indent=1, default=float))
    print(f"rows: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
