"""Triangular solves in NumPy alone: ``R z = b`` and ``Rᵀ z = b`` for an upper triangular R.

``scipy.linalg.solve_triangular`` would do, but ``import scipy.linalg`` costs ~0.1 s (SciPy's
array-API layer pulls in ``numpy.f2py``, ``numpy.testing`` and ``numpy.random``): a third of a
``jaxlm fit`` of a small file, whose exact solver needs only these solves of a d × d factor.

Substitution row by row: ``z_i = (b_i − R_i,(i+1:) z_(i+1:)) / R_ii`` (one BLAS dot or gemv a
row; d Python steps, O(d²) flops). It is backward stable as LAPACK's ``dtrsm``/``dtrtrs``
(the computed z solves ``(R + δR) z = b`` with ``|δR| ≤ d·ε·|R|``); only the order of the sums
differs, so the last bits may too. Refinement (:mod:`jaxlm.core.exact`) makes the coefficients
independent of them anyway.
"""
from __future__ import annotations

import numpy as np

__all__ = ["solve_triangular"]


def solve_triangular(r: np.ndarray, b: np.ndarray, *, trans: bool = False) -> np.ndarray:
    """z with ``R z = b`` (``trans=False``) or ``Rᵀ z = b`` (``trans=True``); R (d, d) upper
    triangular (entries below the diagonal are not read), b (d,) or (d, m). A zero on the
    diagonal gives inf/NaN, as LAPACK's ``dtrsm`` (no check)."""
    r = np.asarray(r, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = r.shape[0]
    z = np.empty(b.shape, dtype=np.float64)
    diag = r.diagonal()
    with np.errstate(divide="ignore", invalid="ignore"):
        if trans:  # Rᵀ is lower triangular: forward, column i of R above the diagonal
            for i in range(d):
                z[i] = (b[i] - r[:i, i] @ z[:i]) / diag[i]
        else:
            for i in range(d - 1, -1, -1):
                z[i] = (b[i] - r[i, i + 1:] @ z[i + 1:]) / diag[i]
    return z
