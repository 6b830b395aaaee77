"""Where each stage reads and writes, relative to the project root; dvc.yaml names the same paths."""

from pathlib import Path

MANIFEST = Path("data/interim/manifest.parquet")
TASK_FOUND = Path("data/interim/task.json")  # what ingest read off the labels
REJECTED = Path("reports/ingest/rejected.csv")
FINGERPRINT = Path("reports/ingest/fingerprint.json")
PROCESSED = Path("data/processed")
IMAGES = PROCESSED / "images.npy"
INDEX = PROCESSED / "index.parquet"
PREPROCESS_SETTINGS = PROCESSED / "preprocess.json"  # what preprocess used (`auto` resolved)
TASK = PROCESSED / "task.json"  # the task every later stage trains and scores
SPLITS = Path("data/splits/splits.json")
LEAKAGE = Path("reports/split/leakage.json")
SPLIT_SUMMARY = Path("reports/split/summary.json")
NEAR_DUPLICATES = LEAKAGE.parent / "near_duplicates.csv"  # cross-split pairs behind the counts
TUNE_REPORTS = Path("reports/tune")
LEADERBOARD = TUNE_REPORTS / "leaderboard.csv"
BEST = TUNE_REPORTS / "best.json"
BEST_MODEL = Path("models/best/model.pt")
TOP_MODELS = Path("models/best/top")  # the next best trials' checkpoints: <rank>.pt, for the top-k ensemble
PROMOTION = Path("reports/promotion.json")
MODEL_FILES = Path("models/registered")
TEST_REPORTS = Path("reports/test")
TEST_METRICS = TEST_REPORTS / "metrics.json"
TEST_DETAILS = TEST_REPORTS / "report.json"  # every metric with its CI, per class/label, warnings
LEDGER = TEST_REPORTS / "ledger.json"
