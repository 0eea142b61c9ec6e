"""jaxlm: exact, fast linear regression on JAX."""
# Public names are loaded on first use (PEP 562), so that ``import jaxlm`` stays cheap:
# scikit-learn alone takes about two seconds to import and only the estimator needs it.
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("jaxlm")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

_LAZY = {
    "ConvergenceWarning": "jaxlm.models.linear",
    "LinearRegression": "jaxlm.models.linear",
    "InputError": "jaxlm.core.errors",
    "RankWarning": "jaxlm.core.errors",
    "fit_gradient": "jaxlm.core.gradient",
    "simple_ols": "jaxlm.core.closed_form",
    "datasets": "jaxlm.datasets",
    "io": "jaxlm.io",
    "load": "jaxlm.models.registry",
    "fit_table": "jaxlm.models.tables",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        module = import_module(_LAZY[name])
        value = module if module.__name__.endswith(name) else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaxlm' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
