"""scikit-learn compatible ``LinearRegression`` on jaxlm's exact and gradient solvers."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning as _SkConvergenceWarning
from sklearn.utils._available_if import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ..core import exact, exact_sums, gradient, nnls
from ..core import target_alpha as ta
from ..core import state as st
from ..core.blas import held_for
from ..core.errors import InputError, RankWarning
from ..core.precision import check_dtype
from ..core.solution import Solution
from ..core.state import merge as merge_states
from ..inference import cluster_grams, regression_results
from ..inference import predict_interval as inference_predict_interval
from ..inference import summary as inference_summary
from ..reduce import memory
from ..scale.dask import is_dask_collection
from .covariance import apply_params, group_columns, needs_hc
from .frames import formula_design
from .linear_rules import (check_params, finite_check, fitted_coef, mergeable_state, predict_matrix, rank_message,
                           results_by_alpha)

EXACT_SOLVERS = exact.SOLVERS
GRADIENT_SOLVERS = gradient.METHODS
SOLVERS = EXACT_SOLVERS + GRADIENT_SOLVERS
#: sklearn estimator checks that a solver truly cannot pass, with the reason
#: (passed to ``parametrize_with_checks(expected_failed_checks=...)``).
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "adam": {
        "check_sample_weight_equivalence_on_dense_data": (
            "minibatch Adam is stochastic: weighting a row and repeating it draw different minibatches, so the "
            "two fits agree only to the optimizer's noise level, not to the check's rtol=1e-7"),
        "check_sample_weight_equivalence_on_sparse_data": (
            "minibatch Adam is stochastic (as on dense data): the weighted and repeated fits draw different "
            "minibatches"),
    },
}


class ConvergenceWarning(_SkConvergenceWarning):
    """A gradient solver did not converge or diverged (a sklearn ConvergenceWarning)."""


#: scipy.sparse formats accepted for X (held as CSR: row blocks are cheap to slice)
SPARSE = ("csr", "csc", "coo")


def _csr(X):
    return X.tocsr() if hasattr(X, "tocsr") else X


def _dense(X):
    return X.toarray() if hasattr(X, "toarray") else X


def _target_names(y):
    """The names of a pandas Series (its name) or DataFrame (its columns) target, when they are
    strings; None otherwise (the targets are then called y, or y0, y1, ...)."""
    name = getattr(y, "name", None) if getattr(y, "ndim", 0) == 1 else None
    if isinstance(name, str) and name:
        return (name,)
    cols = getattr(y, "columns", None)
    if getattr(y, "ndim", 0) == 2 and cols is not None and all(isinstance(c, str) and c for c in cols):
        return tuple(cols)
    return None


class LinearRegression(RegressorMixin, BaseEstimator):
    """Ordinary (and ridge) least squares with exact or gradient solvers.

    Parameters
    ----------
    solver : {"auto", "cholesky", "qr", "svd", "gd", "lbfgs", "adam"}, default "auto"
        Exact solvers read the solution off a one-pass mergeable state and refine it in
        double-double arithmetic, at least one step for float64 (not with ``positive``; "auto" picks
        Cholesky or QR by the measured condition, and the minimum-norm SVD solution for
        rank-deficient designs). Gradient solvers run jitted optax loops on
        standardised data.
    fit_intercept : bool, default True
    alpha : float ≥ 0 or array of shape (n_targets,), default 0.0
        Ridge penalty ``α‖β‖²`` (the intercept is never penalised), as in sklearn ``Ridge``; an
        array gives each target of a 2-D y its own penalty (exact solvers; one factor of the
        shared state per distinct penalty, :mod:`jaxlm.core.target_alpha`).
    dtype : {"float64", "float32"}, default "float64"
        Arithmetic precision. float64 is what the accuracy guarantees are for.
    tol : float > 0 or None
        Gradient solvers: stop when the gradient norm of the standardised loss ≤ tol
        (default 1e-10 in float64, 1e-5 in float32). Ignored by exact solvers.
    max_iter : int ≥ 1, default 10000
        Gradient solvers' iteration bound.
    learning_rate : float > 0 or None
        Gradient solvers' step size (default: gd 0.1, adam 0.01, lbfgs line search).
    random_state : int or None
        Seed of the minibatch sampling of "adam".
    weights_kind : {"frequency", "analytic"}, default "frequency"
        Meaning of ``sample_weight`` for the statistics. Frequency weights count rows (a
        weight of 3 is three identical rows: ``n_obs = Σw``, ``df_resid = Σw − p``); analytic
        weights are inverse variances (WLS, as statsmodels ``WLS``: ``n_obs`` = rows with
        ``w > 0``, ``df_resid = n_obs − p``). The coefficients are the same either way.
    robust : bool, default False
        Also compute the heteroskedasticity-consistent covariances HC0–HC3 during ``fit``
        (one extra pass over the data, several times the cost of the fit itself on large
        data); without it ``results_.cov("HC1")`` raises and says so.
    cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster", "HAC"}, default "nonrobust"
        The covariance that ``results_`` (standard errors, t, p, intervals, ``summary()``,
        ``predict_interval``) use unless told otherwise, with statsmodels' names. An HC kind
        takes one extra pass over the data that computes that kind only (HC0 and HC1 together;
        ``robust=True`` computes all four, at about twice the cost);
        ``"cluster"`` needs ``fit(X, y, groups=...)`` (one column: one-way; two: two-way,
        Cameron–Gelbach–Miller), CR1 with statsmodels' small-sample factor
        ``G/(G−1)·(n−1)/(n−k)`` and ``G − 1`` degrees of freedom; ``"HAC"`` is Newey–West
        (Bartlett kernel) for rows in time order, without small-sample correction.
    hac_maxlags : int ≥ 0 or None, default None
        HAC lags; None: statsmodels' rule ``floor(4·(n/100)^(2/9))``. Lag 0 is HC0.
    positive : bool, default False
        Constrain the coefficients to be ≥ 0 (non-negative least squares, as scikit-learn's
        ``LinearRegression(positive=True)``; the intercept is free), read off the exact state
        (:mod:`jaxlm.core.nnls`). Exact solvers only. Constrained estimates carry no t/F
        inference (``results_`` says so).

    Attributes
    ----------
    coef_ : ndarray (d,) or (m, d);  intercept_ : float or ndarray (m,)
    rank_ : int, rank of X (intercept not counted);  n_iter_ : int (1 for exact solvers)
    solver_ : str, the solver actually used;  dtype_ : str;  condition_number_ : float
    converged_ : bool;  solution_ : jaxlm.core.solution.Solution
    results_ : jaxlm.inference.RegressionResults (a tuple of them, one per target, for 2-D y):
        standard errors, t, p, intervals, R², F, AIC/BIC, covariances (see ``summary()``).
    n_features_in_, feature_names_in_ : as in scikit-learn.
    """

    def __init__(self, *, solver="auto", fit_intercept=True, alpha=0.0, dtype="float64", tol=None,
                 max_iter=10_000, learning_rate=None, random_state=None, weights_kind="frequency", robust=False,
                 positive=False, cov_type="nonrobust", hac_maxlags=None):
        self.solver = solver
        self.fit_intercept = fit_intercept
        self.alpha = alpha
        self.dtype = dtype
        self.tol = tol
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.weights_kind = weights_kind
        self.robust = robust
        self.positive = positive
        self.cov_type = cov_type
        self.hac_maxlags = hac_maxlags

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.sparse = True
        return tags

    # -- validation ---------------------------------------------------------------------------
    def _check_params(self):
        check_params(self.get_params())

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, groups=None):
        """Fit the model. ``sample_weight`` are frequency weights: an integer weight k gives
        exactly the fit of repeating that row k times (``weights_kind`` says otherwise for the
        statistics). ``groups``: the cluster column(s) for ``cov_type="cluster"``."""
        self._check_params()
        # left by an earlier jaxlm.io fit of this object, or by partial_fit (its batches' sums: a later
        # partial_fit continues from this fit's state alone)
        for stale in ("formula_", "target_names_", "state_", "_exact_sums", "_cluster_grams"):
            self.__dict__.pop(stale, None)
        if groups is not None and self.cov_type != "cluster":
            raise InputError("groups", f"groups= is used only with cov_type='cluster'; got cov_type={self.cov_type!r}. "
                                       f"Set cov_type='cluster' to cluster the standard errors by it.")
        if is_dask_collection(X) or is_dask_collection(y):
            return self._fit_dask(X, y, sample_weight, groups)
        targets = _target_names(y)
        if targets is not None:
            self.target_names_ = targets
        X, y = validate_data(self, X, y, ensure_all_finite=False, dtype=(np.float64, np.float32),
                             multi_output=True, y_numeric=True, accept_sparse=SPARSE)
        X = _csr(X)
        y = np.asarray(y)
        if y.ndim > 2:
            raise InputError("y", f"y must be 1-D (n,) or 2-D (n, m); got an array of shape {y.shape}.")
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        n, d = X.shape
        w = self._check_weights(sample_weight, X)
        with held_for(n * d):  # every pass shares its pieces of X over threads (run.folded)
            sol = self._solve(X, Y, w, self._alpha(Y.shape[1]))
            self._set_solution(sol, y.ndim == 1, d)
            self._keep_state(sol)
            self._set_results(sol, y.ndim == 1, run=memory.arrays_runner(X, Y, w),
                              run_with=lambda *extra: memory.arrays_runner(X, Y, w, *extra), groups=groups,
                              n_rows=n, subset=lambda idx: (memory.arrays_runner(X, Y[:, idx], w),
                                                            lambda *extra: memory.arrays_runner(X, Y[:, idx], w, *extra)))
        return self

    def _alpha(self, m: int):
        """``alpha`` for ``m`` targets: a float, or one penalty per target (exact solvers only)."""
        alpha = ta.per_target(self.alpha, m)
        if ta.is_per_target(alpha) and self.solver in GRADIENT_SOLVERS:
            raise InputError("alpha", f"one alpha per target needs an exact solver; got solver={self.solver!r} with "
                                      f"alpha={alpha.tolist()}. Use one of {', '.join(EXACT_SOLVERS)}, or one alpha.")
        return alpha

    def _set_results(self, sol: Solution, one_d: bool, *, run=None, run_with=None, groups=None, n_rows=0,
                     subset=None):
        """``results_`` read off the state and solution; ``run`` (a driver of :mod:`jaxlm.reduce`
        over the data again) enables the HC covariances (``robust=True`` or an HC ``cov_type``)
        and the refinement of (XᵀWX)⁻¹ on small, ill-conditioned data; ``run_with(*extra)`` the
        cluster/HAC pass of ``cov_type`` (:mod:`jaxlm.models.covariance`). With one alpha per
        target the targets of each distinct alpha get their results from their own factor
        (``subset(idx)`` gives ``(run, run_with)`` over those targets' columns), each carrying
        its alpha."""
        def results_of(part, alpha, idx, names):
            runs = (run, run_with) if idx is None else subset(idx) if subset is not None else (None, None)
            return self._results_of(part, alpha, *runs, groups, n_rows, names)

        res = results_by_alpha(sol, self.alpha, getattr(self, "target_names_", None), results_of)
        self.results_ = res[0] if one_d else res

    def _results_of(self, sol, alpha, run, run_with, groups, n_rows, target_names):
        """The results of ``sol`` (its targets sharing ``alpha``), as :meth:`_set_results` describes."""
        params = self.get_params()
        res = regression_results(sol, fit_intercept=self.fit_intercept, weights_kind=self.weights_kind,
                                 alpha=alpha, run=run, robust=needs_hc(params),
                                 feature_names=getattr(self, "feature_names_in_", None), target_names=target_names)
        return apply_params(res, params, solution=sol, run_with=run_with, groups=groups, n_rows=n_rows,
                            data=run is not None or run_with is not None)

    def save(self, path, **kwargs):
        """Write the fitted model to a versioned JSON file (never pickle); ``jaxlm.load`` reads it."""
        from ..io.model_file import write_document
        from .linear_doc import model_to_dict

        return write_document(path, model_to_dict(self, **kwargs))

    def summary(self, *, level=0.95, cov=None):
        """The regression table (text when printed, HTML in Jupyter, ``to_frame()``, ``to_dict()``),
        under ``cov`` (default: the fit's ``cov_type``)."""
        check_is_fitted(self)
        first = self.results_ if hasattr(self.results_, "cov_type") else self.results_[0]
        return inference_summary(self.results_, level=level, cov=first.cov_type if cov is None else cov)

    def predict_interval(self, X, *, kind="confidence", level=0.95):
        """Mean prediction with a confidence or prediction interval, as R's ``predict(interval=)``.

        Returns an ``Interval(mean, lower, upper)`` of arrays (n,) (or (n, m) for several targets).
        """
        check_is_fitted(self)
        X = _dense(self._design(X))
        finite_check(X, "X", getattr(self, "feature_names_in_", None))
        return inference_predict_interval(self.results_, np.asarray(X, dtype=np.float64), kind=kind, level=level)

    def _design(self, X):
        """The model matrix of ``X``: a table (pandas, polars, pyarrow) goes through the model's
        formula when it was fitted with one (:mod:`jaxlm.models.frames`); otherwise ``X`` is
        checked against the fitted features as scikit-learn does."""
        design = formula_design(self, X)
        if design is None:
            return _csr(validate_data(self, X, reset=False, ensure_all_finite=False, dtype=(np.float64, np.float32),
                                      accept_sparse=SPARSE))
        if design.shape[1] != self.n_features_in_:
            raise InputError("X", f"the formula gives {design.shape[1]} model columns but the model has "
                                  f"{self.n_features_in_}; the model file and its formula disagree.")
        return design

    def _fit_dask(self, X, y, sample_weight, groups=None):
        """Dask arrays/DataFrames: per-partition states on the workers, merged in a tree."""
        from ..scale import dask as dask_backend

        if self.solver in GRADIENT_SOLVERS:
            raise InputError("solver", f"dask input needs an exact solver; got solver={self.solver!r}. Use one of "
                                       f"{', '.join(EXACT_SOLVERS)}.")
        X, Y, w, one_d, names = dask_backend.as_dask_arrays(X, y, sample_weight)
        self.__dict__.pop("feature_names_in_", None)  # from an earlier fit with named columns
        self.n_features_in_ = int(X.shape[1])
        if names is not None:
            self.feature_names_in_ = names
        alpha = self._alpha(int(Y.shape[1]))
        sol = dask_backend.fit_dask(X, Y, w, solver=self.solver, alpha=alpha, fit_intercept=self.fit_intercept,
                                    dtype=check_dtype(self.dtype), names=names,
                                    refine_data=False if self.positive else None)  # (as in _solve)
        sol = self._constrain(sol, alpha)
        self._set_solution(sol, one_d, int(X.shape[1]))
        self._keep_state(sol)
        # the statistics' pass, and a cluster or HAC pass (partitions merged in row order), on the workers too
        self._set_results(sol, one_d, run=dask_backend.runner(X, Y, w),
                          run_with=lambda *extra: dask_backend.runner(X, Y, w, *extra), groups=groups,
                          n_rows=int(X.shape[0]),
                          subset=lambda idx: (dask_backend.runner(X, Y[:, idx], w),
                                              lambda *extra: dask_backend.runner(X, Y[:, idx], w, *extra)))
        return self

    @available_if(lambda self: self.solver in EXACT_SOLVERS)
    def partial_fit(self, X, y, sample_weight=None, groups=None):
        """Add a batch of rows to the model: the state of all rows seen so far is merged and
        solved again, and refined against double-double sums of the batches
        (:mod:`jaxlm.core.exact_sums`), so that after the last batch the coefficients are the
        exact least-squares solution of all rows, as a one-shot ``fit``. Exact solvers;
        ``cov_type="nonrobust"``, or ``"cluster"`` with each batch's ``groups`` (per-cluster Grams
        are kept: :mod:`jaxlm.inference.cluster_grams`); HC and HAC need a pass over all rows."""
        self._check_params()
        if self.solver in GRADIENT_SOLVERS:
            raise InputError("solver", f"partial_fit needs an exact solver; got solver={self.solver!r}. Use one of "
                                       f"{', '.join(EXACT_SOLVERS)}.")
        if self.cov_type not in ("nonrobust", "cluster"):
            raise InputError("cov_type", f"partial_fit sees each batch once, and cov_type={self.cov_type!r} needs a "
                                         f"pass over all rows; got cov_type={self.cov_type!r}. Use fit() (or "
                                         f"jaxlm.fit_table for a file), or cov_type='nonrobust' or 'cluster'.")
        if groups is not None and self.cov_type != "cluster":
            raise InputError("groups", f"groups= is used only with cov_type='cluster'; got cov_type={self.cov_type!r}.")
        first = not hasattr(self, "state_")
        if first and _target_names(y) is not None:
            self.target_names_ = _target_names(y)
        X, y = validate_data(self, X, y, reset=first, ensure_all_finite=False, dtype=(np.float64, np.float32),
                             multi_output=True, y_numeric=True, accept_sparse=SPARSE)
        X = _dense(X)  # one batch at a time: its dense copy is the batch's size
        y = np.asarray(y)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if not first and Y.shape[1] != self.state_.mean_y.shape[0]:
            raise InputError("y", f"y must have the {self.state_.mean_y.shape[0]} target column(s) of the earlier "
                                  f"batches; got {Y.shape[1]}.")
        w = self._check_weights(sample_weight, X)
        with held_for(X.size):  # the state and the sums share their rows over threads
            grams = None  # checked before the model changes
            if self.cov_type == "cluster":
                grams = self._add_cluster_grams(first, X, Y, w, group_columns(groups, X.shape[0]))
            batch = exact.state_of(memory.arrays_runner(X, Y, w).folded, X.shape[1], Y.shape[1],
                                   kind=exact.state_kind(self.solver), dtype=check_dtype(self.dtype),
                                   on_nonfinite=lambda: self._locate_nonfinite(X, Y))
            self.state_ = batch if first else merge_states(self.state_, batch)
            alpha = self._alpha(Y.shape[1])
            sol = exact.solve_state(self.state_, alpha=alpha, fit_intercept=self.fit_intercept,
                                    solver=self.solver, dtype=check_dtype(self.dtype), **self._names())
            sums = self._add_exact_sums(first, X, Y, w)
            if sums is not None:
                sol = exact_sums.refine_solution(sol, sums, alpha=alpha, fit_intercept=self.fit_intercept)
            sol = self._constrain(sol, alpha)
            self._set_solution(sol, y.ndim == 1, X.shape[1])
            run_with = None
            if self.cov_type == "cluster":  # the cluster pass answered from the per-cluster Grams of all batches
                self._cluster_grams = grams
                centre = np.asarray(self.state_.mean_x, dtype=np.float64) if self.fit_intercept else None
                found = cluster_grams.meats(grams, sol.coef, sol.intercept, centre)  # as clustered() asks
                run_with = lambda *cols: (lambda reduction: found)  # noqa: E731
            self._set_results(sol, y.ndim == 1, run_with=run_with, groups=groups, n_rows=X.shape[0])
        return self

    def _add_cluster_grams(self, first: bool, X, Y, w, cols):
        prev = None if first else getattr(self, "_cluster_grams", None)
        if not first and prev is None:
            raise InputError("cov_type", "partial_fit with cov_type='cluster' needs the clusters of every batch from "
                                         "the first on; this model was fitted without them. Refit from the first "
                                         "batch with cov_type='cluster'.")
        batch = cluster_grams.batch_grams(X, Y, w, cols, fit_intercept=self.fit_intercept,
                                          shift=None if prev is None else prev.shift)
        return batch if prev is None else cluster_grams.merge_grams(prev, batch)

    def _add_exact_sums(self, first: bool, X, Y, w):
        """The double-double sums of all batches so far (:mod:`jaxlm.core.exact_sums`), against
        which partial_fit refines the state's solution to the exact one; None (the state's
        solution stands) for float32, for data the state had to rescale (beyond 2^±100), and for
        a model whose earlier batches were not summed (loaded from a file)."""
        prev = None if first else getattr(self, "_exact_sums", None)
        if check_dtype(self.dtype) != "float64" or st.units_of(self.state_).scaled or (not first and prev is None):
            self._exact_sums = None
            return None
        shift = prev.shift if prev is not None else (None if self.fit_intercept else np.zeros(X.shape[1] + Y.shape[1]))
        with np.errstate(over="ignore", invalid="ignore"):
            batch = exact_sums.sums_of_batch(X, Y, w, shift)
        sums = batch if prev is None else exact_sums.merge_sums(prev, batch)
        self._exact_sums = sums if np.all(np.isfinite(sums.hi)) else None
        return self._exact_sums

    def _check_weights(self, sample_weight, X):
        n = X.shape[0]
        if sample_weight is None:
            return np.ones(n)
        try:
            sw = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError("sample_weight", f"sample_weight must be numeric; {exc}.") from None
        if sw.ndim == 0:
            sw = np.full(n, float(sw))
        if sw.ndim != 1 or sw.shape[0] != n:
            got = sw.shape[0] if sw.ndim == 1 else sw.shape
            raise InputError("sample_weight", f"sample_weight must have one entry per row of X ({n}); got shape "
                                              f"{got}.")
        bad = ~np.isfinite(sw)
        if bad.any():
            raise InputError("sample_weight", f"sample_weight must be finite; got NaN/inf at rows "
                                              f"{np.flatnonzero(bad)[:10].tolist()}.")
        if (sw < 0).any():
            raise InputError("sample_weight", f"sample_weight must be >= 0; got negative weights at rows "
                                              f"{np.flatnonzero(sw < 0)[:10].tolist()}.")
        if not (sw > 0).any():
            raise InputError("sample_weight", "sample_weight must have at least one positive entry; got all "
                                              "zeros.")
        return sw

    def _locate_nonfinite(self, X, Y):
        finite_check(X, "X", getattr(self, "feature_names_in_", None))
        finite_check(Y[:, 0] if Y.shape[1] == 1 else Y, "y")

    def _solve(self, X, Y, w, alpha) -> Solution:
        dtype = check_dtype(self.dtype)
        if self.solver in GRADIENT_SOLVERS:
            X = _dense(X)  # the gradient solvers hold the data on the device
            self._locate_nonfinite(X, Y)
            sol = gradient.fit_gradient(X, Y, w, method=self.solver, fit_intercept=self.fit_intercept,
                                        alpha=alpha, dtype=dtype, learning_rate=self.learning_rate,
                                        tol=self.tol, max_iter=self.max_iter, random_state=self.random_state,
                                        **self._names())
            return self._check_gradient(sol, X, Y, w)
        # the fit's passes are order-free: their rows shared over threads (jaxlm.reduce.memory)
        # (positive=True: the non-negative solution is read off the state; a refinement would be discarded)
        sol = exact.fit_reduced(memory.arrays_runner(X, Y, w).folded, X.shape[1], Y.shape[1], solver=self.solver,
                                alpha=alpha, fit_intercept=self.fit_intercept,
                                refine_data=False if self.positive else None, dtype=dtype,
                                on_nonfinite=lambda: self._locate_nonfinite(X, Y), **self._names())
        return self._constrain(sol, alpha)

    def _constrain(self, sol: Solution, alpha) -> Solution:
        """The non-negative solution (``positive=True``) from the exact solution's state."""
        if not self.positive:
            return sol
        return nnls.nonnegative(sol, alpha=alpha, fit_intercept=self.fit_intercept)

    def _tol_text(self) -> str:
        """``tol`` as used: the value given, or the dtype's default with "(the default)"."""
        if self.tol is not None:
            return f"{self.tol:g}"
        return f"{gradient.DEFAULT_TOL[check_dtype(self.dtype)]:g} (the default)"

    def _names(self) -> dict:
        """Column names for messages about single columns (None: x0, x1, ... and y)."""
        return {"feature_names": getattr(self, "feature_names_in_", None),
                "target_names": getattr(self, "target_names_", None)}

    def _check_gradient(self, sol: Solution, X, Y, w) -> Solution:
        if sol.converged:
            return sol
        if sol.diverged:
            msg = (f"solver={self.solver!r} diverged after {sol.n_iter} iterations (loss became non-finite or "
                   f"grew over a million-fold; learning_rate={self.learning_rate}). The coefficients are those of "
                   f"the exact solver instead; lower learning_rate or use solver='auto'.")
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)
            fallback = exact.fit_reduced(memory.arrays_runner(X, Y, w), X.shape[1], Y.shape[1],
                                         alpha=ta.per_target(self.alpha, Y.shape[1]),
                                         fit_intercept=self.fit_intercept,
                                       **self._names())
            return fallback._replace(solver=f"{fallback.solver} (after {self.solver} diverged)", converged=False,
                                     diverged=True, n_iter=max(sol.n_iter, 1), loss_curve=sol.loss_curve,
                                     grad_norm=sol.grad_norm)
        warnings.warn(f"solver={self.solver!r} did not converge in max_iter={self.max_iter} iterations: gradient "
                      f"norm {sol.grad_norm:.3g} > tol={self._tol_text()}. "
                      f"Increase max_iter or tol, or use an exact solver.", ConvergenceWarning, stacklevel=3)
        return sol

    def _keep_state(self, sol: Solution):
        """``state_``: the fit's mergeable state, from which ``partial_fit`` continues (when the
        solver reads that form; otherwise ``partial_fit`` starts afresh)."""
        state = mergeable_state(self.solver, getattr(sol, "state", None))
        if state is not None:
            self.state_ = state

    def _set_solution(self, sol: Solution, one_d: bool, d: int):
        self.solution_ = sol
        self.coef_, self.intercept_ = fitted_coef(sol, one_d)  # in the dtype the fit ran in
        self.rank_ = int(sol.rank)
        self.n_iter_ = max(int(sol.n_iter), 1)
        self.solver_ = sol.solver
        self.dtype_ = sol.dtype
        self.condition_number_ = float(sol.condition_number)
        self.converged_ = bool(sol.converged)
        message = rank_message(sol, d, self.solver, getattr(self, "feature_names_in_", None))
        if message:
            warnings.warn(message, RankWarning, stacklevel=3)

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, X):
        check_is_fitted(self)
        return predict_matrix(self._design(X), self.coef_, self.intercept_, getattr(self, "feature_names_in_", None))
