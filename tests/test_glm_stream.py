"""GLMs beyond memory: a streamed file (``jaxlm.fit_table(..., family=...)``, one pass per IRLS
iteration) and Dask collections (every pass a tree reduction on the workers) equal the in-memory
``GLM().fit`` on the same rows to ≤ 1e-10.

The in-memory reference builds its design with formulaic directly (not jaxlm's formula code),
and the streamed file has many row groups with every level of the categorical spread over them.
"""
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from formulaic import model_matrix

import jaxlm
from jaxlm.core.errors import InputError
from jaxlm.io.sources import open_table
from jaxlm.models import glm_tables
from jaxlm.models.glm import GLM, LogisticRegression, PoissonRegressor

TOL = 1e-10


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _frame(n=6000, seed=3):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(0, 3, n), "g": rng.choice(list("pqrstu"), n),
                       "off": rng.normal(size=n) * 0.1, "e": rng.uniform(0.5, 2.0, n),
                       "w": rng.integers(0, 4, n).astype(float), "v": rng.uniform(0.5, 2.0, n)})
    eta = 0.1 + 0.3 * df.a - 0.2 * df.b + (df.g == "q") * 0.5 - (df.g == "t") * 0.3
    df["cnt"] = rng.poisson(np.exp(eta + df.off + np.log(df.e))).astype(float)
    df["yes"] = (rng.random(n) < 1 / (1 + np.exp(-eta - df.off))).astype(float)
    return df


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    df = _frame()
    path = tmp_path_factory.mktemp("glm") / "data.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=250)  # 24 row groups
    assert pq.ParquetFile(path).num_row_groups == 24
    return df, path


def _counting(path):
    """The file's source, counting the passes made over it (a pass reads every block)."""
    source = open_table(str(path))
    calls = []
    blocks = source.blocks

    def counted(*args, **kwargs):
        calls.append(1)
        return blocks(*args, **kwargs)

    source.blocks = counted
    return source, calls


