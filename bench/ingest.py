"""Ingest throughput with 1 vs 2 decode workers on one corpus, and peak memory at 1k vs 10k files.

Speed: realistic CR files (512 px, 12-bit in 16, JPEG 2000 lossless, ~80 kB) so decoding dominates pool
overhead; both worker counts run on the same files in the same run, alternating, best of --repeats.
Memory: a fresh child process ingests N tiny files; its peak RSS (and its pool workers') is compared at
1k and 10k files: flat means streaming works (no per-file pixel arrays kept).

    python bench/ingest.py               # writes bench/results/ingest.json
    python bench/ingest.py --smoke-test  # seconds, writes bench/results/ingest-smoke.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.uid import JPEG2000Lossless

from medtune.data.ingest import ingest
from medtune.data.sample import write_dicom

ROOT = Path(__file__).resolve().parents[1]

KEY = b"bench-key"
CHILD = """
import resource, sys, threading, time
import psutil
from medtune.data.ingest import ingest
peak = [0]
def sample():  # pool workers are forkserver children, invisible to RUSAGE_CHILDREN: poll them
    me = psutil.Process()
    while True:
        for proc in me.children(recursive=True):
            try:
                peak[0] = max(peak[0], proc.memory_info().rss)
            except psutil.Error:
                pass
        time.sleep(0.05)
threading.Thread(target=sample, daemon=True).start()
ingest(sys.argv[1], sys.argv[2], b"bench-key", workers=int(sys.argv[3]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, peak[0])
"""


def write_cohort(out: Path, n: int, size: int, j2k: bool, seed: int = 0) -> Path:
    """n labelled CR files of size x size (12-bit), JPEG 2000 lossless when j2k; returns labels.csv."""
    rng = np.random.default_rng(seed)
    rows = ["path,label"]
    for i in range(n):
        noise = rng.normal(0, 1, (size, size)).astype(np.float32)
        image = cv2.GaussianBlur(noise, (0, 0), 3) * 4000 + 2048 + 300 * np.sin(np.arange(size) / 17)
        rel = f"p{i // 4:05d}/img{i % 4}.dcm"
        write_dicom(out / rel, image.clip(0, 4095).astype(np.uint16), f"B{i // 4:05d}", "Acme",
                    extra={"BitsStored": 12, "HighBit": 11, "WindowCenter": 2048, "WindowWidth": 4096})
        if j2k:
            ds = pydicom.dcmread(out / rel)
            ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
            ds.save_as(out / rel)
        rows.append(f"{rel},{('normal', 'abnormal')[i % 2]}")  # normal: the negative class
    (out / "labels.csv").write_text("\n".join(rows) + "\n")
    return out / "labels.csv"


def time_workers(raw: Path, labels: Path, repeats: int) -> dict[int, float]:
    """Best wall time of ingest per worker count, alternating 1 and 2 so load drifts hit both."""
    best = {1: float("inf"), 2: float("inf")}
    for _ in range(repeats):
        for workers in (1, 2):
            start = time.perf_counter()
            ingest(raw, str(labels), KEY, workers=workers)
            best[workers] = min(best[workers], time.perf_counter() - start)
    return best


def peak_rss_mb(raw: Path, labels: Path, workers: int) -> tuple[float, float]:
    """(driver, largest worker) peak RSS in MiB of a fresh child process running ingest."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", CHILD, str(raw), str(labels), str(workers)],
                         capture_output=True, text=True, check=True, env=env).stdout.split()
    return int(out[0]) / 2**20, int(out[1]) / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--files", type=int, default=320, help="files in the speed corpus")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    n_speed, scale, size = (24, (100, 400), 128) if args.smoke_test else (args.files, (1000, 10000), 512)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        speed_dir = Path(tmp) / "speed"
        labels = write_cohort(speed_dir, n_speed, size, j2k=True)
        times = time_workers(speed_dir, labels, 1 if args.smoke_test else args.repeats)
        memory = {}
        for n in scale:
            mem_dir = Path(tmp) / f"mem{n}"
            mem_labels = write_cohort(mem_dir, n, 32, j2k=False, seed=n)
            memory[n] = peak_rss_mb(mem_dir, mem_labels, workers=2)
    result = report(n_speed, size, times, memory, load_before, os.getloadavg(), args.smoke_test)
    name = "ingest-smoke.json" if args.smoke_test else "ingest.json"
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench/results" / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote bench/results/{name}")
    return 0


def report(n: int, size: int, times: dict, memory: dict, load_before: tuple, load_after: tuple,
           smoke: bool) -> dict:
    """Print the table and return the JSON record (with the machine it ran on)."""
    rate = {w: n / t for w, t in times.items()}
    (small, large), (mem_small, mem_large) = memory.keys(), memory.values()
    print(f"ingest speed: {n} files, {size}px 12-bit CR, JPEG 2000 lossless")
    print(f"  {'workers':>8} {'seconds':>8} {'files/s':>8} {'ratio':>6}")
    for w in (1, 2):
        print(f"  {w:>8} {times[w]:>8.2f} {rate[w]:>8.1f} {rate[w] / rate[1]:>6.2f}x")
    print(f"peak RSS (MiB), 2 workers:   {'files':>6} {'driver':>7} {'worker':>7}")
    for n_files, (driver, worker) in memory.items():
        print(f"  {'':>26}{n_files:>6} {driver:>7.0f} {worker:>7.0f}")
    print(f"  driver {large}/{small} files ratio: {mem_large[0] / mem_small[0]:.2f}x; "
          f"load average before/after: {load_before[0]:.2f}/{load_after[0]:.2f} on {os.cpu_count()} cores")
    return {
        "smoke_test": smoke, "speed_files": n, "image_size": size, "codec": "JPEG 2000 lossless",
        "seconds": {str(w): t for w, t in times.items()}, "files_per_s": {str(w): r for w, r in rate.items()},
        "speedup_2_vs_1": rate[2] / rate[1],
        "peak_rss_mib": {str(k): {"driver": v[0], "largest_worker": v[1]} for k, v in memory.items()},
        "rss_ratio_driver": mem_large[0] / mem_small[0],
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "processor": platform.processor(), "cpu_count": os.cpu_count(),
                    "loadavg_before": load_before, "loadavg_after": load_after},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


if __name__ == "__main__":
    sys.exit(main())
