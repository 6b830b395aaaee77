"""Overhead of the tune machinery: one trial through run_sweep vs a bare fit() of the same config.

Interleaved (fit, sweeps, fit, sweeps, ...), with the same threads, data and seed, each in a fresh Python
process as a user runs them: the bare fit is the first of its process (imports not timed; also reported:
a fit in a process that has trained before), each sweep gets its own local Ray as a tune stage does,
started before the clock runs (ray.init is reported separately). `warm`: the sweep starts once Ray's
prestarted workers have imported the training stack, which the stage overlaps with loading data and
opening MLflow; `cold`: right after ray.init, nothing overlapped. CPU seconds tell a slower trial apart from
one that shares the cores: the trial's worker against the bare fit, and every other process under this one
(driver, raylet, GCS, idle workers) during the sweep. Writes bench/results/overhead.json.

    python -m bench.overhead               # PneumoniaMNIST 28 px (../shared/data), 2 epochs, 3 repeats
    python -m bench.overhead --smoke-test  # synthetic arrays, 1 epoch, 1 repeat (CI-sized)
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import ray
import torch

from bench.common import RESULTS, machine, write_result
from medtune.config import SearchCfg, TrainCfg
from medtune.data.datamodule import SplitArrays, TrainData
from medtune.data.store import write_images
from medtune.task import Task
from medtune.train import fit
from medtune.tune.runner import Trainable, connect, run_sweep

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
        sizes = f"-{n_train or 'all'}x{n_val or 'all'}" if n_train or n_val else ""
        return (TrainData(parts["train"], parts["val"], Task("binary", ("normal", "pneumonia"))),
                f"pneumoniamnist-28{sizes}")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 120, (640, 28, 28)).astype(np.uint8)
    labels = np.arange(640) % 2
    images[labels == 1, 10:16, 10:16] = 250
    train = split_arrays(images[:512], labels[:512], "train", folder)
    val = split_arrays(images[512:], labels[512:], "val", folder)
    return TrainData(train, val, Task("binary", ("a", "b"))), "synthetic-28"


def time_fit(cfg: TrainCfg, data: TrainData, threads: int) -> tuple[float, float]:
    """Wall seconds of a bare fit() and the CPU seconds this process spent on it."""
    torch.set_num_threads(threads)
    start, cpu = time.perf_counter(), time.process_time()
    fit(cfg, data, accelerator="cpu")
    return time.perf_counter() - start, time.process_time() - cpu


def cpu_seconds() -> dict[int, tuple[float, str]]:
    """CPU seconds so far of this process and every process under it (Ray's), by pid, with its name."""
    out = {}
    for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            times = proc.cpu_times()
            out[proc.pid] = (times.user + times.system, " ".join(proc.cmdline())[:80])
        except psutil.Error:  # exited between listing and reading
            continue
    return out


def in_fresh_process(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) in a new Python process: a tune stage starts one Ray per process, and a trial is the
    first fit of its worker process, so the bare fit it is compared with is the first of a fresh process."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def time_sweep(cfg: TrainCfg, search: SearchCfg, data: TrainData) -> tuple[float, float]:
    """Wall time of a one-trial sweep (tuner.fit end to end) and the trial's own time_total_s."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_sweep(Trainable(data, cfg, search), Path(tmp) / "sweep", logger=None, resume=False)
        wall = time.perf_counter() - start
    return wall, float(result.leaderboard["seconds"].iloc[0])


def wait_for_idle_workers(limit_s: float = 120.0) -> float:
    """Seconds until Ray's worker processes have finished their start-up imports (all idle)."""
    start, quiet_polls = time.perf_counter(), 0
    while quiet_polls < 2 and time.perf_counter() - start < limit_s:
        workers = [p for p in psutil.Process().children(recursive=True)
                   if p.name().startswith("ray::") or "default_worker" in " ".join(p.cmdline())]
        for p in workers:
            p.cpu_percent()
        time.sleep(0.25)
        busy = [p for p in workers if p.is_running() and p.cpu_percent() > 10.0]
        quiet_polls = quiet_polls + 1 if workers and not busy else 0
    return time.perf_counter() - start


def settle(limit_s: float = 30.0) -> None:
    """Wait for the machine to go quiet: a Ray that just shut down still has processes exiting."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s and psutil.cpu_percent(interval=0.5) > 25.0:
        pass


def one_sweep(cfg: TrainCfg, search: SearchCfg, data: TrainData, threads: int, warm: bool) -> dict:
    """A fresh local Ray (not timed), then a timed one-trial sweep; `warm`: after its workers are ready.
    Run through in_fresh_process, as a tune stage runs: one Ray per process."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    connect(None, num_cpus=threads)
    out = {"ray_init_s": time.perf_counter() - start, "warm_up_s": wait_for_idle_workers() if warm else 0.0}
    before = cpu_seconds()
    out["wall_s"], out["trial_s"] = time_sweep(cfg, search, data)
    # Where the CPU went during the sweep: the trial's worker (named after Tune's function trainable once it
    # runs one) against the bare fit's own CPU seconds, and everything else (driver, raylet, GCS, idle workers).
    spent = {pid: (cpu - before.get(pid, (0.0, ""))[0], name) for pid, (cpu, name) in cpu_seconds().items()}
    out["trial_cpu_s"] = sum(cpu for cpu, name in spent.values() if "ImplicitFunc" in name)
    out["others_cpu_s"] = sum(cpu for cpu, name in spent.values() if "ImplicitFunc" not in name)
    ray.shutdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="tiny data, 1 epoch, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON result")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.smoke_test else 3)
    threads = min(2, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    store = tempfile.TemporaryDirectory()  # images.npy files the trials map; removed at exit
    data, dataset = load_data(args.smoke_test, Path(store.name))
    cfg = TrainCfg(epochs=1 if args.smoke_test else 2, augment=0.0, seed=0)
    search = SearchCfg(num_samples=1, max_concurrent_trials=1, cpus_per_trial=threads, space=(),
                       min_steps=0, batch_cap=0)  # the same config as the bare fit, not a planned one

    fit(dataclasses.replace(cfg, epochs=1, limit_train_batches=2), data, accelerator="cpu")  # warm-up
    fits, fit_cpus, warm_fits, warm, cold = [], [], [], [], []
    quiet_s = 0.0 if args.smoke_test else 30.0  # a smoke test measures nothing: no wait for a quiet machine
    for _ in range(repeats):
        settle(quiet_s)
        wall, cpu = in_fresh_process(time_fit, cfg, data, threads)
        fits.append(wall)
        fit_cpus.append(cpu)
        settle(quiet_s)
        warm_fits.append(time_fit(cfg, data, threads)[0])  # this process: imported and warmed up long ago
        settle(quiet_s)
        warm.append(in_fresh_process(one_sweep, cfg, search, data, threads, True))
        settle(quiet_s)
        cold.append(in_fresh_process(one_sweep, cfg, search, data, threads, False))

    def median(runs: list[dict], key: str) -> float:
        return float(np.median([r[key] for r in runs]))

    fit_s, warm_fit_s, trial_s = float(np.median(fits)), float(np.median(warm_fits)), median(warm + cold, "trial_s")
    wall_s, cold_s = median(warm, "wall_s"), median(cold, "wall_s")
    # The headline compares medians; each repeat's own trials against its own bare fit show the spread.
    paired = [run["trial_s"] / fit for runs in (warm, cold) for run, fit in zip(runs, fits, strict=True)]
    rows = [("bare fit(), fresh process", fit_s, 1.0),
            ("bare fit(), warmed-up process", warm_fit_s, warm_fit_s / fit_s),
            ("trial (Ray time_total_s)", trial_s, trial_s / fit_s),
            ("sweep wall, workers warm", wall_s, wall_s / fit_s),
            ("  of which per-sweep fixed cost", wall_s - trial_s, (wall_s - trial_s) / fit_s),
            ("sweep wall, right after ray.init", cold_s, cold_s / fit_s)]
    print(f"\n{'what':34s} {'seconds':>9s} {'x fit':>7s}   ({dataset}, {cfg.epochs} epochs, "
          f"median of {repeats}, {threads} threads)")
    for name, seconds, ratio in rows:
        print(f"{name:34s} {seconds:9.2f} {ratio:7.3f}")
    print(f"{'ray.init (not timed)':34s} {median(warm + cold, 'ray_init_s'):9.2f}")
    print(f"{'workers importing (overlapped)':34s} {median(warm, 'warm_up_s'):9.2f}")
    print(f"trial / fit of the same repeat: {min(paired):.3f} .. {max(paired):.3f} (median {np.median(paired):.3f})")
    # Warm sweeps only: in a cold one the workers are still importing the training stack.
    fit_cpu_s, trial_cpu_s = float(np.median(fit_cpus)), median(warm, "trial_cpu_s")
    others_cpu_s = median(warm, "others_cpu_s")
    print(f"CPU seconds (warm sweeps): bare fit {fit_cpu_s:.2f}, trial's worker {trial_cpu_s:.2f} "
          f"({trial_cpu_s / fit_cpu_s:.3f}x), every other process during the sweep {others_cpu_s:.2f}")
    print(f"goals: sweep wall <= 1.3x fit ({'met' if wall_s / fit_s <= 1.3 else 'MISSED'}), "
          f"trial <= 1.05x fit ({'met' if trial_s / fit_s <= 1.05 else 'MISSED'})")
    out = {"bench": "overhead", "dataset": dataset, "epochs": cfg.epochs, "repeats": repeats,
           "fit_s": fits, "fit_warmed_process_s": warm_fits, "sweeps_warm": warm, "sweeps_cold": cold,
           "sweep_wall_s": wall_s, "sweep_wall_cold_s": cold_s, "trial_s": trial_s,
           "ray_init_s": median(warm + cold, "ray_init_s"), "warm_up_s": median(warm, "warm_up_s"),
           "sweep_fixed_cost_s": wall_s - trial_s, "reuse_actors": True, "preloaded_workers": True,
           "ratio_trial_vs_fit": trial_s / fit_s, "ratio_sweep_wall_vs_fit": wall_s / fit_s,
           "ratio_trial_vs_fit_paired": {"median": float(np.median(paired)), "min": min(paired),
                                         "max": max(paired), "values": paired},
           "ratio_sweep_wall_cold_vs_fit": cold_s / fit_s,
           "fit_cpu_s": fit_cpu_s, "trial_cpu_s": trial_cpu_s, "others_cpu_s": others_cpu_s,
           "ratio_trial_cpu_vs_fit_cpu": trial_cpu_s / fit_cpu_s,
           "ratio_trial_vs_warmed_process_fit": trial_s / warm_fit_s,
           "ratio_sweep_wall_vs_warmed_process_fit": wall_s / warm_fit_s,
           "goals": {"ratio_sweep_wall_vs_fit": 1.3, "ratio_trial_vs_fit": 1.05},
           "goals_met": {"ratio_sweep_wall_vs_fit": wall_s / fit_s <= 1.3,
                         "ratio_trial_vs_fit": trial_s / fit_s <= 1.05},
           "smoke_test": args.smoke_test, "machine": machine(threads=threads)}
    write_result(args.results, "overhead-smoke.json" if args.smoke_test else "overhead.json", out)


if __name__ == "__main__":
    main()
