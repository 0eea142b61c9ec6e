"""Models ⇄ model files: each model writes itself to a plain document and is rebuilt from one.

``jaxlm.load(path)`` reads and validates the document in the io layer
(:func:`jaxlm.io.model_file.read_document`: bounded parsing, the schema, the numbers checked
against each other, the formula through the closed grammar) and then builds the model class
that :data:`MODELS` names for the document's ``"estimator"`` field. ``model.save(path)``
writes :func:`model_to_dict` through :func:`jaxlm.io.model_file.write_document`.

A new model family registers its class here (``MODELS["GLM"] = ...``) with a
``_from_document`` step; the io layer does not change.
"""
from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import NamedTuple

from ..io import model_json as mj
from ..io.glm_schema import GLM_ESTIMATORS
from ..io.model_file import read_document, required_columns, write_document  # noqa: F401
from . import glm_doc, linear_doc
from .linear_doc import model_to_dict

__all__ = ["MODELS", "PREDICTORS", "ModelFile", "load", "load_model", "model_to_dict", "read_model_file",
           "read_predictor", "required_columns", "save_model"]


#: the document's "estimator" -> (where its class lives, "module:Class", imported when a model is
#: built; the step that builds a fitted model from a validated document)
MODELS = {"LinearRegression": ("jaxlm.models.linear:LinearRegression", linear_doc.model_from_document),
          **{name: (f"jaxlm.models.glm:{name}", glm_doc.model_from_document) for name in GLM_ESTIMATORS}}


def _glm_predictor(doc):
    """A GLM's predictor is its estimator (predict, predict_interval; scikit-learn is imported)."""
    where, build = MODELS[doc["estimator"]]
    return build(_class(where), doc)


#: the document's "estimator" -> the step that builds a predictor (predictions and intervals, no
#: estimator: no scikit-learn) from a validated document; ``jaxlm predict`` uses it
PREDICTORS = {"LinearRegression": linear_doc.predictor_from_document, **{name: _glm_predictor for name in GLM_ESTIMATORS}}


def _class(where):
    if not isinstance(where, str):
        return where
    module, _, name = where.partition(":")
    return getattr(import_module(module), name)


def save_model(model, path, *, formula=None, statistics=None, weights: str | None = None,
               metadata: dict | None = None) -> Path:
    """Write a fitted :class:`jaxlm.LinearRegression` (or GLM estimator: :func:`jaxlm.models.glm_doc.model_to_dict`)
    to ``path`` as a JSON model file (atomically).

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
    to_dict = glm_doc.model_to_dict if hasattr(model, "family_") else model_to_dict
    return write_document(path, to_dict(model, formula=formula, statistics=statistics, weights=weights,
                                        metadata=metadata))


class ModelFile(NamedTuple):
    """A loaded model file: the model, its formula (or None), the stored statistics (data,
    as written; the model's own ``results_`` are recomputed from its state) and the
    validated document (:func:`read_document`)."""

    model: object
    formula: object
    statistics: object
    document: dict


def read_model_file(path, *, limits=None) -> ModelFile:
    """Read and validate a model file, then build its model; see :func:`load_model`."""
    doc = read_document(path, limits=limits)
    try:
        kind = doc.get("estimator", "LinearRegression")
        if kind not in MODELS:
            raise mj.Invalid(f"'estimator' must be one of {sorted(MODELS)}; got {kind!r}")
        where, build = MODELS[kind]
        model = build(_class(where), doc)
    except mj.Invalid as e:
        raise mj.bad(doc["path"], str(e)) from None
    return ModelFile(model, doc["formula"], doc["statistics"], doc)


def read_predictor(path, *, limits=None) -> ModelFile:
    """:func:`read_model_file` with a predictor for its model (:class:`jaxlm.models.linear_doc.LinearPredictor`:
    ``predict``, ``predict_interval``, the fitted attributes) instead of the estimator: the same
    validation, the same predictions, without importing scikit-learn (or JAX)."""
    doc = read_document(path, limits=limits)
    try:
        kind = doc.get("estimator", "LinearRegression")
        if kind not in PREDICTORS:
            raise mj.Invalid(f"'estimator' must be one of {sorted(PREDICTORS)}; got {kind!r}")
        model = PREDICTORS[kind](doc)
    except mj.Invalid as e:
        raise mj.bad(doc["path"], str(e)) from None
    return ModelFile(model, doc["formula"], doc["statistics"], doc)


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
