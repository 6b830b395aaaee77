"""Training throughput: medtune's step (fit(): Lightning, our loaders, augmentation) vs a bare PyTorch loop.

Same MONAI network (resnet18 by default), batch size, resolution, optimizer and threads. The bare loop is
the ceiling: float tensors already in memory, no augmentation, no Lightning. medtune's step reads uint8
rows from a memory-mapped images.npy written as preprocess writes it, augments each sample, and goes
through Lightning. Both are timed over the same number of batches after the same warm-up, interleaved
(medtune, bare, medtune, bare, ...) so load on a shared machine hits both alike; medians are reported,
per wall second (`ratio_vs_bare`) and per CPU-second of the process (`ratio_vs_bare_cpu`: medtune's own
overhead, blind to other jobs taking the cores). The loader alone (every batch of the augmented train
loader, no model) says whether data ever waits.
Writes bench/results/throughput.json (`ratio_vs_bare` per resolution: goal >= 0.90; `loader_vs_step`:
goal >= 5).

    python -m bench.throughput                 # resnet18 at 64 and 128 px, batch 32, 1 thread, 3 repeats
    python -m bench.throughput --sizes 224     # what a real X-ray run costs per image on this machine
    python -m bench.throughput --smoke-test    # 32 px, a few batches, 1 repeat (CI-sized)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from bench.common import RESULTS, machine, write_result
from medtune.config import TrainCfg
from medtune.data.datamodule import SplitArrays, TrainData, make_loaders
from medtune.data.store import write_images
from medtune.models.lit_module import make_optimizer
from medtune.models.nets import build_net, net_spec_for
from medtune.task import Task
from medtune.train import fit, loader_workers

TASK = Task("binary", ("normal", "abnormal"))
WARMUP = 2  # batches before the clock starts: allocator, first-call kernels, loader start-up


def cohort(root: Path, n: int, size: int, seed: int = 0) -> SplitArrays:
    """n synthetic images at `size` px in an images.npy written as preprocess writes it (uint8)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.6, (n, 1, size, size)).astype(np.float32)
    y = np.arange(n) % 2
    x[y == 1, 0, size // 4: size // 2, size // 4: size // 2] = 0.95
    images = write_images(root / f"images-{size}.npy", x)
    ids = [f"s{i}" for i in range(n)]
    return SplitArrays(images, y.astype(np.int64), ids, ids)


class StepClock(pl.Callback):
    """Wall and CPU time from the end of the warm-up batches to the end of the last training batch."""

    def __init__(self) -> None:
        self.start = self.end = self.cpu_start = self.cpu_end = 0.0
        self.batches = 0

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs: object, batch: object,
                           batch_idx: int) -> None:
        if batch_idx == WARMUP - 1:
            self.start, self.cpu_start = time.perf_counter(), time.process_time()
        elif batch_idx >= WARMUP:
            self.end, self.cpu_end, self.batches = time.perf_counter(), time.process_time(), self.batches + 1


def medtune_rate(cfg: TrainCfg, data: TrainData) -> tuple[float, float]:
    """Images per wall second and per CPU second of fit()'s training steps (loading, augmentation and
    Lightning included)."""
    clock = StepClock()
    fit(cfg, data, callbacks=[clock], accelerator="cpu")
    images = clock.batches * cfg.batch_size
    return images / (clock.end - clock.start), images / (clock.cpu_end - clock.cpu_start)


