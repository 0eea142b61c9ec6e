"""jaxlm.core.special (t and F tails, the t quantile, I_x(a, b)) against SciPy and exact references.

The reference is ``scipy.special`` evaluated where it is well-conditioned (the F tail as
``betainc`` of the smaller of x, y = 1 − x, so that forming x from F costs no digits). SciPy is
not exact everywhere on these grids; where it disagrees with us by more than the tolerance, a
60-digit mpmath evaluation (the classical continued fraction, an algorithm independent of ours)
decides, and the test requires it to side with us and against SciPy. The cases found:

- ``stdtr(1, t)`` for |t| < 1e-4: up to 4e-9 off (the Cauchy closed form shows it; df = 1 is
  tested against ``2/π·atan2(1, |t|)`` instead);
- ``betainc(a, b, x)`` with b ≥ 1e5 and a < 10 near its median (x ~ 1e-6): up to 1e-10 off;
  ``betainc(½, ½, x)`` for x within 1e-10 of 1: up to 4e-11 off (the arcsine law shows it);
- ``fdtrc(d1, d2, f)`` with d2 ≥ 1e5: up to 3e-10 off (it forms x = d2/(d2 + d1 f) ≈ 1 first);
- ``stdtrit(df, p)`` for |p − ½| < 1e-3 (up to 8e-6 off at p = ½ − 1e-12) and, beyond
  |t| ~ 1e53, a factor of 2 off (the closed forms of df = 1, 2 show it).

Tolerance: 1e-12 relative everywhere (measured: ≤ 3e-13 on these grids, the tails included;
the far tails carry an inherent error ~ε·|d ln p / d ln t| = ε·t² from the rounding of t).
"""
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import subprocess_env

from jaxlm.core import special as js

sp = pytest.importorskip("scipy.special")
mp = pytest.importorskip("mpmath")

TOL = 1e-12
SMALLEST = 1e-300  # references below this are not compared (relative error of subnormals)


# ----------------------------------------------------------------------------- references
def _mp_ibeta(a, b, x, y=None) -> tuple:
    """(I_x(a, b), 1 − I_x(a, b)) to 60 digits: the classical continued fraction (Numerical
    Recipes' ``betacf``, modified Lentz) on the side where it converges, prefactor from
    ``mp.loggamma``; y = 1 − x (exact: pass it where x is not a float)."""
    with mp.workdps(60):
        a, b, x = mp.mpf(a), mp.mpf(b), mp.mpf(x)
        y = 1 - x if y is None else mp.mpf(y)
        if x == 0 or y == 0:
            return (mp.mpf(0), mp.mpf(1)) if x == 0 else (mp.mpf(1), mp.mpf(0))
        if x > (a + 1) / (a + b + 2):
            w1, w = _mp_ibeta(b, a, y, x)
            return w, w1
        front = mp.exp(a * mp.log(x) + b * mp.log(y) - (mp.loggamma(a) + mp.loggamma(b) - mp.loggamma(a + b))) / a
        c, d = mp.mpf(1), 1 / (1 - (a + b) * x / (a + 1))
        h = d
        for m in range(1, 10**7):
            for aa in (m * (b - m) * x / ((a - 1 + 2 * m) * (a + 2 * m)),
                       -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1 + 2 * m))):
                d = 1 / (1 + aa * d)
                c = 1 + aa / c
                h *= d * c
            if abs(d * c - 1) < mp.mpf(10) ** -50:
                break
        w = front * h
        return w, 1 - w


def _mp_t2(df, t):
    """P(|T| ≥ |t|) to 60 digits."""
    with mp.workdps(60):
        df, t2 = mp.mpf(df), mp.mpf(t) ** 2
        return _mp_ibeta(df / 2, mp.mpf(1) / 2, df / (df + t2), t2 / (df + t2))[0]


def _mp_fdtrc(d1, d2, f):
    with mp.workdps(60):
        d1, d2, f = mp.mpf(d1), mp.mpf(d2), mp.mpf(f)
        return _mp_ibeta(d2 / 2, d1 / 2, d2 / (d2 + d1 * f), d1 * f / (d2 + d1 * f))[0]


def _mp_stdtrit(df, p, start):
    """The t quantile to 60 digits: secant iterations on the 60-digit distribution function."""
    with mp.workdps(60):
        p = mp.mpf(p)
        cdf = lambda t: (_mp_t2(df, t) / 2 if t < 0 else 1 - _mp_t2(df, t) / 2) - p  # noqa: E731
        return mp.findroot(cdf, (mp.mpf(start), mp.mpf(start) * (1 + mp.mpf(10) ** -8)), solver="secant", tol=1e-50)


def _rel(got, want):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(np.asarray(got, dtype=np.float64) - want) / np.abs(want)


