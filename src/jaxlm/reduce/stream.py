"""The streamed driver: each pass re-reads the source; a reader thread decodes the next block
while the current one is reduced; a progress bar on stderr counts the rows.

The source is given as ``passes(k)``: a fresh iterator over pass ``k`` (1, 2, ...) of
``(block, n_read)`` items, ``block`` a tuple ``(X, Y, w, *extra)`` and ``n_read`` being the source rows the item stands for (rows dropped
for missing values included, so that progress matches the file). Whatever the caller wants to
learn on the way (row counts, a sample, the range of the target) it learns inside that
iterator: the driver only reduces.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time
from typing import Callable, Iterator, NamedTuple

from ..core.reduction import Reduction, Runner

__all__ = ["KEEP_BYTES", "Progress", "blas_share", "prefetch", "runner"]

#: Streamed data whose first pass decodes to at most this many bytes are kept in memory for the
#: later passes instead of being read and decoded again.
KEEP_BYTES = 32 << 20

_END = object()


class _Failure(NamedTuple):
    error: BaseException


def prefetch(make: Callable[[], Iterator], *, depth: int = 1, name: str = "jaxlm-reader") -> Iterator:
    """Iterate ``make()`` in a background thread, producing up to ``depth`` items ahead.

    Reading and decoding (pyarrow) and the consumer's arithmetic (BLAS) both release the GIL,
    so they overlap. Memory stays bounded: the producer starts an item only when one of
    ``depth + 1`` permits is free, and the consumer returns its permit when it asks for the
    next item (it is done with the previous one). With ``depth=1`` at most two items are alive:
    the one being summed and the one being read. An exception in the producer is re-raised in
    the consumer; closing the consumer early stops the producer.
    """
    depth = max(1, int(depth))
    q: queue.Queue = queue.Queue()
    permits = threading.Semaphore(depth + 1)
    stop = threading.Event()

    def acquire() -> bool:
        while not stop.is_set():
            if permits.acquire(timeout=0.05):
                return True
        return False

    def work():
        try:
            it = make()
            while acquire():
                try:
                    item = next(it)
                except StopIteration:
                    q.put(_END)
                    return
                q.put(item)
                del item
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(_Failure(e))

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    first = True
    try:
        while True:
            if not first:
                permits.release()  # the consumer is done with the previous item
            first = False
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
            del item
    finally:
        stop.set()
        permits.release()
        while True:
            try:
                q.get_nowait()
            except queue.Empty:
                break
        thread.join()


class Progress:
    """A rich progress bar on stderr (rows, rows/s, ETA); silent unless enabled and stderr is a TTY."""

    def __init__(self, enabled, name: str, total: int | None):
        self.bar = None
        self.total = total
        self.task = None
        self.done = 0
        self.name = name
        if enabled is False:
            return
        try:
            on_tty = sys.stderr.isatty()
        except (AttributeError, ValueError):
            on_tty = False
        if not on_tty:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(),
                                TextColumn("{task.completed:,.0f}/{task.fields[total_text]} rows"),
                                TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self.bar.start()

    def start(self, what: str):
        if self.bar is None:
            return
        if self.task is not None:
            self.bar.remove_task(self.task)
        total = self.total
        self.done = 0
        self.t0 = time.perf_counter()
        self.task = self.bar.add_task(f"{what} {self.name}", total=total,
                                      total_text=f"{total:,}" if total else "?", rate="")

    def advance(self, rows: int):
        if self.bar is None or self.task is None:
            return
        self.done = done = self.done + rows
        dt = max(time.perf_counter() - self.t0, 1e-9)
        if self.total is not None and done > self.total:
            self.total = None
            self.bar.update(self.task, total=None, total_text="?")
        self.bar.update(self.task, completed=done, rate=f"{done / dt:,.0f} rows/s")

    def close(self):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class _Null:
    def start(self, what):
        pass

    def advance(self, rows):
        pass


def runner(passes: Callable[[int], Iterator], *, progress=None, depth: int = 1, threaded: bool = True) -> Runner:
    """``run(reduction)``: one pass over the source per call (see the module docstring).

    ``run.passes`` counts the passes made so far.
    """
    progress = _Null() if progress is None else progress

    def run(reduction: Reduction):
        run.passes += 1
        k = run.passes
        progress.start("fitting" if k == 1 else f"pass {k}: re-reading")
        items = prefetch(lambda: passes(k), depth=depth) if threaded else passes(k)
        acc = reduction.init()
        try:
            for block, n_read in items:
                progress.advance(n_read)
                if len(block[0]):
                    acc = reduction.update(acc, *block)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # stops the reader thread when a reduction raises
        return reduction.finish(acc)

    run.passes = 0
    return run


def blas_share():
    """Leave the reader thread its share of the cores while BLAS sums a block.

    Decoding (pyarrow's thread pool) and the Gram products (BLAS's threads) run at the same time;
    with both using every core, OpenBLAS's spinning threads and Arrow's compete and each slows
    down (measured on 2 cores: the state pass took 0.43 s per 1e6 x 50 rows with 2 BLAS threads,
    0.35 s with 1). So for the duration of a streamed exact fit BLAS gets half of the cores
    (``threadpoolctl``, restored afterwards; a no-op without it). Small data (``SMALL_SIZE``)
    skip it: finding the BLAS libraries costs more (~15 ms) than their threads could.
    """
    from ..core.blas import limited

    return limited((os.cpu_count() or 1) // 2)
