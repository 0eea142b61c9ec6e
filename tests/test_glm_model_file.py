"""GLM model files: ``model.save`` / ``jaxlm.load`` round trips, and hostile files refused.

A loaded GLM predicts (mean and link) bit for bit as the fitted one and gives the same
confidence intervals of the mean, standard errors and statistics (recomputed from the stored
working-weights state). Every hostile file is one InputError("model", ...) of one line, never a
model that gives plausible wrong numbers (the style of tests/test_model_file_safety.py).
"""
from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import jaxlm
from jaxlm.core import families
from jaxlm.core.errors import InputError
from jaxlm.io import predict_table
from jaxlm.io.model_schema import FAMILY_LINKS, GLM_PARAMS
from jaxlm.models.glm import GLM, GammaRegressor, LogisticRegression, PoissonRegressor, TweedieRegressor


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    eta = 0.2 + X.to_numpy() @ [0.3, -0.2, 0.1]
    e = rng.uniform(0.5, 2.0, n)
    return X, eta, e, rng


def _models():
    X, eta, e, rng = _data()
    counts = rng.poisson(np.exp(eta) * e).astype(float)
    out = {
        "poisson-exposure": (PoissonRegressor().fit(X, counts, exposure=e), {"exposure": e}),
        "negbin": (GLM(family="negative_binomial", nb_alpha=0.5).fit(X, counts), {}),
        "tweedie": (TweedieRegressor(power=1.5).fit(X, counts), {}),
        "gamma-inverse": (GLM(family="gamma").fit(X, rng.gamma(2.0, 1 / (2.0 + 0.1 * eta))), {}),
        "gamma-log-noint": (GammaRegressor(fit_intercept=False).fit(X, rng.gamma(2.0, np.exp(eta) / 2)), {}),
        "logit-labels": (LogisticRegression(link="cloglog").fit(X, np.where(rng.random(400) < 0.4, "no", "yes")),
                         {}),
        "binomial-offset": (GLM(family="binomial").fit(X, (rng.random(400) < 1 / (1 + np.exp(-eta))).astype(float),
                                                       offset=0.1 * e), {"offset": 0.1 * e}),
    }
    return X, out


MODELS = _models()


@pytest.mark.parametrize("name", list(MODELS[1]))
def test_round_trip_predicts_and_intervals_equal(name, tmp_path):
    X, models = MODELS
    model, opts = models[name]
    path = model.save(tmp_path / "m.json")
    back = jaxlm.load(path)
    assert type(back) is type(model)
    assert back.get_params() == model.get_params()
    assert back.family_ == model.family_ and back.link_.name == model.link_.name
    Xn = X.iloc[:25]
    kw = {k: v[:25] for k, v in opts.items()}
    np.testing.assert_array_equal(back.coef_, model.coef_)
    assert back.intercept_ == model.intercept_
    np.testing.assert_array_equal(back.predict(Xn, **kw, kind="mean"), model.predict(Xn, **kw, kind="mean"))
    np.testing.assert_array_equal(back.predict(Xn, **kw, kind="link"), model.predict(Xn, **kw, kind="link"))
    for method in ("endpoint", "delta"):
        a, b = model.predict_interval(Xn, **kw, level=0.9, method=method), back.predict_interval(Xn, **kw, level=0.9,
                                                                                                   method=method)
        np.testing.assert_array_equal(b.lower, a.lower)
        np.testing.assert_array_equal(b.upper, a.upper)
    r, rb = model.results_, back.results_
    np.testing.assert_array_equal(rb.bse, r.bse)
    for stat in ("deviance", "null_deviance", "pearson_chi2", "scale", "llf", "aic", "bic_llf", "df_resid"):
        assert getattr(rb, stat) == getattr(r, stat), stat
    assert str(back.summary()) == str(model.summary())
    if name == "logit-labels":
        assert list(back.classes_) == ["no", "yes"]
        np.testing.assert_array_equal(back.predict(Xn), model.predict(Xn))
        np.testing.assert_array_equal(back.predict_proba(Xn), model.predict_proba(Xn))
    with pytest.raises(InputError, match="robust"):
        back.results_.cov("HC0")  # the sandwich needs the data


