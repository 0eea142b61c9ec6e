"""Per-target ridge ``alpha`` (scikit-learn's ``Ridge(alpha=array of shape (n_targets,))``).

References: the ridge normal equations ``(Xcᵀ W Xc + α_k I) β_k = Xcᵀ W yc_k`` solved per target in
exact rational arithmetic (``fractions``), and each target fitted alone with its scalar alpha.
"""
import json
import warnings
from fractions import Fraction

import numpy as np
import pytest

import jaxlm
from jaxlm.core.errors import InputError, RankWarning
from jaxlm.models.registry import read_predictor

pytestmark = [pytest.mark.filterwarnings("ignore::jaxlm.core.errors.RankWarning"),
              pytest.mark.filterwarnings("ignore:X does not have valid feature names")]


def _exact_ridge(X, y, w, alpha, fit_intercept=True):
    """β, β₀ of ``min Σ w (y − β₀ − Xβ)² + α‖β‖²`` in exact rational arithmetic (Gauss–Jordan)."""
    n, d = X.shape
    F = [[Fraction(float(v)) for v in row] for row in X]
    fy = [Fraction(float(v)) for v in y]
    fw = [Fraction(float(v)) for v in w]
    W = sum(fw)
    mx = [sum(fw[i] * F[i][j] for i in range(n)) / W if fit_intercept else Fraction(0) for j in range(d)]
    my = sum(fw[i] * fy[i] for i in range(n)) / W if fit_intercept else Fraction(0)
    A = [[sum(fw[i] * (F[i][a] - mx[a]) * (F[i][b] - mx[b]) for i in range(n)) + (Fraction(float(alpha)) if a == b
          else 0) for b in range(d)] + [sum(fw[i] * (F[i][a] - mx[a]) * (fy[i] - my) for i in range(n))]
         for a in range(d)]
    for c in range(d):
        p = next(r for r in range(c, d) if A[r][c] != 0)
        A[c], A[p] = A[p], A[c]
        A[c] = [v / A[c][c] for v in A[c]]
        for r in range(d):
            if r != c and A[r][c] != 0:
                A[r] = [a - A[r][c] * b for a, b in zip(A[r], A[c])]
    beta = [A[j][d] for j in range(d)]
    b0 = my - sum(b * m for b, m in zip(beta, mx))
    return np.array([float(b) for b in beta]), float(b0)


@pytest.fixture
def data():
    rng = np.random.RandomState(7)
    X = rng.randn(25, 4) + np.array([0.0, 3.0, -2.0, 100.0])
    Y = X @ rng.randn(4, 3) + rng.randn(25, 3)
    w = rng.uniform(0.5, 2.0, size=25)
    return X, Y, w


