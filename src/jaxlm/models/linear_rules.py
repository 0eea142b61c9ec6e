"""What ``LinearRegression`` and the model-file predictor share, without scikit-learn or JAX: the
parameters and their checks, the rank warning, the fitted coefficients' dtype, the NaN/inf error
and the prediction arithmetic (one source for :mod:`jaxlm.models.linear` and
:mod:`jaxlm.models.linear_doc`, so that ``jaxlm fit``'s sklearn-free path cannot drift from the
estimator)."""
from __future__ import annotations

import numpy as np

from ..core.errors import InputError, check_choice, check_nonnegative, check_positive, check_positive_int

#: ``LinearRegression``'s parameters and defaults, in ``get_params()`` order (a test keeps them equal)
PARAMS = {"alpha": 0.0, "cov_type": "nonrobust", "dtype": "float64", "fit_intercept": True, "hac_maxlags": None,
          "learning_rate": None, "max_iter": 10_000, "positive": False, "random_state": None, "robust": False,
          "solver": "auto", "tol": None, "weights_kind": "frequency"}
#: ``cov_type`` values (statsmodels' names; see :mod:`jaxlm.models.covariance`)
COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster", "HAC")
#: the gradient solvers (``jaxlm.core.gradient.METHODS``, named here without importing JAX)
GRADIENT_SOLVERS = ("gd", "lbfgs", "adam")


def linear_params(**given) -> dict:
    """``LinearRegression(**given).get_params()``, checked as ``LinearRegression`` checks them
    (InputError), without scikit-learn."""
    for name in given:
        if name not in PARAMS:
            error = TypeError(f"LinearRegression.__init__() got an unexpected keyword argument {name!r}")
            raise InputError("params", f"params must be LinearRegression parameters; got {sorted(given)} "
                                       f"({error}).")
    params = {name: given.get(name, default) for name, default in PARAMS.items()}
    check_params(params)
    if np.ndim(params["alpha"]):  # the streamed fits (jaxlm.models.tables) take one penalty for now
        raise InputError("alpha", f"fit_table and jaxlm fit take one alpha for all targets; got alpha="
                                  f"{np.asarray(params['alpha']).tolist()}. For one alpha per target fit in memory: "
                                  f"LinearRegression(alpha=[...]).fit(X, Y).")
    return params


def check_params(p: dict) -> None:
    """The checks of ``LinearRegression._check_params``, in its order."""
    from ..core.exact import SOLVERS
    from ..core.precision import check_dtype

    check_choice("solver", p["solver"], SOLVERS + GRADIENT_SOLVERS)
    check_choice("weights_kind", p["weights_kind"], ("frequency", "analytic"))
    check_alpha(p["alpha"])
    check_dtype(p["dtype"])
    check_positive_int("max_iter", p["max_iter"])
    if p["tol"] is not None:
        check_positive("tol", p["tol"])
    if p["learning_rate"] is not None:
        check_positive("learning_rate", p["learning_rate"])
    if p["positive"] and p["solver"] in GRADIENT_SOLVERS:
        raise InputError("positive", f"positive=True needs an exact solver; got solver={p['solver']!r}. Use one "
                                     f"of {', '.join(SOLVERS)}.")
    check_choice("cov_type", p["cov_type"], COV_TYPES)
    if p["hac_maxlags"] is not None:
        lags = p["hac_maxlags"]
        if isinstance(lags, bool) or not isinstance(lags, (int, np.integer)) or lags < 0:
            raise InputError("hac_maxlags", f"hac_maxlags must be an integer >= 0 or None (the automatic rule); got "
                                            f"hac_maxlags={lags!r}.")
        if p["cov_type"] != "HAC":
            raise InputError("hac_maxlags", f"hac_maxlags is used only with cov_type='HAC'; got cov_type="
                                            f"{p['cov_type']!r}. Drop hac_maxlags or set cov_type='HAC'.")
    for name in ("fit_intercept", "robust", "positive"):
        if not isinstance(p[name], (bool, np.bool_)):
            raise InputError(name, f"{name} must be True or False; got {name}={p[name]!r}.")


def check_alpha(alpha) -> None:
    """``alpha``: a finite number >= 0, or (scikit-learn's ``Ridge``) a 1-D list or array of them,
    one per target (their number is checked against the targets at fit time)."""
    if isinstance(alpha, (list, tuple, np.ndarray)):
        from ..core.target_alpha import values_of

        values_of(alpha)
        return
    check_nonnegative("alpha", alpha, fix="Use alpha=0 for ordinary least squares.")


