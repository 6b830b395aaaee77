"""What each `search.preset` costs on this machine: one sweep per preset over the same data, timed.

params.yaml with its `search.num_samples` and `search.space` removed and `search.preset` set, as the README
tells a user to do; everything else (train defaults, the plan, ASHA, one trial at a time on 2 CPUs) as
shipped. Data: PneumoniaMNIST's official 28 px train/val split (../shared/data). Writes
bench/results/presets.json with each preset's wall time, trials, early stops and best val AUROC.

    python -m bench.presets                 # fast, balanced, thorough
    python -m bench.presets --smoke-test    # synthetic arrays, `fast` cut to 2 trials of 1-2 epochs
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray
import yaml

from bench.common import RESULTS, machine, write_result
from bench.overhead import load_data
from medtune.config import Params, parse_params
from medtune.config.presets import PRESETS
from medtune.data.datamodule import TrainData
from medtune.tune.runner import Trainable, connect, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def preset_params(name: str, smoke: bool) -> Params:
    """params.yaml as a user edits it for a preset: num_samples and space deleted, preset set."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    search = {k: v for k, v in raw["search"].items() if k not in ("num_samples", "space")}
    raw["search"] = search | {"preset": name}
    if smoke:
        raw["search"] |= {"num_samples": 2, "space": {"epochs": {"low": 1, "high": 2}}, "min_steps": 0}
    return parse_params(raw, source="params.yaml")


def run_preset(name: str, data: TrainData, smoke: bool, workdir: Path) -> dict:
    params = preset_params(name, smoke)
    trainable = Trainable(data, params.train, params.search)
    start = time.perf_counter()
    result = run_sweep(trainable, workdir / name, logger=None, resume=False)
    wall = time.perf_counter() - start
    board, metric = result.leaderboard, f"best_{trainable.search.metric}"  # `auto` resolved by Trainable
    return {"preset": name, "trials": len(board), "wall_s": wall, "wall_min": wall / 60,
            "trial_seconds": float(board["seconds"].sum()),
            "stopped_early": int((board["stop_reason"] == "asha_stopped").sum()),
            "best_val_auroc": float(board[metric].max()),
            "searched": sorted(s.name for s in trainable.search.space)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON result")
    args = parser.parse_args()
    presets = ["fast"] if args.smoke_test else args.presets
    store = tempfile.TemporaryDirectory()  # images.npy files the trials map; removed at exit
    data, dataset = load_data(args.smoke_test, Path(store.name))
    connect(None, num_cpus=2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in presets:
            rows.append(run_preset(name, data, args.smoke_test, Path(tmp)))
            print(f"preset {name}: {rows[-1]['trials']} trials in {rows[-1]['wall_min']:.1f} min, "
                  f"best val AUROC {rows[-1]['best_val_auroc']:.4f}", flush=True)
    ray.shutdown()
    print(f"\n{'preset':10s} {'trials':>6s} {'stopped':>7s} {'minutes':>8s} {'best val AUROC':>15s}   "
          f"({dataset}, 2 CPUs)")
    for r in rows:
        print(f"{r['preset']:10s} {r['trials']:6d} {r['stopped_early']:7d} {r['wall_min']:8.1f} "
              f"{r['best_val_auroc']:15.4f}")
    out = {"bench": "presets", "dataset": dataset, "n_train": len(data.train), "n_val": len(data.val),
           "presets": rows, "smoke_test": args.smoke_test, "machine": machine()}
    write_result(args.results, "presets-smoke.json" if args.smoke_test else "presets.json", out)


if __name__ == "__main__":
    main()
