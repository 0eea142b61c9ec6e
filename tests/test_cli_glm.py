"""``jaxlm fit --family`` and ``jaxlm predict`` of a GLM model file, run as a user runs them
(subprocesses), against statsmodels' GLM: a Poisson fit with exposure (params, bse, the
coefficient table), a logistic fit, the saved model's predictions (mean, confidence interval,
linear predictor), and bad GLM options as one line on stderr with exit code 2."""
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
import statsmodels.formula.api as smf
from conftest import subprocess_env

COMMAND = [sys.executable, "-m", "jaxlm"]
POISSON = ["fit", "d.parquet", "--family", "poisson", "--formula", "claims ~ age + C(region)", "--exposure",
           "exposure"]
CASES = {
    "poisson": POISSON + ["--save", "p.json", "--coef-table", "p.csv"],
    "poisson_offset": ["fit", "d.csv", "--family", "poisson", "--link", "log", "--formula", "claims ~ age",
                       "--offset", "log_exposure", "--json", "--quiet"],
    "poisson_hc0": POISSON + ["--cov", "HC0", "--quiet"],
    "logit": ["fit", "d.csv", "--family", "binomial", "--target", "buy", "--features", "x1,x2", "--coef-table",
              "l.json", "--quiet"],
    "separated": ["fit", "sep.csv", "--family", "binomial", "--target", "y", "--quiet"],
    "bad_link": ["fit", "d.csv", "--target", "claims", "--link", "log"],
    "bad_solver": POISSON + ["--solver", "qr"],
    "cluster": POISSON + ["--cluster", "region", "--coef-table", "pc.csv", "--quiet"],
    "bad_hac": POISSON + ["--cov", "HAC"],
    "bad_family": ["fit", "d.csv", "--target", "claims", "--family", "poison"],
    "bad_exposure": ["fit", "d.csv", "--family", "poisson", "--target", "claims", "--features", "age", "--exposure",
                     "x1", "--save", "never1.json"],
}
LATER = {
    "predict": ["predict", "p.json", "new.csv", "-o", "pred.csv", "--interval", "confidence"],
    "predict_link": ["predict", "p.json", "new.csv", "-o", "link.csv", "--kind", "link", "--quiet"],
    "bad_interval": ["predict", "p.json", "new.csv", "-o", "never2.csv", "--interval", "prediction"],
}
BAD = {"bad_link": r"--link is an option of a GLM fit: add --family",
       "bad_solver": r"--solver does not apply to a GLM",
       "bad_hac": r"--cov HAC is not available for a GLM; use --cluster COL, --cov HC0",
       "bad_family": r"--family: invalid choice: 'poison'",
       "bad_exposure": r"exposure must be a finite number > 0; got column 'x1' = .* at data row",
       "bad_interval": r"--interval must be 'confidence'"}


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli_glm")


@pytest.fixture(scope="module")
def frame(tmp) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 500
    df = pd.DataFrame({"age": rng.uniform(20, 70, n), "region": rng.choice(["e", "n", "s"], n),
                       "exposure": rng.uniform(0.2, 3.0, n), "x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    df["log_exposure"] = np.log(df.exposure)
    mu = df.exposure * np.exp(-1 + 0.02 * df.age + df.region.map({"e": 0.0, "n": 0.3, "s": -0.2}))
    df["claims"] = rng.poisson(mu)
    df["buy"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-(0.4 + 0.8 * df.x1 - 0.5 * df.x2)))).astype(int)
    df.to_csv(tmp / "d.csv", index=False, float_format="%.17g")
    df.to_parquet(tmp / "d.parquet")
    df.iloc[:40].to_csv(tmp / "new.csv", index=False, float_format="%.17g")
    (tmp / "sep.csv").write_text("x,y\n" + "".join(f"{x},{int(x > 0)}\n" for x in range(-5, 6) if x))
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
    out = _run_all(CASES, tmp)
    assert out["poisson"].returncode == 0, out["poisson"].stderr
    out.update(_run_all(LATER, tmp))
    return out


def _ok(r):
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


def _poisson(frame, **kw):
    return smf.glm("claims ~ age + C(region)", frame, family=sm.families.Poisson(), exposure=frame.exposure).fit(**kw)


