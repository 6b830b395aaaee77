"""The decode worker pool: a file that hangs or crashes its decoder costs that file, never the stage.

ProcessPoolExecutor cannot stop one task: a hung decode blocks `result()` forever, and a worker killed by
a segfault or the OOM killer breaks the whole pool. Here each worker is a process of our own with its own
pipe. It reports every file as it finishes, so the parent knows which file a worker is on and since when:

- a file that runs past `timeout_s` gets its worker SIGKILLed and replaced, and is failed `decode_timeout`;
- a worker that dies fails its current file `decode_crash`;
- an exception the task function did not turn into a reason fails the file `decode_error`.

The rest of an interrupted chunk goes back to the front of the queue; other workers are untouched, so
every item yields exactly one result, in input order.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import resource
import signal
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing.connection import Connection, wait
from typing import Any

from medtune.data.plugins import import_plugins
from medtune.errors import ConfigError

AHEAD = 4  # chunks dispatched per worker beyond the one being yielded: bounds buffered results
_PR_SET_PDEATHSIG = 1


def pool_context() -> multiprocessing.context.BaseContext:
    """Forkserver with the data modules preloaded: workers fork from a clean, already-warm server.

    Plain fork is unsafe once the parent holds threads (pyarrow, Ray, MLflow); spawn re-imports numpy,
    pandas and pydicom in every worker, which costs more than a small cohort's whole ingest.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["medtune.data.ingest", "medtune.data.preprocess"])
    return context


@dataclass
class PoolStats:
    """What the pool had to absorb; every count is also a rejected file."""

    timeouts: int = 0    # files whose decode ran past the timeout (worker killed and replaced)
    crashes: int = 0     # files whose worker died under them (segfault, OOM kill)
    unexpected: int = 0  # exceptions the task function did not classify (a bug to report)
    memory: int = 0      # files whose decode hit the worker's memory cap (MemoryError)

    def as_dict(self) -> dict[str, int]:
        return {"decode_timeout": self.timeouts, "decode_crash": self.crashes, "memory_cap": self.memory,
                "unexpected_error": self.unexpected}


@dataclass
class _Job:
    seq: int
    items: list
    done: list = field(default_factory=list)


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    job: _Job | None = None
    since: float = 0.0  # when the current item started (dispatch or the previous item's result)


def supervised_map(
    fn: Callable[[Any], Any], items: Iterable, on_fail: Callable[[Any, str], Any], *, workers: int = 1,
    timeout_s: float = 0.0, memory_mb: float = 0.0, chunk: int = 32, plugins: Sequence[str] = (),
    stats: PoolStats | None = None,
) -> Iterator[Any]:
    """Yield fn(item) for every item in order, or on_fail(item, reason) for an item that failed.

    `fn` must be picklable (a module-level function or a partial of one). With one worker and no
    timeout it runs in this process (no protection from hangs or crashes: the fastest path for tests).
    `plugins` are imported in each worker only (in this process too when it decodes here); one that
    cannot load raises ConfigError. `memory_mb` caps each worker's address space (RLIMIT_AS): an
    allocation past it raises MemoryError there, and the file is failed `implausible_size`.
    """
    stats = stats if stats is not None else PoolStats()
    if workers <= 1 and timeout_s <= 0:
        import_plugins(plugins)
        for item in items:
            yield _call(fn, item, on_fail, stats)
        return
    pool = _Supervisor(fn, on_fail, max(1, workers), timeout_s, memory_mb, tuple(plugins), stats)
    try:
        yield from pool.run(items, chunk)
    finally:
        pool.close()


def _call(fn: Callable[[Any], Any], item: Any, on_fail: Callable[[Any, str], Any], stats: PoolStats) -> Any:
    try:
        return fn(item)
    except Exception:  # noqa: BLE001 - one file's unforeseen failure must not end the stage
        stats.unexpected += 1
        return on_fail(item, "decode_error")


