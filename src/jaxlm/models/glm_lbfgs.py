"""The gradient road of :func:`jaxlm.models.glm.fit_glm` (``solver="lbfgs"``): L-BFGS on the
``jax.grad`` of the negative log-likelihood (:mod:`jaxlm.core.glm_gradient`), read back through one
IRLS pass at its coefficients (:func:`jaxlm.core.irls.solution_at`)."""
from __future__ import annotations

import warnings

from ..core import irls
from ..core.errors import InputError
from ..core.glm_passes import check_reduction, summarise
from ..core.irls import ConvergenceWarning
from .linear import _dense

__all__ = ["solve_lbfgs"]


def solve_lbfgs(run, d, family, link, *, fit_intercept, alpha, tol, max_iter, feature_names, arrays, subsample):
    from ..core.glm_gradient import fit_lbfgs

    if arrays is None:
        raise InputError("solver", "solver='lbfgs' needs the data in memory; got a streamed source. Use "
                                   "solver='irls' (one pass per iteration).")
    data = summarise(run(check_reduction(family)), family)  # validates y, weights, offsets, X first
    X, y, f, offset, vw = arrays
    g = fit_lbfgs(_dense(X), y, f, offset, vw, family=family, link=link, fit_intercept=fit_intercept,
                  alpha=alpha, tol=tol, max_iter=max_iter, y_mean=data.y_mean)
    if not g.converged:
        warnings.warn(f"solver='lbfgs' did not converge in max_iter={max_iter} iterations: largest gradient entry "
                      f"{g.grad_norm:.3g} > tol={tol:g}. Increase max_iter or use solver='irls'.",
                      ConvergenceWarning, stacklevel=4)
    return irls.solution_at(run, d, g.coef, g.intercept, family=family, link=link, fit_intercept=fit_intercept,
                            alpha=alpha, n_iter=g.n_iter, converged=g.converged, data=data)
