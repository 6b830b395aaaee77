"""The checks before a sweep uses Ray: an address nobody answers, a trial bigger than the machine, and a
storage path that cannot be a folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests._net import closed_port

from medtune.config import SearchCfg
from medtune.errors import ConfigError
from medtune.tune.cluster import check_reachable, check_storage, check_trial_fits, endpoint

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("address", "expected"), [
    ("10.0.0.5:6379", ("10.0.0.5", 6379)),
    ("ray://head.example:10001", ("head.example", 10001)),
    ("[::1]:6379", ("::1", 6379)),
    ("auto", None),
    ("local", None),
    ("head.example", None),
])
def test_endpoint_reads_the_forms_ray_accepts(address: str, expected: tuple[str, int] | None) -> None:
    assert endpoint(address) == expected


def test_an_address_nobody_answers_is_one_line_naming_its_source() -> None:
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(ConfigError, match=rf"^RAY_ADDRESS: no Ray cluster answers at 127.0.0.1:{port} \(.+\)$"):
        check_reachable(f"127.0.0.1:{port}", "RAY_ADDRESS")
    assert time.monotonic() - started < 5  # refused at once, not after Ray's minutes of retries


@pytest.mark.parametrize(("asked", "message"), [
    ({"cpus_per_trial": 3}, "search.cpus_per_trial: 3 is more than the 2 CPUs"),
    ({"gpus_per_trial": 0.25}, "search.gpus_per_trial: 0.25 is more than the 0 GPUs"),
])
def test_a_trial_bigger_than_the_machine_is_refused(asked: dict, message: str) -> None:
    check_trial_fits(SearchCfg(cpus_per_trial=2), {"CPU": 2.0})  # exactly the machine: fits
    with pytest.raises(ConfigError, match=message):
        check_trial_fits(SearchCfg(**asked), {"CPU": 2.0})


def test_the_tune_stage_with_a_wrong_ray_address_stops_in_one_line(tmp_path: Path) -> None:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    port = closed_port()
    proc = subprocess.run([str(Path(sys.executable).parent / "medtune"), "tune"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: RAY_ADDRESS: no Ray cluster answers at 127.0.0.1:{port} (Connection refused)"]


def test_a_storage_path_that_cannot_be_a_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(ConfigError, match=r"^params.yaml: search.storage: cannot create \S+/a_file/ray \(.+\)$"):
        check_storage(tmp_path / "a_file" / "ray")
    check_storage(tmp_path / "ray_results" / "nested")  # a folder that can be made is made
    assert (tmp_path / "ray_results" / "nested").is_dir()
