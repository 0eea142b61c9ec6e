"""Models: estimators with the scikit-learn contract, built on the reductions and drivers.

:mod:`.linear`    ``LinearRegression`` (exact and gradient solvers, statistics)
:mod:`.tables`    fitting a table streamed from a file or DataFrame (``jaxlm.fit_table``)
:mod:`.predict`   predictions for the rows of a table (``jaxlm.io.predict_table``)
:mod:`.registry`  model files: each model writes itself to a plain dict and reads itself back;
                  ``jaxlm.load`` dispatches on the file's ``"estimator"`` through a registry

Names load on first use (scikit-learn takes about a second to import).
"""
from importlib import import_module

_LAZY = {
    "LinearRegression": "jaxlm.models.linear",
    "ConvergenceWarning": "jaxlm.models.linear",
    "fit_table": "jaxlm.models.tables",
    "stream_fit": "jaxlm.models.tables",
    "predict_table": "jaxlm.models.predict",
    "load": "jaxlm.models.registry",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaxlm.models' has no attribute {name!r}")
