"""Finite data never give a plausible wrong answer: data near the ends of the float64 range,
integers beyond 2^53, columns that hold one float64 value, subnormal values.

Every number is checked against an independent reference: the exact least-squares solution
of the float64 data computed with ``fractions.Fraction`` (exact rational arithmetic on the
very doubles jaxlm sees), or the expected InputError / RankWarning.
"""
from __future__ import annotations

import concurrent.futures
import json
import math
import subprocess
import sys
import warnings
from fractions import Fraction as F

import numpy as np
import pytest
from conftest import subprocess_env
from hypothesis import given, settings
from hypothesis import strategies as hst

import jaxlm
from jaxlm.core import exact
from jaxlm.core import state as st
from jaxlm.core.errors import InputError, RankWarning

EXACT = ("auto", "cholesky", "qr", "svd")
GRADIENT = ("gd", "lbfgs")
TINY = np.finfo(np.float64).tiny


# ----------------------------------------------------------------------------- the reference
def _solve(M, b):
    """Gauss-Jordan on Fractions: M x = b (M square, nonsingular; b a list of columns)."""
    p = len(M)
    A = [list(M[i]) + [col[i] for col in b] for i in range(p)]
    for k in range(p):
        piv = next(i for i in range(k, p) if A[i][k] != 0)
        A[k], A[piv] = A[piv], A[k]
        for i in range(p):
            if i != k and A[i][k] != 0:
                f = A[i][k] / A[k][k]
                A[i] = [a - f * c for a, c in zip(A[i], A[k])]
    return [[A[i][p + j] / A[i][i] for i in range(p)] for j in range(len(b))]


def exact_lstsq(X, y, w=None, *, fit_intercept=True, alpha=0.0):
    """The exact (ridge) least-squares solution of the float64 data, in Fractions.

    Returns a dict: beta (intercept first when fitted), sse, sst, inv (diagonal of
    (X̃ᵀWX̃)⁻¹) and df (rows − parameters: unweighted or analytic weights).
    """
    X = np.asarray(X, dtype=np.float64)
    rows = [[F(float(v)) for v in r] for r in X]
    ys = [F(float(v)) for v in np.asarray(y, dtype=np.float64)]
    ws = [F(1)] * len(ys) if w is None else [F(float(v)) for v in w]
    A = [([F(1)] if fit_intercept else []) + r for r in rows]
    p = len(A[0])
    M = [[sum(wi * a[i] * a[j] for wi, a in zip(ws, A)) for j in range(p)] for i in range(p)]
    for j in range(int(fit_intercept), p):
        M[j][j] += F(float(alpha))
    r = [sum(wi * a[i] * yi for wi, a, yi in zip(ws, A, ys)) for i in range(p)]
    beta = _solve(M, [r])[0]
    inv = _solve(M, [[F(int(i == j)) for i in range(p)] for j in range(p)])
    res = [yi - sum(b * a for b, a in zip(beta, ai)) for ai, yi in zip(A, ys)]
    sse = sum(wi * e * e for wi, e in zip(ws, res))
    ybar = sum(wi * yi for wi, yi in zip(ws, ys)) / sum(ws) if fit_intercept else F(0)
    sst = sum(wi * (yi - ybar) ** 2 for wi, yi in zip(ws, ys))
    return {"beta": beta, "sse": sse, "sst": sst, "inv": [inv[j][j] for j in range(p)], "df": len(ys) - p}


def fsqrt(q: F) -> float:
    """sqrt of a nonnegative Fraction as a float, also when q itself is beyond float64."""
    if q == 0:
        return 0.0
    k = (q.numerator.bit_length() - q.denominator.bit_length()) // 2
    return math.ldexp(math.sqrt(float(q / F(4) ** k)), k)


def rel(got: float, want: F) -> float:
    """|got − want| / |want|, evaluated exactly."""
    return float(abs(F(got) - want) / abs(want)) if want != 0 else abs(got)


