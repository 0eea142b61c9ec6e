"""scikit-learn compatible generalised linear models: :class:`GLM` and the convenience estimators
:class:`LogisticRegression`, :class:`PoissonRegressor`, :class:`GammaRegressor`,
:class:`TweedieRegressor`.

They are thin: a fit is :func:`fit_glm`, a pure function from a runner of :mod:`jaxlm.reduce`
(here the in-memory one; a streamed file or Dask partitions work the same) to the IRLS solution
(:func:`jaxlm.core.irls.fit_irls`) or the gradient road's (:mod:`jaxlm.core.glm_gradient`, read
back through one IRLS pass), and the statistics are :func:`jaxlm.inference.glm.glm_results`.

Ridge: ``alpha`` minimises ``D(β) + α‖β‖²`` (deviance D, frequency-weighted; the intercept
is not penalised), as :class:`jaxlm.LinearRegression`'s ridge does for Gaussian data.
scikit-learn's GLMs (``PoissonRegressor``, ``GammaRegressor``, ``TweedieRegressor``) minimise
``D/(2 Σw) + α_sk/2 ‖β‖²``, so ``alpha = α_sk · Σw`` (Σw = n without sample weights);
scikit-learn's ``LogisticRegression(C=...)`` minimises ``C · D/2 + ½‖β‖²``, so ``alpha = 1/C``.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ..core import irls
from ..core.blas import blas_held
from ..core.errors import InputError, RankWarning, check_choice, check_nonnegative, check_positive, check_positive_int
from ..core.families import FAMILY_NAMES, check_link, get_family
from ..core.glm_passes import check_reduction, host_summary, summarise
from ..core.irls import ConvergenceWarning, SeparationWarning
from ..inference.glm import COV_KINDS
from ..inference.glm_summary import glm_summary
from ..inference.predict import Interval
from ..scale.dask import is_dask_collection
from .linear import SPARSE, _csr, _dense
from .glm_cov import check_cov_type, dask_cluster_run, glm_statistics, memory_runs
from .glm_lbfgs import solve_lbfgs as _solve_lbfgs
from .glm_rules import binary_codes, check_bool, offsets
from .glm_start import subsample_start
from .linear_rules import finite_check as _finite_check

SOLVERS = ("irls", "lbfgs")
FAMILIES = FAMILY_NAMES  #: the families a GLM takes by name
#: scikit-learn estimator checks a GLM cannot pass, with the reason (none today).
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}

__all__ = ["EXPECTED_FAILED_CHECKS", "GLM", "ConvergenceWarning", "GammaRegressor", "LogisticRegression",
           "PoissonRegressor", "SeparationWarning", "TweedieRegressor", "fit_glm"]


# --------------------------------------------------------------------------- the pure fit
#: IRLS on at least this many rows starts from a fit on every SUBSAMPLE_STEP-th row (to
#: SUBSAMPLE_TOL; :func:`jaxlm.models.glm_start.subsample_start`): its iterations cost
#: 1/SUBSAMPLE_STEP of a pass, and its answer lies a few standard errors from the MLE.
SUBSAMPLE_MIN_ROWS = 200_000
SUBSAMPLE_STEP = 20
SUBSAMPLE_TOL = 1e-4
#: With at least this many columns the full-data iterations from there begin with quasi-Newton
#: steps from score passes (two matrix-vector products, ~1/4 of a Gram pass at d = 50) with the
#: subsample fit's information matrix (:class:`jaxlm.core.irls_steps.Curvature`); with fewer
#: columns a score pass costs about as much as a Gram pass, and Newton passes follow directly.
QUASI_NEWTON_MIN_COLS = 10


@blas_held  # all passes with BLAS single-threaded (each shares its chunks between threads)
def _solve_irls(run, d, family, link, *, fit_intercept, alpha, tol, max_iter, feature_names, arrays, subsample):
    data = None if arrays is None else host_summary(arrays[1], *arrays[2:], family)  # X: in the first IRLS pass
    if data is None:
        data = summarise(run(check_reduction(family)), family)  # validates every row first
    start, curvature = subsample_start(
        run, d, family, link, data, fit_intercept=fit_intercept, alpha=alpha, max_iter=max_iter, arrays=arrays,
        min_rows=SUBSAMPLE_MIN_ROWS, step=SUBSAMPLE_STEP, tol=SUBSAMPLE_TOL,
        quasi_newton=d >= QUASI_NEWTON_MIN_COLS) if subsample else (None, None)
    return irls.fit_irls(run, d, family=family, link=link, fit_intercept=fit_intercept, alpha=alpha, tol=tol,
                         max_iter=max_iter, feature_names=feature_names, start=start, data=data,
                         curvature=curvature)


#: solver name -> function(run, d, family, link, **options) -> GLMSolution
SOLVE = {"irls": _solve_irls, "lbfgs": _solve_lbfgs}


def fit_glm(run, d: int, *, family, link=None, fit_intercept: bool = True, alpha: float = 0.0, tol: float = 1e-10,
            max_iter: int = 100, solver: str = "irls", robust: bool = False, feature_names=None, arrays=None,
            subsample: bool = True, cov_type: str = "nonrobust", cluster_run=None, n_dims: int = 1):
    """``(GLMSolution, GLMResults)`` of the data behind ``run`` (blocks ``(X, Y, w, offset,
    var_weights)``): the solver's fit, then the statistics' pass (and for ``cov_type="cluster"``
    the cluster pass of ``cluster_run``, blocks ``(X, Y, w, g₁[, g₂], offset, var_weights)``,
    :func:`jaxlm.models.glm_cov.glm_statistics`). ``arrays`` = ``(X, y, w, offset, var_weights)``
    in memory (the "lbfgs" solver needs them). ``subsample=False`` skips the subsample start (a
    streamed file: thinning rows would still read the whole file)."""
    family = get_family(family)
    link = check_link(family, link)
    sol = SOLVE[check_choice("solver", solver, SOLVERS)](
        run, d, family, link, fit_intercept=fit_intercept, alpha=alpha, tol=tol, max_iter=max_iter,
        feature_names=feature_names, arrays=arrays, subsample=subsample)
    return sol, glm_statistics(sol, run, cov_type=cov_type, robust=robust, feature_names=feature_names,
                               cluster_run=cluster_run, n_dims=n_dims)


# ------------------------------------------------------------------------------ estimators
class _GLMBase(BaseEstimator):
    """fit / predict / summary of every GLM estimator; subclasses store their parameters and
    say what model they are (:meth:`_model`: the family and link objects)."""

    def _family_name(self) -> str:
        raise NotImplementedError

    def _model(self):
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        name = self._family_name()
        tags.target_tags.positive_only = isinstance(name, str) and name not in ("gaussian", "binomial")
        return tags

    def _check_params(self):
        model = self._model()
        check_choice("solver", self.solver, SOLVERS)
        check_nonnegative("alpha", self.alpha, fix="Use alpha=0 for the unpenalised maximum likelihood fit.")
        check_positive("tol", self.tol)
        check_positive_int("max_iter", self.max_iter)
        check_bool("fit_intercept", self.fit_intercept)
        check_bool("robust", self.robust)
        check_cov_type(self.cov_type)
        return model

    def _target(self, y):
        """The numeric response (a hook: LogisticRegression encodes labels here)."""
        return np.asarray(y, dtype=np.float64)

    @staticmethod
    def _classifier() -> bool:
        return False

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, *, offset=None, exposure=None, var_weights=None, groups=None):
        """Fit by maximum likelihood.

        sample_weight : (n,) frequency weights (statsmodels ``freq_weights``): a row of weight k
            counts as k rows. offset : (n,) added to the linear predictor. exposure : (n,) > 0,
            adds ``log(exposure)`` to the offset (rates with a log link). var_weights : (n,) > 0,
            variance weights (statsmodels ``var_weights``; Binomial: the number of trials of a
            proportion). groups : (n,) or (n, 2), the cluster column(s) of ``cov_type="cluster"``
            (two columns: two-way clustering); any values but missing ones.
        """
        family, link = self._check_params()
        for stale in ("formula_", "target_names_", "data_columns_"):  # left by a file fit or a loaded model
            self.__dict__.pop(stale, None)
        if is_dask_collection(X) or is_dask_collection(y):
            return self._fit_dask(X, y, sample_weight, offset, exposure, var_weights, groups)
        X, y = validate_data(self, X, y, ensure_all_finite=False, dtype=np.float64, y_numeric=not self._classifier(),
                             accept_sparse=SPARSE)
        X = _csr(X)
        y = self._target(y)
        runs = memory_runs(X, y, sample_weight, offset, exposure, var_weights, cov_type=self.cov_type, groups=groups)
        names = getattr(self, "feature_names_in_", None)
        with warnings.catch_warnings(record=True) as caught:  # re-raised at the caller's line below
            warnings.simplefilter("always")
            sol, res = fit_glm(runs.run, X.shape[1], family=family, link=link, fit_intercept=bool(self.fit_intercept),
                               alpha=float(self.alpha), tol=float(self.tol), max_iter=int(self.max_iter),
                               solver=self.solver, robust=bool(self.robust), feature_names=names,
                               arrays=runs.arrays, cov_type=self.cov_type, cluster_run=runs.cluster_run,
                               n_dims=runs.n_dims)
        for w_ in caught:
            warnings.warn(w_.message, w_.category, stacklevel=2)
        self._set_solution(sol, res, names)
        return self

    def _fit_dask(self, X, y, sample_weight, offset, exposure, var_weights, groups=None):
        """Dask arrays/DataFrames: every IRLS pass is a tree reduction over the partitions on the
        workers (:mod:`jaxlm.reduce.dask`); only d×d summaries reach the client."""
        from ..scale import dask as dask_backend

        if self.solver != "irls":
            raise InputError("solver", f"dask input needs solver='irls' (one tree reduction per iteration); got "
                                       f"solver={self.solver!r}.")
        family, link = self._model()
        if self._classifier():
            y = dask_backend.binary_codes(self, y)
        X, Y, w, _, names = dask_backend.as_dask_arrays(X, y, sample_weight)
        extra = dask_backend.glm_extras(X, offset, exposure, var_weights)
        cluster_run, n_dims = dask_cluster_run(X, Y, w, extra, cov_type=self.cov_type, groups=groups)
        for stale in ("feature_names_in_", "n_features_in_"):
            self.__dict__.pop(stale, None)
        self.n_features_in_ = int(X.shape[1])
        if names is not None:
            self.feature_names_in_ = names
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sol, res = fit_glm(dask_backend.runner(X, Y, w, *extra), int(X.shape[1]), family=family, link=link,
                               fit_intercept=bool(self.fit_intercept), alpha=float(self.alpha), tol=float(self.tol),
                               max_iter=int(self.max_iter), robust=bool(self.robust), feature_names=names,
                               cov_type=self.cov_type, cluster_run=cluster_run, n_dims=n_dims)
        for w_ in caught:
            warnings.warn(w_.message, w_.category, stacklevel=3)
        self._set_solution(sol, res, names)
        return self

    def save(self, path, **kwargs):
        """Write the fitted model to a versioned JSON file (never pickle); ``jaxlm.load`` reads it.
        Keyword arguments: ``formula``, ``statistics``, ``weights``, ``offset``, ``exposure``,
        ``var_weights`` (column names, stored for predictions), ``metadata``."""
        from ..io.model_file import write_document
        from .glm_doc import model_to_dict

        return write_document(path, model_to_dict(self, **kwargs))

    def _set_solution(self, sol, res, names):
        self.solution_ = sol
        self.results_ = res
        self.family_, self.link_ = sol.family, sol.link
        self.coef_ = np.asarray(sol.coef, dtype=np.float64).copy()
        self.intercept_ = float(sol.intercept)
        self.n_iter_ = int(sol.n_iter)
        self.converged_ = bool(sol.converged)
        self.deviance_ = float(sol.deviance)
        self.rank_ = int(sol.rank)
        if sol.rank < len(sol.coef):
            cols = ", ".join(str(names[j]) if names is not None else f"x{j}" for j in sol.aliased)
            warnings.warn(f"X is rank deficient: rank {sol.rank} < {len(sol.coef)} columns; columns involved in the "
                          f"collinearity: {cols or 'unknown'}. Their coefficients are not estimable (NaN standard "
                          f"errors).", RankWarning, stacklevel=3)

    # -- prediction ---------------------------------------------------------------------------
    def _design(self, X):
        return _csr(validate_data(self, X, reset=False, ensure_all_finite=False, dtype=np.float64,
                                  accept_sparse=SPARSE))

    def _linear(self, X, offset, exposure):
        """(X checked, η = Xβ + β₀ + offset + log(exposure))."""
        check_is_fitted(self)
        X = self._design(X)
        eta = np.asarray(X @ self.coef_, dtype=np.float64).reshape(-1) + self.intercept_
        off = offsets(offset, exposure, X.shape[0])
        if off is not None:
            eta = eta + off
        if not np.all(np.isfinite(eta)):
            _finite_check(X, "X", getattr(self, "feature_names_in_", None))
        return X, eta, off

    def predict(self, X, offset=None, exposure=None, *, kind="mean"):
        """The mean ``g⁻¹(η)`` (``kind="mean"``) or the linear predictor η (``kind="link"``)."""
        kind = check_choice("kind", kind, ("mean", "link"))
        _, eta, _ = self._linear(X, offset, exposure)
        return eta if kind == "link" else self.link_.inverse(eta)

    def predict_interval(self, X, offset=None, exposure=None, *, level=0.95, cov=None, method="endpoint"):
        """The mean with a confidence interval of the mean (``Interval(mean, lower, upper)``,
        arrays (n,)): the normal interval of η mapped through g⁻¹ (``method="endpoint"``,
        statsmodels' default) or ``mean ∓ z·|dμ/dη|·se(η)`` (``"delta"``); ``cov`` default: the
        fit's ``cov_type``."""
        if cov is not None:
            check_choice("cov", cov, COV_KINDS)
        X, _, off = self._linear(X, offset, exposure)
        pred = self.results_.get_prediction(_dense(X), off, level=level, cov=cov, method=method)
        return Interval(pred.mean, pred.lower, pred.upper)

    def summary(self, *, level=0.95, cov=None):
        """The GLM table (text when printed, HTML in Jupyter, ``to_frame()``, ``to_dict()``) under
        ``cov`` (default: the fit's ``cov_type``)."""
        check_is_fitted(self)
        target = (getattr(self, "target_names_", None) or ("y",))[0]
        return glm_summary(self.results_, level=level, cov=cov, solver=self.solver, target=str(target),
                           condition_number=self.solution_.condition_number)


class GLM(RegressorMixin, _GLMBase):
    """A generalised linear model ``E[y] = g⁻¹(Xβ + β₀ + offset)``, exact by IRLS.

    Parameters
    ----------
    family : {"gaussian", "binomial", "poisson", "gamma", "tweedie", "negative_binomial",
        "inverse_gaussian"}, default "gaussian"
    link : str or None, the link (None: the family's canonical/default link: identity, logit,
        log, inverse, log, log, inverse_squared). Allowed: gaussian identity/log/inverse,
        binomial logit/probit/cloglog, poisson log/identity/sqrt, gamma inverse/log/identity,
        tweedie and negative_binomial log.
    power : float in [1, 2] or None, the Tweedie variance power (default 1.5; tweedie only).
    nb_alpha : float > 0, default 1.0, the negative binomial dispersion (V = μ + αμ²).
    alpha : float ≥ 0, default 0.0, ridge penalty α‖β‖² added to the deviance (intercept
        not penalised). scikit-learn's GLM ``alpha`` is ``alpha / Σw`` (see the module docstring).
    fit_intercept : bool, default True
    tol : float > 0, default 1e-10. IRLS: relative deviance change and step size (the
        coefficients land within ~tol of the exact MLE); lbfgs: largest gradient entry of the
        standardised mean loss.
    max_iter : int ≥ 1, default 100 (lbfgs: iterations of L-BFGS; raise it, e.g. to 1000).
    solver : {"irls", "lbfgs"}, default "irls". "lbfgs" minimises the negative log-likelihood by
        ``jax.grad`` + optax L-BFGS on standardised data; its statistics come from one IRLS pass
        at its coefficients.
    robust : bool, default False. Also compute HC0–HC3 covariances during ``fit``.
    cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"}, default "nonrobust": the
        covariance of ``results_``, ``summary()`` and ``predict_interval`` unless told otherwise.
        "cluster" needs ``fit(..., groups=...)`` ((n,) one-way, (n, 2) two-way): CR1, statsmodels'
        ``G/(G−1)·(N−1)/(N−K)``, normal z and p (:mod:`jaxlm.inference.glm_cluster`).

    Attributes
    ----------
    coef_ (d,), intercept_ (float), n_iter_, converged_, deviance_, rank_, family_, link_,
    solution_ (:class:`jaxlm.core.irls.GLMSolution`), results_ (:class:`jaxlm.inference.glm.GLMResults`:
    params, bse, zvalues, pvalues, conf_int(), deviance, null_deviance, pearson_chi2, scale, llf,
    aic, bic_llf, bic_deviance, pseudo_rsquared(), cov("HC0".."HC3")), n_features_in_, feature_names_in_.
    """

    def __init__(self, *, family="gaussian", link=None, power=None, nb_alpha=1.0, alpha=0.0, fit_intercept=True,
                 tol=1e-10, max_iter=100, solver="irls", robust=False, cov_type="nonrobust"):
        self.family = family
        self.link = link
        self.power = power
        self.nb_alpha = nb_alpha
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.solver = solver
        self.robust = robust
        self.cov_type = cov_type

    def _family_name(self) -> str:
        return self.family

    def _model(self):
        """(family, link) objects, with every parameter checked."""
        name = self._family_name()
        check_choice("family", name, FAMILIES)
        if self.power is not None and name != "tweedie":
            raise InputError("power", f"power is the Tweedie variance power; got power={self.power!r} with "
                                      f"family={name!r}. Leave power=None or use family='tweedie'.")
        params = {}
        if name == "tweedie":
            params["var_power"] = 1.5 if self.power is None else self.power
        if name == "negative_binomial":
            params["alpha"] = check_positive("nb_alpha", self.nb_alpha)
        family = get_family(name, **params)
        return family, check_link(family, self.link)


def _store(est, params: dict) -> None:
    """__init__ only stores (scikit-learn's contract)."""
    for k, v in params.items():
        setattr(est, k, v)


def _fixed_model(family: str, link: str):
    fam = get_family(family)
    return fam, check_link(fam, link)


class PoissonRegressor(RegressorMixin, _GLMBase):
    """Poisson regression with the log link (scikit-learn's ``PoissonRegressor`` parameters;
    ``alpha`` on jaxlm's scale: ``alpha = α_sklearn · Σw``, see :mod:`jaxlm.models.glm`).
    Attributes, ``fit`` options and statistics as :class:`GLM`."""

    def __init__(self, *, alpha=0.0, fit_intercept=True, tol=1e-10, max_iter=100, solver="irls", robust=False,
                 cov_type="nonrobust"):
        _store(self, {"alpha": alpha, "fit_intercept": fit_intercept, "tol": tol, "max_iter": max_iter,
                      "solver": solver, "robust": robust, "cov_type": cov_type})

    def _family_name(self):
        return "poisson"

    def _model(self):
        return _fixed_model("poisson", "log")


class GammaRegressor(RegressorMixin, _GLMBase):
    """Gamma regression with the log link (scikit-learn's ``GammaRegressor``; ``alpha`` as
    :class:`PoissonRegressor`'s). The scale is estimated (Pearson χ²/df_resid)."""

    def __init__(self, *, alpha=0.0, fit_intercept=True, tol=1e-10, max_iter=100, solver="irls", robust=False,
                 cov_type="nonrobust"):
        _store(self, {"alpha": alpha, "fit_intercept": fit_intercept, "tol": tol, "max_iter": max_iter,
                      "solver": solver, "robust": robust, "cov_type": cov_type})

    def _family_name(self):
        return "gamma"

    def _model(self):
        return _fixed_model("gamma", "log")


def _tweedie_family(power) -> str:
    """scikit-learn's power -> family: 0 Normal, [1, 2] Tweedie (1 Poisson, 2 Gamma), 3 inverse Gaussian."""
    return {0: "gaussian", 3: "inverse_gaussian"}.get(power, "tweedie") if isinstance(power, (int, float)) else ""


class TweedieRegressor(RegressorMixin, _GLMBase):
    """Tweedie regression (scikit-learn's ``TweedieRegressor``): ``power`` 0 (Normal), 1 ≤ power
    ≤ 2 (Poisson-like, compound Poisson–Gamma, Gamma; the exact Tweedie density for llf; the
    scale is estimated) or 3 (inverse Gaussian); ``link="auto"`` is identity for power 0 and log
    otherwise. ``alpha`` as :class:`PoissonRegressor`'s."""

    def __init__(self, *, power=0.0, alpha=0.0, fit_intercept=True, link="auto", tol=1e-10, max_iter=100,
                 solver="irls", robust=False, cov_type="nonrobust"):
        _store(self, {"power": power, "alpha": alpha, "fit_intercept": fit_intercept, "link": link, "tol": tol,
                      "max_iter": max_iter, "solver": solver, "robust": robust, "cov_type": cov_type})

    def _family_name(self):
        return _tweedie_family(self.power)

    def _model(self):
        p = self.power
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not (
                p == 0 or p == 3 or 1 <= p <= 2):
            raise InputError("power", f"power must be 0, a number in [1, 2], or 3; got power={p!r} (0: Normal, "
                                      f"1: Poisson, 2: Gamma, 3: inverse Gaussian).")
        name = _tweedie_family(float(p))
        family = get_family(name, **({"var_power": float(p)} if name == "tweedie" else {}))
        link = self.link if self.link != "auto" else ("identity" if p == 0 else "log")
        return family, check_link(family, link)


class LogisticRegression(ClassifierMixin, _GLMBase):
    """Binary logistic regression by IRLS (``classes_``, ``predict`` (labels), ``predict_proba``,
    ``decision_function``), with the statistics of a binomial GLM (``results_``, ``summary()``).

    Targets of any two labels; the second of ``classes_`` (sorted) is the event (coded 1).
    ``alpha`` is the ridge on the deviance: scikit-learn's ``C`` is ``1/alpha``
    (``penalty=None``: alpha=0). ``link``: "logit" (default), "probit" or "cloglog". Separated
    data warn (:class:`SeparationWarning`, naming the columns); the coefficients are then not
    estimates.
    """

    def __init__(self, *, alpha=0.0, fit_intercept=True, link="logit", tol=1e-10, max_iter=100, solver="irls",
                 robust=False, cov_type="nonrobust"):
        _store(self, {"alpha": alpha, "fit_intercept": fit_intercept, "link": link, "tol": tol, "max_iter": max_iter,
                      "solver": solver, "robust": robust, "cov_type": cov_type})

    def _family_name(self):
        return "binomial"

    def _model(self):
        return _fixed_model("binomial", self.link)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    @staticmethod
    def _classifier() -> bool:
        return True

    def _target(self, y):
        fast = binary_codes(y)  # 0/1 (or any two integer) labels: no sort of y
        if fast is not None and len(fast[0]) == 2:
            self.classes_ = fast[0]
            return fast[1]
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        if kind not in ("binary", "multiclass"):
            raise InputError("y", f"y must hold class labels; got Unknown label type: {kind!r}. Use a regressor "
                                  f"(e.g. GLM) for a continuous response.")
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) != 2:
            raise InputError("y", f"y must have exactly two classes; got {len(classes)} class(es) "
                                  f"{classes[:5].tolist()}. Only binary classification is supported: fit one model "
                                  f"per class, or merge classes.")
        self.classes_ = classes
        return codes.astype(np.float64).reshape(-1)

    def decision_function(self, X, offset=None, exposure=None):
        """The linear predictor η (the log-odds with the logit link), (n,)."""
        return _GLMBase.predict(self, X, offset, exposure, kind="link")

    def predict_proba(self, X, offset=None, exposure=None):
        """(n, 2): P(y = classes_[0]), P(y = classes_[1])."""
        p = _GLMBase.predict(self, X, offset, exposure)
        return np.column_stack([1.0 - p, p])

    def predict(self, X, offset=None, exposure=None, *, kind="label"):
        """Class labels (``kind="label"``: the event when its probability exceeds ½), or as
        :meth:`GLM.predict` for ``"mean"`` (the probability) and ``"link"``."""
        if kind != "label":
            return _GLMBase.predict(self, X, offset, exposure, kind=kind)
        p = _GLMBase.predict(self, X, offset, exposure)
        return self.classes_[(p > 0.5).astype(int)]
