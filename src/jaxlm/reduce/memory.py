"""The in-memory driver: a loop over row blocks (views of the caller's arrays, no copies)."""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from ..core.reduction import Reduction, Runner, fold

#: Bytes of X per block: bounds the extra memory of a pass (a block is copied only when it must
#: be centred explicitly) while keeping blocks large enough that per-block overhead stays small
#: (benchmarks/bench_exact.py: 64 MiB blocks helped d=10 but not d=50).
BLOCK_BYTES = 1 << 25


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

    return run


def arrays_runner(X, Y, w, *extra, rows: int | None = None) -> Runner:
    """:func:`runner` over :func:`blocks_of` ``(X, Y, w, *extra)``."""
    return runner(blocks_of(X, Y, w, *extra, rows=rows))
