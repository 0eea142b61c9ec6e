"""jaxlm.LinearRegression against independent references (sklearn, numpy, mpmath)."""

import mpmath
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression as SkLR, Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.base import clone

from jaxlm import InputError, LinearRegression, RankWarning
from jaxlm.datasets import make_linear


def exact_lstsq(X, y, intercept=True, dps=60):
    """Least squares in 60-digit arithmetic (normal equations, mpmath): the exact answer."""
    mpmath.mp.dps = dps
    A = [[mpmath.mpf(1)] * intercept + [mpmath.mpf(float(v)) for v in row] for row in X]
    A = mpmath.matrix(A)
    b = mpmath.matrix([mpmath.mpf(float(v)) for v in y])
    sol = mpmath.lu_solve(A.T * A, A.T * b)
    return np.array([float(v) for v in sol])


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.maximum(np.abs(b), 1e-300))


@pytest.mark.parametrize("solver", ["auto", "cholesky", "qr", "svd"])
def test_matches_sklearn_and_shapes(solver):
    X, Y, coef, b = make_linear(200, 5, 3, seed=3)
    ours = LinearRegression(solver=solver).fit(X, Y)
    sk = SkLR().fit(X, Y)
    assert ours.coef_.shape == (3, 5) and ours.intercept_.shape == (3,)
    assert rel(ours.coef_, sk.coef_) < 1e-10
    assert rel(ours.intercept_, sk.intercept_) < 1e-10
    one = LinearRegression(solver=solver).fit(X, Y[:, 0])
    assert one.coef_.shape == (5,) and isinstance(one.intercept_, float)
    assert one.predict(X).shape == (200,)
    assert one.n_iter_ == 1 and one.rank_ == 5 and one.dtype_ == "float64"
    assert ours.solver_ in {"cholesky", "qr", "svd"}


def test_large_offset_is_exact():
    """x ≈ 1e9 + O(1): numpy.polyfit fails here (numpy#5702); we match 60-digit arithmetic."""
    rng = np.random.default_rng(0)
    x = 4e9 + rng.uniform(0, 3, 60)
    y = 2.5 * (x - 4e9) + 7 + rng.normal(0, 0.1, 60)
    ref = exact_lstsq(x[:, None], y)
    m = LinearRegression().fit(x[:, None], y)
    assert abs(m.coef_[0] - ref[1]) / abs(ref[1]) < 1e-12
    assert abs(m.intercept_ - ref[0]) / abs(ref[0]) < 1e-12


def test_columns_scaled_1e8_apart():
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.normal(size=80) * 1e-8, rng.normal(size=80) * 1e8, rng.normal(size=80)])
    y = X @ np.array([3e8, 2e-8, 1.0]) + rng.normal(size=80)
    ref = exact_lstsq(X, y)
    m = LinearRegression().fit(X, y)
    assert rel(m.coef_, ref[1:]) < 1e-12
    assert abs(m.intercept_ - ref[0]) < 1e-12 * np.abs(y).max()


def test_float32_input_large_n():
    """float32 X with n > 500,000 (sklearn#33032): we accumulate in float64."""
    rng = np.random.default_rng(2)
    n = 600_000
    X = (rng.normal(size=(n, 3)) + 100).astype(np.float32)
    y = (X.astype(np.float64) @ np.array([1.5, -2.0, 0.5]) + 3 + rng.normal(size=n)).astype(np.float32)
    X64, y64 = X.astype(np.float64), y.astype(np.float64)
    A = np.column_stack([np.ones(n), X64 - X64.mean(0)])
    ref = np.linalg.lstsq(A, y64 - y64.mean(), rcond=None)[0]
    m = LinearRegression().fit(X, y)
    assert rel(m.coef_, ref[1:]) < 1e-9


