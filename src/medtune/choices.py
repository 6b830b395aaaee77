"""Allowed values of every enumerated params.yaml key, in one place.

config validates params against these; the modules that act on a value (optimiser factory, pixel
chain, splitter, label reader) dispatch on the same names, and tests check their tables match.
Plain data only: config imports this without pulling in torch or pydicom.
"""

from __future__ import annotations

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
NEW_SPLIT_POLICIES = ("promote", "keep")
