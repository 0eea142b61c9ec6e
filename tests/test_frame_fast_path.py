"""fit_table's fast path for a pandas DataFrame and a formula of its bare numeric columns
(:mod:`jaxlm.models.frame_arrays`): the model equals the streamed fit's (the reference: the same
frame as a pyarrow Table, which always streams through Arrow and formulaic), and bad values give
the streamed fit's errors word for word."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import jaxlm
from jaxlm.core.errors import InputError, RankWarning
from jaxlm.io.formula import FormulaSpec
from jaxlm.io.sources import FrameSource
from jaxlm.models import tables
from jaxlm.models.frame_arrays import BareFrame, bare_frame
from jaxlm.models.linear_doc import model_to_dict

#: The two fits reduce the same float64 numbers in the same blocks and chunks; X's memory layout may
#: differ (a view of the frame's float block or a copy made by pandas, vs formulaic's Fortran-order
#: blocks), so BLAS may round a sum differently: the exact fit's refinement brings both to the
#: least-squares solution to rounding (measured: equal to the last bit on these frames).
REL = 1e-12
F = "y ~ x1 + x2 + x3"


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [0.0, 100.0, -5.0]
    df = pd.DataFrame(X, columns=["x1", "x2", "x3"])
    df["y"] = 3.0 + X @ [1.5, -0.2, 4.0] + rng.normal(size=n) * (1 + np.abs(X[:, 0]))  # heteroskedastic
    df["y2"] = -1.0 + X @ [0.1, 0.3, -2.0] + rng.normal(size=n)
    df["w"] = rng.integers(0, 4, n)  # integer frequency weights
    df["aw"] = rng.uniform(0.5, 2.0, n)  # analytic weights
    df["g"] = rng.integers(0, 40, n)
    df["h"] = np.array([f"firm{k}" for k in rng.integers(0, 25, n)], dtype=object)
    return df


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return _frame(3000)


def _fit(data, formula=F, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankWarning)
        return jaxlm.fit_table(data, formula=formula, **{"progress": False, **kw})


def _streamed(df, formula=F, **kw):
    """The streamed fit of the same rows: a pyarrow Table is read through Arrow and formulaic."""
    return _fit(pa.Table.from_pandas(df, preserve_index=False), formula, **kw)


def _rel(a, b) -> float:
    """max |a - b| / max |b| over the finite entries (NaN where both are NaN: no inference)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    a, b = a[~np.isnan(b)], b[~np.isnan(b)]
    return float(np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0.0), 1e-300))


def _assert_same_model(fast, slow, rel=REL):
    assert _rel(fast.coef_, slow.coef_) <= rel
    assert _rel(fast.intercept_, slow.intercept_) <= rel
    assert np.shape(fast.coef_) == np.shape(slow.coef_) and np.shape(fast.intercept_) == np.shape(slow.intercept_)
    assert list(fast.feature_names_in_) == list(slow.feature_names_in_)
    assert fast.n_features_in_ == slow.n_features_in_
    assert fast.target_names_ == slow.target_names_
    assert fast.formula_.to_json() == slow.formula_.to_json()
    assert fast.get_params() == slow.get_params()
    for attr in ("rank_", "solver_", "dtype_", "converged_", "n_iter_"):
        assert getattr(fast, attr) == getattr(slow, attr), attr
    assert hasattr(fast, "state_") == hasattr(slow, "state_")
    a = fast.results_ if isinstance(fast.results_, tuple) else (fast.results_,)
    b = slow.results_ if isinstance(slow.results_, tuple) else (slow.results_,)
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert (ra.cov_type, ra.n_obs, ra.df_resid, ra.term_names, ra.target_name) == \
            (rb.cov_type, rb.n_obs, rb.df_resid, rb.term_names, rb.target_name)
        assert _rel(ra.std_errors, rb.std_errors) <= 1e-10
        assert _rel(ra.conf_int(), rb.conf_int()) <= 1e-10
        assert abs(ra.r_squared - rb.r_squared) <= 1e-12
    assert str(fast.summary()) == str(slow.summary())
    doc_a, doc_b = model_to_dict(fast), model_to_dict(slow)
    for key in doc_b:
        if key not in ("coef", "intercept", "statistics", "solution", "state"):
            assert doc_a[key] == doc_b[key], key


