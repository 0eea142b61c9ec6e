"""Several devices: per-device sums combined with one ``psum``, then the usual solve.

Rows are split over a one-axis mesh (``jax.shard_map``). Each device forms, about a
shift ``s`` common to all devices (the first row, so that data far from the origin do
not cancel), the additive sums ``Σw, Σw², Σ w z, Σ w z zᵀ`` of z = [x − sx, y − sy]; one
``psum`` adds them across devices, and the centred Gram state is read off on the host.
The solve, the QR fallback and the double-double refinement are those of
:func:`jaxlm.core.exact.fit_reduced`, so the answer equals the single-device fit.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from ..core import exact
from ..core.precision import MATMUL_PRECISION, x64_scope
from ..core.state import GramState


def _local_sums(Z, w):
    zw = Z * w[:, None]
    sums = (jnp.sum(w > 0).astype(Z.dtype), jnp.sum(w), jnp.sum(w * w), jnp.sum(zw, axis=0),
            jnp.matmul(zw.T, Z, precision=MATMUL_PRECISION))
    return jax.lax.psum(sums, "rows")  # one collective for the whole tuple


def sharded_gram_state(X, Y, w, *, devices=None) -> GramState:
    """The Gram state of all rows, the rows split across ``devices`` (default: all)."""
    devices = list(jax.devices() if devices is None else devices)
    k = len(devices)
    X, Y, w = (np.asarray(a, dtype=np.float64) for a in (X, Y, w))
    d = X.shape[1]
    shift = np.concatenate([X[0], Y[0]])
    Z = np.concatenate([X, Y], axis=1) - shift
    pad = (-Z.shape[0]) % k
    if pad:  # zero-weight rows contribute nothing
        Z = np.concatenate([Z, np.zeros((pad, Z.shape[1]))])
        w = np.concatenate([w, np.zeros(pad)])
    mesh = Mesh(np.array(devices), ("rows",))
    fn = jax.jit(jax.shard_map(_local_sums, mesh=mesh, in_specs=(P("rows"), P("rows")), out_specs=P()))
    with x64_scope("float64"):
        count, wsum, wsum2, s1, s2 = (np.asarray(a, dtype=np.float64) for a in fn(jnp.asarray(Z), jnp.asarray(w)))
    mean = s1 / wsum
    M = s2 - wsum * np.outer(mean, mean)
    mean = mean + shift
    return GramState(count, wsum, wsum2, mean[:d], mean[d:], M[:d, :d], M[:d, d:], M[d:, d:])


def fit_sharded(X, Y, w=None, *, solver="auto", alpha=0.0, fit_intercept=True, devices=None,
                block_rows=65_536, refine_data=None):
    """Exact fit with the Gram pass sharded over devices. Returns a Solution."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    w = np.ones(X.shape[0]) if w is None else np.asarray(w, dtype=np.float64)

    def batches():
        for i in range(0, X.shape[0], block_rows):
            yield X[i:i + block_rows], Y[i:i + block_rows], w[i:i + block_rows]

    def accumulate(kind):
        if kind == "gram":
            state = sharded_gram_state(X, Y, w, devices=devices)
            exact._check_finite_state(state, None)
            return state
        return exact.accumulate_state(batches, X.shape[1], Y.shape[1], kind=kind)

    return exact.fit_reduced(accumulate, partial(exact.dd_gradient, batches), solver=solver, alpha=alpha,
                             fit_intercept=fit_intercept, size=X.size, refine_data=refine_data)
