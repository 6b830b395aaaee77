"""`medtune` command: one sub-command per DVC stage plus sample-data and predict.

Commands parse options and call one library function; a user-caused error (MedtuneError) is printed
as one line and exits with status 2, never as a traceback.
"""

from __future__ import annotations

import atexit
import functools
import gc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from medtune.config import load_params
from medtune.errors import MedtuneError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="DICOM -> DVC -> Ray Tune + Optuna -> MLflow registry -> test once.")
ParamsOpt = typer.Option(Path("params.yaml"), "--params", "-p", help="params.yaml to read")


def one_line_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn MedtuneError into `error: ...` on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MedtuneError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper


@app.command("sample-data")
@one_line_errors
def sample_data(out: Path = typer.Option(Path("data/raw"), help="folder for the DICOM files"),
                labels: Path = typer.Option(Path("data/labels.csv"), help="labels CSV to write"),
                npz: Path | None = typer.Option(None, help="MedMNIST-format .npz to convert"),
                limit: int | None = typer.Option(None, help="at most this many images per split (npz)"),
                patients: int = typer.Option(60, help="synthetic cohort: number of patients"),
                seed: int = typer.Option(0, help="synthetic cohort: seed"),
                task: str = typer.Option("binary", help="synthetic cohort: binary | multiclass | multilabel "
                                         "| regression"),
                label_noise: float = typer.Option(0.0, help="synthetic binary cohort: fraction of patients "
                                                  "labelled against their images (a weak signal)")) -> None:
    """Write a sample DICOM cohort and its labels.csv (from a MedMNIST .npz, else synthetic)."""
    from medtune.data.sample import write_from_npz, write_synthetic

    if npz is not None:
        if not npz.is_file():
            raise MedtuneError(f"--npz: file '{npz}' does not exist")
        n = write_from_npz(npz, out, labels, limit=limit)
        print(f"sample-data: {n} DICOM files from {npz.name} (official train/val/test kept in labels.csv)")
    else:
        n = write_synthetic(out, labels, n_patients=patients, seed=seed, task=task, label_noise=label_noise)
        print(f"sample-data: {n} synthetic DICOM files ({patients} patients, {task}) in {out}")


@app.command()
@one_line_errors
def ingest(params: Path = ParamsOpt) -> None:
    """Read every raw file; write the manifest, rejected.csv and the dataset fingerprint."""
    from medtune.pipeline import ingest as stage

    stage.run(load_params(params))


@app.command()
@one_line_errors
def preprocess(params: Path = ParamsOpt) -> None:
    """Decode accepted files once into data/processed/images.npy + index.parquet."""
    from medtune.pipeline import preprocess as stage

    stage.run(load_params(params))


@app.command()
@one_line_errors
def split(params: Path = ParamsOpt) -> None:
    """Patient-level train/val/test split with leakage checks."""
    from medtune.pipeline import split as stage

    stage.run(load_params(params))


@app.command()
@one_line_errors
def tune(params: Path = ParamsOpt,
         resume: bool = typer.Option(True, "--resume/--fresh",
                                     help="resume an interrupted sweep of the same inputs (default)"),
         verbose: bool = typer.Option(False, "--verbose", "-v",
                                      help="Ray's tables, not one line per trial (or MEDTUNE_VERBOSE=1)"),
         ) -> None:
    """Ray Tune + Optuna + ASHA sweep on train/val; every trial logged to MLflow."""
    from medtune.pipeline import tune as stage
    from medtune.tune.console import verbose_console

    stage.run(load_params(params), resume=resume, verbose=verbose_console(verbose))


@app.command()
@one_line_errors
def promote(params: Path = ParamsOpt) -> None:
    """Register the best trial and move the champion alias if it passes the gate."""
    from medtune.pipeline import promote as stage

    stage.run(load_params(params))


@app.command()
@one_line_errors
def test(params: Path = ParamsOpt,
         rescore: bool = typer.Option(False, help="score again although this pair was scored"),
         reason: str = typer.Option("", help="why a rescore is needed (required with --rescore)"),
         skip_scored: bool = typer.Option(False, help="exit 0, keeping the recorded report, when this champion "
                                          "and split were already scored (what `dvc repro` uses)")) -> None:
    """Score the champion on the held-out test split, once per (model version, split)."""
    from medtune.pipeline import test as stage

    if rescore and not reason.strip():
        raise MedtuneError("--rescore needs --reason '...': a second look at the test set is recorded")
    stage.run(load_params(params), rescore_reason=reason.strip() if rescore else None, skip_scored=skip_scored)


@app.command()
@one_line_errors
def predict(inputs: list[Path] = typer.Argument(..., help="DICOM files and/or folders (searched at any depth)"),
            model: str | None = typer.Option(None, "--model", "-m",
                                             help="model URI [default: models:/<registry.model_name>@champion]"),
            out: Path = typer.Option(Path("preds.csv"), "--out", "-o", help="CSV to write, one row per file"),
            tracking_uri: str | None = typer.Option(None, help="[default: MLFLOW_TRACKING_URI, else params.yaml]"),
            params: Path = ParamsOpt) -> None:
    """Score DICOM files with a registered model; unusable files are rows with status=rejected and a reason."""
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from medtune.data.phi import load_secret
    from medtune.jsonio import write_table
    from medtune.predict import default_target, predict_files, summary
    from medtune.tracking.loading import load_registered

    default_uri, default_model = default_target(params)
    loaded = load_registered(model or default_model, tracking_uri or default_uri)
    frame = predict_files(inputs, loaded, load_secret())
    write_table(frame, out)
    print(summary(frame, out))


def main() -> None:
    """The `medtune` command. After every exit handler has run (Ray's shutdown, MLflow's and logging's
    flushes), the garbage collector is frozen: its last passes over the objects of torch, Lightning and
    MLflow took 1-2 s of each command's exit (bench/startup.py), memory the operating system frees anyway."""
    atexit.register(gc.freeze)  # registered first, so it runs after the handlers the stages' imports add
    app()


if __name__ == "__main__":
    main()
