"""jaxlm.io.grammar: the closed formula grammar.

Accepted formulas give the model matrices formulaic gives on its own (the independent
reference); refused constructs are InputErrors naming the construct, raised before formulaic is
called at all.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from formulaic import model_matrix

from jaxlm.core.errors import InputError
from jaxlm.io import FormulaSpec, open_table
from jaxlm.io import formula as formula_mod
from jaxlm.io import grammar
from jaxlm.io.formula import parse_formula

#: formulaic's own namespace lacks these; the reference gets them by hand, from numpy.
REF_CONTEXT = {"sqrt": np.sqrt, "abs": np.abs, "log1p": np.log1p}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 60
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "z": rng.uniform(0.5, 9, n),
                       "group": rng.choice(["north", "east", "south"], n), "g": rng.choice(["a", "b", "c"], n),
                       "year": rng.choice([2019, 2020, 2021], n), "a b": rng.normal(size=n),
                       "c.d": rng.uniform(1, 2, n), "open": rng.normal(size=n)})
    df["y"] = 1 + df.x1 - 2 * df.x2 + np.log(df.z) + rng.normal(size=n)
    return df


ACCEPTED = [
    "y ~ x1 * x2 + C(group) + np.log(z)",
    "y ~ x1 + I(x1**2)",
    "np.log(z) ~ x1 + I(x1 ** 2)",
    "y ~ C(g, Treatment('b'))",
    "y ~ C(g, Treatment(reference='c')) + x1",
    "y ~ C(g, Sum) + x1",
    "y ~ C(g, Sum())",
    "y ~ C(g, contr.treatment('b'))",
    "y ~ C(g, contr.sum)",
    "y ~ C(g, levels=['c', 'a', 'b'])",
    "y ~ C(year) + C(g, contrasts=Sum)",
    "y ~ `a b` + log(`c.d`)",
    "y ~ `c.d` + x1",
    "y ~ x1 - 1",
    "y ~ x1 + 0",
    "y ~ -1 + x1",
    "y ~ 0 + C(group) + x1",
    "y ~ (x1 + x2 + g) ** 2",
    "y ~ x1:x2 + x1 / g",
    "y ~ x1 + group",
    "y ~ sqrt(z) + abs(x1) + log1p(z) + log2(z) + log10(z) + exp(x2) + np.sqrt(z) + np.abs(x2)",
    "y ~ I(x1 > 0) + I(x1 // 1) + I(x1 % 2) + I(-x2) + I((x1 + x2) / 2) + I(x1 != x2)",
    "y ~ open + I(open * 2)",
]


@pytest.mark.parametrize("formula", ACCEPTED)
def test_accepted_formulas_encode_as_formulaic_does(formula, frame):
    spec = FormulaSpec.from_source(formula, open_table(frame))
    X, Y = spec.encode(pa.Table.from_pandas(frame, preserve_index=False))
    ref = model_matrix(formula, frame, context=REF_CONTEXT)
    has_intercept = "Intercept" in ref.rhs.columns
    rx = ref.rhs.drop(columns=["Intercept"], errors="ignore")
    assert spec.fit_intercept == has_intercept
    assert spec.features == tuple(rx.columns)
    np.testing.assert_array_equal(X, rx.to_numpy(dtype=np.float64))
    np.testing.assert_array_equal(Y, ref.lhs.to_numpy(dtype=np.float64))
    assert set(spec.inputs) | set(spec.outputs) == set(grammar.parse(formula).columns)


def test_gate_reports_columns_as_written():
    p = grammar.parse("y ~ `a.b` + log(`c d`) + e.f + C(g, Treatment('x')) + I(h ** 2)")
    assert p.lhs == ("y",)
    assert p.rhs == ("a.b", "c d", "e.f", "g", "h")
    assert set(p.calls) == {"log", "C", "Treatment", "I"} and p.categorical == ("g",)


def test_check_formula_is_none_for_a_good_formula_and_an_input_error_otherwise():
    assert grammar.check_formula("y ~ x + C(g)") is None
    with pytest.raises(InputError) as e:
        grammar.check_formula("y ~ {x}")
    assert e.value.param == "formula"


REFUSED = [
    ("y ~ {x + 1}", "{...} Python block", "{x + 1}"),
    ("{y} ~ x", "{...} Python block", "{y}"),
    ("y ~ np.f2py.os.system('ls')", "attribute access 'np.f2py.os.system'", "np.f2py.os.system('ls')"),
    ("y ~ I(x.values)", "attribute access", "I(x.values)"),
    ("y ~ I(x[0])", "a subscript", "I(x[0])"),
    ("y ~ x[0]", "a subscript", "x[...]"),
    ("y ~ I(lambda: x)", "a lambda", "I(lambda: x)"),
    ("y ~ I([v for v in x])", "a comprehension", "I([v for v in x])"),
    ("y ~ I({v: v for v in x})", "a comprehension", "I({v: v for v in x})"),
    ("y ~ __class__", "dunder name '__class__'", "__class__"),
    ("y ~ I(__builtins__)", "dunder name '__builtins__'", "I(__builtins__)"),
    ("y ~ `__x__`", "dunder name '__x__'", "`__x__`"),
    ("y ~ np.log(x, out=x)", "keyword argument 'out='", "np.log(x, out=x)"),
    ("y ~ C(g, spans_intercept=False)", "keyword argument 'spans_intercept='", "C(g, spans_intercept=False)"),
    ("y ~ log(*x)", "a starred argument", "log(*x)"),
    ("y ~ C(g, **k)", "a ** keyword expansion", "C(g, **k)"),
    ("y ~ I(f'{x}')", "an f-string", "I(f'{x}')"),
    ("y ~ I((a := x))", "assignment expression", "I((a := x))"),
    ("y ~ eval('x')", "a call of 'eval(...)'", "eval('x')"),
    ("y ~ I(exec)", "the name 'exec', a Python builtin that runs code", "I(exec)"),
    ("y ~ getattr(x, 'y')", "a call of 'getattr(...)'", "getattr(x, 'y')"),
    ("y ~ open('f')", "a call of 'open(...)'", "open('f')"),
    ("y ~ __import__('os')", "dunder name '__import__'", "__import__(...)"),
    ("y ~ I(ｅval)", "outside a backtick name or a string", "I(ｅval)"),
    ("y ~ I(`ｅval`)", "which Python reads as 'eval'", "I(`ｅval`)"),
    ("y ~ I('a')", "a string literal", "I('a')"),
    ("y ~ 'a'", "a string literal", "'a'"),
    ("y ~ I(x if z else x)", "conditional expression", "I(x if z else x)"),
    ("y ~ I(x and z)", "'and'/'or'", "I(x and z)"),
    ("y ~ I(x & z)", "the operator '&'", "I(x & z)"),
    ("y ~ I(x in z)", "the operator 'in'", "I(x in z)"),
    ("y ~ I(9 ** 9 ** 9)", "a power of two constants", "I(9 ** 9 ** 9)"),
    ("y ~ I(True)", "the constant True", "I(True)"),
    ("y ~ C(g, levels=[x])", "the name 'x' as a level", "C(g, levels=[x])"),
    ("y ~ C(g, Treatment(x))", "the name 'x' as a reference level", "C(g, Treatment(x))"),
    ("y ~ C(g, Helmert)", "as C()'s contrasts", "C(g, Helmert)"),
    ("y ~ C(g, Treatment)", "Treatment without parentheses", "C(g, Treatment)"),
    ("y ~ C(log(x))", "as C()'s first argument", "C(log(x))"),
    ("y ~ I(C(g))", "C(...) inside another expression", "I(C(g))"),
    ("y ~ Sum(g)", "outside C(column", "Sum(g)"),
    ("y ~ log(x, z)", "log(...) with 2 arguments", "log(x, z)"),
    ("y ~ log(x)(z)", "a call of a computed function", "log(x)(z)"),
    ("y ~ hashed(g, levels=4)", "a call of 'hashed(...)'", "hashed(g, levels=4)"),
    ("y ~ Q('x')", "a call of 'Q(...)'", "Q('x')"),
    ("y ~ log(log)", "a column named 'log' in a formula that also calls the transform 'log'", "log"),
    ("y ~ np + np.log(x)", "a column named 'np'", "np"),
    ("y ~ .", "the '.' (all other columns) operator", "."),
    ("y ~ x ^ 2", "'^' (write powers as **)", "^ 2"),
    ("y ~ x %in% g", "the % operator", "%in% g"),
]


@pytest.mark.parametrize("formula,construct,term", REFUSED, ids=[c[:40] for _, c, _ in REFUSED])
def test_refused_constructs_are_named_before_formulaic_runs(formula, construct, term, monkeypatch):
    def forbidden():
        raise AssertionError("formulaic was called with an unchecked formula")

    monkeypatch.setattr(formula_mod, "_formulaic", forbidden)
    with pytest.raises(InputError) as e:
        parse_formula(formula)
    msg = str(e.value)
    assert e.value.param == "formula"
    assert construct in msg, msg
    assert f"formula term {term!r}" in msg, msg
    assert "the transforms log, log1p, log2, log10, exp, sqrt, abs" in msg, msg
    assert "\n" not in msg


UNCLEAR = [
    ("~ x", "must name a target column on the left of '~'"),
    ("y ~ x | z", "single right-hand side; got '|' at position 7"),
    ("x + z", "left of '~'"),
    ("y ~ ", "nothing on the right of '~'"),
    ("y ~ x ~ z", "a second '~'"),
    ("y ~ x +* z", "valid model formula"),
    ("y ~ (x", "the '(' at position 5 is not closed"),
    ("y ~ log(x", "is not closed"),
    ("y ~ `x", "backtick at position 5 is not closed"),
    ("y ~ 2 + x", "numbers in a formula are only 0 or 1"),
    ("y ~ 1x", "'1x' at position 5 is neither a number nor a column name"),
    ("y ~ x ** 99", "'**' must be followed by an integer from 1 to 16"),
    ("y ~ x ** z", "'**' must be followed by an integer"),
    ("y ~ log (x)", "unexpected '('"),
    ("y ~ center(x)", "learn from the data"),
    ("y ~ poly(x, degree=2)", "learn from the data"),
    ("y ~ x + lag(x)", "look across rows"),
    ("y ~ bs(x, df=3) + te(x, z)", "(bs(), te())"),
    ("", "non-empty string"),
    (None, "non-empty string"),
    ("y ~ x + " * 1300, "at most 10,000 characters"),
    ("y ~ " + "(" * 33 + "x" + ")" * 33, "nest parentheses at most 32 deep"),
    ("y ~ I(" + "+".join(["x"] * 3000) + ")", "more than 256 operators in one term"),
    ("y ~ I(" + "-" * 3000 + "x)", "more than 256 operators in one term"),
    ("y ~ I(" + "(" * 30 + "-" * 250 + "x" + ")" * 30 + ")", "nested more than 64 deep"),
    ("y ~ I(" + "+".join(["x"] * 80) + ")", "nested more than 64 deep"),
    ("y ~ (" + " + ".join(f"x{i}" for i in range(20)) + ") ** 16", "at most 10,000 terms"),
    ("y ~ " + " * ".join(f"x{i}" for i in range(14)), "at most 10,000 terms"),
    ("y ~ x * 1", "valid model formula"),  # in the grammar; formulaic itself refuses it
]


@pytest.mark.parametrize("formula,text", UNCLEAR, ids=[f"{i}-{t[:30]}" for i, (_, t) in enumerate(UNCLEAR)])
def test_unclear_formulas_get_one_line_errors(formula, text):
    with pytest.raises(InputError) as e:
        parse_formula(formula)
    assert e.value.param == "formula" and text in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_a_dotted_backtick_name_is_reported_whole(frame):
    with pytest.raises(InputError) as e:
        FormulaSpec.from_source("y ~ `a.b` + x1", open_table(frame))
    assert "got 'a.b' in formula" in str(e.value), str(e.value)


def test_stateful_rule_goes_through_the_table():
    refused = {n for n, t in grammar.TRANSFORMS.items() if t.kind in ("learned", "lag")}
    assert refused == {"center", "scale", "standardize", "poly", "bs", "cr", "cs", "cc", "te", "lag"}
    for name in refused:
        with pytest.raises(InputError, match="learn from the data"):
            parse_formula(f"y ~ {name}(x)")


def test_transform_table_renders_every_entry():
    table = grammar.transform_table()
    for name, t in grammar.TRANSFORMS.items():
        shown = name if not name.startswith("np.") else name[3:]
        assert f"`{shown}" in table
    assert table.count("| refused |") == 10
    ctx = grammar.evaluation_context()
    assert ctx["sqrt"] is np.sqrt and ctx["log1p"] is np.log1p and ctx["abs"] is np.abs
    assert set(ctx) == {"log", "log1p", "log2", "log10", "exp", "sqrt", "abs"}


def test_a_column_named_like_a_transform_is_data_not_the_transform(frame):
    df = frame.assign(log=frame.x1 * 3.0, C=frame.x2 + 1.0)
    spec = FormulaSpec.from_source("y ~ log + I(C * 2)", open_table(df))
    X, _ = spec.encode(pa.Table.from_pandas(df, preserve_index=False))
    np.testing.assert_array_equal(X[:, 0], df["log"].to_numpy())
    np.testing.assert_array_equal(X[:, 1], df["C"].to_numpy() * 2)


def test_from_levels_costs_memory_in_the_levels_not_levels_squared():
    levels = [f"l{i:05d}" for i in range(3000)]
    spec = FormulaSpec.from_levels("y ~ x + C(g)", {"g": levels, "unused": ["p", "q"]})
    assert spec.levels == {"g": levels}
    assert spec.features == ("x", *[f"C(g)[T.{v}]" for v in levels[1:]])
    # encoding data is dense numpy and equals formulaic's own encoding of the same rows
    rows = pd.DataFrame({"x": [0.5, 2.0, -1.0], "g": pd.Categorical(["l00007", "l00000", "l02999"],
                                                                     categories=levels), "y": [1.0, 2.0, 3.0]})
    X, Y = spec.encode(pa.Table.from_pandas(rows.assign(g=rows.g.astype(str)), preserve_index=False))
    ref = model_matrix("y ~ x + C(g)", rows).rhs.drop(columns="Intercept").to_numpy(dtype=np.float64)
    assert isinstance(X, np.ndarray) and X.shape == (3, 3000)
    np.testing.assert_array_equal(X, ref)
    np.testing.assert_array_equal(Y[:, 0], [1.0, 2.0, 3.0])
