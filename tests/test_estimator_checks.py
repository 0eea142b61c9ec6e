"""scikit-learn's own estimator checks, for every solver."""
from sklearn.utils.estimator_checks import parametrize_with_checks

from jaxlm import LinearRegression
from jaxlm.models.linear import EXPECTED_FAILED_CHECKS, SOLVERS


def _expected(est):
    return EXPECTED_FAILED_CHECKS.get(est.solver, {})


@parametrize_with_checks([LinearRegression(solver=s) for s in SOLVERS], expected_failed_checks=_expected)
def test_sklearn_contract(estimator, check):
    check(estimator)
