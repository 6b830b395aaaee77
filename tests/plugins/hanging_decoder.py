"""A test-only pydicom decoder plug-in that never returns on one crafted kind of file, and crashes its
process on another: a real stuck decode and a real native crash, inside the real decode path.

Loaded the way a site would load its own decoder: `ingest.decoder_plugins: [tests.plugins.hanging_decoder]`
imports it in every decode worker. It goes first among the RLE Lossless plug-ins. For a frame with
HANG_ROWS rows it blocks forever; with CRASH_ROWS rows it dereferences a NULL pointer (SIGSEGV); for any
other frame it declines (raises), and pydicom falls through to its own RLE decoder.
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path
from typing import Any

from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import RLELossless

HANG_ROWS = 77
CRASH_ROWS = 79
LABEL = "medtune-test-hang"
MARKER_ENV = "MEDTUNE_TEST_HANG_MARKER"
DECODER_DEPENDENCIES = {RLELossless: ()}
# pydicom's own RLE plug-ins, re-added after this one so they still decode every other file.
_BUILTIN = {"pylibjpeg": ("pydicom.pixels.decoders.pylibjpeg", "_decode_frame"),
            "pydicom": ("pydicom.pixels.decoders.rle", "_decode_frame")}


def is_available(uid: str) -> bool:
    return uid == RLELossless


def decode_frame(src: bytes, runner: Any) -> bytearray:
    if runner.rows == HANG_ROWS:
        if os.environ.get(MARKER_ENV):  # tests learn that the hang has begun (and in which process)
            Path(os.environ[MARKER_ENV]).write_text(str(os.getpid()))
        while True:  # a decoder stuck in a loop: only a SIGKILL ends it
            time.sleep(0.5)
    if runner.rows == CRASH_ROWS:
        ctypes.string_at(0)  # SIGSEGV, as a native decoder does on a malformed stream
    raise ValueError("not a crafted file: the next plug-in decodes it")


def _register() -> None:
    decoder = get_decoder(RLELossless)
    if LABEL in decoder.available_plugins:
        return
    present = [label for label in _BUILTIN if label in decoder.available_plugins]
    for label in present:
        decoder.remove_plugin(label)
    decoder.add_plugin(LABEL, (__name__, "decode_frame"))
    for label in present:  # pydicom tries plug-ins in the order they were added
        decoder.add_plugin(label, _BUILTIN[label])


_register()
