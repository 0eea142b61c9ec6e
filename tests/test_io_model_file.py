"""jaxlm.io.model_file: JSON model files round-trip exactly and refuse anything else."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest

import jaxlm
from jaxlm.core.errors import InputError
from jaxlm.io import FORMAT_VERSION, fit_table, load_model, save_model
from jaxlm.io.model_file import atomic_write
from jaxlm.models.registry import read_model_file


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 500
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n) * 4 + 10,
                       "g": rng.choice(["u", "v", "w"], n)})
    df["y"] = 2 - df.a + 0.25 * df.b + (df.g == "v") * 3 + rng.normal(size=n)
    df["y2"] = df.a * 2 + rng.normal(size=n)
    return df


@pytest.fixture(scope="module")
def models(frame):
    plain = jaxlm.LinearRegression().fit(frame[["a", "b"]], frame["y"])
    multi = jaxlm.LinearRegression(solver="qr").fit(frame[["a", "b"]], frame[["y", "y2"]])
    formula = fit_table(frame, formula="y ~ a * b + C(g)", progress=False)
    gradient = jaxlm.LinearRegression(solver="lbfgs").fit(frame[["a", "b"]], frame["y"])
    return {"plain": plain, "multi": multi, "formula": formula, "gradient": gradient}


@pytest.mark.parametrize("name", ["plain", "multi", "formula", "gradient"])
def test_round_trip_is_exact(tmp_path, models, frame, name):
    model = models[name]
    path = save_model(model, tmp_path / "m.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "jaxlm-model" and doc["format_version"] == FORMAT_VERSION
    assert doc["jaxlm_version"] == jaxlm.__version__
    loaded = load_model(path)
    assert isinstance(loaded, jaxlm.LinearRegression)
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    np.testing.assert_array_equal(loaded.intercept_, model.intercept_)
    assert list(loaded.feature_names_in_) == list(model.feature_names_in_)
    assert loaded.get_params() == model.get_params()
    assert loaded.solver_ == model.solver_ and loaded.rank_ == model.rank_
    if name != "formula":
        cols = ["a", "b"]
        np.testing.assert_array_equal(loaded.predict(frame[cols]), model.predict(frame[cols]))
    if name in ("plain", "formula") and hasattr(model, "predict_interval"):
        X = frame[["a", "b"]] if name == "plain" else pd.DataFrame(
            np.zeros((3, len(model.feature_names_in_))) + 1.0, columns=model.feature_names_in_)
        a = model.predict_interval(X, kind="prediction")
        b = loaded.predict_interval(X, kind="prediction")
        np.testing.assert_allclose(b.lower, a.lower, rtol=1e-12)
        np.testing.assert_allclose(b.upper, a.upper, rtol=1e-12)
    if name == "formula":
        assert loaded.formula_.levels == {"g": ["u", "v", "w"]}
        assert loaded.formula_.features == model.formula_.features


def test_statistics_are_stored_when_the_model_has_them(tmp_path, models):
    model = models["plain"]
    doc = json.loads(save_model(model, tmp_path / "m.json").read_text())
    if getattr(model, "results_", None) is None:
        assert doc["statistics"] is None
    else:  # the model's own summary, as data: R² as the model reports it
        assert isinstance(doc["statistics"], dict)
        stats = doc["statistics"]["targets"][0]["stats"]
        assert stats["r_squared"] == pytest.approx(model.results_.r_squared, rel=1e-12)
    doc = json.loads(save_model(model, tmp_path / "m2.json", statistics={"r2": float("nan")}).read_text())
    assert doc["statistics"] == {"r2": "NaN"}  # strict JSON: non-finite numbers as strings


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path, models):
    path = tmp_path / "m.json"
    save_model(models["plain"], path)
    before = path.read_bytes()

    def fail(fh):
        fh.write(b"{partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]
    with pytest.raises(InputError, match="existing directory"):
        save_model(models["plain"], tmp_path / "nope" / "m.json")
    with pytest.raises(InputError, match="fitted"):
        save_model(jaxlm.LinearRegression(), tmp_path / "u.json")


def _edit(tmp_path, models, change, name="plain"):
    path = save_model(models[name], tmp_path / "m.json")
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


EDITS = {
    "newer version": (lambda d: d.update(format_version=FORMAT_VERSION + 1), "Upgrade jaxlm"),
    "not ours": (lambda d: d.update(format="something-else"), "not a jaxlm model"),
    "coef shape": (lambda d: d.update(coef=[d["coef"][0][:1]]), "'coef' must have shape"),
    "feature count": (lambda d: d["features"].append("c"), "'coef' must have shape"),
    "missing key": (lambda d: d.pop("intercept"), "missing key 'intercept'"),
    "wrong type": (lambda d: d.update(features="a,b"), "'features' must be an array"),
    "text number": (lambda d: d.update(coef=[["1.0", 2.0]]), "'coef' must be an array of numbers"),
    "bad param": (lambda d: d["params"].update(solver="magic"), "invalid params"),
    "unknown param": (lambda d: d["params"].update(colour="red"), "unknown params"),
    "duplicate names": (lambda d: d.update(features=["a", "a"]), "distinct"),
    "state shape": (lambda d: d["state"].update(sxx=[[1.0]]), "'state.sxx' must have shape"),
    "nan coef": (lambda d: d.update(coef=[["NaN", 1.0]]), "finite"),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_inconsistent_files_are_refused_with_the_reason(tmp_path, models, case):
    change, text = EDITS[case]
    path = _edit(tmp_path, models, change)
    with pytest.raises(InputError) as e:
        load_model(path)
    assert e.value.param == "model" and text in str(e.value), str(e.value)


def test_an_edited_formula_is_refused(tmp_path, models):
    path = _edit(tmp_path, models, lambda d: d["formula"].update(formula="y ~ a + C(g)"), name="formula")
    with pytest.raises(InputError, match="formula"):
        load_model(path)
    path = _edit(tmp_path, models, lambda d: d["formula"]["levels"].update(g=["u", "v"]), name="formula")
    with pytest.raises(InputError, match="encodes"):
        load_model(path)


@pytest.mark.parametrize("content,text", [
    (b"", "not JSON"),
    (b"hello", "not JSON"),
    (b"[1, 2, 3]", "not a jaxlm model"),
    (b"\xff\xfe\x00", "UTF-8"),
    (pickle.dumps({"coef": [1.0]}), "pickle"),
])
def test_files_that_are_not_model_files_are_refused(tmp_path, content, text):
    p = tmp_path / "x.json"
    p.write_bytes(content)
    with pytest.raises(InputError) as e:
        load_model(p)
    assert text in str(e.value)
    with pytest.raises(InputError, match="no such file"):
        load_model(tmp_path / "absent.json")


def test_loading_does_not_modify_the_file(tmp_path, models):
    path = save_model(models["formula"], tmp_path / "m.json")
    raw, mtime = path.read_bytes(), os.stat(path).st_mtime_ns
    read_model_file(path)
    assert path.read_bytes() == raw and os.stat(path).st_mtime_ns == mtime


def test_a_loaded_exact_model_continues_with_partial_fit(tmp_path, frame):
    model = jaxlm.LinearRegression(solver="cholesky")
    model.partial_fit(frame[["a", "b"]].iloc[:300], frame["y"].iloc[:300])
    loaded = load_model(save_model(model, tmp_path / "m.json"))
    loaded.partial_fit(frame[["a", "b"]].iloc[300:], frame["y"].iloc[300:])
    ref = jaxlm.LinearRegression(solver="cholesky").fit(frame[["a", "b"]], frame["y"])
    np.testing.assert_allclose(loaded.coef_, ref.coef_, rtol=1e-10)
