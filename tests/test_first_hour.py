"""What a new user meets first (issue "first hour"): each bug has a test against statsmodels."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import jaxlm
from conftest import subprocess_env

FORMULAS = ["invest ~ value + C(firm, Treatment('IBM'))", "invest ~ value + C(firm, contr.treatment('IBM'))",
            "invest ~ value + C(firm, Treatment(reference='IBM'))"]


@pytest.fixture(scope="module")
def grunfeld_like():
    rng = np.random.default_rng(0)
    firm = np.repeat(["GM", "IBM", "GE", "Union Oil"], 15)
    value = rng.uniform(10, 100, 60)
    invest = 3 + 0.1 * value + pd.Series(firm).map({"GM": 5.0, "IBM": -2.0, "GE": 1.0, "Union Oil": 0.0}).to_numpy()
    return pd.DataFrame({"invest": invest + rng.normal(size=60), "value": value, "firm": firm})


@pytest.mark.parametrize("formula", FORMULAS)
def test_string_base_level_python(grunfeld_like, formula):
    df = grunfeld_like
    m = jaxlm.fit_table(df, formula=formula)
    ref = smf.ols(formula.replace("contr.treatment('IBM')", "Treatment('IBM')"), df).fit()
    assert not any("IBM" in str(c).split("[")[-1] for c in m.feature_names_in_)  # IBM is the base
    np.testing.assert_allclose(np.r_[m.intercept_, m.coef_], _sm_order(ref, m), rtol=1e-10)


def _sm_order(ref, m):
    """statsmodels' parameters in jaxlm's order (intercept, then jaxlm's features)."""
    p = ref.params
    names = ["Intercept"] + [str(c) for c in m.feature_names_in_]
    alias = {n: n.replace("contr.treatment('IBM')", "Treatment('IBM')") for n in names}
    return np.array([p[alias[n]] for n in names])


@pytest.mark.parametrize("formula", FORMULAS[:2])
def test_string_base_level_cli(grunfeld_like, tmp_path, formula):
    data = tmp_path / "g.csv"
    grunfeld_like.to_csv(data, index=False)
    r = subprocess.run([sys.executable, "-m", "jaxlm", "fit", str(data), "--formula", formula, "--save",
                        str(tmp_path / "m.json"), "--quiet"], capture_output=True, text=True, env=subprocess_env())
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "m.json").read_text())
    ref = smf.ols(FORMULAS[0], grunfeld_like).fit()
    coef = np.ravel(doc["coef"])
    assert len(coef) == len(doc["features"]) == 4
    got = dict(zip(doc["features"], coef))
    for name, value in got.items():
        assert value == pytest.approx(ref.params[name.replace("contr.treatment('IBM')", "Treatment('IBM')")],
                                      rel=1e-10)


def test_formula_model_predicts_from_a_dataframe(grunfeld_like, tmp_path):
    df = grunfeld_like
    ref = smf.ols(FORMULAS[0], df).fit()
    m = jaxlm.fit_table(df, formula=FORMULAS[0])
    np.testing.assert_allclose(m.predict(df), ref.predict(df), rtol=1e-12)
    iv = m.predict_interval(df.iloc[:5])
    frame = ref.get_prediction(df.iloc[:5]).summary_frame(alpha=0.05)
    np.testing.assert_allclose(iv.lower, frame["mean_ci_lower"], rtol=1e-10)
    m.save(tmp_path / "m.json")
    loaded = jaxlm.load(tmp_path / "m.json")
    np.testing.assert_allclose(loaded.predict(df), ref.predict(df), rtol=1e-12)
    with pytest.raises(jaxlm.InputError, match="'firm'"):
        m.predict(df.drop(columns="firm"))
    with pytest.raises(jaxlm.InputError, match="Shell"):
        m.predict(df.assign(firm="Shell"))


def test_target_named_by_the_series(grunfeld_like):
    df = grunfeld_like
    m = jaxlm.LinearRegression().fit(df[["value"]], df["invest"])
    assert m.target_names_ == ("invest",)
    assert "results: invest" in str(m.summary()).splitlines()[0]
    two = jaxlm.LinearRegression().fit(df[["value"]], df[["invest", "value"]])
    assert two.target_names_ == ("invest", "value")
    p = jaxlm.LinearRegression().partial_fit(df[["value"]], df["invest"])
    assert p.target_names_ == ("invest",)
    plain = jaxlm.LinearRegression().fit(df[["value"]].to_numpy(), df["invest"].to_numpy())
    assert not hasattr(plain, "target_names_")


def test_fit_gradient_takes_a_1d_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    y = X @ [1.0, 2.0] + 3.0
    sol = jaxlm.fit_gradient(X, y)
    exact = jaxlm.LinearRegression().fit(X, y)
    np.testing.assert_allclose(sol.coef[0], exact.coef_, rtol=1e-8)
    assert sol.intercept[0] == pytest.approx(exact.intercept_, rel=1e-8)
    one = jaxlm.fit_gradient(X[:, 0], y - 2.0 * X[:, 1])  # one feature as a 1-D X
    assert one.coef.shape == (1, 1) and one.coef[0, 0] == pytest.approx(1.0, rel=1e-8)
    with pytest.raises(jaxlm.InputError, match="same n"):
        jaxlm.fit_gradient(X, y[:50])
