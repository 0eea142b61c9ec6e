"""scipy.sparse X: the same exact fit as the dense X (row blocks are densified, memory bounded by
a block), in fit, partial_fit, statistics and prediction; a OneHotEncoder pipeline works."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import statsmodels.api as sm

import jaxlm


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = sp.random(400, 12, density=0.15, random_state=1, format="csr") * 10
    y = X @ rng.normal(size=12) + 3 + rng.normal(size=400)
    return X, np.asarray(y).ravel()


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("solver", ["auto", "qr", "svd"])
def test_sparse_equals_dense(data, fmt, solver):
    X, y = data
    dense = jaxlm.LinearRegression(solver=solver).fit(X.toarray(), y)
    m = jaxlm.LinearRegression(solver=solver).fit(X.asformat(fmt), y)
    np.testing.assert_array_equal(m.coef_, dense.coef_)
    assert m.intercept_ == dense.intercept_
    np.testing.assert_allclose(m.predict(X.asformat(fmt)), dense.predict(X.toarray()), rtol=1e-13)


def test_sparse_statistics_equal_statsmodels(data):
    X, y = data
    m = jaxlm.LinearRegression(robust=True).fit(X, y)
    ref = sm.OLS(y, sm.add_constant(X.toarray())).fit()
    np.testing.assert_allclose(np.r_[m.intercept_, m.coef_], ref.params, rtol=1e-10)
    np.testing.assert_allclose(m.results_.std_errors, ref.bse, rtol=1e-10)
    np.testing.assert_allclose(m.results_.cov("HC3").diagonal() ** 0.5, ref.HC3_se, rtol=1e-9)
    iv = m.predict_interval(X[:5])
    frame = ref.get_prediction(sm.add_constant(X.toarray(), has_constant="add")[:5]).summary_frame()
    np.testing.assert_allclose(iv.upper, frame["mean_ci_upper"], rtol=1e-10)


def test_sparse_partial_fit_and_weights(data):
    X, y = data
    w = np.random.default_rng(2).uniform(0.5, 2, X.shape[0])
    full = jaxlm.LinearRegression().fit(X.toarray(), y, sample_weight=w)
    p = jaxlm.LinearRegression()
    for i in range(0, X.shape[0], 90):
        p.partial_fit(X[i:i + 90], y[i:i + 90], sample_weight=w[i:i + 90])
    np.testing.assert_allclose(p.coef_, full.coef_, rtol=1e-13)


def test_sparse_nan_is_located(data):
    X, y = data
    bad = X.copy()
    bad.data[5] = np.nan
    row = int(bad.tocoo().row[np.flatnonzero(np.isnan(bad.tocoo().data))[0]])
    with pytest.raises(jaxlm.InputError, match=f"first at row {row}"):
        jaxlm.LinearRegression().fit(bad, y)


def test_one_hot_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"g": rng.choice(list("abcdefghij"), 300), "x": rng.normal(size=300)})
    y = df["x"] * 2 + df["g"].map({c: i for i, c in enumerate("abcdefghij")}) + rng.normal(size=300)
    ct = ColumnTransformer([("g", OneHotEncoder(drop="first"), ["g"])], remainder="passthrough", sparse_threshold=1.0)
    pipe = make_pipeline(ct, jaxlm.LinearRegression()).fit(df, y)
    assert sp.issparse(ct.transform(df))
    ref = make_pipeline(ColumnTransformer([("g", OneHotEncoder(drop="first", sparse_output=False), ["g"])],
                                          remainder="passthrough"), jaxlm.LinearRegression()).fit(df, y)
    np.testing.assert_allclose(pipe.predict(df), ref.predict(df), rtol=1e-12)
