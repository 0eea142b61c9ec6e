"""The same exact fit on Dask: partitions → states on the workers → tree merge → solve.

Each row partition is reduced to the mergeable least-squares state on the worker that
holds it; states are merged pairwise in a tree (``dask.array.reduction``-style, depth
log₂ of the partition count) so only d×d summaries cross the network; the small solve
runs on the client. Refinement passes, when the condition number asks for them, are
the same tree reduction of double-double gradient sums. The answer equals the
in-memory fit (same state, same solve), on the threaded scheduler or on
``dask.distributed``; a lost worker is recomputed by Dask's own retries.

dask is an optional dependency: ``pip install "jaxlm[dask]"``.
"""
from __future__ import annotations

import numpy as np

from ..core import exact
from ..core.errors import InputError

_MISSING = ("dask is not installed; install the optional extra with pip install \"jaxlm[dask]\" "
            "to fit dask arrays or DataFrames.")


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(_MISSING) from exc
    return dask, da


def is_dask_collection(obj) -> bool:
    """True for dask arrays, DataFrames and Series (without importing dask if absent)."""
    mod = type(obj).__module__
    if not (mod.startswith("dask") or mod.startswith("dask_expr")):
        return False
    try:
        import dask
    except ImportError:
        return False
    return dask.is_dask_collection(obj)


def as_dask_arrays(X, y, sample_weight=None):
    """Row-chunked dask arrays X (n, d), Y (n, m), w (n,) and the feature names (or None).

    Column chunks of X are merged (one chunk across columns) so a block holds whole rows.
    """
    _, da = _dask()
    names = None
    if hasattr(X, "columns"):  # dask DataFrame
        names = np.asarray([str(c) for c in X.columns], dtype=object)
        non_numeric = [str(c) for c, t in X.dtypes.items() if not np.issubdtype(np.dtype(t), np.number)]
        if non_numeric:
            raise InputError("X", f"X must have numeric columns only; got non-numeric column(s) "
                                  f"{', '.join(non_numeric)}. Encode them (e.g. one-hot) first.")
        X = X.to_dask_array(lengths=True)
    if hasattr(y, "to_dask_array"):
        y = y.to_dask_array(lengths=True)
    X = da.asarray(X)
    y = da.asarray(y)
    if X.ndim != 2:
        raise InputError("X", f"X must be 2-D (n, d); got a dask array of shape {X.shape}.")
    one_d = y.ndim == 1
    Y = y[:, None] if one_d else y
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if any(np.isnan(c) for c in Y.chunks[0]):
        Y = Y.compute_chunk_sizes()
    if X.shape[0] != Y.shape[0]:
        raise InputError("y", f"y must have one row per row of X ({X.shape[0]}); got {Y.shape[0]}.")
    X = X.rechunk({1: -1}).astype(np.float64)
    Y = Y.rechunk({0: X.chunks[0], 1: -1}).astype(np.float64)
    if sample_weight is None:
        w = da.ones(X.shape[0], chunks=X.chunks[0], dtype=np.float64)
    else:
        w = da.asarray(sample_weight).astype(np.float64)
        if w.ndim != 1 or w.shape[0] != X.shape[0]:
            raise InputError("sample_weight", f"sample_weight must have one entry per row of X ({X.shape[0]}); "
                                              f"got shape {w.shape}.")
        w = w.rechunk(X.chunks[0])
        import dask

        lo, finite, positive = dask.compute(w.min(), da.isfinite(w).all(), (w > 0).any())
        if not finite:
            raise InputError("sample_weight", "sample_weight must be finite; got NaN/inf.")
        if lo < 0:
            raise InputError("sample_weight", f"sample_weight must be >= 0; got a minimum of {float(lo)!r}.")
        if not positive:
            raise InputError("sample_weight", "sample_weight must have at least one positive entry; got all zeros.")
    return X, Y, w, one_d, names


def _tree(items, combine):
    """Pairwise tree reduction of a list of dask Delayed objects."""
    from dask import delayed

    combine = delayed(combine, pure=True)
    while len(items) > 1:
        nxt = [combine(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


def _block_state(X, Y, w, kind):
    return exact.accumulate_state(lambda: [(X, Y, w)], X.shape[1], Y.shape[1], kind=kind)


def _merge(a, b):
    from ..core.state import merge

    return merge(a, b)


def fit_dask(X, Y, w, *, solver="auto", alpha=0.0, fit_intercept=True, dtype="float64"):
    """Exact fit of row-chunked dask arrays (see :func:`as_dask_arrays`). Returns a Solution."""
    dask, _ = _dask()
    from dask import delayed

    xb, yb, wb = (a.to_delayed().ravel() for a in (X, Y, w))
    blocks = list(zip(xb, yb, wb))

    def run(obj):  # the active scheduler: threaded, or a dask.distributed Client if one is set up
        return dask.compute(obj)[0]

    def accumulate(kind):
        states = [delayed(_block_state, pure=True)(x, y, ww, kind) for x, y, ww in blocks]
        state = run(_tree(states, _merge))
        exact._check_finite_state(state, None)
        return state

    def gradient(coef, c, sx, sy):
        parts = [delayed(exact.dd_gradient_block, pure=True)(x, y, ww, coef, c, sx, sy) for x, y, ww in blocks]
        total = run(_tree(parts, exact.dd_merge))
        return tuple(hi + lo for hi, lo in total)

    return exact.fit_reduced(accumulate, gradient, solver=solver, alpha=alpha, fit_intercept=fit_intercept,
                             size=int(X.shape[0]) * int(X.shape[1]), dtype=dtype)


def _merge_sums(a, b):
    return a.merge(b)


def statistics_sums(X, Y, w, plan):
    """The inference pass (HC meats, Σ log w, the double-double Gram) as a tree reduction on the
    workers: ``jaxlm.inference.block_sums`` per partition, merged with ``PassSums.merge``."""
    dask, _ = _dask()
    from dask import delayed

    from ..inference import block_sums

    xb, yb, wb = (a.to_delayed().ravel() for a in (X, Y, w))
    parts = [delayed(block_sums, pure=True)(plan, x, y, ww) for x, y, ww in zip(xb, yb, wb)]
    return dask.compute(_tree(parts, _merge_sums))[0]
