"""The mergeable state: any split of the rows, any merge order, gives one answer."""
import jax
import numpy as np
from hypothesis import given, settings, strategies as hst

from jaxlm.core import state as st
from jaxlm.core.exact import factor_from_gram, factor_from_r


def _coef_from(state, kind):
    state = jax.tree_util.tree_map(np.asarray, state)
    sxx, sxy, _ = (np.asarray(a) for a in st.moments(state))
    if kind == "qr":
        d = sxx.shape[0]
        f = factor_from_r(np.asarray(state.r)[:d, :d], 0.0, float(state.count))
    else:
        f = factor_from_gram(sxx, 0.0, float(state.count))
    return f.solve(sxy).T, np.asarray(state.mean_x), np.asarray(state.mean_y)


def _problem(seed, n, d, m):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + rng.normal(size=d) * 5
    Y = X @ rng.normal(size=(d, m)) + rng.normal(size=(n, m))
    w = rng.integers(1, 4, size=n).astype(float)
    return X, Y, w


@settings(max_examples=15, deadline=None)
@given(seed=hst.integers(0, 2**31), cuts=hst.lists(hst.integers(1, 99), max_size=6), kind=hst.sampled_from(["gram", "qr"]),
       order_seed=hst.integers(0, 1000))
def test_any_split_any_merge_order(seed, cuts, kind, order_seed):
    n, d, m = 100, 4, 2
    X, Y, w = _problem(seed, n, d, m)
    with jax.enable_x64(True):
        whole = st.update(st.init(d, m, kind=kind), X, Y, w)
        edges = [0] + sorted(set(cuts)) + [n]
        parts = [st.update(st.init(d, m, kind=kind), X[a:b], Y[a:b], w[a:b]) for a, b in zip(edges, edges[1:])]
        rng = np.random.default_rng(order_seed)
        # merge in a random tree order
        while len(parts) > 1:
            i = int(rng.integers(0, len(parts) - 1))
            a, b = parts[i], parts[i + 1]
            merged = st.merge(a, b) if rng.random() < 0.5 else st.merge(b, a)
            parts[i:i + 2] = [merged]
        ref, mx_ref, my_ref = _coef_from(whole, kind)
        got, mx, my = _coef_from(parts[0], kind)
    # Normwise: a float64 solve's error is bounded by ~κ·ε·‖β‖ for every entry, so a coefficient
    # that happens to be 1e-4 of the largest (hypothesis found seed=2571617, cuts=[1]: 4.7e-12 of its
    # own size, 5e-16 of ‖β‖) is held to 1e-12 of the largest, not of itself.
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.max(np.abs(ref)))
    np.testing.assert_allclose(mx, mx_ref, rtol=1e-12)
    np.testing.assert_allclose(my, my_ref, rtol=1e-12)
    np.testing.assert_allclose(float(parts[0].wsum), w.sum(), rtol=1e-15)


def test_state_moments_match_numpy():
    X, Y, w = _problem(1, 50, 3, 1)
    with jax.enable_x64(True):
        g = st.update(st.init(3, 1), X, Y, w)
        q = st.update(st.init(3, 1, kind="qr"), X, Y, w)
        mx = w @ X / w.sum()
        Xc = X - mx
        expect = Xc.T @ (w[:, None] * Xc)
        np.testing.assert_allclose(np.asarray(st.moments(g)[0]), expect, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(st.moments(q)[0]), expect, rtol=1e-12)


def _exact_moments(X, Y):
    """Centred co-moments and means of [X, Y] in exact rational arithmetic."""
    from fractions import Fraction as F
    Z = [[F(float(v)) for v in row] for row in np.concatenate([X, Y], axis=1)]
    n, p = len(Z), len(Z[0])
    mean = [sum(r[j] for r in Z) / n for j in range(p)]
    S = [[sum((r[a] - mean[a]) * (r[b] - mean[b]) for r in Z) for b in range(p)] for a in range(p)]
    return mean, S


def test_unit_weight_blocks_far_from_the_origin_are_centred_exactly(monkeypatch):
    """Unit-weight blocks whose columns sit far from the origin take the centred Gram at once (their
    first rows say so), or after the about-origin Gram found the cancellation (a sample that missed
    it): either way the state's means (double-double) and co-moments match exact rational ones."""
    rng = np.random.default_rng(5)
    n, k = 8000, st.SAMPLE_ROWS
    X = np.column_stack([1e9 + rng.uniform(0, 1, n), rng.normal(size=n), 3e4 + rng.normal(size=n) * 1e-2])
    Y = (X[:, 1:2] * 2.0 + rng.normal(size=(n, 1)))  # near the origin: only X decides the path
    hidden = X.copy()  # the sampled rows spread wide about 0, the rest sit at 1e9 and 3e4: only the whole cancels
    hidden[:k, 0], hidden[:k, 2] = rng.normal(size=k) * 1e6, rng.normal(size=k) * 1e3
    assert not st._far_from_origin(Y)
    centred = []
    real = st._gram_centred
    monkeypatch.setattr(st, "_gram_centred", lambda *a, **k: centred.append(k.get("unit")) or real(*a, **k))
    for data in (X, hidden):
        assert st._far_from_origin(data) == (data is X)  # hidden: the about-origin Gram first, then the check
        z = np.column_stack([data, Y])
        assert np.all(np.mean(z, 0)[[0, 2]] ** 2 > (st.CANCELLATION_LIMIT - 1) * np.var(z, 0)[[0, 2]])
        s = st.gram_of_batch(data, Y, np.ones(n))
        mean, S = _exact_moments(data, Y)
        got_mean = np.r_[s.mean_x + s.mean_x_lo, s.mean_y + s.mean_y_lo]
        got = np.block([[s.sxx, s.sxy], [s.sxy.T, s.syy]])
        want = np.array([[float(v) for v in row] for row in S])
        # a mean whose square exceeds ROUNDED_MEAN times the variance carries its rounding (double-double):
        # exact to the rounding of the column's spread; below that it is the float64 mean, to ~ε of itself
        sd, mu = np.sqrt(np.diag(want) / n), np.array([float(v) for v in mean])
        far = mu * mu > st.ROUNDED_MEAN * sd * sd
        bound = np.where(far, 8 * 2.0**-52 * sd, 64 * 2.0**-52 * (np.abs(mu) + sd))
        assert np.all(np.abs(got_mean - mu) <= bound)
        assert far[0] == (data is X)  # 1e9 + U(0, 1): its mean's rounding is kept; hidden's spread is 1e8
        scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
        assert np.max(np.abs(got - want) / scale) < 1e-12
    assert centred == [True, True]  # both blocks were centred (unit weights): X at once, hidden after the check