def test_poisson_with_exposure_is_statsmodels(runs, tmp, frame):
    r = runs["poisson"]
    _ok(r)
    assert "Generalized linear model results: claims" in r.stdout and r.stdout.startswith("formula: claims ~ age")
    assert "IRLS iteration" in r.stderr and "saved the model to p.json" in r.stderr
    ref = _poisson(frame)
    table = pd.read_csv(tmp / "p.csv")
    assert list(table.columns) == ["term", "estimate", "std_error", "z", "p", "ci_lower", "ci_upper"]
    terms = ["Intercept" if t == "intercept" else t for t in table.term]  # patsy lists C(region) before age
    assert sorted(terms) == sorted(ref.params.index)
    np.testing.assert_allclose(table.estimate, ref.params[terms], rtol=1e-8)
    np.testing.assert_allclose(table.std_error, ref.bse[terms], rtol=1e-7)
    np.testing.assert_allclose(table.z, ref.tvalues[terms], rtol=1e-7)
    np.testing.assert_allclose(table.ci_upper, ref.conf_int()[1][terms], rtol=1e-7)


def test_cluster_is_statsmodels_clustered(runs, tmp, frame):
    _ok(runs["cluster"])
    ref = _poisson(frame, cov_type="cluster", cov_kwds={"groups": pd.factorize(frame.region)[0]})
    table = pd.read_csv(tmp / "pc.csv")
    terms = ["Intercept" if t == "intercept" else t for t in table.term]
    np.testing.assert_allclose(table.std_error, ref.bse[terms], rtol=1e-7)
    np.testing.assert_allclose(table.p, ref.pvalues[terms], rtol=1e-6)


def test_offset_column_is_statsmodels_offset(runs, frame):
    _ok(runs["poisson_offset"])
    doc = json.loads(runs["poisson_offset"].stdout)
    assert doc["n_rows"] == 500 and doc["model"]["offset"] == "log_exposure"
    se = doc["model"]["statistics"]["targets"][0]["coefficients"]["std_err"]
    ref = smf.glm("claims ~ age", frame, family=sm.families.Poisson(), offset=frame.log_exposure).fit()
    np.testing.assert_allclose(np.ravel(doc["model"]["coef"]), [ref.params["age"]], rtol=1e-8)
    np.testing.assert_allclose([se["intercept"], se["age"]], ref.bse, rtol=1e-7)


def test_robust_glm_is_statsmodels_hc0(runs, frame):
    _ok(runs["poisson_hc0"])
    out = runs["poisson_hc0"].stdout
    ref = _poisson(frame, cov_type="HC0")
    se = float(re.search(r"^age\s+\S+\s+(\S+)", out, re.M)[1])
    np.testing.assert_allclose(se, ref.bse["age"], rtol=1e-4)  # 5 significant digits, as printed
    assert re.search(r"Covariance:\s+HC0", out)


def test_logistic_is_statsmodels_logit(runs, tmp, frame):
    _ok(runs["logit"])
    doc = json.loads((tmp / "l.json").read_text())
    assert doc["columns"] == ["term", "estimate", "std_error", "z", "p", "ci_lower", "ci_upper"]
    ref = sm.GLM(frame.buy, sm.add_constant(frame[["x1", "x2"]]), family=sm.families.Binomial()).fit()
    rows = pd.DataFrame(doc["rows"])
    np.testing.assert_allclose(rows.estimate, ref.params, rtol=1e-8)
    np.testing.assert_allclose(rows.std_error, ref.bse, rtol=1e-7)
    np.testing.assert_allclose(rows.p, ref.pvalues, rtol=1e-6)


def test_separation_is_one_warning_line(runs):
    r = runs["separated"]
    _ok(r)
    warnings = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert warnings and all(ln.startswith("jaxlm fit: warning: ") for ln in warnings), r.stderr
    assert any("separat" in ln.lower() for ln in warnings)


def test_predictions_of_the_saved_model_are_statsmodels(runs, tmp, frame):
    _ok(runs["predict"])
    assert "wrote 40 predictions" in runs["predict"].stderr
    out = pd.read_csv(tmp / "pred.csv")
    assert list(out.columns) == ["prediction", "lower", "upper"]
    new = frame.iloc[:40]
    ref = _poisson(frame).get_prediction(new, exposure=new.exposure).summary_frame(alpha=0.05)
    np.testing.assert_allclose(out.prediction, ref["mean"], rtol=1e-8)
    np.testing.assert_allclose(out.lower, ref["mean_ci_lower"], rtol=1e-7)
    np.testing.assert_allclose(out.upper, ref["mean_ci_upper"], rtol=1e-7)
    _ok(runs["predict_link"])
    link = pd.read_csv(tmp / "link.csv")
    want = _poisson(frame).predict(new, exposure=new.exposure, which="linear")
    np.testing.assert_allclose(link.prediction, want, rtol=1e-9)


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_glm_options_exit_2_with_one_line(runs, tmp, case):
    r = runs[case]
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r"jaxlm (fit|predict): error: ", lines[0]), r.stderr
    assert re.search(BAD[case], lines[0]), lines[0]
    assert r.stdout == "" and not list(tmp.glob("never*"))