@pytest.mark.parametrize("kw", [
    {},
    {"weights": "w"},
    {"weights": "aw", "weights_kind": "analytic"},
    {"robust": True},
    {"cov_type": "HC3"},
    {"cov_type": "cluster", "cluster": "g"},
    {"cov_type": "cluster", "cluster": "h", "weights": "w"},
    {"cov_type": "cluster", "cluster": ["g", "h"]},
    {"cov_type": "HAC", "hac_maxlags": 3},
    {"alpha": 2.5},
    {"solver": "qr"},
    {"positive": True},
], ids=repr)
def test_fast_path_gives_the_streamed_model(df, kw):
    assert isinstance(bare_frame(df, F, weights=kw.get("weights"), cluster=kw.get("cluster")), BareFrame)
    _assert_same_model(_fit(df, **kw), _streamed(df, **kw))


@pytest.mark.parametrize("formula", ["y ~ x1 + x2 + x3 - 1", "y + y2 ~ x1 + x2 + x3", "y ~ x3 + x1"])
def test_fast_path_formulas(df, formula):
    fast = _fit(df, formula)
    _assert_same_model(fast, _streamed(df, formula))
    assert fast.formula_.formula == formula


def test_fast_path_several_blocks():
    """More rows than one block of the frame (65,536): the same blocks, chunks and HAC carries."""
    df = _frame(140_000, seed=1)
    for kw in ({}, {"cov_type": "HAC"}, {"weights": "w", "robust": True}):
        _assert_same_model(_fit(df, **kw), _streamed(df, **kw))


@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_fast_path_gradient_solver(df, solver):
    """The gradient solvers gather the blocks and call LinearRegression.fit: the same numbers, here
    in the same (Fortran) order, so the same iterations."""
    _assert_same_model(_fit(df, solver=solver), _streamed(df, solver=solver))


def test_integer_and_float32_columns():
    df = _frame(2000)
    df["x1"] = np.round(df["x1"] * 100).astype(np.int64)
    df["x3"] = df["x3"].astype(np.float32)
    df["x2"] = pd.array(np.round(df["x2"]).astype(int), dtype="Int64")
    assert isinstance(bare_frame(df, F), BareFrame)
    _assert_same_model(_fit(df), _streamed(df))


def test_estimator_false_and_progress(df):
    assert _fit(df, estimator=False) is None
    _assert_same_model(_fit(df, progress=True), _streamed(df))


def test_the_fast_path_is_taken(df, monkeypatch):
    """Neither the frame's Arrow blocks nor formulaic's encoding are used: stream_fit gets a BareFrame."""
    seen = []
    stream_fit = tables.stream_fit

    def spy(data, **kw):
        seen.append(type(data))
        return stream_fit(data, **kw)

    def refuse(*args, **kwargs):
        raise AssertionError("the fast path read the frame through Arrow or formulaic")

    monkeypatch.setattr(tables, "stream_fit", spy)
    monkeypatch.setattr(FrameSource, "blocks", refuse)
    monkeypatch.setattr(FormulaSpec, "design", refuse)
    monkeypatch.setattr(FormulaSpec, "encode", refuse)
    for kw in ({}, {"weights": "w"}, {"cov_type": "cluster", "cluster": "h"}, {"cov_type": "HAC"}):
        assert _fit(df, **kw).coef_.shape == (3,)
    _fit(df, "y + y2 ~ x1 + x2 - 1", robust=True)
    assert seen == [BareFrame] * 5


def test_float_columns_are_read_without_a_copy(df):
    """pandas hands out a float64 block as a view: the fast path copies none of it (a copy of X
    would cost as much as the fit)."""
    frame = bare_frame(df, F)
    assert np.shares_memory(frame.X, df["x1"].to_numpy()) and np.shares_memory(frame.Y, df["y"].to_numpy())
    np.testing.assert_array_equal(frame.X, df[["x1", "x2", "x3"]].to_numpy())


