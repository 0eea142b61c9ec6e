"""``jaxlm fit`` / ``jaxlm predict`` run as a user runs them: in a subprocess.

The runs are started together by two module fixtures (fits first, then the predictions that
read their model files, and every bad input); each test inspects its own run.
"""
from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys

from jaxlm.cli import main as cli_main
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from formulaic import model_matrix

import jaxlm
from conftest import subprocess_env

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = {"actual_vs_predicted.png", "residuals_vs_fitted.png", "normal_qq.png", "scale_location.png",
         "residuals_vs_leverage.png"}
COMMAND = [sys.executable, "-m", "jaxlm"]


def _env() -> dict:
    return subprocess_env()


def _run_all(cases: dict, cwd: Path) -> dict:
    env = _env()

    def run(argv):
        return subprocess.run(COMMAND + [str(a) for a in argv], capture_output=True, text=True, env=env, cwd=cwd,
                              timeout=300)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run, argv) for name, argv in cases.items()}
        return {name: fut.result() for name, fut in futures.items()}


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli_data")


@pytest.fixture(scope="module")
def data(tmp) -> dict:
    rng = np.random.default_rng(3)
    n = 1500
    df = pd.DataFrame({"celsius": rng.uniform(-5, 35, n), "x2": rng.normal(size=n),
                       "group": rng.choice(["a", "b", "c"], n)})
    df["fahrenheit"] = 32 + 1.8 * df.celsius - 0.7 * df.x2 + df.group.map({"a": 0, "b": 2, "c": -1}) \
        + rng.normal(size=n)
    paths = {"csv": tmp / "temps.csv", "parquet": tmp / "temps.parquet", "frame": df}
    df.to_csv(paths["csv"], index=False, float_format="%.17g")
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), paths["parquet"], row_group_size=200)
    holes = df.copy()
    holes.loc[[4, 40, 400], "celsius"] = np.nan
    paths["holes"] = tmp / "holes.csv"
    holes.to_csv(paths["holes"], index=False, float_format="%.17g")
    # bad inputs
    raw = paths["parquet"].read_bytes()
    (tmp / "truncated.parquet").write_bytes(raw[: len(raw) // 2])
    (tmp / "empty.csv").write_bytes(b"")
    (tmp / "header.csv").write_text("celsius,x2,fahrenheit\n")
    lines = paths["csv"].read_text().splitlines()
    cols = lines[0].split(",")
    k = cols.index("x2")
    row = lines[1234].split(",")
    row[k] = "abc"
    lines[1234] = ",".join(row)
    (tmp / "text.csv").write_text("\n".join(lines) + "\n")
    (tmp / "constant.csv").write_text("x,y\n1,3\n2,3\n3,3\n4,3\n")
    (tmp / "few.csv").write_text("a,b,c,y\n1,2,3,4\n2,1,0,3\n")
    df.drop(columns=["x2"]).to_csv(tmp / "no_x2.csv", index=False)
    (tmp / "notours.json").write_text(json.dumps({"coef": [1.0, 2.0], "intercept": 0.5}))
    return paths


@pytest.fixture(scope="module")
def fits(tmp, data) -> dict:
    cases = {
        "plain": ["fit", data["csv"], "--target", "fahrenheit", "--features", "celsius,x2", "--save",
                  tmp / "plain.json", "--plots", tmp / "plots"],
        "formula": ["fit", data["parquet"], "--formula", "fahrenheit ~ celsius + x2 + C(group)", "--save",
                    tmp / "formula.json", "--json", "--quiet"],
        "one": ["fit", data["holes"], "--formula", "fahrenheit ~ celsius", "--plots", tmp / "plots1", "--missing",
                "drop"],
    }
    return _run_all(cases, tmp)


BAD = {
    # name: (argv builder, the option or argument the message must name, a fragment it must contain)
    "missing file": (lambda t: ["fit", t / "nope.parquet", "--target", "y"], "DATA", "no such file"),
    "truncated parquet": (lambda t: ["fit", t / "truncated.parquet", "--target", "fahrenheit"], "DATA", "Parquet"),
    "empty file": (lambda t: ["fit", t / "empty.csv", "--target", "y"], "DATA", "empty"),
    "header only": (lambda t: ["fit", t / "header.csv", "--target", "fahrenheit"], "DATA", "no rows"),
    "unknown column": (lambda t: ["fit", t / "temps.csv", "--target", "farenheit", "--features", "celsius"],
                       "--target", "Did you mean 'fahrenheit'"),
    "unknown feature": (lambda t: ["fit", t / "temps.parquet", "--target", "fahrenheit", "--features", "celcius"],
                        "--features", "Did you mean 'celsius'"),
    "text in a feature": (lambda t: ["fit", t / "text.csv", "--target", "fahrenheit", "--features", "celsius,x2"],
                          "'x2'", "'abc' at data row 1234"),
    "text column by default": (lambda t: ["fit", t / "temps.csv", "--target", "fahrenheit"], "--features",
                               "C(group)"),
    "formula does not parse": (lambda t: ["fit", t / "temps.csv", "--formula", "fahrenheit ~ celsius +* x2"],
                               "--formula", "valid model formula"),
    "constant target": (lambda t: ["fit", t / "constant.csv", "--target", "y", "--save", t / "out-const" / "m.json"],
                        "--target", "must vary"),
    "more parameters than rows": (lambda t: ["fit", t / "few.csv", "--target", "y"], "DATA", "parameters"),
    "missing values": (lambda t: ["fit", t / "holes.csv", "--target", "fahrenheit", "--features", "celsius,x2"],
                       "--missing", "'celsius' (3 rows)"),
    "save in a missing directory": (lambda t: ["fit", t / "temps.csv", "--target", "fahrenheit", "--features",
                                               "celsius", "--save", t / "no-such-dir" / "m.json"],
                                    "--save", "existing directory"),
    "no target": (lambda t: ["fit", t / "temps.csv"], "--target", "--formula"),
    "output in a missing directory": (lambda t: ["predict", t / "plain.json", t / "temps.csv", "-o",
                                                 t / "no-such-dir" / "p.parquet"], "-o", "existing directory"),
    "output format": (lambda t: ["predict", t / "plain.json", t / "temps.csv", "-o", t / "out-fmt" / "p.xlsx"],
                      "-o", ".parquet or .csv"),
    "model not ours": (lambda t: ["predict", t / "notours.json", t / "temps.csv", "-o", t / "out-notours" / "p.csv"],
                       "MODEL", "not a jaxlm model"),
    "model is data": (lambda t: ["predict", t / "temps.csv", t / "temps.csv", "-o", t / "out-csvmodel" / "p.csv"],
                      "MODEL", "not JSON"),
    "model edited": (lambda t: ["predict", t / "edited.json", t / "temps.csv", "-o", t / "out-edited" / "p.csv"],
                     "MODEL", "'coef' must have shape"),
    "missing feature": (lambda t: ["predict", t / "plain.json", t / "no_x2.csv", "-o", t / "out-nox2" / "p.parquet"],
                        "DATA", "'x2'"),
    "unseen level": (lambda t: ["predict", t / "formula.json", t / "levels.csv", "-o", t / "out-level" / "p.csv"],
                     "DATA", "'zz'"),
}


@pytest.fixture(scope="module")
def later(tmp, data, fits) -> dict:
    """Predictions from the saved models, and every bad input (some need the model files)."""
    for name in ("plain", "formula"):
        assert fits[name].returncode == 0, fits[name].stderr
    doc = json.loads((tmp / "plain.json").read_text())
    doc["coef"] = [doc["coef"][0] + [0.5]]  # one coefficient more than features: inconsistent
    (tmp / "edited.json").write_text(json.dumps(doc))
    lv = data["frame"].iloc[:20].copy()
    lv.loc[lv.index[13], "group"] = "zz"
    lv.to_csv(tmp / "levels.csv", index=False)
    for d in ("out-const", "out-fmt", "out-notours", "out-csvmodel", "out-edited", "out-nox2", "out-level",
              "out-pred"):
        (tmp / d).mkdir(exist_ok=True)
    cases = {name: build(tmp) for name, (build, _, _) in BAD.items()}
    cases["predict parquet"] = ["predict", tmp / "plain.json", data["parquet"], "-o", tmp / "out-pred" / "p.parquet"]
    cases["predict csv interval"] = ["predict", tmp / "formula.json", data["csv"], "-o", tmp / "out-pred" / "p.csv",
                                     "--interval", "prediction", "--level", "0.9", "--quiet"]
    return _run_all(cases, tmp)


# --------------------------------------------------------------------------- fits


def test_fit_prints_the_summary_and_saves_a_model(fits, tmp, data):
    r = fits["plain"]
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "fitted 1,500 of 1,500 rows" in r.stderr and "fitted" not in r.stdout  # a status line, not the result
    for text in ("celsius", "x2", "intercept", "fahrenheit"):
        assert text in r.stdout, text
    from jaxlm.io import load_model

    model = load_model(tmp / "plain.json")
    df = data["frame"]
    ref = jaxlm.LinearRegression().fit(df[["celsius", "x2"]], df["fahrenheit"])
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-10)
    assert model.intercept_ == pytest.approx(ref.intercept_, rel=1e-10)


def test_fit_writes_the_plot_lm_panels(fits, tmp):
    assert fits["plain"].returncode == 0
    names = {p.name for p in (tmp / "plots").iterdir()}
    assert names == PLOTS  # nothing else: no temporary files left behind
    import matplotlib.image

    for name in names:
        assert (tmp / "plots" / name).read_bytes()[:8] == PNG_MAGIC
        img = matplotlib.image.imread(tmp / "plots" / name)
        assert img.shape[0] > 100 and img.std() > 0


def test_one_predictor_also_gets_the_fitted_line_with_bands(fits, tmp):
    r = fits["one"]
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (tmp / "plots1").iterdir()} == PLOTS | {"fit.png"}


