"""`jaxlm predict --limit NAME=N`: the model-file limits of `jaxlm.load(path, limits=...)` on the CLI."""
import subprocess
import sys

import numpy as np
import pandas as pd

import jaxlm
from conftest import subprocess_env


def _predict(tmp_path, *extra):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30)})
    df["y"] = 2 * df.a - df.b + rng.normal(size=30)
    data = tmp_path / "d.csv"
    df.to_csv(data, index=False)
    jaxlm.fit_table(df, target="y").save(tmp_path / "m.json")
    out = tmp_path / "p.csv"
    cmd = [sys.executable, "-m", "jaxlm", "predict", str(tmp_path / "m.json"), str(data), "-o", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300), out


def test_a_limit_reaches_the_loader(tmp_path):
    r, out = _predict(tmp_path, "--limit", "max_features=1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "2 features, over limits.max_features=1" in r.stderr and "--limit max_features=N" in r.stderr
    assert not out.exists()


def test_a_raised_limit_loads_and_predicts(tmp_path):
    r, out = _predict(tmp_path, "--limit", "max_features=5000", "--limit", "max_levels=20000", "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(out)) == 30


def test_an_unknown_or_malformed_limit_is_one_line(tmp_path):
    for bad, says in (("max_nothing=3", "--limit"), ("max_features=-1", "--limit"), ("max_features", "--limit")):
        r, out = _predict(tmp_path, "--limit", bad)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (bad, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, (bad, r.stderr)
