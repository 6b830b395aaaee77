"""SIGKILL `dvc repro` in the middle of ingest, preprocess, split, promote and test in turn, running it again
each time: the pipeline ends with the same outputs as an uninterrupted run of the same project, and after
every kill each output on disk is either absent or complete (never half a file that reads as complete).

The kill lands while the stage's own process runs: once it has used 60% of the CPU time that stage used in
the uninterrupted run (measured in this test; CPU time, which another test's load on the machine does not
stretch the way it stretches wall time), or as soon as one of its outputs is being written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml
from mlflow.tracking import MlflowClient
from tests.integration._proc import run, tool_env
from tests.integration._project import set_params

pytestmark = [pytest.mark.slow, pytest.mark.ray]

KILLED = ("ingest", "preprocess", "split", "promote", "test")
MODEL = "medtune-classifier"


def stage_process(root: psutil.Process, stage: str) -> psutil.Process | None:
    """The `medtune <stage>` process under `root`, if it is running."""
    for proc in root.children(recursive=True):
        try:
            cmd = proc.cmdline()
        except psutil.Error:
            continue
        if any(part.endswith("medtune") for part in cmd) and stage in cmd:
            return proc
    return None


def cpu_seconds(proc: psutil.Process) -> float:
    """CPU seconds used so far by a process and its live children (0 once it has gone)."""
    total = 0.0
    try:
        for part in (proc, *proc.children(recursive=True)):
            times = part.cpu_times()
            total += times.user + times.system
    except psutil.Error:
        pass
    return total


def repro(project: Path, kill: str | None = None, after_cpu_s: float = 0.0,
          cpu_used: dict[str, float] | None = None) -> subprocess.CompletedProcess | None:
    """`dvc repro` in its own process group. With `kill`, SIGKILL the group once that stage's process has used
    `after_cpu_s` CPU seconds (or starts writing an output); with `cpu_used`, record what each stage used."""
    log = open(project / "repro.log", "a")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(["dvc", "repro"], cwd=project, env=tool_env(), stdout=log, stderr=log,
                            start_new_session=True)
    root, used, killed_alive = psutil.Process(proc.pid), {}, None
    while proc.poll() is None:
        for stage in KILLED:
            if (running := stage_process(root, stage)) is not None:
                used[stage] = max(used.get(stage, 0.0), cpu_seconds(running))
        if kill in used and (used[kill] >= after_cpu_s or writing(project)):
            killed_alive = stage_process(root, kill) is not None
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    log.close()
    if cpu_used is not None:
        cpu_used |= used
    if kill is not None:
        assert killed_alive, f"`medtune {kill}` had already finished when the kill came"
        return None
    assert proc.returncode == 0, (project / "repro.log").read_text()[-3000:]
    return subprocess.CompletedProcess(["dvc", "repro"], 0)


def temp_files(project: Path, live_only: bool = False) -> list[Path]:
    """Output temp files (jsonio.atomic_path: `.<name>.<pid>.tmp<suffix>`); live_only: of running writers."""
    found = [p for folder in ("data", "reports", "models") for p in (project / folder).glob("**/.*.tmp*")]
    return [p for p in found if not live_only or psutil.pid_exists(int(p.name.split(".")[2]))]


def writing(project: Path) -> bool:
    """True while a stage is writing one of its outputs."""
    return bool(temp_files(project, live_only=True))


def outputs(project: Path) -> list[Path]:
    """Every out, metric and plot file dvc.yaml declares."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    names = []
    for spec in stages.values():
        for key in ("outs", "metrics", "plots"):
            names += [next(iter(e)) if isinstance(e, dict) else e for e in spec.get(key, [])]
    return [project / n for n in names]


def assert_complete_or_absent(project: Path) -> None:
    """Each declared output on disk parses whole: no truncated parquet, CSV, JSON, array, PNG or model."""
    import torch

    for path in outputs(project):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            pd.read_parquet(path)
        elif path.suffix == ".csv":
            pd.read_csv(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".npy":
            array = np.load(path, mmap_mode="r")
            assert path.stat().st_size >= array.nbytes, f"{path} is shorter than its header says"
        elif path.suffix == ".png":
            data = path.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[-8:-4] == b"IEND", f"{path} is a partial PNG"
        elif path.suffix == ".pt":
            torch.load(path, weights_only=True)


def locked_stages(project: Path) -> set[str]:
    lock = project / "dvc.lock"
    return set(yaml.safe_load(lock.read_text())["stages"]) if lock.is_file() else set()


def lock_md5(project: Path, stage: str) -> dict[str, str]:
    outs = yaml.safe_load((project / "dvc.lock").read_text())["stages"][stage]["outs"]
    return {o["path"]: o["md5"] for o in outs}


def without_timings(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.endswith("_seconds")}


def test_sigkill_during_each_stage_then_repro_ends_as_an_uninterrupted_run(project: Path, tmp_path: Path) -> None:
    # One trial at a time: with two, which reaches an ASHA rung first (timing) decides which is cut, and the
    # two runs could pick different champions for reasons that have nothing to do with the kills.
    set_params(project, "search", max_concurrent_trials=1)
    killed = tmp_path / "killed"
    shutil.copytree(project, killed, symlinks=True)  # the same raw files, UIDs and params
    cpu_used: dict[str, float] = {}
    repro(project, cpu_used=cpu_used)  # the reference

    for stage in KILLED:
        repro(killed, kill=stage, after_cpu_s=0.6 * cpu_used[stage])
        assert_complete_or_absent(killed)
        assert stage not in locked_stages(killed), f"DVC recorded the killed {stage} stage as done"
    repro(killed)  # and once more, uninterrupted, to the end

    # Data stages: byte-identical outputs (DVC's own md5s; leakage.json records timings), the checkpoint too.
    for stage in ("ingest", "preprocess", "split"):
        timed = "reports/split/leakage.json"
        assert lock_md5(killed, stage) | {timed: ""} == lock_md5(project, stage) | {timed: ""}, stage
    assert without_timings(killed / "reports/split/leakage.json") == without_timings(
        project / "reports/split/leakage.json")
    assert lock_md5(killed, "tune")["models/best/model.pt"] == lock_md5(project, "tune")["models/best/model.pt"]
    # The test report: the same numbers for the same model on the same split (only the version differs:
    # promote registered again after its kill).
    metrics = {p: json.loads((p / "reports/test/metrics.json").read_text()) for p in (project, killed)}
    assert {k: v for k, v in metrics[killed].items() if k != "model_version"} == {
        k: v for k, v in metrics[project].items() if k != "model_version"}

    # Registry: one champion on record, the one the alias names; scored once, and MLflow knows it.
    client = MlflowClient(f"sqlite:///{killed / 'mlruns.db'}")
    champion = client.get_model_version_by_alias(MODEL, "champion")
    on_record = [str(v.version) for v in client.search_model_versions(f"name='{MODEL}'")
                 if "medtune.champion_since" in v.tags and "medtune.champion_until" not in v.tags]
    assert on_record == [str(champion.version)]
    assert int(champion.version) == metrics[killed]["model_version"]
    entries = json.loads((killed / "reports/test/ledger.json").read_text())["entries"]
    scored = [(e["model_version"], e["split_hash"]) for e in entries]
    assert scored == [(str(champion.version), metrics[killed]["split_hash"])]
    assert f"medtune.test_scored.{metrics[killed]['split_hash']}" in champion.tags
    # No temp file survives the last run, and DVC reports nothing left to do.
    assert not temp_files(killed)
    assert "up to date" in run(["dvc", "status"], killed).stdout