def test_fit_with_missing_drop_reports_the_dropped_rows(fits):
    r = fits["one"]
    assert r.returncode == 0, r.stderr
    assert "fitted 1,497 of 1,500 rows; dropped 3 rows with missing values (celsius: 3; --missing drop)" in r.stderr


def test_fit_json_is_the_model_document_with_the_pass_counts(fits, data):
    r = fits["formula"]
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # --quiet
    doc = json.loads(r.stdout)
    assert doc["n_rows"] == 1500 and doc["n_dropped"] == 0
    m = doc["model"]
    assert m["features"] == ["celsius", "x2", "C(group)[T.b]", "C(group)[T.c]"]
    assert m["formula"]["levels"] == {"group": ["a", "b", "c"]}
    mm = model_matrix("fahrenheit ~ celsius + x2 + C(group)", data["frame"])
    ref = jaxlm.LinearRegression().fit(mm.rhs.drop(columns="Intercept"), mm.lhs.to_numpy()[:, 0])
    np.testing.assert_allclose(m["coef"][0], ref.coef_, rtol=1e-10)



# --------------------------------------------------------------------------- predictions


def test_predict_writes_row_aligned_parquet(later, tmp, data):
    r = later["predict parquet"]
    assert r.returncode == 0, r.stderr
    assert "wrote 1,500 predictions" in r.stderr and r.stdout == ""
    out = pq.read_table(tmp / "out-pred" / "p.parquet")
    df = data["frame"]
    ref = jaxlm.LinearRegression().fit(df[["celsius", "x2"]], df["fahrenheit"]).predict(df[["celsius", "x2"]])
    assert out.column_names == ["prediction"]
    np.testing.assert_allclose(out.column("prediction").to_numpy(), ref, rtol=1e-10)


