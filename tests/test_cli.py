"""The ``jaxlm`` command line, run for real (``python -m jaxlm`` in a subprocess) and in-process.

A subprocess costs a couple of seconds of imports, so the real-process runs are started together,
a few at a time, by one module fixture; each test then inspects its own run.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jaxlm
from conftest import subprocess_env
from jaxlm import cli
from jaxlm.datasets import celsius_fahrenheit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FILES = ("data.png", "fit.png", "loss.png", "data.csv", "results.json")


def _env() -> dict:
    return subprocess_env()


def _unwritable_dir(tmp: Path) -> Path | None:
    """An existing directory in which no file can be created (None if there is none to be had)."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        d = tmp / "read-only"
        d.mkdir()
        d.chmod(stat.S_IRUSR | stat.S_IXUSR)
        return d
    proc_self = Path("/proc/self")  # root ignores permission bits; procfs refuses new files
    return proc_self if proc_self.is_dir() else None


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def runs(tmp) -> dict:
    a_file = tmp / "a-file"
    a_file.write_text("not a directory\n")
    never = str(tmp / "never-created")
    cases = {
        "ok": ["demo", "--out", str(tmp / "ok")],
        "diverged": ["demo", "--lr", "5", "--out", str(tmp / "diverged")],
        # every bad input of the issue, each in a real process
        "--step": ["demo", "--step", "0", "--out", never],
        "--start": ["demo", "--start", "15", "--stop", "-5", "--out", never],
        "--noise": ["demo", "--noise", "-1", "--out", never],
        "--lr": ["demo", "--lr", "0", "--out", never],
        "--max-iter": ["demo", "--max-iter", "0", "--out", never],
        "--tol": ["demo", "--tol", "0", "--out", never],
        "--out (cannot be created)": ["demo", "--out", str(a_file / "sub")],
    }
    unwritable = _unwritable_dir(tmp)
    if unwritable is not None:
        cases["--out (cannot be written)"] = ["demo", "--out", str(unwritable)]
    env = _env()

    def run(argv):
        return subprocess.run([sys.executable, "-m", "jaxlm", *argv], capture_output=True, text=True, env=env,
                              cwd=tmp, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(run, argv) for name, argv in cases.items()}
        results = {name: fut.result() for name, fut in futures.items()}
    results["never"] = Path(never)
    return results


# --------------------------------------------------------------------------- a good run


def test_demo_succeeds_and_prints_the_table(runs):
    r = runs["ok"]
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    for text in ("method", "slope", "intercept", "error vs ideal", "(1.8, 32)", "fit time",
                 "closed form", "scikit-learn", "JAX GD (float32)", "Gradient descent: converged in",
                 "Gradient descent vs closed form"):
        assert text in r.stdout, text


def test_demo_writes_valid_pngs(runs, tmp):
    import matplotlib.image

    for name in ("data.png", "fit.png", "loss.png"):
        path = tmp / "ok" / name
        assert path.read_bytes()[:8] == PNG_MAGIC, name
        img = matplotlib.image.imread(path)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100, name
        assert img.std() > 0, name  # not blank


def test_demo_csv_round_trips_exactly(runs, tmp):
    lines = (tmp / "ok" / "data.csv").read_text().splitlines()
    assert lines[0] == "celsius,fahrenheit"
    data = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    c, f = celsius_fahrenheit(seed=0)
    np.testing.assert_array_equal(data[:, 0], c)
    np.testing.assert_array_equal(data[:, 1], f)


def test_demo_results_json_has_the_schema(runs, tmp):
    doc = json.loads((tmp / "ok" / "results.json").read_text())
    assert doc["seed"] == 0 and doc["n"] == 400 and doc["dtype"] == "float32"
    assert doc["ideal"] == {"slope": 1.8, "intercept": 32.0}
    for name in ("closed_form", "sklearn", "gradient_descent"):
        m = doc["methods"][name]
        assert isinstance(m["slope"], float) and isinstance(m["intercept"], float) and m["seconds"] > 0
    gd = doc["methods"]["gradient_descent"]
    assert gd["converged"] is True and gd["diverged"] is False and 0 < gd["n_iter"] <= 10_000
    assert {"python", "jaxlm", "jax", "numpy", "sklearn"} <= set(doc["versions"])
    assert doc["gd_vs_closed_form"]["max_rel"] <= 1e-5


def test_demo_leaves_only_its_files_with_normal_permissions(runs, tmp):
    out = tmp / "ok"
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no temporary files left behind
    umask = os.umask(0o022)
    os.umask(umask)
    for name in FILES:
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask


# --------------------------------------------------------------------------- divergence


