"""``jaxlm fit`` / ``jaxlm predict`` options run as a user runs them (subprocesses), checked
against statsmodels: --level, --robust, --weights-kind, --no-intercept, --alpha, the gradient
solvers' --max-iter/--tol/--learning-rate, --coef-table in every format, the raw-design condition
number, predict --keep and the --missing keep note; warnings and errors one line each on stderr.

The runs start together (a module fixture, four at a time); each test inspects its own run.
"""
from __future__ import annotations

import concurrent.futures
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
from conftest import subprocess_env

COMMAND = [sys.executable, "-m", "jaxlm"]
FEATURES = ["x1", "x2"]
RTOL = 1e-8


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli_options")


@pytest.fixture(scope="module")
def frame(tmp) -> pd.DataFrame:
    rng = np.random.default_rng(12)
    n = 300
    df = pd.DataFrame({"id": [f"r{i:04d}" for i in range(n)],
                       "date": pd.date_range("2021-01-01", periods=n).strftime("%Y-%m-%d"),
                       "x1": rng.normal(size=n), "x2": 50 + 10 * rng.normal(size=n), "w": rng.uniform(0.5, 3, n)})
    df["y"] = 1 + 2 * df.x1 - 0.3 * df.x2 + rng.normal(size=n) * (1 + np.abs(df.x1))  # heteroskedastic
    df["y2"] = -df.x1 + 0.1 * df.x2 + rng.normal(size=n)
    df["x1_copy"] = 2 * df.x1
    df.to_csv(tmp / "d.csv", index=False, float_format="%.17g")
    new = df.copy()
    new.loc[[5, 17], "x1"] = np.nan
    new.to_csv(tmp / "new.csv", index=False, float_format="%.17g")
    new.assign(prediction=1.0).to_csv(tmp / "clash.csv", index=False)
    (tmp / "const.csv").write_text("x,y\n1,3\n2,3\n3,3\n")
    return df


FIT = ["fit", "d.csv", "--target", "y", "--features", "x1,x2"]
CASES = {
    "level": FIT + ["--level", "0.9", "--coef-table", "level.csv"],
    "robust": FIT + ["--robust", "--coef-table", "robust.parquet", "--quiet"],
    "analytic": FIT + ["--weights", "w", "--weights-kind", "analytic", "--coef-table", "wls.json", "--quiet"],
    "noint": FIT + ["--no-intercept", "--coef-table", "noint.md", "--quiet"],
    "ridge": FIT + ["--alpha", "3", "--coef-table", "ridge.csv", "--quiet"],
    "tex": ["fit", "d.csv", "--target", "y", "--target", "y2", "--features", "x1,x2", "--coef-table", "two.tex",
            "--quiet"],
    "multi": ["fit", "d.csv", "--target", "y", "--target", "y2", "--features", "x1,x2", "--coef-table", "two.csv",
              "--quiet"],
    "json": FIT + ["--json", "--quiet"],
    "lbfgs": FIT + ["--solver", "lbfgs", "--max-iter", "3000", "--tol", "1e-9", "--json", "--quiet"],
    "gd_rate": ["fit", "d.csv", "--target", "y", "--features", "x1", "--solver", "gd", "--learning-rate", "0.5",
                "--max-iter", "20000", "--json", "--quiet"],
    "gd_short": FIT + ["--solver", "gd", "--max-iter", "3"],
    "rank": ["fit", "d.csv", "--target", "y", "--features", "x1,x2,x1_copy"],
    "rank_quiet": ["fit", "d.csv", "--target", "y", "--features", "x1,x2,x1_copy", "--quiet"],
    "save": FIT + ["--save", "model.json", "--quiet"],
    # bad input: exit 2, one line, nothing written
    "bad_ext": FIT + ["--coef-table", "coefs.txt"],
    "bad_maxiter": FIT + ["--max-iter", "5", "--coef-table", "never1.csv"],
    "bad_kind": FIT + ["--weights-kind", "analytic", "--coef-table", "never2.csv"],
    "bad_noint": ["fit", "d.csv", "--formula", "y ~ x1", "--no-intercept"],
    "bad_robust": FIT + ["--robust", "--alpha", "1"],
    "bad_alpha": FIT + ["--alpha", "-1", "--coef-table", "never3.csv"],
    "bad_const": ["fit", "const.csv", "--target", "y"],
}
LATER = {
    "keep": ["predict", "model.json", "new.csv", "-o", "kept.csv", "--missing", "keep", "--keep", "id,date",
             "--interval", "prediction"],
    "keep_parquet": ["predict", "model.json", "new.csv", "-o", "kept.parquet", "--missing", "keep", "--keep", "date,x2",
                     "--quiet"],
    "bad_keep": ["predict", "model.json", "new.csv", "-o", "never4.csv", "--keep", "idd"],
    "bad_keep_clash": ["predict", "model.json", "clash.csv", "-o", "never5.csv", "--missing", "keep", "--keep",
                       "id,prediction"],
}


