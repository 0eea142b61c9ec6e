"""jaxlm.core.triangular.solve_triangular against LAPACK (scipy.linalg.solve_triangular) and exact
rational arithmetic: backward stable like dtrsm, forward error within the condition number's bound."""
from fractions import Fraction

import numpy as np
import pytest

from jaxlm.core.triangular import solve_triangular

sla = pytest.importorskip("scipy.linalg")
EPS = np.finfo(np.float64).eps


def _factor(d, cond, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d + 7, d)) @ np.diag(np.logspace(0, np.log10(cond), d))
    return np.linalg.qr(a, mode="r"), rng.normal(size=(d, 3))


@pytest.mark.parametrize("d", [1, 2, 3, 10, 60, 257])
@pytest.mark.parametrize("trans", [False, True])
def test_backward_stable_as_lapack(d, trans):
    r, b = _factor(d, 1e8, d)
    z = solve_triangular(r, b, trans=trans)
    ref = sla.solve_triangular(r, b, trans="T" if trans else "N")
    m = r.T if trans else r
    # componentwise backward error |Rz − b| / (|R||z|), the measure dtrsm's bound is stated in
    back = np.max(np.abs(m @ z - b) / (np.abs(m) @ np.abs(z)))
    back_ref = np.max(np.abs(m @ ref - b) / (np.abs(m) @ np.abs(ref)))
    assert back <= d * EPS and back_ref <= d * EPS
    np.testing.assert_allclose(z, ref, rtol=0, atol=1e-15 * d * 1e8 * np.max(np.abs(ref)))
    z1 = solve_triangular(r, b[:, 0], trans=trans)  # 1-D b (a BLAS dot, not a gemv: other roundings)
    assert z1.shape == (d,) and np.max(np.abs(m @ z1 - b[:, 0]) / (np.abs(m) @ np.abs(z1))) <= d * EPS


def test_exact_on_a_small_factor():
    """Forward error against exact rational back substitution of the same float64 numbers."""
    r, b = _factor(6, 1e3, 1)
    b = b[:, 0]
    for trans in (False, True):
        m = [[Fraction(float(v)) for v in row] for row in (r.T if trans else r)]
        rhs = [Fraction(float(v)) for v in b]
        n = len(rhs)
        z = [Fraction(0)] * n
        order = range(n) if trans else range(n - 1, -1, -1)
        for i in order:
            s = sum((m[i][j] * z[j] for j in range(n) if j != i), Fraction(0))
            z[i] = (rhs[i] - s) / m[i][i]
        got = solve_triangular(r, b, trans=trans)
        want = np.array([float(v) for v in z])
        assert np.max(np.abs(got - want) / np.abs(want)) <= 1e3 * 8 * EPS


def test_lower_part_is_not_read():
    r, b = _factor(5, 10.0, 2)
    noisy = r + np.tril(np.full_like(r, 7.0), -1)
    for trans in (False, True):
        np.testing.assert_array_equal(solve_triangular(noisy, b, trans=trans), solve_triangular(r, b, trans=trans))
