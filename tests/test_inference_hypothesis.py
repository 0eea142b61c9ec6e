"""Wald/t/F tests of linear restrictions, nested-model ANOVA, and regression tables.

References: statsmodels ``f_test``/``t_test``/``wald_test`` on the same fit with the same
covariance (non-robust, HC1, cluster with ``df = G − 1``), ``anova_lm``, ``compare_f_test`` and
``compare_lr_test``; every statistic and p-value to 1e-8 relative. jaxlm's side uses jaxlm's own
coefficients and covariances (regression_results, the cluster pass), so the whole path is tested.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

sm = pytest.importorskip("statsmodels.api")
pd = pytest.importorskip("pandas")

from jaxlm.core.errors import InputError  # noqa: E402
from jaxlm.core.exact import fit_exact  # noqa: E402
from jaxlm.inference import cluster as cl  # noqa: E402
from jaxlm.inference import hypothesis as hy  # noqa: E402
from jaxlm.inference import regression_results  # noqa: E402
from jaxlm.inference import table as tb  # noqa: E402
from jaxlm.reduce import memory  # noqa: E402

RTOL = 1e-8
RESTRICTIONS = ("x1 = x2, x3 = 0", "x1 - 2*x2 = 1", "2*(x1 + x3) = -x2 + 0.5, x1", "x1 = x2 = x3", "-x3")


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(a == b, 0.0, np.abs(a - b) / np.abs(b))
    return float(np.max(r))


def data(n=400, weights="none", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) + [0.0, 1.0, -2.0]
    g = rng.integers(0, 17, n)
    y = 1.0 + X @ [0.5, 0.45, 0.05] + rng.normal(size=n) + rng.normal(size=17)[g]
    w = rng.uniform(0.3, 2.0, n) if weights == "analytic" else np.ones(n)
    return X, y, w, g


def jaxlm_fit(X, y, w, fit_intercept, kind):
    b = memory.blocks_of(X, y[:, None], w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = fit_exact(b, X.shape[1], 1, fit_intercept=fit_intercept)
    names = ["x1", "x2", "x3"]
    (res,) = regression_results(sol, fit_intercept=fit_intercept, weights_kind=kind, batches=b, feature_names=names)
    return sol, res


def sm_fit(X, y, w, fit_intercept, **kw):
    exog = pd.DataFrame(X, columns=["x1", "x2", "x3"])
    if fit_intercept:
        exog.insert(0, "intercept", 1.0)
    return sm.WLS(y, exog, weights=w).fit(**kw)


@pytest.mark.parametrize("cov", ["nonrobust", "HC1", "cluster"])
@pytest.mark.parametrize("weights", ["none", "analytic"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_wald_and_t_tests_match_statsmodels(cov, weights, fit_intercept):
    X, y, w, g = data(weights=weights, seed=1)
    sol, res = jaxlm_fit(X, y, w, fit_intercept, "analytic" if weights == "analytic" else "frequency")
    if cov == "cluster":
        c = cl.clustered(memory.arrays_runner(X, y[:, None], w, g), sol, fit_intercept=fit_intercept,
                         weights_kind="analytic")
        V, df = c.cov[0], c.df
        ref = sm_fit(X, y, w, fit_intercept, cov_type="cluster", cov_kwds={"groups": g})
    else:
        V, df = res.cov(cov), res.df_resid
        ref = sm_fit(X, y, w, fit_intercept, **({} if cov == "nonrobust" else {"cov_type": cov}))
    assert df == getattr(ref, "df_resid_inference", ref.df_resid)
    for text in RESTRICTIONS:
        if not fit_intercept and "intercept" in text:
            continue
        got = hy.wald_test(res.coef, V, text, names=res.term_names, df=df)
        f = ref.f_test(text)
        assert rel(got.statistic, np.squeeze(f.fvalue)) <= RTOL, text
        assert rel(got.p, f.pvalue) <= RTOL and got.df_num == f.df_num and got.df_denom == f.df_denom
        chi = hy.wald_test(res.coef, V, text, names=res.term_names)
        ref_chi = ref.wald_test(text, use_f=False, scalar=True)
        assert rel(chi.statistic, ref_chi.statistic) <= RTOL and rel(chi.p, ref_chi.pvalue) <= RTOL
        t = hy.t_test(res.coef, V, text, names=res.term_names, df=df if ref.use_t else None)
        rt = ref.t_test(text)
        assert rel(t.effect, np.ravel(rt.effect)) <= RTOL and rel(t.std_error, np.ravel(rt.sd)) <= RTOL
        assert rel(t.t, np.ravel(rt.tvalue)) <= RTOL and rel(t.p, np.ravel(rt.pvalue)) <= RTOL


def test_matrix_restrictions_equal_the_string_form():
    X, y, w, _ = data(seed=2)
    _, res = jaxlm_fit(X, y, w, True, "frequency")
    V = res.cov()
    s = hy.wald_test(res.coef, V, "x1 = x2, x3 = 0.25", names=res.term_names, df=res.df_resid)
    R = np.array([[0, 1, -1, 0], [0, 0, 0, 1.0]])
    m = hy.wald_test(res.coef, V, (R, [0, 0.25]), names=res.term_names, df=res.df_resid)
    np.testing.assert_array_equal(s.R, R)
    np.testing.assert_array_equal(s.q, [0, 0.25])
    assert s.statistic == m.statistic and s.p == m.p
    only_r = hy.wald_test(res.coef, V, R, names=res.term_names, df=res.df_resid)
    assert only_r.statistic == hy.wald_test(res.coef, V, "x1 = x2, x3 = 0", names=res.term_names,
                                            df=res.df_resid).statistic


def test_term_names_that_are_not_identifiers():
    names = ["intercept", "C(firm)[T.b]", "log(x)", "a:b", "x", "x1"]
    R, q, labels = hy.parse_restrictions("C(firm)[T.b] = 2*log(x), a:b + x = x1 - 3", names)
    np.testing.assert_array_equal(R, [[0, 1, -2, 0, 0, 0], [0, 0, 0, 1, 1, -1]])
    np.testing.assert_array_equal(q, [0, -3])
    assert labels == ("C(firm)[T.b] = 2*log(x)", "a:b + x = x1 - 3")


@pytest.mark.parametrize("text,match", [
    ("x1 = x9", "unknown term 'x9'"),
    ("x1**2 = 0", r"'\*\*'"),
    ("x1*x2 = 0", "product of two terms"),
    ("x1/2 = 0", "'/'"),
    ("__import__('os').system('true')", "function call"),
    ("x1.real = 0", "attribute"),
    ("x1 == x2", "empty side"),
    ("x1 = x1", "reduces to a constant"),
    ("1 = 1", "reduces to a constant"),
    ("1e999*x1 = 0", "non-finite"),
    ("x1 = x2, x1 = x2", "linearly independent"),
    ("x1 = x2,, x3", "must not be empty"),
    ("x1 = 'a'", "literal"),
    ("True*x1 = 0", "literal"),
    ("x1 = x2 if x3 else 0", "IfExp"),
    ("x1" + " + x1" * 6000, "at most 10000 characters"),
])
def test_restrictions_outside_the_grammar_are_refused(text, match):
    with pytest.raises(InputError, match=match) as e:
        hy.wald_test(np.ones(4), np.eye(4), text, names=["intercept", "x1", "x2", "x3"], df=10)
    assert e.value.param == "restrictions"


def test_bad_test_inputs_are_input_errors():
    with pytest.raises(InputError, match="shape"):
        hy.wald_test(np.ones(3), np.eye(3), (np.ones((1, 4)), [0]), df=5)
    with pytest.raises(InputError, match="df must be"):
        hy.wald_test(np.ones(3), np.eye(3), "x0 = 0", df=0)
    with pytest.raises(InputError, match="cov must be"):
        hy.wald_test(np.ones(3), np.eye(4), "x0 = 0")
    with pytest.raises(InputError, match="not estimable"):
        hy.wald_test(np.array([1.0, np.nan, 2.0]), np.eye(3), "x1 = 0")


def test_singular_restriction_covariance_uses_its_rank_like_statsmodels():
    X, y, w, g = data(n=200, seed=3)
    g = g % 2  # two clusters: the cluster covariance has rank 1
    sol, res = jaxlm_fit(X, y, w, True, "frequency")
    c = cl.clustered(memory.arrays_runner(X, y[:, None], w, g), sol, fit_intercept=True)
    ref = sm_fit(X, y, w, True, cov_type="cluster", cov_kwds={"groups": g})
    got = hy.wald_test(res.coef, c.cov[0], "x1 = 0, x2 = 0", names=res.term_names, df=c.df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = ref.f_test("x1 = 0, x2 = 0")
    assert got.df_num == f.df_num == 1 and got.note is not None
    assert rel(got.statistic, np.squeeze(f.fvalue)) <= RTOL and rel(got.p, f.pvalue) <= RTOL


# ------------------------------------------------------------------------------------ anova
@pytest.mark.parametrize("weights", ["none", "analytic"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_anova_matches_anova_lm_and_compare_tests(weights, fit_intercept):
    from statsmodels.stats.anova import anova_lm

    X, y, w, _ = data(weights=weights, seed=4)
    kind = "analytic" if weights == "analytic" else "frequency"
    ours, refs = [], []
    for cols in ([0], [0, 1], [0, 1, 2]):
        b = memory.blocks_of(X[:, cols], y[:, None], w)
        sol = fit_exact(b, len(cols), 1, fit_intercept=fit_intercept)
        ours.append(regression_results(sol, fit_intercept=fit_intercept, weights_kind=kind, batches=b,
                                       feature_names=[f"x{j + 1}" for j in cols])[0])
        exog = sm.add_constant(X[:, cols]) if fit_intercept else X[:, cols]
        refs.append(sm.WLS(y, exog, weights=w).fit())
    got = hy.anova(*ours)
    table = anova_lm(*refs)
    for ours_col, ref_col in (("df_resid", "df_resid"), ("ssr", "ssr"), ("df_diff", "df_diff"), ("ss_diff", "ss_diff"),
                              ("F", "F"), ("p_F", "Pr(>F)")):
        a, b_ = np.asarray(getattr(got, ours_col))[1:], table[ref_col].to_numpy()[1:]
        assert rel(a, b_) <= RTOL, ours_col
    two = hy.anova(ours[0], ours[2])
    f, p, ddf = refs[2].compare_f_test(refs[0])
    assert rel(two.F[1], f) <= RTOL and rel(two.p_F[1], p) <= RTOL and two.df_diff[1] == ddf
    lr = refs[2].compare_lr_test(refs[0])
    assert rel(two.LR[1], lr[0]) <= RTOL and rel(two.p_LR[1], lr[1]) <= RTOL
    frame = got.to_frame()
    assert list(frame.columns[:6]) == list(table.columns) and np.isnan(frame["F"][0])


def test_anova_of_non_nested_models_is_an_input_error():
    fit = lambda names, sse, df, n=100.0: hy.ModelFit(tuple(names), sse, df, n)  # noqa: E731
    with pytest.raises(InputError, match="nested") as e:
        hy.anova(fit(["intercept", "x1"], 10.0, 98), fit(["intercept", "x2", "x3"], 9.0, 97))
    assert e.value.param == "models"
    with pytest.raises(InputError, match="same rows"):
        hy.anova(fit(["intercept"], 10.0, 99), fit(["intercept", "x1"], 9.0, 97, n=99.0))
    with pytest.raises(InputError, match="at least as well"):
        hy.anova(fit(["intercept"], 8.0, 99), fit(["intercept", "x1"], 9.0, 98))
    with pytest.raises(InputError, match="at least two"):
        hy.anova(fit(["intercept"], 8.0, 99))
    with pytest.raises(InputError, match="term_names"):
        hy.anova(fit(["intercept"], 8.0, 99), object())


# ------------------------------------------------------------------------------------ tables
def _records():
    X, y, w, g = data(seed=5)
    sol, res = jaxlm_fit(X, y, w, True, "frequency")
    c = cl.clustered(memory.arrays_runner(X, y[:, None], w, g), sol, fit_intercept=True)
    se = np.sqrt(np.diag(c.cov[0]))
    r1 = tb.record(res, cov="HC1", title="OLS")
    r2 = tb.ModelRecord(("x1", "x_2 & <b>|"), np.array([0.5, -1.2345]), np.array([0.1, 2.0]), 400, 0.4321,
                        fe=("firm",), cov_kind="CR1 (firm)", df=16, extra=(("Within R²", 0.25),))
    return res, se, r1, r2


def test_table_text_has_every_number_and_the_stars_of_the_p_values():
    res, _, r1, r2 = _records()
    t = tb.table([r1, r2])
    text = str(t)
    tab = res.coef_table(cov="HC1")
    for b, s, p in zip(tab.coef, tab.std_errors, tab.p_values):
        stars = "***" if p < 0.01 else "**" if p < 0.05 else "*" if p < 0.1 else ""
        assert f"{b:.3f}{stars}" in text and f"({s:.3f})" in text
    assert "0.500***" in text  # t = 5 on 16 df
    assert f"{-1.2345:.3f}" in text and f"{-1.2345:.3f}*" not in text  # |t| = 0.62: no star
    assert "firm fixed effects" in text and "CR1 (firm)" in text and "HC1" in text
    assert "Within R²" in text and "0.250" in text and f"{res.r_squared:.3f}" in text and "400" in text
    plain = tb.table([r1, r2], stars=False, digits=5)
    assert "*" not in str(plain).split("\n")[3] and f"{tab.coef[0]:.5f}" in str(plain)


def test_table_formats_escape_names():
    _, _, r1, r2 = _records()
    t = tb.table([r1, r2])
    html = t.render("html")
    assert "x_2 &amp; &lt;b&gt;|" in html and "<b>|" not in html and "<sup>***</sup>" in html
    md = t.render("markdown")
    assert r"x\_2 & \<b\>\|" in md and r"\*\*\*" in md
    tex = t.render("latex")
    assert r"x\_2 \& \textless{}b\textgreater{}\textbar{}" in tex and r"$^{***}$" in tex and r"\toprule" in tex
    assert tex.count(r"\\") >= 10


def test_table_bad_inputs_are_input_errors():
    _, _, r1, _ = _records()
    with pytest.raises(InputError, match="at least one"):
        tb.table([])
    with pytest.raises(InputError, match="ModelRecord"):
        tb.table([r1, {"coef": 1}])
    with pytest.raises(InputError, match="one coefficient and one standard error"):
        tb.table([r1._replace(se=np.ones(2))])
    with pytest.raises(InputError, match="fmt"):
        tb.table([r1]).render("docx")
    with pytest.raises(InputError, match="digits"):
        tb.table([r1], digits=-1)
