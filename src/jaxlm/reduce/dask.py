"""The Dask driver: one accumulator per row partition, computed on the worker that holds it,
merged pairwise in a tree on the workers (depth log₂ of the partition count), so only the
accumulators (d×d summaries) cross the network; ``finish`` runs on the client.

It runs on the active scheduler (threaded, or a ``dask.distributed`` Client if one is set up);
a lost worker is recomputed by Dask's own retries. dask is an optional dependency:
``pip install "jaxlm[dask]"``.
"""
from __future__ import annotations

from ..core.reduction import Reduction, Runner

__all__ = ["runner", "tree"]


def _fold_one(reduction: Reduction, *block):
    return reduction.update(reduction.init(), *block)


def tree(items: list, combine):
    """Pairwise tree of ``combine`` over a list of dask Delayed objects."""
    from dask import delayed

    combine = delayed(combine, pure=True)
    while len(items) > 1:
        nxt = [combine(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


def runner(X, Y, w, *extra) -> Runner:
    """``run(reduction)`` over row-chunked dask arrays ``X (n, d)``, ``Y (n, m)``, ``w (n,)``
    (and any ``extra`` per-row arrays) with the same row chunks (one chunk across columns)."""
    import dask
    from dask import delayed

    parts = list(zip(*(a.to_delayed().ravel() for a in (X, Y, w) + extra)))

    def run(reduction: Reduction):
        accs = [delayed(_fold_one, pure=True)(reduction, *part) for part in parts]
        if not accs:
            return reduction.finish(reduction.init())
        acc = dask.compute(tree(accs, reduction.merge))[0]
        return reduction.finish(acc)

    return run