class _Supervisor:
    """Worker processes, the queue of chunks and the results waiting to be yielded in order."""

    def __init__(self, fn: Callable, on_fail: Callable, workers: int, timeout_s: float, memory_mb: float,
                 plugins: tuple[str, ...], stats: PoolStats) -> None:
        self.fn, self.on_fail, self.timeout_s, self.plugins, self.stats = fn, on_fail, timeout_s, plugins, stats
        self.memory_mb = memory_mb
        self.context = pool_context()
        self.workers = [self._start() for _ in range(workers)]
        self.queue: deque[_Job] = deque()
        self.finished: dict[int, list] = {}

    def _start(self) -> _Worker:
        parent, child = self.context.Pipe(duplex=True)
        proc = self.context.Process(target=_worker_main, args=(child, self.plugins, self.memory_mb), daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def run(self, items: Iterable, chunk: int) -> Iterator[Any]:
        source, issued, next_seq = iter(items), 0, 0
        exhausted = False
        while True:
            for worker in self.workers:
                if worker.job is not None:
                    continue
                if not self.queue and not exhausted and issued - next_seq < len(self.workers) * AHEAD:
                    batch = list(islice(source, chunk))
                    exhausted = len(batch) < chunk
                    if batch:
                        self.queue.append(_Job(issued, batch))
                        issued += 1
                if self.queue:
                    self._dispatch(worker, self.queue.popleft())
            while next_seq in self.finished:
                yield from self.finished.pop(next_seq)
                next_seq += 1
            if next_seq == issued and exhausted:
                return
            self._wait()

    def _dispatch(self, worker: _Worker, job: _Job) -> None:
        if not worker.proc.is_alive():  # died while idle (OOM killer): replace it first
            self._replace(worker)
        worker.job, worker.since = job, time.monotonic()
        # A worker can exit between that check and this send (a plug-in that cannot load ends it at start):
        # _wait then reads its last word, raising on a 'fatal', or fails the item decode_crash.
        with contextlib.suppress(OSError):
            worker.conn.send((self.fn, job.items[len(job.done):]))

    def _wait(self) -> None:
        """Block until a worker reports, dies or overstays its timeout; handle whatever happened."""
        busy = [w for w in self.workers if w.job is not None]
        if not busy:  # results were just yielded: room to dispatch more
            return
        timeout = None
        if self.timeout_s > 0:
            timeout = max(0.0, min(w.since for w in busy) + self.timeout_s - time.monotonic())
        wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=timeout)
        for worker in busy:
            self._drain(worker)
            if worker.job is None:
                continue
            if not worker.proc.is_alive():
                self._fail_current(worker, "decode_crash")
            elif self.timeout_s > 0 and time.monotonic() - worker.since > self.timeout_s:
                self._fail_current(worker, "decode_timeout")

    def _drain(self, worker: _Worker) -> None:
        """Take every result the worker has sent so far."""
        while worker.job is not None:
            try:
                if not worker.conn.poll():
                    return
                status, value = worker.conn.recv()
            except (EOFError, OSError):
                return
            if status == "fatal":  # the worker could not load a plug-in: every file would fail the same way
                raise ConfigError(value)
            job = worker.job
            item = job.items[len(job.done)]
            if status == "ok":
                job.done.append(value)
            elif status == "memory":
                self.stats.memory += 1
                job.done.append(self.on_fail(item, "implausible_size"))
            else:
                self.stats.unexpected += 1
                job.done.append(self.on_fail(item, "decode_error"))
            worker.since = time.monotonic()
            if len(job.done) == len(job.items):
                self.finished[job.seq], worker.job = job.done, None

    def _fail_current(self, worker: _Worker, reason: str) -> None:
        """Fail the worker's current item, replace the worker, requeue the rest of its chunk."""
        job = worker.job
        assert job is not None
        if reason == "decode_timeout":
            self.stats.timeouts += 1
        else:
            self.stats.crashes += 1
        job.done.append(self.on_fail(job.items[len(job.done)], reason))
        self._replace(worker)
        if len(job.done) == len(job.items):
            self.finished[job.seq] = job.done
        else:
            self.queue.appendleft(job)

    def _replace(self, worker: _Worker) -> None:
        _stop(worker, kill=True)
        fresh = self._start()
        worker.proc, worker.conn, worker.job = fresh.proc, fresh.conn, None

    def close(self) -> None:
        for worker in self.workers:
            _stop(worker, kill=worker.job is not None)


def _stop(worker: _Worker, kill: bool) -> None:
    """End a worker: ask it to exit when idle, SIGKILL it when busy or when it does not answer."""
    if not kill:
        try:
            worker.conn.send(None)
        except (OSError, ValueError):
            kill = True
        worker.proc.join(timeout=2)
    if worker.proc.is_alive():
        worker.proc.kill()
        worker.proc.join(timeout=5)
    worker.conn.close()


def _worker_main(conn: Connection, plugins: tuple[str, ...], memory_mb: float) -> None:
    """Worker loop: receive (fn, items), send ('ok', result), ('memory', '') or ('error', type name) per item."""
    _die_with_parent()
    # Workers only read files: a warning or log record here comes from a library describing a file's
    # content, and may quote it (PHI). The readers silence them per call (header.quiet); this is the net.
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    if memory_mb > 0:
        cap = int(memory_mb * 1024 * 1024)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        import_plugins(plugins)
    except ConfigError as exc:
        conn.send(("fatal", str(exc)))
        return
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        fn, items = task
        for item in items:
            try:
                message = ("ok", fn(item))
            except MemoryError:  # past the cap: the allocation failed, the worker lives on
                message = ("memory", "")
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which rejects the file
                message = ("error", type(exc).__name__)
            conn.send(message)


def _die_with_parent() -> None:
    """SIGKILL this worker when its parent (the forkserver) exits, so a hung decode never outlives a stage
    that was killed: the forkserver exits once the stage process is gone, as the kernel then closes the
    last write end of the pipe it watches. Every forkserver child inherits a copy of that write end
    (to start processes of its own, which workers never do); it is closed here, or a hung worker would
    keep the forkserver, and so itself, alive forever."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: workers still exit when their pipe closes
        pass
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    alive_fd = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(alive_fd, int):
        with contextlib.suppress(OSError):
            os.close(alive_fd)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]
