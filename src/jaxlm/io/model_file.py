"""Versioned JSON model files: :func:`save_model` and :func:`load_model`. Never pickle.

Loading a pickle runs whatever code the file names; a model file is data. This one is a JSON
object (UTF-8), written atomically (a temporary file in the same directory, then
``os.replace``: a reader sees the old file or the new one, never a part)::

    {
      "format": "jaxlm-model",          # what this file is
      "format_version": 1,              # FORMAT_VERSION; a newer one is refused
      "jaxlm_version": "0.1.0",         # the jaxlm that wrote it
      "estimator": "LinearRegression",
      "params": {...},                  # get_params(): solver, fit_intercept, alpha, dtype, ...
      "features": ["x1", "x2"],         # model columns, in the order of coef
      "targets": ["y"],                 # one per row of coef
      "target_ndim": 1,                 # 1: coef_ is (d,) and intercept_ a float; 2: (m, d) and (m,)
      "coef": [[...]],                  # (m, d)
      "intercept": [...],               # (m,)
      "solution": {...},                # solver used, dtype, rank, condition number, sse, ...
      "state": {...} or null,           # the mergeable least-squares state (exact solvers)
      "formula": {...} or null,         # FormulaSpec.to_json(): formula string and factor levels
      "weights": "w" or null,           # name of the weights column of the fit (information)
      "statistics": {...} or null,      # the model's results_.to_dict() / a summary dict, if any
      "metadata": {...}                 # free-form: data, rows, ... (not interpreted)
    }

Storing the state (weight sums, means and the centred co-moments or TSQR factor: O(d²)
numbers) makes a loaded model as good as the fitted one: the factor of the normal matrix is
recomputed from it, so standard errors and prediction intervals can be derived again, and
``partial_fit`` can go on adding rows. Floats are written with ``repr`` (shortest
round-trip), so coefficients load bit for bit. Non-finite numbers, where a field allows them
(a condition number, statistics), are written as the strings "NaN", "Infinity", "-Infinity".

Loading treats the file as untrusted data (:mod:`jaxlm.io.model_schema` has the schema):
the bytes are parsed under :class:`ModelLimits` (size, nesting, values, features, targets,
levels: each bounded before the memory it guards is allocated); the whole document is then
validated (every field's type, range and shape, the shapes against each other, the formula
against the closed formula grammar) before anything is built; the numbers are checked
against each other (the state must be one that data can give, the coefficients must solve
its normal equations, the SSE and intercept must be the ones it gives); only then are the
estimator, the factor and the formula (formulaic) built. A file that fails any of it is
refused with one InputError naming the problem.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from ..core.errors import InputError
from . import files
from . import model_checks as checks
from . import model_json as mj
from . import model_schema as schema

__all__ = ["DEFAULT_LIMITS", "FORMAT", "FORMAT_VERSION", "ModelFile", "ModelLimits", "atomic_write", "load",
           "load_model", "model_to_dict", "read_document", "read_model_file", "required_columns", "save_model",
           "write_document"]

FORMAT = schema.FORMAT
FORMAT_VERSION = schema.FORMAT_VERSION
#: Model files larger than this are refused unread (``limits={"max_bytes": ...}`` raises it).
MAX_BYTES = mj.DEFAULT_LIMITS.max_bytes
ModelLimits = mj.ModelLimits
DEFAULT_LIMITS = mj.DEFAULT_LIMITS


# --------------------------------------------------------------------------- atomic writes


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_output_path(path, param: str = "path") -> Path:
    """``path`` as a Path whose directory exists and is writable (raises InputError otherwise)."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise InputError(param, f"{param} must be a file path; got {param}={path!r}.")
    p = Path(os.path.expanduser(os.fspath(path)))
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise InputError(param, f"{param} must be a file path, not a directory; got {param}={os.fspath(path)!r}.")
    if not parent.is_dir():
        raise InputError(param, f"{param} must be in an existing directory; got {param}={os.fspath(path)!r} (no "
                                f"directory {str(parent)!r}). Create it first.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(param, f"{param} must be in a writable directory; got {param}={os.fspath(path)!r} "
                                f"({str(parent)!r} is not writable).")
    return p


def atomic_write(path, write: Callable, *, param: str = "path") -> None:
    """Write ``path`` through ``write(binary_file)`` via a temporary file in the same directory
    renamed into place (:func:`jaxlm.io.files.atomic_write`); an unwritable directory is an
    InputError naming ``param``."""
    p = check_output_path(path, param)
    try:
        files.atomic_write(p, write)
    except OSError as e:
        raise InputError(param, f"{param} must be writable; got {param}={os.fspath(path)!r} ({e.strerror}).") from None


