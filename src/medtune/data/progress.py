"""Progress lines for long stages: one line every few seconds with the rate, never one per item."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateProgress:
    """A `progress(done, total)` callback that prints `<label>: done/total <unit> (rate <unit>/s)` at most
    every `every_s` seconds, and always at the end. `elapsed` is the time since it was made."""

    def __init__(self, label: str, unit: str = "files", every_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, out: Callable[[str], None] | None = None) -> None:
        self.label, self.unit, self.every_s, self.clock = label, unit, every_s, clock
        self.out = out or (lambda line: print(line, flush=True))
        self.start = self.last = clock()

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if now - self.last >= self.every_s or done == total:
            self.last = now
            rate = done / max(now - self.start, 1e-9)
            self.out(f"{self.label}: {done}/{total} {self.unit} ({rate:.0f} {self.unit}/s)")

    @property
    def elapsed(self) -> float:
        return self.clock() - self.start
