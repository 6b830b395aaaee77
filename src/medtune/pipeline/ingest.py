"""Stage `ingest`: every raw file accepted into the manifest or rejected with a reason."""

from __future__ import annotations

from medtune import paths
from medtune.config import Params, require_path
from medtune.data.fingerprint import summary_lines
from medtune.data.ingest import ingest
from medtune.data.limits import FileLimits
from medtune.data.phi import load_secret
from medtune.data.progress import RateProgress
from medtune.jsonio import write_json, write_table
from medtune.task import write_task


def run(params: Params) -> None:
    cfg = params.ingest
    raw_dir = require_path(cfg.raw_dir, "ingest.raw_dir", is_dir=True)
    if cfg.labels != "folders":
        require_path(cfg.labels, "ingest.labels")
    progress = RateProgress("ingest")
    result = ingest(raw_dir, cfg.labels, load_secret(), path_column=cfg.path_column,
                    label_column=cfg.label_column, workers=cfg.workers, progress=progress,
                    label_key=cfg.label_key, key_column=cfg.key_column, task=cfg.task, uncertain=cfg.uncertain,
                    positive_label=cfg.positive_label, limits=FileLimits.from_cfg(cfg), plugins=cfg.decoder_plugins,
                    hash_paths=cfg.hash_paths)
    write_table(result.manifest, paths.MANIFEST)
    write_table(result.rejected, paths.REJECTED)
    write_json(paths.FINGERPRINT, result.fingerprint)
    write_task(result.task, paths.TASK_FOUND)
    fp = result.fingerprint
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(fp["rejected_by_reason"].items())) or "none"
    print(f"ingest: scanned {fp['n_scanned']} = accepted {fp['n_accepted']} + rejected {fp['n_rejected']}"
          f" ({reasons}); {result.orphan_labels} label rows without a file; {progress.elapsed:.1f}s")
    for line in summary_lines(fp, params.preprocess.window, params.preprocess.image_size,
                              cfg.positive_label is not None, result.faults):
        print(f"ingest: {line}")