CASES = {
    "poisson": dict(family="poisson", target="cnt", options=dict(offset="off", exposure="e", weights="w")),
    "logistic": dict(family="binomial", target="yes", options=dict(offset="off", weights="w", var_weights="v")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_streamed_fit_equals_in_memory_with_formula_offsets_and_weights(parquet, case, monkeypatch):
    monkeypatch.setattr(glm_tables, "KEEP_BYTES", 0)  # re-read the file on every pass
    df, path = parquet
    c = CASES[case]
    formula = f"{c['target']} ~ a + b + C(g)"
    source, calls = _counting(path)
    fit = glm_tables.stream_glm(source, formula=formula, family=c["family"], progress=False, **c["options"])
    m = fit.model
    # the reference: formulaic's design, the in-memory estimator
    mm = model_matrix(formula, df)
    X, y = np.asarray(mm.rhs)[:, 1:], df[c["target"]].to_numpy()
    o = c["options"]
    ref = GLM(family=c["family"]).fit(X, y, sample_weight=df[o["weights"]].to_numpy(), offset=df.off.to_numpy(),
                                      exposure=df.e.to_numpy() if "exposure" in o else None,
                                      var_weights=df.v.to_numpy() if "var_weights" in o else None)
    assert list(m.feature_names_in_) == list(mm.rhs.columns)[1:]
    assert m.converged_ and ref.converged_
    assert _rel(np.r_[m.intercept_, m.coef_], np.r_[ref.intercept_, ref.coef_]) <= TOL
    r, rr = m.results_, ref.results_
    assert _rel(r.bse, rr.bse) <= TOL
    for name in ("deviance", "null_deviance", "pearson_chi2", "llf", "aic"):
        assert abs(getattr(r, name) - getattr(rr, name)) <= TOL * abs(getattr(rr, name)), name
    assert r.nobs == rr.nobs == int((df.w > 0).sum())
    # one pass over the file per pass of the fit (levels pass + every reduction), none cached
    assert len(calls) == fit.passes >= m.n_iter_ + 3
    assert fit.n_read == fit.n_rows == len(df) and fit.n_dropped == 0
    Xn = X[:50]
    np.testing.assert_allclose(m.predict(pd.DataFrame(Xn, columns=list(m.feature_names_in_)), offset=df.off[:50], exposure=df.e[:50] if "exposure" in o else None),
                               ref.predict(Xn, offset=df.off[:50], exposure=df.e[:50] if "exposure" in o else None),
                               rtol=TOL)


def test_fit_table_dispatches_on_family_and_keeps_the_linear_path(parquet):
    df, path = parquet
    glm = jaxlm.fit_table(str(path), formula="cnt ~ a + b", family="poisson", exposure="e", progress=False)
    assert isinstance(glm, GLM) and glm.family_.name == "poisson" and glm.data_columns_["exposure"] == "e"
    ref = PoissonRegressor().fit(df[["a", "b"]].to_numpy(), df.cnt.to_numpy(), exposure=df.e.to_numpy())
    assert _rel(np.r_[glm.intercept_, glm.coef_], np.r_[ref.intercept_, ref.coef_]) <= TOL
    plain = jaxlm.fit_table(str(path), formula="cnt ~ a + b", progress=False)
    same = jaxlm.fit_table(str(path), formula="cnt ~ a + b", family=None, progress=False)
    assert type(plain).__name__ == type(same).__name__ == "LinearRegression"
    np.testing.assert_array_equal(plain.coef_, same.coef_)
    # without a formula: every other column but the per-row ones are features
    cols = jaxlm.fit_table(df[["a", "b", "cnt", "e"]], target="cnt", family="poisson", exposure="e", progress=False)
    assert list(cols.feature_names_in_) == ["a", "b"]
    np.testing.assert_allclose(cols.coef_, ref.coef_, rtol=TOL)


def test_streamed_memory_is_bounded_and_nothing_is_concatenated(tmp_path, monkeypatch):
    """100,000 rows in 50 row groups re-read on every pass: the peak of NumPy allocations stays a
    small fraction of the decoded data (a whole-file concatenation would exceed it)."""
    monkeypatch.setattr(glm_tables, "KEEP_BYTES", 0)
    rng = np.random.default_rng(9)
    n, d = 100_000, 6
    X = rng.normal(size=(n, d))
    e = rng.uniform(0.5, 2.0, n)
    y = rng.poisson(np.exp(0.2 + X @ np.linspace(-0.2, 0.2, d)) * e).astype(float)
    table = pa.table({**{f"x{j}": X[:, j] for j in range(d)}, "y": y, "e": e})
    path = tmp_path / "big.parquet"
    pq.write_table(table, path, row_group_size=2000)
    tracemalloc.start()
    try:
        m = jaxlm.fit_table(str(path), target="y", family="poisson", exposure="e", progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    decoded = n * (d + 2) * 8
    assert peak < 0.2 * decoded, (peak, decoded)
    ref = PoissonRegressor().fit(X, y, exposure=e)
    assert _rel(np.r_[m.intercept_, m.coef_], np.r_[ref.intercept_, ref.coef_]) <= TOL


def test_streamed_bad_values_name_column_and_data_row(tmp_path):
    df = _frame(400)
    df.loc[123, "e"] = 0.0
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=100)
    with pytest.raises(InputError, match=r"exposure must be a finite number > 0; got column 'e' = 0.0 at data row 124"):
        jaxlm.fit_table(str(path), formula="cnt ~ a", family="poisson", exposure="e", progress=False)
    df = _frame(400)
    df.loc[250, "cnt"] = -1.0
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=100)
    with pytest.raises(InputError, match=r"column 'cnt' = -1.0 at data row 251"):
        jaxlm.fit_table(str(path), formula="cnt ~ a", family="poisson", progress=False)
    with pytest.raises(InputError, match="solver='irls'"):
        jaxlm.fit_table(str(path), formula="cnt ~ a", family="poisson", solver="lbfgs", progress=False)
    with pytest.raises(InputError, match="family must be one of"):
        jaxlm.fit_table(str(path), formula="cnt ~ a", family="poison", progress=False)


def test_streamed_missing_offsets_raise_or_are_dropped(tmp_path):
    df = _frame(600)
    df.loc[[10, 333], "off"] = np.nan
    path = tmp_path / "missing.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=100)
    with pytest.raises(InputError, match=r"missing values .* column\(s\) 'off' \(1 row\): 1 row in the rows read "
                                         r"so far, the first at data row 11"):
        jaxlm.fit_table(str(path), formula="yes ~ a + C(g)", family="binomial", offset="off", progress=False)
    fit = glm_tables.stream_glm(str(path), formula="yes ~ a + C(g)", family="binomial", offset="off",
                                missing="drop", progress=False)
    assert fit.n_dropped == 2 and fit.n_rows == 598 and fit.dropped_by_column == {"off": 2}
    kept = df.dropna(subset=["off"])
    X = np.asarray(model_matrix("yes ~ a + C(g)", kept).rhs)[:, 1:]
    ref = LogisticRegression().fit(X, kept.yes.to_numpy(), offset=kept.off.to_numpy())
    assert _rel(np.r_[fit.model.intercept_, fit.model.coef_], np.r_[ref.intercept_, ref.coef_]) <= TOL


# --------------------------------------------------------------------------- Dask
da = pytest.importorskip("dask.array")


@pytest.fixture()
def synchronous():
    import dask

    with dask.config.set(scheduler="synchronous"):
        yield


def test_dask_poisson_with_every_option_equals_in_memory(synchronous):
    df = _frame(8000, seed=5)
    X = df[["a", "b"]].to_numpy()
    y, w, off, e, v = (df[c].to_numpy() for c in ("cnt", "w", "off", "e", "v"))
    ref = GLM(family="poisson").fit(X, y, sample_weight=w, offset=off, exposure=e, var_weights=v)
    got = GLM(family="poisson").fit(da.from_array(X, chunks=(1100, 2)), da.from_array(y, chunks=1500),
                                    sample_weight=da.from_array(w, chunks=900), offset=off,
                                    exposure=da.from_array(e, chunks=2000), var_weights=da.from_array(v, chunks=700))
    assert _rel(np.r_[got.intercept_, got.coef_], np.r_[ref.intercept_, ref.coef_]) <= TOL
    assert _rel(got.results_.bse, ref.results_.bse) <= TOL
    for name in ("deviance", "null_deviance", "llf", "pearson_chi2"):
        assert abs(getattr(got.results_, name) - getattr(ref.results_, name)) <= TOL * abs(getattr(ref.results_, name))


def test_dask_logistic_labels_and_dataframe_names(synchronous):
    dd = pytest.importorskip("dask.dataframe")
    df = _frame(5000, seed=6)
    labels = np.where(df.yes > 0, "sick", "well")
    ref = LogisticRegression(link="probit").fit(df[["a", "b"]], labels)
    got = LogisticRegression(link="probit").fit(dd.from_pandas(df[["a", "b"]], npartitions=7),
                                                da.from_array(labels, chunks=-1).rechunk(
                                                    dd.from_pandas(df[["a", "b"]], npartitions=7)
                                                    .to_dask_array(lengths=True).chunks[0]))
    assert list(got.classes_) == ["sick", "well"] and list(got.feature_names_in_) == ["a", "b"]
    assert _rel(np.r_[got.intercept_, got.coef_], np.r_[ref.intercept_, ref.coef_]) <= TOL
    assert _rel(got.results_.bse, ref.results_.bse) <= TOL
    np.testing.assert_array_equal(got.predict(df[["a", "b"]]), ref.predict(df[["a", "b"]]))


def test_dask_errors(synchronous):
    X = da.from_array(np.random.default_rng(0).normal(size=(100, 2)), chunks=(30, 2))
    y = da.from_array(np.arange(100.0) % 3, chunks=30)
    with pytest.raises(InputError, match="solver='irls'"):
        GLM(family="poisson", solver="lbfgs").fit(X, y)
    with pytest.raises(InputError, match="exposure must be a finite number > 0"):
        GLM(family="poisson").fit(X, y, exposure=np.r_[0.0, np.ones(99)])
    with pytest.raises(InputError, match="exactly two class labels"):
        LogisticRegression().fit(X, y)
    with pytest.raises(InputError, match="y must be"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            GLM(family="poisson").fit(X, y - 1.0)
