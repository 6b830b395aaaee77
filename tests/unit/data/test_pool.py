"""The supervised decode pool: a file whose decode never returns, or crashes its worker, is rejected with a
reason and the stage goes on; every other file, including the rest of the hung file's chunk, is read.

The hang and the crash are real: a test-only pydicom decoder plug-in (tests/plugins/hanging_decoder.py),
loaded through `ingest.decoder_plugins` in every worker, blocks forever on a 77-row RLE file and
dereferences NULL on a 79-row one. Nothing is mocked.
"""

from __future__ import annotations

import math
import operator
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pydicom
import pytest
from pydicom.uid import RLELossless

from medtune.data.ingest import ingest
from medtune.data.limits import FileLimits
from medtune.data.pool import PoolStats, supervised_map
from medtune.data.preprocess import preprocess
from medtune.data.sample import write_dicom
from medtune.errors import ConfigError, DataError

PLUGIN = str(Path(__file__).resolve().parents[2] / "plugins" / "hanging_decoder.py")
HANG_ROWS, CRASH_ROWS = 77, 79


def write_rle(path: Path, rows: int, seed: int) -> None:
    """A valid RLE Lossless file of `rows` x 16 pixels."""
    pixels = np.random.default_rng(seed).integers(0, 4096, (rows, 16)).astype(np.uint16)
    write_dicom(path, pixels, f"P{seed}", "Acme")
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless)
    ds.save_as(path)


def cohort(tmp_path: Path, n_good: int = 40) -> tuple[Path, Path]:
    """n_good RLE files plus one that hangs the decoder and one that crashes it, all labelled."""
    raw = tmp_path / "raw"
    rels = [f"good/{i:03d}.dcm" for i in range(n_good)]
    for i, rel in enumerate(rels):
        write_rle(raw / rel, 12 + i % 5, i)
    # Sorted among the good files, so each sits in the middle of a pool chunk.
    write_rle(raw / "good/010a_hang.dcm", HANG_ROWS, 900)
    write_rle(raw / "good/020a_crash.dcm", CRASH_ROWS, 901)
    rels += ["good/010a_hang.dcm", "good/020a_crash.dcm"]
    labels = tmp_path / "labels.csv"
    rows = "".join(f"{rel},{('normal', 'abnormal')[i % 2]}\n" for i, rel in enumerate(rels))
    labels.write_text("path,label\n" + rows)
    return raw, labels


def test_results_come_back_in_order_from_several_workers() -> None:
    out = list(supervised_map(operator.neg, range(200), lambda item, reason: reason, workers=2, timeout_s=30,
                              chunk=7))
    assert out == [-i for i in range(200)]


@pytest.mark.parametrize(("workers", "timeout_s"), [(1, 0.0), (2, 30.0)])
def test_an_unforeseen_exception_fails_that_item_only(workers: int, timeout_s: float) -> None:
    stats = PoolStats()
    out = list(supervised_map(math.sqrt, [4.0, -1.0, 9.0], lambda item, reason: (item, reason), workers=workers,
                              timeout_s=timeout_s, stats=stats))
    assert out == [2.0, (-1.0, "decode_error"), 3.0] and stats.unexpected == 1


@pytest.mark.parametrize(("workers", "timeout_s"), [(1, 0.0), (2, 30.0)])
def test_a_plugin_that_cannot_load_is_one_line(tmp_path: Path, workers: int, timeout_s: float) -> None:
    with pytest.raises(ConfigError, match="ingest.decoder_plugins: cannot import 'no_such_module_xyz'"):
        list(supervised_map(abs, [1], lambda item, reason: reason, workers=workers, timeout_s=timeout_s,
                            plugins=["no_such_module_xyz"]))
    with pytest.raises(ConfigError, match="missing.py"):
        list(supervised_map(abs, [1], lambda item, reason: reason, workers=workers, timeout_s=timeout_s,
                            plugins=[str(tmp_path / "missing.py")]))


def test_a_worker_that_exits_before_its_first_job_still_says_why(tmp_path: Path) -> None:
    # The worker that cannot load a plug-in reports and exits at once; the first dispatch races that exit
    # and once met a closed pipe (BrokenPipeError in CI). About 1 try in 9 met it before the fix.
    for _ in range(40):
        with pytest.raises(ConfigError, match="missing.py"):
            list(supervised_map(abs, [1], lambda item, reason: reason, workers=2, timeout_s=30.0,
                                plugins=[str(tmp_path / "missing.py")]))


def test_hung_and_crashing_decodes_are_rejected_and_ingest_goes_on(tmp_path: Path, hmac_key: bytes) -> None:
    raw, labels = cohort(tmp_path)
    before = grandchildren()  # what earlier tests in this process left (a local Ray's agents, say)
    started = time.monotonic()
    result = ingest(raw, str(labels), hmac_key, workers=2, limits=FileLimits(timeout_s=3.0), plugins=[PLUGIN])
    elapsed = time.monotonic() - started
    reasons = dict(zip(result.rejected["path"], result.rejected["reason"]))
    assert reasons == {"good/010a_hang.dcm": "decode_timeout", "good/020a_crash.dcm": "decode_crash"}
    # Every other file was read, including those queued behind the hung one in its chunk.
    assert len(result.manifest) == 40 and len(result.manifest) + len(result.rejected) == 42
    assert result.faults == {"decode_timeout": 1, "decode_crash": 1, "memory_cap": 0, "unexpected_error": 0}
    assert result.fingerprint["rejected_by_reason"] == {"decode_crash": 1, "decode_timeout": 1}
    assert elapsed < 60, f"ingest took {elapsed:.0f} s with a 3 s timeout"
    # The plug-in really is in the decode path: without it the same files decode fine.
    plain = ingest(raw, str(labels), hmac_key, workers=1)
    assert plain.rejected.empty and len(plain.manifest) == 42
    assert not grandchildren() - before, "decode workers outlived the pool"  # the forkserver's: none left


def grandchildren() -> set[psutil.Process]:
    """Processes started by this process's children (decode workers are the forkserver's children)."""
    return {w for child in psutil.Process().children() for w in child.children(recursive=True)}


def test_preprocess_fails_with_one_line_instead_of_hanging(tmp_path: Path, hmac_key: bytes) -> None:
    raw, labels = cohort(tmp_path, n_good=6)
    manifest = ingest(raw, str(labels), hmac_key, workers=1).manifest  # no plug-in: everything accepted
    started = time.monotonic()
    with pytest.raises(DataError, match=r"010a_hang.dcm: cannot be decoded \(decode_timeout\)"):
        preprocess(manifest, raw, tmp_path / "images.npy", 16, workers=1, limits=FileLimits(timeout_s=2.0),
                   plugins=[PLUGIN])
    assert time.monotonic() - started < 60
    assert not (tmp_path / "images.npy").exists()  # no half-written array left behind
    assert not list(tmp_path.glob(".images.*"))


def test_preprocess_with_timeout_matches_in_process_decoding(tmp_path: Path, hmac_key: bytes) -> None:
    raw, labels = cohort(tmp_path, n_good=12)
    manifest = ingest(raw, str(labels), hmac_key, workers=1).manifest
    manifest = manifest[~manifest["path"].str.contains("_hang|_crash")]
    index_a = preprocess(manifest, raw, tmp_path / "a.npy", 16, workers=1)
    index_b = preprocess(manifest, raw, tmp_path / "b.npy", 16, workers=2, limits=FileLimits(timeout_s=30.0),
                         plugins=[PLUGIN])
    pd.testing.assert_frame_equal(index_a, index_b)
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