def _run_all(cases: dict, cwd: Path) -> dict:
    env = subprocess_env()

    def run(argv):
        return subprocess.run(COMMAND + argv, check=False, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run, argv) for name, argv in cases.items()}
        return {name: f.result() for name, f in futures.items()}


@pytest.fixture(scope="module")
def runs(tmp, frame) -> dict:
    out = _run_all(CASES, tmp)
    assert out["save"].returncode == 0, out["save"].stderr
    out.update(_run_all(LATER, tmp))
    return out


def _ols(frame, **kw):
    return sm.OLS(frame.y, sm.add_constant(frame[FEATURES]), **kw)


def _ok(r):
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and ".py:" not in r.stderr


def _check_table(table: pd.DataFrame, ref, *, rtol=RTOL, columns=("estimate", "std_error", "p", "ci_lower")):
    """A coefficient table (term, estimate, ...) against a statsmodels result (params named as terms)."""
    terms = ["intercept" if t == "const" else t for t in ref.params.index]
    assert list(table["term"]) == terms
    refs = {"estimate": ref.params, "std_error": ref.bse, "t": ref.tvalues, "p": ref.pvalues,
            "ci_lower": ref.conf_int()[0], "ci_upper": ref.conf_int()[1]}
    for c in columns:
        np.testing.assert_allclose(table[c].to_numpy(float), np.asarray(refs[c]), rtol=rtol, err_msg=c)


# ---------------------------------------------------------------------- --level, --coef-table .csv
def test_level_sets_the_intervals_of_the_summary_and_the_table(runs, tmp, frame):
    r = runs["level"]
    _ok(r)
    ref = _ols(frame).fit()
    table = pd.read_csv(tmp / "level.csv")
    assert list(table.columns) == ["term", "estimate", "std_error", "t", "p", "ci_lower", "ci_upper"]
    ci = ref.conf_int(alpha=0.1)
    np.testing.assert_allclose(table[["ci_lower", "ci_upper"]].to_numpy(), ci.to_numpy(), rtol=RTOL)
    _check_table(table, ref, columns=("estimate", "std_error", "t", "p"))
    assert "[0.05" in r.stdout and "0.95]" in r.stdout
    # stdout is the summary alone: the status line is on stderr
    assert "fitted 300 of 300 rows" in r.stderr and "fitted" not in r.stdout


# ---------------------------------------------------------------------- --robust, .parquet
def test_robust_gives_hc3_standard_errors(runs, tmp, frame):
    _ok(runs["robust"])
    assert runs["robust"].stderr == ""
    ref = _ols(frame).fit(cov_type="HC3", use_t=True)  # jaxlm uses t quantiles for every covariance
    table = pq.read_table(tmp / "robust.parquet")
    assert table.schema.metadata[b"jaxlm.cov_type"] == b"HC3"
    _check_table(table.to_pandas(), ref, columns=("estimate", "std_error", "t", "p", "ci_lower", "ci_upper"))
    assert not np.allclose(ref.bse, _ols(frame).fit().bse, rtol=1e-3)  # the data are heteroskedastic


# ---------------------------------------------------------------------- --weights-kind, .json
def test_analytic_weights_are_statsmodels_wls(runs, tmp, frame):
    _ok(runs["analytic"])
    doc = json.loads((tmp / "wls.json").read_text())
    assert doc["level"] == 0.95 and doc["cov_type"] == "nonrobust"
    ref = sm.WLS(frame.y, sm.add_constant(frame[FEATURES]), weights=frame.w).fit()
    _check_table(pd.DataFrame(doc["rows"]), ref, columns=("estimate", "std_error", "t", "p", "ci_lower", "ci_upper"))


