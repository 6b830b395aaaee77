"""The `medtune` command: user mistakes end in one `error:` line and exit status 2, nothing deeper."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from medtune.cli import app

ROOT = Path(__file__).resolve().parents[2]


def params_file(tmp_path: Path, **sections: dict) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, values in sections.items():
        params[name].update(values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("command, sections, expected", [
    (["tune"], {"train": {"optimizer": "adamm"}},
     "error: params.yaml: train.optimizer: 'adamm' is not one of sgd, sgd_momentum, rmsprop"),
    (["tune"], {"train": {"lr": -1}}, "error: params.yaml: train.lr: -1.0 must be > 0"),
    (["ingest"], {"ingest": {"raw_dir": "no/such/dir"}},
     "error: params.yaml: ingest.raw_dir: directory 'no/such/dir' does not exist"),
])
def test_bad_params_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str],
                             sections: dict, expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [*command, "--params", str(params_file(tmp_path, **sections))])
    assert result.exit_code == 2
    assert result.stderr.startswith(expected)
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_labels_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw").mkdir()
    path = params_file(tmp_path, ingest={"raw_dir": "raw", "labels": "labels.csv"})
    result = CliRunner().invoke(app, ["ingest", "--params", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: params.yaml: ingest.labels: path 'labels.csv' does not exist"


def test_stage_before_its_inputs_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["promote", "--params", str(params_file(tmp_path))])
    assert result.exit_code == 2
    assert "reports/tune/best.json: not found; run the stage that writes the best trial" in result.stderr


def test_rescore_needs_a_reason(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["test", "--rescore", "--params", str(params_file(tmp_path))])
    assert result.exit_code == 2
    assert "--rescore needs --reason" in result.stderr


def test_sample_data_synthetic_then_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEDTUNE_HMAC_KEY", "cli-test")
    runner = CliRunner()
    made = runner.invoke(app, ["sample-data", "--out", "data/raw", "--labels", "data/labels.csv",
                               "--patients", "8"])
    assert made.exit_code == 0, made.output
    done = runner.invoke(app, ["ingest", "--params", str(params_file(tmp_path, ingest={"workers": 1}))])
    assert done.exit_code == 0, done.output
    assert "scanned 24 = accepted 24 + rejected 0" in done.stdout
    assert (tmp_path / "data/interim/manifest.parquet").is_file()
