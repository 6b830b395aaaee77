"""`medtune predict` on real DICOM against a real SQLite registry: rows, rejects, PHI, refusals, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pydicom
import pytest
from tests._registry import local_store, register_untrained
from typer.testing import CliRunner

from medtune.cli import app
from medtune.data.phi import hash_id
from medtune.data.preprocess import load_sample
from medtune.data.sample import write_dicom
from medtune.errors import MedtuneError
from medtune.models.nets import NetSpec
from medtune.predict import REJECTED, predict_files
from medtune.tracking.loading import load_registered
from medtune.tracking.registry import promote

NAME = "predict-model"
PREPROCESS = {"image_size": 16, "window": "header", "percentiles": [0.5, 99.5], "channels": 1, "frames": "middle",
              "resize": "pad", "bits": 8}


@pytest.fixture
def registry(tmp_path: Path) -> str:
    """A SQLite store holding one medtune champion (untrained net, 16 px, threshold 0.5)."""
    uri, client, experiment_id = local_store(tmp_path, "unit")
    meta = {"preprocess": PREPROCESS, "task": {"kind": "binary", "names": ["abnormal", "normal"]}, "threshold": 0.5}
    version, _ = register_untrained(client, experiment_id, NAME, tmp_path / "model", NetSpec(depth=2, width=4),
                                    meta, {"medtune.split_hash": "s1", "medtune.val_auroc": "0.9"})
    promote(NAME, version, "auroc", 0.9, "s1", 0.0)
    return uri


@pytest.fixture
def folder(tiny_cohort: tuple[Path, Path]) -> Path:
    """The tiny cohort plus four unusable files: truncated DICOM, a text file, a DICOM without pixels, and a
    4 kB file whose header claims 65535 x 65535 pixels."""
    raw, _ = tiny_cohort
    good = raw / "p000/img0.dcm"
    (raw / "bad").mkdir()
    (raw / "bad/truncated.dcm").write_bytes(good.read_bytes()[:-100])
    (raw / "bad/notes.txt").write_text("not an image\n")
    write_dicom(raw / "bad/nopixels.dcm", np.zeros((4, 4), np.uint16), "P1", "Acme", extra={"PixelData": None})
    bomb = {"Rows": 65535, "Columns": 65535}
    write_dicom(raw / "bad/bomb.dcm", np.zeros((4, 4), np.uint16), "P1", "Acme", extra=bomb)
    return raw


def test_folder_with_bad_files_gives_one_row_each(registry: str, folder: Path, hmac_key: bytes) -> None:
    loaded = load_registered(f"models:/{NAME}@champion", registry)
    frame = predict_files([folder], loaded, hmac_key, batch=7)  # several batches, rejects in between
    assert len(frame) == 24
    bad = frame[frame["status"] == REJECTED].set_index("path")["reason"].to_dict()
    assert bad == {str(folder / "bad/truncated.dcm"): "truncated_pixel_data",
                   str(folder / "bad/notes.txt"): "not_dicom", str(folder / "bad/nopixels.dcm"): "no_pixel_data",
                   str(folder / "bad/bomb.dcm"): "implausible_size"}
    assert frame.loc[frame["status"] == REJECTED, "prob_normal"].isna().all()
    ok = frame[frame["status"] == "ok"].set_index("path")
    assert len(ok) == 20 and np.allclose(ok["prob_abnormal"] + ok["prob_normal"], 1.0)
    assert set(ok["predicted"]) <= {"abnormal", "normal"}
    assert (frame["model"] == f"models:/{NAME}@champion (v1)").all()

    # Same decode chain and store round trip as training: what the preprocess stage stored for this file.
    path = folder / "p003/img1.dcm"
    stored, _ = load_sample(path, 16, "header", (0.5, 99.5), channels=1, resize_mode="pad", bits=8)
    expected = loaded.model.predict(stored[None].astype(np.float32) / 255)
    assert ok.loc[str(path), "prob_normal"] == pytest.approx(expected["prob_normal"].iloc[0], abs=1e-6)

    # The instance key is the HMAC of SOPInstanceUID; the UID itself appears nowhere.
    uid = str(pydicom.dcmread(path).SOPInstanceUID)
    assert ok.loc[str(path), "instance_key"] == hash_id(uid, hmac_key)
    assert uid not in frame.to_csv()


def test_refuses_models_medtune_did_not_register(registry: str, tmp_path: Path) -> None:
    class Plain(mlflow.pyfunc.PythonModel):
        _skip_type_hint_validation = True

        def predict(self, context, model_input, params=None):
            return model_input

    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="plain", python_model=Plain(), registered_model_name="other")
    with pytest.raises(MedtuneError, match="was not registered by medtune"):
        load_registered("models:/other/1", registry)
    with pytest.raises(MedtuneError, match="not a medtune model"):
        load_registered(info.model_uri, registry)
    with pytest.raises(MedtuneError, match="no such registered model version or alias"):
        load_registered(f"models:/{NAME}@nope", registry)


def test_cli_writes_csv_and_gives_one_line_errors(registry: str, folder: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEDTUNE_HMAC_KEY", "cli-test-key")
    single = tmp_path / "one.dcm"
    shutil.copy(folder / "p001/img0.dcm", single)
    out = tmp_path / "out/preds.csv"
    args = ["predict", str(folder / "p000"), str(single), "--model", f"models:/{NAME}@champion",
            "--tracking-uri", registry, "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 files" in result.stdout and "3 scored, 0 rejected" in result.stdout
    table = pd.read_csv(out)
    assert list(table.columns) == ["path", "instance_key", "status", "reason", "prob_abnormal", "prob_normal",
                                   "predicted", "model"]
    assert table["path"].tolist()[-1] == str(single)

    missing = CliRunner().invoke(app, ["predict", "no/such.dcm", "--tracking-uri", registry,
                                       "--model", f"models:/{NAME}@champion"])
    assert missing.exit_code == 2 and missing.stderr == "error: no/such.dcm: no such file or folder\n"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri exports it
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    no_store = CliRunner().invoke(app, ["predict", str(single)])  # no params.yaml, no mlruns.db here
    assert no_store.exit_code == 2 and no_store.stderr.startswith("error: no MLflow store at mlruns.db")
    assert not (tmp_path / "elsewhere/mlruns.db").exists()
