"""A mergeable reduction: the one shape of every pass jaxlm makes over data.

Every fit is a few passes over rows, and each pass is a *reduction*: four plain functions ::

    init()                  -> acc       the accumulator of no rows
    update(acc, X, Y, w, *extra) -> acc  fold one block of rows into it
    merge(a, b)             -> acc       combine the accumulators of two disjoint sets of rows
    finish(acc)             -> result    what the caller wants (default: acc itself)

``merge`` is associative (up to rounding) and ``init()`` is its identity, so the same
reduction runs unchanged in a loop over in-memory blocks, over a streamed file, as a tree on
Dask workers, or one accumulator per device combined on the host. The drivers that do that
live in :mod:`jaxlm.reduce`; they know no reduction by name.

A block is a tuple of row-aligned arrays ``(X (b, d), Y (b, m), w (b,), *extra)`` (NumPy or
JAX arrays); ``extra`` are whatever other per-row arrays a reduction needs (an offset, cluster
codes, a time index), passed through by every driver untouched. Rows with ``w = 0`` must
contribute nothing: drivers pad ragged shards with them.

``block`` (optional) is a pure, jit-able ``(X, Y, w, *extra) -> acc`` over JAX arrays: the device
driver runs it on each device's rows (under ``jax.shard_map``) and merges the per-device
accumulators with ``merge``. A reduction without it runs its ``update`` on the host.

Reductions must be picklable (Dask ships them to workers): build them from module-level
functions and :func:`functools.partial`, not lambdas.

Today's reductions: the least-squares state (:func:`jaxlm.core.state.reduction`), the
double-double refinement gradient (:func:`jaxlm.core.exact.gradient_reduction`), the
statistics' pass (:func:`jaxlm.inference.stats_reduction`) and the residual sum of squares of
a gradient fit (:func:`jaxlm.inference.sse_reduction`).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, NamedTuple


def identity(acc):
    """The default ``finish``."""
    return acc


class Reduction(NamedTuple):
    """A mergeable reduction (see the module docstring)."""

    init: Callable[[], Any]
    update: Callable[..., Any]
    merge: Callable[[Any, Any], Any]
    finish: Callable[[Any], Any] = identity
    block: Callable[..., Any] | None = None


def fold(reduction: Reduction, blocks: Iterable) -> Any:
    """The (unfinished) accumulator of ``blocks``, an iterable of ``(X, Y, w, *extra)``."""
    acc = reduction.init()
    for block in blocks:
        acc = reduction.update(acc, *block)
    return acc


def tree_merge(reduction: Reduction, accs: list) -> Any:
    """Pairwise merge of a list of accumulators (depth log₂ of its length); ``init()`` if empty."""
    accs = list(accs)
    if not accs:
        return reduction.init()
    while len(accs) > 1:
        nxt = [reduction.merge(accs[i], accs[i + 1]) for i in range(0, len(accs) - 1, 2)]
        if len(accs) % 2:
            nxt.append(accs[-1])
        accs = nxt
    return accs[0]


#: A driver bound to its data: ``run(reduction) -> reduction.finish(accumulator of all rows)``.
Runner = Callable[[Reduction], Any]

__all__ = ["Reduction", "Runner", "fold", "identity", "tree_merge"]
