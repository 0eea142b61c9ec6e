"""scikit-learn's own ``LinearRegression`` and ``Ridge`` tests, run against jaxlm.

Adapted copies of tests from scikit-learn 1.9's ``linear_model/tests/test_base.py`` and
``test_ridge.py`` (BSD-3-Clause, the scikit-learn developers): the bodies are theirs with the
estimator swapped for ``jaxlm.LinearRegression`` (``Ridge(alpha=a)`` is
``jaxlm.LinearRegression(alpha=a)``: :func:`Ridge` below), their reference values and tolerances
unchanged. Where a test is parametrised over scikit-learn's solver names it runs over jaxlm's
exact solvers instead. Every other adaptation is marked ``ADAPTED:`` with its reason. Tests of
scikit-learn's private helpers, solver names, RidgeCV/RidgeClassifier, ``_preprocess_data`` and
the array API are out of scope (listed in the lead's notes).
"""
import numpy as np
import pytest
from scipy import linalg, sparse
from sklearn import datasets
from sklearn.datasets import make_low_rank_matrix, make_regression, make_sparse_uncorrelated
from sklearn.linear_model import Ridge as SkRidge
from sklearn.preprocessing import add_dummy_feature, minmax_scale
from sklearn.utils._testing import assert_allclose, assert_almost_equal, assert_array_almost_equal
from sklearn.utils.fixes import COO_CONTAINERS, CSC_CONTAINERS, CSR_CONTAINERS, DOK_CONTAINERS, LIL_CONTAINERS

import jaxlm
from jaxlm import LinearRegression