def bare_rate(cfg: TrainCfg, data: TrainData, batches: int) -> tuple[float, float]:
    """Images/s of a plain loop over in-memory float batches: forward, loss, backward, optimizer step."""
    torch.manual_seed(cfg.seed)
    net = build_net(net_spec_for(cfg, TASK, data.channels)).train()
    opt = make_optimizer(cfg.optimizer, net.parameters(), cfg.lr, cfg.momentum, cfg.weight_decay)
    x = torch.from_numpy(data.train.x[: cfg.batch_size * (WARMUP + batches)])
    y = torch.from_numpy(data.train.y[: len(x)]).float()
    start = cpu_start = 0.0
    for b in range(WARMUP + batches):
        if b == WARMUP:
            start, cpu_start = time.perf_counter(), time.process_time()
        xb, yb = x[b * cfg.batch_size:(b + 1) * cfg.batch_size], y[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.binary_cross_entropy_with_logits(net(xb)[:, 0], yb).backward()
        opt.step()
    images = batches * cfg.batch_size
    return images / (time.perf_counter() - start), images / (time.process_time() - cpu_start)


def loader_rate(cfg: TrainCfg, data: TrainData) -> float:
    """Images/s of the augmented train loader alone (every batch of one epoch, no model)."""
    train, _ = make_loaders(data, cfg.batch_size, cfg.augment, loader_workers(cfg.num_workers, "cpu"), cfg.seed)
    seen, start = 0, time.perf_counter()
    for x, _ in train:
        seen += len(x)
    return seen / (time.perf_counter() - start)


def measure(size: int, batch: int, batches: int, repeats: int, arch: str, work: Path) -> dict:
    n = batch * (WARMUP + batches)
    data = TrainData(cohort(work, n, size), cohort(work / "val", batch, size, seed=1), TASK)
    cfg = TrainCfg(arch=arch, batch_size=batch, epochs=1, augment=0.5, lr=1e-3, optimizer="adam", seed=0)
    medtune, bare, loader, medtune_cpu, bare_cpu = [], [], [], [], []
    for _ in range(repeats):
        for rates, cpu_rates, rate in ((medtune, medtune_cpu, medtune_rate(cfg, data)),
                                       (bare, bare_cpu, bare_rate(cfg, data, batches))):
            rates.append(rate[0])
            cpu_rates.append(rate[1])
        loader.append(loader_rate(cfg, data))
    m, b, ld, m_cpu, b_cpu = (statistics.median(v) for v in (medtune, bare, loader, medtune_cpu, bare_cpu))
    return {"size": size, "arch": arch, "batch_size": batch, "timed_batches": batches, "augment": cfg.augment,
            "num_workers": loader_workers(cfg.num_workers, "cpu"),
            "medtune_images_s": m, "bare_images_s": b, "loader_images_s": ld,
            "ratio_vs_bare": m / b, "loader_vs_step": ld / m,
            # images per CPU-second: the same ratio, blind to other processes taking the cores
            "medtune_images_cpu_s": m_cpu, "bare_images_cpu_s": b_cpu, "ratio_vs_bare_cpu": m_cpu / b_cpu,
            "runs": {"medtune": medtune, "bare": bare, "loader": loader, "medtune_cpu": medtune_cpu,
                     "bare_cpu": bare_cpu}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="32 px, 2 timed batches, 1 repeat")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=None, help="timed batches per run (default 5)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default 1: a per-core cost, and steady on a shared machine)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON result")
    args = parser.parse_args()
    sizes = [32] if args.smoke_test else args.sizes
    batches = args.batches or (2 if args.smoke_test else 5)
    repeats = args.repeats or (1 if args.smoke_test else 3)
    batch = 8 if args.smoke_test else args.batch_size
    threads = args.threads or 1
    torch.set_num_threads(threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            rows.append(measure(size, batch, batches, repeats, args.arch, Path(tmp)))
    print(f"\n{'px':>4s} {'medtune img/s':>14s} {'bare img/s':>11s} {'ratio':>6s} {'ratio/CPU s':>12s} "
          f"{'loader img/s':>13s} {'loader/step':>12s}   ({args.arch}, batch {batch}, {threads} threads, "
          f"median of {repeats})")
    for r in rows:
        print(f"{r['size']:4d} {r['medtune_images_s']:14.1f} {r['bare_images_s']:11.1f} {r['ratio_vs_bare']:6.3f} "
              f"{r['ratio_vs_bare_cpu']:12.3f} {r['loader_images_s']:13.1f} {r['loader_vs_step']:12.1f}")
    out = {"bench": "throughput", "arch": args.arch, "batch_size": batch, "repeats": repeats,
           "ratio_vs_bare": {str(r["size"]): r["ratio_vs_bare"] for r in rows},
           "loader_vs_step": {str(r["size"]): r["loader_vs_step"] for r in rows},
           "results": rows, "smoke_test": args.smoke_test, "machine": machine(threads=threads)}
    write_result(args.results, "throughput-smoke.json" if args.smoke_test else "throughput.json", out)


if __name__ == "__main__":
    main()
