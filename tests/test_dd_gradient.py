"""The refinement pass's double-double gradient (jaxlm.core.passes.gradient_reduction) against exact
rational sums of the same float64 numbers: Σ w r, Σ w (x − sx) r and Σ w r² to 2⁻⁷² of their
magnitudes (each row's r taken as the sum of the magnitudes of its terms y − sy, c, (x − sx)·β), for columns far from the origin (shifted) and not, weighted and not, one
and two targets, rows in C and in F order, blocks longer than the exact products' ROWS rows and than a
gradient piece (the pieces' scratch buffers reused from one size to the next)."""
from fractions import Fraction

import numpy as np
import pytest

from jaxlm.core import passes
from jaxlm.core.split import ROWS, column_top, skinny, skinny_t


def _exact(X, Y, w, coef, c, sx, sy):
    n, d = X.shape
    m = Y.shape[1]
    F = Fraction
    cf = [[F(float(v)) for v in row] for row in coef]
    g0, sse, gx = [F(0)] * m, [F(0)] * m, [[F(0)] * m for _ in range(d)]
    mag = [[F(0)] * m, [[F(0)] * m for _ in range(d)], [F(0)] * m]
    for i in range(n):
        xs = [F(float(X[i, j])) - F(float(sx[j])) for j in range(d)]
        wi = F(float(w[i]))
        for t in range(m):
            yt, ct = F(float(Y[i, t])) - F(float(sy[t])), F(float(c[t]))
            xb = [x * b for x, b in zip(xs, cf[t])]
            r = yt - ct - sum(xb)
            u = wi * r
            size = wi * (abs(yt) + abs(ct) + sum(abs(v) for v in xb))  # the terms of w·r
            g0[t] += u
            sse[t] += r * u
            mag[0][t] += size
            mag[2][t] += abs(r) * size
            for j in range(d):
                gx[j][t] += xs[j] * u
                mag[1][j][t] += abs(xs[j]) * size
    return (g0, gx, sse), mag


@pytest.mark.parametrize("seed", range(6))
def test_gradient_equals_rational_sums(seed, monkeypatch):
    # pieces of ROWS rows (the smallest): the 12,345-row blocks below then go in several pieces
    monkeypatch.setattr(passes, "GRADIENT_PIECE_BYTES", 1 << 12)
    rng = np.random.default_rng(seed)
    n = [700, ROWS + 300, 3 * ROWS + 11, 40_000][seed % 4] if seed < 4 else 9_000
    d, m = 1 + seed % 4, 1 + seed % 2
    X = rng.normal(size=(n, d)) * 10.0 ** rng.uniform(-3, 3, d) + rng.choice([0.0, 1.0, 1e6, -1e12], d)
    if seed % 3 == 0:
        X = np.round(X * 8) / 8  # values on a coarse grid: many exact differences
    beta = rng.normal(size=(m, d))
    Y = X @ beta.T + rng.normal(size=(n, m)) * 10.0 ** rng.uniform(-8, 0) + 5.0
    w = np.ones(n) if seed % 2 else rng.uniform(0, 2, n)
    if seed in (1, 2, 5):  # column-major rows (as the file readers give them): the buffers follow the layout
        X = np.asfortranarray(X)
    sx = np.where(np.abs(X.mean(axis=0)) > X.std(axis=0), X.mean(axis=0), 0.0)
    sy = np.where(rng.random(m) < 0.5, Y.mean(axis=0), 0.0)
    coef = beta * (1 + rng.normal(size=beta.shape) * 1e-9)
    c = (Y.mean(axis=0) - sy) - coef @ (X.mean(axis=0) - sx)
    red = passes.gradient_reduction(coef, c, sx, sy)
    acc = red.init()
    for s in range(0, n, 12_345):  # blocks of several pieces and a ragged end
        acc = red.merge(acc, red.update(red.init(), X[s:s + 12_345], Y[s:s + 12_345], w[s:s + 12_345]))
    got = passes._unflat(acc, d, m)[:3]
    want, mag = _exact(X, Y, w, coef, c, sx, sy)
    # Σ w (x − sx): measured (it sets the refinement's rate: float64 is enough) only where some column
    # is shifted; without a shift the fit takes Σ w x from the state and the pass leaves zeros
    gs = np.add(*passes._unflat(acc, d, m)[3])
    if np.any(sx):
        for j in range(d):
            ref = sum(Fraction(float(wi)) * (Fraction(float(x)) - Fraction(float(sx[j]))) for wi, x in zip(w, X[:, j]))
            size = sum(abs(Fraction(float(wi)) * (Fraction(float(x)) - Fraction(float(sx[j])))) for wi, x in zip(w, X[:, j]))
            assert abs(Fraction(float(gs[j])) - ref) <= 2.0**-50 * size, j
    else:
        assert not np.any(gs)
    for k, name in enumerate(("g0", "gx", "sse")):
        hi, lo = (np.ravel(a) for a in got[k])
        ref = np.ravel(np.array(want[k], dtype=object))
        scale = np.ravel(np.array(mag[k], dtype=object))
        for h, l, e, s in zip(hi, lo, ref, scale):
            err = abs(Fraction(float(h)) + Fraction(float(l)) - e)
            assert err <= 2.0**-72 * s, (name, float(err / s) if s else float(err))


@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (7, 5), (1001, 20), (4097, 50), (300, 600)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_column_top_is_each_columns_largest_magnitude(shape, order):
    """The split's grid comes from each column's largest magnitude: the grouped reduction of C-ordered
    rows (rows not a multiple of the group included) equals max |a| per column, computed plainly."""
    rng = np.random.default_rng(shape[0])
    a = np.asarray(rng.normal(size=shape) * 10.0 ** rng.integers(-5, 5, shape[1]), order=order)
    if shape[0] > 3:
        a[-1, 0] = -1e9  # the largest magnitude a negative value in the last, ungrouped row
    want = np.abs(a).max(axis=0) if shape[0] else np.zeros(shape[1])
    np.testing.assert_array_equal(column_top(a), want)
    if shape[0]:
        a[shape[0] // 2, -1] = np.nan
        assert np.isnan(column_top(a)[-1])


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize("order", ["C", "F"])
def test_skinny_products_equal_matmul(k, order):
    """Column-by-column products (thin side ≤ 4) and plain matmul (wider) both equal ``a @ b`` and
    ``a.T @ c``: exactly on integers small enough for every sum to be exact, as the split's are."""
    rng = np.random.default_rng(k)
    a = np.asarray(rng.integers(-2**20, 2**20, (3000, 7)).astype(float), order=order)
    b = rng.integers(-2**20, 2**20, (7, k)).astype(float)
    c = np.asarray(rng.integers(-2**20, 2**20, (3000, k)).astype(float), order=order)
    got, want = skinny(a, b), a.astype(object) @ b.astype(object)
    assert got.shape == (3000, k) and np.array_equal(got, want.astype(float))
    got_t, want_t = skinny_t(a, c), a.T.astype(object) @ c.astype(object)
    assert got_t.shape == (7, k) and np.array_equal(got_t, want_t.astype(float))
