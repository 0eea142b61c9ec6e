"""A linear model ⇄ its model-file document (plain dicts; the file itself is the io layer's).

:func:`model_to_dict` is what ``model.save`` writes; :func:`fit_to_dict` writes the same document
from a fit's result (solution, parameters, names, statistics) without an estimator, so that
``jaxlm fit`` never imports scikit-learn on its exact path. :func:`model_from_document` builds
the fitted model from a document that :func:`jaxlm.io.model_file.read_document` validated;
:func:`predictor_from_document` builds a :class:`LinearPredictor` (predictions and intervals,
no scikit-learn). The estimator class is passed in (by :mod:`jaxlm.models.registry`), so this
module imports no estimator.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..core.errors import InputError
from ..io import model_json as mj
from ..io.model_file import FORMAT, FORMAT_VERSION, _finite_list, _jsonable
from .linear_rules import (PARAMS, check_params, finite_check, fitted_coef, linear_params, mergeable_state,  # noqa: F401
                           predict_matrix, results_by_alpha)


def _results_dict(res):
    """``results.to_dict()`` (a list of them for several targets); None when not available."""
    if res is None:
        return None
    if hasattr(res, "to_dict"):
        return res.to_dict()
    if isinstance(res, (list, tuple)) and res and all(hasattr(r, "to_dict") for r in res):
        return [r.to_dict() for r in res]
    return None


def _statistics_of(model):
    """The model's statistics as plain data: ``results_.to_dict()``, else ``summary().to_dict()``."""
    res = getattr(model, "results_", None)
    if res is None:
        return None
    out = _results_dict(res)
    if out is not None:
        return out
    summary = getattr(model, "summary", None)
    return _summary_dict(summary) if summary is not None else None


def _summary_dict(summary):
    """``summary().to_dict()``; None where the statistics are undefined for the fit."""
    try:
        s = summary()
    except (InputError, ValueError):  # e.g. statistics undefined for this fit
        return None
    return s.to_dict() if hasattr(s, "to_dict") else None


def _statistics_of_results(res):
    """:func:`_statistics_of` for an estimator whose ``results_`` are ``res`` (its ``summary()``
    is ``jaxlm.inference.summary(res)``)."""
    if res is None:
        return None
    out = _results_dict(res)
    if out is not None:
        return out
    from ..inference import summary

    return _summary_dict(lambda: summary(res, level=0.95, cov="nonrobust"))


def _state_dict(state) -> dict | None:
    if state is None:
        return None
    kind = "qr" if hasattr(state, "r") else "gram"
    out = {"kind": kind}
    for name in state._fields:
        out[name] = _finite_list(getattr(state, name), f"state.{name}")
    return out


def model_to_dict(model, *, formula=None, statistics=None, weights: str | None = None,
                  metadata: dict | None = None) -> dict:
    """The JSON document :func:`save_model` writes (see the module docstring)."""
    if not hasattr(model, "coef_") or not hasattr(model, "intercept_"):
        raise InputError("model", f"model must be fitted; got an unfitted {type(model).__name__}. Call fit first.")
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    m = coef.shape[0]
    return _document(type(model).__name__, dict(model.get_params()), coef,
                     np.asarray(model.intercept_, dtype=np.float64).reshape(m), getattr(model, "solution_", None),
                     target_ndim=1 if np.ndim(model.coef_) == 1 else 2,
                     names=getattr(model, "feature_names_in_", None), targets=getattr(model, "target_names_", None),
                     formula=getattr(model, "formula_", None) if formula is None else formula,
                     statistics=_statistics_of(model) if statistics is None else statistics, weights=weights,
                     metadata=metadata)


def model_formula(formula, features):
    """The model's formula as a FormulaSpec (a string is parsed with no levels), checked to encode
    exactly ``features``; None for a model without one."""
    if isinstance(formula, str):
        from ..io.formula import FormulaSpec

        formula = FormulaSpec.from_levels(formula, {})
    if formula is not None and tuple(formula.features) != tuple(features):
        raise InputError("formula", f"formula must encode the model's features; got formula={formula.formula!r}, "
                                    f"which encodes {list(formula.features)}, for a model with {features}.")
    return formula