@pytest.mark.parametrize("formula", ["y ~ np.log(x2) + x1", "y ~ x1 * x3", "y ~ C(g) + x1", "y ~ h + x1"])
def test_formulas_that_are_not_bare_stream(df, formula):
    assert bare_frame(df, formula) is None
    _assert_same_model(_fit(df, formula), _streamed(df, formula))


def _bad(df, column, row, value):
    out = df.copy()
    out[column] = out[column].astype(np.float64)
    out.loc[row, column] = value
    return out


@pytest.mark.parametrize("column, value, kw", [
    ("x2", np.nan, {}),
    ("y", np.nan, {}),
    ("w", np.nan, {"weights": "w"}),
    ("x1", np.inf, {}),
    ("y", -np.inf, {}),
    ("w", np.inf, {"weights": "w"}),
    ("w", -1.0, {"weights": "w"}),
    ("x3", np.nan, {"cov_type": "cluster", "cluster": "g"}),
], ids=repr)
def test_bad_values_give_the_streamed_errors(df, column, value, kw):
    bad = _bad(df, column, 1234, value)
    bad.loc[2000, column] = value  # two rows: the counts and the first row are in the message
    assert bare_frame(bad, F, weights=kw.get("weights")) is None
    with pytest.raises(InputError) as fast:
        _fit(bad, **kw)
    with pytest.raises(InputError) as slow:
        _streamed(bad, **kw)
    assert (fast.value.param, str(fast.value)) == (slow.value.param, str(slow.value))
    assert "1235" in str(fast.value)  # the first bad data row (1-based)


def test_missing_values_in_several_columns_and_drop(df):
    bad = df.copy()
    bad.loc[[5, 9], "x1"] = np.nan
    bad.loc[[9, 70, 71], "y"] = np.nan
    with pytest.raises(InputError) as fast:
        _fit(bad, missing="raise")
    with pytest.raises(InputError) as slow:
        _streamed(bad, missing="raise")
    assert str(fast.value) == str(slow.value)
    assert "'y' (3 rows), 'x1' (2 rows): 4 rows in all, the first at data row 6" in str(fast.value)
    _assert_same_model(_fit(bad, missing="drop"), _streamed(bad, missing="drop"))


@pytest.mark.parametrize("case", ["big integer", "constant target", "zero weights", "few rows", "no rows",
                                  "intercept", "cluster column", "nullable"])
def test_other_errors_are_the_streamed_ones(df, case):
    data, kw = df.copy(), {}
    if case == "big integer":
        data["x1"] = np.arange(len(data), dtype=np.int64) + 2**53 - 5
    elif case == "constant target":
        data["y"] = 2.0
    elif case == "zero weights":
        data["w"], kw = 0, {"weights": "w"}
    elif case == "few rows":
        data = data.iloc[:3]
    elif case == "no rows":
        data = data.iloc[:0]
    elif case == "intercept":
        kw = {"fit_intercept": False}
    elif case == "cluster column":
        data["g"] = data["g"].astype(float)
        data.loc[17, "g"] = np.nan
        kw = {"cov_type": "cluster", "cluster": "g"}
    else:
        data["x2"] = pd.array(np.round(data["x2"]).astype(int), dtype="Int64")
        data.loc[30, "x2"] = pd.NA
    with pytest.raises(InputError) as fast:
        _fit(data, **kw)
    with pytest.raises(InputError) as slow:
        _streamed(data, **kw)
    assert (fast.value.param, str(fast.value)) == (slow.value.param, str(slow.value))


def test_absorbed_fits_name_bad_values(df):
    """The absorbed fit in memory (views of the frame's columns) names the column and row of a bad value."""
    bad = _bad(df, "x1", 7, np.inf)
    with pytest.raises(InputError, match=r"got inf in model column 'x1' at data row 8"):
        jaxlm.fit_table(bad, formula="y ~ x1 + x2 | g")
    with pytest.raises(InputError, match=r"missing.*'y'.*data row 5"):
        jaxlm.fit_table(_bad(df, "y", 4, np.nan), formula="y ~ x1 + x2 | g")
    neg = df.assign(w=1.0)
    neg.loc[11, "w"] = -2.0
    with pytest.raises(InputError, match=r"weights column 'w' = -2.0 at data row 12"):
        jaxlm.fit_table(neg, formula="y ~ x1 + x2 | g", weights="w")
