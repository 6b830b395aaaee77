"""The README's commands run as written: "Use your own data" on a tiny DICOM cohort in a fresh clone.

The clone is what a user has after `git clone` + `make install`: this checkout's files (what git would
give them) committed to a new repository, and `.venv` (a link to this checkout's). The test plays the
user's part where the README speaks rather than shows a command: it writes the cohort into `data/raw` and
`data/labels.csv` (step 1) and edits `params.yaml` (step 2) with the integration suite's speed overrides
(`TINY` in tests/integration/_project.py: 16 px images, 2 trials of 1 epoch) so the real `dvc repro`
takes minutes. Every command inside the section's ```bash blocks then runs verbatim, in one shell.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from tests.integration._proc import run, tool_env
from tests.integration._project import TINY, merge

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent  # the venv running the tests: `make install`'s .venv
GIT_USER = {"GIT_AUTHOR_NAME": "readme test", "GIT_AUTHOR_EMAIL": "readme@test.invalid",
            "GIT_COMMITTER_NAME": "readme test", "GIT_COMMITTER_EMAIL": "readme@test.invalid"}
# Commands that start a server and wait: they cannot run inside a test as written.
SERVERS = ("mlflow ui", "mlflow models serve")


def readme_section(heading: str) -> str:
    """The text of one `## heading` section of README.md."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def code_blocks(section: str, language: str) -> list[str]:
    """The ```language blocks of a section, dedented (blocks inside list items are indented)."""
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```", section, flags=re.S | re.M)
    return ["\n".join(line[len(indent):] for line in body.splitlines()) for indent, body in blocks]


def fresh_clone(dest: Path) -> Path:
    """This checkout's files (tracked, plus new ones git would not ignore) in a new repo with one commit."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():  # a file deleted but not yet committed is listed too
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    (dest / ".venv").symlink_to(VENV)
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "clone"], dest, env=GIT_USER)
    return dest


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run README lines in one bash: stop at the first failing command, as a careful user would."""
    return run(["bash", "-c", "set -eo pipefail\n" + script], cwd, env=GIT_USER, timeout=1800)


def test_use_your_own_data_runs_as_written(tmp_path: Path) -> None:
    from medtune.data.sample import write_synthetic

    clone = fresh_clone(tmp_path / "medtune")
    write_synthetic(clone / "data/raw", clone / "data/labels.csv", n_patients=24, images_per_patient=2,
                    image_size=16, seed=3)  # step 1
    params = merge(yaml.safe_load((clone / "params.yaml").read_text()), TINY)  # step 2
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    blocks = code_blocks(readme_section("Use your own data"), "bash")
    assert len(blocks) == 3 and "dvc repro" in blocks[1] and "git commit" in blocks[2]
    out = bash("\n".join(blocks), clone).stdout

    # Ingest said which class is positive and what `auto` would choose; split warned about tiny val/test.
    assert "positive class (target 1): 'abnormal' (inferred from the label names" in out
    assert "ingest: window: params header, recommended header (CR: most files carry a window" in out
    assert "ingest: image_size: params 16, recommended 32 (images' median shorter side 16 px" in out
    assert "split: WARNING: val has" in out and "rest on very few patients" in out
    metrics = json.loads((clone / "reports/test/metrics.json").read_text())
    assert 0 <= metrics["auroc"] <= 1 and "test confidence interval" in metrics["warning"]
    version = MlflowClient(f"sqlite:///{clone / 'mlruns.db'}").get_model_version_by_alias(
        "medtune-classifier", "champion")
    assert version.tags["medtune.positive_label"] == "abnormal"

    # After step 4 nothing is left neither committed nor ignored; file names and patient pictures are
    # in DVC's cache, not in git.
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], clone).stdout
    assert status == "", status
    tracked = run(["git", "ls-files", "reports", "data"], clone).stdout.split()
    assert {"reports/test/metrics.json", "reports/split/summary.json", "reports/tune/summary.json",
            "data/raw.dvc", "data/labels.csv.dvc"} <= set(tracked)
    assert "reports/ingest/rejected.csv" not in tracked and "reports/test/gradcam.png" not in tracked
    assert (clone / "reports/ingest/rejected.csv").is_file() and not (clone / "data/.gitignore").exists()

    check_other_blocks(clone)


def check_other_blocks(clone: Path) -> None:
    """The README's other blocks that run on one machine: results, registry, predict, Python."""
    after_demo = code_blocks(readme_section("Two commands"), "bash")[1]
    registry, predict = code_blocks(readme_section("The registry"), "bash")[:2]
    runnable = [line for line in (after_demo + "\n" + registry).splitlines() if not line.startswith(SERVERS)]
    out = bash("\n".join(runnable), clone).stdout
    assert "auroc" in out and (clone / "dvc_plots/index.html").is_file() and '"promoted"' in out

    # predict: the user's own new files stand in for new_scans/ and extra.dcm; the remote line needs a server.
    shutil.copytree(clone / "data/raw/p000", clone / "new_scans")
    shutil.copy(clone / "data/raw/p001/img0.dcm", clone / "extra.dcm")
    lines = [line for line in predict.splitlines() if "http://" not in line]
    bash("source .venv/bin/activate\n" + "\n".join(lines), clone)
    assert len((clone / "preds.csv").read_text().splitlines()) == 1 + 2  # the last line wrote new_scans/ only

    python = code_blocks(readme_section("The registry"), "python")[0]
    env = {**tool_env(), **GIT_USER}
    shown = subprocess.run([sys.executable, "-c", python], cwd=clone, env=env, capture_output=True,
                           text=True, timeout=600, check=False)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "prob_abnormal" in shown.stdout and "predicted" in shown.stdout