def fit_to_dict(solution, *, params: dict, one_d: bool, feature_names, target_names, formula=None, results=None,
                statistics=None, weights: str | None = None, metadata: dict | None = None,
                estimator: str = "LinearRegression") -> dict:
    """The document ``model_to_dict`` gives for the estimator this fit makes, byte for byte, from
    the fit's result: its solution, ``params`` (as ``get_params()``), names, formula and
    ``results`` (what ``results_`` holds: the default ``statistics``), without the estimator."""
    coef_, intercept_ = fitted_coef(solution, one_d)
    coef = np.atleast_2d(np.asarray(coef_, dtype=np.float64))
    m = coef.shape[0]
    return _document(estimator, dict(params), coef, np.asarray(intercept_, dtype=np.float64).reshape(m), solution,
                     target_ndim=1 if one_d else 2, names=list(feature_names), targets=tuple(target_names),
                     formula=formula, statistics=_statistics_of_results(results) if statistics is None else statistics,
                     weights=weights, metadata=metadata)


def fit_document(fit, *, statistics=None, weights: str | None = None, metadata: dict | None = None) -> dict:
    """The model-file document of a streamed fit (:class:`jaxlm.models.tables.StreamFit`): its
    estimator's (:func:`model_to_dict`), or for an exact fit made without one the same document,
    byte for byte, from the fit's result (:func:`fit_to_dict`)."""
    kwargs = {"statistics": statistics, "weights": weights, "metadata": metadata}
    if fit.model is not None:
        return model_to_dict(fit.model, **kwargs)
    return fit_to_dict(fit.solution, params=fit.params, one_d=len(fit.target_names) == 1,
                       feature_names=fit.feature_names, target_names=fit.target_names, formula=fit.formula,
                       results=fit.results, **kwargs)


def _solution_dict(sol) -> dict:
    if sol is None:
        return {}
    return {"solver": str(sol.solver), "dtype": str(sol.dtype), "rank": int(sol.rank),
            "n_iter": int(sol.n_iter), "converged": bool(sol.converged), "diverged": bool(sol.diverged),
            "grad_norm": float(sol.grad_norm), "condition_number": float(sol.condition_number),
            "aliased": [int(j) for j in sol.aliased], "refinement_steps": int(sol.refinement_steps),
            "matmul_precision": str(sol.matmul_precision),
            "sse": None if sol.sse is None else np.asarray(sol.sse, dtype=np.float64).reshape(-1).tolist()}


def _document(estimator: str, params: dict, coef, intercept, sol, *, target_ndim: int, names, targets, formula,
              statistics, weights, metadata) -> dict:
    """The document of a fitted linear model: ``coef`` (m, d), ``intercept`` (m,), float64."""
    import jaxlm  # for __version__ (the package itself, not a model)

    m, d = coef.shape
    features = [str(c) for c in names] if names is not None else [f"x{j}" for j in range(d)]
    targets = list(targets or (["y"] if m == 1 else [f"y{k}" for k in range(m)]))
    if len(targets) != m:
        targets = ["y"] if m == 1 else [f"y{k}" for k in range(m)]
    formula = model_formula(formula, features)
    if formula is not None:
        targets = list(formula.targets) if len(formula.targets) == m else targets
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "jaxlm_version": jaxlm.__version__,
        "estimator": estimator,
        "params": params,
        "features": features,
        "targets": targets,
        "target_ndim": target_ndim,
        "coef": _finite_list(coef, "coefficients"),
        "intercept": _finite_list(intercept, "intercept"),
        "solution": _solution_dict(sol),
        "state": _state_dict(getattr(sol, "state", None)) if sol is not None else None,
        "formula": formula.to_json() if formula is not None else None,
        "weights": weights,
        "statistics": statistics,
        "metadata": dict(metadata or {}),
    }
    return _jsonable(doc)