# ---------------------------------------------------------------------- --no-intercept, .md
def test_no_intercept(runs, tmp, frame):
    _ok(runs["noint"])
    text = (tmp / "noint.md").read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert lines[0] == r"| term | estimate | std\_error | t | p | ci\_lower | ci\_upper |"
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[1:]]
    ref = sm.OLS(frame.y, frame[FEATURES]).fit()
    assert [c[0] for c in cells] == FEATURES
    for k, name in ((1, "params"), (2, "bse")):  # 5 significant digits, as the summary prints them
        np.testing.assert_allclose([float(c[k]) for c in cells], getattr(ref, name), rtol=1e-4)


# ---------------------------------------------------------------------- --alpha
def test_alpha_is_ridge_with_an_unpenalised_intercept(runs, tmp, frame):
    _ok(runs["ridge"])
    table = pd.read_csv(tmp / "ridge.csv")
    X, y = frame[FEATURES].to_numpy(), frame.y.to_numpy()
    xm, ym = X.mean(0), y.mean()
    # ridge = least squares on the centred data stacked over sqrt(alpha)·I (statsmodels solves it)
    aug_X = np.vstack([X - xm, np.sqrt(3.0) * np.eye(2)])
    aug_y = np.concatenate([y - ym, np.zeros(2)])
    slopes = sm.OLS(aug_y, aug_X).fit().params
    np.testing.assert_allclose(table["estimate"], np.r_[ym - xm @ slopes, slopes], rtol=1e-10)
    assert table["std_error"].isna().all() and table["p"].isna().all()  # no inference for ridge: empty


# ---------------------------------------------------------------------- several targets, .tex
def test_several_targets_get_a_target_column(runs, tmp, frame):
    _ok(runs["multi"])
    table = pd.read_csv(tmp / "two.csv")
    assert list(table.columns[:2]) == ["target", "term"]
    assert list(table["target"]) == ["y"] * 3 + ["y2"] * 3
    for t in ("y", "y2"):
        ref = sm.OLS(frame[t], sm.add_constant(frame[FEATURES])).fit()
        _check_table(table[table.target == t].reset_index(drop=True), ref)
    _ok(runs["tex"])
    tex = (tmp / "two.tex").read_text()
    assert r"\begin{tabular}{llrrrrrr}" in tex and r"target & term & estimate & std\_error" in tex
    assert tex.count(r"\\") == 7  # the header and six rows


# ---------------------------------------------------------------------- condition numbers
def test_json_carries_both_condition_numbers(runs, frame):
    _ok(runs["json"])
    stats = json.loads(runs["json"].stdout)["model"]["statistics"]["targets"][0]["stats"]
    ref = _ols(frame).fit()
    np.testing.assert_allclose(stats["condition_number_raw"], ref.condition_number, rtol=1e-8)
    assert stats["condition_number"] < stats["condition_number_raw"]  # x2 has a mean of 50: raw is worse


# ---------------------------------------------------------------------- gradient options
def test_gradient_options_reach_the_solver(runs, frame):
    _ok(runs["lbfgs"])
    doc = json.loads(runs["lbfgs"].stdout)["model"]
    assert doc["params"]["max_iter"] == 3000 and doc["params"]["tol"] == 1e-9 and doc["params"]["solver"] == "lbfgs"
    ref = _ols(frame).fit()
    np.testing.assert_allclose(np.r_[doc["intercept"], np.ravel(doc["coef"])], ref.params, rtol=1e-6)
    _ok(runs["gd_rate"])
    doc = json.loads(runs["gd_rate"].stdout)["model"]
    assert doc["params"]["learning_rate"] == 0.5
    ref = sm.OLS(frame.y, sm.add_constant(frame[["x1"]])).fit()
    np.testing.assert_allclose(np.r_[doc["intercept"], np.ravel(doc["coef"])], ref.params, rtol=1e-6)


def test_convergence_warning_is_one_line_in_cli_terms(runs):
    r = runs["gd_short"]
    _ok(r)
    warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1, r.stderr
    (line,) = warnings
    assert line.startswith("jaxlm fit: warning: --solver 'gd' did not converge in --max-iter 3 iterations")
    assert "--tol 1e-10" in line and "default" in line and "Increase --max-iter or --tol" in line
    assert "max_iter" not in line and "tol=" not in line and "ConvergenceWarning" not in line
    assert "Linear regression results: y" in r.stdout and "warning" not in r.stdout


