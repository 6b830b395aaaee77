"""Stage `preprocess`: decode each accepted file once into one contiguous float32 array."""

from __future__ import annotations

import json
import time

import pandas as pd

from medtune import paths
from medtune.config import Params, require_path
from medtune.data.preprocess import preprocess
from medtune.errors import ConfigError
from medtune.jsonio import write_json


def resolve(params: Params, fingerprint: dict) -> dict:
    """params.preprocess with every `auto` replaced by the fingerprint's recommendation."""
    cfg = params.preprocess
    recommended = fingerprint.get("recommended", {})
    size = recommended.get("image_size") if cfg.image_size == "auto" else cfg.image_size
    window = recommended.get("window") if cfg.window == "auto" else cfg.window
    if size is None or window is None:
        raise ConfigError("params.yaml: preprocess: `auto` needs reports/ingest/fingerprint.json; run ingest")
    depth = max([params.train.depth] + [int(s.high or max(s.choices or [0])) for s in params.search.space
                                        if s.name == "depth"])
    if 2**depth > size:
        raise ConfigError(f"params.yaml: preprocess.image_size: auto chose {size}px, too small for depth "
                          f"{depth}; set image_size to at least {2**depth}")
    return {"image_size": int(size), "window": window, "percentiles": list(cfg.percentiles),
            "channels": cfg.channels, "frames": cfg.frames}


def run(params: Params) -> None:
    raw_dir = require_path(params.ingest.raw_dir, "ingest.raw_dir", is_dir=True)
    manifest = pd.read_parquet(require_path(str(paths.MANIFEST), "manifest (run ingest first)"))
    fingerprint = json.loads(paths.FINGERPRINT.read_text()) if paths.FINGERPRINT.is_file() else {}
    settings = resolve(params, fingerprint)
    start = time.monotonic()
    paths.PROCESSED.mkdir(parents=True, exist_ok=True)
    index = preprocess(manifest, raw_dir, paths.IMAGES, settings["image_size"], window=settings["window"],
                       percentiles=tuple(settings["percentiles"]), workers=params.ingest.workers,
                       channels=settings["channels"], frames=settings["frames"])
    index.to_parquet(paths.INDEX, index=False)
    write_json(paths.PREPROCESS_SETTINGS, settings)  # what promote stores with the model
    print(f"preprocess: {len(index)} images -> {paths.IMAGES} ({settings['image_size']}px, "
          f"window={settings['window']}, channels={settings['channels']}, frames={settings['frames']}) "
          f"in {time.monotonic() - start:.1f}s")