def model_from_document(cls, doc: dict):
    """The fitted estimator of a validated document (the only step that needs the estimator)."""
    from ..core import exact

    state, d = doc["state"], len(doc["features"])
    model = cls(**doc["params"])
    try:
        model._check_params()
    except InputError as e:  # unreachable after the schema; kept as a second guard
        raise mj.Invalid(f"invalid params: {e}") from None
    solution = _solution_of(doc)
    model.feature_names_in_ = np.asarray(doc["features"], dtype=object)
    model.n_features_in_ = d
    model.target_names_ = tuple(doc["targets"])
    model.formula_ = doc["formula"]
    one_d = doc["target_ndim"] == 1
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # a rank warning was given when the model was fitted
        model._set_solution(solution, one_d, d)
        try:
            model._set_results(solution, one_d)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as e:  # InputError is a ValueError
            raise mj.Invalid(f"its statistics cannot be recomputed ({e})") from None
    if mergeable_state(model.solver, state) is not None:
        model.state_ = state
    return model


class LinearPredictor:
    """A fitted linear model read from a model file, for predictions without scikit-learn.

    It has the estimator's fitted attributes that predictions use (``coef_``, ``intercept_``,
    ``feature_names_in_``, ``n_features_in_``, ``target_names_``, ``formula_``, ``solution_``,
    ``solver_``, the parameters) and its arithmetic: :meth:`predict` is ``X @ coef_.T +
    intercept_`` exactly as ``LinearRegression.predict``; ``results_`` (computed on first use,
    as the estimator computes them on load) and :meth:`predict_interval` as the estimator's.
    """

    def __init__(self, doc: dict, solution, one_d: bool):
        params = dict(doc["params"])
        for name, default in PARAMS.items():
            setattr(self, name, params.get(name, default))
        self.path = doc["path"]
        self.solution_ = solution
        self.feature_names_in_ = np.asarray(doc["features"], dtype=object)
        self.n_features_in_ = len(doc["features"])
        self.target_names_ = tuple(doc["targets"])
        self.formula_ = doc["formula"]
        self.one_d = one_d
        self.coef_, self.intercept_ = fitted_coef(solution, one_d)
        self.solver_ = solution.solver
        self._results = None

    @property
    def results_(self):
        """The regression results, recomputed from the stored state (as on loading the estimator)."""
        if self._results is None:
            from ..inference import regression_results

            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    res = results_by_alpha(
                        self.solution_, self.alpha, self.target_names_,
                        lambda sol, alpha, _, names: regression_results(
                            sol, fit_intercept=self.fit_intercept, weights_kind=self.weights_kind, alpha=alpha,
                            robust=bool(self.robust), feature_names=self.feature_names_in_, target_names=names))
            except (ValueError, ArithmeticError, np.linalg.LinAlgError) as e:  # InputError is a ValueError
                raise mj.bad(self.path, f"its statistics cannot be recomputed ({e})") from None
            self._results = res[0] if self.one_d else res
        return self._results

    def predict(self, X):
        """``X @ coef_.T + intercept_`` in float64, returned in ``coef_``'s dtype (X: (n, d) numbers);
        NaN/inf in X raise InputError."""
        return predict_matrix(X, self.coef_, self.intercept_, self.feature_names_in_)

    def predict_interval(self, X, *, kind="confidence", level=0.95):
        """Mean prediction with a confidence or prediction interval (``LinearRegression.predict_interval``)."""
        from ..inference import predict_interval

        X = np.asarray(X)
        finite_check(X, "X", self.feature_names_in_)
        return predict_interval(self.results_, np.asarray(X, dtype=np.float64), kind=kind, level=level)


def _solution_of(doc: dict):
    from ..core.solution import Solution

    sol = doc["solution"]
    fields = {k: sol[k] for k in ("solver", "dtype", "rank", "n_iter", "converged", "diverged", "grad_norm",
                                  "condition_number", "aliased", "refinement_steps", "matmul_precision", "sse")}
    return Solution(coef=doc["coef"], intercept=doc["intercept"], state=doc["state"], factor=doc["factor"], **fields)


def predictor_from_document(doc: dict) -> LinearPredictor:
    """The :class:`LinearPredictor` of a validated document (no estimator, no scikit-learn)."""
    try:  # (the schema admitted the document's params; those this module knows are checked again)
        check_params({**PARAMS, **{k: v for k, v in doc["params"].items() if k in PARAMS}})
    except InputError as e:  # unreachable after the schema; kept as a second guard
        raise mj.Invalid(f"invalid params: {e}") from None
    return LinearPredictor(doc, _solution_of(doc), doc["target_ndim"] == 1)
