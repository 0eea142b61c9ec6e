"""BLAS threads: one controller for the process (threadpoolctl's), and the limits jaxlm's passes
set while they run (always restored).

- :func:`single_threaded_blas`: BLAS limited to one thread while any thread is inside
  (reference-counted). A pass that splits its rows over Python threads (:func:`in_threads`) holds
  it: OpenBLAS's own threads on chunk-sized products cost 2–3× the single-threaded time on a loaded
  2-core machine.
- :func:`held_for`: the same for a whole in-memory fit of large data (every pass shares its rows
  over threads; no call wakes OpenBLAS's spinning threads between them).
- :func:`limited`: BLAS limited to ``n`` threads for a ``with`` block (the streamed driver leaves
  the reader thread its share of the cores this way).
- :func:`dot`: the products of code that runs in pass threads (see there).
"""
from __future__ import annotations

import contextlib
import functools
import os
import queue
import threading
from typing import NamedTuple

import numpy as np

__all__ = ["blas_held", "controller", "dot", "held_for", "in_chunks", "in_threads", "limited", "pass_threads",
           "single_threaded_blas", "tall_product"]


@functools.lru_cache(maxsize=1)
def controller():
    """threadpoolctl's controller of every thread pool (found once: the scan costs 3–8 ms)."""
    from threadpoolctl import ThreadpoolController  # (comes with scikit-learn)

    return ThreadpoolController()


def _blas():
    return controller().select(user_api="blas")


def limited(n: int):
    """A context manager: BLAS limited to ``n`` threads inside, the limits restored after."""
    return controller().limit(limits=max(1, int(n)), user_api="blas")


_BLAS_LOCK, _blas_held = threading.Lock(), [0, None, 1]  # holders, the limiter, pass threads before


