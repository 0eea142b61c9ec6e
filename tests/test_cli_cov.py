"""``jaxlm fit --cov`` / ``--cluster`` run as a user runs them (subprocesses), against statsmodels:
the HC kinds in the summary, ``--json`` and ``--coef-table``; ``--cluster`` (one- and two-way) and
``--cov HAC`` on a streamed fit (one more pass over the file); bad combinations refused (exit 2, one
line); absorbed fixed effects with ``--cluster`` equal to the
dummy regression's clustered standard errors."""
from __future__ import annotations

import concurrent.futures
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import subprocess_env

COMMAND = [sys.executable, "-m", "jaxlm"]
FIT = ["fit", "d.csv", "--target", "y", "--features", "x1,x2"]
CASES = {
    "HC0": FIT + ["--cov", "HC0", "--coef-table", "hc0.csv", "--quiet"],
    "HC1": FIT + ["--cov", "HC1", "--json", "--quiet"],
    "HC2": FIT + ["--cov", "HC2", "--coef-table", "hc2.json", "--save", "hc2.json.model", "--quiet"],
    "HC3": FIT + ["--cov", "HC3", "--quiet"],
    "nonrobust": FIT + ["--cov", "nonrobust", "--coef-table", "nr.csv", "--quiet"],
    "absorbed": ["fit", "d.parquet", "--formula", "y ~ x1 + x2 | firm", "--cluster", "firm", "--coef-table",
                 "fe.csv"],
    "absorbed_hac": ["fit", "d.parquet", "--formula", "y ~ x1 + x2 | firm", "--cov", "HAC", "--quiet"],
    "cluster": FIT + ["--cluster", "firm", "--coef-table", "cl.csv", "--quiet"],
    "cluster2": ["fit", "d.parquet", "--target", "y", "--features", "x1,x2", "--cluster", "firm,half", "--json",
                 "--quiet"],
    "hac": FIT + ["--cov", "HAC", "--json", "--quiet"],
    # bad input: exit 2, one line, nothing written
    "bad_cluster": FIT + ["--cluster", "frim", "--coef-table", "never1.csv"],
    "bad_hac": FIT + ["--cov", "HAC", "--alpha", "1", "--save", "never2.json"],
    "bad_robust_cov": FIT + ["--robust", "--cov", "HC1"],
    "bad_cov_alpha": FIT + ["--cov", "HC1", "--alpha", "2"],
    "bad_cluster_cov": ["fit", "d.parquet", "--formula", "y ~ x1 | firm", "--cluster", "firm", "--cov", "HC1"],
    "bad_absorbed_save": ["fit", "d.parquet", "--formula", "y ~ x1 | firm", "--cluster", "firm", "--save",
                          "never3.json"],
    "bad_absorbed_hc": ["fit", "d.parquet", "--formula", "y ~ x1 | firm", "--cov", "HC1"],
    "bad_cov_choice": FIT + ["--cov", "HC4"],
}
BAD = {"bad_cluster": r"--cluster must name a column of d.csv; got --cluster 'frim'.*Did you mean 'firm'",
       "bad_hac": r"--cov needs standard errors, which a fit with --alpha 1 does not have",
       "bad_robust_cov": r"--robust is short for --cov HC3; got --robust with --cov HC1",
       "bad_cov_alpha": r"--cov needs standard errors, which a fit with --alpha 2 does not have",
       "bad_cluster_cov": r"--cluster asks for cluster-robust standard errors itself.*--cov HC1",
       "bad_absorbed_save": r"--save is not supported for absorbed fixed effects",
       "bad_absorbed_hc": r"--cov HC1 is not available with absorbed fixed effects",
       "bad_cov_choice": r"--cov: invalid choice: 'HC4'"}


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli_cov")


@pytest.fixture(scope="module")
def frame(tmp) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 300
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "firm": rng.integers(0, 15, n),
                       "half": np.where(rng.random(n) < 0.5, "a", "b")})
    firm_effect = rng.normal(size=15)[df.firm]
    df["y"] = 1 + 2 * df.x1 - 0.5 * df.x2 + firm_effect + rng.normal(size=n) * (1 + np.abs(df.x1))
    df.to_csv(tmp / "d.csv", index=False, float_format="%.17g")
    df.to_parquet(tmp / "d.parquet")
    return df


@pytest.fixture(scope="module")
def runs(tmp, frame) -> dict:
    env = subprocess_env()

    def run(argv):
        return subprocess.run(COMMAND + argv, capture_output=True, text=True, env=env, cwd=tmp, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run, argv) for name, argv in CASES.items()}
        return {name: f.result() for name, f in futures.items()}


def _ok(r):
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


def _ols(frame, kind):
    X = sm.add_constant(frame[["x1", "x2"]])
    return sm.OLS(frame.y, X).fit(cov_type=kind, use_t=True) if kind != "nonrobust" else sm.OLS(frame.y, X).fit()


