"""HPO efficiency: the default search (seeded TPE + ASHA on optimizer steps, planned from the cohort) vs random
search without early stopping, cold and warm-started, over several seeds, in one run.

Task: a small cohort's worth of PneumoniaMNIST 28 px training images (100 by default, ../shared/data) scored
on the whole official val split (524): with a few hundred training images every config reaches val AUROC
~0.997 and the search has nothing to find. Per seed, random search runs --trials trials over params.yaml's
`search.space` and TPE + ASHA up to --tpe-trials (2x: its trials are cheaper), each as params.yaml runs
trials (one at a time on 2 CPUs). The measure is the compute (sum of trial seconds x CPUs per trial, in the
order trials finished) a strategy spends until its best val AUROC first reaches random search's final best,
divided by what random spent to get there; also reported counted in epochs, within the first --trials TPE
trials (equal trial counts), and as the best val AUROC each reaches on random's epochs (equal budget, in
epochs). `warm` is a TPE + ASHA sweep on another training seed told the finished trials of the cold one,
running its best 3 configs again first (a second `dvc exp run` on the same data); `warm_told_only` the same
without the replays (warm starts before them, side by side in one run); `two_at_a_time` is the
default the current one replaced (two trials side by side on one CPU each, so ASHA and TPE see results in
an order timing decides). Random search samples epochs (no ASHA to decide them). Writes
bench/results/hpo.json.

    python -m bench.hpo --seeds 6 --trials 32 --first-seed 3  # 32 random, 64 TPE trials; seeds 3-8 (the
                                                              # plan's constants were chosen on seeds 0-2)
    python -m bench.hpo --seeds 3 --trials 32 --first-seed 0 --name hpo-seeds-0-2.json  # the seeds that chose
    python -m bench.hpo --seeds 6 --trials 32 --first-seed 3 --ema-decay 0.999 --name hpo-ema.json
                                                              # every arm with train.ema_decay 0.999
    python -m bench.hpo --smoke-test                          # synthetic data, 1 seed, 4 trials per arm
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import ray

from bench.common import RESULTS, machine, write_result
from bench.overhead import load_data  # the same data as the overhead bench
from medtune.config import ParamSpec, load_params
from medtune.tune.results import leaderboard
from medtune.tune.runner import Trainable, build_tuner, connect
from medtune.tune.warm import WarmStart, best_configs

ROOT = Path(__file__).resolve().parents[1]
OPTION = "tpe_asha_two_at_a_time"  # the default before one trial at a time: 2 concurrent trials x 1 CPU
TOLD_ONLY = "tpe_asha_warm_told_only"  # warm-started as before replays: told the cold sweep's trials, nothing re-run


def run_arm(strategy: str, trainable: Trainable, sweep_dir: Path) -> dict:
    """One sweep; its trials in the order they finished, with CPU-seconds, epochs run and best metric."""
    cpus, start = trainable.search.cpus_per_trial, time.perf_counter()
    grid = build_tuner(trainable, sweep_dir, callbacks=[], strategy=strategy).fit()
    wall = time.perf_counter() - start
    metric = f"best_{trainable.search.metric}"
    # Finish order: the last report's whole-second timestamp, ties (short trials one after another) broken by
    # the grid's order, which is the order Tune created the trials in, so a rerun lists them the same way.
    finished = [(created, r.metrics) for created, r in enumerate(grid)
                if r.metrics and r.metrics.get(metric) is not None]
    done = [m for _, m in sorted(finished, key=lambda item: (item[1].get("timestamp", 0), item[0]))]
    seconds = [m.get("time_total_s", 0.0) for m in done]
    board = leaderboard(grid, trainable.base, trainable.search.metric, trainable.search.mode)
    return {"plan": trainable.plan, "cpus_per_trial": cpus, "seconds": [s * cpus for s in seconds],
            "epochs": [m.get("epoch", 0) for m in done], "values": [m[metric] for m in done], "wall_s": wall,
            "best": max(m[metric] for m in done), "trial_seconds": sum(seconds),
            "stopped_early": int((board["stop_reason"] == "asha_stopped").sum()),
            "points": [(json.loads(c), float(v)) for c, v in zip(board["config"], board[metric], strict=True)
                       if v == v]}


def compute_to_reach(arm: dict, target: float, cost: str = "seconds") -> float:
    """CPU-seconds (or epochs) spent until the running best first reaches `target` (inf: never)."""
    spent = 0.0
    for spend, value in zip(arm[cost], arm["values"], strict=True):
        spent += spend
        if value >= target - 1e-9:
            return spent
    return math.inf


def best_within(arm: dict, budget: float, cost: str = "seconds") -> float | None:
    """The running best once `budget` CPU-seconds (or epochs) are spent (None: not one trial finished)."""
    spent, best = 0.0, None
    for spend, value in zip(arm[cost], arm["values"], strict=True):
        spent += spend
        if spent > budget + 1e-9:
            break
        best = value if best is None else max(best, value)
    return best


def first(arm: dict, n: int) -> dict:
    """The arm as if it had stopped after its first `n` finished trials."""
    return {k: (v[:n] if k in ("seconds", "epochs", "values") else v) for k, v in arm.items()}


def one_seed(seed: int, data, params, args, workdir: Path) -> dict:
    base = dataclasses.replace(params.train, seed=seed, ema_decay=args.ema_decay)
    search = dataclasses.replace(params.search, num_samples=args.trials, warm_start="off")
    epochs = ParamSpec("epochs", low=1, high=2 if args.smoke_test else args.epochs_high)
    search = dataclasses.replace(search, space=tuple(s for s in search.space if s.name != "epochs") + (epochs,))
    if args.smoke_test:
        search = dataclasses.replace(search, min_steps=8)
    # TPE + ASHA may run more trials than random: what counts is the compute it spends until it reaches
    # random's final best, and its trials are cheaper (ASHA stops most early).
    longer = dataclasses.replace(search, num_samples=args.tpe_trials)
    arms = {"random": run_arm("random", Trainable(data, base, search, epochs_as_budget=False),
                              workdir / f"random-{seed}"),
            "tpe_asha": run_arm("tpe_asha", Trainable(data, base, longer), workdir / f"tpe-{seed}")}
    warm = Trainable(data, dataclasses.replace(base, seed=seed + 1000), longer)
    told = arms["tpe_asha"]["points"]  # what a second sweep on the same data reads from MLflow
    # Another seed: no replay retraces a logged run.
    warm.warm = WarmStart(told, best_configs(told, warm.search.mode, retraced=[]), "bench: the cold sweep")
    arms["tpe_asha_warm"] = run_arm("tpe_asha", warm, workdir / f"warm-{seed}")
    told_only = Trainable(data, warm.base, longer)
    told_only.warm = WarmStart(told, [], "bench: the cold sweep, nothing replayed")
    arms[TOLD_ONLY] = run_arm("tpe_asha", told_only, workdir / f"told-{seed}")
    # The default this one replaced: two trials side by side, one CPU each.
    side_by_side = dataclasses.replace(longer, max_concurrent_trials=2, cpus_per_trial=1)
    arms[OPTION] = run_arm("tpe_asha", Trainable(data, base, side_by_side), workdir / f"two-{seed}")
    target = arms["random"]["best"]
    ref, ref_epochs = compute_to_reach(arms["random"], target), compute_to_reach(arms["random"], target, "epochs")
    out = {"seed": seed, "target_val_auroc": target, "random_compute_to_target_s": ref}
    for name, arm in arms.items():
        reach = compute_to_reach(arm, target)
        out[name] = {k: v for k, v in arm.items() if k not in ("points", "plan")} | {
            "grace_steps": arm["plan"].grace_steps, "startup_trials": arm["plan"].startup_trials,
            "startup_steps": arm["plan"].startup_steps,
            "compute_to_target_s": reach, "ratio_vs_random": reach / ref, "reached": math.isfinite(reach),
            "epochs_ratio_vs_random": compute_to_reach(arm, target, "epochs") / ref_epochs,
            "ratio_vs_random_equal_trials": compute_to_reach(first(arm, args.trials), target) / ref,
            "best_at_random_epochs": best_within(arm, sum(arms["random"]["epochs"]), "epochs")}
    # A warm sweep also against the cold TPE sweep it follows: compute to the cold sweep's final best.
    cold = arms["tpe_asha"]
    for name in ("tpe_asha_warm", TOLD_ONLY):
        out[name]["vs_cold_ratio"] = compute_to_reach(arms[name], cold["best"]) / compute_to_reach(cold, cold["best"])
    out["warm_vs_cold_ratio"] = out["tpe_asha_warm"]["vs_cold_ratio"]
    return out


def summary(ratios: list[float]) -> dict:
    """Median and spread over seeds; a seed that never reached the target counts as infinitely costly
    (written as null: JSON has no infinity)."""
    finite = sorted(r for r in ratios if math.isfinite(r))
    return {"median": statistics.median(ratios) if ratios else None, "min": min(ratios, default=None),
            "max": max(ratios, default=None), "values": ratios, "not_reached": len(ratios) - len(finite)}


def fmt(x: float | None) -> str:
    return "never" if x is None or not math.isfinite(x) else f"{x:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--tpe-trials", type=int, default=None, help="TPE + ASHA trials (default: 2x --trials)")
    parser.add_argument("--n-train", type=int, default=100)
    parser.add_argument("--n-val", type=int, default=None, help="default: the whole official val split")
    parser.add_argument("--epochs-high", type=int, default=12, help="top of the epochs range (room for ASHA)")
    parser.add_argument("--max-minutes", type=float, default=120.0, help="start no new seed after this")
    parser.add_argument("--ema-decay", type=float, default=None,
                        help="train.ema_decay for every arm (default: params.yaml's)")
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON result")
    parser.add_argument("--name", default="hpo.json", help="file name of the JSON result")
    args = parser.parse_args()
    if args.smoke_test:
        args.seeds, args.trials, args.tpe_trials = 1, 4, 4
    args.tpe_trials = args.tpe_trials or 2 * args.trials

    params = load_params(ROOT / "params.yaml")
    if args.ema_decay is None:
        args.ema_decay = params.train.ema_decay
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = tempfile.TemporaryDirectory()  # images.npy files the trials map; removed at exit
    data, dataset = load_data(args.smoke_test, Path(store.name), args.n_train, args.n_val)
    connect(None, num_cpus=2)
    started, seeds = time.perf_counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            if seeds and time.perf_counter() - started > args.max_minutes * 60:
                break
            seeds.append(one_seed(seed, data, params, args, Path(tmp)))
            print(f"seed {seed}: " + ", ".join(f"{k} {seeds[-1][k]['ratio_vs_random']:.2f}x"
                                               for k in ("tpe_asha", "tpe_asha_warm", TOLD_ONLY)))
    ray.shutdown()
    cold = summary([s["tpe_asha"]["ratio_vs_random"] for s in seeds])
    cold_epochs = summary([s["tpe_asha"]["epochs_ratio_vs_random"] for s in seeds])
    cold_equal = summary([s["tpe_asha"]["ratio_vs_random_equal_trials"] for s in seeds])
    warm = summary([s["tpe_asha_warm"]["ratio_vs_random"] for s in seeds])
    warm_cold = summary([s["warm_vs_cold_ratio"] for s in seeds])
    option = summary([s[OPTION]["ratio_vs_random"] for s in seeds])
    told_only = summary([s[TOLD_ONLY]["ratio_vs_random"] for s in seeds])
    told_only_cold = summary([s[TOLD_ONLY]["vs_cold_ratio"] for s in seeds])
    option_epochs = summary([s[OPTION]["epochs_ratio_vs_random"] for s in seeds])
    # What one trial at a time costs in wall time: seconds per epoch trained, default over the option.
    pace = summary([(s["tpe_asha"]["wall_s"] / sum(s["tpe_asha"]["epochs"]))
                    / (s[OPTION]["wall_s"] / sum(s[OPTION]["epochs"])) for s in seeds])
    equal_budget = {k: [s[k]["best_at_random_epochs"] for s in seeds]
                    for k in ("random", "tpe_asha", "tpe_asha_warm", TOLD_ONLY, OPTION)}
    print(f"\n{'strategy':26s} {'median':>8s} {'min':>7s} {'max':>7s}   compute to reach random's final best "
          f"val AUROC, x random ({dataset}, {len(seeds)} seeds x {args.trials} trials)")
    for name, s in (("tpe_asha", cold), ("tpe_asha_warm", warm), (TOLD_ONLY, told_only), (OPTION, option)):
        print(f"{name:26s} {fmt(s['median']):>8s} {fmt(s['min']):>7s} {fmt(s['max']):>7s}   "
              f"({s['not_reached']} of {len(seeds)} seeds never reached it)")
    print(f"TPE+ASHA vs random: compute {fmt(cold['median'])}x (goal <= 0.4x; counted in epochs "
          f"{fmt(cold_epochs['median'])}x; within {args.trials} trials {fmt(cold_equal['median'])}x); "
          f"warm vs cold {fmt(warm_cold['median'])}x; wall per epoch vs {OPTION} {fmt(pace['median'])}x")
    print("best val AUROC on random's epochs, per seed: " + "; ".join(
        f"{k} {' '.join(f'{v:.4f}' if v is not None else '-' for v in vals)}" for k, vals in equal_budget.items()))
    out = {"bench": "hpo", "dataset": dataset, "trials": args.trials, "tpe_trials": args.tpe_trials,
           "n_seeds": len(seeds),
           "epochs_range": [1, args.epochs_high], "max_minutes": args.max_minutes, "ema_decay": args.ema_decay,
           "seeds_asked": args.seeds, "first_seed": args.first_seed,
           "measure": "CPU-seconds (trial seconds x CPUs per trial) until the running best first reaches random's "
           "final best val AUROC, / random's own CPU-seconds to get there (null: never reached); _epochs: the same "
           "counted in training epochs, which the machine's load does not change",
           "compute_ratio": cold["median"], "compute_ratio_spread": cold,
           "compute_ratio_epochs": cold_epochs["median"], "compute_ratio_epochs_spread": cold_epochs,
           "compute_ratio_equal_trials": cold_equal["median"], "compute_ratio_equal_trials_spread": cold_equal,
           "warm_compute_ratio": warm["median"],
           "warm_compute_ratio_spread": warm, "warm_vs_cold_ratio": warm_cold["median"],
           "warm_vs_cold_spread": warm_cold, "best_val_auroc_at_random_epochs": equal_budget,
           "options": {OPTION: {"compute_ratio": option["median"], "compute_ratio_spread": option,
                                "compute_ratio_epochs": option_epochs["median"],
                                "compute_ratio_epochs_spread": option_epochs,
                                "default_wall_per_epoch_ratio": pace["median"],
                                "default_wall_per_epoch_ratio_spread": pace},
                       TOLD_ONLY: {"compute_ratio": told_only["median"], "compute_ratio_spread": told_only,
                                   "vs_cold_ratio": told_only_cold["median"], "vs_cold_spread": told_only_cold}},
           "goal": "compute_ratio <= 0.4",
           "goal_met": cold["median"] is not None and bool(cold["median"] <= 0.4),
           "wall_s": time.perf_counter() - started, "per_seed": seeds, "smoke_test": args.smoke_test,
           "machine": machine()}
    write_result(args.results, "hpo-smoke.json" if args.smoke_test else args.name, out)


if __name__ == "__main__":
    main()
