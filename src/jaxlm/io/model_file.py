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

:func:`load_model` validates everything it reads (types, shapes, names, the formula's
encoding) and refuses, with a message naming the problem, a file that is not JSON, not a
jaxlm model, from a newer format version, or edited into inconsistency.
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

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFile", "atomic_write", "load", "load_model", "model_to_dict",
           "read_model_file", "required_columns", "save_model"]

FORMAT = "jaxlm-model"
FORMAT_VERSION = 1
#: Model files larger than this are refused unread (a model is O(d²) numbers).
MAX_BYTES = 512 << 20


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


def _float_or_special(x) -> float:
    if isinstance(x, str) and x in ("NaN", "Infinity", "-Infinity"):
        return float(x.replace("Infinity", "inf").replace("NaN", "nan"))
    return x


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
    doc = model_to_dict(model, formula=formula, statistics=statistics, weights=weights, metadata=metadata)
    text = json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    p = check_output_path(path)
    atomic_write(p, lambda fh: fh.write(text.encode("utf-8")))
    return p


# --------------------------------------------------------------------------- load


class ModelFile(NamedTuple):
    """A loaded model file: the model, its formula (or None), statistics and the raw document."""

    model: object
    formula: object
    statistics: object
    document: dict


def _bad(path: str, why: str) -> InputError:
    return InputError("model", f"model must be a valid jaxlm model file; got model={path!r} ({why}).")


def _get(doc: dict, key: str, types, path: str, where: str = ""):
    if key not in doc:
        raise _bad(path, f"missing key {where + key!r}")
    v = doc[key]
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,))):
        want = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise _bad(path, f"{where + key!r} must be {want}, got {type(v).__name__}")
    return v


def _array(v, shape: tuple, what: str, path: str, *, finite: bool = True) -> np.ndarray:
    """A JSON (nested) list of numbers as a float array of ``shape``; strings other than the
    non-finite spellings, booleans and nulls are refused (no silent conversion of "1.0")."""
    def walk(x):
        if isinstance(x, list):
            return [walk(e) for e in x]
        if isinstance(x, str) and x in ("NaN", "Infinity", "-Infinity"):
            return _float_or_special(x)
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise _bad(path, f"{what!r} must be an array of numbers, got {x!r} in it")
        return float(x)

    try:
        a = np.asarray(walk(v), dtype=np.float64)
    except ValueError:
        raise _bad(path, f"{what!r} must be an array of numbers of shape {shape}") from None
    if a.shape != shape:
        raise _bad(path, f"{what!r} must have shape {shape}, got {a.shape}")
    if finite and not np.all(np.isfinite(a)):
        raise _bad(path, f"{what!r} must hold finite numbers")
    return a


