"""The one result type every solver returns."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Solution(NamedTuple):
    """A fitted linear model ``Y ≈ X @ coef.T + intercept``.

    Attributes
    ----------
    coef : ndarray, shape (m, d)
    intercept : ndarray, shape (m,)   (zeros when no intercept is fitted)
    solver : str          the solver that produced it (``"auto"`` resolved to a concrete name)
    dtype : str           floating dtype of the arithmetic ("float64" or "float32")
    rank : int            rank of the (centred) feature matrix, intercept not counted
    n_iter : int          iterations (1 for an exact solve; refinement steps are in ``refinement_steps``)
    converged : bool
    diverged : bool
    grad_norm : float     final gradient norm of the standardised loss (0.0 for exact solvers)
    loss_curve : ndarray  standardised loss per iteration (empty for exact solvers)
    condition_number : float  2-norm condition number of the centred, column-equilibrated design
    aliased : tuple[int, ...]  indices of columns involved in exact collinearity (empty if full rank)
    refinement_steps : int    extended-precision refinement steps applied by exact solvers
    matmul_precision : str
    sse : ndarray (m,)    weighted residual sum of squares Σ w r² (exact solvers; double-double pass
                          when refined, else from the state), in the state's units: multiply by
                          2^(log2_w + 2·log2_y) for the data's (the units are zero unless the data
                          lie near the ends of the float64 range; see ``jaxlm.core.state``)
    state : the merged least-squares state (GramState or QRState; exact solvers)
    factor : the factorisation of the normal matrix used for the solve (``core.exact.Factor``);
             ``factor.solve(G)`` applies (Xcᵀ W Xc + αI)⁻¹ (centred X when an intercept is fitted),
             in the state's units
    """

    coef: np.ndarray
    intercept: np.ndarray
    solver: str
    dtype: str
    rank: int
    n_iter: int = 1
    converged: bool = True
    diverged: bool = False
    grad_norm: float = 0.0
    loss_curve: np.ndarray = np.zeros(0)
    condition_number: float = float("nan")
    aliased: tuple = ()
    refinement_steps: int = 0
    matmul_precision: str = "highest"
    sse: np.ndarray | None = None
    state: object = None
    factor: object = None
