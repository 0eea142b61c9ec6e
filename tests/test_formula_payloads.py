"""Formulas are data: code smuggled into a formula is refused and never runs.

Every payload would create a marker file if formulaic evaluated it. Each is sent through every
door a formula comes in by (parse_formula, FormulaSpec.from_levels / from_source / from_json,
jaxlm.fit_table, ``jaxlm fit --formula``, a model file's formula through jaxlm.load and
``jaxlm predict``): each must be an InputError (exit 2 and one line from the CLI) and the marker
must never appear.
"""
from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxlm
from conftest import subprocess_env
from jaxlm.core.errors import InputError
from jaxlm.io import FormulaSpec, open_table
from jaxlm.io.formula import parse_formula
from jaxlm.io.grammar import check_formula

RUN = "__import__('os').system('touch MARKER')"
PAYLOADS = [
    "{np.f2py.os.system('touch MARKER') + y} ~ x",
    "y ~ {np.f2py.os.system('touch MARKER')}",
    "y ~ x + {" + RUN + "}",
    "y ~ x\n+ {" + RUN + "}",
    "y ~ np.f2py.os.system('touch MARKER')",
    "y ~ I(np.f2py.os.system('touch MARKER'))",
    "y ~ np.log(np.f2py.os.system('touch MARKER'))",
    "y ~ I(np.lib.npyio.os.system('touch MARKER'))",
    "y ~ I(np.f2py.os.system)",
    "y ~ x.__class__.__init__.__globals__['os'].system('touch MARKER')",
    "y ~ I(x.__class__.__init__.__globals__['os'].system('touch MARKER'))",
    "y ~ I(x.__getattribute__('__class__'))",
    "y ~ __import__('os').system('touch MARKER')",
    "y ~ I(" + RUN + ")",
    "y ~ I(__builtins__['__import__']('os').system('touch MARKER'))",
    "y ~ I(__builtins__)",
    "y ~ eval(\"" + RUN + "\")",
    "y ~ I(eval(\"" + RUN + "\"))",
    "y ~ exec(\"" + RUN + "\")",
    "y ~ I(exec)",
    "y ~ I(getattr(np, 'f2py').os.system('touch MARKER'))",
    "y ~ I(getattr(__builtins__, 'ev' + 'al')(\"" + RUN + "\"))",
    "y ~ I(vars()['__builtins__'])",
    "y ~ ｅval(\"" + RUN + "\")",
    "y ~ I(ｅval(\"" + RUN + "\"))",
    "y ~ I(`ｅval`(\"" + RUN + "\"))",
    "y ~ I(`ｅval`)",
    "y ~ I(＿＿import＿＿('os').system('touch MARKER'))",
    "y ~ I((lambda: " + RUN + ")())",
    "y ~ I([" + RUN + " for _ in x])",
    "y ~ I({" + RUN + " for _ in x})",
    "y ~ C(g, levels=[" + RUN + "])",
    "y ~ C(g, levels=[{" + RUN + "}])",
    "y ~ C(g, levels=[')', " + RUN + "])",
    "y ~ C(g, Treatment(" + RUN + "))",
    "y ~ C({" + RUN + "})",
    "y ~ C(g, contrasts=np.f2py.os.system('touch MARKER'))",
    "y ~ I({" + RUN + "})",
    "y ~ np.log(x, out=" + RUN + ")",
    "y ~ I(f\"{" + RUN + "}\")",
    "y ~ I((s := __import__('os')).system('touch MARKER'))",
    "y ~ log(*[" + RUN + "])",
    "y ~ Q(\"" + RUN + "\")",
    "y ~ hashed(" + RUN + ", levels=2)",
    "y ~ I(`x` + " + RUN + ")",
    "y ~ `x` + `" + RUN + "`",
    "y ~ log(x)(" + RUN + ")",
    "y ~ log(x)[" + RUN + "]",
    "y ~ x | {" + RUN + "}",
    "y ~ poly(x, degree=" + RUN + ")",
    "y ~ center(" + RUN + ") + x",
]
#: a handful sent through the slower doors (CLI subprocesses, model files)
SAMPLE = [PAYLOADS[i] for i in (0, 1, 4, 10, 13, 17, 20, 24, 28, 32, 40)]


def _fill(payload: str, marker: Path) -> str:
    return payload.replace("MARKER", str(marker))


@pytest.fixture
def marker(tmp_path) -> Path:
    m = tmp_path / "pwned"
    yield m
    assert not m.exists(), "a formula payload ran"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    n = 40
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(["a", "b", "c"], n)})
    df["y"] = 1 + 2 * df.x + rng.normal(size=n)
    return df


