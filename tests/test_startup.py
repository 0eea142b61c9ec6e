"""Start-up: what ``import jaxlm``, ``jaxlm fit`` and ``jaxlm predict`` import, and that the
estimator-free paths they take give exactly what the estimator gives.

The command line's exact path imports neither JAX nor scikit-learn: ``jaxlm fit`` writes its model
file from the fit's result (:func:`jaxlm.models.linear_doc.fit_to_dict`, the same bytes as
``LinearRegression.save``) and ``jaxlm predict`` predicts through a
:class:`jaxlm.models.linear_doc.LinearPredictor` (the same numbers as the estimator). Each import
audit runs in a fresh subprocess and reads ``sys.modules`` after the command.
"""
import json
import subprocess
import sys
import warnings

import numpy as np
import pyarrow as pa
import pytest
from conftest import subprocess_env

import jaxlm
from jaxlm.core.errors import InputError, RankWarning
from jaxlm.io.model_file import write_document
from jaxlm.models import linear_doc, linear_rules
from jaxlm.models.predict import float_array, predict_table
from jaxlm.models.registry import read_model_file, read_predictor
from jaxlm.models.linear_doc import fit_document
from jaxlm.models.tables import stream_fit

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

HEAVY = ("jax", "sklearn", "pandas", "formulaic", "matplotlib", "optax")

