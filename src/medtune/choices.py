"""Allowed values of every enumerated params.yaml key, in one place.

config validates params against these; the modules that act on a value (optimiser factory, pixel
chain, splitter, label reader) dispatch on the same names, and tests check their tables match.
Plain data only: config imports this without pulling in torch or pydicom.
"""

from __future__ import annotations

# train.arch: our small ConvNet (fast at 28 px) and MONAI's 2D backbones (models/backbones.py builds them).
ARCHS = ("convnet", "resnet18", "resnet34", "resnet50", "resnet101", "densenet121", "densenet169",
         "efficientnet-b0", "efficientnet-b1", "efficientnet-b2", "efficientnet-b3", "seresnet50")
MIN_BACKBONE_SIZE = 32  # px: DenseNet's transitions and EfficientNet-B0's stem need at least this
PRECISIONS = ("auto", "32", "16-mixed", "bf16-mixed")
# ingest.task: auto reads it off the labels (one column, two values: binary; more: multiclass; a list of
# 0/1 columns: multilabel); regression must be asked for.
TASKS = ("binary", "multiclass", "multilabel", "regression")
UNCERTAIN_POLICIES = ("ignore", "zero", "one")  # a -1 (CheXpert's "uncertain") in a multilabel column
REGRESSION_LOSSES = ("mse", "huber", "mae")
OPTIMIZERS = ("sgd", "sgd_momentum", "rmsprop", "adagrad", "adam", "adamw")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid")

# (center, width) in modality units (HU for CT): the usual radiology reading windows.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "soft_tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "liver": (60.0, 160.0),
}
# What the pixel chain applies; params.yaml also takes `auto`, resolved from the ingest fingerprint.
WINDOWS = ("header", "percentile", "minmax", *WINDOW_PRESETS)
PREPROCESS_WINDOWS = ("auto", *WINDOWS)
CHANNELS = (1, 3)
# pad: keep the aspect ratio and letterbox; crop: fill the square, cut the long side; stretch: distort.
RESIZE_MODES = ("pad", "crop", "stretch")
STORE_BITS = (8, 16)  # images.npy as uint8, or uint16 for windows whose 8-bit steps would be too coarse
FRAME_POLICIES = ("middle", "all")

# ingest.label_key -> the labels CSV's default column for it (`path` uses ingest.path_column).
LABEL_KEYS: dict[str, str] = {
    "path": "path",
    "sop_instance_uid": "SOPInstanceUID",
    "patient_id": "PatientID",
    "study_instance_uid": "StudyInstanceUID",
}

# Two labels say which class is positive (target 1) when exactly one of them is one of these negative
# words (case-insensitive): 0/1, no/yes, false/true, normal/pneumonia. Otherwise ingest.positive_label must.
NEGATIVE_LABELS = ("0", "no", "false", "negative", "neg", "normal", "absent", "healthy", "benign", "none",
                   "control")

SPLIT_NAMES = ("train", "val", "test")  # the held-out test split is always the last
SPLIT_METHODS = ("auto", "grouped")
SPLIT_GROUPS = ("patient", "site")
SITE_COLUMNS = ("manufacturer", "modality")
MODES = ("max", "min")
SEARCH_PRESETS = ("fast", "balanced", "thorough")  # search.preset (config/presets.py holds what each sets)
WARM_STARTS = ("auto", "off")  # search.warm_start, or the MLflow run id of an earlier sweep
NEW_SPLIT_POLICIES = ("promote", "keep")

# registry.threshold: how promote picks the operating point on validation predictions (binary; one per label
# for multilabel; none for multiclass and regression). youden: max sensitivity + specificity - 1; f1: max F1;
# sensitivity:<x>: the highest threshold whose sensitivity is >= x (so the best specificity at that
# sensitivity); specificity:<x>: the lowest threshold whose specificity is >= x; a number: that threshold.
THRESHOLD_METHODS = ("youden", "f1")
THRESHOLD_TARGETS = ("sensitivity", "specificity")
THRESHOLD_FORMS = (*THRESHOLD_METHODS, *(f"{t}:<x in (0, 1]>" for t in THRESHOLD_TARGETS), "<a number in [0, 1]>")
# registry.calibration, fitted on validation predictions by promote and applied wherever the model scores:
# temperature (one scale on the logits; multilabel: one per label) | platt (scale and bias; multiclass falls
# back to temperature) | none.
CALIBRATIONS = ("temperature", "platt", "none")
