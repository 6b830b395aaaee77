"""Run every DICOM file that ships inside installed packages through ingest's reader; tabulate outcomes.

Sources: pydicom's bundled test files, the pydicom-data package (found through pydicom's data manager,
never downloaded) and nibabel's test DICOMs. Each file must end accepted or rejected with one reason code.

    python bench/corpus.py                  # writes bench/results/corpus.md and corpus.csv
    python bench/corpus.py --write-expected # also refreshes tests/unit/data/corpus_expected.csv (review it!)
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ROOT / "tests/unit/data/corpus_expected.csv"
RESULTS = ROOT / "bench/results"


def corpus_files() -> list[tuple[str, str, Path]]:
    """(source, stable name, path) of every corpus file, sorted; names are package-relative paths."""
    import nibabel
    import pydicom
    from pydicom.data import get_testdata_files

    out = []
    pydicom_root = Path(pydicom.__file__).parent / "data" / "test_files"
    for name in get_testdata_files():
        path = Path(name)
        if not path.is_file():
            continue
        if path.is_relative_to(pydicom_root):
            out.append(("pydicom", path.relative_to(pydicom_root).as_posix(), path))
        else:
            out.append(("pydicom-data", path.name, path))
    nib_root = Path(nibabel.__file__).parent
    for path in sorted(nib_root.rglob("*")):
        if path.is_file() and (".dcm" in path.name.lower() or path.parent.name.lower().startswith("dicom")):
            out.append(("nibabel", path.relative_to(nib_root).as_posix(), path))
    return sorted(set(out))


def classify(files: list[tuple[str, str, Path]], key: bytes = b"corpus") -> list[dict]:
    """One row per file: source, file, outcome (accepted or a reason code), patient_key, seconds."""
    from medtune.data.ingest import read_one

    rows = []
    for source, name, path in files:
        start = time.perf_counter()
        result = read_one(path, name, key, sample_intensity=True)
        rows.append({"source": source, "file": name, "outcome": result.reason or "accepted",
                     "patient_key": result.patient_key, "seconds": time.perf_counter() - start})
    return rows


def write_report(rows: list[dict]) -> Counter:
    """bench/results/corpus.{csv,md}: the per-file table and the per-reason summary."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "corpus.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["source", "file", "outcome"])
        writer.writerows((r["source"], r["file"], r["outcome"]) for r in rows)
    summary = Counter(r["outcome"] for r in rows)
    by_source = Counter((r["source"], r["outcome"]) for r in rows)
    lines = ["# Package DICOM corpus through `medtune ingest`", "",
             f"{len(rows)} files; {sum(r['seconds'] for r in rows):.1f} s single-process.", "",
             "| outcome | files | pydicom | pydicom-data | nibabel |", "|---|---|---|---|---|"]
    for outcome, n in summary.most_common():
        per = [by_source[(s, outcome)] for s in ("pydicom", "pydicom-data", "nibabel")]
        lines.append(f"| {outcome} | {n} | " + " | ".join(map(str, per)) + " |")
    lines += ["", "| source | file | outcome |", "|---|---|---|"]
    lines += [f"| {r['source']} | {r['file']} | {r['outcome']} |" for r in rows]
    (RESULTS / "corpus.md").write_text("\n".join(lines) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-expected", action="store_true", help="refresh the test's expected table")
    args = parser.parse_args(argv)
    rows = classify(corpus_files())
    summary = write_report(rows)
    if args.write_expected:
        with open(EXPECTED, "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["source", "file", "outcome"])
            writer.writerows((r["source"], r["file"], r["outcome"]) for r in rows)
    print(f"{len(rows)} files: " + ", ".join(f"{k}={v}" for k, v in summary.most_common()))
    print(f"wrote {RESULTS / 'corpus.md'} and corpus.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