def test_divergence_exits_1_and_reports_it(runs, tmp):
    r = runs["diverged"]
    assert r.returncode == 1
    assert "diverged" in r.stderr and "--lr" in r.stderr and "Traceback" not in r.stderr
    assert "diverged" in r.stdout.lower()
    doc = json.loads((tmp / "diverged" / "results.json").read_text())
    gd = doc["methods"]["gradient_descent"]
    assert gd["converged"] is False and gd["diverged"] is True
    assert gd["slope"] is None and gd["intercept"] is None
    assert isinstance(doc["methods"]["closed_form"]["slope"], float)
    assert isinstance(doc["methods"]["sklearn"]["slope"], float)
    for name in ("data.png", "fit.png", "loss.png"):
        assert (tmp / "diverged" / name).read_bytes()[:8] == PNG_MAGIC


# --------------------------------------------------------------------------- bad input, real process

BAD_RUNS = ["--step", "--start", "--noise", "--lr", "--max-iter", "--tol", "--out (cannot be created)",
            "--out (cannot be written)"]


@pytest.mark.parametrize("case", BAD_RUNS)
def test_bad_input_exits_2_with_one_line_naming_the_option(runs, case):
    if case not in runs:
        pytest.skip("no unwritable directory available here")
    r = runs[case]
    option = case.split()[0]
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert option in lines[0] and "must be" in lines[0] and "got" in lines[0]
    assert r.stdout == ""


def test_bad_input_creates_nothing(runs):
    assert not runs["never"].exists()


# --------------------------------------------------------------------------- in process (fast)

MORE_BAD = [
    (["--step", "-0.5"], "--step"),
    (["--step", "nan"], "--step"),
    (["--start", "3", "--stop", "3"], "--start"),
    (["--stop", "inf"], "--stop"),
    (["--noise", "-0.1"], "--noise"),
    (["--noise", "inf"], "--noise"),
    (["--lr", "-1"], "--lr"),
    (["--max-iter", "-3"], "--max-iter"),
    (["--max-iter", "2.5"], "--max-iter"),
    (["--tol", "-1e-5"], "--tol"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "abc"], "--seed"),
    (["--lr", "fast"], "--lr"),
    (["--start", "0", "--stop", "0.01"], "--step"),
    (["--out", ""], "--out"),
]


@pytest.mark.parametrize("argv, option", MORE_BAD, ids=[" ".join(a) for a, _ in MORE_BAD])
def test_bad_input_in_process(argv, option, capsys, tmp):
    out = tmp / "in-process-never"
    args = ["demo", *argv] if "--out" in argv else ["demo", *argv, "--out", str(out)]
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and option in captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()


def test_help_and_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"jaxlm {jaxlm.__version__}"
    assert cli.main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert cli.main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--seed", "--start", "--stop", "--step", "--noise", "--lr", "--max-iter", "--tol", "--x64",
                   "--out"):
        assert option in out
    assert cli.main([]) == 2
    assert cli.main(["no-such-command"]) == 2


def test_max_iter_exhausted_exits_1_with_the_last_gradient_norm(capsys, tmp):
    out = tmp / "max-iter"
    assert cli.main(["demo", "--max-iter", "5", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "did not converge" in captured.err and "gradient norm" in captured.err
    assert "NOT CONVERGED" in captured.out
    gd = json.loads((out / "results.json").read_text())["methods"]["gradient_descent"]
    assert gd["converged"] is False and gd["diverged"] is False and gd["n_iter"] == 5
    assert gd["grad_norm"] > gd["tol"] and isinstance(gd["slope"], float)


def test_an_output_that_cannot_be_written_exits_2(capsys, tmp):
    out = tmp / "blocked"
    (out / "data.png").mkdir(parents=True)  # a directory where a file must go
    assert cli.main(["demo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "data.png" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["data.png"]  # no temporary files left


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp):
    path = tmp / "atomic.txt"
    path.write_text("old")

    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    from jaxlm.cli._common import write_atomic

    with pytest.raises(RuntimeError):
        write_atomic(path, boom)
    assert path.read_text() == "old"
    assert [p.name for p in tmp.iterdir() if p.name.startswith(".atomic.txt")] == []
    write_atomic(path, lambda fh: fh.write(b"new"))
    assert path.read_text() == "new"


def test_a_subcommand_is_one_entry_of_the_table():
    from types import SimpleNamespace

    def configure(p):
        p.add_argument("word")
        return lambda args: 0 if args.word == "hi" else 1

    cli.COMMANDS["test-echo"] = SimpleNamespace(HELP="echo for the test", DESCRIPTION=None, configure=configure)
    try:
        assert cli.main(["test-echo", "hi"]) == 0
        assert cli.main(["test-echo", "ho"]) == 1
    finally:
        del cli.COMMANDS["test-echo"]
