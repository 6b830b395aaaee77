"""Files on disk and the worker pool that reads them: shared by ingest, preprocess and labels."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from medtune.errors import DataError


def scan_files(raw_dir: Path) -> list[Path]:
    """Every regular file under raw_dir, recursively and sorted; hidden files and DICOMDIR are skipped."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: image folder does not exist")
    files = []
    for path in raw_dir.rglob("*"):
        parts = path.relative_to(raw_dir).parts
        if any(part.startswith(".") for part in parts) or path.name == "DICOMDIR":
            continue
        if path.is_file():
            files.append(path)
    return sorted(files)


def bounded_map(pool: ProcessPoolExecutor, fn: Callable, items: Iterable, ahead: int) -> Iterator:
    """pool.map that keeps at most `ahead` tasks in flight (Executor.map submits everything at once)."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def pool_context() -> multiprocessing.context.BaseContext:
    """Forkserver with the data modules preloaded: workers fork from a clean, already-warm server.

    Plain fork is unsafe once the parent holds threads (pyarrow, Ray, MLflow); spawn re-imports numpy,
    pandas and pydicom in every worker, which costs more than a small cohort's whole ingest.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["medtune.data.ingest", "medtune.data.preprocess"])
    return context