def _agree(ours, scipy_ref, exact, points, *, most_off: int):
    """``ours`` within TOL of SciPy's reference, or — at most ``most_off`` points — of the 60-digit
    ``exact(*point)``, which must then show SciPy off."""
    ours, scipy_ref = np.ravel(ours), np.ravel(scipy_ref)
    keep = np.abs(scipy_ref) > SMALLEST
    off = np.flatnonzero(keep & ~(_rel(ours, scipy_ref) <= TOL))
    assert len(off) <= most_off, [tuple(float(c[i]) for c in points) for i in off[:10]]
    for i in off:
        e = exact(*(float(c.ravel()[i]) for c in points))
        assert float(abs((ours[i] - e) / e)) <= TOL, (tuple(float(c.ravel()[i]) for c in points), ours[i], e)
        assert float(abs((scipy_ref[i] - e) / e)) > TOL  # SciPy is the one that is off
    return int(keep.sum())


DFS = np.array([1.5, 2, 2.5, 3, 4.7, 7, 10, 15.3, 30, 47, 100, 333.3, 1e3, 3e3, 1e4, 3.7e4, 1e5, 1e6, 1e7])
TS = np.concatenate([[0.0], np.geomspace(1e-10, 1e3, 80)])


# ----------------------------------------------------------------------------- Student t
def test_t_two_sided_matches_scipy():
    D, T = np.meshgrid(DFS, TS, indexing="ij")
    ours = js.t_sf2(D, T)
    ref = 2.0 * sp.stdtr(D, -T)
    assert _agree(ours, ref, _mp_t2, (D, T), most_off=0) > 1400
    assert np.all(ours[:, 0] == 1.0)
    # the sign of t does not matter, and the cdf's two halves are the two tails
    np.testing.assert_array_equal(js.t_sf2(D, -T), ours)
    np.testing.assert_array_equal(js.stdtr(D, -T), 0.5 * ours)


def test_t_cdf_matches_scipy():
    D, T = np.meshgrid(DFS, np.concatenate([-TS[::-1], TS]), indexing="ij")
    _agree(js.stdtr(D, T), sp.stdtr(D, T), lambda d, t: 1 - _mp_t2(d, t) / 2 if t > 0 else _mp_t2(d, t) / 2,
           (D, T), most_off=0)


@pytest.mark.parametrize("df", [1, 2])
def test_t_closed_forms(df):
    """ν = 1 (Cauchy): p = 2/π·atan(1/|t|); ν = 2: p = 1 − |t|/√(2 + t²) = 2/(√(2+t²)(√(2+t²) + |t|)).
    (SciPy's stdtr(1, t) is 4e-9 off near t = 0: 2·stdtr(1, −1e-8) = 1 − 9.5e-9 for 1 − 6.4e-9.)"""
    t = np.concatenate([np.geomspace(1e-12, 1e6, 200), [1e50, 1e150]])
    if df == 1:
        want = np.array([math.atan2(1.0, v) / (math.pi / 2) for v in t])
    else:
        q = np.sqrt(2.0 + t * t)
        want = 2.0 / (q * (q + t))
    assert np.max(_rel(js.t_sf2(df, t), want)) <= TOL


def test_t_below_the_smallest_normal_float_as_scipy():
    """Below 2.2e-308, SciPy returns 0 where the prefactor xᵃyᵇ/B(a, b) underflows and the
    (subnormal) value otherwise; statsmodels' p-values are SciPy's, so ours follow the same rule."""
    ts = np.geomspace(20, 1e160, 20000)
    for df in (2.5, 3, 10, 47, 100, 949, 997, 1e4, 1e6):
        ours, ref = js.t_sf2(df, ts), 2.0 * sp.stdtr(df, -ts)
        tiny = ref < 2.3e-308
        np.testing.assert_array_equal(ours[tiny] == 0, ref[tiny] == 0)
        assert np.max(np.abs(ours[tiny] - ref[tiny])) <= 1e-12 * 2.3e-308


# ----------------------------------------------------------------------------- F
def test_f_survival_matches_scipy():
    d1s = np.array([1, 1.5, 2, 3, 5, 7.5, 10, 20, 50, 100, 1e3, 1e4, 1e5, 1e6, 1e7])
    d2s = np.array([1, 1.5, 2, 3, 4.7, 10, 30, 47, 100, 1e3, 1e4, 1e5, 1e6, 1e7])
    fs = np.concatenate([[0.0], np.geomspace(1e-8, 1e4, 60)])
    A, B, F = np.meshgrid(d1s, d2s, fs, indexing="ij")
    ours = js.fdtrc(A, B, F)
    x, y = B / (B + A * F), A * F / (B + A * F)  # SciPy on the smaller of x, y: no digits lost forming x
    ref = np.where(x <= 0.5, sp.betainc(B / 2, A / 2, x), sp.betaincc(A / 2, B / 2, y))
    assert _agree(ours, ref, _mp_fdtrc, (A, B, F), most_off=12) > 11000
    # scipy.special.fdtrc itself, where it forms x = d2/(d2 + d1 f) without loss (d2 ≤ 1e4)
    small = B <= 1e4
    _agree(ours[small], sp.fdtrc(A, B, F)[small], _mp_fdtrc, (A[small], B[small], F[small]), most_off=12)
    assert np.all(ours[..., 0] == 1.0)


