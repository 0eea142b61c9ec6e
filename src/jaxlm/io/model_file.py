"""Versioned JSON model files as validated plain documents: :func:`read_document` and
:func:`write_document`. Never pickle. (Models are built from, and written to, these documents
by :mod:`jaxlm.models.registry`: ``jaxlm.load`` and ``model.save``; this module imports no model.)

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

:func:`read_document` / :func:`write_document` are the io layer (a validated document ⇄ a
file); :mod:`jaxlm.models.registry` adds the one step that needs the estimator (building it
from the document, dispatched on its ``"estimator"`` field) and the one that reads a model.

Loading treats the file as untrusted data (:mod:`jaxlm.io.model_json` parses it under the
limits, :mod:`jaxlm.io.model_schema` has the schema, :mod:`jaxlm.io.model_checks` the numbers):
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
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.errors import InputError
from . import files
from . import glm_schema
from . import model_checks as checks
from . import model_json as mj
from . import model_schema as schema

__all__ = ["DEFAULT_LIMITS", "FORMAT", "FORMAT_VERSION", "ModelLimits", "atomic_write", "check_output_path",
           "read_document", "required_columns", "write_document"]

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


def write_document(path, doc: dict) -> Path:
    """Write a model document (as :func:`model_to_dict` makes it) to ``path`` atomically, as
    strict JSON (non-finite numbers as the strings "NaN", "Infinity", "-Infinity")."""
    text = json.dumps(_jsonable(doc), indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    p = check_output_path(path)
    atomic_write(p, lambda fh: fh.write(text.encode("utf-8")))
    return p


# --------------------------------------------------------------------------- load


def _checked(shown: str, raw: bytes, limits: mj.ModelLimits):
    """Parse and validate the whole document (nothing built, no numeric array expanded): a
    :class:`schema.Checked`, or a :class:`glm_schema.GLMChecked` for a GLM estimator's."""
    try:
        parsed = mj.parse(raw, limits)
        if isinstance(parsed.root, dict) and parsed.root.get("estimator") in glm_schema.GLM_ESTIMATORS:
            return glm_schema.check_glm_document(parsed, limits)
        return schema.check_document(parsed, limits)
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
    if isinstance(checked, glm_schema.GLMChecked):
        return _glm_document(shown, checked)
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


def _glm_document(shown: str, checked) -> dict:
    """:func:`read_document` of a GLM estimator's file (:mod:`jaxlm.io.glm_schema`): the keys of
    the file, ``state`` and ``factor`` as for a linear model, ``family`` / ``link`` as validated
    names (the objects under ``family_object`` / ``link_object``)."""
    try:
        doc = glm_schema.expand_glm(checked)
        del checked
        with np.errstate(all="ignore"):
            solved = checks.check_glm_numbers(doc)
        formula = _formula(doc.formula) if doc.formula is not None else None
    except mj.Invalid as e:
        raise mj.bad(shown, str(e)) from None
    f = solved.factor
    solution = dict(doc.solution, rank=f.rank, aliased=tuple(f.aliased), condition_number=float(f.cond),
                    scale=float(mj.NON_FINITE.get(doc.solution["scale"], doc.solution["scale"])))
    return {"format": FORMAT, "format_version": doc.version, "jaxlm_version": doc.jaxlm_version,
            "estimator": doc.estimator, "params": dict(doc.params), "family": dict(doc.family), "link": doc.link,
            "family_object": solved.family, "link_object": solved.link, "classes": doc.classes,
            "features": list(doc.features), "targets": list(doc.targets), "target_ndim": 1, "coef": doc.coef,
            "intercept": doc.intercept, "solution": solution, "state": solved.state, "factor": f, "formula": formula,
            **doc.columns, "statistics": doc.statistics, "metadata": doc.metadata, "path": shown}


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
    cols = list(doc.formula.get("inputs", doc.features)) if doc.formula is not None else list(doc.features)
    if isinstance(doc, glm_schema.GLMChecked):  # the offset and exposure of a GLM's predictions
        cols += [c for c in (doc.columns["offset"], doc.columns["exposure"]) if c and c not in cols]
    return cols