def assert_close(got, want, rtol, what=""):
    got = np.atleast_1d(np.asarray(got, dtype=np.float64))
    assert len(got) == len(want), what
    for g, wv in zip(got, want):
        assert math.isfinite(g), (what, got)
        assert rel(float(g), wv) <= rtol, (what, float(g), float(wv) if abs(wv) < F(10) ** 300 else wv)


def fit(solver, X, y, w=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankWarning)
        return jaxlm.LinearRegression(solver=solver, **kw).fit(X, y, sample_weight=w)


def check_model(m, ref, *, exact_solver: bool, fit_intercept=True):
    """Coefficients always; standard errors, t and R² for exact solvers."""
    beta = ref["beta"]
    coef = ([m.intercept_] if fit_intercept else []) + list(np.atleast_1d(m.coef_))
    assert_close(coef, beta, 1e-12 if exact_solver else 1e-7, "coef")
    if not exact_solver:
        assert m.converged_
        return
    r = m.results_
    s2 = ref["sse"] / ref["df"]
    se = [fsqrt(s2 * v) for v in ref["inv"]]
    assert_close(r.std_errors, [F(v) for v in se], 1e-10, "std errors")
    assert_close(r.t_values, [b / F(s) for b, s in zip(beta, se)], 1e-10, "t")
    assert rel(r.r_squared, 1 - ref["sse"] / ref["sst"]) <= 1e-10
    table = r.coef_table()
    for arr in (table.p_values, table.lower, table.upper):
        assert np.all(np.isfinite(arr))
    assert math.isfinite(r.f_statistic) and math.isfinite(r.log_likelihood) and math.isfinite(r.residual_std)


