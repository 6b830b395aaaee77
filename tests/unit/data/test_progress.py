"""Progress lines: at most one every few seconds, always the last one, with the rate."""

from __future__ import annotations

from medtune.data.progress import RateProgress


def test_prints_every_two_seconds_and_at_the_end_with_the_rate() -> None:
    now, lines = [100.0], []
    progress = RateProgress("ingest", clock=lambda: now[0], out=lines.append)
    for done, t in [(16, 100.5), (32, 101.9), (48, 102.1), (64, 103.0), (80, 104.2), (90, 104.5)]:
        now[0] = t
        progress(done, 90)
    assert lines == ["ingest: 48/90 files (23 files/s)", "ingest: 80/90 files (19 files/s)",
                     "ingest: 90/90 files (20 files/s)"]
    assert progress.elapsed == 4.5
