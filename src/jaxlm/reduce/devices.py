"""The devices driver: rows split over a one-axis mesh of JAX devices.

Each device reduces its own rows with the reduction's jit-able ``block`` (under
``jax.shard_map``); the per-device accumulators come back stacked along a leading axis and
are merged on the host with the reduction's ``merge``, then finished. A reduction without a
``block`` (e.g. the double-double gradient, which must stay on the host: a compiler that
contracts ``a*b + c`` into an FMA breaks Dekker's product) runs its ``update`` on each
device's share of the rows on the host instead. Rows are padded to a multiple of the device
count with zero-weight rows, which every reduction ignores.

Why a gather and a host merge rather than one ``psum``: the least-squares state's merge is
not a sum (it adds a mean-shift term), and summing raw moments about a common shift instead
would cancel digits on data far from the origin. The gathered accumulators are d×d per
device, the same traffic as a ``psum`` of d×d sums.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from ..core.precision import x64_scope
from ..core.reduction import Reduction, Runner, tree_merge

__all__ = ["runner"]


def _pad(a: np.ndarray, rows: int) -> np.ndarray:
    if a.shape[0] == rows:
        return a
    return np.concatenate([a, np.zeros((rows - a.shape[0],) + a.shape[1:], a.dtype)])


def runner(X, Y, w, *extra, devices=None, dtype: str = "float64") -> Runner:
    """``run(reduction)`` with the rows of ``X (n, d)``, ``Y (n, m)``, ``w (n,)`` (and any
    ``extra`` per-row arrays) split over ``devices`` (default: all of JAX's devices)."""
    devices = list(jax.devices() if devices is None else devices)
    k = len(devices)
    npdt = np.float64 if dtype == "float64" else np.float32
    X, Y, w = (np.asarray(a, dtype=npdt) for a in (X, Y, w))
    Y = Y[:, None] if Y.ndim == 1 else Y
    rows = -(-X.shape[0] // k) * k
    arrays = tuple(_pad(np.asarray(a), rows) for a in (X, Y, w) + extra)
    share = rows // k
    mesh = Mesh(np.array(devices), ("rows",))

    def run(reduction: Reduction):
        if reduction.block is None:
            accs = [reduction.update(reduction.init(), *(a[i * share:(i + 1) * share] for a in arrays))
                    for i in range(k)]
        else:
            def local(*block):
                return jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], reduction.block(*block))

            fn = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=tuple(P("rows") for _ in arrays),
                                       out_specs=P("rows")))
            with x64_scope(dtype):
                out = fn(*(jnp.asarray(a) for a in arrays))
                out = jax.tree_util.tree_map(np.asarray, out)
            accs = [jax.tree_util.tree_map(lambda a, i=i: a[i], out) for i in range(k)]
        return reduction.finish(tree_merge(reduction, accs))

    return run