def pass_threads() -> int:
    """Threads a pass may use: the cores this process may run on, at most the BLAS's thread count
    before :func:`single_threaded_blas` (``OPENBLAS_NUM_THREADS=1`` means one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, _blas_held[2]) if _blas_held[0] else min(
        [cores] + [c.num_threads for c in _blas().lib_controllers]))


@contextlib.contextmanager
def single_threaded_blas():
    """BLAS limited to one thread while any thread is inside (reference-counted: concurrent passes,
    e.g. Dask tasks, restore the caller's setting when the last one leaves). A fit holds it for all
    its passes: OpenBLAS's threads are slow to set back (a pass of 5 blocks of 1e6×20 that each set
    and restored the limit took 1.3–2× as long as under one limit)."""
    with _BLAS_LOCK:
        if _blas_held[0] == 0:
            _blas_held[2], _blas_held[1] = pass_threads(), _blas().limit(limits=1)
        _blas_held[0] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas_held[0] -= 1
            if _blas_held[0] == 0:
                _blas_held[1].restore_original_limits()


def blas_held(fit):
    """``fit`` under one :func:`single_threaded_blas` for all its passes (each shares its chunks
    between threads; setting OpenBLAS's threads back after every block costs more)."""
    @functools.wraps(fit)
    def held(*args, **kwargs):
        with single_threaded_blas() if pass_threads() > 1 else contextlib.nullcontext():
            return fit(*args, **kwargs)
    return held


#: Elements (rows × columns) from which an in-memory fit holds BLAS single-threaded (:func:`held_for`):
#: two of the in-memory driver's 8 MiB pieces of X (``jaxlm.reduce.memory.FOLD_BYTES``), so that its
#: threads have two pieces to share; smaller data keep OpenBLAS's threads on their one piece.
HOLD_SIZE = 1 << 21


def held_for(size: int):
    """:func:`single_threaded_blas` for a whole fit of ``size`` elements whose passes share their rows
    over threads (``run.folded`` of :mod:`jaxlm.reduce.memory`), on more than one core; else a null
    context. No BLAS call of the fit then wakes OpenBLAS's threads, which spin ~0.1 s after each
    threaded call (even a 50 × 50 ``eigh``) and slow the next threaded pass by 30–45%."""
    if size < HOLD_SIZE or pass_threads() < 2:
        return contextlib.nullcontext()
    return single_threaded_blas()


def in_threads(job, chunks: queue.Queue) -> None:
    """Run ``job()`` (it takes chunks from ``chunks`` until none are left, calling ``task_done``
    after each) here and, for 2 chunks or more, in more threads (:func:`pass_threads` in all) with
    BLAS single-threaded: OpenBLAS's own threads on chunk-sized products cost 2–3× the single-
    threaded time on a loaded 2-core machine, and threads share the elementwise work too. Returns
    when every chunk is done (waiting for no thread that has not started)."""
    workers = min(chunks.qsize(), pass_threads()) if chunks.qsize() > 1 else 1
    with single_threaded_blas() if workers > 1 else contextlib.nullcontext():
        for _ in range(workers - 1):
            threading.Thread(target=job, name="jaxlm-pass", daemon=True).start()
        job()
        chunks.join()


def in_chunks(work, items: list) -> list:
    """``[work(item) for item in items]``, the items shared over threads (:func:`in_threads`:
    BLAS single-threaded meanwhile; on 2 cores OpenBLAS's threads, still spinning after the fit's Gram,
    slowed a single-threaded pass ~1.7×). An exception in any item is raised here."""
    out: list = [None] * len(items)
    todo: queue.Queue = queue.Queue()
    for i in range(len(items)):
        todo.put(i)
    err = np.geterr()  # the caller's floating-point error handling, in every thread (NumPy's is per thread)

    def job():
        with np.errstate(**err):
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    out[i] = work(items[i])
                except Exception as exc:  # noqa: BLE001 - raised by the caller
                    out[i] = _Raised(exc)
                finally:
                    todo.task_done()

    in_threads(job, todo)
    for r in out:
        if isinstance(r, _Raised):
            raise r.error
    return out


def dot(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` of NumPy arrays (1-D or 2-D), for code that runs in pass threads: ``np.dot`` when both
    are contiguous (C or F), else ``np.matmul``. NumPy 2.4's ``matmul`` keeps the GIL when its result has
    fewer than ~500 elements, however long the sum (``XᵀX`` at d ≤ 22, ``Xᵀb``, ``Xᵀ`` times a few
    columns), so threads took turns: two threads on ``Xᵀ[3 columns]`` of 5,041 × 50 ran at 1.0× one
    thread's speed, with ``np.dot`` 1.9×. But ``np.dot`` first copies an operand that is not contiguous
    (the streamed driver's chunks are row ranges of a column-major block), which ``matmul`` hands to BLAS
    with its stride: the streamed state pass of 4e6 × 50 took 1.85 CPU s that way against 1.37. The
    same BLAS routine either way (bits equal for contiguous operands)."""
    if _contiguous(a) and _contiguous(b):
        return np.dot(a, b, out=out)
    return np.matmul(a, b, out=out)


def _contiguous(a) -> bool:
    return a.flags.c_contiguous or a.flags.f_contiguous


#: Rows per chunk of :func:`tall_product`.
TALL_ROWS = 1 << 14


def tall_product(A, B):
    """``A.T @ B`` for tall ``A`` (n, p) and ``B`` (n, q) with a small result (per-level or per-cluster
    tables reduced to p × q): row chunks' products shared over threads with BLAS single-threaded,
    added in chunk order. OpenBLAS's own threads on this shape were erratic on the loaded 2-core
    machine (21 × 1e5 × 21: 3–600 ms; single-threaded chunks 4–12 ms)."""
    n = A.shape[0]
    if n <= TALL_ROWS:
        return A.T @ B
    parts = in_chunks(lambda s: dot(A[s:s + TALL_ROWS].T, B[s:s + TALL_ROWS]), list(range(0, n, TALL_ROWS)))
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


class _Raised(NamedTuple):
    error: BaseException
