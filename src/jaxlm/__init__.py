"""jaxlm: exact, fast linear regression on JAX."""
# Public names are loaded on first use (PEP 562), so that ``import jaxlm`` stays cheap:
# scikit-learn alone takes about a second to import and only the estimator needs it. Even
# ``__version__`` is looked up when first asked for (importlib.metadata: ~10 ms a process).
from importlib import import_module

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
    "GLM": "jaxlm.models.glm",
    "LogisticRegression": "jaxlm.models.glm",
    "PoissonRegressor": "jaxlm.models.glm",
    "GammaRegressor": "jaxlm.models.glm",
    "TweedieRegressor": "jaxlm.models.glm",
    "SeparationWarning": "jaxlm.core.irls",
    "anova": "jaxlm.models.compare",
    "table": "jaxlm.models.compare",
}

__all__ = ["__version__", *_LAZY]


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jaxlm")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0+unknown"


def __getattr__(name):
    if name == "__version__":
        value = globals()["__version__"] = _package_version()
        return value
    if name in _LAZY:
        module = import_module(_LAZY[name])
        value = module if module.__name__.endswith(name) else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaxlm' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