def test_ridge_matches_sklearn():
    X, Y, _, _ = make_linear(150, 8, 2, seed=4)
    w = np.random.default_rng(4).uniform(0.5, 2, 150)
    for alpha in [0.1, 10.0, 1e3]:
        ours = LinearRegression(alpha=alpha).fit(X, Y, sample_weight=w)
        sk = Ridge(alpha=alpha, solver="cholesky", tol=1e-14).fit(X, Y, sample_weight=w)
        assert rel(ours.coef_, sk.coef_) < 1e-10
        assert rel(ours.intercept_, sk.intercept_) < 1e-10
        noint = LinearRegression(alpha=alpha, fit_intercept=False).fit(X, Y)
        sk0 = Ridge(alpha=alpha, fit_intercept=False, solver="cholesky").fit(X, Y)
        assert rel(noint.coef_, sk0.coef_) < 1e-10


@pytest.mark.parametrize("solver", ["auto", "qr", "gd", "lbfgs"])
def test_frequency_weights_equal_repeated_rows(solver):
    X, Y, _, _ = make_linear(40, 3, 1, seed=5)
    k = np.random.default_rng(5).integers(0, 4, 40)
    k[0] = 2
    wfit = LinearRegression(solver=solver).fit(X, Y[:, 0], sample_weight=k)
    rep = LinearRegression(solver=solver).fit(np.repeat(X, k, axis=0), np.repeat(Y[:, 0], k))
    tol = 1e-12 if solver in ("auto", "qr") else 1e-8
    assert rel(wfit.coef_, rep.coef_) < tol
    assert abs(wfit.intercept_ - rep.intercept_) < tol * abs(rep.intercept_)


def test_rank_deficient_min_norm_and_named_columns():
    import pandas as pd
    rng = np.random.default_rng(6)
    a = rng.normal(size=50)
    df = pd.DataFrame({"a": a, "b": rng.normal(size=50), "a2": 2 * a})
    y = 3 * a + df["b"].to_numpy() + rng.normal(size=50)
    with pytest.warns(RankWarning, match=r"rank 2 < 3.*a, a2"):
        m = LinearRegression().fit(df, y)
    assert m.rank_ == 2
    # minimum-norm solution of the centred problem, as numpy's lstsq gives it
    Xc = df.to_numpy() - df.to_numpy().mean(0)
    ref = np.linalg.lstsq(Xc, y - y.mean(), rcond=None)[0]
    assert rel(m.coef_, ref) < 1e-8
    assert np.all(np.abs(m.coef_) < 10)  # no ±3e11 garbage (sklearn#9073)


def test_fewer_rows_than_parameters():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(4, 6))
    y = rng.normal(size=4)
    with pytest.warns(RankWarning, match="rank 3 < 6"):
        m = LinearRegression().fit(X, y)
    assert m.rank_ == 3
    np.testing.assert_allclose(m.predict(X), y, atol=1e-10)  # interpolates
    Xc = X - X.mean(0)
    np.testing.assert_allclose(m.coef_, np.linalg.pinv(Xc) @ (y - y.mean()), rtol=1e-8, atol=1e-12)


def test_sklearn_meta_estimators():
    X, Y, _, _ = make_linear(120, 4, 1, seed=8)
    y = Y[:, 0]
    pipe = make_pipeline(StandardScaler(), LinearRegression())
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.5
    gs = GridSearchCV(LinearRegression(), {"alpha": [0.0, 1.0], "solver": ["auto", "gd"]}, cv=3).fit(X, y)
    assert gs.best_params_["alpha"] in (0.0, 1.0)
    c = clone(LinearRegression(solver="qr", alpha=2.0))
    assert c.get_params()["solver"] == "qr" and not hasattr(c, "coef_")


def test_feature_names_and_score():
    import pandas as pd
    X, Y, _, _ = make_linear(60, 2, 1, seed=9)
    df = pd.DataFrame(X, columns=["celsius", "other"])
    m = LinearRegression().fit(df, Y[:, 0])
    assert list(m.feature_names_in_) == ["celsius", "other"] and m.n_features_in_ == 2
    assert m.score(df, Y[:, 0]) == pytest.approx(SkLR().fit(X, Y[:, 0]).score(X, Y[:, 0]), rel=1e-12)