# ----------------------------------------------------------------------------- I_x(a, b)
def test_betainc_matches_scipy():
    ps = np.array([0.05, 0.1, 0.5, 1, 1.5, 2.5, 3, 7.9, 8, 20, 100, 1e3, 1e5, 1e7])
    xs = np.concatenate([[0.0, 1.0], np.geomspace(1e-12, 0.5, 40), 1 - np.geomspace(1e-12, 0.5, 40)[::-1]])
    A, B, X = np.meshgrid(ps, ps, xs, indexing="ij")
    exact = _mp_ibeta
    _agree(js.betainc(A, B, X), sp.betainc(A, B, X), lambda a, b, x: exact(a, b, x)[0], (A, B, X), most_off=12)
    _agree(js.betaincc(A, B, X), sp.betaincc(A, B, X), lambda a, b, x: exact(a, b, x)[1], (A, B, X), most_off=12)
    assert np.max(np.abs(js.betainc(A, B, X) + js.betaincc(A, B, X) - 1.0)) <= 2.3e-16


def test_betainc_arcsine_law():
    """I_x(½, ½) = 2/π·asin(√x) (SciPy's betainc is 4e-11 off within 1e-10 of x = 1)."""
    x = np.concatenate([np.geomspace(1e-300, 0.5, 100), 1 - np.geomspace(1e-16, 0.5, 100)])
    with mp.workdps(40):
        want = np.array([float(2 / mp.pi * mp.asin(mp.sqrt(mp.mpf(v)))) for v in x])
        want_c = np.array([float(2 / mp.pi * mp.asin(mp.sqrt(1 - mp.mpf(v)))) for v in x])
    assert np.max(_rel(js.betainc(0.5, 0.5, x), want)) <= TOL
    assert np.max(_rel(js.betaincc(0.5, 0.5, x), want_c)) <= TOL


# ----------------------------------------------------------------------------- the t quantile
def test_t_quantile_matches_scipy():
    dfs = np.array([0.3, 1, 1.5, 2, 3, 4.7, 10, 47, 100, 1e3, 1e4, 1e5, 1e6, 1e7])
    ps = np.concatenate([np.geomspace(1e-100, 0.4999, 50), [0.49995, 0.4999999, 0.5 - 1e-12],
                         1 - np.geomspace(1e-16, 0.4999, 30)])
    D, P = np.meshgrid(dfs, ps, indexing="ij")
    ours = js.stdtrit(D, P)
    ref = sp.stdtrit(D, P)
    finite = np.abs(ref) < 1e50  # beyond, SciPy's stdtrit is a factor of 2 off (test_t_quantile_closed_forms)
    _agree(ours[finite], ref[finite], lambda d, p: _mp_stdtrit(d, p, js.stdtrit(d, p)), (D[finite], P[finite]),
           most_off=3 * len(dfs))
    upper = P > 0.5  # symmetric (1 − p is exact for p ≥ ½)
    np.testing.assert_array_equal(js.stdtrit(D[upper], 1.0 - P[upper]), -ours[upper])


@pytest.mark.parametrize("df", [1, 2])
def test_t_quantile_closed_forms(df):
    """ν = 1: t = −1/tan(πp); ν = 2: t = (2p − 1)/√(2p(1 − p)); p from 1e-300 to 1 − 1e-16."""
    p = np.concatenate([np.geomspace(1e-300, 0.49, 300), [0.4999, 0.5 - 1e-10, 0.5 + 1e-10, 0.5001],
                        1 - np.geomspace(1e-16, 0.49, 100)])
    with mp.workdps(40):
        if df == 1:
            want = np.array([float(-1 / mp.tan(mp.pi * mp.mpf(v))) for v in p])
        else:
            want = np.array([float((2 * mp.mpf(v) - 1) / mp.sqrt(2 * mp.mpf(v) * (1 - mp.mpf(v)))) for v in p])
    assert np.max(_rel(js.stdtrit(df, p), want)) <= TOL


