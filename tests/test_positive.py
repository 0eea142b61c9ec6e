"""positive=True: non-negative least squares, against scipy's NNLS on the design itself, its
optimality (KKT) conditions, and scikit-learn's LinearRegression(positive=True)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import nnls
from sklearn.linear_model import LinearRegression as SkLinearRegression

import jaxlm


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)) + [0, 0, 5, 0, 0, 100]
    y = X @ [1.0, -2.0, 0.5, -0.1, 3.0, 0.0] + rng.normal(size=300) + 4
    return X, y, rng.uniform(0.2, 2.0, 300)


def _nnls_reference(X, y, w, fit_intercept=True):
    """scipy NNLS on the weighted, centred design (the intercept free): an independent solve."""
    sw = np.sqrt(w)
    if fit_intercept:
        mx, my = w @ X / w.sum(), w @ y / w.sum()
        coef, _ = nnls(sw[:, None] * (X - mx), sw * (y - my))
        return coef, my - mx @ coef
    coef, _ = nnls(sw[:, None] * X, sw * y)
    return coef, 0.0


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_equals_scipy_nnls_and_kkt(data, fit_intercept):
    X, y, w = data
    m = jaxlm.LinearRegression(positive=True, fit_intercept=fit_intercept).fit(X, y, sample_weight=w)
    coef, b0 = _nnls_reference(X, y, w, fit_intercept)
    np.testing.assert_allclose(m.coef_, coef, rtol=1e-9, atol=1e-12)
    assert m.intercept_ == pytest.approx(b0, rel=1e-9)
    assert np.all(m.coef_ >= 0) and np.any(m.coef_ == 0)
    # KKT: the gradient of the loss is zero on the positive coefficients and ≥ 0 on the zeros
    grad = -2 * X.T @ (w * (y - m.predict(X)))
    scale = np.abs(X.T @ (w * y)).max()
    assert np.all(np.abs(grad[m.coef_ > 0]) <= 1e-9 * scale)
    assert np.all(grad[m.coef_ == 0] >= -1e-9 * scale)


def test_equals_sklearn_multi_target_and_sparse(data):
    X, y, w = data
    Y = np.c_[y, -y, 2 * y]
    m = jaxlm.LinearRegression(positive=True).fit(X, Y, sample_weight=w)
    ref = SkLinearRegression(positive=True).fit(X, Y, sample_weight=w)
    np.testing.assert_allclose(m.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(m.intercept_, ref.intercept_, rtol=1e-8)
    s = jaxlm.LinearRegression(positive=True).fit(sp.csr_matrix(X), Y, sample_weight=w)
    np.testing.assert_array_equal(s.coef_, m.coef_)


def test_partial_fit_and_ridge(data):
    X, y, _ = data
    full = jaxlm.LinearRegression(positive=True).fit(X, y)
    p = jaxlm.LinearRegression(positive=True)
    for i in range(0, 300, 100):
        p.partial_fit(X[i:i + 100], y[i:i + 100])
    np.testing.assert_allclose(p.coef_, full.coef_, rtol=1e-10, atol=1e-13)
    # ridge + positive: NNLS of the design augmented with sqrt(alpha)·I rows
    alpha = 50.0
    r = jaxlm.LinearRegression(positive=True, alpha=alpha).fit(X, y)
    mx, my = X.mean(axis=0), y.mean()
    A = np.vstack([X - mx, np.sqrt(alpha) * np.eye(6)])
    coef, _ = nnls(A, np.r_[y - my, np.zeros(6)])
    np.testing.assert_allclose(r.coef_, coef, rtol=1e-9, atol=1e-12)


def test_gradient_solver_refused():
    with pytest.raises(jaxlm.InputError, match="positive=True needs an exact solver"):
        jaxlm.LinearRegression(positive=True, solver="gd").fit(np.eye(3), np.ones(3))


def test_model_file_round_trip_checks_the_constrained_optimum(data, tmp_path):
    import json

    X, y, _ = data
    m = jaxlm.LinearRegression(positive=True).fit(X, y)
    m.save(tmp_path / "m.json")
    loaded = jaxlm.load(tmp_path / "m.json")
    assert loaded.positive and np.array_equal(loaded.coef_, m.coef_)
    doc = json.loads((tmp_path / "m.json").read_text())
    zero = int(np.flatnonzero(m.coef_ == 0)[0])
    doc["coef"][0][zero] = 0.01  # off the optimum: a zero coefficient moved inwards
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(jaxlm.InputError, match="normal equations"):
        jaxlm.load(tmp_path / "bad.json")
    doc["coef"][0][zero] = -1e-3
    (tmp_path / "neg.json").write_text(json.dumps(doc))
    with pytest.raises(jaxlm.InputError, match=">= 0"):
        jaxlm.load(tmp_path / "neg.json")


def test_no_refinement_pass_whose_result_is_discarded(data, tmp_path, monkeypatch):
    """The non-negative solution is read off the state (``refinement_steps`` 0): the exact fit's
    refinement pass would be thrown away, so neither the estimator, a streamed file nor Dask takes it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jaxlm.core import exact

    X, y, w = data

    def no_gradient(*args, **kwargs):
        raise AssertionError("a refinement pass was run for positive=True")

    monkeypatch.setattr(exact, "gradient_reduction", no_gradient)
    m = jaxlm.LinearRegression(positive=True).fit(X, y, sample_weight=w)
    coef, _ = _nnls_reference(X, y, w)
    np.testing.assert_allclose(m.coef_, coef, rtol=1e-9, atol=1e-12)
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({**{f"x{j}": X[:, j] for j in range(X.shape[1])}, "y": y, "w": w}), path)
    f = jaxlm.fit_table(str(path), target="y", weights="w", positive=True)
    np.testing.assert_allclose(f.coef_, coef, rtol=1e-9, atol=1e-12)
    da = pytest.importorskip("dask.array")
    Xd, yd, wd = da.from_array(X, chunks=(100, X.shape[1])), da.from_array(y, chunks=100), da.from_array(w, chunks=100)
    d = jaxlm.LinearRegression(positive=True).fit(Xd, yd, sample_weight=wd)
    np.testing.assert_allclose(d.coef_, coef, rtol=1e-9, atol=1e-12)
