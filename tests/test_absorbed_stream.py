"""Absorbed fixed effects streamed from a file (one pass for one factor; one pass per
conjugate-gradient iteration for several): coefficients, fixed effects, predictions and every
covariance equal the fit of the same rows in memory (≤ 1e-10), with levels and clusters spread
over many Parquet row groups and CSV blocks; missing values get one clear error."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import jaxlm
from jaxlm.models.absorbed import fit_absorbed

N = 900


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(4)
    firm = rng.integers(0, 40, N)
    year = rng.integers(2000, 2010, N)
    df = pd.DataFrame({"firm": np.char.add("f", firm.astype(str)), "year": year, "state": firm % 7,
                       "x1": rng.normal(size=N) + firm * 0.1, "x2": rng.normal(size=N) + 50.0,
                       "w": rng.integers(1, 4, N).astype(float)})
    df["y"] = (df.x1 - 0.5 * df.x2 + rng.normal(size=40)[firm] + rng.normal(size=10)[year - 2000]
               + rng.normal(size=N) * (1 + df.x1.abs()))
    return df


@pytest.fixture(scope="module")
def files(panel, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("absorbed_stream")
    pq.write_table(pa.Table.from_pandas(panel, preserve_index=False), tmp / "p.parquet", row_group_size=41)
    panel.to_csv(tmp / "p.csv", index=False, float_format="%.17g")
    return tmp


CASES = {
    "one-way": dict(formula="y ~ x1 + x2 | firm"),
    "one-way cluster": dict(formula="y ~ x1 + x2 | firm", cov_type="cluster", cluster="firm"),
    "two-way cluster nested": dict(formula="y ~ x1 + x2 | firm + year", cov_type="cluster", cluster="state",
                                   fixef_k="nested"),
    "two-way two clusters": dict(formula="y ~ x1 + x2 | firm + year", cov_type="cluster",
                                 cluster=["firm", "year"], weights="w"),
    "HAC": dict(formula="y ~ x1 + C(state) | year", cov_type="HAC", hac_maxlags=3),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_streamed_equals_memory(panel, files, case, kind):
    kw = CASES[case]
    mem = fit_absorbed(panel, **kw)
    got = jaxlm.fit_table(str(files / f"p.{kind}"), **kw)
    np.testing.assert_allclose(got.coef_, mem.coef_, rtol=1e-10)
    for cov in {"nonrobust", kw.get("cov_type", "nonrobust")}:
        np.testing.assert_allclose(got.results_.cov(cov), mem.results_.cov(cov), rtol=1e-10, atol=1e-300)
        assert got.results_.inference_df(cov) == mem.results_.inference_df(cov)
    assert got.results_.n_levels == mem.results_.n_levels
    assert got.summary().splitlines()[1:4] == mem.summary().splitlines()[1:4]  # factors, N, R², the covariance
    if kind == "parquet":  # the same level values: the same effects and predictions
        for f, eff in got.fixef().items():
            if len(kw["formula"].split("|")[1].split("+")) == 1:  # one factor: the effects are identified
                pd.testing.assert_series_equal(eff.sort_index(), mem.fixef()[f].sort_index(), rtol=1e-10)
        np.testing.assert_allclose(got.predict(panel), mem.predict(panel), rtol=1e-10)


def test_streamed_missing_values_are_refused(panel, tmp_path):
    df = panel.copy()
    df["firm"] = df.firm.where(np.arange(N) != 100, None)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "fe.parquet", row_group_size=50)
    with pytest.raises(jaxlm.InputError, match="fixed-effect or cluster column 'firm' must have a value on every row"
                                               ".*data row 101"):
        jaxlm.fit_table(str(tmp_path / "fe.parquet"), formula="y ~ x1 | firm")
    df = panel.copy()
    df.loc[300, "x1"] = np.nan
    df.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(jaxlm.InputError, match=r"missing values \(empty, null or NaN\) in column\(s\) 'x1' \(1 row\): 1 row in the rows read so far, "
                                               r"the first at data row 301"):
        jaxlm.fit_table(str(tmp_path / "x.csv"), formula="y ~ x1 | firm + year")
    with pytest.raises(jaxlm.InputError, match="Did you mean 'firm'"):
        jaxlm.fit_table(str(tmp_path / "x.csv"), formula="y ~ x2 | frim")


@pytest.mark.parametrize("formula", ["y ~ x1 + x2 | firm", "y ~ x1 + x2 | firm + year"])
def test_level_tables_are_bounded(files, monkeypatch, formula):
    """A streamed factor's per-level tables stop at absorb.MAX_BYTES with a clear error (here set
    below what the panel's 40 levels need: 960 bytes for one factor)."""
    from jaxlm.core import absorb

    monkeypatch.setattr(absorb, "MAX_BYTES", 500)
    with pytest.raises(jaxlm.InputError, match="far fewer levels than rows.*levels so far need") as err:
        jaxlm.fit_table(str(files / "p.parquet"), formula=formula)
    assert err.value.param == "fixed_effects"


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_infinite_values_in_a_file_are_errors_naming_the_column(panel, tmp_path, kind):
    df = panel.copy()
    df.loc[100, "x2"] = -np.inf
    path = tmp_path / f"inf.{kind}"
    if kind == "parquet":
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=41)
    else:
        df.to_csv(path, index=False, float_format="%.17g")
    with pytest.raises(jaxlm.InputError, match=r"must be finite; got -inf in model column 'x2' at data row 101"):
        jaxlm.fit_table(str(path), formula="y ~ x1 + x2 | firm + year", cov_type="cluster", cluster="firm")


def test_infinite_weight_in_a_file_is_an_error(panel, tmp_path):
    df = panel.copy()
    df.loc[57, "w"] = np.inf
    path = tmp_path / "w.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=41)
    with pytest.raises(jaxlm.InputError, match=r"weights must be finite and >= 0; got weights column 'w' = inf at "
                                               r"data row 58"):
        jaxlm.fit_table(str(path), formula="y ~ x1 + x2 | firm", weights="w")
