"""The GPU path on one GPU (~5 minutes): fp32 vs AMP images/s at 224 px, and trials/hour packed vs not.

1. One trial's training steps (fit(): Lightning, the uint8 memory-mapped store, augmentation, loader
   workers sized from the trial's CPUs) at 224 px, `train.precision` 32 vs AMP (`auto`: bf16-mixed where
   the GPU has it, else 16-mixed), timed after a warm-up like bench/throughput.py. Key `amp_vs_fp32`.
2. A short sweep (8 one-epoch trials, the real `run_sweep`) with `search.gpus_per_trial` 1 (one trial at
   a time) vs 0.25 (four trials share the GPU, each with a quarter of the CPUs). Key
   `trials_per_hour` per setting and `packed_vs_whole`.
Writes bench/results/gpu.json. Without CUDA it stops at once with one line (exit status 2).

    python -m bench.gpu                      # densenet121, 224 px
    python -m bench.gpu --arch resnet50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS, machine, write_result

NO_CUDA = "bench.gpu: no CUDA device (torch.cuda.is_available() is False); run it on a machine with a GPU"


def require_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        raise SystemExit(2)


def step_rates(arch: str, size: int, batch: int, batches: int, cpus: int, work: Path) -> dict:
    """Images/s of fit()'s training steps at fp32 and at AMP, each the median of two interleaved runs."""
    import torch

    from bench.throughput import TASK, WARMUP, StepClock, cohort
    from medtune.config import TrainCfg
    from medtune.data.datamodule import TrainData
    from medtune.train import fit, precision_for

    torch.set_num_threads(cpus)
    data = TrainData(cohort(work, batch * (WARMUP + batches), size), cohort(work / "val", batch, size, 1), TASK)
    amp = precision_for("auto", "gpu")
    rates: dict[str, list[float]] = {"32": [], amp: []}
    for _ in range(2):
        for precision in rates:
            cfg = TrainCfg(arch=arch, batch_size=batch, epochs=1, augment=0.5, precision=precision, seed=0)
            clock = StepClock()
            fit(cfg, data, callbacks=[clock], accelerator="gpu")
            rates[precision].append(clock.batches * batch / (clock.end - clock.start))
    fp32, mixed = statistics.median(rates["32"]), statistics.median(rates[amp])
    return {"arch": arch, "size": size, "batch_size": batch, "timed_batches": batches, "amp": amp,
            "fp32_images_s": fp32, "amp_images_s": mixed, "amp_vs_fp32": mixed / fp32, "runs": rates}


def sweep_rate(arch: str, size: int, gpus_per_trial: float, trials: int, cpus: int, work: Path) -> dict:
    """Trials/hour of a real run_sweep of `trials` one-epoch trials (random search, no early stopping)."""
    import ray

    from bench.throughput import TASK, cohort
    from medtune.config import SearchCfg, TrainCfg
    from medtune.config.sections import ParamSpec
    from medtune.data.datamodule import TrainData
    from medtune.tune.runner import Trainable, connect, run_sweep

    data = TrainData(cohort(work, 2048, size), cohort(work / "val", 256, size, 1), TASK)
    concurrent = max(1, int(1 / gpus_per_trial))
    cfg = TrainCfg(arch=arch, batch_size=64, epochs=1, augment=0.5, seed=0)
    search = SearchCfg(num_samples=trials, max_concurrent_trials=concurrent, cpus_per_trial=max(1, cpus // concurrent),
                       gpus_per_trial=gpus_per_trial, grace_period=1,
                       space=(ParamSpec("lr", low=1e-4, high=1e-2, log=True),))
    connect(None, num_cpus=cpus)
    started = time.perf_counter()
    result = run_sweep(Trainable(data, cfg, search), work / f"sweep-{gpus_per_trial}", logger=None, resume=False)
    wall = time.perf_counter() - started
    ray.shutdown()
    finished = int((result.leaderboard["stop_reason"] == "completed").sum())
    return {"gpus_per_trial": gpus_per_trial, "concurrent": concurrent, "trials": trials, "finished": finished,
            "wall_s": wall, "trials_per_hour": finished / wall * 3600}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="densenet121")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per precision run")
    parser.add_argument("--trials", type=int, default=8, help="trials per sweep")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON result")
    args = parser.parse_args()
    require_cuda()
    import torch

    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        steps = step_rates(args.arch, args.size, args.batch_size, args.batches, cpus, work / "steps")
        sweeps = [sweep_rate(args.arch, args.size, g, args.trials, cpus, work / f"sweep{g}") for g in (1.0, 0.25)]
    whole, packed = sweeps
    print(f"\n{args.arch} at {args.size} px on {torch.cuda.get_device_name(0)}")
    print(f"fp32 {steps['fp32_images_s']:.0f} img/s, {steps['amp']} {steps['amp_images_s']:.0f} img/s: "
          f"x{steps['amp_vs_fp32']:.2f}")
    for s in sweeps:
        print(f"gpus_per_trial {s['gpus_per_trial']}: {s['finished']}/{s['trials']} trials in {s['wall_s']:.0f} s, "
              f"{s['trials_per_hour']:.0f} trials/hour")
    out = {"bench": "gpu", "device": torch.cuda.get_device_name(0), "steps": steps, "sweeps": sweeps,
           "amp_vs_fp32": steps["amp_vs_fp32"],
           "trials_per_hour": {str(s["gpus_per_trial"]): s["trials_per_hour"] for s in sweeps},
           "packed_vs_whole": packed["trials_per_hour"] / whole["trials_per_hour"], "machine": machine(gpus=1)}
    write_result(args.results, "gpu.json", out)


if __name__ == "__main__":
    main()
