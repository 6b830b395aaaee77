"""Stage `ingest`: every raw file accepted into the manifest or rejected with a reason."""

from __future__ import annotations

import time

from medtune import paths
from medtune.config import Params, require_path
from medtune.data.ingest import ingest
from medtune.data.limits import FileLimits
from medtune.data.phi import load_secret
from medtune.jsonio import write_json, write_table


def run(params: Params) -> None:
    cfg = params.ingest
    raw_dir = require_path(cfg.raw_dir, "ingest.raw_dir", is_dir=True)
    if cfg.labels != "folders":
        require_path(cfg.labels, "ingest.labels")
    start = last = time.monotonic()

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= 2.0 or done == total:  # a line every ~2 s, not every chunk
            last = now
            print(f"ingest: {done}/{total} files ({done / max(now - start, 1e-9):.0f} files/s)", flush=True)

    result = ingest(raw_dir, cfg.labels, load_secret(), path_column=cfg.path_column,
                    label_column=cfg.label_column, workers=cfg.workers, progress=progress,
                    label_key=cfg.label_key, key_column=cfg.key_column, limits=FileLimits.from_cfg(cfg),
                    plugins=cfg.decoder_plugins, hash_paths=cfg.hash_paths)
    write_table(result.manifest, paths.MANIFEST)
    write_table(result.rejected, paths.REJECTED)
    write_json(paths.FINGERPRINT, result.fingerprint)
    fp = result.fingerprint
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(fp["rejected_by_reason"].items())) or "none"
    print(f"ingest: scanned {fp['n_scanned']} = accepted {fp['n_accepted']} + rejected {fp['n_rejected']}"
          f" ({reasons}); {result.orphan_labels} label rows without a file; "
          f"{time.monotonic() - start:.1f}s")
    absorbed = {reason: n for reason, n in result.faults.items() if n}
    if absorbed:  # files that hung, crashed a worker or hit an unforeseen error: rejected, stage went on
        print("ingest: worker pool absorbed " + ", ".join(f"{k}={v}" for k, v in sorted(absorbed.items())))

