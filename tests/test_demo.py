"""jaxlm.demo (the study as a library) and jaxlm.plotting."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxlm import InputError, demo, plotting
from jaxlm.datasets import celsius_fahrenheit


@pytest.fixture(scope="module")
def study32():
    return demo.run_study(seed=0)


@pytest.fixture(scope="module")
def study64():
    return demo.run_study(seed=0, x64=True)


@pytest.fixture(scope="module")
def diverged():
    return demo.run_study(seed=0, lr=5.0)


def rel(a, b):
    return abs(a - b) / abs(b)


# --------------------------------------------------------------------------- reproducibility


def test_same_seed_same_study(study32):
    again = demo.run_study(seed=0)
    np.testing.assert_array_equal(again.celsius, study32.celsius)
    np.testing.assert_array_equal(again.fahrenheit, study32.fahrenheit)
    for a, b in zip(again.fits, study32.fits):
        assert (a.slope, a.intercept) == (b.slope, b.intercept)
    assert again.gradient_descent.n_iter == study32.gradient_descent.n_iter


def test_different_seed_different_noise(study32):
    other = demo.run_study(seed=1, repeats=1)
    np.testing.assert_array_equal(other.celsius, study32.celsius)
    assert not np.array_equal(other.fahrenheit, study32.fahrenheit)
    assert other.closed_form.slope != study32.closed_form.slope


def test_data_are_the_articles(study32):
    c, f = celsius_fahrenheit(seed=0)
    assert study32.n == 400
    np.testing.assert_array_equal(study32.celsius, c)
    np.testing.assert_array_equal(study32.fahrenheit, f)
    assert study32.celsius[0] == -5.0 and study32.celsius[-1] < 15.0


# --------------------------------------------------------------------------- agreement


def test_sklearn_matches_closed_form(study32):
    assert rel(study32.sklearn.slope, study32.closed_form.slope) <= 1e-12
    assert rel(study32.sklearn.intercept, study32.closed_form.intercept) <= 1e-12


def test_float32_gradient_descent_matches_closed_form(study32):
    gd = study32.gradient_descent
    assert gd.dtype == "float32" and gd.converged and gd.status == "converged"
    assert study32.gd_vs_closed_form.max_rel <= 1e-5
    assert rel(gd.slope, study32.closed_form.slope) <= 1e-5
    assert rel(gd.intercept, study32.closed_form.intercept) <= 1e-5


def test_float64_gradient_descent_matches_closed_form(study64):
    assert study64.gradient_descent.dtype == "float64" and study64.ok
    assert study64.gd_vs_closed_form.max_rel <= 1e-9


def test_fits_are_near_the_ideal(study32):
    for fit in study32.fits:
        es, ei = fit.error_vs_ideal
        assert abs(es) < 0.1 and abs(ei) < 1.0


def test_timings_are_recorded(study32):
    gd = study32.gradient_descent
    for fit in study32.fits:
        assert fit.seconds > 0
    assert gd.first_call_seconds > 0 and gd.loss_curve.shape == (gd.n_iter + 1,)


# --------------------------------------------------------------------------- divergence, bounds


def test_divergence_keeps_the_exact_fits_and_presents_no_gd_fit(diverged):
    gd = diverged.gradient_descent
    assert gd.diverged and not gd.converged and gd.status == "diverged" and not diverged.ok
    assert np.isnan(gd.slope) and np.isnan(gd.intercept)
    assert np.isfinite(diverged.closed_form.slope) and np.isfinite(diverged.sklearn.slope)
    doc = diverged.to_json_dict()
    g = doc["methods"]["gradient_descent"]
    assert g["converged"] is False and g["diverged"] is True
    assert g["slope"] is None and g["intercept"] is None
    assert all(v is None for v in doc["gd_vs_closed_form"].values())
    json.dumps(doc, allow_nan=False)


def test_max_iter_exhausted_is_not_converged():
    r = demo.run_study(seed=0, max_iter=5, repeats=1)
    gd = r.gradient_descent
    assert gd.n_iter == 5 and gd.status == "not converged" and not gd.diverged
    assert gd.grad_norm > gd.tol
    doc = r.to_json_dict()["methods"]["gradient_descent"]
    assert doc["converged"] is False and doc["diverged"] is False and doc["grad_norm"] > doc["tol"]


# --------------------------------------------------------------------------- result object


def test_result_is_immutable(study32):
    with pytest.raises(AttributeError):
        study32.closed_form = None
    with pytest.raises(AttributeError):
        study32.gradient_descent.slope = 0.0
    with pytest.raises(ValueError):
        study32.celsius[0] = 1.0
    with pytest.raises(ValueError):
        study32.gradient_descent.loss_curve[0] = 1.0
    with pytest.raises(TypeError):
        study32.versions["jax"] = "0"


def test_results_json_schema(study32):
    doc = study32.to_json_dict()
    text = json.dumps(doc, allow_nan=False)
    doc = json.loads(text)
    assert {"seed", "n", "dtype", "ideal", "methods", "versions"} <= set(doc)
    assert doc["seed"] == 0 and doc["n"] == 400 and doc["dtype"] == "float32"
    assert doc["ideal"] == {"slope": 1.8, "intercept": 32.0}
    assert set(doc["methods"]) == {"closed_form", "sklearn", "gradient_descent"}
    for m in doc["methods"].values():
        assert {"slope", "intercept", "seconds"} <= set(m)
        assert isinstance(m["slope"], float) and isinstance(m["seconds"], float)
    g = doc["methods"]["gradient_descent"]
    assert {"n_iter", "converged", "diverged", "grad_norm", "dtype"} <= set(g)
    assert g["converged"] is True and g["diverged"] is False and isinstance(g["n_iter"], int)
    assert {"python", "jaxlm", "jax", "numpy", "sklearn"} <= set(doc["versions"])
    assert doc["gd_vs_closed_form"]["max_rel"] <= 1e-5


# --------------------------------------------------------------------------- validation

BAD = [
    ({"step": 0.0}, "step"),
    ({"step": -0.05}, "step"),
    ({"start": 15.0, "stop": -5.0}, "start"),
    ({"start": 1.0, "stop": 1.0}, "start"),
    ({"noise_sd": -1.0}, "noise_sd"),
    ({"lr": 0.0}, "lr"),
    ({"lr": -1.0}, "lr"),
    ({"max_iter": 0}, "max_iter"),
    ({"max_iter": 2.5}, "max_iter"),
    ({"tol": 0.0}, "tol"),
    ({"tol": -1e-5}, "tol"),
    ({"seed": -1}, "seed"),
    ({"stop": float("inf")}, "stop"),
    ({"start": float("nan")}, "start"),
    ({"start": 0.0, "stop": 0.01}, "step"),  # a single reading
    ({"step": 1e-9}, "step"),  # 2e10 readings
]


@pytest.mark.parametrize("kwargs, param", BAD, ids=[str(k) for k, _ in BAD])
def test_bad_parameters_are_rejected_before_any_work(kwargs, param):
    with pytest.raises(InputError) as info:
        demo.check_params(**kwargs)
    assert info.value.param == param
    assert param in str(info.value)


def test_default_tolerance_and_dtype(study32, study64):
    assert demo.check_params().dtype == "float32" and demo.check_params(x64=True).dtype == "float64"
    assert demo.check_params().tol is None and demo.check_params(tol=1e-3).tol == 1e-3
    assert study32.gradient_descent.tol == 1e-5 and study64.gradient_descent.tol == 1e-10
    assert study32.to_json_dict()["methods"]["gradient_descent"]["tol"] == 1e-5


def test_validation_and_data_do_not_import_jax():
    """So that the CLI can start the scikit-learn process before the ~1 s ``import jax``."""
    code = ("import sys; from jaxlm import demo; p = demo.check_params(); demo.make_data(p); "
            "print('jax' in sys.modules)")
    env = dict(os.environ)
    src = str(Path(demo.__file__).resolve().parents[1])  # the jaxlm under test
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert r.stdout.strip() == "False"


# --------------------------------------------------------------------------- scikit-learn job


def test_sklearn_job_in_a_subprocess_matches_in_process(study32, monkeypatch):
    monkeypatch.setattr(demo, "_sklearn_imported", lambda: False)  # as in a fresh `jaxlm demo`
    job = demo.SklearnJob(study32.celsius, study32.fahrenheit, subprocess=True)
    assert job._proc is not None
    fit = job.result()
    job.close()
    assert fit.method == "sklearn"
    assert fit.slope == pytest.approx(study32.sklearn.slope, rel=1e-13)
    assert fit.intercept == pytest.approx(study32.sklearn.intercept, rel=1e-13)


def test_sklearn_job_falls_back_to_this_process_when_the_helper_fails(study32, monkeypatch):
    import subprocess as sp

    monkeypatch.setattr(demo, "_sklearn_imported", lambda: False)
    monkeypatch.setattr(demo, "_popen", lambda cmd: sp.Popen([sys.executable, "-c", "import sys; sys.exit(3)"],
                                                              stdin=sp.PIPE, stdout=sp.PIPE))
    with demo.SklearnJob(study32.celsius, study32.fahrenheit, subprocess=True) as job:
        fit = job.result()
    assert (fit.slope, fit.intercept) == (study32.sklearn.slope, study32.sklearn.intercept)


# --------------------------------------------------------------------------- plotting


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_plots_are_figures_with_labels_and_legends(study32):
    from matplotlib.figure import Figure

    c, f = study32.celsius, study32.fahrenheit
    figs = {
        "data": plotting.plot_data(c, f, demo.IDEAL),
        "fit": plotting.plot_fits(c, f, {fit.label: (fit.slope, fit.intercept) for fit in study32.fits},
                                  ideal=demo.IDEAL),
        "loss": plotting.plot_loss(study32.gradient_descent.loss_curve, converged=True),
    }
    for name, fig in figs.items():
        assert isinstance(fig, Figure), name
        ax = fig.axes[0]
        assert ax.get_legend() is not None, name
        assert _png_bytes(fig).startswith(b"\x89PNG\r\n\x1a\n"), name
    for name in ("data", "fit"):
        ax = figs[name].axes[0]
        assert ax.get_xlabel() == "Celsius" and ax.get_ylabel() == "Fahrenheit"
    assert figs["loss"].axes[0].get_yscale() == "log"
    labels = [t.get_text() for t in figs["fit"].axes[0].get_legend().get_texts()]
    assert sum("closed form" in t or "scikit-learn" in t or "gradient descent" in t for t in labels) == 3


def test_fit_plot_of_a_diverged_run_draws_no_line_for_it(diverged):
    c, f = diverged.celsius, diverged.fahrenheit
    fig = plotting.plot_fits(c, f, {fit.label: (fit.slope, fit.intercept) for fit in diverged.fits})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("diverged" in t for t in labels)
    loss = plotting.plot_loss(diverged.gradient_descent.loss_curve)
    assert _png_bytes(loss).startswith(b"\x89PNG")


def test_loss_plot_copes_with_nothing_to_show():
    fig = plotting.plot_loss(np.array([np.nan, np.inf]))
    assert _png_bytes(fig).startswith(b"\x89PNG")


def test_cli_demo_imports_matplotlib_beside_the_compile_with_the_collector_off(tmp_path, monkeypatch):
    """``jaxlm demo`` warms matplotlib up in a thread while XLA compiles; a garbage collection inside
    the ``dlopen`` of one of matplotlib's extensions ran JAX's gc callback under the loader's lock and
    the process hung (seen in tests/test_cli.py; gdb showed the warm-up thread in ``ft2font``'s
    initialiser under ``dlopen``). The collector is off over that window, in both threads, and on
    again afterwards."""
    import gc

    from jaxlm.cli.main import main
    from jaxlm.plotting import study

    seen = {}
    warm_up, fit_gd = study.warm_up, demo.fit_gd

    def spy_warm_up():
        seen["warm_up"] = gc.isenabled()
        warm_up()

    def spy_fit_gd(*args, **kwargs):
        seen["fit_gd"] = gc.isenabled()
        return fit_gd(*args, **kwargs)

    monkeypatch.setattr(study, "warm_up", spy_warm_up)
    monkeypatch.setattr(demo, "fit_gd", spy_fit_gd)
    assert gc.isenabled()
    assert main(["demo", "--out", str(tmp_path / "out")]) == 0
    assert seen == {"warm_up": False, "fit_gd": False}
    assert gc.isenabled()