def test_rank_warning_is_one_line_also_under_quiet(runs):
    r = runs["rank"]
    _ok(r)
    lines = r.stderr.splitlines()
    assert lines[0].startswith("jaxlm fit: warning: X is rank deficient: rank 2 < 3 columns"), r.stderr
    assert sum("rank deficient" in ln for ln in lines) == 1 and "fitted 300 of 300 rows" in r.stderr
    _ok(runs["rank_quiet"])  # --quiet: the warning alone, no status line
    assert runs["rank_quiet"].stderr.splitlines() == lines[:1]


# ---------------------------------------------------------------------- predict --keep, --missing keep note
def test_keep_passes_columns_through_and_the_note_counts_empty_rows(runs, tmp, frame):
    r = runs["keep"]
    _ok(r)
    assert "jaxlm predict: note: 2 of 300 rows have a missing feature value" in r.stderr
    out = pd.read_csv(tmp / "kept.csv", dtype={"id": str, "date": str})
    assert list(out.columns) == ["id", "date", "prediction", "lower", "upper"]
    assert list(out["id"]) == list(frame["id"]) and list(out["date"]) == list(frame["date"])
    ref = _ols(frame).fit()
    new = frame[FEATURES].copy()
    new.loc[[5, 17], "x1"] = np.nan
    pred = ref.get_prediction(sm.add_constant(new, has_constant="add")).summary_frame(alpha=0.05)
    np.testing.assert_allclose(out["prediction"], pred["mean"], rtol=1e-9)  # NaN where x1 is missing
    np.testing.assert_allclose(out["lower"], pred["obs_ci_lower"], rtol=1e-9)
    assert out["prediction"].isna().sum() == 2
    _ok(runs["keep_parquet"])
    assert runs["keep_parquet"].stderr == ""  # --quiet: no note either
    table = pq.read_table(tmp / "kept.parquet").to_pandas()
    assert list(table.columns) == ["date", "x2", "prediction"]
    np.testing.assert_array_equal(table["x2"].astype(float), frame["x2"])


# ---------------------------------------------------------------------- bad input
BAD = {"bad_ext": r"--coef-table must end in \.csv, \.parquet, \.md, \.tex or \.json",
       "bad_maxiter": r"--max-iter applies to the gradient solvers .* --solver auto",
       "bad_kind": r"--weights-kind needs --weights COL",
       "bad_noint": r"--no-intercept cannot be combined with --formula: write '- 1'",
       "bad_robust": r"--robust needs standard errors, which a fit with --alpha 1 does not have",
       "bad_alpha": r"--alpha must be .*0.*got --alpha -1",
       "bad_const": r"--target must vary; got target 'y', which is 3(\.0)? on every row",
       "bad_keep": r"--keep must name a column of .*'idd'.* Did you mean 'id'",
       "bad_keep_clash": r"--keep must not name an output column \(prediction\); got .*'prediction'"}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_options_exit_2_with_one_line(runs, tmp, case):
    r = runs[case]
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(("jaxlm fit: error: ", "jaxlm predict: error: ")), r.stderr
    assert re.search(BAD[case], lines[0]), lines[0]
    assert "np.float64" not in lines[0] and "Traceback" not in r.stderr and r.stdout == ""
    assert not list(tmp.glob("never*")) and not (tmp / "coefs.txt").exists()


def test_default_tolerance_in_messages_is_the_solver_default():
    from jaxlm.cli import _messages
    from jaxlm.core.gradient import DEFAULT_TOL

    assert _messages.DEFAULT_TOL == DEFAULT_TOL["float64"]


def test_clean_message_plain_numbers_and_cut_lists():
    from jaxlm.cli._messages import clean_message

    assert clean_message("got np.float64(1.0) and np.int64(-3) and np.str_('a b')") == "got 1.0 and -3 and 'a b'"
    assert clean_message("levels 'IBM', 'Union Oil' .... Use") == "levels 'IBM', 'Union Oil', and others. Use"
    assert clean_message("a\n  b\x1b[31m") == "a b\\x1b[31m"
