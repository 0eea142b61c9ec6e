"""jaxlm.anova, jaxlm.table and the results' wald_test / t_test, against statsmodels."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm

import jaxlm


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    df["g"] = rng.integers(0, 15, 120)
    df["y"] = df.a + 0.5 * df.b + rng.normal(size=120) + rng.normal(size=15)[df.g]
    return df


def _fit(df, cols, **kw):
    return jaxlm.LinearRegression(**kw).fit(df[cols], df.y, **({"groups": df.g} if kw.get("cov_type") == "cluster"
                                                                 else {}))


def test_anova_equals_anova_lm(frame):
    ms = [_fit(frame, c) for c in (["a"], ["a", "b"], ["a", "b", "c"])]
    refs = [smf.ols(f, frame).fit() for f in ("y ~ a", "y ~ a + b", "y ~ a + b + c")]
    got, want = jaxlm.anova(*ms).to_frame(), anova_lm(*refs)
    for col in ("df_resid", "ssr", "F", "Pr(>F)"):
        np.testing.assert_allclose(got[col][1:], want[col][1:], rtol=1e-10)
    lr, p, df = refs[2].compare_lr_test(refs[1])
    assert got["LR"][2] == pytest.approx(lr, rel=1e-10) and got["Pr(>Chi2)"][2] == pytest.approx(p, rel=1e-9)
    with pytest.raises(jaxlm.InputError, match="nested"):
        jaxlm.anova(ms[2], ms[1])


@pytest.mark.parametrize("cov", ["nonrobust", "HC1", "cluster"])
def test_wald_and_t_tests_under_each_covariance(frame, cov):
    m = _fit(frame, ["a", "b", "c"], cov_type=cov)
    kw = {"cov_type": cov, "cov_kwds": {"groups": frame.g}} if cov == "cluster" else (
        {"cov_type": cov} if cov != "nonrobust" else {})
    ref = smf.ols("y ~ a + b + c", frame).fit(use_t=True, **kw)
    w = m.results_.wald_test("a = b, c = 0")
    rw = ref.f_test("a = b, c = 0")
    assert w.statistic == pytest.approx(float(rw.fvalue), rel=1e-9)
    assert w.p == pytest.approx(float(rw.pvalue), rel=1e-8)
    assert w.df_denom == pytest.approx(float(rw.df_denom))  # G − 1 = 14 under clustering
    t = m.results_.t_test("a - 2 * b = 0")
    rt = ref.t_test("a - 2 * b = 0")
    assert np.ravel(t.t)[0] == pytest.approx(float(np.ravel(rt.tvalue)[0]), rel=1e-9)
    with pytest.raises(jaxlm.InputError, match="unknown term|not a term|'d'"):
        m.results_.wald_test("d = 0")


def test_table_side_by_side(frame):
    m1, m2 = _fit(frame, ["a"]), _fit(frame, ["a", "b"], cov_type="cluster")
    t = jaxlm.table([m1, m2], titles=["plain", "clustered"])
    text = str(t)
    ref = smf.ols("y ~ a + b", frame).fit(cov_type="cluster", cov_kwds={"groups": frame.g})
    assert f"({ref.bse['b']:.3f})" in text and "cluster" in text and "clustered" in text
    for fmt in ("html", "markdown", "latex"):
        assert "clustered" in t.render(fmt)
