"""A decoder that never returns, inside the real `medtune ingest` stage: the file is rejected
`decode_timeout`, the stage finishes, and a stage killed while a decode hangs leaves no worker behind.

The hang is real: tests/plugins/hanging_decoder.py, loaded through `ingest.decoder_plugins` (the documented
extension point), blocks forever on RLE files of 77 rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pydicom
import yaml
from pydicom.uid import RLELossless
from tests.integration._proc import run, tool_env

from medtune.data.sample import write_dicom

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "hanging_decoder.py"


def add_hanging_file(project: Path, timeout_s: float) -> None:
    """One 77-row RLE file (labelled) plus the plug-in and the timeout in params.yaml."""
    rel = "zz_hang/hang.dcm"
    path = project / "data/raw" / rel
    write_dicom(path, np.arange(77 * 16, dtype=np.uint16).reshape(77, 16), "PHANG", "Acme")
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless)
    ds.save_as(path)
    with open(project / "data/labels.csv", "a") as handle:
        handle.write(f"{rel},normal\n")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["ingest"] |= {"decoder_plugins": [str(PLUGIN)], "file_timeout_s": timeout_s, "workers": 2}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_ingest_rejects_the_hung_file_and_finishes(project: Path) -> None:
    add_hanging_file(project, timeout_s=3)
    started = time.monotonic()
    proc = run(["medtune", "ingest"], project)
    assert time.monotonic() - started < 120
    rejected = pd.read_csv(project / "reports/ingest/rejected.csv")
    assert rejected.to_dict("records") == [{"path": "zz_hang/hang.dcm", "reason": "decode_timeout"}]
    assert "scanned 49 = accepted 48 + rejected 1 (decode_timeout=1)" in proc.stdout
    assert "worker pool absorbed decode_timeout=1" in proc.stdout


def test_a_stage_killed_during_a_hung_decode_leaves_no_worker(project: Path, tmp_path: Path) -> None:
    add_hanging_file(project, timeout_s=600)
    marker = tmp_path / "hanging"
    env = {**tool_env(), "MEDTUNE_TEST_HANG_MARKER": str(marker)}
    proc = subprocess.Popen(["medtune", "ingest"], cwd=project, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not marker.is_file():
        assert proc.poll() is None and time.monotonic() < deadline, "the decode never started to hang"
        time.sleep(0.05)
    hung = psutil.Process(int(marker.read_text()))
    family = psutil.Process(proc.pid).children(recursive=True)
    assert hung in family and hung.is_running()
    os.kill(proc.pid, signal.SIGKILL)  # the stage only: its pool must not outlive it
    proc.wait()
    gone, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, f"left behind: {[p.cmdline()[:3] for p in alive]}"
