"""Findings of an adversarial review, each a plausible wrong answer or a traceback before its fix."""
import re

import numpy as np
import pandas as pd
import pytest

import jaxlm
from jaxlm.core.errors import InputError


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame({"x": rng.normal(size=n), "Intercept": rng.normal(size=n), "g": rng.choice(list("abc"), n)})
    df["y"] = 1 + 2 * df.x + 3 * df.Intercept + 10 * (df.g == "c") + rng.normal(size=n)
    return df


def test_a_column_named_intercept_is_refused_in_a_formula(frame):
    """formulaic names the intercept term 'Intercept': a data column of that name was taken for it
    (dropped from the fit, and '- 1' ignored)."""
    for formula in ("y ~ x + Intercept - 1", "y ~ x + Intercept", "y ~ I(Intercept * 2) + x"):
        with pytest.raises(InputError, match="column named 'Intercept'"):
            jaxlm.fit_table(frame, formula=formula)
    # as a plain feature it is data like any other column: the coefficient is the lstsq one
    m = jaxlm.fit_table(frame, target="y", features=["x", "Intercept"])
    A = np.c_[np.ones(len(frame)), frame[["x", "Intercept"]].to_numpy()]
    ref = np.linalg.lstsq(A, frame.y.to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(m.coef_, ref[1:], rtol=1e-10)


def test_nominated_levels_must_cover_the_data(frame):
    """C(g, levels=[...]) that leaves out a value of g: formulaic codes those rows as the reference
    level, a plausible wrong fit; now one error naming the term, the column and the value."""
    df = frame.drop(columns="Intercept")
    for formula, value in (("y ~ x + C(g, levels=['a', 'b'])", "'c'"), ("y ~ x + C(g, levels=[1, 2])", "'a'")):
        with pytest.raises(InputError) as e:
            jaxlm.fit_table(df, formula=formula)
        assert "must list every value of column 'g'" in str(e.value) and value in str(e.value)
    m = jaxlm.fit_table(df, formula="y ~ x + C(g, levels=['b', 'a', 'c'])")
    D = np.c_[np.ones(len(df)), df.x, (df.g == "a").astype(float), (df.g == "c").astype(float)]
    ref = np.linalg.lstsq(D, df.y.to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(m.coef_, ref[1:], rtol=1e-10)


@pytest.fixture(scope="module")
def saved(frame, tmp_path_factory):
    path = tmp_path_factory.mktemp("review") / "m.json"
    jaxlm.fit_table(frame.drop(columns="Intercept"), formula="y ~ x + C(g)").save(path)
    return path.read_text()


def _load(tmp_path, text):
    p = tmp_path / "edited.json"
    p.write_text(text)
    return jaxlm.load(p)


def test_an_integer_beyond_float64_in_a_model_file_is_one_error(saved, tmp_path):
    m = re.search(r'"wsum": ([-0-9.e+]+)', saved)
    for digits in (309, 350, 399):
        with pytest.raises(InputError, match="beyond the float64 range"):
            _load(tmp_path, saved.replace(m.group(0), '"wsum": 9' + "0" * (digits - 1)))


def test_a_lone_surrogate_in_a_model_file_is_one_error(saved, tmp_path):
    i = saved.index('"a"', saved.index('"levels"'))
    with pytest.raises(InputError, match="surrogate"):
        _load(tmp_path, saved[:i] + '"\\ud800"' + saved[i + 3:])
    # a proper pair (an emoji, escaped) in free-form metadata is text and loads
    m = re.search(r'"metadata": \{\s*\}', saved)
    assert m, "the saved file has empty metadata"
    doc = saved.replace(m.group(0), '"metadata": {"note": "\\ud83d\\ude00"}')
    assert _load(tmp_path, doc).coef_.shape == (3,)


@pytest.mark.parametrize("value, says", [("1_0", "must hold numbers; got '1_0' at data row 2"),
                                         ("true", "must hold numbers; got 'true' at data row 2"),
                                         ("abc", "must hold numbers; got 'abc' at data row 2")])
def test_a_stray_value_in_a_numeric_csv_column_is_named(tmp_path, value, says):
    """`1_0` passes Python's float() but no CSV reader's; `true` among numbers is a stray word. Both were
    reported as "features must be numeric columns" with no row and value (and naming --features)."""
    from jaxlm.io.design import select_columns
    from jaxlm.io.sources import open_table

    p = tmp_path / "t.csv"
    p.write_text(f"x,y\n1,2\n{value},3\n3,4\n4,6\n")
    with pytest.raises(InputError) as e:
        select_columns(open_table(str(p)), target="y")
    assert says in str(e.value) and "line 3" in str(e.value)


def test_the_target_on_both_sides_of_a_formula_is_refused(frame):
    """`y ~ x + y` fitted a perfect, meaningless model without a word (R drops it with a warning)."""
    df = frame.drop(columns="Intercept")
    for formula in ("y ~ x + y", "y ~ x + log(abs(y) + 1)", "y ~ C(g) * y"):
        with pytest.raises(InputError, match="must not use the target 'y' on the right"):
            jaxlm.fit_table(df, formula=formula)
