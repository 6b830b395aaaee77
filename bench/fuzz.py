"""Fuzzed DICOM through the real ingest and preprocess: every file ends accepted or rejected with a reason,
with no crash, no hang, and memory bounded by the limits in params.

The corpus is seeded and rerunnable (bench/mutate.py over the files shipped with pydicom, pydicom-data and
nibabel). Baseline, measured in the same run: the unmutated source files through the same two stages.
A crash is a file that ended any other way than a reason code from our checks: a stage that raised, an
exception the readers did not classify, or a decode worker that died. A hang is a file whose decode hit
the per-file timeout, or a stage that did not finish. Anything the stages print to stderr (a library
warning can quote header values, PHI in a real archive) is counted as a leak.

    python -m bench.fuzz --files 1000   # writes bench/results/fuzz.json
    python -m bench.fuzz --smoke-test   # 40 files, writes bench/results/fuzz-smoke.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import RESULTS, machine, watch_rss, write_result
from bench.corpus import corpus_files
from bench.mutate import write_corpus

KEY = b"fuzz-bench-key"
IMAGE_SIZE = 32
STAGE_LIMIT_S = 3600  # a stage still running after this counts as a hang


def limits(timeout_s: float, memory_mb: float) -> Any:
    from medtune.data.limits import FileLimits

    return FileLimits(timeout_s=timeout_s, worker_memory_mb=memory_mb)


def run_stages(raw: Path, labels: Path, work: Path, workers: int, timeout_s: float, memory_mb: float) -> dict:
    """The real ingest, then preprocess of what it accepted; counts, reasons and timings, never a raise."""
    from medtune.data.ingest import ingest
    from medtune.data.preprocess import preprocess

    out: dict[str, Any] = {"stage_errors": []}
    started = time.perf_counter()
    try:
        result = ingest(raw, str(labels), KEY, workers=workers, limits=limits(timeout_s, memory_mb))
    except Exception as exc:  # noqa: BLE001 - the bench records it as a crash
        out["stage_errors"].append(f"ingest: {type(exc).__name__}: {exc}"[:300])
        return out | {"ingest_s": time.perf_counter() - started}
    out |= {"ingest_s": time.perf_counter() - started, "scanned": result.fingerprint["n_scanned"],
            "accepted": len(result.manifest), "rejected": len(result.rejected),
            "rejected_by_reason": dict(Counter(result.rejected["reason"])), "faults": result.faults,
            "pool_failures": result.rejected.loc[result.rejected["reason"].isin(["decode_timeout", "decode_crash"]),
                                                 ["path", "reason"]].to_dict("records")}
    started = time.perf_counter()
    try:
        index = preprocess(result.manifest, raw, work / "images.npy", IMAGE_SIZE, workers=workers,
                           limits=limits(timeout_s, memory_mb))
        out["preprocessed"] = len(index)
    except Exception as exc:  # noqa: BLE001 - a file ingest accepted that preprocess cannot decode
        out["stage_errors"].append(f"preprocess: {type(exc).__name__}: {exc}"[:300])
    out["preprocess_s"] = time.perf_counter() - started
    return out


def measured(raw: Path, labels: Path, work: Path, workers: int, timeout_s: float, memory_mb: float) -> dict:
    """run_stages in a child process, sampling the RSS of its whole process tree (pool workers included)."""
    result_file = work / "stages.json"
    cmd = [sys.executable, "-m", "bench.fuzz", "--child", str(raw), str(labels), str(work), str(workers),
           str(timeout_s), str(memory_mb)]
    started = time.perf_counter()
    stderr = open(work / "stderr.txt", "w+b")  # noqa: SIM115 - read back below
    child = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1], stderr=stderr)
    tree_peak, proc_peak, _ = watch_rss(child, STAGE_LIMIT_S, interval_s=0.05)
    child.wait()
    wall = time.perf_counter() - started
    stderr.seek(0)
    leaked = stderr.read().decode(errors="replace").splitlines()  # warnings can quote header values
    stderr.close()
    out = json.loads(result_file.read_text()) if result_file.is_file() else {"stage_errors": ["child died"]}
    return out | {"wall_s": round(wall, 2), "peak_rss_tree_mb": round(tree_peak / 2**20, 1),
                  "peak_rss_process_mb": round(proc_peak / 2**20, 1), "timed_out": wall > STAGE_LIMIT_S,
                  "stderr_lines": len(leaked), "stderr_head": [line[:160] for line in leaked[:5]]}


def crashes_and_hangs(stages: dict) -> tuple[int, int]:
    faults = stages.get("faults", {})
    crashes = len(stages["stage_errors"]) + faults.get("decode_crash", 0) + faults.get("unexpected_error", 0)
    hangs = faults.get("decode_timeout", 0) + int(stages.get("timed_out", False))
    return crashes, hangs


def baseline_tree(sources: list[Path], out: Path) -> Path:
    """The unmutated sources under out/raw with a labels.csv; returns the labels path."""
    rows = []
    for i, source in enumerate(sources):
        rel = f"s{i:03d}/{source.name}"
        (out / "raw" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / "raw" / rel)
        rows.append(f"{rel},{('normal', 'abnormal')[i % 2]}")
    (out / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    return out / "labels.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=20.0, help="ingest.file_timeout_s for the run")
    parser.add_argument("--memory-mb", type=float, default=2048.0, help="ingest.worker_memory_mb for the run")
    parser.add_argument("--smoke-test", action="store_true", help="40 files, results in fuzz-smoke.json")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        raw, labels, work, workers, timeout_s, memory_mb = args.child
        stages = run_stages(Path(raw), Path(labels), Path(work), int(workers), float(timeout_s), float(memory_mb))
        (Path(work) / "stages.json").write_text(json.dumps(stages, default=str))
        return 0
    n_files = 40 if args.smoke_test else args.files
    sources = [path for _, _, path in corpus_files()]
    with tempfile.TemporaryDirectory(prefix="medtune-fuzz-") as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        rows = write_corpus(sources, tmp_path / "fuzz" / "raw", n_files, args.seed)
        generate_s = time.perf_counter() - started
        print(f"fuzz: wrote {len(rows)} mutated files in {generate_s:.1f}s; running ingest + preprocess", flush=True)
        fuzz = measured(tmp_path / "fuzz" / "raw", tmp_path / "fuzz" / "labels.csv", tmp_path / "fuzz",
                        args.workers, args.timeout, args.memory_mb)
        base_labels = baseline_tree(sources, tmp_path / "base")
        base = measured(tmp_path / "base" / "raw", base_labels, tmp_path / "base", args.workers, args.timeout,
                        args.memory_mb)
    payload = report(rows, fuzz, base, generate_s, args, n_files)
    write_result(args.results, "fuzz-smoke.json" if args.smoke_test else "fuzz.json", payload)
    crashes, hangs = payload["crashes"], payload["hangs"]
    return 0 if crashes == hangs == payload["stderr_lines"] == 0 and payload["counts_reconcile"] else 1


def report(rows: list, fuzz: dict, base: dict, generate_s: float, args: argparse.Namespace, n_files: int) -> dict:
    """The fuzz.json payload; prints the table."""
    from medtune.data.limits import FileLimits

    crashes, hangs = crashes_and_hangs(fuzz)
    default = FileLimits()
    payload = {
        "files": n_files, "crashes": crashes, "hangs": hangs, "seed": args.seed,
        "scanned": fuzz.get("scanned"), "accepted": fuzz.get("accepted"), "rejected": fuzz.get("rejected"),
        "counts_reconcile": fuzz.get("scanned") == n_files == (fuzz.get("accepted", 0) + fuzz.get("rejected", 0)),
        "preprocessed": fuzz.get("preprocessed"), "rejected_by_reason": fuzz.get("rejected_by_reason", {}),
        "pool_faults": fuzz.get("faults", {}), "pool_failures": fuzz.get("pool_failures", []),
        "stage_errors": fuzz["stage_errors"], "stderr_lines": fuzz["stderr_lines"],
        "stderr_head": fuzz["stderr_head"],
        "mutations": dict(Counter(name for _, _, names in rows for name in names)),
        "peak_rss_tree_mb": fuzz["peak_rss_tree_mb"], "peak_rss_process_mb": fuzz["peak_rss_process_mb"],
        "wall_s": fuzz["wall_s"], "ingest_s": round(fuzz.get("ingest_s", 0), 2),
        "preprocess_s": round(fuzz.get("preprocess_s", 0), 2), "generate_s": round(generate_s, 2),
        "baseline": {"files": base.get("scanned"), "accepted": base.get("accepted"),
                     "crashes_hangs": crashes_and_hangs(base), "wall_s": base["wall_s"],
                     "peak_rss_tree_mb": base["peak_rss_tree_mb"]},
        "ratio_peak_rss_fuzz_vs_clean": round(fuzz["peak_rss_tree_mb"] / max(base["peak_rss_tree_mb"], 1e-9), 2),
        "ratio_seconds_per_file_fuzz_vs_clean": round(
            (fuzz["wall_s"] / n_files) / max(base["wall_s"] / max(base.get("scanned") or 1, 1), 1e-9), 2),
        "limits": {"file_timeout_s": args.timeout, "worker_memory_mb": args.memory_mb, "workers": args.workers,
                   "max_pixels": default.max_pixels, "max_frames": default.max_frames,
                   "max_file_mb": default.max_file_mb},
        "memory_bound": (f"each decode worker's address space is capped at {args.memory_mb:.0f} MB (RLIMIT_AS), so "
                         f"the tree is bounded by the parent + {args.workers} x {args.memory_mb:.0f} MB; measured "
                         f"peak {fuzz['peak_rss_tree_mb']:.0f} MB for the whole tree"),
        "machine": machine(),
    }
    print_table(payload, fuzz, base)
    return payload


def print_table(payload: dict, fuzz: dict, base: dict) -> None:
    rows = [("files", payload["files"], base.get("scanned")), ("accepted", fuzz.get("accepted"), base.get("accepted")),
            ("crashes / hangs", f"{payload['crashes']} / {payload['hangs']}",
             "{} / {}".format(*crashes_and_hangs(base))),
            ("stderr lines", fuzz["stderr_lines"], base["stderr_lines"]), ("wall s", fuzz["wall_s"], base["wall_s"]),
            ("peak RSS, tree MB", fuzz["peak_rss_tree_mb"], base["peak_rss_tree_mb"])]
    print(f"\n{'':28s}{'fuzzed':>12s}{'clean (baseline)':>20s}")
    for label, a, b in rows:
        print(f"{label:28s}{a!s:>12s}{b!s:>20s}")
    print("rejected by reason: " + ", ".join(f"{k}={v}" for k, v in sorted(payload["rejected_by_reason"].items())))


if __name__ == "__main__":
    sys.exit(main())
