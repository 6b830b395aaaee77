"""Loading a registered model back: only versions medtune registered, checked by tag before the download
and by meta.json after it, so a foreign pyfunc is refused before any of its code is unpickled."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from medtune.errors import MedtuneError
from medtune.tracking.pyfunc import FORMAT
from medtune.tracking.registry import FORMAT_TAG
from medtune.tracking.sweep_log import check_server


@dataclass
class LoadedModel:
    """A pyfunc this pipeline registered, with its meta.json and where it came from."""

    model: Any
    meta: dict[str, Any]
    uri: str
    version: str | None


def _registered_version(uri: str) -> str | None:
    """For models:/name@alias or models:/name/N: check the version is tagged as ours; its number."""
    if not uri.startswith("models:/"):
        return None
    name, sep, alias = uri.removeprefix("models:/").partition("@")
    client = MlflowClient()
    try:
        if sep:
            found = client.get_model_version_by_alias(name, alias)
        elif "/" in name and name.rsplit("/", 1)[1].isdigit():
            found = client.get_model_version(*name.rsplit("/", 1))
        else:
            return None
    except MlflowException:
        raise MedtuneError(f"{uri}: no such registered model version or alias at {client.tracking_uri}; "
                           "run the promote stage (dvc repro) or pass --model") from None
    if found.tags.get(FORMAT_TAG) != FORMAT:
        raise MedtuneError(f"{uri}: v{found.version} was not registered by medtune ({FORMAT_TAG}="
                           f"{found.tags.get(FORMAT_TAG)!r}, expected {FORMAT!r}); refusing to load it")
    return str(found.version)


def _read_meta(local: Path, uri: str) -> dict[str, Any]:
    """meta.json of a downloaded model, checked before anything in it is unpickled or imported."""
    try:
        conf = Model.load(str(local)).flavors["python_function"]
        meta = json.loads((local / conf["artifacts"]["meta"]["path"]).read_text())
    except Exception:  # noqa: BLE001 - any layout other than ours means "not a medtune model"
        meta = {}
    if meta.get("format") != FORMAT:
        raise MedtuneError(f"{uri}: not a medtune model (meta.json format {meta.get('format')!r}, "
                           f"expected {FORMAT!r}); refusing to load it")
    return meta


def load_registered(uri: str, tracking_uri: str) -> LoadedModel:
    """Load a model this pipeline registered; anything else is refused before it is loaded."""
    store = tracking_uri.removeprefix("sqlite:///")
    if tracking_uri.startswith("sqlite:///") and not Path(store).is_file():  # MLflow would create an empty one
        raise MedtuneError(f"no MLflow store at {store}; run `dvc repro` here, or pass --tracking-uri "
                           "(or set MLFLOW_TRACKING_URI)")
    check_server(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)  # models:/ URIs and artifact downloads read the global URI
    version = _registered_version(uri)
    # Fetch the version that was checked, even if the alias moves meanwhile.
    fetch = f"models:/{uri.removeprefix('models:/').partition('@')[0]}/{version}" if "@" in uri else uri
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=fetch))
    except (MlflowException, OSError) as exc:
        raise MedtuneError(f"{uri}: cannot be downloaded from {tracking_uri} "
                           f"({str(exc).splitlines()[0][:200]})") from None
    meta = _read_meta(local, uri)
    return LoadedModel(mlflow.pyfunc.load_model(str(local)), meta, uri, version)
