"""A linear model ⇄ its model-file document (plain dicts; the file itself is the io layer's).

:func:`model_to_dict` is what ``model.save`` writes; :func:`model_from_document` builds the
fitted model from a document that :func:`jaxlm.io.model_file.read_document` validated. The
class is passed in (by :mod:`jaxlm.models.registry`), so this module imports no estimator.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..core.errors import InputError
from ..io import model_json as mj
from ..io.model_file import FORMAT, FORMAT_VERSION, _finite_list, _jsonable


def _statistics_of(model):
    """The model's statistics as plain data: ``results_.to_dict()``, else ``summary().to_dict()``."""
    res = getattr(model, "results_", None)
    if res is None:
        return None
    if hasattr(res, "to_dict"):
        return res.to_dict()
    if isinstance(res, (list, tuple)) and res and all(hasattr(r, "to_dict") for r in res):
        return [r.to_dict() for r in res]
    summary = getattr(model, "summary", None)
    if summary is not None:
        try:
            s = summary()
        except (InputError, ValueError):  # e.g. statistics undefined for this fit
            return None
        return s.to_dict() if hasattr(s, "to_dict") else None
    return None


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
    import jaxlm  # for __version__ (the package itself, not a model)

    if not hasattr(model, "coef_") or not hasattr(model, "intercept_"):
        raise InputError("model", f"model must be fitted; got an unfitted {type(model).__name__}. Call fit first.")
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    m, d = coef.shape
    target_ndim = 1 if np.ndim(model.coef_) == 1 else 2
    intercept = np.asarray(model.intercept_, dtype=np.float64).reshape(m)
    names = getattr(model, "feature_names_in_", None)
    features = [str(c) for c in names] if names is not None else [f"x{j}" for j in range(d)]
    targets = list(getattr(model, "target_names_", None) or (["y"] if m == 1 else [f"y{k}" for k in range(m)]))
    if len(targets) != m:
        targets = ["y"] if m == 1 else [f"y{k}" for k in range(m)]
    if formula is None:
        formula = getattr(model, "formula_", None)
    if isinstance(formula, str):
        from ..io.formula import FormulaSpec

        formula = FormulaSpec.from_levels(formula, {})
    if formula is not None:
        if tuple(formula.features) != tuple(features):
            raise InputError("formula", f"formula must encode the model's features; got formula={formula.formula!r}, "
                                        f"which encodes {list(formula.features)}, for a model with {features}.")
        targets = list(formula.targets) if len(formula.targets) == m else targets
    sol = getattr(model, "solution_", None)
    params = dict(model.get_params())
    solution = {}
    if sol is not None:
        solution = {"solver": str(sol.solver), "dtype": str(sol.dtype), "rank": int(sol.rank),
                    "n_iter": int(sol.n_iter), "converged": bool(sol.converged), "diverged": bool(sol.diverged),
                    "grad_norm": float(sol.grad_norm), "condition_number": float(sol.condition_number),
                    "aliased": [int(j) for j in sol.aliased], "refinement_steps": int(sol.refinement_steps),
                    "matmul_precision": str(sol.matmul_precision),
                    "sse": None if sol.sse is None else np.asarray(sol.sse, dtype=np.float64).reshape(-1).tolist()}
    if statistics is None:
        statistics = _statistics_of(model)
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "jaxlm_version": jaxlm.__version__,
        "estimator": type(model).__name__,
        "params": params,
        "features": features,
        "targets": targets,
        "target_ndim": target_ndim,
        "coef": _finite_list(coef, "coefficients"),
        "intercept": _finite_list(intercept, "intercept"),
        "solution": solution,
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
    from ..core.solution import Solution

    sol, state, d = doc["solution"], doc["state"], len(doc["features"])
    model = cls(**doc["params"])
    try:
        model._check_params()
    except InputError as e:  # unreachable after the schema; kept as a second guard
        raise mj.Invalid(f"invalid params: {e}") from None
    fields = {k: sol[k] for k in ("solver", "dtype", "rank", "n_iter", "converged", "diverged", "grad_norm",
                                  "condition_number", "aliased", "refinement_steps", "matmul_precision", "sse")}
    solution = Solution(coef=doc["coef"], intercept=doc["intercept"], state=state, factor=doc["factor"], **fields)
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
    if state is not None and model.solver in exact.SOLVERS and \
            type(state).__name__ == ("GramState" if exact.state_kind(model.solver) == "gram" else "QRState"):
        model.state_ = state
    return model
