"""Decoder plug-ins (`ingest.decoder_plugins`): site code imported in every decode worker before it reads.

The extension point for what medtune cannot decode by itself, e.g. a vendor's private transfer syntax:
a plug-in registers itself on import with pydicom (pydicom.pixels.decoders: get_decoder(uid).add_plugin).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from medtune.errors import ConfigError


def import_plugins(plugins: Sequence[str]) -> None:
    """Import each `ingest.decoder_plugins` entry: a module name, or a .py file (relative to the project).

    A plug-in registers itself on import, e.g. a pydicom decoder for a vendor's private transfer syntax
    (pydicom.pixels.decoders: get_decoder(uid).add_plugin(...)). A file needs no PYTHONPATH (which the
    decode workers fix when their server starts); it is imported as module `medtune_plugin_<stem>`.
    """
    for entry in plugins:
        try:
            _load_file(Path(entry)) if entry.endswith(".py") else importlib.import_module(entry)
        except Exception as exc:  # noqa: BLE001 - any failure to load is the user's plug-in setting
            why = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise ConfigError(f"params.yaml: ingest.decoder_plugins: cannot import {entry!r} "
                              f"({type(exc).__name__}: {why})") from None


def _load_file(path: Path) -> None:
    name = f"medtune_plugin_{path.stem}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: the plug-in registers itself under this name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
