"""Stage `preprocess`: decode each accepted file once into one contiguous image array."""

from __future__ import annotations

import json
import time

import pandas as pd

from medtune import paths
from medtune.config import Params, require_path
from medtune.data.files import resolve_stored_paths
from medtune.data.limits import FileLimits
from medtune.data.phi import load_secret
from medtune.data.preprocess import preprocess, resolve_settings
from medtune.jsonio import write_json, write_table
from medtune.task import read_task, write_task


def run(params: Params) -> None:
    raw_dir = require_path(params.ingest.raw_dir, "ingest.raw_dir", is_dir=True)
    manifest = pd.read_parquet(require_path(str(paths.MANIFEST), "manifest (run ingest first)"))
    fingerprint = json.loads(paths.FINGERPRINT.read_text()) if paths.FINGERPRINT.is_file() else {}
    settings = resolve_settings(params.preprocess, params.train, params.search.space, fingerprint)
    if params.ingest.hash_paths:  # the manifest holds HMACs of paths: find the files they stand for
        manifest = manifest.assign(path=resolve_stored_paths(raw_dir, manifest["path"], load_secret()))
    start = time.monotonic()
    paths.PROCESSED.mkdir(parents=True, exist_ok=True)
    index = preprocess(manifest, raw_dir, paths.IMAGES, settings["image_size"], window=settings["window"],
                       percentiles=tuple(settings["percentiles"]), workers=params.ingest.workers,
                       channels=settings["channels"], frames=settings["frames"], resize_mode=settings["resize"],
                       bits=settings["bits"], limits=FileLimits.from_cfg(params.ingest),
                       plugins=params.ingest.decoder_plugins)
    write_table(index, paths.INDEX)
    write_json(paths.PREPROCESS_SETTINGS, settings)  # what promote stores with the model
    write_task(read_task(paths.TASK_FOUND), paths.TASK)
    print(f"preprocess: {len(index)} images -> {paths.IMAGES} ({settings['image_size']}px, "
          f"{settings['resize']}, uint{settings['bits']}, window={settings['window']}, "
          f"channels={settings['channels']}, frames={settings['frames']}) "
          f"in {time.monotonic() - start:.1f}s")