BAD_FITS = [
    ("X", dict(X=np.array([[1.0, np.nan], [2, 3], [3, 4]]), y=np.ones(3)), r"X contains NaN in column\(s\) 1 \(1 row"),
    ("X", dict(X=np.array([[1.0, np.inf], [2, 3], [3, 4]]), y=np.ones(3)), r"X contains inf"),
    ("y", dict(X=np.ones((3, 1)), y=np.array([1.0, np.nan, 2])), r"y contains NaN"),
    ("len", dict(X=np.ones((3, 1)), y=np.ones(4)), r"inconsistent numbers of samples"),
    ("n0", dict(X=np.ones((0, 2)), y=np.ones(0)), r"0 sample"),
    ("d0", dict(X=np.ones((3, 0)), y=np.ones(3)), r"0 feature"),
    ("complex", dict(X=np.ones((3, 1)) * 1j, y=np.ones(3)), r"Complex data not supported"),
    ("string", dict(X=np.array([["a"], ["b"]], dtype=object), y=np.ones(2)), r"could not convert|numeric"),
    ("3d", dict(X=np.ones((3, 2, 2)), y=np.ones(3)), r"dim 3"),
]


@pytest.mark.parametrize("case,args,match", BAD_FITS, ids=[c[0] for c in BAD_FITS])
def test_bad_data(case, args, match):
    with pytest.raises(ValueError, match=match):
        LinearRegression().fit(args["X"], args["y"])


BAD_WEIGHTS = [
    (np.array([1.0, -1.0, 1.0]), r"sample_weight must be >= 0; got negative weights at rows \[1\]"),
    (np.array([1.0, np.nan, 1.0]), r"sample_weight must be finite"),
    (np.ones(4), r"sample_weight must have one entry per row of X \(3\); got shape 4"),
    (np.zeros(3), r"at least one positive entry; got all zeros"),
]


@pytest.mark.parametrize("w,match", BAD_WEIGHTS)
def test_bad_sample_weight(w, match):
    with pytest.raises(InputError, match=match):
        LinearRegression().fit(np.arange(3.0)[:, None], np.arange(3.0), sample_weight=w)


BAD_PARAMS = [
    (dict(alpha=-1.0), r"alpha must be a finite number >= 0; got alpha=-1.0"),
    (dict(solver="newton"), r"solver must be one of 'auto', 'cholesky', 'qr', 'svd', 'gd', 'lbfgs', 'adam'; got solver='newton'"),
    (dict(max_iter=0), r"max_iter must be a positive integer; got max_iter=0"),
    (dict(tol=0.0), r"tol must be a finite number > 0; got tol=0.0"),
    (dict(tol=-1e-3), r"tol must be a finite number > 0"),
    (dict(dtype="float16"), r"dtype must be one of 'float64', 'float32'; got dtype='float16'"),
]


@pytest.mark.parametrize("params,match", BAD_PARAMS)
def test_bad_params(params, match):
    with pytest.raises(InputError, match=match):
        LinearRegression(**params).fit(np.arange(5.0)[:, None], np.arange(5.0))


def test_predict_checks_features():
    m = LinearRegression().fit(np.arange(10.0).reshape(5, 2), np.arange(5.0))
    with pytest.raises(ValueError, match="X contains NaN"):
        m.predict(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="features"):
        m.predict(np.ones((2, 3)))


@pytest.mark.parametrize("solver", ["auto", "qr"])
def test_partial_fit_equals_fit(solver):
    X, Y, _, _ = make_linear(1000, 6, 2, seed=21)
    w = np.random.default_rng(21).uniform(0.1, 3, 1000)
    one = LinearRegression(solver=solver).fit(X, Y, sample_weight=w)
    inc = LinearRegression(solver=solver)
    for part in np.array_split(np.arange(1000), 7):
        inc.partial_fit(X[part], Y[part], sample_weight=w[part])
    assert rel(inc.coef_, one.coef_) < 1e-12
    assert rel(inc.intercept_, one.intercept_) < 1e-12
    assert not hasattr(LinearRegression(solver="gd"), "partial_fit")  # exact solvers only