def test_the_payloads_are_live_without_the_gate(marker, frame):
    """The positive control: formulaic alone does run a payload (so the marker check can fail)."""
    import os

    from formulaic import model_matrix

    model_matrix(_fill(PAYLOADS[2], marker), frame)
    assert marker.exists()
    os.remove(marker)


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_payloads_are_refused_by_every_library_door(payload, marker, frame):
    text = _fill(payload, marker)
    doors = {
        "parse_formula": lambda: parse_formula(text),
        "check_formula": lambda: check_formula(text),
        "from_levels": lambda: FormulaSpec.from_levels(text, {"g": ["a", "b", "c"]}),
        "from_source": lambda: FormulaSpec.from_source(text, open_table(frame)),
        "from_json": lambda: FormulaSpec.from_json({"formula": text, "levels": {"g": ["a", "b", "c"]}}),
        "fit_table": lambda: jaxlm.fit_table(frame, formula=text, progress=False),
    }
    for door, call in doors.items():
        with pytest.raises(InputError) as e:
            call()
        assert e.value.param == "formula", (door, str(e.value))
        assert "\n" not in str(e.value), (door, str(e.value))
        assert not marker.exists(), door


def _run(argvs: dict, cwd: Path) -> dict:
    env = subprocess_env()

    def run(argv):
        return subprocess.run([sys.executable, "-m", "jaxlm", *map(str, argv)], capture_output=True, text=True,
                              env=env, cwd=cwd, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {k: pool.submit(run, v) for k, v in argvs.items()}
        return {k: f.result() for k, f in futures.items()}


@pytest.fixture(scope="module")
def files(tmp_path_factory, frame):
    """A legit model file (written by model.save) and copies whose formula is a payload."""
    tmp = tmp_path_factory.mktemp("payload_doors")
    marker = tmp / "pwned"
    data = tmp / "data.csv"
    frame.to_csv(data, index=False)
    model = jaxlm.fit_table(frame, formula="y ~ x + C(g)", progress=False)
    model.save(tmp / "good.json")
    assert jaxlm.load(tmp / "good.json").formula_.formula == "y ~ x + C(g)"
    doc = json.loads((tmp / "good.json").read_text())
    assert doc["formula"]["formula"] == "y ~ x + C(g)"
    bad = {}
    for i, payload in enumerate(SAMPLE):
        bad[i] = tmp / f"bad{i}.json"
        bad[i].write_text(json.dumps(dict(doc, formula=dict(doc["formula"], formula=_fill(payload, marker)))))
    return {"marker": marker, "data": data, "bad": bad, "tmp": tmp}


@pytest.fixture(scope="module")
def cli_runs(files):
    """``jaxlm fit DATA --formula PAYLOAD`` and ``jaxlm predict BAD_MODEL DATA``, run together."""
    argvs = {}
    for i, payload in enumerate(SAMPLE):
        argvs[("fit", i)] = ["fit", files["data"], "--formula", _fill(payload, files["marker"])]
        argvs[("predict", i)] = ["predict", files["bad"][i], files["data"], "-o", files["tmp"] / f"out{i}.csv"]
    return _run(argvs, files["tmp"])


@pytest.mark.slow
@pytest.mark.parametrize("i", range(len(SAMPLE)))
def test_cli_fit_and_predict_refuse_payloads_in_one_line(files, cli_runs, i):
    for cmd in ("fit", "predict"):
        r = cli_runs[(cmd, i)]
        assert r.returncode == 2, (cmd, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, (cmd, r.stderr)
        assert f"jaxlm {cmd}: error:" in lines[0] and "formula" in lines[0], (cmd, lines[0])
    assert not (files["tmp"] / f"out{i}.csv").exists()
    assert not files["marker"].exists()


@pytest.mark.parametrize("i", range(len(SAMPLE)))
def test_a_payload_in_a_model_file_is_refused_by_load(files, i):
    with pytest.raises(InputError) as e:
        jaxlm.load(files["bad"][i])
    # the model file names the refused formula term (the wrapper's wording is model_file's)
    assert "model file" in str(e.value) and "formula term" in str(e.value), str(e.value)
    assert not files["marker"].exists()


TOKENS = ["y", "x", "g", " ", "~", "+", "-", "*", "/", ":", "**", "(", ")", "[", "]", "{", "}", "`", "'", '"',
          ",", "=", ".", "0", "1", "2", "|", "%", "\\", "\n", "np", "log", "C", "I", "Treatment", "Sum", "levels",
          "contr", "sum", "__import__", "__class__", "os", "system", "eval", "lambda", "ｅ", "for", "in", ":=",
          "f", "open", "MARKER", "RUN"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=24))
def test_random_formula_text_is_input_error_or_a_safe_formula(marker, tokens):
    text = "".join(_fill(RUN, marker) if t == "RUN" else t for t in tokens).replace("MARKER", str(marker))
    try:
        parse_formula(text)
    except InputError as e:
        assert e.param == "formula", str(e)
        assert "reads differently" not in str(e), text  # the gate and formulaic split the text alike
    else:
        try:
            FormulaSpec.from_levels(text, {"g": ["a", "b"]})
        except InputError:
            pass
    assert not marker.exists(), text
