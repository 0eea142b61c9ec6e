"""The exact least-squares solution of the float64 data on columns far from the origin.

Well-conditioned designs (centred, equilibrated κ ≤ 1e3) whose columns carry offsets up to
1e14 and scales from 1e-8 to 1e8: every coefficient, the intercept included, equals the exact
rational solution of the same float64 numbers to ≤ 1e-14 relative, in memory (Cholesky and QR,
weighted and not, with and without intercept, and large integer designs of ordinary
conditioning checked against exact int64 sums), streamed from a Parquet file of many row groups, on Dask, and through ``partial_fit``
(which cannot pass over the data again: it refines against double-double sums of the batches,
:mod:`jaxlm.core.exact_sums`).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import jaxlm
from jaxlm.core import exact_sums

DIGITS = 1e-14


def exact_ls(X, y, w=None, intercept=True):
    """The exact (weighted) least-squares solution of the float64 numbers, [β₀,] β, as Fractions."""
    n, d = X.shape
    cols = ([[Fraction(1)] * n] if intercept else []) + [[Fraction(float(v)) for v in X[:, j]] for j in range(d)]
    Y = [Fraction(float(v)) for v in y]
    W = [Fraction(1)] * n if w is None else [Fraction(float(v)) for v in w]
    k = len(cols)
    wc = [[W[i] * cols[a][i] for i in range(n)] for a in range(k)]
    M = [[sum(p * q for p, q in zip(wc[a], cols[b])) for b in range(k)] + [sum(p * q for p, q in zip(wc[a], Y))]
         for a in range(k)]
    for c in range(k):  # Gauss–Jordan, exact
        piv = next(i for i in range(c, k) if M[i][c] != 0)
        M[c], M[piv] = M[piv], M[c]
        for i in range(k):
            if i != c and M[i][c] != 0:
                f = M[i][c] / M[c][c]
                M[i] = [a - f * b for a, b in zip(M[i], M[c])]
    return [M[i][k] / M[i][i] for i in range(k)]


def design(seed, n=200, kappa_max=1e3):
    """Columns ``offset + scale·u`` (u correlated to reach κ up to ``kappa_max``), scales 1e-8..1e8,
    offsets 1 to 1e6 times the scale (so up to 1e14), either sign; y with its own offset."""
    rng = np.random.default_rng(seed)
    d = 1 + seed % 3
    Z = rng.uniform(-1, 1, (n, d))
    if d > 1:
        Z[:, 1] = Z[:, 0] + Z[:, 1] / 10 ** rng.uniform(0, np.log10(kappa_max) - 0.3)
    scale = 10.0 ** rng.uniform(-8, 8, d)
    X = scale * 10.0 ** rng.uniform(0, 6, d) * rng.choice([-1, 1], d) + scale * Z
    y = X @ (rng.normal(size=d) / scale) + rng.normal(size=n) * 0.1 + 10 ** rng.uniform(-3, 12)
    Xc = X - X.mean(axis=0)
    kappa = np.linalg.cond(Xc / np.linalg.norm(Xc, axis=0))
    assert kappa <= kappa_max
    return X, y


def assert_exact(want, intercept, coef, intercept_on=True):
    got = ([float(intercept)] if intercept_on else []) + [float(c) for c in np.ravel(coef)]
    for k, (e, g) in enumerate(zip(want, got)):
        err = abs((Fraction(g) - e) / e)
        assert err <= DIGITS, f"coefficient {k}: {g!r} vs exact {float(e)!r}: relative error {float(err):.3g}"


ISSUE_CASES = [(1e9, 0), (1e12, 1), (1e9, 2), (1e12, 3)]  # x = offset + U(0, 1), two columns, n = 200


def issue_design(offset, seed):
    rng = np.random.default_rng(seed)
    X = offset + rng.uniform(0, 1, (200, 2))
    return X, X @ [2.0, -3.0] + 5 + rng.normal(0, 0.1, 200)


@pytest.mark.parametrize("offset,seed", ISSUE_CASES)
@pytest.mark.parametrize("solver", ["auto", "qr"])
def test_issue_offsets_in_memory(offset, seed, solver):
    X, y = issue_design(offset, seed)
    m = jaxlm.LinearRegression(solver=solver).fit(X, y)
    assert_exact(exact_ls(X, y), m.intercept_, m.coef_)


@pytest.mark.parametrize("offset,seed", ISSUE_CASES)
def test_issue_offsets_partial_fit(offset, seed):
    X, y = issue_design(offset, seed)
    m = jaxlm.LinearRegression()
    for start in range(0, 200, 50):
        m.partial_fit(X[start:start + 50], y[start:start + 50])
    assert_exact(exact_ls(X, y), m.intercept_, m.coef_)


@pytest.mark.parametrize("seed", range(12))
def test_random_offsets_and_scales_in_memory_and_partial_fit(seed):
    X, y = design(seed)
    want = exact_ls(X, y)
    m = jaxlm.LinearRegression().fit(X, y)
    assert_exact(want, m.intercept_, m.coef_)
    p = jaxlm.LinearRegression()
    for start in range(0, 200, 30):  # uneven batches
        p.partial_fit(X[start:start + 30], y[start:start + 30])
    assert_exact(want, p.intercept_, p.coef_)


@pytest.mark.parametrize("seed", [1, 4, 5])
def test_weighted_and_without_intercept(seed):
    X, y = design(seed)
    w = np.random.default_rng(seed).uniform(0.5, 3.0, len(y))
    m = jaxlm.LinearRegression().fit(X, y, sample_weight=w)
    assert_exact(exact_ls(X, y, w), m.intercept_, m.coef_)
    p = jaxlm.LinearRegression()
    for start in range(0, 200, 50):
        p.partial_fit(X[start:start + 50], y[start:start + 50], sample_weight=w[start:start + 50])
    assert_exact(exact_ls(X, y, w), p.intercept_, p.coef_)
    # without intercept the offsets are part of the model: still the exact solution
    Xo = X - X.mean(axis=0) + 10 * np.std(X, axis=0)  # offset 10 sd: conditioned enough to ask 14 digits
    n0 = jaxlm.LinearRegression(fit_intercept=False).fit(Xo, y)
    assert_exact(exact_ls(Xo, y, intercept=False), 0.0, n0.coef_, intercept_on=False)
    q = jaxlm.LinearRegression(fit_intercept=False)
    for start in range(0, 200, 50):
        q.partial_fit(Xo[start:start + 50], y[start:start + 50])
    assert_exact(exact_ls(Xo, y, intercept=False), 0.0, q.coef_, intercept_on=False)


def exact_integer_ls(Xi, yi):
    """The exact least-squares solution [β₀, β] of integer data, the normal equations summed exactly in
    int64 (|x| < 2²⁰, |y| < 2²⁴, n ≤ 2¹⁸: every sum below 2⁶³) and solved in rationals."""
    A = np.column_stack([np.ones(len(Xi), dtype=np.int64), Xi])
    G, b = A.T @ A, A.T @ yi
    M = [[Fraction(int(v)) for v in row] + [Fraction(int(t))] for row, t in zip(G, b)]
    k = len(M)
    for c in range(k):
        for i in range(k):
            if i != c and M[i][c] != 0:
                f = M[i][c] / M[c][c]
                M[i] = [a - f * e for a, e in zip(M[i], M[c])]
    return [M[i][k] / M[i][i] for i in range(k)]


@pytest.mark.parametrize("seed", [1, 3, 4, 7])
def test_large_ordinary_designs_every_coefficient(seed):
    """2¹⁸ rows of integers (so that the reference is exact and fast), five correlated columns offset
    by up to their spread, κ ≈ 2.5, noisy y: every coefficient to 1e-14. Before every fit was
    refined, "auto" solved such data once (κ ≤ 4, no cancelling intercept, n·d > 2²⁰) and missed
    1e-14 on each of these seeds, by 2.0e-14 to 5.2e-14, on coefficients only 2.5-6× below the
    largest (in units of the columns' spread)."""
    rng = np.random.default_rng(seed)
    n, d = 1 << 18, 5
    Z = rng.integers(-(1 << 18), 1 << 18, (n, d))
    Z[:, 1:] += Z[:, :1] // 2
    Xi = Z + rng.integers(-(1 << 18), 1 << 18, d)
    yi = np.rint(Xi @ (rng.normal(size=d)) + rng.normal(size=n) * (1 << 16)).astype(np.int64) \
        + rng.integers(-(1 << 22), 1 << 22)
    assert np.abs(Xi).max() < 1 << 20 and np.abs(yi).max() < 1 << 24
    m = jaxlm.LinearRegression().fit(Xi.astype(np.float64), yi.astype(np.float64))
    assert_exact(exact_integer_ls(Xi, yi), m.intercept_, m.coef_)
    assert m.solution_.refinement_steps >= 1


def test_streamed_parquet_many_row_groups(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    for seed in (1, 5, 7):
        X, y = design(seed)
        path = tmp_path / f"o{seed}.parquet"
        pq.write_table(pa.table({**{f"x{j}": X[:, j] for j in range(X.shape[1])}, "y": y}), path, row_group_size=37)
        m = jaxlm.fit_table(str(path), target="y")
        assert_exact(exact_ls(X, y), m.intercept_, m.coef_)


def test_dask_partitions():
    da = pytest.importorskip("dask.array")
    for seed in (1, 5):
        X, y = design(seed)
        m = jaxlm.LinearRegression().fit(da.from_array(X, chunks=(45, -1)), da.from_array(y, chunks=45))
        assert_exact(exact_ls(X, y), m.intercept_, m.coef_)


@pytest.mark.parametrize("unit", [False, True])
def test_exact_sums_equal_rational_sums(monkeypatch, unit):
    """The double-double sums themselves, against exact rational sums of the same numbers: weighted
    and unit weights (one syrk and one gemm per block), runs of blocks shared over two threads."""
    from jaxlm.core import blas
    monkeypatch.setattr(exact_sums, "BLOCKS_PER_ITEM", 1)  # 5000 rows: two items of one block each
    monkeypatch.setattr(blas, "pass_threads", lambda: 2)
    rng = np.random.default_rng(3)
    X = 1e9 + rng.uniform(0, 1, (5000, 2)) * [1.0, 1e-3]
    Y = rng.normal(size=(5000, 1)) * 1e6 + 3e11
    w = np.ones(5000) if unit else rng.uniform(0, 2, 5000)
    s = exact_sums.sums_of_batch(X, Y, w)
    Z = np.concatenate([np.ones((5000, 1)), X - 0, Y], axis=1)
    shift = np.concatenate([[0.0], s.shift])
    for a, b in [(0, 0), (1, 1), (1, 2), (2, 3), (3, 3), (0, 3)]:
        want = sum(Fraction(float(wi)) * (Fraction(float(za)) - Fraction(float(shift[a]))) *
                   (Fraction(float(zb)) - Fraction(float(shift[b]))) for wi, za, zb in zip(w, Z[:, a], Z[:, b]))
        got = Fraction(float(s.hi[a, b])) + Fraction(float(s.lo[a, b]))
        assert abs(got - want) <= 2.0**-66 * abs(want), (a, b)


def test_partial_fit_after_loading_a_file_keeps_the_state_path(tmp_path):
    """A model read from a file has no sums (the file holds the float64 state): partial_fit then
    merges the state as before, and stays close to the exact fit on benign data."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=300)
    m = jaxlm.LinearRegression().partial_fit(X[:150], y[:150])
    m.save(tmp_path / "m.json")
    loaded = jaxlm.load(tmp_path / "m.json")
    loaded.partial_fit(X[150:], y[150:])
    full = jaxlm.LinearRegression().fit(X, y)
    np.testing.assert_allclose(loaded.coef_, full.coef_, rtol=1e-12)
