"""``jaxlm table`` run as a user runs it (subprocesses): two saved LinearRegression models side by
side, their coefficients and standard errors equal to statsmodels' OLS; formats, titles, stars,
``-o``; bad input one line on stderr with exit code 2."""
from __future__ import annotations

import concurrent.futures
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
LATER = {
    "text": ["table", "short.json", "long.json", "--digits", "10"],
    "markdown": ["table", "short.json", "long.json", "--format", "markdown", "--digits", "10", "--no-stars",
                 "--titles", "A,B"],
    "latex_file": ["table", "short.json", "long.json", "-o", "t.tex"],
    "bad_glm": ["table", "short.json", "glm.json", "-o", "never1.md"],
    "bad_titles": ["table", "short.json", "long.json", "--titles", "only-one"],
    "bad_missing": ["table", "short.json", "nothere.json"],
    "bad_digits": ["table", "short.json", "--digits", "13"],
    "bad_overwrite": ["table", "short.json", "-o", "short.json"],
}
BAD = {"bad_glm": r"MODEL must be a linear model file .* 'glm.json', a GLM \(poisson family\)",
       "bad_titles": r"--titles must give one non-empty title per MODEL \(2\)",
       "bad_missing": r"nothere\.json",
       "bad_digits": r"--digits must be an integer from 0 to 12; got --digits 13",
       "bad_overwrite": r"-o must not overwrite a MODEL file"}


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli_table")


@pytest.fixture(scope="module")
def frame(tmp) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 250
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    df["y"] = 0.5 + 1.5 * df.x1 - 0.2 * df.x2 + rng.normal(size=n)
    df["count"] = rng.poisson(np.exp(0.3 * df.x1))
    df.to_csv(tmp / "d.csv", index=False, float_format="%.17g")
    return df


def _run_all(cases, cwd):
    env = subprocess_env()

    def run(argv):
        return subprocess.run(COMMAND + argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run, argv) for name, argv in cases.items()}
        return {name: f.result() for name, f in futures.items()}


@pytest.fixture(scope="module")
def runs(tmp, frame) -> dict:
    fits = _run_all({"short": ["fit", "d.csv", "--target", "y", "--features", "x1", "--save", "short.json"],
                     "long": ["fit", "d.csv", "--target", "y", "--features", "x1,x2", "--save", "long.json"],
                     "glm": ["fit", "d.csv", "--family", "poisson", "--target", "count", "--features", "x1",
                             "--save", "glm.json"]}, tmp)
    for r in fits.values():
        assert r.returncode == 0, r.stderr
    return _run_all(LATER, tmp)


def _refs(frame):
    return (sm.OLS(frame.y, sm.add_constant(frame[["x1"]])).fit(),
            sm.OLS(frame.y, sm.add_constant(frame[["x1", "x2"]])).fit())


def _cells(lines, label, k):
    """The numbers of row ``label`` (a coefficient row) and of the standard-error row after it."""
    i = next(j for j, ln in enumerate(lines) if ln.split("|")[1 if ln.startswith("|") else 0].strip() == label
             if ln.strip())
    nums = lambda ln: [float(x) for x in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", ln)]  # noqa: E731
    return nums(lines[i])[:k], nums(lines[i + 1])[:k]


def test_table_standard_errors_are_statsmodels(runs, frame):
    r = runs["markdown"]
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "|  | A | B |"
    short, long = _refs(frame)
    for term, k in (("intercept", 2), ("x1", 2)):
        coef, se = _cells(lines, term, k)
        name = "const" if term == "intercept" else term
        np.testing.assert_allclose(coef, [short.params[name], long.params[name]], rtol=1e-8)
        np.testing.assert_allclose(se, [short.bse[name], long.bse[name]], rtol=1e-8)
    coef, se = _cells(lines, "x2", 1)  # only the long model has x2
    np.testing.assert_allclose(se, [long.bse["x2"]], rtol=1e-8)
    assert "*" not in r.stdout.split("Standard errors")[0]  # --no-stars
    assert re.search(r"\| R² \| 0\.\d+ \| 0\.\d+ \|", r.stdout)


def test_titles_default_to_file_stems_and_stars_mark_p_values(runs, frame):
    r = runs["text"]
    assert r.returncode == 0, r.stderr
    assert re.search(r"^\s+short\s+long\s*$", r.stdout, re.M)
    x1 = next(ln for ln in r.stdout.splitlines() if ln.startswith("x1"))
    assert x1.count("***") == 2  # x1 is strongly significant in both
    short, _ = _refs(frame)
    assert f"{short.params['x1']:.10f}***" in x1


def test_output_file_takes_its_format_from_the_extension(runs, tmp):
    r = runs["latex_file"]
    assert r.returncode == 0, r.stderr
    tex = (tmp / "t.tex").read_text()
    assert r"\begin{tabular}" in tex and "short & long" in tex and r.stdout == ""


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_line(runs, tmp, case):
    r = runs[case]
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxlm table: error: "), r.stderr
    assert re.search(BAD[case], lines[0]), lines[0]
    assert r.stdout == "" and not list(tmp.glob("never*"))