def test_predict_with_a_formula_and_intervals_to_csv(later, tmp, data):
    r = later["predict csv interval"]
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    out = pd.read_csv(tmp / "out-pred" / "p.csv")
    assert list(out.columns) == ["prediction", "lower", "upper"] and len(out) == 1500
    df = data["frame"]
    mm = model_matrix("fahrenheit ~ celsius + x2 + C(group)", df)
    X = mm.rhs.drop(columns="Intercept")
    ref = jaxlm.LinearRegression().fit(X, mm.lhs.to_numpy()[:, 0])
    np.testing.assert_allclose(out["prediction"], ref.predict(X), rtol=1e-10)
    if hasattr(ref, "predict_interval"):
        iv = ref.predict_interval(X, kind="prediction", level=0.9)
        np.testing.assert_allclose(out["lower"], iv.lower, rtol=1e-9)
        np.testing.assert_allclose(out["upper"], iv.upper, rtol=1e-9)
    assert (out["lower"] < out["prediction"]).all() and (out["prediction"] < out["upper"]).all()


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_with_one_line_naming_the_problem(later, case):
    _, option, fragment = BAD[case]
    r = later[case]
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(("jaxlm fit: error:", "jaxlm predict: error:")), lines[0]
    assert option in lines[0] and fragment in lines[0], lines[0]
    assert r.stdout == ""


