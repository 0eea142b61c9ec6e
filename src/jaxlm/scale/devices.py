"""Several devices: the rows split over a one-axis mesh of JAX devices, the exact fit's passes run
by the devices driver (:mod:`jaxlm.reduce.devices`).

The least-squares state is formed on each device from its rows (``shard_map``; the state's
jit-able ``block``), the per-device states are gathered and merged on the host, and the solve,
the QR fallback and the double-double refinement are those of
:func:`jaxlm.core.exact.fit_reduced` — so the answer equals the single-device fit. The
refinement's double-double gradient stays on the host (per device share of the rows).
"""
from __future__ import annotations

import numpy as np

from ..core import exact
from ..reduce import devices as rdevices


def fit_sharded(X, Y, w=None, *, solver="auto", alpha=0.0, fit_intercept=True, devices=None, refine_data=None):
    """Exact fit with the rows split over ``devices`` (default: all of JAX's). Returns a Solution."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    w = np.ones(X.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    run = rdevices.runner(X, Y, w, devices=devices)
    return exact.fit_reduced(run, X.shape[1], Y.shape[1], solver=solver, alpha=alpha, fit_intercept=fit_intercept,
                             refine_data=refine_data)
