"""Memory of the data path: a large cohort at 224 px -> a one-trial sweep -> 20 training steps.

images.npy is written the way preprocess writes it (`medtune.data.store.open_store` + `to_store`, uint8,
chunk by chunk), with index.parquet, task.json and splits.json beside it. A child process then does what
the tune stage does: `load_train_data` (train and val as lazy views of the memory map), a local Ray,
`run_sweep` of one trial (resnet18, 20 training batches of 16, one validation pass of 64 images), while
this process samples the RSS of the child's whole process tree (Ray's GCS, raylet and trial worker included) every
0.2 s. `rss_ratio` = peak tree RSS / images.npy bytes: the data path is O(batch), so the ratio falls as
the cohort grows (goal: <= 1.5 at 100k images). RSS summed over processes counts shared libraries once
per process: an upper bound. The cohort is deleted afterwards. Writes bench/results/memory.json.

    python -m bench.memory                        # 1,000 and 100,000 images (~5 GB on disk, deleted after)
    python -m bench.memory --sizes 1000 20000     # a smaller largest cohort
    python -m bench.memory --smoke-test           # 200 images at 64 px, 2 steps
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import RESULTS, machine, watch_rss, write_result

ROOT = Path(__file__).resolve().parents[1]
VAL = 64  # val images: one validation pass of a trial, the same at every cohort size


def write_cohort(processed: Path, n: int, size: int, chunk: int = 500) -> float:
    """images.npy (uint8, written chunk by chunk as preprocess does), index.parquet, task.json, splits."""
    import pandas as pd

    from medtune.data.store import open_store, to_store
    from medtune.task import Task, write_task

    processed.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    started = time.perf_counter()
    with open_store(processed / "images.npy", (n, 1, size, size), 8) as images:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            x = rng.random((hi - lo, 1, size, size), dtype=np.float32) * 0.6
            x[y[lo:hi] == 1, 0, size // 4: size // 2, size // 4: size // 2] = 0.95
            images[lo:hi] = to_store(x, 8)
    ids = [f"s{i}" for i in range(n)]
    pd.DataFrame({"row": np.arange(n), "sample_id": ids, "patient_key": [f"p{i}" for i in range(n)],
                  "label": np.where(y == 1, "abnormal", "normal"), "target": y}).to_parquet(processed / "index.parquet")
    write_task(Task("binary", ("normal", "abnormal")), processed / "task.json")
    val = min(VAL, n // 4)
    splits = {"train": ids[: n - 2 * val], "val": ids[n - 2 * val: n - val], "test": ids[n - val:]}
    (processed / "splits.json").write_text(json.dumps(splits))
    return time.perf_counter() - started


def child(processed: Path, steps: int, batch: int) -> None:
    """The tune stage's path for one trial: load_train_data -> Ray -> run_sweep -> fit (20 steps)."""
    import ray

    from medtune.config import SearchCfg, TrainCfg
    from medtune.data.datamodule import load_train_data
    from medtune.tune.runner import Trainable, connect, run_sweep

    data = load_train_data(processed, json.loads((processed / "splits.json").read_text()))
    cfg = TrainCfg(arch="resnet18", batch_size=batch, epochs=1, limit_train_batches=steps, augment=0.5, seed=0)
    search = SearchCfg(num_samples=1, max_concurrent_trials=1, cpus_per_trial=2, space=())
    connect(None, num_cpus=2)
    result = run_sweep(Trainable(data, cfg, search), processed.parent / "sweep", logger=None, resume=False)
    ray.shutdown()
    row = result.leaderboard.iloc[0]
    print(json.dumps({"status": str(row["stop_reason"]), "trial_s": float(row["seconds"] or 0)}))


def measured(processed: Path, steps: int, batch: int, limit_s: float) -> dict:
    """Run `child` in a new process, sampling the RSS of its whole tree; peak sum and largest process."""
    cmd = [sys.executable, "-m", "bench.memory", "--child", str(processed), str(steps), str(batch)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    tree_peak, proc_peak, _ = watch_rss(proc, limit_s, interval_s=0.2)
    out, _ = proc.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return {"wall_s": round(time.perf_counter() - started, 1), "peak_rss_tree_bytes": tree_peak,
            "peak_rss_process_bytes": proc_peak, "child": json.loads(lines[-1]) if lines else {"status": "died"}}


def run_one(work: Path, n: int, size: int, steps: int, batch: int, limit_s: float) -> dict:
    processed = work / f"cohort-{n}" / "processed"
    try:
        write_s = write_cohort(processed, n, size)
        images = np.load(processed / "images.npy", mmap_mode="r")
        nbytes, dtype = (processed / "images.npy").stat().st_size, str(images.dtype)
        del images
        result = measured(processed, steps, batch, limit_s)
    finally:
        shutil.rmtree(processed.parent, ignore_errors=True)
    return {"images": n, "size": size, "images_npy_dtype": dtype, "images_npy_bytes": nbytes,
            "write_s": round(write_s, 1), "steps": steps, "batch_size": batch, **result,
            "rss_ratio": result["peak_rss_tree_bytes"] / nbytes,
            "rss_ratio_largest_process": result["peak_rss_process_bytes"] / nbytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="200 images at 64 px, 2 steps")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000], help="cohort sizes (images)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limit-s", type=float, default=900, help="per cohort; the trial is killed after")
    parser.add_argument("--workdir", type=Path, default=None, help="where the cohort is written (default: /tmp)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON result")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]), int(args.child[2]))
        return
    sizes, size = ([200], 64) if args.smoke_test else (args.sizes, args.image_size)
    steps, batch = (2, 8) if args.smoke_test else (args.steps, args.batch_size)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        rows = [run_one(Path(tmp), n, size, steps, batch, args.limit_s) for n in sizes]
    print(f"\n{'images':>8s} {'images.npy MB':>14s} {'dtype':>6s} {'peak tree RSS MB':>17s} {'rss_ratio':>10s} "
          f"{'trial':>8s}   ({steps} steps of {batch} at {size} px, resnet18, one Ray trial)")
    for r in rows:
        print(f"{r['images']:8d} {r['images_npy_bytes'] / 2**20:14.0f} {r['images_npy_dtype']:>6s} "
              f"{r['peak_rss_tree_bytes'] / 2**20:17.0f} {r['rss_ratio']:10.3f} {r['child'].get('status', '?'):>8s}")
    out = {"bench": "memory", "image_size": size, "steps": steps, "batch_size": batch,
           "rss_ratio": rows[-1]["rss_ratio"], "largest_cohort": rows[-1]["images"],
           "images_npy_dtype": rows[-1]["images_npy_dtype"], "results": rows,
           "smoke_test": args.smoke_test, "machine": machine()}
    write_result(args.results, "memory-smoke.json" if args.smoke_test else "memory.json", out)


if __name__ == "__main__":
    main()