def _base(n=10, d=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = 1.0 + X @ np.arange(2.0, 2.0 + d) + 0.1 * rng.normal(size=n)
    return X, y


# ----------------------------------------------------------------------------- 1. near the range
@pytest.mark.parametrize("solver", EXACT + GRADIENT)
@pytest.mark.parametrize("case", ["x1e200", "y1e200", "x1e307", "x_squares_overflow", "y1e-200"])
def test_data_near_the_float64_range(case, solver):
    X, y = _base()
    if case == "x1e200":
        X = X * 1e200
    elif case == "y1e200":
        y = y * 1e200
    elif case == "x1e307":
        X = X * 1e307
    elif case == "x_squares_overflow":  # one column beyond sqrt(max), the other ordinary
        X = X * np.array([3e160, 1.0])
    elif case == "y1e-200":
        X, y = X * 1e-150, y * 1e-200
    m = fit(solver, X, y)
    check_model(m, exact_lstsq(X, y), exact_solver=solver in EXACT)


@pytest.mark.parametrize("solver", EXACT + GRADIENT)
def test_huge_weights(solver):
    """Weights ~1e300: analytic weights give the WLS statistics (Σw² overflows float64)."""
    X, y = _base(seed=1)
    w = np.random.default_rng(1).uniform(1, 2, len(y)) * 1e300
    m = fit(solver, X, y, w, weights_kind="analytic")
    check_model(m, exact_lstsq(X, y, w), exact_solver=solver in EXACT)


def test_huge_frequency_weights_sum_beyond_float64_is_refused():
    X, y = _base()
    with pytest.raises(InputError, match="sample_weight must sum to at most"):
        fit("auto", X, y, np.full(len(y), 1e308))


@pytest.mark.parametrize("solver", EXACT)
def test_statistics_beyond_float64_are_inf_with_a_note(solver):
    """y ~ 1e200: σ̂ ~ 1e199 is finite (so are SE, t, p, intervals), σ̂² and the SSE are not."""
    X, y = _base()
    y = y * 1e200
    r = fit(solver, X, y).results_
    assert math.isfinite(r.residual_std) and r.residual_std > 1e198
    assert math.isinf(r.scale) and math.isinf(r.sse)
    assert any("Out of float64 range" in n and "SSE" in n for n in r.notes)
    ref = exact_lstsq(X, y)
    assert rel(r.residual_std, F(fsqrt(ref["sse"] / ref["df"]))) <= 1e-12


def test_statistics_below_float64_are_nan_with_a_note_not_zero():
    X, y = _base()
    X, y = X * 1e-150, y * 1e-200  # σ̂² ~ 1e-402
    r = fit("auto", X, y).results_
    assert math.isnan(r.scale) and math.isnan(r.sse)
    assert np.all(r.std_errors > 0) and math.isfinite(r.residual_std) and r.residual_std > 0
    assert any("below 2.2e-308" in n for n in r.notes)


def test_prediction_sd_in_scaled_units():
    """The interval's standard deviation is finite and exact where the variance is not representable."""
    X, y = _base()
    X, y = X * 1e200, y * 1e180
    r = fit("qr", X, y).results_
    ref = exact_lstsq(X, y)
    x0 = X[:3]
    s2 = ref["sse"] / ref["df"]
    # (X̃ᵀX̃)⁻¹ in full, from the reference
    A = [[F(1)] + [F(float(v)) for v in row] for row in X]
    M = [[sum(a[i] * a[j] for a in A) for j in range(3)] for i in range(3)]
    cols = _solve(M, [[F(int(i == j)) for i in range(3)] for j in range(3)])  # columns of M⁻¹
    for kind, extra in (("confidence", 0), ("prediction", 1)):
        got = r._prediction_sd(x0, kind, np.ones(len(x0)))
        for g, row in zip(got, x0):
            z = [F(1)] + [F(float(v)) for v in row]
            q = sum(z[i] * cols[j][i] * z[j] for i in range(3) for j in range(3))
            assert rel(float(g), F(fsqrt(s2 * (q + extra)))) <= 1e-10


# ----------------------------------------------------------------------------- 2. beyond 2^53
@pytest.mark.parametrize("solver", EXACT + GRADIENT)
def test_integers_beyond_2_53(solver):
    """x = 2^53 + i round to even integers 2 apart: a spread of a few ulps, far from the origin."""
    n = 12
    x = (2.0**53 + np.arange(n)).reshape(-1, 1)
    y = 3.0 + 0.5 * np.arange(n) + 0.3 * np.sin(np.arange(n))
    ref = exact_lstsq(x, y)
    m = fit(solver, x, y)
    check_model(m, ref, exact_solver=solver in EXACT)
    if solver in EXACT:
        assert m.results_.r_squared < 1 and not any("Perfect fit" in s for s in m.results_.notes)


@pytest.mark.parametrize("block", [1, 3, 7])
@pytest.mark.parametrize("solver", EXACT)
def test_integers_beyond_2_53_from_small_batches(solver, block):
    """Merging states of a few rows each loses the spread to the rounding of their means; the
    refinement then recomputes the moments about the means and still lands exactly."""
    n = 40
    x = (2.0**53 + np.arange(n)).reshape(-1, 1)
    y = 3.0 + 0.5 * np.arange(n) + np.cos(np.arange(n))
    ref = exact_lstsq(x, y)

    def batches():
        return ((x[i:i + block], y[i:i + block, None], np.ones(len(x[i:i + block]))) for i in range(0, n, block))

    sol = exact.fit_exact(batches, 1, 1, solver=solver)
    assert_close([sol.intercept[0], sol.coef[0, 0]], ref["beta"], 1e-12)
    assert rel(float(sol.sse[0]), ref["sse"]) <= 1e-10


# ----------------------------------------------------------------------------- 3. one float64 value
@pytest.mark.parametrize("solver", EXACT + GRADIENT)
def test_column_of_one_float64_value_is_aliased(solver):
    """1e40 + i (i < 2^40) are all 1e40 in float64: with an intercept the column is aliased."""
    X, y = _base(seed=2)
    X[:, 0] = 1e40 + np.arange(len(y))
    assert np.unique(X[:, 0]).size == 1
    with pytest.warns(RankWarning, match="x0"):
        m = jaxlm.LinearRegression(solver=solver).fit(X, y)
    assert m.coef_[0] == 0.0 and m.rank_ == 1
    ref = exact_lstsq(X[:, 1:], y)  # the model without the aliased column
    tol = 1e-12 if solver in EXACT else 1e-7
    assert_close([m.intercept_, m.coef_[1]], ref["beta"], tol)
    if solver in EXACT:
        assert np.isnan(m.results_.std_errors[1])  # x0: not estimable


@pytest.mark.parametrize("n", [8, 9])
@pytest.mark.parametrize("solver", EXACT + GRADIENT)
def test_single_column_of_one_float64_value(solver, n):
    """(With n = 8 the float64 mean of the column is not 1e40 itself: its rounding used to pass
    for a spread, giving rank 1 and a tiny nonzero slope with a tiny standard error.)"""
    x = (1e40 + np.arange(n)).reshape(-1, 1)
    y = np.sin(np.arange(n))
    with pytest.warns(RankWarning, match="rank 0 < 1"):
        m = jaxlm.LinearRegression(solver=solver).fit(x, y)
    assert m.coef_[0] == 0.0 and m.rank_ == 0
    assert rel(m.intercept_, sum(F(float(v)) for v in y) / n) <= 1e-15


# ----------------------------------------------------------------------------- 4. subnormal values
@pytest.mark.parametrize("solver", EXACT + GRADIENT)
def test_subnormal_x_whose_coefficient_is_beyond_float64_is_refused(solver):
    X, y = _base()
    X = X * 1e-310  # the slopes would be ~1e310
    with pytest.raises(InputError, match=r"coefficient of column x0 on y is about 1e\+31\d, beyond the float64 range"):
        fit(solver, X, y)


@pytest.mark.parametrize("solver", EXACT + GRADIENT)
def test_subnormal_y(solver):
    """y ~ 1e-310: the coefficients are subnormal, exact to the resolution of the data."""
    X, y = _base()
    y = y * 1e-310
    m = fit(solver, X, y)
    ref = exact_lstsq(X, y)
    coef = [m.intercept_] + list(m.coef_)
    for g, wv in zip(coef, ref["beta"]):
        # a subnormal has absolute resolution 2^-1074; the data's own is the same
        assert abs(F(float(g)) - wv) <= (4 if solver in EXACT else 2**20) * F(2) ** -1074
    if solver in EXACT:  # standard errors ~3e-312 and t statistics (SE 0 and t = inf before)
        r = m.results_
        s2 = ref["sse"] / ref["df"]
        assert_close(r.std_errors, [F(fsqrt(s2 * v)) for v in ref["inv"]], 1e-9, "std errors")
        assert_close(r.t_values, [b / F(fsqrt(s2 * v)) for b, v in zip(ref["beta"], ref["inv"])], 1e-9, "t")
        assert rel(r.r_squared, 1 - ref["sse"] / ref["sst"]) <= 1e-10


def test_subnormal_x_with_subnormal_y():
    X, y = _base()
    X, y = X * 1e-310, y * 1e-309
    for solver in EXACT:
        check_model(fit(solver, X, y), exact_lstsq(X, y), exact_solver=True)


def test_coefficient_below_the_float64_range_is_refused():
    """x ~ 1e300 explaining y ~ 1e-30: the slope ~1e-330 is not representable, and rounding it
    to 0 would move the predictions by ~y itself."""
    X, y = _base()
    X, y = X * 1e300, y * 1e-30
    with pytest.raises(InputError, match="below the float64 range"):
        fit("auto", X, y)


def test_nan_among_huge_values_is_still_named():
    X, y = _base()
    X = X * 1e200
    X[3, 1] = np.nan
    with pytest.raises(InputError, match=r"X contains NaN in column\(s\) 1"):
        fit("auto", X, y)


# ----------------------------------------------------------------------------- ridge, no intercept
@pytest.mark.parametrize("solver", EXACT + ("lbfgs",))
def test_ridge_on_tiny_columns(solver):
    X, y = _base()
    X = X * 1e-100
    alpha = 3e-199  # comparable to the columns' sums of squares
    m = fit(solver, X, y, alpha=alpha)
    ref = exact_lstsq(X, y, alpha=alpha)
    assert_close([m.intercept_] + list(m.coef_), ref["beta"], 1e-12 if solver in EXACT else 1e-6)


@pytest.mark.parametrize("solver", EXACT)
def test_no_intercept_near_the_range(solver):
    X, y = _base()
    X, y = X * 1e250, y * 1e100
    m = fit(solver, X, y, fit_intercept=False)
    check_model(m, exact_lstsq(X, y, fit_intercept=False), exact_solver=True, fit_intercept=False)


# ----------------------------------------------------------------------------- merging in units
def test_partial_fit_batches_in_different_units_equals_fit():
    X, y = _base(n=40, seed=3)
    X[:20] *= 1e200  # the first batches need rescaling, the last do not
    one = fit("qr", X, y)
    inc = jaxlm.LinearRegression(solver="qr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankWarning)
        for a in range(0, 40, 10):
            inc.partial_fit(X[a:a + 10], y[a:a + 10])
    np.testing.assert_allclose(inc.coef_, one.coef_, rtol=1e-12)
    np.testing.assert_allclose(inc.intercept_, one.intercept_, rtol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=hst.integers(0, 2**31), cuts=hst.lists(hst.integers(1, 59), max_size=5),
       kind=hst.sampled_from(["gram", "qr"]), order_seed=hst.integers(0, 1000))
def test_any_split_any_merge_order_in_per_part_units(seed, cuts, kind, order_seed):
    """Each part in its own units (from its own magnitudes), merged in any order: the solution
    is that of the whole data, exact to ~12 digits."""
    rng = np.random.default_rng(seed)
    n = 60
    X = rng.normal(size=(n, 2)) * np.array([2.0**700, 1.0]) + np.array([0.0, 5.0])
    y = (X @ np.array([2.0**-700, 3.0]) + rng.normal(size=n)) * 2.0**-300
    w = rng.integers(1, 4, size=n).astype(float)
    edges = [0] + sorted(set(cuts)) + [n]
    parts = []
    for a, b in zip(edges, edges[1:]):
        units = st.data_units([(X[a:b], y[a:b, None], w[a:b])], 2, 1)
        parts.append(st.accumulate([(X[a:b], y[a:b, None], w[a:b])], 2, 1, kind=kind, units=units))
    order = np.random.default_rng(order_seed)
    while len(parts) > 1:
        i = int(order.integers(0, len(parts) - 1))
        a, b = parts[i], parts[i + 1]
        parts[i:i + 2] = [st.merge(a, b) if order.random() < 0.5 else st.merge(b, a)]
    sol = exact.solve_state(parts[0])
    ref = exact_lstsq(X, y, w)["beta"]
    assert_close([sol.intercept[0]] + list(sol.coef[0]), ref, 1e-11)
    assert float(parts[0].count) == n


# ----------------------------------------------------------------------------- the CLI
COMMAND = [sys.executable, "-m", "jaxlm"]


def _write_csv(path, cols: dict):
    names = list(cols)
    with open(path, "w") as fh:
        fh.write(",".join(names) + "\n")
        for row in zip(*cols.values()):
            fh.write(",".join(repr(float(v)) for v in row) + "\n")


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("numeric_edges")
    X, y = _base()
    n = 12
    big53 = 2.0**53 + np.arange(n)
    y53 = 3.0 + 0.5 * np.arange(n) + 0.3 * np.sin(np.arange(n))
    data = {
        "x1e200": {"a": X[:, 0] * 1e200, "b": X[:, 1] * 1e200, "y": y},
        "y1e200": {"a": X[:, 0], "b": X[:, 1], "y": y * 1e200},
        "big53": {"x": big53, "y": y53},
        "const": {"c": 1e40 + np.arange(10), "b": X[:, 1], "y": y},
        "subnormal": {"tiny": X[:, 0] * 1e-310, "y": y},
    }
    cases = {}
    for name, cols in data.items():
        _write_csv(tmp / f"{name}.csv", cols)
        for solver in ("auto", "qr", "gd"):
            cases[(name, solver)] = ["fit", tmp / f"{name}.csv", "--target", "y", "--solver", solver, "--quiet",
                                     "--save", tmp / f"{name}-{solver}.json"]
    env = subprocess_env()

    def run(argv):
        return subprocess.run(COMMAND + [str(a) for a in argv], capture_output=True, text=True, env=env, cwd=tmp,
                              timeout=300)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {k: pool.submit(run, argv) for k, argv in cases.items()}
        out = {k: f.result() for k, f in futures.items()}
    return tmp, data, out


def _saved(tmp, name, solver):
    doc = json.loads((tmp / f"{name}-{solver}.json").read_text())
    return [doc["intercept"][0]] + doc["coef"][0]


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["auto", "qr", "gd"])
@pytest.mark.parametrize("name", ["x1e200", "y1e200", "big53"])
def test_cli_fits_the_exact_coefficients(cli_runs, name, solver):
    tmp, data, out = cli_runs
    run = out[(name, solver)]
    assert run.returncode == 0, run.stderr
    cols = data[name]
    X = np.column_stack([v for k, v in cols.items() if k != "y"])
    assert_close(_saved(tmp, name, solver), exact_lstsq(X, cols["y"])["beta"], 1e-12 if solver != "gd" else 1e-7)
    assert "Traceback" not in run.stderr


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["auto", "qr", "gd"])
def test_cli_constant_column_is_aliased(cli_runs, solver):
    tmp, data, out = cli_runs
    run = out[("const", solver)]
    assert run.returncode == 0, run.stderr
    coef = _saved(tmp, "const", solver)
    assert coef[1] == 0.0
    ref = exact_lstsq(data["const"]["b"].reshape(-1, 1), data["const"]["y"])["beta"]
    assert_close([coef[0], coef[2]], ref, 1e-12 if solver != "gd" else 1e-7)
    assert "rank deficient" in run.stderr and "collinearity: c" in run.stderr


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["auto", "qr", "gd"])
def test_cli_refuses_a_coefficient_beyond_float64_in_one_line(cli_runs, solver):
    tmp, _, out = cli_runs
    run = out[("subnormal", solver)]
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "'tiny'" in lines[0] and "beyond the float64 range" in lines[0], run.stderr
    assert not (tmp / f"subnormal-{solver}.json").exists()


@pytest.mark.parametrize("e", [-1000, -600, 600, 1000])
def test_prediction_intervals_scale_exactly_with_the_data(e):
    """Scaling y by 2^e scales every interval bound by 2^e exactly (powers of two commute with the
    arithmetic), also where σ̂² or (XᵀWX)⁻¹ of the scaled data lie outside float64: intervals of
    extreme-scale fits are neither NaN/inf nor collapsed to zero width."""
    import jaxlm

    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 2))
    y = X @ [1.5, -2.0] + 0.3 + rng.normal(size=40)
    Xn = rng.normal(size=(5, 2))
    ref = jaxlm.LinearRegression().fit(X, y)
    got = jaxlm.LinearRegression().fit(X, np.ldexp(y, e))
    for kind in ("confidence", "prediction"):
        a = ref.predict_interval(Xn, kind=kind)
        b = got.predict_interval(Xn, kind=kind)
        for u, v in zip(a, b):
            assert np.all(np.isfinite(v)) and np.all(v != 0)
            np.testing.assert_allclose(np.ldexp(v, -e), u, rtol=1e-12)
