"""The registry as users meet it: `dvc repro` (the shared `finished` project) -> champion with lineage ->
`medtune predict` on DICOM, and a real tracking server -> `mlflow models serve` answering JSON over HTTP.
Loopback only."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from tests.integration._proc import run, tool_env
from tests.integration._project import N_FINISHED_IMAGES, Finished
from tests.integration.mlflow_server import free_port

from medtune.data.sample import write_synthetic
from medtune.models.nets import NetSpec, build_net
from medtune.predict import predict_files
from medtune.tracking.loading import load_registered
from medtune.tracking.pyfunc import predictions_frame, write_model_files
from medtune.tracking.registry import log_and_register, promote
from medtune.tracking.sweep_log import ensure_experiment

NAME = "medtune-classifier"


@contextlib.contextmanager
def serving(cmd: list[str], port: int, cwd: Path, env: dict[str, str], log: Path,
            timeout: float = 120) -> Iterator[float]:
    """Start a server in its own process group, wait for /health, yield its start-up seconds, stop it all."""
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"{cmd[:3]} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
            if time.perf_counter() - started > timeout:
                raise AssertionError(f"{cmd[:3]} not up after {timeout}s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield time.perf_counter() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)  # a throwaway server: no need for a long graceful shutdown
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
@pytest.mark.ray
def test_repro_registers_champion_with_lineage_and_predict_matches_training(finished: Finished,
                                                                            tmp_path: Path) -> None:
    project = finished.path
    promotion = json.loads((project / "reports/promotion.json").read_text())
    assert promotion["promoted"] and promotion["reason"].startswith("no champion yet")
    client = MlflowClient(f"sqlite:///{project / 'mlruns.db'}")
    tags = client.get_model_version_by_alias(NAME, "champion").tags
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    raw_md5 = next(d["md5"] for d in lock["ingest"]["deps"] if d["path"] == "data/raw")
    splits_md5 = next(o["md5"] for o in lock["split"]["outs"] if o["path"] == "data/splits/splits.json")
    best = json.loads((project / "reports/tune/best.json").read_text())
    assert tags["medtune.data_hash"] == raw_md5 and tags["medtune.splits_md5"] == splits_md5
    assert tags["medtune.git_commit"] == finished.commit and tags["medtune.split_hash"] == best["split_hash"]
    assert tags["medtune.sweep_run_id"] == best["sweep_run_id"] and tags["medtune.trial_id"] == best["trial_id"]
    assert float(tags["medtune.val_auroc"]) == pytest.approx(promotion["val_value"], abs=1e-6)
    assert len(tags["medtune.params_hash"]) == 16 and "medtune.lineage_note" not in tags

    # The project's raw folder (its images, a DICOM without pixels, a text file) and a broken file elsewhere.
    (tmp_path / "incoming").mkdir()
    broken = tmp_path / "incoming/broken.dcm"
    broken.write_bytes(b"DICM but not really")
    run(["medtune", "predict", "data/raw", str(broken.parent), "--out", str(tmp_path / "preds.csv")], project)
    preds = pd.read_csv(tmp_path / "preds.csv")
    reasons = preds.set_index("path")["reason"]
    assert len(preds) == N_FINISHED_IMAGES + 3 and reasons[str(broken)] == "not_dicom"
    assert reasons["data/raw/extra/nopix.dcm"] == "no_pixel_data" and reasons["data/raw/extra/notes.txt"] == "not_dicom"
    written = (tmp_path / "preds.csv").read_text()
    assert not [m for m in finished.markers if m in written]  # planted PHI stays out of predictions

    # predict's decode of each raw file == the preprocess stage's row for it, so the scores agree.
    manifest = pd.read_parquet(project / "data/interim/manifest.parquet")
    images = np.load(project / "data/processed/images.npy").astype(np.float32) / 255  # the uint8 store
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns.db'}")
    frame = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(images)
    frame.index = "data/raw/" + manifest["path"]
    ok = preds[preds["status"] == "ok"].set_index("path")
    assert len(ok) == N_FINISHED_IMAGES
    assert np.allclose(ok["prob_abnormal"], frame.loc[ok.index, "prob_abnormal"], atol=1e-5)
    assert (ok["predicted"] == frame.loc[ok.index, "predicted"]).all()


@pytest.mark.cluster
def test_remote_tracking_server_predict_and_models_serve(tmp_path: Path, hmac_key: bytes) -> None:
    port, env = free_port(), tool_env()
    tracking = f"http://127.0.0.1:{port}"
    server = ["mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
              "--artifacts-destination", str(tmp_path / "server-artifacts"), "--host", "127.0.0.1",
              "--port", str(port), "--workers", "1"]
    with serving(server, port, tmp_path, env, tmp_path / "server.log"):
        mlflow.set_tracking_uri(tracking)
        client = MlflowClient(tracking)
        experiment_id = ensure_experiment(client, "remote", str(tmp_path / "unused"))
        spec = NetSpec(depth=2, width=4)
        meta = {"preprocess": {"image_size": 16, "window": "header", "percentiles": [0.5, 99.5], "channels": 1,
                               "frames": "middle", "resize": "pad", "bits": 8},
                "task": {"kind": "binary", "names": ["abnormal", "normal"]}, "threshold": 0.4}
        artifacts = write_model_files(tmp_path / "model", spec.to_dict(), build_net(spec).state_dict(), meta)
        run_id = client.create_run(experiment_id).info.run_id
        out = predictions_frame(np.array([0.2, 0.7]), meta["task"], 0.4)
        version = log_and_register(NAME, run_id, artifacts, np.zeros((2, 1, 16, 16), np.float32), out,
                                   {"medtune.split_hash": "s", "medtune.val_auroc": "0.8"})
        promote(NAME, version, "auroc", 0.8, "s", 0.0)

        write_synthetic(tmp_path / "raw", tmp_path / "labels.csv", n_patients=3, images_per_patient=2,
                        image_size=16, seed=1)
        loaded = load_registered(f"models:/{NAME}@champion", tracking)
        preds = predict_files([tmp_path / "raw"], loaded, hmac_key)
        assert (preds["status"] == "ok").all() and len(preds) == 6

        serve_port = free_port()
        serve = ["mlflow", "models", "serve", "-m", f"models:/{NAME}@champion", "--env-manager", "local",
                 "--host", "127.0.0.1", "-p", str(serve_port), "-w", "1"]
        x = np.random.default_rng(0).random((3, 1, 16, 16), dtype=np.float32)
        with serving(serve, serve_port, tmp_path, {**env, "MLFLOW_TRACKING_URI": tracking},
                     tmp_path / "serve.log") as startup:
            request = urllib.request.Request(
                f"http://127.0.0.1:{serve_port}/invocations", data=json.dumps({"inputs": x.tolist()}).encode(),
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                served = pd.DataFrame(json.loads(answer.read())["predictions"])
        print(f"models serve startup {startup:.1f}s")
        expected = loaded.model.predict(x)
        assert list(served.columns) == list(expected.columns)
        assert np.allclose(served["prob_normal"], expected["prob_normal"], atol=1e-6)
        assert (served["predicted"] == expected["predicted"]).all()