def test_streamed_formula_model_predicts_a_file_with_its_exposure(tmp_path):
    rng = np.random.default_rng(4)
    n = 900
    df = pd.DataFrame({"a": rng.normal(size=n), "g": rng.choice(["x", "y", "z"], n), "e": rng.uniform(0.5, 2.0, n)})
    df["cnt"] = rng.poisson(np.exp(0.3 * df.a + (df.g == "y") * 0.4) * df.e).astype(float)
    data = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), data, row_group_size=100)
    model = jaxlm.fit_table(str(data), formula="cnt ~ a + C(g)", family="poisson", exposure="e", progress=False)
    path = model.save(tmp_path / "m.json")
    assert jaxlm.models.registry.required_columns(path) == ["a", "g", "e"]
    back = jaxlm.load(path)
    assert back.formula_.formula == "cnt ~ a + C(g)" and back.data_columns_["exposure"] == "e"
    out = pa.Table.from_batches(list(predict_table(back, str(data), interval="confidence", level=0.9)))
    assert out.column_names == ["prediction", "lower", "upper"]
    X = np.column_stack([df.a, df.g == "y", df.g == "z"]).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = model.predict_interval(X, exposure=df.e.to_numpy(), level=0.9)
    np.testing.assert_allclose(out.column("prediction").to_numpy(), want.mean, rtol=1e-14)
    np.testing.assert_allclose(out.column("lower").to_numpy(), want.lower, rtol=1e-14)
    np.testing.assert_allclose(out.column("upper").to_numpy(), want.upper, rtol=1e-14)
    per_unit = pa.Table.from_batches(list(predict_table(back, str(data), exposure=False, kind="link")))
    np.testing.assert_allclose(per_unit.column("prediction").to_numpy(), X @ model.coef_ + model.intercept_,
                               rtol=1e-13)
    with pytest.raises(InputError, match="interval must be 'confidence'"):
        predict_table(back, str(data), interval="prediction")


def test_schema_tables_are_in_step_with_the_estimators():
    for name, cls in families._FAMILIES.items():
        assert FAMILY_LINKS[name] == cls.links
    for name in GLM_PARAMS:
        est = getattr(jaxlm.models.glm, name)()
        assert set(GLM_PARAMS[name]) == set(est.get_params()), name


# --------------------------------------------------------------------------- hostile files


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("glm_docs")
    _, models = MODELS
    return {name: json.loads(m.save(tmp / f"{name}.json").read_text()) for name, (m, _) in models.items()}


def _refused(tmp_path, doc) -> str:
    path = tmp_path / "hostile.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(InputError) as e:
        jaxlm.load(path)
    message = str(e.value)
    assert e.value.param == "model", message
    assert "\n" not in message and len(message) < 1000, message
    return message


def _edit(doc, where: str, value):
    doc = copy.deepcopy(doc)
    *path, last = where.split(".")
    target = doc
    for k in path:
        target = target[k]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return doc


_DELETE = object()