AUDIT = """
import json, sys
{body}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""

RUN_CLI = """
from jaxlm.cli.main import main
code = main({argv!r})
assert code == 0, code
"""


def _loaded(body: str, cwd) -> set:
    """Top-level packages imported by a fresh interpreter after running ``body``."""
    r = subprocess.run([sys.executable, "-c", AUDIT.format(body=body)], capture_output=True, text=True,
                       env=subprocess_env(), cwd=cwd, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return set(json.loads(r.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("startup")
    rng = np.random.default_rng(7)
    n = 50
    x1, x2 = rng.normal(size=n), rng.uniform(size=n)
    y = 1.0 + 2.0 * x1 - x2 + 0.1 * rng.normal(size=n)
    g = rng.choice(["a", "b", "c"], size=n)
    w = rng.integers(1, 4, size=n)
    y2 = 3.0 - x1 + rng.normal(size=n)
    x1, x2, y, y2, g, w = (a.tolist() for a in (x1, x2, y, y2, g, w))  # Python values: repr is the number
    (tmp / "small.csv").write_text("x1,x2,y\n" + "".join(f"{a!r},{b!r},{c!r}\n" for a, b, c in zip(x1, x2, y)))
    (tmp / "multi.csv").write_text("x1,x2,g,w,y,y2\n" + "".join(
        f"{a!r},{b!r},{c},{d},{e + (c == 'b')!r},{f!r}\n" for a, b, c, d, e, f in zip(x1, x2, g, w, y, y2)))
    (tmp / "rank.csv").write_text("x1,x2,y\n" + "".join(f"{a!r},{2 * a!r},{c!r}\n" for a, c in zip(x1, y)))
    return tmp


# --------------------------------------------------------------------------- imports


def test_import_jaxlm_imports_nothing_heavy(files):
    loaded = _loaded("import jaxlm", files)
    assert not loaded & set(HEAVY + ("scipy", "pyarrow")), sorted(loaded & set(HEAVY + ("scipy", "pyarrow")))


@pytest.mark.parametrize("argv", [
    ["fit", "small.csv", "--target", "y", "--save", "small.json"],
    ["fit", "multi.csv", "--target", "y", "--target", "y2", "--features", "x1,x2", "--weights", "w", "--json"],
    ["fit", "rank.csv", "--target", "y", "--solver", "qr", "--quiet"],
], ids=["plain", "multi", "rank-qr"])
def test_cli_exact_fit_imports_neither_jax_nor_sklearn(files, argv):
    loaded = _loaded(RUN_CLI.format(argv=argv), files)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize("extra", [[], ["--interval", "prediction", "--level", "0.9"]], ids=["plain", "interval"])
def test_cli_predict_imports_neither_jax_nor_sklearn(files, extra):
    subprocess.run([sys.executable, "-m", "jaxlm", "fit", "small.csv", "--target", "y", "--save", "p.json",
                    "--quiet"], check=True, capture_output=True, env=subprocess_env(), cwd=files, timeout=300)
    argv = ["predict", "p.json", "small.csv", "-o", "out.csv", "--quiet", *extra]
    loaded = _loaded(RUN_CLI.format(argv=argv), files)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    if not extra:  # plain predictions need no statistics
        assert "scipy" not in loaded


def test_cli_fit_and_predict_do_not_import_pandas(files):
    """Not even through pyarrow, whose ``Array.to_numpy`` and ``pa.array`` import pandas (~0.15 s)."""
    body = RUN_CLI.format(argv=["fit", "small.csv", "--target", "y", "--save", "pd.json", "--quiet"])
    body += RUN_CLI.format(argv=["predict", "pd.json", "small.csv", "-o", "pd.csv", "--quiet"])
    assert "pandas" not in _loaded(body, files)


def test_host_fit_through_the_library_core_needs_no_jax(files):
    """The exact core (state, solve, statistics) on NumPy arrays: JAX stays unimported."""
    body = ("import numpy as np\nfrom jaxlm.core import exact\nfrom jaxlm.core.passes import loop_runner\n"
            "from jaxlm.inference import regression_results\n"
            "X = np.random.default_rng(0).normal(size=(100, 3)); Y = X @ np.ones((3, 1)) + 1.0; w = np.ones(100)\n"
            "run = loop_runner(lambda: [(X, Y, w)])\n"
            "sol = exact.fit_reduced(run, 3, 1, solver='qr')\n"
            "assert np.allclose(sol.coef, 1.0) and np.allclose(sol.intercept, 1.0)\n"
            "regression_results(sol, fit_intercept=True, run=run)\n")
    assert "jax" not in _loaded(body, files)


# --------------------------------------------------------------------------- JAX on demand


def test_x64_scope_entered_before_jax_is_imported_still_gives_float64(files):
    """JAX imported (through the proxy) inside a float64 scope: x64 is on inside, off after."""
    body = ("import numpy as np\nfrom jaxlm.core.precision import jnp, lazy_jit, x64_scope\n"
            "assert 'jax' not in sys.modules\n"
            "double = lazy_jit(lambda a: a * 2)\n"
            "with x64_scope('float64'):\n"
            "    with x64_scope('float64'):\n"
            "        a = jnp.asarray(np.array([1.0 + 2.0**-40]))\n"
            "    b = double(jnp.asarray(np.array([1.0 + 2.0**-40])))\n"
            "assert a.dtype == np.float64 and float(a[0]) == 1.0 + 2.0**-40, a.dtype\n"
            "assert b.dtype == np.float64 and float(b[0]) == 2.0 + 2.0**-39, b.dtype\n"
            "assert jnp.asarray(np.array([1.0])).dtype == np.float32\n")
    assert "jax" in _loaded(body, files)


def test_host_tree_map_matches_jax():
    import jax

    from jaxlm.core import state as st
    from jaxlm.core.precision import tree_map

    s = st.init(3, 2)
    got = tree_map(lambda a: np.asarray(a) + 1.0, s)
    want = jax.tree_util.tree_map(lambda a: np.asarray(a) + 1.0, s)
    assert type(got) is type(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert tree_map(lambda a: a, {"b": 1, "a": (2, None)}) == jax.tree_util.tree_map(lambda a: a, {"b": 1, "a": (2, None)})


# --------------------------------------------------------------------------- the same results


def test_params_table_is_the_estimators():
    from jaxlm.core.gradient import METHODS

    assert linear_doc.PARAMS == jaxlm.LinearRegression().get_params()
    assert list(linear_doc.PARAMS) == list(jaxlm.LinearRegression().get_params())
    assert linear_rules.GRADIENT_SOLVERS == METHODS


@pytest.mark.parametrize("bad", [{"solver": "newton"}, {"weights_kind": "x"}, {"alpha": -1.0}, {"dtype": "int8"},
                                 {"max_iter": 0}, {"tol": 0.0}, {"learning_rate": -1.0}, {"robust": 1},
                                 {"fit_intercept": "yes"}, {"positive": 1}, {"positive": True, "solver": "gd"}])
def test_params_are_refused_as_the_estimator_refuses_them(bad):
    with pytest.raises(InputError) as ours:
        linear_params = linear_doc.linear_params(**bad)  # noqa: F841
    with pytest.raises(InputError) as theirs:
        jaxlm.LinearRegression(**bad)._check_params()
    assert (ours.value.param, str(ours.value)) == (theirs.value.param, str(theirs.value))


FITS = {
    "plain": ("small.csv", dict(target="y")),
    "multi-weighted": ("multi.csv", dict(target=["y", "y2"], features="x1,x2", weights="w")),
    "formula": ("multi.csv", dict(formula="y ~ x1 * x2 + C(g)")),
    "no-intercept": ("multi.csv", dict(formula="y ~ x1 + x2 - 1")),
    "rank-svd": ("rank.csv", dict(target="y", solver="svd")),
    "qr-robust-analytic": ("multi.csv", dict(target="y", features="x1,x2", weights="w", solver="qr", robust=True,
                                             weights_kind="analytic")),
    "ridge": ("small.csv", dict(target="y", alpha=0.5)),
    "float32": ("small.csv", dict(target="y", dtype="float32")),
    "positive": ("multi.csv", dict(target="y", features="x1,x2", positive=True)),
}


def _both(files, name):
    path, kwargs = FITS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankWarning)
        with_model = stream_fit(files / path, progress=False, **kwargs)
        without = stream_fit(files / path, progress=False, estimator=False, **kwargs)
    return with_model, without


@pytest.mark.parametrize("name", sorted(FITS))
def test_fit_document_is_byte_for_byte_the_estimators(files, tmp_path, name):
    with_model, without = _both(files, name)
    assert without.model is None and with_model.model is not None
    meta = {"data": "x.csv", "n_rows": with_model.n_rows}
    a = with_model.model.save(tmp_path / "estimator.json", weights="w", metadata=meta).read_bytes()
    b = write_document(tmp_path / "fit.json", fit_document(without, weights="w", metadata=meta)).read_bytes()
    assert a == b
    assert fit_document(with_model) == fit_document(without)
    assert with_model.params == without.params == with_model.model.get_params()


def test_the_estimator_of_a_stream_fit_holds_the_fit(files):
    with_model, without = _both(files, "multi-weighted")
    model = with_model.model
    assert model.solution_ is with_model.solution and model.results_ is with_model.results
    np.testing.assert_array_equal(model.coef_, without.solution.coef)
    assert str(jaxlm.inference.summary(without.results)) == str(model.summary())


def test_rank_warning_is_the_estimators(files):
    with pytest.warns(RankWarning) as ours:
        fit = stream_fit(files / "rank.csv", target="y", solver="cholesky", progress=False, estimator=False)
    X = np.loadtxt(files / "rank.csv", delimiter=",", skiprows=1)
    import pandas as pd

    with pytest.warns(RankWarning) as theirs:
        jaxlm.LinearRegression(solver="cholesky").fit(pd.DataFrame(X[:, :2], columns=["x1", "x2"]), X[:, 2])
    assert fit.solution.rank == 1
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]


@pytest.mark.parametrize("name", sorted(FITS))
def test_predictor_predicts_as_the_estimator(files, tmp_path, name):
    with_model, _ = _both(files, name)
    path = with_model.model.save(tmp_path / "m.json")
    estimator, predictor = read_model_file(path).model, read_predictor(path).model
    assert type(predictor).__name__ == "LinearPredictor"
    data = files / FITS[name][0]
    for a, b in zip(predict_table(estimator, data, progress=False), predict_table(predictor, data, progress=False)):
        assert a.equals(b)
    X = np.random.default_rng(1).normal(size=(7, len(estimator.feature_names_in_)))
    np.testing.assert_array_equal(predictor.predict(X), estimator.predict(X))
    assert predictor.predict(X).dtype == estimator.predict(X).dtype
    assert predictor.results_.__class__ is getattr(estimator, "results_").__class__
    if name in ("plain", "multi-weighted", "formula", "rank-svd"):
        for kind in ("confidence", "prediction"):
            p, e = predictor.predict_interval(X, kind=kind), estimator.predict_interval(X, kind=kind)
            for u, v in zip(p, e):
                np.testing.assert_array_equal(u, v)
    X[2, 0] = np.inf
    with pytest.raises(InputError) as ours:
        predictor.predict(X)
    with pytest.raises(InputError) as theirs:
        estimator.predict(X)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("missing", [None, [False, True, False, False, True]])
def test_float_array_is_pa_array(missing):
    values = np.array([1.5, np.nan, -2.0, 0.0, 3.25])
    mask = None if missing is None else np.array(missing)
    got = float_array(values, mask, pa)
    want = pa.array(values, mask=mask)
    assert got.type == want.type == pa.float64() and got.null_count == want.null_count
    assert got.is_null().equals(want.is_null())
    np.testing.assert_array_equal(got.fill_null(7.0).to_numpy(), want.fill_null(7.0).to_numpy())  # NaN == NaN here


# --------------------------------------------------------------------------- signals during a lazy import


def test_a_signal_during_an_import_is_raised_after_it(tmp_path, monkeypatch):
    """pyarrow imports pandas from C++ on its first conversion to NumPy and swallows whatever that
    import raises: a SIGTERM handled inside the import would be lost. It is raised after it."""
    import signal
    import time

    from jaxlm.cli._common import Terminated, _signals_interrupt

    (tmp_path / "jaxlm_test_swallowed.py").write_text(
        "import signal, time\nsignal.raise_signal(signal.SIGTERM)\ntime.sleep(0.05)\nLOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    swallowed = []
    with pytest.raises(Terminated) as e:
        with _signals_interrupt():
            try:
                import jaxlm_test_swallowed  # noqa: F401
            except BaseException as err:  # noqa: BLE001 - what pyarrow's C++ import does
                swallowed.append(err)
            assert sys.modules["jaxlm_test_swallowed"].LOADED
            time.sleep(5)  # the signal is delivered again within 10 ms
    assert e.value.signum == signal.SIGTERM and swallowed == []
    sys.modules.pop("jaxlm_test_swallowed", None)


# --------------------------------------------------------------------------- small data: one read


@pytest.mark.parametrize("name", ["plain", "formula", "rank-svd", "qr-robust-analytic"])
def test_small_data_are_read_once_with_the_same_result(files, monkeypatch, name):
    """The first pass's blocks are kept for the later passes when small (``KEEP_BYTES``): the
    file is read once, and the fit is exactly that of re-reading it for every pass."""
    from jaxlm.models import tables

    path, kwargs = FITS[name]
    reads = []
    designs = tables._Passes._designs

    def counted(self):
        reads.append(1)
        return designs(self)

    monkeypatch.setattr(tables._Passes, "_designs", counted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankWarning)
        kept = stream_fit(files / path, progress=False, estimator=False, **kwargs)
        n_kept = len(reads)
        monkeypatch.setattr(tables, "KEEP_BYTES", 0)
        reread = stream_fit(files / path, progress=False, estimator=False, **kwargs)
    assert n_kept == 1 and len(reads) - n_kept == kept.passes - (1 if "formula" in kwargs else 0) > 1
    assert fit_document(kept) == fit_document(reread)
