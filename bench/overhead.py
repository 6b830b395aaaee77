"""Overhead of the tune machinery: one trial through run_sweep vs a bare fit() of the same config.

Both run in this process, interleaved (fit, sweep, fit, sweep, ...), with the same threads, data and
seed. Ray is started before the clock runs: its start-up is paid once per sweep, not per trial, and is
reported separately. Writes bench/results/overhead.json.

    python -m bench.overhead               # PneumoniaMNIST 28 px (../shared/data), 2 epochs, 2 repeats
    python -m bench.overhead --smoke-test  # synthetic arrays, 1 epoch, 1 repeat (CI-sized)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch

from bench.common import RESULTS, machine, write_result
from medtune.config import SearchCfg, TrainCfg
from medtune.data.datamodule import SplitArrays, TrainData
from medtune.data.store import write_images
from medtune.task import Task
from medtune.train import fit
from medtune.tune.runner import Trainable, connect, run_sweep, warm_workers

NPZ = Path(__file__).resolve().parents[1] / "../shared/data/pneumoniamnist/pneumoniamnist.npz"


def split_arrays(images: np.ndarray, labels: np.ndarray, name: str, folder: Path) -> SplitArrays:
    """uint8 (N, S, S) images stored as preprocess stores them (a lazily read images.npy in `folder`)."""
    x = write_images(folder / f"{name}.npy", (images.astype(np.float32) / 255.0)[:, None])
    ids = [f"{name}-{i}" for i in range(len(x))]
    return SplitArrays(x, labels.reshape(-1).astype(np.int64), ids, ids)


def load_data(smoke: bool, folder: Path, n_train: int | None = None, n_val: int | None = None,
              seed: int = 0) -> tuple[TrainData, str]:
    """PneumoniaMNIST's official train/val when present (a seeded subset of n_train / n_val images when
    given), else a synthetic learnable task. The arrays are written to `folder` as images.npy files."""
    if NPZ.is_file() and not smoke:
        npz = np.load(NPZ)
        parts = {}
        for name, n in (("train", n_train), ("val", n_val)):
            images, labels = npz[f"{name}_images"], npz[f"{name}_labels"]
            keep = np.sort(np.random.default_rng(seed).permutation(len(images))[:n]) if n else slice(None)
            parts[name] = split_arrays(images[keep], labels[keep], name, folder)
        sizes = f"-{n_train}x{n_val}" if n_train or n_val else ""
        return (TrainData(parts["train"], parts["val"], Task("binary", ("normal", "pneumonia"))),
                f"pneumoniamnist-28{sizes}")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 120, (640, 28, 28)).astype(np.uint8)
    labels = np.arange(640) % 2
    images[labels == 1, 10:16, 10:16] = 250
    train = split_arrays(images[:512], labels[:512], "train", folder)
    val = split_arrays(images[512:], labels[512:], "val", folder)
    return TrainData(train, val, Task("binary", ("a", "b"))), "synthetic-28"


def time_fit(cfg: TrainCfg, data: TrainData) -> float:
    start = time.perf_counter()
    fit(cfg, data, accelerator="cpu")
    return time.perf_counter() - start


def time_sweep(cfg: TrainCfg, search: SearchCfg, data: TrainData) -> tuple[float, float]:
    """Wall time of a one-trial sweep (tuner.fit end to end) and the trial's own time_total_s."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_sweep(Trainable(data, cfg, search), Path(tmp) / "sweep", logger=None, resume=False)
        wall = time.perf_counter() - start
    return wall, float(result.leaderboard["seconds"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="tiny data, 1 epoch, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--warm", action=argparse.BooleanOptionalAction, default=True,
                        help="warm a worker before each sweep, outside the clock (the stage overlaps it with "
                             "loading data); --no-warm measures a cold worker")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON result")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.smoke_test else 2)
    threads = min(2, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    store = tempfile.TemporaryDirectory()  # images.npy files the trials map; removed at exit
    data, dataset = load_data(args.smoke_test, Path(store.name))
    cfg = TrainCfg(epochs=1 if args.smoke_test else 2, augment=0.0, seed=0)
    search = SearchCfg(num_samples=1, max_concurrent_trials=1, cpus_per_trial=threads, space=(),
                       min_steps=0, batch_cap=0)  # the same config as the bare fit, not a planned one

    fit(dataclasses.replace(cfg, epochs=1, limit_train_batches=2), data, accelerator="cpu")  # warm-up
    start = time.perf_counter()
    connect(None, num_cpus=threads)
    ray_start = time.perf_counter() - start
    fits, walls, trials = [], [], []
    warm_s = []
    for _ in range(repeats):
        fits.append(time_fit(cfg, data))
        if args.warm:  # what the tune stage does while it loads data: a worker imports the training stack
            start = time.perf_counter()
            ray.get(warm_workers(1))
            warm_s.append(time.perf_counter() - start)
        wall, trial = time_sweep(cfg, search, data)
        walls.append(wall)
        trials.append(trial)
    ray.shutdown()

    fit_s, wall_s, trial_s = (float(np.median(v)) for v in (fits, walls, trials))
    rows = [("bare fit()", fit_s, 1.0), ("trial (Ray time_total_s)", trial_s, trial_s / fit_s),
            ("sweep wall (1 trial, Ray up)", wall_s, wall_s / fit_s),
            ("  of which per-sweep fixed cost", wall_s - trial_s, (wall_s - trial_s) / fit_s)]
    print(f"\n{'what':32s} {'seconds':>9s} {'x fit':>7s}   ({dataset}, {cfg.epochs} epochs, "
          f"median of {repeats}, {threads} threads)")
    for name, seconds, ratio in rows:
        print(f"{name:32s} {seconds:9.2f} {ratio:7.3f}")
    print(f"{'ray.init (once per sweep)':32s} {ray_start:9.2f}")
    print(f"goals: sweep wall <= 1.3x fit ({'met' if wall_s / fit_s <= 1.3 else 'MISSED'}), "
          f"trial <= 1.05x fit ({'met' if trial_s / fit_s <= 1.05 else 'MISSED'})")
    out = {"bench": "overhead", "dataset": dataset, "epochs": cfg.epochs, "repeats": repeats,
           "fit_s": fits, "sweep_wall_s": walls, "trial_s": trials, "ray_init_s": ray_start,
           "sweep_fixed_cost_s": wall_s - trial_s,
           "warm_worker": args.warm, "warm_up_s": warm_s, "reuse_actors": True,
           "ratio_trial_vs_fit": trial_s / fit_s, "ratio_sweep_wall_vs_fit": wall_s / fit_s,
           "goals": {"ratio_sweep_wall_vs_fit": 1.3, "ratio_trial_vs_fit": 1.05},
           "goals_met": {"ratio_sweep_wall_vs_fit": wall_s / fit_s <= 1.3,
                         "ratio_trial_vs_fit": trial_s / fit_s <= 1.05},
           "smoke_test": args.smoke_test, "machine": machine(threads=threads)}
    write_result(args.results, "overhead-smoke.json" if args.smoke_test else "overhead.json", out)


if __name__ == "__main__":
    main()
