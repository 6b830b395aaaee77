"""params.yaml as frozen dataclasses, one per section; every default here is the documented default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BaseCfg:
    seed: int = 42
    tracking_uri: str = "sqlite:///mlruns.db"
    artifact_root: str = "mlartifacts"
    experiment: str = "medtune"


@dataclass(frozen=True)
class IngestCfg:
    raw_dir: str = "data/raw"
    labels: str = "data/labels.csv"
    path_column: str = "path"
    label_column: str | tuple[str, ...] = "label"  # one column, or a list of 0/1 columns (multilabel)
    task: str = "auto"                # auto | binary | multiclass | multilabel | regression
    uncertain: str = "ignore"         # multilabel -1 cells: ignore (masked) | zero | one
    workers: int = 2
    label_key: str = "path"
    key_column: str = ""
    positive_label: str | None = None  # the class that is target 1; null: inferred when obvious (normal/...)
    file_timeout_s: float = 60.0     # a decode running longer is killed: the file is rejected decode_timeout
    max_pixels: int = 40_000_000     # Rows x Columns of one frame; more is implausible_size
    max_frames: int = 3000           # NumberOfFrames; more is implausible_size
    max_file_mb: float = 1024.0      # file size on disk, inflated size, and pixel bytes a header may claim
    worker_memory_mb: float = 4096.0  # address-space cap of each decode worker (0: none)
    decoder_plugins: tuple[str, ...] = ()  # modules imported in every decode worker (pydicom decoder plug-ins)
    hash_paths: bool = False         # write each relative path only as its HMAC (PHI in folder names)


@dataclass(frozen=True)
class PreprocessCfg:
    image_size: int | str = 28  # or "auto": from the ingest fingerprint
    window: str = "header"
    percentiles: tuple[float, float] = (0.5, 99.5)
    channels: int = 1
    frames: str = "middle"
    resize: str = "pad"               # pad (letterbox, keeps the aspect ratio) | crop | stretch
    bits: int = 8                     # images.npy as uint8 (8) or uint16 (16)


@dataclass(frozen=True)
class SplitCfg:
    method: str = "auto"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    group_by: str = "patient"
    site_column: str = "manufacturer"
    holdout_site: str | None = None
    fixed_file: str | None = None
    near_duplicate_hamming: int = 12
    strict: bool = False
    folds: int | str = 0              # K-fold CV over train + val: 0 (none) | K >= 2 | auto (data/folds.py)


@dataclass(frozen=True)
class TrainCfg:
    """One trial's hyperparameters; the tune runner derives each trial with dataclasses.replace."""

    arch: str = "convnet"             # convnet | a MONAI backbone (choices.ARCHS)
    pretrained: str = "none"          # none | imagenet | a state_dict file | an MLflow model URI
    precision: str = "auto"           # auto: bf16-mixed / 16-mixed on GPUs, 32 on CPU
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 4
    dropout: float = 0.1
    depth: int = 3
    width: int = 16
    residual: bool = False
    activation: str = "relu"
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    augment: float = 0.5
    ema_decay: float = 0.0            # moving average of the weights that validation and export use (0: off)
    regression_loss: str = "mse"      # regression only: mse | huber | mae (on the target standardised on train)
    num_workers: int | str = "auto"   # DataLoader workers; auto: the trial's CPUs minus one
    limit_train_batches: float = 1.0
    freeze_blocks: int = 0            # with pretrained weights: the first N blocks are not trained
    seed: int = 42


@dataclass(frozen=True)
class ParamSpec:
    """One searched hyperparameter: a numeric range (optionally log) or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    @property
    def is_int(self) -> bool:
        return self.choices is None and isinstance(self.low, int) and isinstance(self.high, int)

    @property
    def top(self) -> Any:
        """The largest value a trial can draw."""
        return max(self.choices) if self.choices is not None else self.high


@dataclass(frozen=True)
class SearchCfg:
    num_samples: int = 8
    max_concurrent_trials: int = 1    # 1: the same seed makes the same choices (timing cannot reorder)
    metric: str = "auto"              # auto: the task's (val_auroc; val_mae for regression)
    mode: str = "auto"                # auto: the metric's direction
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    preset: str | None = None         # fast | balanced | thorough: fills the search keys params.yaml leaves out
    grace_period: int | str = "auto"  # ASHA: optimizer steps before a trial can be stopped (auto: planned)
    reduction_factor: int = 3         # ASHA: keep the best 1/3 at each rung
    n_startup_trials: int | str = "auto"  # Optuna: random trials before TPE (auto: a quarter, 3..5)
    min_steps: int | str = "auto"     # optimizer steps every trial is planned for (auto: planned; 0: none)
    batch_cap: int | str = "auto"     # largest batch size (auto: a quarter of the train images; 0: none)
    warm_start: str = "auto"          # auto | off | <MLflow parent run id of an earlier sweep>
    time_budget_s: float = 0.0        # stop the sweep after this many seconds (0: no limit)
    max_failures: int = 1             # retries of a trial whose worker died (resumes from its checkpoint)
    keep_checkpoints: int = 2         # best k epoch checkpoints kept per trial (the latest is kept too)
    ensemble_top_k: int = 3           # the k best trials kept for promote's top-k ensemble (1: best alone)
    address: str | None = None
    storage: str = "ray_results"      # sweep state + trial checkpoints; shared by every node on a cluster
    space: tuple[ParamSpec, ...] = ()


@dataclass(frozen=True)
class RegistryCfg:
    model_name: str = "medtune-classifier"
    min_delta: float = 0.0
    on_new_split: str = "promote"  # no comparable champion (other split): promote the new model or keep
    threshold: str = "youden"      # operating point chosen on validation: choices.THRESHOLD_FORMS
    calibration: str = "temperature"  # fitted on validation, stored with the model: choices.CALIBRATIONS
    tta: bool = False              # test-time augmentation (mean over the image and its flips), stored with the model


@dataclass(frozen=True)
class TestCfg:
    bootstrap: int = 1000
    gradcam_cases: int = 4

    __test__ = False


@dataclass(frozen=True)
class Params:
    base: BaseCfg = field(default_factory=BaseCfg)
    ingest: IngestCfg = field(default_factory=IngestCfg)
    preprocess: PreprocessCfg = field(default_factory=PreprocessCfg)
    split: SplitCfg = field(default_factory=SplitCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    search: SearchCfg = field(default_factory=SearchCfg)
    registry: RegistryCfg = field(default_factory=RegistryCfg)
    test: TestCfg = field(default_factory=TestCfg)

    @property
    def tracking_uri(self) -> str:
        """MLFLOW_TRACKING_URI wins over params, so a cluster points every stage at its server."""
        return os.environ.get("MLFLOW_TRACKING_URI") or self.base.tracking_uri


# params.yaml section name -> its dataclass, in the order of the file.
SECTIONS: dict[str, type] = {"base": BaseCfg, "ingest": IngestCfg, "preprocess": PreprocessCfg, "split": SplitCfg,
                             "train": TrainCfg, "search": SearchCfg, "registry": RegistryCfg, "test": TestCfg}
