"""Racing runs on one project, with real second processes: two `medtune promote` at once leave one champion
on record and an unbroken alias history; two `medtune test` at once score the test split exactly once and
the other refuses with one line (exit 2)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tests.integration._proc import run, tool_env

from medtune.locks import LOCKS, exclusive
from medtune.tracking.registry import alias_history

pytestmark = [pytest.mark.slow, pytest.mark.ray]

MODEL = "medtune-classifier"


def at_once(project: Path, *args: str) -> list[tuple[subprocess.CompletedProcess, float, float]]:
    """Start two `medtune <args>` processes together; (result, start, end) of each."""
    procs = [(subprocess.Popen(["medtune", *args], cwd=project, env=tool_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True), time.monotonic()) for _ in range(2)]
    out = []
    for proc, started in procs:
        stdout, stderr = proc.communicate(timeout=900)
        out.append((subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), started,
                    time.monotonic()))
    return out


def test_racing_promotes_and_tests(project: Path) -> None:
    run(["dvc", "repro", "promote"], project)
    client = MlflowClient(f"sqlite:///{project / 'mlruns.db'}")

    promotes = at_once(project, "promote")
    assert [r.returncode for r, _, _ in promotes] == [0, 0], [r.stderr[-2000:] for r, _, _ in promotes]
    assert max(s for _, s, _ in promotes) < min(e for _, _, e in promotes)  # they really overlapped
    champion = client.get_model_version_by_alias(MODEL, "champion")
    versions = client.search_model_versions(f"name='{MODEL}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3]
    on_record = [str(v.version) for v in versions
                 if "medtune.champion_since" in v.tags and "medtune.champion_until" not in v.tags]
    assert on_record == [str(champion.version)]
    # Each champion move starts where the previous one ended: the second promote gated against the first's
    # result, not against the champion both saw when they started.
    moves = [m for m in alias_history(client, MODEL) if m["alias"] == "champion"]
    assert [m["from"] for m in moves[1:]] == [m["version"] for m in moves[:-1]]
    assert moves[-1]["version"] == str(champion.version)
    assert json.loads((project / "reports/promotion.json").read_text())["champion"] == str(champion.version)

    # While another `medtune test` holds the project's lock, a second one refuses at once, with one line.
    with exclusive(project / LOCKS / "test.lock", "`medtune test`"):
        refused = run(["medtune", "test"], project, check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert refused.stderr.startswith("error: `medtune test` is already running in this project")
    assert not (project / "reports/test/ledger.json").exists()  # nothing was scored

    tests = at_once(project, "test")
    codes = sorted(r.returncode for r, _, _ in tests)
    assert codes == [0, 2], [r.stderr[-2000:] for r, _, _ in tests]
    loser = next(r for r, _, _ in tests if r.returncode == 2)
    assert len(loser.stderr.strip().splitlines()) == 1 and loser.stderr.startswith("error: ")
    assert "already running" in loser.stderr or "already scored" in loser.stderr
    entries = json.loads((project / "reports/test/ledger.json").read_text())["entries"]
    assert [e["model_version"] for e in entries] == [str(champion.version)]
    experiment = client.get_experiment_by_name("medtune")
    test_runs = client.search_runs([experiment.experiment_id], filter_string="tags.`medtune.kind` = 'test'")
    assert len(test_runs) == 1