def read_model_file(path) -> ModelFile:
    """Read and validate a model file; see :func:`load_model`."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError("model", f"model must be a path to a model file; got {type(path).__name__}.")
    shown = os.fspath(path)
    p = Path(os.path.expanduser(shown))
    if not p.exists():
        raise InputError("model", f"model must be an existing model file; got model={shown!r} (no such file).")
    if not p.is_file():
        raise InputError("model", f"model must be a model file; got model={shown!r}, which is not a regular file.")
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise _bad(shown, f"{size:,} bytes; model files are far smaller")
        raw = p.read_bytes()
    except OSError as e:
        raise InputError("model", f"model must be a readable file; got model={shown!r} ({e.strerror}).") from None
    if raw[:8] == b"\x80\x04\x95" or raw[:1] == b"\x80":
        raise _bad(shown, "this looks like a pickle, which jaxlm never loads: loading a pickle can run arbitrary code")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _bad(shown, "not a UTF-8 text file") from None
    except json.JSONDecodeError as e:
        raise _bad(shown, f"not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _bad(shown, f"not a jaxlm model: no \"format\": \"{FORMAT}\" entry")
    version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _bad(shown, f"'format_version' must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise InputError("model", f"model must be in a format this jaxlm can read (version <= {FORMAT_VERSION}); got "
                                  f"model={shown!r} in format version {version}, written by jaxlm "
                                  f"{doc.get('jaxlm_version', '?')}. Upgrade jaxlm to load it.")
    estimator = _get(doc, "estimator", str, shown)
    if estimator != "LinearRegression":
        raise _bad(shown, f"'estimator' must be 'LinearRegression', got {estimator!r}")
    params = _get(doc, "params", dict, shown)
    features = _get(doc, "features", list, shown)
    targets = _get(doc, "targets", list, shown)
    if not features or not all(isinstance(c, str) and c for c in features) or len(set(features)) != len(features):
        raise _bad(shown, "'features' must be a non-empty list of distinct column names")
    if not targets or not all(isinstance(c, str) and c for c in targets):
        raise _bad(shown, "'targets' must be a non-empty list of column names")
    d, m = len(features), len(targets)
    target_ndim = _get(doc, "target_ndim", int, shown)
    if target_ndim not in (1, 2) or (target_ndim == 1 and m != 1):
        raise _bad(shown, f"'target_ndim' must be 1 (one target) or 2; got {target_ndim} with {m} targets")
    coef = _array(_get(doc, "coef", list, shown), (m, d), "coef", shown)
    intercept = _array(_get(doc, "intercept", list, shown), (m,), "intercept", shown)
    # the document's shape is sound: now the (slow to import) estimator and core
    from ..core import exact
    from ..core import state as st
    from ..core.solution import Solution
    from ..estimator import LinearRegression
    from .formula import FormulaSpec

    unknown = sorted(set(params) - set(LinearRegression().get_params()))
    if unknown:
        raise _bad(shown, f"unknown params {unknown} (written by another jaxlm version?)")
    model = LinearRegression(**params)
    try:
        model._check_params()
    except InputError as e:
        raise _bad(shown, f"invalid params: {e}") from None
    if not model.fit_intercept and np.any(intercept != 0):
        raise _bad(shown, "'intercept' must be zero for a model with fit_intercept=false")
    solution = _get(doc, "solution", dict, shown)
    state = _load_state(doc.get("state"), d, m, shown, st)
    formula = None
    if doc.get("formula") is not None:
        fdoc = _get(doc, "formula", dict, shown)
        try:
            formula = FormulaSpec.from_json(fdoc)
        except InputError as e:
            raise _bad(shown, f"its formula does not rebuild: {e}") from None
        if tuple(formula.features) != tuple(features):
            raise _bad(shown, f"the formula encodes features {list(formula.features)}, the file lists {features}")
        if formula.fit_intercept != model.fit_intercept:
            raise _bad(shown, "the formula's intercept and params.fit_intercept disagree")
    solver_used = solution.get("solver", model.solver)
    rank = solution.get("rank", d)
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank <= d:
        raise _bad(shown, f"'solution.rank' must be an integer in [0, {d}], got {rank!r}")
    aliased = solution.get("aliased", [])
    if not isinstance(aliased, list) or not all(isinstance(j, int) and 0 <= j < d for j in aliased):
        raise _bad(shown, "'solution.aliased' must list feature indices")
    sse = solution.get("sse")
    sse = None if sse is None else _array(sse, (m,), "solution.sse", shown)
    cond = _float_or_special(solution.get("condition_number", float("nan")))
    if not isinstance(cond, (int, float)) or isinstance(cond, bool):
        raise _bad(shown, "'solution.condition_number' must be a number")
    factor = None
    if state is not None:
        try:
            factor = exact.factor_state(state, alpha=float(model.alpha), fit_intercept=model.fit_intercept,
                                        solver=model.solver if model.solver in exact.SOLVERS else "auto")
        except (ValueError, np.linalg.LinAlgError) as e:
            raise _bad(shown, f"its least-squares state cannot be factorised ({e})") from None
    sol = Solution(coef=coef, intercept=intercept, solver=str(solver_used), dtype=str(solution.get("dtype", model.dtype)),
                   rank=rank, n_iter=int(solution.get("n_iter", 1)), converged=bool(solution.get("converged", True)),
                   diverged=bool(solution.get("diverged", False)), grad_norm=float(solution.get("grad_norm", 0.0)),
                   condition_number=float(cond), aliased=tuple(aliased),
                   refinement_steps=int(solution.get("refinement_steps", 0)),
                   matmul_precision=str(solution.get("matmul_precision", "highest")), sse=sse, state=state,
                   factor=factor)
    model.feature_names_in_ = np.asarray(features, dtype=object)
    model.n_features_in_ = d
    model.target_names_ = tuple(targets)
    model.formula_ = formula
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a rank warning was given when the model was fitted
        model._set_solution(sol, target_ndim == 1, d)
        try:
            model._set_results(sol, target_ndim == 1)
        except (InputError, ValueError, np.linalg.LinAlgError) as e:
            raise _bad(shown, f"its statistics cannot be recomputed ({e})") from None
    if state is not None and model.solver in exact.SOLVERS and \
            type(state).__name__ == ("GramState" if exact.state_kind(model.solver) == "gram" else "QRState"):
        model.state_ = state
    return ModelFile(model, formula, doc.get("statistics"), doc)


def _load_state(sdoc, d: int, m: int, path: str, st):
    if sdoc is None:
        return None
    if not isinstance(sdoc, dict):
        raise _bad(path, "'state' must be an object or null")
    kind = sdoc.get("kind")
    if kind == "gram":
        shapes = {"count": (), "wsum": (), "wsum2": (), "mean_x": (d,), "mean_y": (m,), "sxx": (d, d),
                  "sxy": (d, m), "syy": (m, m)}
        cls = st.GramState
    elif kind == "qr":
        shapes = {"count": (), "wsum": (), "wsum2": (), "mean_x": (d,), "mean_y": (m,), "r": (d + m, d + m)}
        cls = st.QRState
    else:
        raise _bad(path, f"'state.kind' must be 'gram' or 'qr', got {kind!r}")
    arrays = {}
    for name, shape in shapes.items():
        if name not in sdoc:
            raise _bad(path, f"missing key 'state.{name}'")
        arrays[name] = _array(sdoc[name], shape, f"state.{name}", path)
    if arrays["wsum"] <= 0 or arrays["count"] < 1:
        raise _bad(path, "'state' must describe at least one row of positive weight")
    if kind == "gram" and (np.any(np.diag(arrays["sxx"]) < 0) or not np.allclose(arrays["sxx"], arrays["sxx"].T)):
        raise _bad(path, "'state.sxx' must be a symmetric matrix with a non-negative diagonal")
    return cls(**{k: (np.float64(v) if v.ndim == 0 else v) for k, v in arrays.items()})


def required_columns(path) -> list[str] | None:
    """The data columns a model file's predictions need, read without building the model
    (None when the file cannot be read that way: :func:`read_model_file` then says why)."""
    try:
        p = Path(os.path.expanduser(os.fspath(path)))
        if not p.is_file() or p.stat().st_size > MAX_BYTES:
            return None
        doc = json.loads(p.read_bytes().decode("utf-8"))
    except (OSError, TypeError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
        return None
    formula = doc.get("formula")
    cols = formula.get("inputs") if isinstance(formula, dict) else doc.get("features")
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
        return None
    return cols


def load_model(path):
    """A fitted :class:`jaxlm.LinearRegression` from a model file written by :func:`save_model`.

    The model has ``coef_``, ``intercept_``, ``feature_names_in_``, ``solution_`` (with the
    least-squares state and its factor, so statistics can be recomputed) and the io
    attributes ``target_names_`` and ``formula_`` (a :class:`~jaxlm.io.formula.FormulaSpec`
    or None) that :func:`jaxlm.io.predict_table` uses.

    Raises
    ------
    InputError (``param="model"``): a missing file, not JSON, not a jaxlm model file, a newer
    format version, or a file that fails validation (missing keys, wrong types, a shape
    mismatch between ``coef`` and the feature names, a formula that does not rebuild the
    stored columns, ...). The message names the problem.
    """
    return read_model_file(path).model


#: ``jaxlm.load`` (a lazy top-level name) resolves to this.
load = load_model
