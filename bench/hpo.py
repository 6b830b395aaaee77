"""HPO efficiency: seeded TPE + ASHA vs random search without early stopping, in one run.

Same search space (params.yaml `search.space`), same number of trials, same seed, same data
(PneumoniaMNIST 28 px official train/val from ../shared/data). Reports the best validation AUROC
each strategy found and the compute it spent (sum of trial seconds). Writes bench/results/hpo.json.

    python -m bench.hpo --trials 16          # the real comparison (from the project root)
    python -m bench.hpo --smoke-test         # synthetic data, 4 trials, 1-2 epochs
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import ray

from bench.common import RESULTS, machine, write_result
from bench.overhead import load_data  # the same data as the overhead bench
from medtune.config import ParamSpec, load_params
from medtune.tune.results import leaderboard
from medtune.tune.runner import STRATEGIES, Trainable, build_tuner, connect

ROOT = Path(__file__).resolve().parents[1]


def run_arm(name: str, trainable: Trainable, workdir: Path) -> dict:
    sweep_dir = workdir / name
    tuner = build_tuner(trainable, sweep_dir, callbacks=[], strategy=name)
    start = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - start
    board = leaderboard(grid, trainable.base, trainable.search.metric, trainable.search.mode)
    metric = f"best_{trainable.search.metric}"
    return {"best_val_auroc": float(board[metric].max()), "trial_seconds": float(board["seconds"].sum()),
            "epochs": int(board["epochs_run"].sum()), "wall_s": wall, "trials": len(board),
            "stopped_early": int((board["stop_reason"] == "asha_stopped").sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON result")
    args = parser.parse_args()

    params = load_params(ROOT / "params.yaml")
    store = tempfile.TemporaryDirectory()  # images.npy files the trials map; removed at exit
    data, dataset = load_data(args.smoke_test, Path(store.name))
    search = dataclasses.replace(params.search, num_samples=4 if args.smoke_test else args.trials,
                                 max_concurrent_trials=2, cpus_per_trial=1)
    base = params.train
    if args.smoke_test:
        space = tuple(s for s in search.space if s.name != "epochs") + (ParamSpec("epochs", low=1, high=2),)
        search = dataclasses.replace(search, space=space, min_steps=8)
    trainable = Trainable(data, base, search)
    connect(None, num_cpus=2)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arm in STRATEGIES:
            results[arm] = run_arm(arm, trainable, Path(tmp))
    ray.shutdown()
    tpe, rnd = results["tpe_asha"], results["random"]
    print(f"\n{'strategy':24s} {'best val AUROC':>15s} {'trial-s':>9s} {'epochs':>7s} {'early-stopped':>14s}"
          f"   ({dataset}, {search.num_samples} trials each, seed {base.seed})")
    for arm, r in results.items():
        print(f"{arm:24s} {r['best_val_auroc']:15.4f} {r['trial_seconds']:9.1f} {r['epochs']:7d} "
              f"{r['stopped_early']:14d}")
    compute = tpe["trial_seconds"] / rnd["trial_seconds"]
    gap = tpe["best_val_auroc"] - rnd["best_val_auroc"]
    print(f"TPE+ASHA vs random: AUROC {gap:+.4f}, compute {compute:.2f}x "
          f"(goal: within 0.005 at <= 0.4x)")
    out = {"bench": "hpo", "dataset": dataset, "trials": search.num_samples, "seed": base.seed,
           "results": results, "auroc_gap": gap, "compute_ratio": compute, "smoke_test": args.smoke_test,
           "machine": machine()}
    write_result(args.results, "hpo-smoke.json" if args.smoke_test else "hpo.json", out)


if __name__ == "__main__":
    main()