def test_bad_input_writes_nothing(later, tmp):
    for d in ("out-const", "out-fmt", "out-notours", "out-csvmodel", "out-edited", "out-nox2", "out-level"):
        assert list((tmp / d).iterdir()) == [], d
    assert not (tmp / "no-such-dir").exists()
    assert sorted(p.name for p in (tmp / "out-pred").iterdir()) == ["p.csv", "p.parquet"]  # no temporaries


def test_inputs_are_never_modified(later, tmp, data):
    frame = pd.read_csv(data["csv"])
    np.testing.assert_array_equal(frame["celsius"].to_numpy(), data["frame"]["celsius"].to_numpy())
    assert pq.read_table(data["parquet"]).num_rows == 1500


def test_predict_refuses_to_overwrite_its_input(tmp, data, fits):
    assert fits["plain"].returncode == 0
    copy = tmp / "copy.csv"
    copy.write_bytes(data["csv"].read_bytes())
    code = cli_main(["predict", str(tmp / "plain.json"), str(copy), "-o", str(copy), "--quiet"])
    assert code == 2 and copy.read_bytes() == data["csv"].read_bytes()


def test_more_bad_options_in_process(tmp, data, fits, capsys):
    """The same rules, checked in this process (cheap): one line, exit 2, nothing written."""
    from jaxlm.io import fit_table, save_model

    gd = fit_table(data["frame"], target="fahrenheit", features="celsius,x2", solver="lbfgs", progress=False)
    save_model(gd, tmp / "gd.json")
    out = tmp / "out-inproc"
    out.mkdir(exist_ok=True)
    cases = [
        (["fit", str(data["csv"]), "--target", "fahrenheit", "--solver", "magic"], "--solver"),
        (["fit", str(data["csv"]), "--formula", "fahrenheit ~ celsius", "--features", "x2"], "--features"),
        (["predict", str(tmp / "plain.json"), str(data["csv"]), "-o", str(out / "p.csv"), "--level", "0.9"],
         "--level"),
        (["predict", str(tmp / "gd.json"), str(data["csv"]), "-o", str(out / "p.csv"), "--interval", "confidence"],
         "--interval"),
        (["fit", str(data["csv"]), "--target", "fahrenheit", "--features", "celsius", "--plots", str(data["csv"])],
         "--plots"),
    ]
    for argv, option in cases:
        assert cli_main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and option in err[0] and "Traceback" not in err[0], err
    assert list(out.iterdir()) == []
