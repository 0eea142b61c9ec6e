"""scikit-learn's dtype contract (its ``test_dtype_match``): a fit that runs in float32 returns
float32 coefficients and predictions; float64 stays float64."""
import numpy as np
import pytest

import jaxlm


@pytest.mark.parametrize("solver", ["auto", "cholesky", "qr", "svd", "gd", "lbfgs"])
def test_float32_fit_returns_float32(solver):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = (X @ np.array([1.0, 2.0, 3.0], np.float32) + 0.5).astype(np.float32)
    m32 = jaxlm.LinearRegression(dtype="float32", solver=solver).fit(X, y)
    m64 = jaxlm.LinearRegression(solver=solver).fit(X.astype(np.float64), y.astype(np.float64))
    assert m32.coef_.dtype == np.float32 and isinstance(m32.intercept_, np.float32)
    assert m32.predict(X).dtype == np.float32
    assert m64.coef_.dtype == np.float64 and m64.predict(X).dtype == np.float64
    # the same fit, to float32 accuracy
    np.testing.assert_allclose(m32.coef_, m64.coef_, rtol=1e-4)
    two = jaxlm.LinearRegression(dtype="float32", solver=solver).fit(X, np.c_[y, 2 * y])
    assert two.coef_.dtype == np.float32 and two.intercept_.dtype == np.float32