pytestmark = [pytest.mark.filterwarnings("ignore::jaxlm.core.errors.RankWarning"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

#: jaxlm's exact solvers, in place of scikit-learn's SOLVERS
SOLVERS = ["auto", "cholesky", "qr", "svd"]

diabetes = datasets.load_diabetes()
X_diabetes, y_diabetes = diabetes.data, diabetes.target
ind = np.arange(X_diabetes.shape[0])
rng = np.random.RandomState(0)
rng.shuffle(ind)
ind = ind[:200]
X_diabetes, y_diabetes = X_diabetes[ind], y_diabetes[ind]


def Ridge(alpha=1.0, *, solver="auto", fit_intercept=True, positive=False, tol=None, max_iter=None,
          random_state=None, dtype="float64"):
    """scikit-learn's ``Ridge`` (default alpha=1) as jaxlm: ``LinearRegression(alpha=...)``
    (``tol``, ``max_iter`` and ``random_state`` concern iterative solvers: exact ones ignore them)."""
    return jaxlm.LinearRegression(alpha=alpha, solver=solver, fit_intercept=fit_intercept, positive=positive,
                                  dtype=dtype)


@pytest.fixture(params=[0, 42])
def global_random_seed(request):
    """scikit-learn's fixture (its default seed is 42), over two seeds."""
    return request.param


# ------------------------------------------------------------------------------ test_base.py


def test_linear_regression():
    X = [[1], [2]]
    Y = [1, 2]
    reg = LinearRegression()
    reg.fit(X, Y)
    assert_array_almost_equal(reg.coef_, [1])
    assert_array_almost_equal(reg.intercept_, [0])
    assert_array_almost_equal(reg.predict(X), [1, 2])
    X = [[1]]
    Y = [0]
    reg = LinearRegression()
    reg.fit(X, Y)
    assert_array_almost_equal(reg.coef_, [0])
    assert_array_almost_equal(reg.intercept_, [0])
    assert_array_almost_equal(reg.predict(X), [0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_regression_vs_lstsq(dtype):
    rng = np.random.RandomState(1137)
    n_samples = 500_000
    x1 = rng.rand(n_samples)
    x2 = 0.3 * x1 + 0.1 * rng.rand(n_samples)
    X = np.column_stack([x1, x2])
    y = X @ [0.5, 2.0] + 0.1 * rng.rand(n_samples)
    X = X.astype(dtype)
    y = y.astype(dtype)
    coef_scipy = linalg.lstsq(X, y)[0]
    coef_sklearn = LinearRegression(fit_intercept=False).fit(X, y).coef_
    rmse_scipy = np.linalg.norm(y - X @ coef_scipy)
    rmse_sklearn = np.linalg.norm(y - X @ coef_sklearn)
    assert rmse_sklearn == pytest.approx(rmse_scipy, rel=1e-6)


@pytest.mark.parametrize("sparse_container", [None] + CSR_CONTAINERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_regression_sample_weights(sparse_container, fit_intercept, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    n_samples, n_features = 6, 5
    X = rng.normal(size=(n_samples, n_features))
    if sparse_container is not None:
        X = sparse_container(X)
    y = rng.normal(size=n_samples)
    sample_weight = 1.0 + rng.uniform(size=n_samples)
    reg = LinearRegression(fit_intercept=fit_intercept, tol=1e-16)
    reg.fit(X, y, sample_weight=sample_weight)
    coefs1 = reg.coef_
    inter1 = reg.intercept_
    assert reg.coef_.shape == (X.shape[1],)
    W = np.diag(sample_weight)
    X_aug = X if not fit_intercept else add_dummy_feature(X)
    Xw = X_aug.T @ W @ X_aug
    yw = X_aug.T @ W @ y
    coefs2 = linalg.solve(Xw, yw)
    if not fit_intercept:
        assert_allclose(coefs1, coefs2)
    else:
        assert_allclose(coefs1, coefs2[1:])
        assert_allclose(inter1, coefs2[0])


def test_positive_and_sparse_is_supported():
    # ADAPTED from test_raises_value_error_if_positive_and_sparse: scikit-learn refuses sparse X
    # with positive=True; jaxlm reads the non-negative solution off the state, so sparse X gives
    # the dense answer instead of a TypeError.
    X = sparse.eye_array(10).tocsr()
    y = np.ones(10)
    reg = LinearRegression(positive=True).fit(X, y)
    dense = LinearRegression(positive=True).fit(X.toarray(), y)
    assert_allclose(reg.coef_, dense.coef_)
    assert np.all(reg.coef_ >= 0)


@pytest.mark.parametrize("n_samples, n_features", [(2, 3), (3, 2)])
def test_raises_value_error_if_sample_weights_greater_than_1d(n_samples, n_features):
    rng = np.random.RandomState(0)
    X = rng.randn(n_samples, n_features)
    y = rng.randn(n_samples)
    sample_weights_OK = rng.randn(n_samples) ** 2 + 1
    reg = LinearRegression()
    reg.fit(X, y, sample_weights_OK)
    reg.fit(X, y, 1.0)
    reg.fit(X, y, 2.0)


def test_fit_intercept():
    X2 = np.array([[0.38349978, 0.61650022], [0.58853682, 0.41146318]])
    X3 = np.array([[0.27677969, 0.70693172, 0.01628859], [0.08385139, 0.20692515, 0.70922346]])
    y = np.array([1, 1])
    lr2_without_intercept = LinearRegression(fit_intercept=False).fit(X2, y)
    lr2_with_intercept = LinearRegression().fit(X2, y)
    lr3_without_intercept = LinearRegression(fit_intercept=False).fit(X3, y)
    lr3_with_intercept = LinearRegression().fit(X3, y)
    assert lr2_with_intercept.coef_.shape == lr2_without_intercept.coef_.shape
    assert lr3_with_intercept.coef_.shape == lr3_without_intercept.coef_.shape
    assert lr2_without_intercept.coef_.ndim == lr3_without_intercept.coef_.ndim


def test_linear_regression_sparse(global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    n = 100
    X = sparse.eye_array(n, n).tocsr()
    beta = rng.rand(n)
    y = X @ beta
    ols = LinearRegression()
    ols.fit(X, y.ravel())
    assert_array_almost_equal(beta, ols.coef_ + ols.intercept_)
    assert_array_almost_equal(ols.predict(X) - y.ravel(), 0)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("csr_container", CSR_CONTAINERS)
def test_linear_regression_sparse_equal_dense(fit_intercept, csr_container):
    rng = np.random.RandomState(0)
    X = rng.randn(200, 2)
    X[X < 0.1] = 0.0
    Xcsr = csr_container(X)
    y = rng.rand(200)
    clf_dense = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    clf_sparse = LinearRegression(fit_intercept=fit_intercept).fit(Xcsr, y)
    assert clf_dense.intercept_ == pytest.approx(clf_sparse.intercept_)
    assert_allclose(clf_dense.coef_, clf_sparse.coef_)


def test_linear_regression_multiple_outcome():
    rng = np.random.RandomState(0)
    X, y = make_regression(random_state=rng)
    Y = np.vstack((y, y)).T
    reg = LinearRegression()
    reg.fit((X), Y)
    assert reg.coef_.shape == (2, X.shape[1])
    Y_pred = reg.predict(X)
    reg.fit(X, y)
    y_pred = reg.predict(X)
    assert_array_almost_equal(np.vstack((y_pred, y_pred)).T, Y_pred, decimal=3)


@pytest.mark.parametrize("coo_container", COO_CONTAINERS)
def test_linear_regression_sparse_multiple_outcome(global_random_seed, coo_container):
    rng = np.random.RandomState(global_random_seed)
    X, y = make_sparse_uncorrelated(random_state=rng)
    X = coo_container(X)
    Y = np.vstack((y, y)).T
    ols = LinearRegression()
    ols.fit(X, Y)
    assert ols.coef_.shape == (2, X.shape[1])
    Y_pred = ols.predict(X)
    ols.fit(X, y.ravel())
    y_pred = ols.predict(X)
    assert_array_almost_equal(np.vstack((y_pred, y_pred)).T, Y_pred, decimal=3)


def test_linear_regression_positive():
    X = [[1], [2]]
    y = [1, 2]
    reg = LinearRegression(positive=True)
    reg.fit(X, y)
    assert_array_almost_equal(reg.coef_, [1])
    assert_array_almost_equal(reg.intercept_, [0])
    assert_array_almost_equal(reg.predict(X), [1, 2])
    X = [[1]]
    y = [0]
    reg = LinearRegression(positive=True)
    reg.fit(X, y)
    assert_allclose(reg.coef_, [0])
    assert_allclose(reg.intercept_, [0])
    assert_allclose(reg.predict(X), [0])


def test_linear_regression_positive_multiple_outcome(global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    X, y = make_sparse_uncorrelated(random_state=rng)
    Y = np.vstack((y, y)).T
    ols = LinearRegression(positive=True)
    ols.fit(X, Y)
    assert ols.coef_.shape == (2, X.shape[1])
    assert np.all(ols.coef_ >= 0.0)
    Y_pred = ols.predict(X)
    ols.fit(X, y.ravel())
    y_pred = ols.predict(X)
    assert_allclose(np.vstack((y_pred, y_pred)).T, Y_pred)


def test_linear_regression_positive_vs_nonpositive(global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    X, y = make_sparse_uncorrelated(random_state=rng)
    reg = LinearRegression(positive=True).fit(X, y)
    regn = LinearRegression(positive=False).fit(X, y)
    assert np.mean((reg.coef_ - regn.coef_) ** 2) > 1e-3


def test_linear_regression_positive_vs_nonpositive_when_positive(global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    X = rng.rand(200, 4)
    y = X[:, 0] + 2 * X[:, 1] + 3 * X[:, 2] + 1.5 * X[:, 3]
    reg = LinearRegression(positive=True).fit(X, y)
    regn = LinearRegression(positive=False).fit(X, y)
    assert np.mean((reg.coef_ - regn.coef_) ** 2) < 1e-6


@pytest.mark.parametrize("sparse_container", [None] + CSR_CONTAINERS)
@pytest.mark.parametrize("use_sw", [True, False])
def test_inplace_data_preprocessing(sparse_container, use_sw, global_random_seed):
    # ADAPTED: jaxlm has no copy_X (it never preprocesses in place), so only the first half,
    # "the data is not modified", applies.
    rng = np.random.RandomState(global_random_seed)
    original_X_data = rng.randn(10, 12)
    original_y_data = rng.randn(10, 2)
    original_sw_data = rng.rand(10)
    X = sparse_container(original_X_data) if sparse_container is not None else original_X_data.copy()
    y = original_y_data.copy()
    sample_weight = original_sw_data.copy() if use_sw else None
    LinearRegression().fit(X, y, sample_weight=sample_weight)
    assert_allclose(X.toarray() if sparse_container is not None else X, original_X_data)
    assert_allclose(y, original_y_data)
    if use_sw:
        assert_allclose(sample_weight, original_sw_data)


@pytest.mark.parametrize("X_shape", [(10, 5), (10, 20), pytest.param((100, 100), marks=pytest.mark.slow)])
@pytest.mark.parametrize("sparse_container", [None] + CSR_CONTAINERS)  # (scikit-learn xfails CSR: #30131)
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_linear_regression_sample_weight_consistency(X_shape, sparse_container, fit_intercept, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    n_samples, n_features = X_shape
    X = rng.rand(n_samples, n_features)
    y = rng.rand(n_samples)
    if sparse_container is not None:
        X = sparse_container(X)
    params = dict(fit_intercept=fit_intercept)
    reg = LinearRegression(**params).fit(X, y, sample_weight=None)
    coef = reg.coef_.copy()
    if fit_intercept:
        intercept = reg.intercept_
    # 1) sample_weight=np.ones(..) must be equivalent to sample_weight=None
    reg.fit(X, y, sample_weight=np.ones_like(y))
    assert_allclose(reg.coef_, coef, rtol=1e-6)
    if fit_intercept:
        assert_allclose(reg.intercept_, intercept)
    # 2) sample_weight=None should be equivalent to sample_weight = number
    reg.fit(X, y, sample_weight=123.0)
    assert_allclose(reg.coef_, coef, rtol=1e-6)
    if fit_intercept:
        assert_allclose(reg.intercept_, intercept)
    # 3) scaling of sample_weight should have no effect, cf. np.average()
    sample_weight = rng.uniform(low=0.01, high=2, size=X.shape[0])
    reg = reg.fit(X, y, sample_weight=sample_weight)
    coef = reg.coef_.copy()
    if fit_intercept:
        intercept = reg.intercept_
    reg.fit(X, y, sample_weight=np.pi * sample_weight)
    assert_allclose(reg.coef_, coef, rtol=1e-6 if sparse_container is None else 1e-5)
    if fit_intercept:
        assert_allclose(reg.intercept_, intercept)
    # 4) setting elements of sample_weight to 0 is equivalent to removing these samples
    sample_weight_0 = sample_weight.copy()
    sample_weight_0[-5:] = 0
    y[-5:] *= 1000
    reg.fit(X, y, sample_weight=sample_weight_0)
    coef_0 = reg.coef_.copy()
    if fit_intercept:
        intercept_0 = reg.intercept_
    reg.fit(X[:-5], y[:-5], sample_weight=sample_weight[:-5])
    assert_allclose(reg.coef_, coef_0, rtol=1e-5)
    if fit_intercept:
        assert_allclose(reg.intercept_, intercept_0)
    # 5) multiplying sample_weight by 2 is equivalent to repeating the samples twice
    if sparse_container is not None:
        X2 = sparse.vstack([X, X[: n_samples // 2]], format="csc")
    else:
        X2 = np.concatenate([X, X[: n_samples // 2]], axis=0)
    y2 = np.concatenate([y, y[: n_samples // 2]])
    sample_weight_1 = sample_weight.copy()
    sample_weight_1[: n_samples // 2] *= 2
    sample_weight_2 = np.concatenate([sample_weight, sample_weight[: n_samples // 2]], axis=0)
    reg1 = LinearRegression(**params).fit(X, y, sample_weight=sample_weight_1)
    reg2 = LinearRegression(**params).fit(X2, y2, sample_weight=sample_weight_2)
    assert_allclose(reg1.coef_, reg2.coef_, rtol=1e-6)
    if fit_intercept:
        assert_allclose(reg1.intercept_, reg2.intercept_)


# ------------------------------------------------------------------------------ test_ridge.py


@pytest.fixture(params=["long", "wide"])
def ols_ridge_dataset(global_random_seed, request):
    """Dataset with OLS and Ridge solutions, well conditioned X (scikit-learn's fixture): the last
    column of X is 1 (the intercept); coef_ols is the minimum-norm OLS solution, coef_ridge the
    ridge solution with alpha=1 (the intercept unpenalised), both with the intercept last."""
    n_samples, n_features = (12, 4) if request.param == "long" else (4, 12)
    k = min(n_samples, n_features)
    rng = np.random.RandomState(global_random_seed)
    X = make_low_rank_matrix(n_samples=n_samples, n_features=n_features, effective_rank=k, random_state=rng)
    X[:, -1] = 1
    U, s, Vt = linalg.svd(X)
    assert np.all(s > 1e-3)
    U1, U2 = U[:, :k], U[:, k:]
    Vt1, _ = Vt[:k, :], Vt[k:, :]
    if request.param == "long":
        coef_ols = rng.uniform(low=-10, high=10, size=n_features)
        y = X @ coef_ols
        y += U2 @ rng.normal(size=n_samples - n_features) ** 2
    else:
        y = rng.uniform(low=-10, high=10, size=n_samples)
        coef_ols = Vt1.T @ np.diag(1 / s) @ U1.T @ y
    alpha = 1
    d = alpha * np.identity(n_features)
    d[-1, -1] = 0
    coef_ridge = linalg.solve(X.T @ X + d, X.T @ y)
    assert np.linalg.norm(y - X @ coef_ols) < np.linalg.norm(y - X @ coef_ridge)
    return X, y, coef_ols, coef_ridge


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_regression(solver, fit_intercept, ols_ridge_dataset, global_random_seed):
    X, y, _, coef = ols_ridge_dataset
    params = dict(alpha=1.0, fit_intercept=True, solver=solver)  # (fit_intercept=True as in scikit-learn's)
    res_null = y - np.mean(y)
    res_Ridge = y - X @ coef
    R2_Ridge = 1 - np.sum(res_Ridge**2) / np.sum(res_null**2)
    model = Ridge(**params)
    X = X[:, :-1]
    if fit_intercept:
        intercept = coef[-1]
    else:
        X = X - X.mean(axis=0)
        y = y - y.mean()
        intercept = 0
    model.fit(X, y)
    coef = coef[:-1]
    assert model.intercept_ == pytest.approx(intercept)
    assert_allclose(model.coef_, coef)
    assert model.score(X, y) == pytest.approx(R2_Ridge)
    model = Ridge(**params).fit(X, y, sample_weight=np.ones(X.shape[0]))
    assert model.intercept_ == pytest.approx(intercept)
    assert_allclose(model.coef_, coef)
    assert model.score(X, y) == pytest.approx(R2_Ridge)
    # ADAPTED: jaxlm's "auto" reports the solver it chose
    assert model.solver_ == (solver if solver != "auto" else "cholesky")


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("stack", ["hstacked", "vstacked"])
def test_ridge_regression_stacked_X(solver, fit_intercept, stack, ols_ridge_dataset):
    # test_ridge_regression_hstacked_X and _vstacked_X: [X, X]/2 with alpha/2, and [X; X] with 2 alpha,
    # give the ridge solution of X with alpha
    X, y, _, coef = ols_ridge_dataset
    n_samples, n_features = X.shape
    model = Ridge(alpha=0.5 if stack == "hstacked" else 2.0, fit_intercept=fit_intercept, solver=solver)
    X = X[:, :-1]
    if stack == "hstacked":
        X = 0.5 * np.concatenate((X, X), axis=1)
        assert np.linalg.matrix_rank(X) <= min(n_samples, n_features - 1)
    else:
        X = np.concatenate((X, X), axis=0)
        assert np.linalg.matrix_rank(X) <= min(n_samples, n_features)
        y = np.r_[y, y]
    if fit_intercept:
        intercept = coef[-1]
    else:
        X = X - X.mean(axis=0)
        y = y - y.mean()
        intercept = 0
    model.fit(X, y)
    coef = coef[:-1]
    assert model.intercept_ == pytest.approx(intercept)
    assert_allclose(model.coef_, np.r_[coef, coef] if stack == "hstacked" else coef, atol=1e-8)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("stack", [None, "hstacked", "vstacked"])
def test_ridge_regression_unpenalized(solver, fit_intercept, stack, ols_ridge_dataset):
    # test_ridge_regression_unpenalized (and its _hstacked_X, _vstacked_X): alpha=0 is OLS, the
    # minimum-norm solution where X is singular
    X, y, coef, _ = ols_ridge_dataset
    n_samples, n_features = X.shape
    model = Ridge(alpha=0, fit_intercept=fit_intercept, solver=solver)
    if fit_intercept:
        X = X[:, :-1]
        intercept = coef[-1]
        coef = coef[:-1]
    else:
        intercept = 0
    if stack == "hstacked":
        X = 0.5 * np.concatenate((X, X), axis=1)
        coef = np.r_[coef, coef]
    elif stack == "vstacked":
        X = np.concatenate((X, X), axis=0)
        y = np.r_[y, y]
    model.fit(X, y)
    if n_samples > n_features or not fit_intercept:
        assert model.intercept_ == pytest.approx(intercept)
        assert_allclose(model.coef_, coef)  # (scikit-learn skips cholesky on singular X: jaxlm passes)
    else:
        # ADAPTED: scikit-learn xfails here ("Ridge does not provide the minimum norm solution"). With a
        # free intercept jaxlm gives the minimum-norm coefficients of the centred problem (as
        # scikit-learn's LinearRegression), not the minimum norm of [intercept, coef] that the fixture
        # holds: the exact reference is the pseudo-inverse of the centred data (rank n - 1).
        assert_allclose(model.predict(X), y)
        ref = linalg.lstsq(X - X.mean(axis=0), y - y.mean(), cond=1e-10)[0]
        assert_allclose(model.coef_, ref)
        assert model.intercept_ == pytest.approx(y.mean() - X.mean(axis=0) @ ref)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("sparse_container", [None] + CSR_CONTAINERS)
@pytest.mark.parametrize("alpha", [1.0, 1e-2])
def test_ridge_regression_sample_weights(solver, fit_intercept, sparse_container, alpha, ols_ridge_dataset):
    # (scikit-learn skips sparse X with most solvers: jaxlm's take it)
    X, y, _, coef = ols_ridge_dataset
    n_samples, n_features = X.shape
    sw = rng.uniform(low=0, high=1, size=n_samples)
    model = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver=solver)
    X = X[:, :-1]
    X = np.concatenate((X, X), axis=0)
    y = np.r_[y, y]
    sw = np.r_[sw, 1 - sw] * alpha
    if fit_intercept:
        intercept = coef[-1]
    else:
        X = X - X.mean(axis=0)
        y = y - y.mean()
        intercept = 0
    if sparse_container is not None:
        X = sparse_container(X)
    model.fit(X, y, sample_weight=sw)
    coef = coef[:-1]
    assert model.intercept_ == pytest.approx(intercept)
    assert_allclose(model.coef_, coef)


def test_ridge_shapes_type():
    rng = np.random.RandomState(0)
    n_samples, n_features = 5, 10
    X = rng.randn(n_samples, n_features)
    y = rng.randn(n_samples)
    Y1 = y[:, np.newaxis]
    Y = np.c_[y, 1 + y]
    ridge = Ridge()
    ridge.fit(X, y)
    assert ridge.coef_.shape == (n_features,)
    assert ridge.intercept_.shape == ()
    assert isinstance(ridge.coef_, np.ndarray)
    assert isinstance(ridge.intercept_, float)
    ridge.fit(X, Y1)
    # ADAPTED: scikit-learn's Ridge ravels coef_ for a one-column 2-D y; jaxlm follows its
    # LinearRegression, whose coef_ for y of shape (n, 1) is (1, n_features)
    assert ridge.coef_.shape == (1, n_features)
    assert ridge.intercept_.shape == (1,)
    assert isinstance(ridge.coef_, np.ndarray)
    assert isinstance(ridge.intercept_, np.ndarray)
    ridge.fit(X, Y)
    assert ridge.coef_.shape == (2, n_features)
    assert ridge.intercept_.shape == (2,)
    assert isinstance(ridge.coef_, np.ndarray)
    assert isinstance(ridge.intercept_, np.ndarray)


def test_ridge_intercept():
    rng = np.random.RandomState(0)
    X = rng.randn(5, 10)
    y = rng.randn(5)
    Y = np.c_[y, 1.0 + y]
    ridge = Ridge()
    ridge.fit(X, y)
    intercept = ridge.intercept_
    ridge.fit(X, Y)
    assert_almost_equal(ridge.intercept_[0], intercept)
    assert_almost_equal(ridge.intercept_[1], intercept + 1.0)


def test_ridge_vs_lstsq():
    rng = np.random.RandomState(0)
    y = rng.randn(5)
    X = rng.randn(5, 4)
    ridge = Ridge(alpha=0.0, fit_intercept=False)
    ols = LinearRegression(fit_intercept=False)
    ridge.fit(X, y)
    ols.fit(X, y)
    assert_almost_equal(ridge.coef_, ols.coef_)


def test_ridge_individual_penalties():
    rng = np.random.RandomState(42)
    n_samples, n_features, n_targets = 20, 10, 5
    X = rng.randn(n_samples, n_features)
    y = rng.randn(n_samples, n_targets)
    penalties = np.arange(n_targets)
    coef_cholesky = np.array([SkRidge(alpha=alpha, solver="cholesky").fit(X, target).coef_
                              for alpha, target in zip(penalties, y.T)])
    coefs_indiv_pen = [Ridge(alpha=penalties, solver=solver, tol=1e-12).fit(X, y).coef_ for solver in SOLVERS]
    for coef_indiv_pen in coefs_indiv_pen:
        assert_array_almost_equal(coef_cholesky, coef_indiv_pen)
    ridge = Ridge(alpha=penalties[:-1])
    # ADAPTED: jaxlm's message (an InputError, a ValueError) names the rule in its own words
    with pytest.raises(ValueError, match="alpha must be one number or one number per target \\(5\\); got 4"):
        ridge.fit(X, y)


def test_ridge_per_target_alpha_predictions():
    # ADAPTED from test_ridge_per_target_alpha_array_api (its NumPy part): per-target alphas give
    # predictions of y's shape, scikit-learn's svd solver's (a direct solve) to float64 atol
    X, y = make_regression(n_targets=3, n_features=10, random_state=0)
    alphas = np.asarray([1e-2, 0.1, 1.0])
    pred_np = SkRidge(alpha=alphas, solver="svd").fit(X, y).predict(X)
    pred = Ridge(alpha=alphas, solver="svd").fit(X, y).predict(X)
    assert pred.shape == pred_np.shape == y.shape
    assert_allclose(pred, pred_np, atol=1e-10)  # (_atol_for_type(float64))


def _make_sparse_offset_regression(n_samples=100, n_features=100, proportion_nonzero=0.5, n_informative=10,
                                   n_targets=1, bias=13.0, X_offset=30.0, noise=30.0, shuffle=True, coef=False,
                                   positive=False, random_state=None):
    X, y, c = make_regression(n_samples=n_samples, n_features=n_features, n_informative=n_informative,
                              n_targets=n_targets, bias=bias, noise=noise, shuffle=shuffle, coef=True,
                              random_state=random_state)
    if n_features == 1:
        c = np.asarray([c])
    X += X_offset
    mask = np.random.RandomState(random_state).binomial(1, proportion_nonzero, X.shape) > 0
    removed_X = X.copy()
    X[~mask] = 0.0
    removed_X[mask] = 0.0
    y -= removed_X.dot(c)
    if positive:
        y += X.dot(np.abs(c) + 1 - c)
        c = np.abs(c) + 1
    if n_features == 1:
        c = c[0]
    if coef:
        return X, y, c
    return X, y


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("sparse_container", [None] + CSR_CONTAINERS)
@pytest.mark.parametrize("n_samples,dtype,proportion_nonzero",
                         [(20, "float32", 0.1), (40, "float32", 1.0), (20, "float64", 0.2)])
def test_solver_consistency(solver, proportion_nonzero, n_samples, dtype, sparse_container, global_random_seed):
    alpha = 1.0
    noise = 50.0 if proportion_nonzero > 0.9 else 500.0
    X, y = _make_sparse_offset_regression(bias=10, n_features=30, proportion_nonzero=proportion_nonzero, noise=noise,
                                          random_state=global_random_seed, n_samples=n_samples)
    X = minmax_scale(X)
    svd_ridge = SkRidge(solver="svd", alpha=alpha).fit(X, y)  # scikit-learn's direct solve as the reference
    X = X.astype(dtype, copy=False)
    y = y.astype(dtype, copy=False)
    if sparse_container is not None:
        X = sparse_container(X)
    ridge = Ridge(alpha=alpha, solver=solver, tol=1e-10)
    ridge.fit(X, y)
    assert_allclose(ridge.coef_, svd_ridge.coef_, atol=1e-3, rtol=1e-3)
    assert_allclose(ridge.intercept_, svd_ridge.intercept_, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("alpha", [1e-16, 1e16], ids=["zero_alpha", "inf_alpha"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("X_shape", [(100, 50), (50, 100)], ids=["tall", "wide"])
@pytest.mark.parametrize("X_container", [np.asarray] + CSR_CONTAINERS)
def test_regularization_limits_ridge(alpha, solver, fit_intercept, X_shape, X_container):
    n_samples, n_features = X_shape
    X, y = make_regression(n_samples=n_samples, n_features=n_features, noise=0, bias=10, random_state=42)
    if np.isclose(alpha, 0):  # (scikit-learn's _ridge_regularization_limits)
        lin_reg = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
        expected_coef, expected_intercept = lin_reg.coef_, lin_reg.intercept_
    else:
        expected_coef, expected_intercept = np.zeros(n_features), np.mean(y) if fit_intercept else 0.0
    X = X_container(X)
    ridge = Ridge(alpha=alpha, solver=solver, fit_intercept=fit_intercept, tol=1e-12)
    ridge.fit(X, y)
    assert_allclose(ridge.coef_, expected_coef, atol=1e-10)
    assert_allclose(ridge.intercept_, expected_intercept, atol=1e-10)


def _test_ridge_diabetes(sparse_container):
    X = X_diabetes if sparse_container is None else sparse_container(X_diabetes)
    ridge = Ridge(fit_intercept=False)
    ridge.fit(X, y_diabetes)
    return np.round(ridge.score(X, y_diabetes), 5)


def _test_multi_ridge_diabetes(sparse_container):
    X = X_diabetes if sparse_container is None else sparse_container(X_diabetes)
    Y = np.vstack((y_diabetes, y_diabetes)).T
    ridge = Ridge(fit_intercept=False)
    ridge.fit(X, Y)
    assert ridge.coef_.shape == (2, X_diabetes.shape[1])
    Y_pred = ridge.predict(X)
    ridge.fit(X, y_diabetes)
    y_pred = ridge.predict(X)
    assert_array_almost_equal(np.vstack((y_pred, y_pred)).T, Y_pred, decimal=3)


def _test_tolerance(sparse_container):
    X = X_diabetes if sparse_container is None else sparse_container(X_diabetes)
    score = Ridge(tol=1e-5, fit_intercept=False).fit(X, y_diabetes).score(X, y_diabetes)
    score2 = Ridge(tol=1e-3, fit_intercept=False).fit(X, y_diabetes).score(X, y_diabetes)
    assert score >= score2


@pytest.mark.parametrize("test_func", (_test_ridge_diabetes, _test_multi_ridge_diabetes, _test_tolerance))
@pytest.mark.parametrize("csr_container", CSR_CONTAINERS)
def test_dense_sparse(test_func, csr_container):
    ret_dense = test_func(None)
    ret_sparse = test_func(csr_container)
    if ret_dense is not None and ret_sparse is not None:
        assert_array_almost_equal(ret_dense, ret_sparse, decimal=3)


def test_ridge_raises_value_error_if_sample_weights_greater_than_1d():
    rng = np.random.RandomState(42)
    for n_samples, n_features in zip([2, 3], [3, 2]):
        X = rng.randn(n_samples, n_features)
        y = rng.randn(n_samples)
        sample_weights_OK = rng.randn(n_samples) ** 2 + 1
        ridge = Ridge(alpha=1)
        ridge.fit(X, y, sample_weights_OK)
        ridge.fit(X, y, 1.0)
        ridge.fit(X, y, 2.0)
        # ADAPTED: jaxlm's InputError (a ValueError) says it in its own words
        for not_ok in (sample_weights_OK[:, np.newaxis], sample_weights_OK[np.newaxis, :]):
            with pytest.raises(ValueError, match="sample_weight must have one entry per row of X"):
                ridge.fit(X, y, not_ok)


@pytest.mark.parametrize("n_samples,n_features", [[2, 3], [3, 2]])
@pytest.mark.parametrize("sparse_container",
                         COO_CONTAINERS + CSC_CONTAINERS + CSR_CONTAINERS + DOK_CONTAINERS + LIL_CONTAINERS)
def test_sparse_design_with_sample_weights(n_samples, n_features, sparse_container):
    rng = np.random.RandomState(42)
    sparse_ridge = Ridge(alpha=1.0, fit_intercept=False)
    dense_ridge = Ridge(alpha=1.0, fit_intercept=False)
    X = rng.randn(n_samples, n_features)
    y = rng.randn(n_samples)
    sample_weights = rng.randn(n_samples) ** 2 + 1
    sparse_ridge.fit(sparse_container(X), y, sample_weight=sample_weights)
    dense_ridge.fit(X, y, sample_weight=sample_weights)
    assert_array_almost_equal(sparse_ridge.coef_, dense_ridge.coef_, decimal=6)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("with_sample_weight", [True, False])
@pytest.mark.parametrize("csr_container", CSR_CONTAINERS)
def test_ridge_fit_intercept_sparse(solver, positive, with_sample_weight, global_random_seed, csr_container):
    # (scikit-learn: only sparse_cg and lbfgs, the latter with positive=True; jaxlm's exact solvers all)
    X, y = _make_sparse_offset_regression(n_features=20, random_state=global_random_seed, positive=positive)
    sample_weight = None
    if with_sample_weight:
        sample_weight = 1.0 + np.random.RandomState(global_random_seed).uniform(size=X.shape[0])
    dense_ridge = Ridge(solver=solver, tol=1e-12, positive=positive)
    sparse_ridge = Ridge(solver=solver, tol=1e-12, positive=positive)
    dense_ridge.fit(X, y, sample_weight=sample_weight)
    sparse_ridge.fit(csr_container(X), y, sample_weight=sample_weight)
    assert_allclose(dense_ridge.intercept_, sparse_ridge.intercept_)
    assert_allclose(dense_ridge.coef_, sparse_ridge.coef_, rtol=5e-7)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("positive", [False, True])
def test_dtype_match(solver, positive):
    rng = np.random.RandomState(0)
    alpha = 1.0
    X_64 = rng.randn(6, 5)
    y_64 = rng.randn(6)
    X_32 = X_64.astype(np.float32)
    y_32 = y_64.astype(np.float32)
    tol = 2 * np.finfo(np.float32).resolution
    # ADAPTED: jaxlm computes float32 data in float64 unless asked (dtype="float32" is its contract
    # for float32 arithmetic and float32 coef_, predictions)
    ridge_32 = Ridge(alpha=alpha, solver=solver, max_iter=500, tol=tol, positive=positive, dtype="float32")
    ridge_32.fit(X_32, y_32)
    ridge_64 = Ridge(alpha=alpha, solver=solver, max_iter=500, tol=tol, positive=positive)
    ridge_64.fit(X_64, y_64)
    assert ridge_32.coef_.dtype == X_32.dtype
    assert ridge_64.coef_.dtype == X_64.dtype
    assert ridge_32.predict(X_32).dtype == X_32.dtype
    assert ridge_64.predict(X_64).dtype == X_64.dtype
    assert_allclose(ridge_32.coef_, ridge_64.coef_, rtol=1e-4, atol=5e-4)


def test_dtype_match_cholesky():
    rng = np.random.RandomState(0)
    alpha = np.array([1.0, 0.5])
    X_64 = rng.randn(6, 7)
    y_64 = rng.randn(6, 2)
    X_32 = X_64.astype(np.float32)
    y_32 = y_64.astype(np.float32)
    ridge_32 = Ridge(alpha=alpha, solver="cholesky", dtype="float32")  # ADAPTED: as in test_dtype_match
    ridge_32.fit(X_32, y_32)
    ridge_64 = Ridge(alpha=alpha, solver="cholesky")
    ridge_64.fit(X_64, y_64)
    assert ridge_32.coef_.dtype == X_32.dtype
    assert ridge_64.coef_.dtype == X_64.dtype
    assert ridge_32.predict(X_32).dtype == X_32.dtype
    assert ridge_64.predict(X_64).dtype == X_64.dtype
    assert_almost_equal(ridge_32.coef_, ridge_64.coef_, decimal=5)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("positive", [False, True])
def test_ridge_regression_dtype_stability(solver, positive):
    # ADAPTED: scikit-learn calls its ridge_regression function (fit_intercept=False, no intercept
    # returned); here the estimator with fit_intercept=False and dtype as in test_dtype_match
    random_state = np.random.RandomState(0)
    X = random_state.randn(6, 5)
    coef = random_state.randn(5)
    y = np.dot(X, coef) + 0.01 * random_state.randn(6)
    results = {}
    for current_dtype in (np.float32, np.float64):
        results[current_dtype] = Ridge(alpha=1.0, solver=solver, fit_intercept=False, positive=positive,
                                       dtype=np.dtype(current_dtype).name).fit(
            X.astype(current_dtype), y.astype(current_dtype)).coef_
    assert results[np.float32].dtype == np.float32
    assert results[np.float64].dtype == np.float64
    assert_allclose(results[np.float32], results[np.float64], atol=1e-5)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", [1e-3, 1e-2, 0.1, 1.0])
def test_ridge_positive_regression_test(solver, fit_intercept, alpha):
    X = np.array([[1, 2], [3, 4], [5, 6], [7, 8]])
    coef = np.array([1, -10])
    y = X.dot(coef) + 20 if fit_intercept else X.dot(coef)
    model = Ridge(alpha=alpha, positive=True, solver=solver, fit_intercept=fit_intercept)
    model.fit(X, y)
    assert np.all(model.coef_ >= 0)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", [1e-3, 1e-2, 0.1, 1.0])
def test_ridge_ground_truth_positive_test(fit_intercept, alpha):
    rng = np.random.RandomState(42)
    X = rng.randn(300, 100)
    coef = rng.uniform(0.1, 1.0, size=X.shape[1])
    y = X @ coef + 1 if fit_intercept else X @ coef
    y += rng.normal(size=X.shape[0]) * 0.01
    results = [Ridge(alpha=alpha, positive=positive, fit_intercept=fit_intercept, tol=1e-10).fit(X, y).coef_
               for positive in [True, False]]
    assert_allclose(*results, atol=1e-6, rtol=0)


@pytest.mark.parametrize("alpha", [1e-3, 1e-2, 0.1, 1.0])
def test_positive_ridge_loss(alpha):
    X, y = make_regression(n_samples=300, n_features=300, random_state=42)
    alpha = 0.10

    def ridge_loss(model, random_state=None, noise_scale=1e-8):
        coef = model.coef_
        if random_state is not None:
            coef = coef + np.random.RandomState(random_state).uniform(0, noise_scale, size=coef.shape)
        return 0.5 * np.sum((y - X @ coef - model.intercept_) ** 2) + 0.5 * alpha * np.sum(coef**2)

    model = Ridge(alpha=alpha).fit(X, y)
    model_positive = Ridge(alpha=alpha, positive=True).fit(X, y)
    loss = ridge_loss(model)
    loss_positive = ridge_loss(model_positive)
    assert loss <= loss_positive
    for random_state in range(100):
        assert loss_positive <= ridge_loss(model_positive, random_state=random_state)


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("sparse_container", [None] + CSR_CONTAINERS)
@pytest.mark.parametrize("data", ["tall", "wide"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("positive", [False, True])
def test_ridge_sample_weight_consistency(fit_intercept, sparse_container, data, solver, positive):
    # (scikit-learn: positive only with lbfgs; sparse X not with svd, nor cholesky with an intercept)
    rng = np.random.RandomState(42)
    n_samples = 12
    n_features = n_samples // 2 if data == "tall" else n_samples * 2
    X = rng.rand(n_samples, n_features)
    y = rng.rand(n_samples)
    if sparse_container is not None:
        X = sparse_container(X)
    params = dict(fit_intercept=fit_intercept, alpha=1.0, solver=solver, positive=positive, tol=1e-12)
    # 1) sample_weight=np.ones(..) should be equivalent to sample_weight=None
    reg = Ridge(**params).fit(X, y, sample_weight=None)
    coef = reg.coef_.copy()
    if fit_intercept:
        intercept = reg.intercept_
    reg.fit(X, y, sample_weight=np.ones_like(y))
    assert_allclose(reg.coef_, coef, rtol=1e-6)
    if fit_intercept:
        assert_allclose(reg.intercept_, intercept)
    # 2) setting elements of sample_weight to 0 is equivalent to removing these samples
    sample_weight = rng.uniform(low=0.01, high=2, size=X.shape[0])
    sample_weight[-5:] = 0
    y[-5:] *= 1000
    reg.fit(X, y, sample_weight=sample_weight)
    coef = reg.coef_.copy()
    if fit_intercept:
        intercept = reg.intercept_
    reg.fit(X[:-5, :], y[:-5], sample_weight=sample_weight[:-5])
    assert_allclose(reg.coef_, coef, rtol=1e-6)
    if fit_intercept:
        assert_allclose(reg.intercept_, intercept)
    # 3) scaling of sample_weight (with the penalty) should have no effect
    reg2 = Ridge(**dict(params, alpha=np.pi * params["alpha"]))
    reg2.fit(X, y, sample_weight=np.pi * sample_weight)
    assert_allclose(reg2.coef_, coef, rtol=1e-6)
    if fit_intercept:
        assert_allclose(reg2.intercept_, intercept)
    # 4) multiplying sample_weight by 2 is equivalent to repeating the samples twice
    if sparse_container is not None:
        X = X.toarray()
    X2 = np.concatenate([X, X[: n_samples // 2]], axis=0)
    y2 = np.concatenate([y, y[: n_samples // 2]])
    sample_weight_1 = sample_weight.copy()
    sample_weight_1[: n_samples // 2] *= 2
    sample_weight_2 = np.concatenate([sample_weight, sample_weight[: n_samples // 2]], axis=0)
    if sparse_container is not None:
        X = sparse_container(X)
        X2 = sparse_container(X2)
    reg1 = Ridge(**params).fit(X, y, sample_weight=sample_weight_1)
    reg2 = Ridge(**params).fit(X2, y2, sample_weight=sample_weight_2)
    assert_allclose(reg1.coef_, reg2.coef_)
    if fit_intercept:
        assert_allclose(reg1.intercept_, reg2.intercept_)