@pytest.mark.parametrize("kind", ["HC0", "nonrobust"])
def test_cov_sets_the_coef_table(runs, tmp, frame, kind):
    _ok(runs[kind])
    table = pd.read_csv(tmp / ("hc0.csv" if kind == "HC0" else "nr.csv"))
    ref = _ols(frame, kind)
    for col, want in (("std_error", ref.bse), ("p", ref.pvalues), ("ci_lower", ref.conf_int()[0])):
        np.testing.assert_allclose(table[col], np.asarray(want), rtol=1e-8, err_msg=col)


def test_cov_sets_the_json_statistics_and_the_model_params(runs, frame):
    _ok(runs["HC1"])
    doc = json.loads(runs["HC1"].stdout)["model"]
    assert doc["params"]["cov_type"] == "HC1"
    stats = doc["statistics"]
    assert stats["cov_type"] == "HC1"
    se = stats["targets"][0]["coefficients"]["std_err"]
    np.testing.assert_allclose([se["intercept"], se["x1"], se["x2"]], _ols(frame, "HC1").bse, rtol=1e-8)


def test_cov_with_save_writes_a_loadable_model_and_the_table(runs, tmp, frame):
    _ok(runs["HC2"])
    doc = json.loads((tmp / "hc2.json").read_text())
    assert doc["cov_type"] == "HC2"
    np.testing.assert_allclose([r["std_error"] for r in doc["rows"]], _ols(frame, "HC2").bse, rtol=1e-8)
    import jaxlm

    model = jaxlm.load(tmp / "hc2.json.model")
    np.testing.assert_allclose(np.r_[model.intercept_, model.coef_], _ols(frame, "HC2").params, rtol=1e-9)


def test_cov_sets_the_summary(runs, frame):
    _ok(runs["HC3"])
    out = runs["HC3"].stdout
    assert re.search(r"Covariance:\s+HC3", out)
    se = float(re.search(r"^x1\s+\S+\s+(\S+)", out, re.M)[1])
    np.testing.assert_allclose(se, _ols(frame, "HC3").bse["x1"], rtol=1e-4)  # 5 significant digits


def test_streamed_cluster_and_hac_equal_statsmodels(runs, tmp, frame):
    for case in ("cluster", "cluster2", "hac"):
        _ok(runs[case])
    X = sm.add_constant(frame[["x1", "x2"]])
    one = sm.OLS(frame.y, X).fit(cov_type="cluster", cov_kwds={"groups": frame.firm}, use_t=True)
    table = pd.read_csv(tmp / "cl.csv")
    np.testing.assert_allclose(table.std_error, one.bse, rtol=1e-8)
    np.testing.assert_allclose(table.p, one.pvalues, rtol=1e-6)  # t(G - 1) both
    groups = np.column_stack([frame.firm, pd.factorize(frame.half)[0]])
    two = sm.OLS(frame.y, X).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    hac = sm.OLS(frame.y, X).fit(cov_type="HAC", cov_kwds={"maxlags": 5}, use_t=True)  # 4 (300/100)^(2/9) -> 5
    for case, ref, kind in (("cluster2", two, "cluster"), ("hac", hac, "HAC")):
        stats = json.loads(runs[case].stdout)["model"]["statistics"]
        assert stats["cov_type"] == kind
        se = stats["targets"][0]["coefficients"]["std_err"]
        np.testing.assert_allclose([se["intercept"], se["x1"], se["x2"]], ref.bse, rtol=1e-8, err_msg=case)


def _dummies(frame):
    X = pd.concat([frame[["x1", "x2"]], pd.get_dummies(frame.firm, prefix="f", dtype=float)], axis=1)
    return sm.OLS(frame.y, X)


def test_absorbed_with_cluster_is_the_dummy_regression_clustered(runs, tmp, frame):
    r = runs["absorbed"]
    _ok(r)
    assert "Fixed effects: firm (15 levels)" in r.stdout and "cluster-robust CR1 by firm" in r.stdout
    ref = _dummies(frame).fit(cov_type="cluster", cov_kwds={"groups": frame.firm}, use_t=True)
    table = pd.read_csv(tmp / "fe.csv")
    assert list(table.term) == ["x1", "x2"]
    np.testing.assert_allclose(table.estimate, ref.params[["x1", "x2"]], rtol=1e-8)
    np.testing.assert_allclose(table.std_error, ref.bse[["x1", "x2"]], rtol=1e-8)
    np.testing.assert_allclose(table.p, ref.pvalues[["x1", "x2"]], rtol=1e-6)  # t(G - 1) both


def test_absorbed_with_hac_prints_newey_west(runs):
    _ok(runs["absorbed_hac"])
    assert "HAC (Newey–West" in runs["absorbed_hac"].stdout and runs["absorbed_hac"].stderr == ""


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_covariances_exit_2_with_one_line(runs, tmp, case):
    r = runs[case]
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxlm fit: error: "), r.stderr
    assert re.search(BAD[case], lines[0]), lines[0]
    assert r.stdout == "" and not list(tmp.glob("never*"))
