"""Model files are untrusted data: validated whole before anything is built, bounded, never code.

Every hostile file must be one InputError("model", ...) of one line from ``jaxlm.load`` and exit
code 2 with one line on stderr (no traceback, no output file) from ``jaxlm predict``; never a
model that gives plausible wrong numbers. Legitimate files, including those written before
the schema existed (format version 1, as ``save_model`` writes them), must still load exactly.
"""
from __future__ import annotations

import concurrent.futures
import copy
import json
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxlm
from conftest import subprocess_env
from jaxlm.core.errors import InputError
from jaxlm.io import fit_table, predict_table
from jaxlm.models.registry import read_model_file, required_columns, save_model
from jaxlm.io.model_schema import DEFAULT_LIMITS, PARAMS, SOLVERS, ModelLimits

COMMAND = [sys.executable, "-m", "jaxlm"]
HUGE = "\x00HUGE\x00"          # written as a 5,000-digit integer
HUGE_400 = "\x00HUGE400\x00"    # written as 10**399 (beyond float64)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 300
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n) * 3 + 5,
                       "g": rng.choice(["u", "v", "w"], n)})
    df["y"] = 1.5 - df.a + 0.5 * df.b + (df.g == "v") * 2 + rng.normal(size=n)
    df["y2"] = 2 * df.a + rng.normal(size=n)
    return df


@pytest.fixture(scope="module")
def docs(frame, tmp_path_factory) -> dict:
    """Valid documents as save_model writes them (format version 1)."""
    tmp = tmp_path_factory.mktemp("docs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "formula": fit_table(frame, formula="y ~ a + b + C(g)", progress=False),
            "plain": jaxlm.LinearRegression().fit(frame[["a", "b"]], frame["y"]),
            "qr": jaxlm.LinearRegression(solver="qr").fit(frame[["a", "b"]], frame[["y", "y2"]]),
            "gradient": jaxlm.LinearRegression(solver="lbfgs").fit(frame[["a", "b"]], frame["y"]),
        }
    out = {}
    for name, model in models.items():
        out[name] = json.loads(save_model(model, tmp / f"{name}.json").read_text())
    return out


def _write(path: Path, doc) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _refused(path, *, limits=None) -> str:
    """The one-line message of the InputError that loading ``path`` raises."""
    with pytest.raises(InputError) as e:
        jaxlm.load(path, limits=limits)
    message = str(e.value)
    assert e.value.param == "model", message
    assert "\n" not in message and len(message) < 1000, message
    return message


# --------------------------------------------------------------------------- hostile files


def _zero_state(d: int, row: int | None = None) -> str:
    """A compact zero Gram state of d features (18 MB for d = 3000); ``row`` != d makes the
    declared sizes disagree."""
    row = d if row is None else row
    zeros = lambda k: "[" + ",".join(["0"] * k) + "]"  # noqa: E731
    return ('{"format":"jaxlm-model","format_version":1,"estimator":"LinearRegression","params":{},'
            f'"features":{json.dumps([f"x{j}" for j in range(d)])},"targets":["y"],"target_ndim":1,'
            f'"coef":[{zeros(d)}],"intercept":[0],"solution":{{"solver":"svd","dtype":"float64","rank":0,'
            '"n_iter":1,"converged":true,"diverged":false,"grad_norm":0,"condition_number":"Infinity",'
            '"aliased":[],"refinement_steps":0,"matmul_precision":"highest","sse":[0]},'
            f'"state":{{"kind":"gram","count":2,"wsum":2,"wsum2":2,"mean_x":{zeros(d)},"mean_y":[0],'
            f'"sxx":[{",".join([zeros(row)] * d)}],"sxy":[{",".join(["[0]"] * d)}],"syy":[[0]]}}}}')


def _edit(name: str, change):
    def build(docs):
        doc = copy.deepcopy(docs[name])
        out = change(doc)
        return doc if out is None else out
    return build


