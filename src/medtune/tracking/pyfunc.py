"""The registered model: a pyfunc around a state_dict, its NetSpec, preprocessing and threshold.

Lighter and safer than `mlflow.pytorch.log_model` (DESIGN.md): the weights load with
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
from medtune.models.inference import load_net, predict_proba

WEIGHTS = "weights.pt"
META = "meta.json"
# Written into meta.json and tagged on every version; loaders refuse models without it (predict.py).
FORMAT = "medtune-pyfunc/1"


def write_model_files(out_dir: Path, net: dict, state_dict: dict, meta: dict[str, Any]) -> dict[str, str]:
    """Write the two artifacts a MedtuneClassifier loads; returns the pyfunc `artifacts` mapping."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / WEIGHTS) as tmp:
        torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, tmp)
    write_json(out_dir / META, {"format": FORMAT, "net": net, **meta})
    return {"weights": str(out_dir / WEIGHTS), "meta": str(out_dir / META)}


def predictions_frame(prob: np.ndarray, class_names: list[str], threshold: float) -> pd.DataFrame:
    """One row per image: a probability column per class and the label at the stored threshold."""
    if prob.ndim == 1:  # binary: prob is P(class 1)
        frame = pd.DataFrame({f"prob_{class_names[0]}": 1 - prob, f"prob_{class_names[1]}": prob})
        frame["predicted"] = np.where(prob >= threshold, class_names[1], class_names[0])
    else:
        frame = pd.DataFrame({f"prob_{c}": prob[:, i] for i, c in enumerate(class_names)})
        frame["predicted"] = [class_names[i] for i in prob.argmax(axis=1)]
    return frame


class MedtuneClassifier(mlflow.pyfunc.PythonModel):
    """Input: float32 images (N, C, S, S) in [0, 1], preprocessed as `meta["preprocess"]` says.

    `medtune predict` turns DICOM files into that input with the training decode chain.
    """

    # The tensor signature logged with the model is the input contract; without this MLflow wants
    # list[...] type hints on predict and warns on every import.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        self.meta = json.loads(Path(context.artifacts["meta"]).read_text())
        state = torch.load(context.artifacts["weights"], weights_only=True, map_location="cpu")
        self.net = load_net(self.meta["net"], state)

    def predict(self, context, model_input, params=None):
        size, channels = self.meta["preprocess"]["image_size"], self.meta["net"]["in_channels"]
        x = np.asarray(model_input, dtype=np.float32).reshape(-1, channels, size, size)
        prob = predict_proba(self.net, x)
        return predictions_frame(prob, self.meta["class_names"], self.meta["threshold"])
