"""jaxlm's persistent cache of compiled gradient programs.

A program compiled in one process is loaded (not compiled) by the next and gives bit-for-bit
the same fit; a cache that cannot be used (corrupt, foreign, unwritable, untrusted, turned off)
is skipped silently and the program compiled; JAX's global configuration is never changed.
Every test points the cache at its own temporary directory (``XDG_CACHE_HOME``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest

from conftest import subprocess_env
from jaxlm.core import gradient
from jaxlm.datasets import celsius_fahrenheit, make_linear

C, F = celsius_fahrenheit(seed=0)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty cache home for this test, and no program kept from earlier tests."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(gradient.NO_CACHE_ENV, raising=False)
    monkeypatch.setattr(gradient, "_programs", {})
    return tmp_path


def fit(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # silently: a failing cache must not warn either
        return gradient.fit_gradient(C[:, None], F[:, None], method="gd", dtype="float32", **kw)


def counts():
    return dict(gradient.stats)


def delta(before):
    return {k: gradient.stats[k] - before[k] for k in before}


def entries(home):
    return sorted((home / "jaxlm" / "xla").glob("*.xla"))


def same(a, b):
    """Bit-for-bit the same fit."""
    assert a.n_iter == b.n_iter and a.converged == b.converged
    for x, y in ((a.coef, b.coef), (a.intercept, b.intercept), (a.loss_curve, b.loss_curve)):
        np.testing.assert_array_equal(x, y)


def test_location_follows_xdg_and_the_opt_out(tmp_path, monkeypatch):
    monkeypatch.delenv(gradient.NO_CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert gradient.cache_dir() == tmp_path / "jaxlm" / "xla"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert gradient.cache_dir() == tmp_path / "h" / ".cache" / "jaxlm" / "xla"
    monkeypatch.setenv(gradient.NO_CACHE_ENV, "1")
    assert gradient.cache_dir() is None


def test_second_use_loads_the_program_and_gives_the_same_fit(home):
    before = counts()
    first = fit()
    assert delta(before) == {"compiled": 1, "loaded": 0} and len(entries(home)) == 1
    (e,) = entries(home)
    assert e.stat().st_mode & 0o077 == 0 and (home / "jaxlm" / "xla").stat().st_mode & 0o077 == 0
    gradient._programs.clear()  # as in a new process
    before = counts()
    second = fit()
    assert delta(before) == {"compiled": 0, "loaded": 1}
    same(first, second)
    assert second.converged and abs(second.coef[0, 0] - 1.7725713) < 1e-4 * 1.7725713
    # the loaded program is kept: other values of the same shapes neither load nor compile again
    before = counts()
    third = fit(learning_rate=0.05, tol=1e-4)
    assert delta(before) == {"compiled": 0, "loaded": 0} and third.converged and third.n_iter != first.n_iter


def test_each_signature_is_its_own_program(home):
    before = counts()
    fit()
    fit(max_iter=50)  # another length of the loss curve
    X, Y, _, _ = make_linear(300, 4, 2, seed=3)
    for method in ("gd", "lbfgs", "adam"):
        gradient.fit_gradient(X, Y, method=method, max_iter=200)
    assert delta(before) == {"compiled": 5, "loaded": 0} and len(entries(home)) == 5
    gradient._programs.clear()
    before = counts()
    a = gradient.fit_gradient(X, Y, method="adam", max_iter=200)
    b = gradient.fit_gradient(X, Y, method="lbfgs", max_iter=200)
    assert delta(before) == {"compiled": 0, "loaded": 2}
    exact = np.linalg.lstsq(np.column_stack([X, np.ones(len(X))]), Y, rcond=None)[0]
    np.testing.assert_allclose(b.coef, exact[:-1].T, rtol=1e-6)
    assert np.linalg.norm(a.coef - exact[:-1].T) < 0.05 * np.linalg.norm(exact[:-1])


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "foreign"])
def test_a_damaged_entry_is_compiled_again_silently_and_rewritten(home, damage):
    first = fit()
    (e,) = entries(home)
    blob = bytearray(e.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0xFF
    elif damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "empty":
        blob = bytearray()
    else:  # intact checksum, but not an executable (another version's format, say)
        import hashlib

        payload = b"not an XLA executable" * 10
        blob = bytearray(gradient._MAGIC + hashlib.sha256(payload).digest() + payload)
    e.write_bytes(bytes(blob))
    gradient._programs.clear()
    before = counts()
    second = fit()
    assert delta(before) == {"compiled": 1, "loaded": 0}
    same(first, second)
    assert gradient._read_entry(e) is not None  # replaced by an intact entry


def test_an_unusable_directory_means_compiling_without_a_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(gradient, "_programs", {})
    monkeypatch.delenv(gradient.NO_CACHE_ENV, raising=False)
    (tmp_path / "jaxlm").write_text("a file where the cache directory should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    before = counts()
    first = fit()
    assert delta(before) == {"compiled": 1, "loaded": 0}
    # nobody else may write to a directory whose programs are loaded: a group-writable one is skipped
    shared = tmp_path / "shared"
    (shared / "jaxlm" / "xla").mkdir(parents=True)
    (shared / "jaxlm" / "xla").chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    gradient._programs.clear()
    same(first, fit())
    assert entries(shared) == []


def test_a_read_only_cache_is_read_but_not_written(home, monkeypatch):
    first = fit()
    gradient._programs.clear()

    def refuse(*a, **k):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(gradient.tempfile, "mkstemp", refuse)
    before = counts()
    same(first, fit())  # loads what is there
    assert delta(before) == {"compiled": 0, "loaded": 1}
    before = counts()
    fit(max_iter=77)  # a new program: compiled, and the failed write is silent
    assert delta(before) == {"compiled": 1, "loaded": 0} and len(entries(home)) == 1


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_a_directory_without_write_permission(home):
    first = fit()
    d = home / "jaxlm" / "xla"
    d.chmod(0o500)
    try:
        gradient._programs.clear()
        same(first, fit())
        before = counts()
        fit(max_iter=78)
        assert delta(before) == {"compiled": 1, "loaded": 0} and len(entries(home)) == 1
    finally:
        d.chmod(0o700)


def test_opt_out_writes_nothing(home, monkeypatch):
    monkeypatch.setenv(gradient.NO_CACHE_ENV, "1")
    before = counts()
    fit()
    assert delta(before) == {"compiled": 1, "loaded": 0} and not (home / "jaxlm").exists()


def test_jax_configuration_is_left_alone(home):
    names = ("jax_compilation_cache_dir", "jax_enable_compilation_cache", "jax_enable_x64",
             "jax_persistent_cache_min_compile_time_secs")
    before = {n: getattr(jax.config, n) for n in names}
    fit()
    gradient.fit_gradient(C[:, None], F[:, None], method="gd", dtype="float64")
    assert {n: getattr(jax.config, n) for n in names} == before


CHILD = r"""
import json, sys
import numpy as np
from jaxlm.core import gradient
from jaxlm.datasets import celsius_fahrenheit
c, f = celsius_fahrenheit(seed=0)
s = gradient.fit_gradient(c[:, None], f[:, None], method="gd", dtype="float32")
print(json.dumps({"stats": gradient.stats, "coef": s.coef.ravel().tolist(), "icpt": s.intercept.tolist(),
                  "curve": s.loss_curve.tolist()}))
"""


def test_a_second_process_loads_what_the_first_compiled(home):
    here = fit()
    env = subprocess_env()
    env["XDG_CACHE_HOME"] = str(home)
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    env.pop(gradient.NO_CACHE_ENV, None)
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["stats"] == {"compiled": 0, "loaded": 1}
    assert out["coef"] == here.coef.ravel().tolist() and out["icpt"] == here.intercept.tolist()
    assert out["curve"] == here.loss_curve.tolist()
    assert "Warning" not in r.stderr
