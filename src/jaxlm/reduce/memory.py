"""The in-memory driver: a loop over row blocks (views of the caller's arrays, no copies).

``run.folded`` is the same runner for reductions whose result does not depend on the order of the
rows (the exact fit's state, magnitudes and refinement gradient), as :mod:`jaxlm.reduce.stream`
has it: the rows are cut into pieces of :data:`FOLD_BYTES`, shared over threads (one per core,
:func:`jaxlm.core.blas.in_chunks`, BLAS single-threaded in each), each piece reduced on its own
and the pieces merged in row order: the result is the same, bit for bit, whatever the number of
threads. Measured at 1e6 x 50 on 2 cores (``benchmarks/bench_exact.py --robust``), the state pass
this way took 0.066 s against 0.081–0.085 s with OpenBLAS's threads over 32 MiB blocks; and OpenBLAS's
threads, which spin for ~0.1 s after each threaded call, no longer compete with a statistics
pass that follows (its threads ran 0.124 s after a threaded ``XᵀX``, 0.085 s after none).
"""
from __future__ import annotations

import os
from itertools import islice
from typing import Callable, Iterable

import numpy as np

from ..core.blas import in_chunks
from ..core.reduction import Reduction, Runner, fold

#: Bytes of X per block: bounds the extra memory of a pass (a block is copied only when it must
#: be centred explicitly) while keeping blocks large enough that per-block overhead stays small
#: (benchmarks/bench_exact.py: 64 MiB blocks helped d=10 but not d=50).
BLOCK_BYTES = 1 << 25
#: Bytes of X per piece of ``run.folded`` (fixed, so that the pieces, and so the result, do not
#: depend on the number of threads). Each piece costs ~0.1 ms of Python besides its BLAS, and a
#: piece far from the origin is centred into a copy that should stay in cache: the state pass of
#: 1e6 rows (d = 20 / 50 / 100 / 50 offset by 1e6; one run, interleaved) took 0.039 / 0.070 / 0.188 /
#: 0.089 s in 4 MiB pieces, 0.037 / 0.065 / 0.178 / 0.100 s in 8 MiB, 0.036 / 0.067 / 0.164 / 0.112 s
#: in 16 MiB. :data:`jaxlm.core.blas.HOLD_SIZE` is two pieces.
FOLD_BYTES = 1 << 23


def block_rows(d: int) -> int:
    """Rows per block for ``d`` float64 columns."""
    return max(4096, BLOCK_BYTES // (8 * max(d, 1)))


def blocks_of(X: np.ndarray, Y: np.ndarray, w: np.ndarray, *extra: np.ndarray,
              rows: int | None = None) -> Callable[[], Iterable]:
    """A re-iterable (zero-argument callable) of row blocks ``(X, Y, w, *extra)``: views, no copies;
    a scipy.sparse ``X`` (CSR) is handed out as dense row blocks (the reductions are dense; a block
    is ``rows × d``, so memory stays bounded)."""
    n = X.shape[0]
    rows = block_rows(X.shape[1] if X.ndim == 2 else 1) if rows is None else rows
    arrays = (X, Y, w) + extra

    def gen():
        for i in range(0, n, rows):
            yield tuple(_dense(a[i:i + rows]) for a in arrays)

    return gen


def _dense(a):
    return a.toarray() if hasattr(a, "toarray") else a


def runner(batches: Callable[[], Iterable]) -> Runner:
    """``run(reduction)``: one loop over ``batches()`` per call (each call is one pass)."""

    def run(reduction: Reduction):
        return reduction.finish(fold(reduction, batches()))

    run.folded = run
    return run


def _folded(pieces: Callable[[], Iterable]) -> Callable[[Reduction], object]:
    """``run.folded``: each piece reduced on its own, shared over threads, merged in row order as the
    results come in, a window of :data:`WINDOW` pieces per thread at a time (so that only that many
    pieces are held: a sparse X is densified piece by piece, and wide data's per-piece results do
    not pile up)."""
    def run(reduction: Reduction):
        acc, items = None, iter(pieces())
        while window := list(islice(items, WINDOW * (os.cpu_count() or 1))):  # (no BLAS scan for one piece)
            for part in in_chunks(lambda piece: reduction.update(reduction.init(), *piece), window):
                acc = part if acc is None else reduction.merge(acc, part)
        return reduction.finish(reduction.init() if acc is None else acc)

    return run


#: Pieces per core handed out at a time by ``run.folded``.
WINDOW = 4


def arrays_runner(X, Y, w, *extra, rows: int | None = None) -> Runner:
    """:func:`runner` over :func:`blocks_of` ``(X, Y, w, *extra)``; its ``folded`` form over pieces of
    :data:`FOLD_BYTES`."""
    run = runner(blocks_of(X, Y, w, *extra, rows=rows))
    d = X.shape[1] if X.ndim == 2 else 1
    run.folded = _folded(blocks_of(X, Y, w, *extra, rows=max(256, FOLD_BYTES // (8 * max(d, 1)))))
    return run
