"""A GLM estimator ⇄ its model-file document (plain dicts; the file itself is the io layer's).

:func:`model_to_dict` is what ``model.save`` writes for :class:`jaxlm.GLM`,
``LogisticRegression``, ``PoissonRegressor``, ``GammaRegressor`` and ``TweedieRegressor`` (the
schema: :mod:`jaxlm.io.glm_schema`); :func:`model_from_document` builds the fitted estimator
from a document that :func:`jaxlm.io.model_file.read_document` validated. The estimator class
is passed in (by :mod:`jaxlm.models.registry`), so this module imports no estimator.

What a loaded model keeps: the coefficients (bit for bit), the family and link, the working
weights' least-squares state at the coefficients (from which the factor of the information
matrix, hence the nonrobust covariance, the standard errors and the confidence intervals of
the mean are recomputed, equal to the fitted model's), and the fit's statistics (deviance,
Pearson χ², null deviance, log-likelihoods, scale, counts): ``results_`` and ``summary()``
are the fitted model's, except the HC and cluster covariances (they need the data: ``cov="HC0"``
etc. on a loaded model raise). A model fitted with a robust ``cov_type`` (an HC kind or
"cluster") is saved as any other (its ``params`` keep ``cov_type``; the stored ``statistics``
are those of the fit, under its ``cov_type``); loaded, its ``results_`` are non-robust, with a
note saying so (as a loaded :class:`jaxlm.LinearRegression`'s).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import replace
from types import MappingProxyType

import numpy as np

from ..core.errors import InputError
from ..io import model_json as mj
from ..io.model_file import FORMAT, FORMAT_VERSION, _finite_list, _jsonable
from .linear_doc import _state_dict, _statistics_of, model_formula

__all__ = ["family_dict", "model_from_document", "model_to_dict", "results_from_solution"]


def family_dict(family) -> dict:
    """``{"name": ..., "var_power" | "nb_alpha": ...}`` of a :class:`~jaxlm.core.families.Family`."""
    out = {"name": family.name}
    if family.name == "tweedie":
        out["var_power"] = float(family.var_power)
    if family.name == "negative_binomial":
        out["nb_alpha"] = float(family.alpha)
    return out


def _finite(value, what: str) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise InputError("model", f"model must have a finite {what} to be saved; got {x!r}.")
    return x


def _solution_dict(model) -> dict:
    sol, res, data = model.solution_, model.results_, model.solution_.data
    return {"solver": str(model.solver), "n_iter": int(sol.n_iter), "converged": bool(sol.converged),
            "rank": int(sol.rank), "aliased": [int(j) for j in sol.aliased],
            "separated": [int(j) for j in sol.separated], "condition_number": float(sol.condition_number),
            "deviance": _finite(sol.deviance, "deviance"), "pearson_chi2": _finite(sol.pearson_chi2, "Pearson chi2"),
            "null_deviance": _finite(res.null_deviance, "null deviance"), "llf": _finite(res.llf, "log-likelihood"),
            "llnull": _finite(res.llnull, "null log-likelihood"), "scale": float(res.scale), "rows": int(data.rows),
            "nobs": int(data.nobs), "wnobs": float(data.wnobs), "y_mean": float(data.y_mean),
            "null_mean": float(data.null_mean), "has_offset": bool(data.has_offset)}


def model_to_dict(model, *, formula=None, statistics=None, weights: str | None = None, offset: str | None = None,
                  exposure: str | None = None, var_weights: str | None = None, metadata: dict | None = None) -> dict:
    """The JSON document ``model.save`` writes for a fitted GLM estimator (see the module docstring).

    ``weights``, ``offset``, ``exposure``, ``var_weights``: the fit's per-row column names
    (default those of a :func:`jaxlm.fit_table` fit, ``model.data_columns_``); predictions from
    a table read the offset and exposure columns named here.
    """
    import jaxlm  # for __version__

    if not hasattr(model, "solution_") or not hasattr(model, "results_"):
        raise InputError("model", f"model must be fitted; got an unfitted {type(model).__name__}. Call fit first.")
    coef = np.asarray(model.coef_, dtype=np.float64).reshape(1, -1)
    d = coef.shape[1]
    if d == 0:
        raise InputError("model", "model must have at least one feature to be saved; got an intercept-only model.")
    names = getattr(model, "feature_names_in_", None)
    features = [str(c) for c in names] if names is not None else [f"x{j}" for j in range(d)]
    targets = list(getattr(model, "target_names_", None) or ("y",))[:1]
    formula = getattr(model, "formula_", None) if formula is None else formula
    formula = model_formula(formula, features)
    if formula is not None:
        targets = list(formula.targets)[:1] or targets
    given = {"weights": weights, "offset": offset, "exposure": exposure, "var_weights": var_weights}
    stored = dict(getattr(model, "data_columns_", None) or {})
    columns = {k: v if v is not None else stored.get(k) for k, v in given.items()}
    classes = getattr(model, "classes_", None) if type(model).__name__ == "LogisticRegression" else None
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "jaxlm_version": jaxlm.__version__,
        "estimator": type(model).__name__,
        "params": dict(model.get_params()),
        "family": family_dict(model.family_),
        "link": model.link_.name,
        "classes": None if classes is None else np.asarray(classes).tolist(),
        "features": features,
        "targets": targets,
        "target_ndim": 1,
        "coef": _finite_list(coef, "coefficients"),
        "intercept": _finite_list(np.asarray([model.intercept_], dtype=np.float64), "intercept"),
        "solution": _solution_dict(model),
        "state": _state_dict(model.solution_.state),
        "formula": formula.to_json() if formula is not None else None,
        **columns,
        "statistics": _statistics_of(model) if statistics is None else statistics,
        "metadata": dict(metadata or {}),
    }
    return _jsonable(doc)


def results_from_solution(sol, stored: dict, feature_names):
    """The :class:`~jaxlm.inference.glm.GLMResults` of a loaded solution: the nonrobust
    covariance from its state (as :func:`jaxlm.inference.glm.glm_results` computes it), the
    statistics that need the data (null deviance, log-likelihoods) as stored."""
    from ..inference._common import _readonly
    from ..inference.glm import GLMResults, _term_names, stats_plan, z_bread

    fi, d = sol.fit_intercept, len(sol.coef)
    p = d + int(fi)
    plan = stats_plan(sol, robust=False)
    k = float(sol.rank + int(fi))
    df_resid = sol.data.wnobs - k
    bread = z_bread(plan, p, fi)
    cov = plan.scale * bread if sol.alpha == 0.0 and df_resid > 0 else np.full((p, p), np.nan)
    estimable = np.ones(p, bool)
    if sol.aliased:
        estimable[np.asarray(sol.aliased) + int(fi)] = False
    estimable.setflags(write=False)
    params = np.concatenate([[sol.intercept], sol.coef]) if fi else np.asarray(sol.coef, dtype=np.float64)
    return GLMResults(params=_readonly(params), term_names=_term_names(feature_names, d, fi), family=sol.family,
                      link=sol.link, fit_intercept=fi, alpha=sol.alpha, nobs=int(sol.data.nobs),
                      wnobs=float(sol.data.wnobs), df_model=k - 1.0, df_resid=float(df_resid),
                      deviance=float(sol.deviance), null_deviance=float(stored["null_deviance"]),
                      pearson_chi2=float(sol.pearson_chi2), scale=float(plan.scale), llf=float(stored["llf"]),
                      llnull=float(stored["llnull"]), converged=sol.converged, n_iter=sol.n_iter, estimable=estimable,
                      separated=tuple(sol.separated), _shift=_readonly(plan.shift),
                      _covs_z=MappingProxyType({"nonrobust": _readonly(cov)}), _max_leverage=math.nan)


def _solution_of(doc: dict, alpha: float, fit_intercept: bool):
    from ..core.glm_passes import DataSummary
    from ..core.irls import GLMSolution

    s, d = doc["solution"], len(doc["features"])
    coef = np.asarray(doc["coef"], dtype=np.float64).reshape(-1)
    data = DataSummary(int(s["rows"]), int(s["nobs"]), float(s["wnobs"]), float(s["y_mean"]),
                       float(s["null_mean"]), bool(s["has_offset"]))
    objective = float(s["deviance"]) + alpha * float(coef @ coef)
    return GLMSolution(coef=coef, intercept=float(doc["intercept"][0]), deviance=float(s["deviance"]),
                       pearson_chi2=float(s["pearson_chi2"]), objective=objective, n_iter=int(s["n_iter"]), passes=0,
                       converged=bool(s["converged"]), deviance_path=np.asarray([objective]), step=np.zeros(d),
                       step_intercept=0.0, halvings=0, state=doc["state"], factor=doc["factor"], rank=int(s["rank"]),
                       aliased=tuple(s["aliased"]), condition_number=float(s["condition_number"]),
                       separated=tuple(s["separated"]), family=doc["family_object"], link=doc["link_object"],
                       fit_intercept=fit_intercept, alpha=alpha, data=data)


def _with_note(res, params: dict):
    """The loaded results, with a note when the fit's ``cov_type`` needs the data."""
    kind = params.get("cov_type", "nonrobust")
    if kind == "nonrobust" or not np.any(np.isfinite(np.diag(res.cov("nonrobust")))):
        return res
    note = (f"The model was fitted with cov_type={kind!r}; its covariance needs the data, which a model file does "
            f"not hold: the statistics here are non-robust. Refit on the data for {kind} errors.")
    return replace(res, notes=tuple(res.notes) + (note,))


