"""Bytes in and out, knowing no model: tables, formulas, model-file documents, atomic writes.

``open_table(data)``   a :class:`~jaxlm.io.values.Source` over a file, directory, glob or DataFrame
                       (:mod:`.sources`, CSV in :mod:`.csvsource`)
``select_columns``,    blocks → float64 ``(X, Y, w)`` for a list of columns (:mod:`.design`)
``numeric_design``
``FormulaSpec``        a formula with its factor levels, JSON-serialisable (:mod:`.formula`), behind
                       the closed grammar of :mod:`.grammar`
``read_document``,     model files as plain, validated dicts (:mod:`.modelfile`)
``write_document``

Import direction: modules of this package import :mod:`jaxlm.core` and each other only; they
never import a model, the estimator or the CLI (``tests/test_architecture.py`` proves it).
Fitting and predicting tables live in :mod:`jaxlm.models` (``jaxlm.fit_table``, ``jaxlm.load``).

Compatibility: the names that lived here before the models moved out (``fit_table``,
``stream_fit``, ``predict_table``, ``StreamFit``, ``Sample``, ``save_model``, ``load_model``,
``read_model_file``, ``model_to_dict``) are still reachable as ``jaxlm.io.<name>``: they are
looked up by name in :mod:`jaxlm.models` on first use. New code should use ``jaxlm.fit_table``,
``jaxlm.load`` and ``model.save``.
"""
from importlib import import_module

_LAZY = {
    "Source": "jaxlm.io.values",
    "open_table": "jaxlm.io.sources",
    "select_columns": "jaxlm.io.design",
    "numeric_design": "jaxlm.io.design",
    "FormulaSpec": "jaxlm.io.formula",
    "check_formula": "jaxlm.io.grammar",
    "read_document": "jaxlm.io.model_file",
    "write_document": "jaxlm.io.model_file",
    "FORMAT_VERSION": "jaxlm.io.model_file",
}
#: compatibility aliases (see the module docstring): name -> module of jaxlm.models
_MOVED = {
    "StreamFit": "jaxlm.models.tables",
    "Sample": "jaxlm.models.tables",
    "fit_table": "jaxlm.models.tables",
    "stream_fit": "jaxlm.models.tables",
    "predict_table": "jaxlm.models.predict",
    "save_model": "jaxlm.models.registry",
    "load_model": "jaxlm.models.registry",
    "read_model_file": "jaxlm.models.registry",
    "model_to_dict": "jaxlm.models.registry",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    where = _LAZY.get(name) or _MOVED.get(name)
    if where is not None:
        value = getattr(import_module(where), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaxlm.io' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
