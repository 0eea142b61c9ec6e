"""jaxlm.io.formula: formulas streamed from files equal formulaic + an in-memory fit."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from formulaic import model_matrix
from sklearn.linear_model import LinearRegression as SkLinearRegression

from jaxlm.core.errors import InputError
from jaxlm.io import FormulaSpec, fit_table, open_table, predict_table, stream_fit

REL = 1e-10


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 3000
    df = pd.DataFrame({"celsius": rng.uniform(-10, 40, n), "x2": rng.normal(size=n), "z": rng.uniform(0.5, 20, n),
                       "group": rng.choice(["north", "east", "south"], n), "year": rng.choice([2019, 2020, 2021], n)})
    df.loc[n - 1, "group"] = "west"  # a level that appears only in the very last row group
    eff = df["group"].map({"north": 0.0, "east": 1.0, "south": -2.0, "west": 5.0})
    df["fahrenheit"] = 32 + 1.8 * df.celsius + 0.5 * df.x2 * df.celsius + eff + np.log(df.z) + (df.year - 2019) * 0.3 \
        + rng.normal(size=n)
    return df


@pytest.fixture(scope="module")
def parquet(tmp_path_factory, frame):
    p = tmp_path_factory.mktemp("formula") / "f.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), p, row_group_size=400)
    return p


@pytest.mark.parametrize("formula", [
    "fahrenheit ~ celsius",
    "fahrenheit ~ celsius * x2 + C(group) + np.log(z)",
    "fahrenheit ~ celsius + group + C(year)",
    "fahrenheit ~ 0 + C(group) + celsius",
    "np.log(z) ~ celsius + I(celsius ** 2)",
])
def test_streamed_formula_fit_equals_formulaic_in_memory(formula, parquet, frame):
    fit = stream_fit(parquet, formula=formula, progress=False)
    mm = model_matrix(formula, frame)
    X = mm.rhs.drop(columns=["Intercept"], errors="ignore")
    has_intercept = "Intercept" in mm.rhs.columns
    sk = SkLinearRegression(fit_intercept=has_intercept).fit(X.to_numpy(), mm.lhs.to_numpy()[:, 0])
    assert list(fit.model.feature_names_in_) == list(X.columns)
    assert fit.model.fit_intercept == has_intercept
    assert rel_err(fit.model.coef_, sk.coef_) <= REL
    if has_intercept:
        assert abs(fit.model.intercept_ - sk.intercept_) <= REL * abs(sk.intercept_)
    assert fit.formula.fit_intercept == has_intercept


def test_levels_are_collected_up_front_from_the_whole_file(parquet):
    spec = FormulaSpec.from_source("fahrenheit ~ C(group) + C(year)", open_table(parquet))
    assert spec.levels == {"group": ["east", "north", "south", "west"], "year": [2019, 2020, 2021]}
    assert spec.features == ("C(group)[T.north]", "C(group)[T.south]", "C(group)[T.west]", "C(year)[T.2020]",
                             "C(year)[T.2021]")


def test_spec_round_trips_through_json_and_encodes_new_data_the_same(parquet, frame):
    spec = FormulaSpec.from_source("fahrenheit ~ celsius * x2 + C(group) + np.log(z)", open_table(parquet))
    import json

    again = FormulaSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again.features == spec.features and again.levels == spec.levels and again.inputs == spec.inputs
    new = frame.drop(columns=["fahrenheit"]).iloc[:50]  # a subset of levels, no target column
    X1, _ = spec.encode(pa.Table.from_pandas(new, preserve_index=False), targets=False)
    X2, _ = again.encode(pa.Table.from_pandas(new, preserve_index=False), targets=False)
    ref = model_matrix(spec.formula, frame).model_spec.rhs.get_model_matrix(new).drop(columns="Intercept")
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(X1, ref.to_numpy())


def test_predict_refuses_an_unseen_level(parquet, frame):
    model = fit_table(parquet, formula="fahrenheit ~ celsius + C(group)", progress=False)
    new = frame.iloc[:10].copy()
    new.loc[new.index[6], "group"] = "up"
    with pytest.raises(InputError) as e:
        list(predict_table(model, new))
    assert "'group'" in str(e.value) and "'up'" in str(e.value) and "data row 7" in str(e.value)
    ok = pa.Table.from_batches(list(predict_table(model, frame.iloc[:10].drop(columns="fahrenheit"))))
    mm = model_matrix(model.formula_.formula, frame)
    ref = mm.rhs.drop(columns="Intercept").to_numpy()[:10] @ model.coef_ + model.intercept_
    np.testing.assert_allclose(ok.column("prediction").to_numpy(), ref, rtol=1e-13)


@pytest.mark.parametrize("formula,text", [
    ("fahrenheit ~ celsius +* x2", "valid model formula"),
    ("fahrenheit ~ (celsius", "valid model formula"),
    ("celsius + x2", "left of '~'"),
    ("fahrenheit ~ celsus", "Did you mean 'celsius'"),
    ("fahrenheit ~ center(celsius)", "learn from the data"),
    ("fahrenheit ~ poly(celsius, degree=2)", "learn from the data"),
    ("group ~ celsius", "numeric target"),
    ("", "non-empty"),
])
def test_bad_formulas_are_input_errors(parquet, formula, text):
    with pytest.raises(InputError) as e:
        fit_table(parquet, formula=formula, progress=False)
    assert e.value.param == "formula" and text in str(e.value), str(e.value)


def test_formula_missing_values_drop_like_pandas(tmp_path, frame):
    df = frame.copy()
    df.loc[[3, 50], "z"] = np.nan
    df.loc[[9], "group"] = None
    p = tmp_path / "holes.csv"
    df.to_csv(p, index=False, float_format="%.17g")
    with pytest.raises(InputError) as e:
        fit_table(p, formula="fahrenheit ~ celsius + C(group) + np.log(z)", progress=False)
    assert "'z' (2 rows)" in str(e.value) and "'group' (1 row)" in str(e.value)
    fit = stream_fit(p, formula="fahrenheit ~ celsius + C(group) + np.log(z)", missing="drop", progress=False)
    ok = df.dropna(subset=["z", "group"])
    mm = model_matrix("fahrenheit ~ celsius + C(group) + np.log(z)", ok)
    sk = SkLinearRegression().fit(mm.rhs.drop(columns="Intercept").to_numpy(), mm.lhs.to_numpy()[:, 0])
    assert fit.n_dropped == 3
    assert rel_err(fit.model.coef_, sk.coef_) <= REL


def test_formula_terms_that_become_nan_are_located(tmp_path, frame):
    df = frame.copy()
    df.loc[123, "z"] = -1.0
    p = tmp_path / "neg.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), p)
    with pytest.raises(InputError) as e:
        fit_table(p, formula="fahrenheit ~ np.log(z)", progress=False)
    assert e.value.param == "formula" and "np.log(z)" in str(e.value) and "data row 124" in str(e.value)


def test_formula_excludes_target_and_features(parquet):
    with pytest.raises(InputError, match="instead of target"):
        fit_table(parquet, formula="fahrenheit ~ celsius", target="fahrenheit", progress=False)