def model_from_document(cls, doc: dict):
    """The fitted GLM estimator of a validated document (its params must give the file's family and link)."""
    model = cls(**doc["params"])
    try:
        family, link = model._check_params()
    except InputError as e:  # the params' combination (e.g. power with a family other than tweedie)
        raise mj.Invalid(f"invalid params: {e}") from None
    if family != doc["family_object"] or link.name != doc["link"]:
        raise mj.Invalid(f"'family' {family_dict(doc['family_object'])} with link {doc['link']!r} is not the model "
                         f"its params give ({family_dict(family)} with link {link.name!r})")
    sol = _solution_of(doc, float(model.alpha), bool(model.fit_intercept))
    names = np.asarray(doc["features"], dtype=object)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # a rank warning was given when the model was fitted
            res = _with_note(results_from_solution(sol, doc["solution"], names), model.get_params())
            model._set_solution(sol, res, names)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as e:  # InputError is a ValueError
        raise mj.Invalid(f"its statistics cannot be recomputed ({e})") from None
    model.feature_names_in_ = names
    model.n_features_in_ = len(names)
    model.target_names_ = tuple(doc["targets"])
    model.formula_ = doc["formula"]
    model.data_columns_ = {k: doc.get(k) for k in ("weights", "offset", "exposure", "var_weights")}
    if doc.get("classes") is not None:
        model.classes_ = np.asarray(doc["classes"])
    return model