def _digits(docs):
    return json.dumps(docs["formula"]).replace('"n_iter": 1', '"n_iter": 1' + "0" * 5000)


def _digits_in_row(docs):
    doc = copy.deepcopy(docs["formula"])
    doc["metadata"] = {"rows": list(range(200)) + ["HUGE"]}
    return json.dumps(doc).replace('"HUGE"', "1" + "0" * 5000)


def _scaled_sxx(doc):
    doc["state"]["sxx"] = [[2 * v for v in row] for row in doc["state"]["sxx"]]


def _null_coef(doc):
    """x carries no data (zero co-moments) yet has a coefficient; sse and intercept agree."""
    s = doc["state"]
    d = len(doc["features"])
    s["sxx"] = [[0.0] * d for _ in range(d)]
    s["sxy"] = [[0.0] for _ in range(d)]
    doc["solution"]["sse"] = [s["syy"][0][0]]
    doc["intercept"] = [s["mean_y"][0] - sum(c * x for c, x in zip(doc["coef"][0], s["mean_x"]))]


def _not_triangular(doc):
    doc["state"]["r"][2][0] = 0.5


HOSTILE = {
    # sizes
    "8,000 levels": (_edit("formula", lambda d: d["formula"].update(levels={"g": [f"l{i:05d}" for i in range(8000)]})),
                     "must agree with the coefficients"),
    "40,000 levels": (_edit("formula", lambda d: d["formula"].update(levels={"g": [f"l{i}" for i in range(40000)]})),
                      "max_levels"),
    "3,000-feature zero state": (lambda docs: _zero_state(3000), "max_features"),
    "mismatched sizes": (lambda docs: _zero_state(400, row=401), "must have shape (400, 400)"),
    "deep nesting": (lambda docs: '{"format": "jaxlm-model", "format_version": 1, "metadata": '
                     + "[" * 100_000 + "]" * 100_000 + "}", "max_depth"),
    "deep statistics": (_edit("formula", lambda d: d.update(statistics=json.loads("[" * 40 + "]" * 40))),
                        "max_depth"),
    "huge statistics": (_edit("plain", lambda d: d.update(statistics={str(i): [0] * 10 for i in range(100_000)})),
                        "max_values"),
    "5,000-digit integer": (_digits, "5,001 digits"),
    "5,000-digit integer in a long array": (_digits_in_row, "not valid JSON"),
    # type confusion
    "n_iter many": (_edit("formula", lambda d: d["solution"].update(n_iter="many")), "'solution.n_iter' must be"),
    "grad_norm x": (_edit("formula", lambda d: d["solution"].update(grad_norm="x")), "'solution.grad_norm' must be"),
    "empty solution": (_edit("formula", lambda d: d.update(solution={})), "missing key 'solution.solver'"),
    "alpha as text": (_edit("formula", lambda d: d["params"].update(alpha="1")), "'params.alpha' must be"),
    "dtype object": (_edit("formula", lambda d: d["params"].update(dtype={})), "'params.dtype' must be"),
    "fit_intercept as 1": (_edit("plain", lambda d: d["params"].update(fit_intercept=1)), "'params.fit_intercept'"),
    "metadata list": (_edit("formula", lambda d: d.update(metadata=[1])), "'metadata' must be an object"),
    "features as text": (_edit("plain", lambda d: d.update(features="a,b")), "'features' must be an array"),
    "coef as text": (_edit("plain", lambda d: d.update(coef=[["1.0", 2.0]])), "'coef' must be an array of numbers"),
    "coef bool": (_edit("plain", lambda d: d.update(coef=[[True, 2.0]])), "'coef' must be an array of numbers"),
    "level object": (_edit("formula", lambda d: d["formula"]["levels"].update(g=["u", {"v": 1}, "w"])),
                     "'formula.levels.g' must be"),
    "levels mixed": (_edit("formula", lambda d: d["formula"]["levels"].update(g=["u", 1, "w"])), "one kind"),
    "levels repeated": (_edit("formula", lambda d: d["formula"]["levels"].update(g=["u", "u", "w"])), "distinct"),
    "bare NaN": (lambda docs: json.dumps({**docs["plain"], "metadata": {"x": "NAN"}}).replace('"NAN"', "NaN"),
                 "bare token NaN"),
    "duplicate key": (lambda docs: json.dumps(docs["plain"])[:-1] + ', "weights": null, "weights": "w"}',
                      "appears twice"),
    "unknown key": (_edit("plain", lambda d: d.update(loader="x")), "unknown"),
    "unknown param": (_edit("plain", lambda d: d["params"].update(colour="red")), "unknown params"),
    "state of an iterative fit": (lambda docs: {**docs["gradient"], "state": docs["plain"]["state"]},
                                  "must be null"),
    "solver mislabelled": (_edit("plain", lambda d: d["solution"].update(solver="lbfgs")), "'solution.solver'"),
    # tampered numbers
    "sse negative": (_edit("formula", lambda d: d["solution"].update(sse=[-1])), "'solution.sse' must be >= 0"),
    "sse doubled": (_edit("formula", lambda d: d["solution"].update(sse=[2 * d["solution"]["sse"][0]])),
                    "'solution.sse' must be the residual sum of squares"),
    "sxx zero": (_edit("formula", lambda d: d["state"].update(sxx=[[0.0] * 4] * 4)), "positive semidefinite"),
    "sxx scaled": (_edit("formula", _scaled_sxx), "'coef' must solve the normal equations"),
    "sxx asymmetric": (_edit("plain", lambda d: d["state"]["sxx"][0].__setitem__(1, d["state"]["sxx"][1][0] + 1)),
                       "symmetric"),
    "coef edited": (_edit("formula", lambda d: d["coef"][0].__setitem__(1, d["coef"][0][1] * 1.001)),
                    "'coef' must solve the normal equations"),
    "intercept edited": (_edit("formula", lambda d: d["intercept"].__setitem__(0, d["intercept"][0] + 0.01)),
                         "'intercept' must pass through the stored means"),
    "coefficient on a column without data": (_edit("plain", _null_coef), "holds no data for"),
    "r not triangular": (_edit("qr", _not_triangular), "upper triangular"),
    "weight sums": (_edit("plain", lambda d: d["state"].update(wsum2=d["state"]["wsum"] ** 2 * 4)), "weight sums"),
    "nan coef": (_edit("plain", lambda d: d.update(coef=[["NaN", 1.0]])), "finite"),
    "huge coef": (lambda docs: _dump({**docs["plain"], "coef": [[HUGE_400, 1.0]]}), "finite"),
    "formula outside the grammar": (_edit("formula", lambda d: d["formula"].update(
        formula="y ~ a + b + C(g) + {__import__('os').getcwd()}")), "formula"),
    "newer version": (_edit("plain", lambda d: d.update(format_version=2)), "Upgrade jaxlm"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_file_is_one_input_error(tmp_path, docs, case):
    build, text = HOSTILE[case]
    path = _write(tmp_path / "m.json", build(docs))
    message = _refused(path)
    assert text in message, message
    assert required_columns(path) is None or case in {
        "sse negative", "sse doubled", "sxx zero", "sxx scaled", "sxx asymmetric", "coef edited", "intercept edited",
        "coefficient on a column without data", "r not triangular", "weight sums", "nan coef", "huge coef"}


def test_a_file_over_a_limit_loads_when_the_limit_is_raised(tmp_path, docs):
    path = _write(tmp_path / "m.json", docs["formula"])
    message = _refused(path, limits={"max_features": 3})
    assert "limits.max_features=3" in message and "limits=" in message
    model = jaxlm.load(path, limits={"max_features": 4})
    assert list(model.coef_) == docs["formula"]["coef"][0]
    assert jaxlm.load(path, limits=ModelLimits(max_levels=3)).formula_.levels == {"g": ["u", "v", "w"]}
    assert "limits.max_bytes=100" in _refused(path, limits={"max_bytes": 100})
    for bad in ({"max_feature": 3}, {"max_features": 0}, {"max_features": True}, 5):
        with pytest.raises(InputError) as e:
            jaxlm.load(path, limits=bad)
        assert e.value.param == "limits"


def test_the_default_limits_are_documented():
    doc = jaxlm.load.__doc__
    assert f"{DEFAULT_LIMITS.max_features:,} features" in doc and f"{DEFAULT_LIMITS.max_levels:,}" in doc
    assert set(PARAMS) == set(jaxlm.LinearRegression().get_params())
    assert set(SOLVERS) == set(sys.modules[jaxlm.LinearRegression.__module__].SOLVERS)


# --------------------------------------------------------------------------- legitimate files


GOLDEN_V1 = (
    '{"format":"jaxlm-model","format_version":1,"jaxlm_version":"0.1.0","estimator":"LinearRegression","params":'
    '{"alpha":0.0,"dtype":"float64","fit_intercept":true,"learning_rate":null,"max_iter":10000,"random_state":null,'
    '"robust":false,"solver":"auto","tol":null,"weights_kind":"frequency"},"features":["a","C(g)[T.v]","C(g)[T.w]"],'
    '"targets":["y"],"target_ndim":1,"coef":[[2.2103238239815735,3.056601806289394,0.46993889635056674]],'
    '"intercept":[1.011811852132975],"solution":{"solver":"cholesky","dtype":"float64","rank":3,"n_iter":1,'
    '"converged":true,"diverged":false,"grad_norm":0.0,"condition_number":1.4995402981170192,"aliased":[],'
    '"refinement_steps":1,"matmul_precision":"highest","sse":[33.577948319239475]},"state":{"kind":"gram",'
    '"count":40.0,"wsum":40.0,"wsum2":40.0,"mean_x":[-0.08175000000000002,0.25,0.3],"mean_y":[1.73625],"sxx":'
    '[[28.6569995,-0.0675,-1.0539999999999994],[-0.0675,7.5,-3.0],[-1.0539999999999994,-3.0,8.4]],"sxy":'
    '[[62.63961249999999],[21.365500000000008],[-7.552]],"syy":[[233.78862350000003]]},"formula":{"formula":'
    '"y ~ a + C(g)","levels":{"g":["u","v","w"]},"features":["a","C(g)[T.v]","C(g)[T.w]"],"targets":["y"],'
    '"fit_intercept":true,"inputs":["a","g"],"outputs":["y"]},"weights":null,"statistics":{"level":0.95,'
    '"cov_type":"nonrobust","targets":[{"target":"y","stats":{"n_obs":40.0,"r_squared":0.856374755039184,'
    '"f_pvalue":3.0716069044021144e-15,"residual_std":"NaN"},"notes":["σ²"],"warnings":[]}]},'
    '"metadata":{"data":"golden.csv","n_rows":40}}')


def test_a_file_written_before_the_schema_loads_exactly(tmp_path):
    """A format-1 file as jaxlm 0.1.0 wrote it (40 rows of y ~ a + C(g)): same numbers, and the
    statistics recomputed from its state agree with the stored ones."""
    path = _write(tmp_path / "old.json", GOLDEN_V1)
    mf = read_model_file(path)
    model = mf.model
    assert model.coef_.tolist() == [2.2103238239815735, 3.056601806289394, 0.46993889635056674]
    assert model.intercept_ == 1.011811852132975
    assert model.formula_.levels == {"g": ["u", "v", "w"]}
    assert model.results_.r_squared == pytest.approx(0.856374755039184, rel=1e-12)
    assert mf.statistics["targets"][0]["stats"]["residual_std"] == "NaN"  # stored data, returned as written
    assert mf.document["metadata"] == {"data": "golden.csv", "n_rows": 40}
    X = pd.DataFrame({"a": [0.5, -1.0], "g": ["v", "u"]})
    got = next(iter(predict_table(model, X, progress=False))).column("prediction").to_numpy()
    np.testing.assert_array_equal(got, [1.011811852132975 + 0.5 * 2.2103238239815735 + 3.056601806289394,
                                        1.011811852132975 - 2.2103238239815735])
    assert required_columns(path) == ["a", "g"]


def test_read_document_validates_without_building_the_estimator(tmp_path, docs):
    """The io layer's document: validated numbers, the state and its factor, the formula."""
    from jaxlm.io.model_file import read_document, write_document

    path = write_document(tmp_path / "m.json", docs["formula"])
    doc = read_document(path)
    assert doc["coef"].dtype == np.float64 and doc["coef"].tolist() == docs["formula"]["coef"]
    assert type(doc["state"]).__name__ == "GramState" and doc["factor"].rank == 4
    assert doc["formula"].features == tuple(docs["formula"]["features"])
    assert doc["solution"]["rank"] == 4 and doc["statistics"] == docs["formula"]["statistics"]
    with pytest.raises(InputError, match="max_depth"):
        read_document(_write(tmp_path / "x.json", HOSTILE["deep statistics"][0](docs)))


def test_statistics_are_recomputed_from_the_state_not_read(tmp_path, docs, frame):
    """The stored statistics are returned as data; the model's own come from its state."""
    doc = copy.deepcopy(docs["plain"])
    doc["statistics"]["targets"][0]["stats"]["r_squared"] = 0.999999
    mf = read_model_file(_write(tmp_path / "m.json", doc))
    assert mf.statistics["targets"][0]["stats"]["r_squared"] == 0.999999
    ref = jaxlm.LinearRegression().fit(frame[["a", "b"]], frame["y"]).results_.r_squared
    assert mf.model.results_.r_squared == pytest.approx(ref, rel=1e-12)


def _fits() -> dict:
    """Fits of every kind the estimator makes, each of which must round-trip."""
    rng = np.random.default_rng(3)
    n = 200
    X = rng.normal(size=(n, 3))
    y = X @ [1.0, -2.0, 0.5] + 3 + rng.normal(size=n)
    w = rng.uniform(0, 4, n)
    dup = np.column_stack([X, X[:, 0] * 2])
    far = X * [1e200, 1.0, 1e-200] + [0.0, 1e9, 0.0]  # state in power-of-two units
    L = jaxlm.LinearRegression
    out = {
        "auto": lambda: L().fit(X, y),
        "cholesky": lambda: L(solver="cholesky").fit(X, y),
        "qr": lambda: L(solver="qr").fit(X, y),
        "svd": lambda: L(solver="svd").fit(X, y),
        "weighted": lambda: L().fit(X, y, sample_weight=w),
        "analytic": lambda: L(weights_kind="analytic").fit(X, y, sample_weight=w),
        "no intercept": lambda: L(fit_intercept=False).fit(X, y),
        "no intercept qr": lambda: L(solver="qr", fit_intercept=False).fit(X, y),
        "ridge": lambda: L(alpha=5.0).fit(X, y),
        "ridge qr no intercept": lambda: L(solver="qr", alpha=5.0, fit_intercept=False).fit(X, y),
        "two targets": lambda: L().fit(X, np.column_stack([y, -y + X[:, 1]])),
        "rank deficient": lambda: L().fit(dup, y),
        "rank deficient qr": lambda: L(solver="qr").fit(dup, y),
        "float32": lambda: L(dtype="float32").fit(X, y),
        "far from the origin": lambda: L().fit(far, y * 1e-100),
        "lbfgs": lambda: L(solver="lbfgs").fit(X, y),
        "partial_fit": lambda: L(solver="cholesky").partial_fit(X[:100], y[:100]).partial_fit(X[100:], y[100:]),
    }
    return out


@pytest.mark.parametrize("kind", list(_fits()))
def test_every_kind_of_fit_round_trips(tmp_path, kind):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _fits()[kind]()
        loaded = jaxlm.load(save_model(model, tmp_path / "m.json"))
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    np.testing.assert_array_equal(loaded.intercept_, model.intercept_)
    assert loaded.rank_ == model.rank_


@pytest.mark.parametrize("name", jaxlm.datasets.nist_names())
def test_nist_fits_round_trip(tmp_path, name):
    """The hardest legitimate states (Filip, Wampler4/5, Longley) pass the consistency checks."""
    ds = jaxlm.datasets.load_nist(name)
    for solver in ("auto", "qr", "cholesky", "svd"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = jaxlm.LinearRegression(solver=solver, fit_intercept=ds.intercept).fit(ds.X, ds.y)
            loaded = jaxlm.load(save_model(model, tmp_path / f"{solver}.json"))
        np.testing.assert_array_equal(loaded.coef_, model.coef_)
        if model.condition_number_ <= 10:  # else the fit refined (XᵀX)⁻¹ with the data, which a file has not
            np.testing.assert_allclose(loaded.results_.std_errors, model.results_.std_errors, rtol=1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 40), d=st.integers(1, 5), scale=st.sampled_from([1e-150, 1e-8, 1.0, 1e6, 1e150]),
       shift=st.sampled_from([0.0, 1.0, 1e8]), solver=st.sampled_from(["auto", "qr", "cholesky", "svd"]),
       weighted=st.booleans(), intercept=st.booleans(), seed=st.integers(0, 2**16))
def test_random_fits_are_never_refused(tmp_path, n, d, scale, shift, solver, weighted, intercept, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * scale + shift
    y = rng.normal(size=n) + X[:, 0] / scale
    w = rng.uniform(0, 3, n) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = jaxlm.LinearRegression(solver=solver, fit_intercept=intercept).fit(X, y, sample_weight=w)
        except InputError:
            return  # data the estimator refuses (e.g. a coefficient beyond float64)
        loaded = jaxlm.load(save_model(model, tmp_path / "m.json"))
    np.testing.assert_array_equal(loaded.coef_, model.coef_)


# --------------------------------------------------------------------------- payloads: data never runs

MARKER_CMD = "touch {marker}"
PAYLOADS = [
    "{{np.f2py.os.system('{cmd}')}}",
    "np.f2py.os.system('{cmd}')",
    "__import__('os').system('{cmd}')",
    "eval(\"__import__('os').system('{cmd}')\")",
    "exec(\"import os; os.system('{cmd}')\")",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__class__.__init__.__globals__['os'].system('{cmd}')",
    "y ~ I(np.f2py.os.system('{cmd}'))",
    "y ~ a + {{__import__('os').system('{cmd}')}}",
]


def _string_paths(doc, path=(), *, keys: bool = True):
    """Paths of every string value (and of the keys of free-form objects) in a document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if keys and ((path and path[0] in ("metadata", "statistics")) or path[-1:] == ("levels",)):
                yield path + (("key", k),)
            yield from _string_paths(v, path + (k,), keys=keys)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _string_paths(v, path + (i,), keys=keys)
    elif isinstance(doc, str):
        yield path


def _set(doc, path, value):
    *head, last = path
    for p in head:
        doc = doc[p]
    if isinstance(last, tuple):  # a key
        doc[value] = doc.pop(last[1])
    else:
        doc[last] = value


@pytest.mark.slow
def test_no_string_field_reaches_code(tmp_path, docs, frame):
    """Every string field of a model file (formula, features, targets, levels, params, solution,
    metadata, statistics, estimator, weights) holds each payload in turn: loading refuses the
    file or loads it as data, predicting runs nothing, and the marker never appears."""
    marker = tmp_path / "MARKER"
    base = copy.deepcopy(docs["formula"])
    base["weights"] = "w"
    base["metadata"] = {"data": "d.csv", "note": "text"}
    paths = list(_string_paths(base))
    free = [p for p in paths if p[0] in ("statistics", "metadata")]
    paths = [p for p in paths if p[0] not in ("statistics", "metadata")] + random.Random(0).sample(free, 8)
    # and every params and solution value, whatever its type (a text where a number belongs)
    paths += [(k, name) for k in ("params", "solution") for name in base[k] if (k, name) not in paths]
    tried = loaded = 0
    for path in paths:  # free-form data (statistics, metadata) is never read: two payloads each suffice
        for payload in PAYLOADS if path[0] not in ("statistics", "metadata") else PAYLOADS[:2]:
            text = payload.format(cmd=MARKER_CMD.format(marker=marker))
            doc = copy.deepcopy(base)
            _set(doc, path, text)
            p = _write(tmp_path / "m.json", doc)
            tried += 1
            try:
                model = jaxlm.load(p)
            except InputError as e:
                assert e.param == "model" and "\n" not in str(e), str(e)
                continue
            loaded += 1
            try:  # a payload that became a level or a column name is data: the frame does not have it
                out = list(predict_table(model, frame, progress=False))
            except InputError as e:
                assert e.param in ("data", "X") and "\n" not in str(e), str(e)
                continue
            assert np.isfinite(np.concatenate([b.column("prediction").to_numpy() for b in out])).all()
    assert not marker.exists()
    assert tried > 250 and 0 < loaded < tried  # free-form text loads (as data); code-like names are refused


# --------------------------------------------------------------------------- fuzzing


def _all_paths(doc, path=()):
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _all_paths(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:4]):
            yield from _all_paths(v, path + (i,))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8) | st.sampled_from(["NaN", "Infinity", "-Infinity", "", HUGE, 1e308, -1.0, 0, 2**63]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8)


def _mutate(doc, path, action, value):
    """Apply one mutation at ``path`` (the root cannot be deleted)."""
    if not path:
        return
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    key = path[-1]
    if action == "delete":
        if isinstance(parent, dict):
            del parent[key]
        else:
            del parent[key]
    elif action == "replace":
        parent[key] = value
    elif action == "nest":
        parent[key] = [parent[key]]
    elif action == "shorten" and isinstance(parent[key], list) and parent[key]:
        parent[key] = parent[key][:-1]
    elif action == "lengthen" and isinstance(parent[key], list) and parent[key]:
        parent[key] = parent[key] + parent[key][-1:]
    elif action == "negate" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
        parent[key] = -parent[key] - 1


def _dump(doc) -> str:
    """JSON text, with the HUGE markers written as the integers they stand for."""
    return json.dumps(doc).replace(json.dumps(HUGE), "9" * 5000).replace(json.dumps(HUGE_400), "1" + "0" * 399)


def _check_loads_or_refuses(path: Path, frame) -> None:
    try:
        model = jaxlm.load(path)
    except InputError as e:
        assert e.param == "model" and "\n" not in str(e)
        return
    coef = np.atleast_2d(model.coef_)
    X = None
    if model.formula_ is None:
        names = list(model.feature_names_in_)
        if all(c in frame.columns for c in names):
            X = frame[names]
        else:  # a plain model may name its features anything (e.g. 'C(g)[T.v]' once the formula is deleted)
            rng = np.random.default_rng(0)
            X = pd.DataFrame(rng.normal(size=(len(frame), len(names))), columns=names)
    if X is not None:
        pred = np.asarray(model.predict(X), dtype=np.float64).reshape(len(X), -1)
        want = X.to_numpy() @ coef.T + np.atleast_1d(model.intercept_)
    else:
        out = predict_table(model, frame, progress=False)
        pred = np.concatenate([b.column("prediction").to_numpy() for b in out])
        enc, _ = model.formula_.encode(pa_table(frame), targets=False)
        want = (enc @ coef.T + np.atleast_1d(model.intercept_)).reshape(pred.shape)
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def pa_table(frame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_files_load_exactly_or_are_refused(tmp_path, docs, frame, data):
    name = data.draw(st.sampled_from(["formula", "plain", "qr", "gradient"]))
    doc = copy.deepcopy(docs[name])
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_all_paths(doc))
        path = data.draw(st.sampled_from(paths))
        action = data.draw(st.sampled_from(["delete", "replace", "nest", "shorten", "lengthen", "negate"]))
        _mutate(doc, path, action, data.draw(JSON_VALUES) if action == "replace" else None)
    _check_loads_or_refuses(_write(tmp_path / "m.json", _dump(doc)), frame)


# --------------------------------------------------------------------------- through the CLI


def _mutations(docs, k: int) -> list[str]:
    rng = random.Random(11)
    out = []
    for _ in range(k):
        doc = copy.deepcopy(docs["formula"])
        paths = list(_all_paths(doc))
        path = paths[rng.randrange(1, len(paths))]
        action = rng.choice(["delete", "replace", "nest", "shorten", "lengthen", "negate"])
        _mutate(doc, path, action, rng.choice([None, "x", -1, 10**30, [], {}, "NaN", HUGE, [[1]]]))
        out.append(_dump(doc))
    return out


@pytest.fixture(scope="module")
def cli_runs(docs, frame, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("cli_model_files")
    data = tmp / "data.csv"
    frame.to_csv(data, index=False)
    cases = {}
    for name in CLI_CASES:
        cases[name] = _write(tmp / f"hostile-{len(cases)}.json", HOSTILE[name][0](docs))
    for i, text in enumerate(_mutations(docs, 8)):
        cases[f"mutation {i}"] = _write(tmp / f"mutation-{i}.json", text)
    marker = tmp / "MARKER"
    for i, payload in enumerate(PAYLOADS[:4]):
        doc = copy.deepcopy(docs["formula"])
        doc["formula"]["formula"] = "y ~ a + b + C(g) + " + payload.format(cmd=f"touch {marker}")
        cases[f"payload {i}"] = _write(tmp / f"payload-{i}.json", doc)
    env = subprocess_env()

    def run(name, path):
        out = tmp / f"out-{abs(hash(name))}.csv"
        r = subprocess.run(COMMAND + ["predict", str(path), str(data), "-o", str(out), "--quiet"],
                           capture_output=True, text=True, env=env, cwd=tmp, timeout=300)
        return r, out.exists()

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run, name, path) for name, path in cases.items()}
        runs = {name: fut.result() for name, fut in futures.items()}
    return {"runs": runs, "marker": marker}


#: The cases of the issue, run through ``jaxlm predict`` (each process takes seconds).
CLI_CASES = ["8,000 levels", "40,000 levels", "3,000-feature zero state", "mismatched sizes", "deep nesting",
             "deep statistics", "huge statistics", "5,000-digit integer", "5,000-digit integer in a long array",
             "n_iter many", "grad_norm x", "empty solution", "alpha as text", "dtype object", "metadata list",
             "sse negative", "sse doubled", "sxx zero", "sxx scaled", "coefficient on a column without data",
             "unknown param", "bare NaN"]


@pytest.mark.slow
@pytest.mark.parametrize("case", CLI_CASES + [f"payload {i}" for i in range(4)])
def test_predict_refuses_a_hostile_file_in_one_line(cli_runs, case):
    r, wrote = cli_runs["runs"][case]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert lines[0].startswith("jaxlm predict: ") and "model" in lines[0]
    assert not wrote
    assert not cli_runs["marker"].exists()


@pytest.mark.slow
@pytest.mark.parametrize("i", range(8))
def test_predict_on_a_mutated_file_exits_0_or_2(cli_runs, i):
    r, wrote = cli_runs["runs"][f"mutation {i}"]
    assert r.returncode in (0, 2) and "Traceback" not in r.stderr, (r.returncode, r.stderr[-2000:])
    assert wrote == (r.returncode == 0)
    if r.returncode == 2:
        assert len(r.stderr.strip().splitlines()) == 1
