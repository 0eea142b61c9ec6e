"""jaxlm.io.stream: streamed fits equal in-memory fits (sklearn, jaxlm) on the same rows."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LinearRegression as SkLinearRegression

import jaxlm
from jaxlm.core.errors import InputError
from jaxlm.io import fit_table, open_table, predict_table, stream_fit

REL = 1e-10


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 4000
    X = rng.normal(size=(n, 4)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 100.0, -5.0, 1.0]
    df = pd.DataFrame(X, columns=["x1", "x2", "x3", "x4"])
    df["y"] = 3.0 + X @ [1.5, -0.2, 4.0, 0.7] + rng.normal(size=n)
    df["y2"] = -1.0 + X @ [0.1, 0.3, -2.0, 0.0] + rng.normal(size=n)
    df["w"] = rng.integers(0, 4, n).astype(float)
    return df


@pytest.fixture(scope="module")
def files(tmp_path_factory, frame) -> dict:
    d = tmp_path_factory.mktemp("stream")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    out = {"csv": d / "f.csv", "parquet": d / "f.parquet", "feather": d / "f.feather", "dir": d / "parts"}
    frame.to_csv(out["csv"], index=False, float_format="%.17g")
    pq.write_table(table, out["parquet"], row_group_size=333)
    feather.write_feather(table, out["feather"], chunksize=500)
    out["dir"].mkdir()
    for k, s in enumerate(range(0, len(frame), 1000)):
        pq.write_table(table.slice(s, 1000), out["dir"] / f"p{k}.parquet", row_group_size=250)
    out["glob"] = str(out["dir"] / "p*.parquet")
    return out


FEATURES = ["x1", "x2", "x3", "x4"]


def _table(df: pd.DataFrame, *, nan_as_null: bool) -> pa.Table:
    """Arrow table with NaN kept as a float value (nan_as_null=False) or turned into nulls."""
    return pa.table({c: pa.array(df[c].to_numpy(), from_pandas=nan_as_null) for c in df.columns})


@pytest.mark.parametrize("kind", ["csv", "parquet", "feather", "dir", "glob", "pandas"])
def test_streamed_fit_equals_in_memory_fits(kind, files, frame):
    data = frame if kind == "pandas" else files[kind]
    fit = stream_fit(data, target="y", progress=False, features=FEATURES)
    model = fit.model
    sk = SkLinearRegression().fit(frame[FEATURES].to_numpy(), frame["y"].to_numpy())
    mem = jaxlm.LinearRegression().fit(frame[FEATURES], frame["y"])
    assert rel_err(model.coef_, sk.coef_) <= REL and abs(model.intercept_ - sk.intercept_) <= REL * abs(sk.intercept_)
    assert rel_err(model.coef_, mem.coef_) <= REL and abs(model.intercept_ - mem.intercept_) <= REL * 10
    assert list(model.feature_names_in_) == FEATURES and model.n_features_in_ == 4
    assert fit.n_rows == fit.n_read == len(frame) and fit.n_dropped == 0
    if hasattr(model, "results_"):
        assert model.results_.target_name == "y"
        assert abs(model.results_.r_squared - mem.results_.r_squared) <= 1e-10
        np.testing.assert_allclose(model.results_.std_errors, mem.results_.std_errors, rtol=1e-9)


def test_multi_output_and_weights_match_sklearn(files, frame):
    model = fit_table(files["parquet"], target=["y", "y2"], features=FEATURES, weights="w", progress=False)
    sk = SkLinearRegression().fit(frame[FEATURES].to_numpy(), frame[["y", "y2"]].to_numpy(),
                                  sample_weight=frame["w"].to_numpy())
    assert model.coef_.shape == (2, 4)
    assert rel_err(model.coef_, sk.coef_) <= REL and rel_err(model.intercept_, sk.intercept_) <= REL
    assert model.target_names_ == ("y", "y2")


def test_default_features_are_every_other_column(files, frame):
    model = fit_table(files["csv"], target="y", features="x1,x2,x3,x4,y2,w", progress=False)
    cols = ["x1", "x2", "x3", "x4", "y2", "w"]
    sk = SkLinearRegression().fit(frame[cols].to_numpy(), frame["y"].to_numpy())
    assert rel_err(model.coef_, sk.coef_) <= REL
    model2 = fit_table(files["csv"], target="y", progress=False)  # default: the same six columns
    assert list(model2.feature_names_in_) == cols
    np.testing.assert_array_equal(model2.coef_, model.coef_)


def _nist(name):
    root = Path(jaxlm.__file__).parent / "data" / "nist"
    cert = json.loads((root / f"{name}.certified.json").read_text())
    return root / f"{name}.csv", np.array([p["estimate"] for p in cert["parameters"]])


def test_ill_conditioned_file_is_refined_by_re_reading_it(tmp_path):
    """Wampler4 (degree-5 polynomial, condition ~1e13 in the raw powers) streamed from a Parquet file of
    3-row row groups: the exact fit re-reads the file for its QR and refinement passes and reaches the
    NIST certified values, as the in-memory fit does."""
    csv, certified = _nist("Wampler4")
    df = pd.read_csv(csv)
    for k in range(2, 6):
        df[f"x{k}"] = df["x"].astype(float) ** k
    path = tmp_path / "w4.parquet"
    pq.write_table(pa.Table.from_pandas(df.astype(float), preserve_index=False), path, row_group_size=3)
    fit = stream_fit(path, target="y", features=["x", "x2", "x3", "x4", "x5"], progress=False)
    assert fit.passes >= 3  # the state pass, then re-reads (QR and/or refinement)
    coef = np.r_[fit.model.intercept_, fit.model.coef_]
    mem = jaxlm.LinearRegression().fit(df[["x", "x2", "x3", "x4", "x5"]].astype(float), df["y"])
    assert rel_err(coef, certified) <= 1e-8
    assert rel_err(fit.model.coef_, mem.coef_) <= REL


def test_missing_raise_names_columns_and_counts_rows(tmp_path, frame):
    df = frame.copy()
    df.loc[[5, 17, 900], "x2"] = np.nan
    df.loc[[17, 2000], "y"] = np.nan
    p = tmp_path / "holes.csv"
    df.to_csv(p, index=False)
    with pytest.raises(InputError) as e:
        fit_table(p, target="y", features=FEATURES, progress=False)
    msg = str(e.value)
    assert e.value.param == "missing"
    assert "'x2' (3 rows)" in msg and "'y' (2 rows)" in msg and "4 rows in all" in msg and "data row 6" in msg
    assert "missing='drop'" in msg


@pytest.mark.parametrize("kind", ["csv", "parquet-nan", "parquet-null"])
def test_missing_drop_fits_the_complete_rows_and_reports_the_count(tmp_path, frame, kind):
    df = frame.copy()
    df.loc[[5, 17, 900], "x2"] = np.nan
    df.loc[[17, 2000], "y"] = np.nan
    if kind == "csv":
        p = tmp_path / "holes.csv"
        df.to_csv(p, index=False, float_format="%.17g")
    else:
        p = tmp_path / f"{kind}.parquet"
        pq.write_table(_table(df, nan_as_null=(kind == "parquet-null")), p, row_group_size=500)
    fit = stream_fit(p, target="y", features=FEATURES, missing="drop", progress=False)
    ok = df.dropna(subset=FEATURES + ["y"])
    sk = SkLinearRegression().fit(ok[FEATURES].to_numpy(), ok["y"].to_numpy())
    assert fit.n_dropped == 4 and fit.n_rows == len(frame) - 4
    assert fit.dropped_by_column == {"x2": 3, "y": 2}
    assert rel_err(fit.model.coef_, sk.coef_) <= REL


def test_nan_in_parquet_with_missing_raise_is_reported_as_missing(tmp_path, frame):
    df = frame.copy()
    df.loc[[10, 11], "x3"] = np.nan
    p = tmp_path / "nan.parquet"
    pq.write_table(_table(df, nan_as_null=False), p)
    with pytest.raises(InputError) as e:
        fit_table(p, target="y", features=FEATURES, progress=False)
    assert e.value.param == "missing" and "'x3' (2 rows)" in str(e.value) and "data row 11" in str(e.value)


def test_infinite_values_are_located(tmp_path, frame):
    df = frame.copy()
    df.loc[321, "x1"] = np.inf
    p = tmp_path / "inf.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), p)
    with pytest.raises(InputError) as e:
        fit_table(p, target="y", features=FEATURES, progress=False)
    assert "infinite" in str(e.value) and "'x1'" in str(e.value) and "data row 322" in str(e.value)


@pytest.mark.parametrize("case,param,text", [
    ("constant", "target", "must vary"),
    ("too-few-rows", "data", "parameters"),
    ("header-only", "data", "no rows"),
    ("negative-weight", "weights", ">= 0"),
])
def test_degenerate_data_is_refused(tmp_path, case, param, text):
    p = tmp_path / f"{case}.csv"
    body = {"constant": "x,y,w\n1,5,1\n2,5,1\n3,5,1\n",
            "too-few-rows": "a,b,c,y,w\n1,2,3,4,1\n2,3,1,5,1\n",
            "header-only": "x,y,w\n",
            "negative-weight": "x,y,w\n1,2,1\n2,3,-1\n3,5,1\n"}[case]
    p.write_text(body)
    with pytest.raises(InputError) as e:
        fit_table(p, target="y", weights="w", progress=False)
    assert e.value.param == param and text in str(e.value)


def test_reservoir_sample_is_seeded_uniform_and_from_the_data(files, frame):
    a = stream_fit(files["parquet"], target="y", features=FEATURES, progress=False, sample_size=500, seed=3)
    b = stream_fit(files["parquet"], target="y", features=FEATURES, progress=False, sample_size=500, seed=3)
    c = stream_fit(files["parquet"], target="y", features=FEATURES, progress=False, sample_size=500, seed=4)
    s = a.sample
    assert s.X.shape == (500, 4) and s.Y.shape == (500, 1)
    np.testing.assert_array_equal(s.rows, b.sample.rows)
    assert not np.array_equal(s.rows, c.sample.rows)
    assert len(np.unique(s.rows)) == 500
    np.testing.assert_array_equal(s.X, frame[FEATURES].to_numpy()[s.rows])
    np.testing.assert_array_equal(s.Y[:, 0], frame["y"].to_numpy()[s.rows])
    # uniform over the file: the sampled row indices average about n/2 (sd of the mean ≈ n/sqrt(12*500))
    n = len(frame)
    assert abs(s.rows.mean() - (n - 1) / 2) < 4 * n / np.sqrt(12 * 500)
    small = stream_fit(files["parquet"], target="y", features=FEATURES, progress=False, sample_size=10_000)
    assert len(small.sample.rows) == n  # fewer rows than the reservoir: all of them


def test_gradient_solver_streams_into_memory_and_lands_on_the_exact_fit(files, frame):
    model = fit_table(files["parquet"], target="y", features=FEATURES, solver="lbfgs", progress=False)
    sk = SkLinearRegression().fit(frame[FEATURES].to_numpy(), frame["y"].to_numpy())
    assert model.solver_ == "lbfgs"
    assert rel_err(model.coef_, sk.coef_) <= 1e-5


def test_gradient_solver_with_a_formula_keeps_its_encoding_and_names(files, frame, tmp_path):
    from jaxlm.io import load_model, save_model

    model = fit_table(files["parquet"], formula=f"y ~ {FEATURES[0]} + {FEATURES[1]}", solver="lbfgs",
                      progress=False)
    assert model.formula_ is not None and model.target_names_ == ("y",)
    assert model.results_.target_name == "y"
    save_model(model, tmp_path / "gd.json")
    back = load_model(tmp_path / "gd.json")
    assert back.formula_ is not None
    np.testing.assert_array_equal(back.coef_, model.coef_)


def test_predict_table_is_row_aligned_and_keeps_missing_rows_when_asked(files, frame, tmp_path):
    model = fit_table(files["parquet"], target="y", features=FEATURES, progress=False)
    out = pa.Table.from_batches(list(predict_table(model, files["csv"])))
    assert out.column_names == ["prediction"] and out.num_rows == len(frame)
    ref = frame[FEATURES].to_numpy() @ model.coef_ + model.intercept_
    np.testing.assert_allclose(out.column("prediction").to_numpy(), ref, rtol=1e-13, atol=1e-12)
    df = frame[FEATURES].copy()
    df.loc[[3, 7], "x1"] = np.nan
    with pytest.raises(InputError, match="data row 4"):
        list(predict_table(model, df))
    kept = pa.Table.from_batches(list(predict_table(model, df, missing="keep")))
    pred = kept.column("prediction")
    assert pred.null_count == 2 and pred[3].as_py() is None and pred[4].as_py() == pytest.approx(ref[4])
    with pytest.raises(InputError) as e:
        list(predict_table(model, frame[["x1", "x2", "x4"]]))
    assert "'x3'" in str(e.value)


def test_predict_table_intervals_match_the_in_memory_model(files, frame):
    model = fit_table(files["parquet"], target="y", features=FEATURES, progress=False)
    out = pa.Table.from_batches(list(predict_table(model, frame, interval="prediction", level=0.9)))
    assert out.column_names == ["prediction", "lower", "upper"]
    mem = jaxlm.LinearRegression().fit(frame[FEATURES], frame["y"])
    iv = mem.predict_interval(frame[FEATURES], kind="prediction", level=0.9)
    np.testing.assert_allclose(out.column("lower").to_numpy(), iv.lower, rtol=1e-9)
    np.testing.assert_allclose(out.column("upper").to_numpy(), iv.upper, rtol=1e-9)


def test_progress_false_prints_nothing(files, capsys):
    fit_table(files["parquet"], target="y", features=FEATURES, progress=False)
    fit_table(files["parquet"], target="y", features=FEATURES, progress=True)  # stderr is not a terminal here
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_a_source_object_is_reused_as_is(files, frame):
    source = open_table(files["csv"], csv_block_bytes=16_384)
    fit = stream_fit(source, target="y", features=FEATURES, progress=False)
    sk = SkLinearRegression().fit(frame[FEATURES].to_numpy(), frame["y"].to_numpy())
    assert rel_err(fit.model.coef_, sk.coef_) <= REL and fit.source is source


def test_reservoir_includes_every_row_with_probability_k_over_n():
    from jaxlm.io.design import DesignBlock
    from jaxlm.models.sample import _Reservoir

    n, k, trials = 40, 4, 2000
    counts = np.zeros(n)
    X, Y, w = np.zeros((n, 1)), np.zeros((n, 1)), np.ones(n)
    for seed in range(trials):
        r = _Reservoir(k, 1, 1, seed)
        for s in range(0, n, 7):  # ragged blocks
            e = min(n, s + 7)
            r.add(DesignBlock(X[s:e], Y[s:e], w[s:e], s, e - s, None, {}, 0))
        rows = r.sample().rows
        assert len(np.unique(rows)) == k
        counts[rows] += 1
    p = k / n
    se = np.sqrt(p * (1 - p) / trials)
    assert np.all(np.abs(counts / trials - p) < 5 * se)