def test_t_quantile_round_trip():
    rng = np.random.default_rng(3)
    df = np.exp(rng.uniform(0, math.log(1e7), 300))
    p = np.exp(rng.uniform(math.log(1e-200), math.log(0.5), 300))
    t = js.stdtrit(df, p)
    # a relative error δ of t moves p by δ·|d ln p/d ln t| = δ(ν + 1)t²/(ν + t²); the tail's own
    # evaluation errs by ~ε|ln p| (ν/2·ln x with |ln x| up to |ln p|)
    with np.errstate(over="ignore"):
        slope = (df + 1) / (df / (t * t) + 1)
    assert np.all(_rel(js.stdtr(df, t), p) <= 2.3e-16 * (4 * slope + np.abs(np.log(p))) + 1e-14)


# ----------------------------------------------------------------------------- edges
def test_edges_and_types():
    assert isinstance(js.t_sf2(10, 2.0), float) and isinstance(js.stdtrit(10.0, 0.975), float)
    assert js.t_sf2(np.array([5.0, 6.0]), 2.0).shape == (2,)
    assert js.fdtrc(np.ones((2, 3)), 10.0, np.array([1.0, 2.0, 3.0])).shape == (2, 3)
    nan = math.nan
    for v in (js.t_sf2(0, 1.0), js.t_sf2(-1, 1.0), js.t_sf2(nan, 1.0), js.t_sf2(5, nan), js.stdtr(5, nan),
              js.fdtrc(0, 5, 1.0), js.fdtrc(5, -1, 1.0), js.fdtrc(2, 5, nan), js.stdtrit(0, 0.5),
              js.stdtrit(5, 1.5), js.stdtrit(5, -0.1), js.stdtrit(5, nan), js.betainc(1, 1, 1.5),
              js.betainc(0, 1, 0.5), js.betainc(1, -2, 0.5)):
        assert math.isnan(v)
    assert js.t_sf2(5, math.inf) == 0.0 and js.t_sf2(5, -math.inf) == 0.0 and js.t_sf2(5, 0.0) == 1.0
    assert js.stdtr(5, -math.inf) == 0.0 and js.stdtr(5, math.inf) == 1.0 and js.stdtr(5, 0.0) == 0.5
    assert js.fdtrc(3, 5, 0.0) == 1.0 and js.fdtrc(3, 5, math.inf) == 0.0 and js.fdtrc(3, 5, -1.0) == 1.0
    assert js.stdtrit(5, 0.0) == -math.inf and js.stdtrit(5, 1.0) == math.inf and js.stdtrit(5, 0.5) == 0.0
    assert js.stdtrit(0.3, 1e-300) == -math.inf  # |t| ~ 1e1000: beyond float64
    # |t| beyond 1e154 (t²/ν overflows): the tail ~ (ν/t²)^(ν/2) is still representable for ν < 2
    t = -1.4702403419047286e+194
    with mp.workdps(40):
        want = float(_mp_ibeta(1.0243080469969246 / 2, 0.5, 1.0243080469969246 / (mp.mpf(t) ** 2 + 1.0243080469969246))[0] / 2)
    assert abs(js.stdtr(1.0243080469969246, t) / want - 1) <= TOL
    assert abs(js.fdtrc(1.0, 1.5, 1e308) / float(_mp_fdtrc(1.0, 1.5, 1e308)) - 1) <= TOL
    assert js.betainc(2, 3, 0.0) == 0.0 and js.betainc(2, 3, 1.0) == 1.0 and js.betaincc(2, 3, 1.0) == 0.0
    # a very large ν (the normal limit) and huge parameters still converge
    z = 1.959963984540054  # the normal quantile; t = z + (z³ + z)/(4ν) + O(ν⁻²)
    assert abs(js.stdtrit(1e12, 0.975) - (z + (z**3 + z) / 4e12)) <= 1e-15 * z
    assert abs(js.betainc(1e10, 1e10, 0.5) - 0.5) <= 1e-13


def test_cli_linear_fit_imports_no_scipy(tmp_path):
    """``jaxlm fit`` of a CSV (summary with p-values, F and intervals; exact solver) imports no
    SciPy: scipy.special and scipy.linalg cost ~0.1 s each of that process."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2))
    y = x @ [1.0, 2.0] + rng.normal(size=30)
    (tmp_path / "d.csv").write_text("a,b,y\n" + "".join(f"{u!r},{v!r},{w!r}\n" for (u, v), w in
                                                        zip(x.tolist(), y.tolist())))
    code = ("import sys\n"
            "from jaxlm.cli.main import main\n"
            "assert main(['fit', 'd.csv', '--target', 'y', '--quiet']) == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(),
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "P>|t|" in r.stdout and "Prob (F-statistic)" in r.stdout and "[0.025" in r.stdout, r.stdout
    assert r.stdout.strip().splitlines()[-1] == "[]"
