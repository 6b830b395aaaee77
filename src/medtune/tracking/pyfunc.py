"""The registered model: a pyfunc around a state_dict, its NetSpec, task, preprocessing, and what promote
chose on validation (threshold, calibration, test-time augmentation), applied wherever it scores.

Lighter and safer than `mlflow.pytorch.log_model` (docs/architecture.md, decisions): the weights load with
`torch.load(weights_only=True)`, so the tensors never run pickled code, and `unwrap_python_model().net`
is the plain torch `nn.Module` for anyone who wants the network itself (Grad-CAM, fine-tuning).
Inference imports only `medtune.models.nets` and torch, never Lightning, Ray or the data stack, so a
served model starts fast and needs three packages (registry.PIP_REQUIREMENTS).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch

from medtune.jsonio import atomic_path, write_json
from medtune.models.inference import calibrate, load_net, member_specs, predict_proba
from medtune.task import Task

WEIGHTS = "weights.pt"
META = "meta.json"
# Written into meta.json and tagged on every version; loaders refuse models without it (predict.py).
FORMAT = "medtune-pyfunc/2"  # 2: Network(norm, body) layout, MONAI backbones, uint8 store


def model_meta(preprocess: dict[str, Any], task: Task, inference: dict[str, Any], best: dict[str, Any],
               split_hash: str) -> dict[str, Any]:
    """What a registered model carries besides its weights: the preprocessing that made its input (with
    `auto` resolved, so predict decodes new files the same way), its task (binary: names[1] is the positive
    class the probabilities and the threshold are about), what promote chose on validation (`threshold`,
    `calibration`, `tta`: `medtune.evaluate.selection.Choice.inference`), and its trial."""
    return {"preprocess": preprocess, "task": task.to_dict(), **inference,
            "trial_id": best["trial_id"], "train": best["train"], "split_hash": split_hash}


def write_model_files(out_dir: Path, net: dict, state_dict: dict, meta: dict[str, Any]) -> dict[str, str]:
    """Write the two artifacts a MedtuneModel loads; returns the pyfunc `artifacts` mapping."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / WEIGHTS) as tmp:
        torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, tmp)
    write_json(out_dir / META, {"format": FORMAT, "net": net, **meta})
    return {"weights": str(out_dir / WEIGHTS), "meta": str(out_dir / META)}


def predictions_frame(out: np.ndarray, task: dict[str, Any], threshold: Any) -> pd.DataFrame:
    """One row per image, by task: `prob_<class>` and the `predicted` class (binary: at the stored
    threshold; multiclass: the most probable), `prob_<label>` and `pred_<label>` 0/1 at each label's
    threshold (multilabel), or the `predicted` value (regression)."""
    kind, names = task["kind"], list(task["names"])
    if kind == "regression":
        return pd.DataFrame({"predicted": np.asarray(out, dtype=float).ravel()})
    if kind == "binary":  # out is P(names[1])
        frame = pd.DataFrame({f"prob_{names[0]}": 1 - out, f"prob_{names[1]}": out})
        frame["predicted"] = np.where(out >= float(threshold), names[1], names[0])
        return frame
    frame = pd.DataFrame({f"prob_{c}": out[:, i] for i, c in enumerate(names)})
    if kind == "multiclass":
        frame["predicted"] = [names[i] for i in out.argmax(axis=1)]
        return frame
    for i, c in enumerate(names):
        frame[f"pred_{c}"] = (out[:, i] >= float(np.ravel(threshold)[i])).astype(int)
    return frame


class MedtuneModel(mlflow.pyfunc.PythonModel):
    """Input: float32 images (N, C, S, S) in [0, 1], preprocessed as `meta["preprocess"]` says.

    `medtune predict` turns DICOM files into that input with the training decode chain.
    """

    # The tensor signature logged with the model is the input contract; without this MLflow wants
    # list[...] type hints on predict and warns on every import.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        self.meta = json.loads(Path(context.artifacts["meta"]).read_text())
        state = torch.load(context.artifacts["weights"], weights_only=True, map_location="cpu")
        self.net = load_net(self.meta["net"], state, int(self.meta.get("members", 0)))  # members: an ensemble

    def raw_outputs(self, images: Any) -> np.ndarray:
        """The network's probabilities (or values) for float images in [0, 1], before calibration (with
        test-time augmentation when promote chose it)."""
        size = self.meta["preprocess"]["image_size"]
        channels = member_specs(self.meta["net"])[0]["in_channels"]
        return predict_proba(self.net, np.asarray(images, dtype=np.float32).reshape(-1, channels, size, size),
                             tta=bool(self.meta.get("tta", False)))

    def outputs(self, images: Any) -> np.ndarray:
        """Calibrated probabilities (classification) or values (regression): what the threshold is about."""
        return calibrate(self.raw_outputs(images), self.meta["task"]["kind"], self.meta.get("calibration"))

    def predict(self, context, model_input, params=None):
        return predictions_frame(self.outputs(model_input), self.meta["task"], self.meta["threshold"])