HOSTILE = [
    ("negbin", "family.name", "poison", "family.name"),
    ("negbin", "family.name", ["poisson"], "family.name"),
    ("poisson-exposure", "link", "logit", "link"),
    ("poisson-exposure", "link", "__import__('os')", "link"),
    ("gamma-inverse", "link", "cloglog", "link"),
    ("negbin", "family.nb_alpha", -0.5, "nb_alpha"),
    ("negbin", "family.nb_alpha", 0, "nb_alpha"),
    ("negbin", "family.nb_alpha", "NaN", "nb_alpha"),
    ("negbin", "family.nb_alpha", _DELETE, "nb_alpha"),
    ("tweedie", "family.var_power", 2.5, "var_power"),
    ("tweedie", "family.var_power", _DELETE, "var_power"),
    ("poisson-exposure", "family.var_power", 1.5, "unknown family"),
    ("negbin", "params.nb_alpha", -1.0, "params"),
    ("negbin", "params.family", "gamma", "is not the model its params give"),
    ("negbin", "family.nb_alpha", 0.25, "is not the model its params give"),
    ("tweedie", "params.power", 1.7, "is not the model its params give"),
    ("tweedie", "params.power", 2.5, "params"),
    ("logit-labels", "params.link", "identity", "params"),
    ("logit-labels", "classes", _DELETE, "classes"),
    ("logit-labels", "classes", ["yes", "no"], "sorted"),
    ("logit-labels", "classes", ["no", "no"], "distinct"),
    ("logit-labels", "classes", ["no", 1], "one kind"),
    ("negbin", "classes", [0, 1], "classes"),
    ("negbin", "estimator", "GLMX", "estimator"),
    ("negbin", "params.exec", "print(1)", "unknown params"),
    ("negbin", "surprise", 1, "unknown key"),
    ("negbin", "solution.scale", 2.0, "scale"),
    ("tweedie", "solution.scale", 1.0, "scale"),
    ("negbin", "solution.separated", [0], "separated"),
    ("negbin", "solution.nobs", 10**6, "nobs"),
    ("negbin", "solution.llf", "Infinity", "llf"),
    ("negbin", "solution.deviance", -1.0, "deviance"),
    ("negbin", "solution.solver", "newton", "solver"),
    ("negbin", "solution.rank", 7, "rank"),
    ("negbin", "solution.aliased", [0, 0], "aliased"),
    ("negbin", "solution.converged", _DELETE, "missing key"),
    ("negbin", "state", None, "state"),
    ("negbin", "state.kind", "qr", "state"),
    ("negbin", "state.sxx", [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]], "state"),
    ("negbin", "state.count", 0.5, "count"),
    ("negbin", "coef", [[1.0, 2.0]], "coef"),
    ("negbin", "coef", [[1.0, "NaN", 2.0]], "coef"),
    ("negbin", "intercept", [0.1, 0.2], "intercept"),
    ("gamma-log-noint", "intercept", [0.5], "intercept"),
    ("negbin", "target_ndim", 2, "target_ndim"),
    ("negbin", "targets", ["y", "z"], "targets"),
    ("negbin", "offset", 7, "offset"),
    ("negbin", "format_version", 99, "version"),
]


@pytest.mark.parametrize("name,where,value,match", HOSTILE, ids=[f"{h[1]}={h[2]!r}"[:40] for h in HOSTILE])
def test_hostile_glm_files_are_refused(docs, tmp_path, name, where, value, match):
    message = _refused(tmp_path, _edit(docs[name], where, value))
    assert match in message, message


def test_huge_arrays_are_refused_before_they_are_allocated(docs, tmp_path):
    doc = copy.deepcopy(docs["negbin"])
    doc["coef"] = [[0.5] * 3_000_000]
    assert "coef" in _refused(tmp_path, doc)
    doc = copy.deepcopy(docs["negbin"])
    doc["features"] = [f"f{j}" for j in range(5000)]
    assert "max_features" in _refused(tmp_path, doc)
    doc = copy.deepcopy(docs["negbin"])
    doc["state"]["sxx"] = [[1.0] * 2000] * 2000
    assert "state.sxx" in _refused(tmp_path, doc)
    text = json.dumps(docs["negbin"]).replace('"nb_alpha": 0.5', '"nb_alpha": ' + "9" * 5000, 1)
    _refused(tmp_path, text)


def test_a_linear_file_names_every_estimator(tmp_path):
    X, _ = MODELS
    doc = json.loads(jaxlm.LinearRegression().fit(X, X.a * 2 + 1).save(tmp_path / "l.json").read_text())
    doc["estimator"] = "Pickle"
    message = _refused(tmp_path, doc)
    assert "'LinearRegression'" in message and "'PoissonRegressor'" in message
