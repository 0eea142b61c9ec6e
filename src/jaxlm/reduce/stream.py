"""The streamed driver: each pass re-reads the source; a reader thread decodes the next block
while the current one is reduced; a progress bar on stderr counts the rows.

The source is given as ``passes(k)``: a fresh iterator over pass ``k`` (1, 2, ...) of
``(block, n_read)`` items, ``block`` a tuple ``(X, Y, w, *extra)`` and ``n_read`` being the source rows the item stands for (rows dropped
for missing values included, so that progress matches the file). Whatever the caller wants to
learn on the way (row counts, a sample, the range of the target) it learns inside that
iterator: the driver only reduces.

``run.folded`` is the same runner for reductions whose result does not depend on the order of
the rows (the exact fit's state, magnitudes and refinement gradient): each block is cut into
chunks of about :data:`CHUNK_BYTES` (whose temporaries stay in cache: the double-double gradient
took 2.5x the time on 14 MiB blocks) and, after the first few (folded in the consumer thread), the
chunks are folded round-robin by one worker thread per core (:func:`fold_workers`; BLAS
single-threaded in each), one accumulator each, merged in a fixed order at the end. Chunk ``i``
always goes to the same accumulator, so the result does not depend on the threads' timing. On
the shared 2-core machine (load ~4) the refinement pass of a 4e6 x 50 Parquet file took 2.6-3.1 s
with the gradient summed in the consumer thread in whole blocks, 1.9 s folded (the gradient's
CPU: 1.9-2.0 s -> 1.0-1.2 s); with the gradient of :func:`jaxlm.core.passes.dd_gradient_block`
formed by BLAS products (0.56-0.59 CPU s), the pass takes 1.5 CPU s: as much as the state pass
(decode 0.55, copy to float64 blocks 0.13, the update ~0.5; ``bench_stream.py --breakdown``).
"""
from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from typing import Callable, Iterator, NamedTuple

from ..core.reduction import Reduction, Runner

__all__ = ["CHUNK_BYTES", "KEEP_BYTES", "Progress", "blas_share", "chunks", "prefetch", "runner"]

#: Streamed data whose first pass decodes to at most this many bytes are kept in memory for the
#: later passes instead of being read and decoded again.
KEEP_BYTES = 32 << 20
#: Bytes per chunk (all of a block's arrays) that ``run.folded`` hands to a reduction's ``update``:
#: its temporaries then stay in cache (L2 1 MiB per core, L3 32 MiB shared on the 2-core machine):
#: the double-double gradient of 1e6 x 50 rows took 0.74-0.86 s CPU in blocks of 35,715 rows
#: (14 MiB), 0.31-0.35 s in chunks of 6,000-8,192; the Gram's update is as fast (0.12 s) in
#: chunks of 5,120 rows as in blocks of 35,715. The gradient by BLAS products (one core, per 4e6 x
#: 50 rows): 0.58-0.62 s in chunks of 5,875-6,854 rows (this size), 0.71-0.87 s in 2,285-3,739.
CHUNK_BYTES = 5 << 19

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