@pytest.mark.parametrize("solver", ["auto", "cholesky", "qr", "svd"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_per_target_alpha_is_the_exact_ridge_solution_of_each_target(data, solver, fit_intercept):
    X, Y, w = data
    alpha = [0.0, 2.5, 40.0]
    m = jaxlm.LinearRegression(alpha=alpha, solver=solver, fit_intercept=fit_intercept).fit(X, Y, sample_weight=w)
    for k, a in enumerate(alpha):
        beta, b0 = _exact_ridge(X, Y[:, k], w, a, fit_intercept)
        np.testing.assert_allclose(m.coef_[k], beta, rtol=1e-13, atol=1e-14 * np.abs(beta).max())
        assert m.intercept_[k] == pytest.approx(b0 if fit_intercept else 0.0, rel=1e-12, abs=1e-12)


def test_per_target_equals_separate_fits_and_equal_alphas_equal_the_scalar_bit_for_bit(data):
    X, Y, w = data
    alpha = np.array([1.0, 0.0, 1.0])
    m = jaxlm.LinearRegression(alpha=alpha).fit(X, Y, sample_weight=w)
    for k, a in enumerate(alpha):
        one = jaxlm.LinearRegression(alpha=a).fit(X, Y[:, k], sample_weight=w)
        np.testing.assert_allclose(m.coef_[k], one.coef_, rtol=1e-14, atol=1e-15)
    same = jaxlm.LinearRegression(alpha=[3.0, 3.0, 3.0]).fit(X, Y, sample_weight=w)
    scalar = jaxlm.LinearRegression(alpha=3.0).fit(X, Y, sample_weight=w)
    assert np.array_equal(same.coef_, scalar.coef_) and np.array_equal(same.intercept_, scalar.intercept_)
    length_one = jaxlm.LinearRegression(alpha=[3.0]).fit(X, Y, sample_weight=w)  # broadcast, as Ridge
    assert np.array_equal(length_one.coef_, scalar.coef_)


def test_results_carry_each_targets_alpha_and_unpenalised_targets_keep_inference(data):
    sm = pytest.importorskip("statsmodels.api")
    X, Y, w = data
    m = jaxlm.LinearRegression(alpha=[0.0, 5.0, 0.0], weights_kind="analytic").fit(X, Y, sample_weight=w)
    assert [r.alpha for r in m.results_] == [0.0, 5.0, 0.0]
    assert [r.has_inference for r in m.results_] == [True, False, True]
    assert "alpha=5" in m.results_[1].inference_note
    for k in (0, 2):  # the unpenalised targets: statsmodels' WLS statistics
        ref = sm.WLS(Y[:, k], sm.add_constant(X), weights=w).fit()
        np.testing.assert_allclose(m.results_[k].cov(), ref.cov_params(), rtol=1e-9)
        assert m.results_[k].sse == pytest.approx(ref.ssr, rel=1e-11)
    assert [r.target_name for r in m.results_] == ["y0", "y1", "y2"]


@pytest.mark.parametrize("solver", ["auto", "qr"])
def test_partial_fit_per_target_reaches_the_one_shot_fit(data, solver):
    X, Y, w = data
    alpha = [0.5, 0.0, 7.0]
    whole = jaxlm.LinearRegression(alpha=alpha, solver=solver).fit(X, Y, sample_weight=w)
    pf = jaxlm.LinearRegression(alpha=alpha, solver=solver)
    for start in range(0, 25, 6):
        pf.partial_fit(X[start:start + 6], Y[start:start + 6], sample_weight=w[start:start + 6])
    np.testing.assert_allclose(pf.coef_, whole.coef_, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(pf.intercept_, whole.intercept_, rtol=1e-13)


def test_positive_per_target_is_each_targets_nonnegative_ridge(data):
    X, Y, w = data
    Y = Y.copy()
    Y[:, 1] = -Y[:, 1]  # some constraints active
    alpha = [0.0, 3.0, 30.0]
    m = jaxlm.LinearRegression(alpha=alpha, positive=True).fit(X, Y, sample_weight=w)
    assert np.all(m.coef_ >= 0)
    for k, a in enumerate(alpha):
        one = jaxlm.LinearRegression(alpha=a, positive=True).fit(X, Y[:, k], sample_weight=w)
        np.testing.assert_allclose(m.coef_[k], one.coef_, rtol=1e-13, atol=1e-14)


def test_sparse_per_target_equals_dense(data):
    sparse = pytest.importorskip("scipy.sparse")
    X, Y, w = data
    alpha = [0.1, 10.0, 1.0]
    dense = jaxlm.LinearRegression(alpha=alpha).fit(X, Y, sample_weight=w)
    sp = jaxlm.LinearRegression(alpha=alpha).fit(sparse.csr_matrix(X), Y, sample_weight=w)
    np.testing.assert_allclose(sp.coef_, dense.coef_, rtol=1e-13)


@pytest.mark.parametrize("alpha, rule", [([1.0, 2.0], "one number per target"), ([1.0, -1.0, 0.0], ">= 0"),
                                         ([1.0, np.nan, 0.0], "finite"), ([1.0, np.inf, 0.0], "finite"),
                                         ([[1.0, 2.0, 3.0]], "1-D"), ([], "1-D")])
def test_bad_alpha_is_an_input_error_naming_alpha(data, alpha, rule):
    X, Y, _ = data
    with pytest.raises(InputError, match=rule) as err:
        jaxlm.LinearRegression(alpha=alpha).fit(X, Y)
    assert err.value.param == "alpha"


def test_per_target_alpha_with_a_gradient_solver_says_to_use_an_exact_one(data):
    X, Y, _ = data
    with pytest.raises(InputError, match="exact solver") as err:
        jaxlm.LinearRegression(alpha=[1.0, 2.0, 3.0], solver="lbfgs").fit(X, Y)
    assert err.value.param == "alpha"


@pytest.mark.parametrize("positive", [False, True])
def test_model_file_round_trips_and_checks_each_targets_normal_equations(data, tmp_path, positive):
    X, Y, w = data
    m = jaxlm.LinearRegression(alpha=[0.0, 2.0, 9.0], positive=positive).fit(X, Y, sample_weight=w)
    path = tmp_path / "m.json"
    m.save(path)
    doc = json.loads(path.read_text())
    assert doc["params"]["alpha"] == [0.0, 2.0, 9.0]
    loaded = jaxlm.load(path)
    assert np.array_equal(loaded.coef_, m.coef_) and np.array_equal(loaded.predict(X), m.predict(X))
    assert [r.alpha for r in loaded.results_] == [0.0, 2.0, 9.0]
    predictor = read_predictor(path).model  # the sklearn-free path of `jaxlm predict`
    assert np.array_equal(predictor.predict(X), m.predict(X))
    assert [r.alpha for r in predictor.results_] == [0.0, 2.0, 9.0]
    for bad, why in (([0.0, 3.0, 9.0], "normal equations"), ([0.0, 2.0], "one per target"),
                     ([0.0, -2.0, 9.0], "finite number >= 0")):
        path.write_text(json.dumps(dict(doc, params=dict(doc["params"], alpha=bad))))
        with pytest.raises(InputError, match=why):
            jaxlm.load(path)


def test_scalar_alpha_still_accepted_and_checked():
    X = np.arange(12.0).reshape(6, 2) ** 1.5
    y = np.arange(6.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RankWarning)
        jaxlm.LinearRegression(alpha=np.float64(0.5)).fit(X, y)
    with pytest.raises(InputError, match="alpha"):
        jaxlm.LinearRegression(alpha=-0.5).fit(X, y)


def test_streamed_fits_refuse_per_target_alpha_with_an_input_error():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) ** 2, "y": 3 * np.arange(10.0) + 1,
                       "z": np.sin(np.arange(10.0))})
    with pytest.raises(InputError, match="one alpha for all targets") as err:
        jaxlm.fit_table(df, formula="y + z ~ a + b", alpha=[1.0, 2.0])
    assert err.value.param == "alpha"


def test_cli_predict_reads_a_per_target_model_file(data, tmp_path):
    import subprocess
    import sys

    from conftest import subprocess_env

    X, Y, w = data
    m = jaxlm.LinearRegression(alpha=[0.0, 2.0, 9.0]).fit(X, Y, sample_weight=w)
    m.save(tmp_path / "m.json")
    header = ",".join(f"x{j}" for j in range(X.shape[1]))
    rows = "\n".join(",".join(repr(float(v)) for v in row) for row in X)
    (tmp_path / "new.csv").write_text(f"{header}\n{rows}\n")
    out = subprocess.run([sys.executable, "-m", "jaxlm", "predict", str(tmp_path / "m.json"),
                          str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv")],
                         capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    pred = np.genfromtxt(tmp_path / "p.csv", delimiter=",", names=True)
    got = np.column_stack([pred[name] for name in pred.dtype.names[-3:]])
    np.testing.assert_allclose(got, m.predict(X), rtol=1e-15, atol=1e-13)
