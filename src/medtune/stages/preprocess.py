"""Stage `preprocess`: decode each accepted file once into one contiguous float32 array."""

from __future__ import annotations

import time

import pandas as pd

from medtune import paths
from medtune.config import Params, require_path
from medtune.data.preprocess import preprocess


def run(params: Params) -> None:
    cfg = params.preprocess
    raw_dir = require_path(params.ingest.raw_dir, "ingest.raw_dir", is_dir=True)
    manifest = pd.read_parquet(require_path(str(paths.MANIFEST), "manifest (run ingest first)"))
    start = time.monotonic()
    paths.PROCESSED.mkdir(parents=True, exist_ok=True)
    index = preprocess(manifest, raw_dir, paths.IMAGES, cfg.image_size, window=cfg.window,
                       percentiles=cfg.percentiles, workers=params.ingest.workers)
    index.to_parquet(paths.INDEX, index=False)
    print(f"preprocess: {len(index)} images -> {paths.IMAGES} ({cfg.image_size}px, window={cfg.window}) "
          f"in {time.monotonic() - start:.1f}s")