def chunks(block: tuple, chunk_bytes: int = CHUNK_BYTES) -> list[tuple]:
    """``block`` (row-aligned arrays) cut into equal row ranges of about ``chunk_bytes`` (views)."""
    n = len(block[0])
    row_bytes = sum(a.nbytes // max(len(a), 1) for a in block)
    rows = max(256, int(chunk_bytes) // max(row_bytes, 1))
    if n <= rows + rows // 2:
        return [block]
    step = -(-n // -(-n // rows))
    return [tuple(a[s:s + step] for a in block) for s in range(0, n, step)]


class _Worker:
    """One accumulator, folded in a thread from the chunks it is given (in the order given)."""

    def __init__(self, reduction: Reduction, failed: threading.Event, name: str, inbox: int):
        self.reduction, self.failed = reduction, failed
        self.inbox: queue.Queue = queue.Queue(maxsize=inbox)
        self.acc, self.error = None, None
        self.thread = threading.Thread(target=self._work, name=name, daemon=True)
        self.thread.start()

    def _work(self):
        try:
            acc = self.reduction.init()
            while (chunk := self.inbox.get()) is not _END:
                acc = self.reduction.update(acc, *chunk)
                del chunk
            self.acc = acc
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self.error = e
            self.failed.set()
            while self.inbox.get() is not _END:  # let the feeder finish
                pass

    def put(self, item):
        while True:
            try:
                self.inbox.put(item, timeout=0.05)
                return
            except queue.Full:
                if not self.thread.is_alive():
                    return


#: Chunks handed out but not yet summed, all workers together (bounds the memory they hold).
_IN_FLIGHT = 16
#: The first chunks of a pass are folded in the consumer thread; threads start (and BLAS is set to
#: one thread each, a search of the loaded libraries: ~10 ms the first time) only after these
#: many, so that small data (the CLI on a small file) pay for neither.
_INLINE_CHUNKS = 4


def _fold(reduction: Reduction, items: Iterator, advance, workers: int, chunk_bytes: int):
    """The accumulator of ``items`` (``(block, n_read)``) cut into :func:`chunks`: the first
    :data:`_INLINE_CHUNKS` folded here, chunk ``i`` after them by worker ``i % workers``; the
    accumulators merged in that order (here, then the workers)."""
    acc, pool, failed, i = reduction.init(), None, threading.Event(), 0
    stack = contextlib.ExitStack()
    try:
        for block, n_read in items:
            advance(n_read)
            if not len(block[0]):
                continue
            for chunk in chunks(block, chunk_bytes):
                if workers < 2 or i < _INLINE_CHUNKS:
                    acc = reduction.update(acc, *chunk)
                else:
                    if pool is None:
                        stack.enter_context(_single_blas())
                        pool = [_Worker(reduction, failed, f"jaxlm-fold-{k}", max(2, _IN_FLIGHT // workers))
                                for k in range(workers)]
                    pool[i % workers].put(chunk)
                i += 1
            block = chunk = None  # not held while the next block is read
            if failed.is_set():
                break
    finally:
        if pool is not None:
            for w in pool:
                w.put(_END)
            for w in pool:
                w.thread.join()
        stack.close()
    for w in pool or ():
        if w.error is not None:
            raise w.error
    for w in pool or ():
        acc = reduction.merge(acc, w.acc)
    return acc


def fold_workers() -> int:
    """Worker threads of ``run.folded``: the cores this process may run on (at most
    ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` when set); one where JAX
    computes on an accelerator (its x64 setting is per thread)."""
    from ..core.precision import on_accelerator

    if on_accelerator():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.strip().isdigit() and int(value) > 0:
            cores = min(cores, int(value))
    return max(1, cores)


def runner(passes: Callable[[int], Iterator], *, progress=None, depth: int = 1, threaded: bool = True,
           chunk_bytes: int = CHUNK_BYTES, workers: int | None = None) -> Runner:
    """``run(reduction)``: one pass over the source per call (see the module docstring).

    ``run.passes`` counts the passes made so far. ``run.folded(reduction)`` is a pass for an
    order-free reduction: chunks of ``chunk_bytes``, folded in ``workers`` threads (default
    :func:`fold_workers`).
    """
    progress = _Null() if progress is None else progress

    def one_pass(reduction: Reduction, folded: bool):
        run.passes += 1
        k = run.passes
        progress.start("fitting" if k == 1 else f"pass {k}: re-reading")
        items = prefetch(lambda: passes(k), depth=depth) if threaded else passes(k)
        try:
            if folded:
                n = fold_workers() if workers is None else max(1, int(workers))
                return reduction.finish(_fold(reduction, items, progress.advance, n, chunk_bytes))
            acc = reduction.init()
            for block, n_read in items:
                progress.advance(n_read)
                if len(block[0]):
                    acc = reduction.update(acc, *block)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # stops the reader thread when a reduction raises
        return reduction.finish(acc)

    def run(reduction: Reduction):
        return one_pass(reduction, False)

    run.passes = 0
    run.folded = lambda reduction: one_pass(reduction, True)
    return run


def _single_blas():
    from ..core.blas import single_threaded_blas

    return single_threaded_blas()


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
