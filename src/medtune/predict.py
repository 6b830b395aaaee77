"""`medtune predict`: DICOM files or folders in, one CSV row per file out, scored by a registered model.

Each file goes through the training decode chain (`read_dicom` -> `decode_channels` -> `resize`) with the
preprocessing settings stored in the model, so a prediction sees exactly what training saw. A file that
cannot be used becomes a row with status `rejected` and a reason code, never a crash. Rows carry an HMAC
of the SOPInstanceUID (`instance_key`) and the path as the user gave it; no header value leaves here.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medtune.config import BaseCfg, RegistryCfg, load_params
from medtune.data.dicom import RejectedFile, identifiers, read_dicom
from medtune.data.limits import FileLimits, check_file_size, check_size
from medtune.data.phi import hash_id
from medtune.data.preprocess import decode_sample
from medtune.data.store import quantize
from medtune.errors import MedtuneError
from medtune.tracking.loading import LoadedModel
from medtune.tracking.registry import CHAMPION

OK, REJECTED = "ok", "rejected"
LIMITS = FileLimits()  # ingest's default size limits (implausible_size); predict decodes in this process
BATCH = 256


def default_target(params_path: Path) -> tuple[str, str]:
    """(tracking URI, champion model URI) from params.yaml when present; MLFLOW_TRACKING_URI wins."""
    if params_path.is_file():
        params = load_params(params_path)
        return params.tracking_uri, f"models:/{params.registry.model_name}@{CHAMPION}"
    return (os.environ.get("MLFLOW_TRACKING_URI") or BaseCfg().tracking_uri,
            f"models:/{RegistryCfg().model_name}@{CHAMPION}")


def collect_files(inputs: Iterable[Path]) -> list[Path]:
    """Every file named, and every file under a named folder (any depth), in a stable order."""
    inputs, files = [Path(p) for p in inputs], []
    for path in inputs:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise MedtuneError(f"{path}: no such file or folder")
    if not files:
        raise MedtuneError(f"no files found under {', '.join(map(str, inputs))}")
    return files


def prepare(path: Path, preprocess: dict[str, Any], key: bytes) -> tuple[np.ndarray | None, dict[str, str]]:
    """One file -> (float32 (C, S, S) image or None, row with path, hashed instance key, status, reason).
    Multi-frame files are scored on their middle frame."""
    row = {"path": str(path), "instance_key": "", "status": OK, "reason": ""}
    # Read before the try: a model without these settings is a bug to surface, not a file to reject.
    size, window, percentiles = int(preprocess["image_size"]), preprocess["window"], tuple(preprocess["percentiles"])
    channels, mode, bits = int(preprocess["channels"]), preprocess["resize"], int(preprocess["bits"])
    try:
        check_file_size(path, LIMITS)
        ds = read_dicom(path)
        check_size(ds, LIMITS)  # a header bomb is refused before the decoder allocates it
        uid, _patient = identifiers(ds)  # hashed at once; the raw values go no further
        row["instance_key"] = hash_id(uid, key) if uid else ""
        # The decode chain and store round trip of the preprocess stage: exactly the pixels training saw.
        return quantize(decode_sample(ds, size, window, percentiles, channels, mode), bits), row
    except RejectedFile as exc:
        reason = exc.reason
    except Exception:  # noqa: BLE001 - a file that breaks a decoder is reported, not fatal
        reason = "decode_error"
    return None, row | {"status": REJECTED, "reason": reason}


def predict_files(inputs: Iterable[Path], loaded: LoadedModel, key: bytes, batch: int = BATCH) -> pd.DataFrame:
    """One row per input file: status/reason and the model's columns for its task (pyfunc.predictions_frame:
    class probabilities and the call at the stored threshold(s), or the predicted value)."""
    files = collect_files(inputs)
    frames, shown = [], time.monotonic()
    for start in range(0, len(files), batch):
        images, rows = [], []
        for path in files[start:start + batch]:
            image, row = prepare(path, loaded.meta["preprocess"], key)
            rows.append(row)
            if image is not None:
                images.append(image)
        table = pd.DataFrame(rows)
        if images:
            scored = loaded.model.predict(np.stack(images))
            scored.index = table.index[table["status"] == OK]
            table = table.join(scored)
        frames.append(table)
        if time.monotonic() - shown > 2:
            print(f"predict: {min(start + batch, len(files))}/{len(files)} files", file=sys.stderr)
            shown = time.monotonic()
    out = pd.concat(frames, ignore_index=True)
    out["model"] = loaded.uri if loaded.version is None else f"{loaded.uri} (v{loaded.version})"
    return out


def summary(frame: pd.DataFrame, out: Path) -> str:
    """One line for the terminal: counts, reasons of rejected files, where the CSV went."""
    bad = frame.loc[frame["status"] == REJECTED, "reason"].value_counts()
    reasons = f" ({', '.join(f'{k} {v}' for k, v in bad.items())})" if len(bad) else ""
    return (f"predict: {len(frame)} files -> {out}: {int((frame['status'] == OK).sum())} scored, "
            f"{int(bad.sum())} rejected{reasons}; model {frame['model'].iloc[0]}")