# --------------------------------------------------------------------------- JSON helpers


def _jsonable(obj):
    """Plain JSON values: numpy unwrapped, non-finite floats as strings."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "Infinity" if x > 0 else "-Infinity"
        return x
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def _finite_list(a, what: str) -> list:
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise InputError("model", f"model must have finite {what} to be saved; got NaN or inf.")
    return a.tolist()


# --------------------------------------------------------------------------- save


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
    import jaxlm

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
        from .formula import FormulaSpec

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


def save_model(model, path, *, formula=None, statistics=None, weights: str | None = None,
               metadata: dict | None = None) -> Path:
    """Write a fitted :class:`jaxlm.LinearRegression` to ``path`` as a JSON model file (atomically).

    Parameters
    ----------
    model : fitted jaxlm.LinearRegression
    path : str or os.PathLike, in an existing directory (an existing file is replaced)
    formula : FormulaSpec or str, optional
        Default ``model.formula_`` (set by :func:`jaxlm.io.fit_table`). A plain string is
        accepted for formulas without categorical terms.
    statistics : dict, optional
        Default ``model.results_.to_dict()`` when the model has one.
    weights : str, optional
        Name of the weights column of the fit (information only).
    metadata : dict, optional
        Stored as is under "metadata" (e.g. the data file and row count).

    Returns the path written.
    """
    return write_document(path, model_to_dict(model, formula=formula, statistics=statistics, weights=weights,
                                              metadata=metadata))


def write_document(path, doc: dict) -> Path:
    """Write a model document (as :func:`model_to_dict` makes it) to ``path`` atomically, as
    strict JSON (non-finite numbers as the strings "NaN", "Infinity", "-Infinity")."""
    text = json.dumps(_jsonable(doc), indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    p = check_output_path(path)
    atomic_write(p, lambda fh: fh.write(text.encode("utf-8")))
    return p


# --------------------------------------------------------------------------- load


class ModelFile(NamedTuple):
    """A loaded model file: the model, its formula (or None), the stored statistics (data,
    as written; the model's own ``results_`` are recomputed from its state) and the
    validated document (numeric arrays as NumPy arrays)."""

    model: object
    formula: object
    statistics: object
    document: dict


def _checked(shown: str, raw: bytes, limits: mj.ModelLimits) -> schema.Checked:
    """Parse and validate the whole document (nothing built, no numeric array expanded)."""
    try:
        return schema.check_document(mj.parse(raw, limits), limits)
    except mj.Invalid as e:
        raise mj.bad(shown, str(e)) from None
    except mj.OverLimit as e:
        raise mj.over(shown, e) from None
    except mj.Newer as e:
        raise InputError("model", f"model must be in a format this jaxlm can read (version <= {FORMAT_VERSION}); got "
                                  f"model={shown!r} in format version {e.version}, written by jaxlm "
                                  f"{e.jaxlm_version or '?'}. Upgrade jaxlm to load it.") from None


def read_document(path, *, limits=None) -> dict:
    """The validated document of a model file, nothing of it built but its formula.

    Parsed under ``limits`` (:class:`ModelLimits`), validated against the schema
    (:mod:`jaxlm.io.model_schema`), its numbers checked against each other
    (:mod:`jaxlm.io.model_checks`, which also factorises the state), and its formula rebuilt
    from the validated parts and checked to encode the file's features. Returns the keys of
    the file with ``coef``, ``intercept`` and ``solution["sse"]`` as float64 arrays,
    ``state`` as a :mod:`jaxlm.core.state` tuple (or None), ``factor`` (the state's
    ``jaxlm.core.exact.Factor``, or None; ``solution``'s rank, aliased columns and condition
    number are the factor's) and ``formula`` as a :class:`~jaxlm.io.formula.FormulaSpec` (or
    None). Raises InputError("model", ...) naming the problem.
    """
    limits = mj.check_limits(limits)
    shown, raw = mj.read_bytes(path, limits)
    checked = _checked(shown, raw, limits)
    del raw
    try:
        doc = schema.expand(checked)
        del checked  # the file's bytes are freed here: the numbers are float64 arrays now
        with np.errstate(all="ignore"):  # an overflow is found by the checks, not printed as a warning
            numbers = checks.check_numbers(doc)
        formula = _formula(doc.formula) if doc.formula is not None else None
    except mj.Invalid as e:
        raise mj.bad(shown, str(e)) from None
    solution = dict(doc.solution, grad_norm=float(mj.NON_FINITE.get(doc.solution["grad_norm"],
                                                                  doc.solution["grad_norm"])),
                    condition_number=float(mj.NON_FINITE.get(doc.solution["condition_number"],
                                                             doc.solution["condition_number"])))
    if numbers.factor is not None:
        f = numbers.factor
        solution.update(rank=f.rank, aliased=tuple(f.aliased), condition_number=float(f.cond))
    return {"format": FORMAT, "format_version": doc.version, "jaxlm_version": doc.jaxlm_version,
            "estimator": "LinearRegression", "params": dict(doc.params), "features": list(doc.features),
            "targets": list(doc.targets), "target_ndim": doc.target_ndim, "coef": doc.coef,
            "intercept": doc.intercept, "solution": solution, "state": numbers.state, "factor": numbers.factor,
            "formula": formula, "weights": doc.weights, "statistics": doc.statistics, "metadata": doc.metadata,
            "path": shown}


def read_model_file(path, *, limits=None) -> ModelFile:
    """Read and validate a model file, then build its model; see :func:`load_model`."""
    doc = read_document(path, limits=limits)
    try:
        model = _model_from_document(doc)
    except mj.Invalid as e:
        raise mj.bad(doc["path"], str(e)) from None
    return ModelFile(model, doc["formula"], doc["statistics"], doc)


def _model_from_document(doc: dict):
    """The fitted estimator of a validated document (the only step that needs the estimator)."""
    import jaxlm  # the public name, wherever the estimator lives (scikit-learn is slow to import)

    from ..core import exact
    from ..core.solution import Solution

    sol, state, d = doc["solution"], doc["state"], len(doc["features"])
    model = jaxlm.LinearRegression(**doc["params"])
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


def _formula(f: dict):
    """The FormulaSpec rebuilt from the validated formula (its text passed the grammar, its
    levels are bounded by the coefficients); it must encode the file's features."""
    from .formula import FormulaSpec

    try:
        spec = FormulaSpec.from_json(dict(f))
    except InputError as e:
        raise mj.Invalid(f"its formula does not rebuild: {e}") from None
    if tuple(spec.features) != tuple(f["features"]):
        raise mj.Invalid(f"the formula encodes features {list(spec.features)[:20]}, the file lists "
                             f"{list(f['features'])[:20]}")
    for key in ("inputs", "outputs"):
        if key in f and tuple(getattr(spec, key)) != tuple(f[key]):
            raise mj.Invalid(f"the formula reads the columns {list(getattr(spec, key))[:20]}, the file lists "
                                 f"{key} {list(f[key])[:20]}")
    return spec


def required_columns(path, *, limits=None) -> list[str] | None:
    """The data columns a model file's predictions need, read and validated without building
    the model (None when the file is not valid: :func:`read_model_file` then says why)."""
    try:
        lim = mj.check_limits(limits)
        shown, raw = mj.read_bytes(path, lim)
        doc = _checked(shown, raw, lim)
    except InputError:
        return None
    if doc.formula is not None:
        return list(doc.formula.get("inputs", doc.features))
    return list(doc.features)


def load_model(path, *, limits=None):
    """A fitted :class:`jaxlm.LinearRegression` from a model file written by :func:`save_model`.

    The model has ``coef_``, ``intercept_``, ``feature_names_in_``, ``solution_`` (with the
    least-squares state and its factor, so statistics can be recomputed) and the io
    attributes ``target_names_`` and ``formula_`` (a :class:`~jaxlm.io.formula.FormulaSpec`
    or None) that :func:`jaxlm.io.predict_table` uses.

    A model file is data, and may come from anyone: it is parsed under ``limits`` and
    validated in full (:mod:`jaxlm.io.model_schema`, :mod:`jaxlm.io.model_checks`) before anything is built; no field
    reaches code, and the formula is checked by the closed formula grammar before
    formulaic sees it.

    Parameters
    ----------
    path : str or os.PathLike
    limits : dict or ModelLimits, optional
        Raise the bounds for a trusted large model, e.g. ``limits={"max_features": 5000}``.
        Defaults (:data:`jaxlm.io.model_json.DEFAULT_LIMITS`): 256 MiB, 2,048 features,
        1,024 targets, 10,000 categorical levels, nesting depth 32, 1,000,000 JSON values
        outside the numeric arrays.

    Raises
    ------
    InputError (``param="model"``): a missing file, not JSON, not a jaxlm model file, a newer
    format version, a file over a limit, or a file that fails validation (missing or unknown
    keys, wrong types, shapes that disagree, non-finite numbers, a state that no data could
    give or that the coefficients, SSE or intercept do not agree with, a formula outside the
    grammar or that does not rebuild the stored columns, ...). The message names the problem.
    InputError (``param="limits"``) for malformed ``limits``.
    """
    return read_model_file(path, limits=limits).model


#: ``jaxlm.load`` (a lazy top-level name) resolves to this.
load = load_model