def results_by_alpha(sol, alpha, names, results_of) -> tuple:
    """The results of ``sol``, one per target, from ``results_of(solution, alpha, idx, names)``:
    at once for one alpha (``idx`` None); for one alpha per target, per distinct alpha on the
    solution of its targets ``idx`` (:func:`jaxlm.core.target_alpha.select`, with the factor of
    that alpha), so that each target's results carry its own alpha; in target order."""
    from ..core import target_alpha as ta

    m = np.atleast_2d(sol.coef).shape[0]
    alpha = ta.per_target(alpha, m)
    if not ta.is_per_target(alpha):
        return tuple(results_of(sol, alpha, None, names))
    names = list(names) if names is not None else [f"y{k}" for k in range(m)]
    grp = ta.groups(alpha)
    parts = sol.factor.parts if isinstance(sol.factor, ta.Grouped) else (sol.factor,) * len(grp)
    res = [None] * m
    for (a, idx), factor in zip(grp, parts):
        for k, r in zip(idx, results_of(ta.select(sol, idx, factor), a, idx, [names[k] for k in idx])):
            res[k] = r
    return tuple(res)


def rank_message(solution, d: int, solver: str, names=None) -> str | None:
    """The RankWarning ``LinearRegression`` gives for this solution (None: no warning)."""
    if not (solution.rank < d and (solver not in GRADIENT_SOLVERS or solution.aliased)):
        return None
    cols = [str(names[j]) if names is not None else f"x{j}" for j in solution.aliased]
    hint = (" The Gram matrix cannot tell rank deficiency from severe ill-conditioning; try solver='qr'."
            if solver == "cholesky" else "")
    return (f"X is rank deficient: rank {solution.rank} < {d} columns"
            f"{' (' + str(d - solution.rank) + ' aliased)' if d > solution.rank else ''}; columns involved in "
            f"the collinearity: {', '.join(cols) or 'unknown'}. Returned the minimum-norm solution." + hint)


def fitted_coef(solution, one_d: bool):
    """``(coef_, intercept_)`` as ``LinearRegression`` sets them from ``solution``: in the dtype the
    fit ran in (scikit-learn's contract: float32 in, float32 out); a NumPy scalar for one target
    (as scikit-learn's: ``np.float64`` is also a Python float)."""
    dt = np.float32 if solution.dtype == "float32" else np.float64
    coef = (solution.coef[0] if one_d else solution.coef).astype(dt)
    intercept = dt(solution.intercept[0]) if one_d else solution.intercept.astype(dt)
    return coef, intercept


def finite_check(a, what: str, names=None) -> None:
    """Raise an InputError naming the rows and columns of NaN/inf in ``a`` (dense or sparse)."""
    if a.dtype.kind not in "fc":
        return
    if hasattr(a, "tocoo"):  # scipy.sparse: only the stored values can be non-finite
        c = a.tocoo()
        bad = ~np.isfinite(c.data)
        values, rows, idx = c.data[bad], np.unique(c.row[bad]), np.unique(c.col[bad])
    else:
        if np.isfinite(a).all():
            return
        bad = ~np.isfinite(a)
        values = a[bad]
        rows = np.flatnonzero(bad if a.ndim == 1 else bad.any(axis=1))
        idx = None if a.ndim == 1 else np.flatnonzero(bad.any(axis=0))
    if rows.size == 0:
        return
    cols = ""
    if idx is not None:
        labels = [str(names[i]) if names is not None else str(i) for i in idx[:10]]
        cols = f" in column(s) {', '.join(labels)}{' ...' if len(idx) > 10 else ''}"
    kinds = []
    if np.isnan(values).any():
        kinds.append("NaN")
    if np.isinf(values).any():
        kinds.append("inf")
    raise InputError(what, f"{what} contains {' and '.join(kinds)}{cols} ({len(rows)} row(s), first at row "
                           f"{int(rows[0])}); a linear model needs finite values. Drop or impute those rows.")


def predict_matrix(X, coef, intercept, names=None):
    """``X @ coef.T + intercept`` in float64 (X dense or scipy.sparse), returned in ``coef``'s dtype;
    NaN/inf in X raise the InputError naming them (located only when the predictions show them)."""
    c = np.asarray(coef, dtype=np.float64)
    pred = np.asarray(X @ c.T if hasattr(X, "tocsr") else np.asarray(X, dtype=np.float64) @ c.T) + intercept
    pred = pred.astype(np.asarray(coef).dtype, copy=False)
    if not np.all(np.isfinite(pred)):  # locate NaN/inf only when they show (no extra pass otherwise)
        finite_check(X if hasattr(X, "tocoo") else np.asarray(X), "X", names)
    return pred


def mergeable_state(solver: str, state):
    """``state`` when ``partial_fit`` of an estimator with ``solver`` can continue from it (the
    form the solver reads: :func:`jaxlm.core.exact.state_kind`), else None."""
    from ..core import exact

    if state is None or solver not in exact.SOLVERS:
        return None
    return state if type(state).__name__ == ("GramState" if exact.state_kind(solver) == "gram" else "QRState") \
        else None
