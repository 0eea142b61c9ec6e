"""jaxlm: exact, fast linear regression on JAX."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("jaxlm")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from .core.errors import InputError, RankWarning
from .estimator import ConvergenceWarning, LinearRegression
from .core.gradient import fit_gradient
from .core.closed_form import simple_ols
from . import datasets

__all__ = [
    "__version__",
    "ConvergenceWarning",
    "InputError",
    "LinearRegression",
    "RankWarning",
    "datasets",
    "fit_gradient",
    "simple_ols",
]
