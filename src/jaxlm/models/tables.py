"""Fit a linear model from a table too big for memory: the exact fit's passes run by the
stream driver (:mod:`jaxlm.reduce.stream`) over the source.

:func:`stream_fit` reads the data block by block (one Parquet row group, one CSV block, one
Arrow record batch at a time; the driver's reader thread decodes the next block while the
current one is reduced) and turns each into float64 ``(X, Y, w)`` (:mod:`jaxlm.io.design`, or
a formula through :mod:`jaxlm.io.formula`). :func:`jaxlm.core.exact.fit_reduced` asks the
driver for the state, and for each extra pass an exact fit may need (TSQR when the Gram is
too ill-conditioned, double-double refinement, the statistics' pass): each re-reads the file
instead of holding it. The coefficients are those of the in-memory ``LinearRegression().fit``
on the same rows to rounding (≤ 1e-10 relative; the blocks differ, so the sums are added in
another order).

During the first pass the stream also keeps: the row counts, the rows dropped for missing
values per column, the range of each target (a constant target is refused), and a seeded
reservoir sample of rows (Vitter's algorithm R) for diagnostic plots.

:func:`fit_table` passes over views of a pandas DataFrame's bare numeric columns (:mod:`.frame_arrays`).

Gradient solvers ("gd", "lbfgs", "adam") need the data in memory: they read all blocks,
concatenate them and call ``LinearRegression.fit`` (memory is not bounded on that path).

An exact fit needs no estimator: with ``estimator=False`` the result is the solution, the
statistics and the parameters (``StreamFit.solution``, ``.results``, ``.params``), and neither
scikit-learn nor JAX is imported (``jaxlm fit`` writes its model file from them:
:func:`jaxlm.models.linear_doc.fit_document`).
"""
from __future__ import annotations

import contextlib
import time
import warnings
from typing import TYPE_CHECKING, Callable, Iterator, NamedTuple

import numpy as np

from ..core.errors import InputError, RankWarning
from ..io.design import (DesignBlock, check_missing, check_numeric, float_types, missing_error, numeric_design, plural,
                         select_columns)
from ..io.sources import open_table
from ..io.values import Source
from ..reduce import stream
from .linear_rules import GRADIENT_SOLVERS, linear_params, mergeable_state, rank_message
from .sample import Sample, _Reservoir
from ..reduce.stream import Progress, prefetch

if TYPE_CHECKING:
    from ..io.formula import FormulaSpec

__all__ = ["Sample", "StreamFit", "fit_table", "stream_fit", "SAMPLE_SIZE"]

#: Rows kept in the reservoir sample for plots.
SAMPLE_SIZE = 5000
#: Data whose first pass decodes to at most this many bytes of float64 blocks are kept in memory
#: for the later passes (refinement, statistics) instead of being read and decoded again.
KEEP_BYTES = stream.KEEP_BYTES
#: Below this many values (rows × features) BLAS's threads are left as they are (see jaxlm.reduce.stream.blas_share).
SMALL_SIZE = 1 << 20


class StreamFit(NamedTuple):
    """A streamed fit: the model and what the pass over the data saw.

    model : jaxlm.LinearRegression     fitted (``feature_names_in_``, ``target_names_``, ``formula_`` set);
                                       None for an exact fit made with ``estimator=False``
    source : jaxlm.io.values.Source    the data, re-readable
    batches : callable                 ``batches()`` -> fresh iterator of float64 ``(X, Y, w)`` blocks
    n_read : int                       data rows read
    n_rows : int                       rows fitted (n_read - n_dropped)
    n_dropped : int                    rows dropped for missing values (``missing="drop"``)
    dropped_by_column : dict           column -> missing values found in it
    passes : int                       passes over the data (levels pass, state pass(es), refinement)
    seconds : float                    wall time of the fit
    sample : Sample                    reservoir sample of the fitted rows
    feature_names, target_names : tuple[str, ...]
    formula : FormulaSpec or None
    solution : jaxlm.core.solution.Solution     the fit (``model.solution_``)
    results : RegressionResults (a tuple of them for several targets)   ``model.results_``
    params : dict                      the LinearRegression parameters (``model.get_params()``)
    """

    model: object
    source: Source
    batches: Callable
    n_read: int
    n_rows: int
    n_dropped: int
    dropped_by_column: dict
    passes: int
    seconds: float
    sample: Sample
    feature_names: tuple
    target_names: tuple
    formula: FormulaSpec | None
    solution: object = None
    results: object = None
    params: dict | None = None


# --------------------------------------------------------------------------- the passes

#: a block with no rows to reduce (all dropped, or missing with missing="raise"): counted, not summed
_EMPTY = (np.zeros((0, 0)), np.zeros((0, 0)), np.zeros(0))


class _Passes:
    """The source's passes for the stream driver (:func:`jaxlm.reduce.stream.runner`): ``passes(k)``
    yields ``((X, Y, w), n_read)`` per block; the first pass also keeps the books."""

    def __init__(self, source, columns, types, design, *, names, fit_intercept, missing, progress, reservoir,
                 depth, formula):
        self.source, self.columns, self.types, self.design = source, columns, types, design
        self.features, self.targets = names
        self.fit_intercept, self.missing, self.progress = fit_intercept, missing, progress
        self.reservoir, self.depth, self.formula = reservoir, depth, formula
        self.calls = 0
        self.n_read = self.n_rows = self.n_dropped = self.n_positive = 0
        self.dropped_by_column: dict = {}
        self.void_rows = 0
        self.first_missing = -1
        m = len(self.targets)
        self.y_min, self.y_max = np.full(m, np.inf), np.full(m, -np.inf)
        self.kept: list | None = []  # the first pass's blocks while they total <= KEEP_BYTES
        self.kept_bytes = 0
        self.complete = False  # the first pass ran to the end with every block kept

    def _keep(self, blk: DesignBlock) -> None:
        if self.kept is None:
            return
        self.kept_bytes += sum(a.nbytes for a in (blk.X, blk.Y, blk.w) if a is not None)
        if self.kept_bytes > KEEP_BYTES:
            self.kept = None
        else:
            self.kept.append(blk)

    def _designs(self) -> Iterator[DesignBlock]:
        for block in self.source.blocks(self.columns, types=self.types):
            design = self.design(block)
            del block  # the Arrow table is not needed once converted
            yield design

    def blocks(self, *, threaded: bool = True) -> Iterator[DesignBlock]:
        return prefetch(self._designs, depth=self.depth) if threaded else self._designs()

    def __call__(self, k: int):
        return self._first() if k == 1 else self._again()

    def _again(self):
        for blk in (self.kept if self.complete else self._designs()):
            yield ((blk.X, blk.Y, blk.w) if not blk.void else _EMPTY), blk.n_read

    def _first(self):
        for blk in self._designs():
            self._keep(blk)
            self.n_read += blk.n_read
            if blk.missing:
                for c, k in blk.missing.items():
                    self.dropped_by_column[c] = self.dropped_by_column.get(c, 0) + k
                if self.first_missing < 0:
                    self.first_missing = blk.first_missing
            if blk.void:
                self.void_rows += blk.n_missing
                yield _EMPTY, blk.n_read
                continue
            self.n_dropped += blk.n_missing
            if not len(blk.X):
                yield _EMPTY, blk.n_read
                continue
            self.n_rows += len(blk.X)
            self.n_positive += int(np.count_nonzero(blk.w > 0))
            Yp = blk.Y[blk.w > 0]
            if len(Yp):
                self.y_min = np.fmin(self.y_min, Yp.min(axis=0))
                self.y_max = np.fmax(self.y_max, Yp.max(axis=0))
            self.reservoir.add(blk)
            yield (blk.X, blk.Y, blk.w), blk.n_read
        self._check_first_pass()
        self.complete = self.kept is not None

    def missing_error(self, counts: dict, rows: int, first: int) -> InputError:
        return missing_error(counts, rows, first)

    def _check_first_pass(self):
        if self.void_rows:
            raise self.missing_error(self.dropped_by_column, self.void_rows, self.first_missing)
        if self.n_rows == 0 or self.n_positive == 0:
            if self.n_read == 0:
                raise InputError("data", f"data must have at least one data row; got {self.source.name!r} with "
                                         f"{'a header and ' if self.source.kind == 'csv' else ''}no rows.")
            if self.n_dropped:
                raise InputError("data", f"data must keep at least one row after dropping missing values; got "
                                         f"{self.source.name!r}, where all {plural(self.n_read, 'row')} have a "
                                         f"missing value.")
            raise InputError("weights", "weights must have at least one positive value; got all zeros.")
        p = len(self.features) + int(self.fit_intercept)
        if p > self.n_positive:
            what = f"{plural(len(self.features), 'feature')}{' + intercept' if self.fit_intercept else ''}"
            raise InputError("data", f"data must have at least as many rows as the model has parameters; got "
                                     f"{plural(self.n_positive, 'row')} for {p} parameters ({what}). Use fewer "
                                     f"features or more data.")
        const = [j for j in range(len(self.targets)) if self.y_max[j] == self.y_min[j]]
        if const:
            j = const[0]
            raise InputError("target", f"target must vary; got target {self.targets[j]!r}, which is "
                                       f"{float(self.y_min[j])!r} on every row. A constant has nothing to explain.")

    def locate_nonfinite(self):
        """Called by the solver when the state is not finite: find the NaN/inf and raise."""
        nan: dict = {}
        inf: dict = {}
        first_nan = first_inf = None
        names = (self.features, self.targets, ("(weights)",))
        for blk in self.blocks(threaded=False):
            if blk.void or not len(blk.X):
                continue
            for A, cols in zip((blk.X, blk.Y, blk.w[:, None]), names):
                if np.isfinite(A).all():
                    continue
                for kind, test, store in (("nan", np.isnan, nan), ("inf", np.isinf, inf)):
                    bad = test(A)
                    if not bad.any():
                        continue
                    per = bad.sum(axis=0)
                    for c, k in zip(cols, per):
                        if k:
                            store[c] = store.get(c, 0) + int(k)
                    r = blk.source_row(int(np.flatnonzero(bad.any(axis=1))[0]))
                    if kind == "nan" and (first_nan is None or r < first_nan):
                        first_nan = r
                    if kind == "inf" and (first_inf is None or r < first_inf):
                        first_inf = r
        where = "model column" if self.formula is not None else "column"
        if nan and (self.formula is None and self.missing == "raise"):
            rows = sum(nan.values())
            raise self.missing_error(nan, rows, first_nan)
        if nan:
            parts = ", ".join(f"{c!r} ({plural(k, 'row')})" for c, k in nan.items())
            raise InputError("formula", f"formula terms must be finite numbers; got NaN in {where}(s) {parts}, the "
                                        f"first at data row {first_nan + 1} (e.g. the log or square root of a "
                                        f"negative number). Change the formula or filter those rows.")
        if inf:
            parts = ", ".join(f"{c!r} ({plural(k, 'row')})" for c, k in inf.items())
            raise InputError("data", f"data must hold finite numbers; got infinite values in {where}(s) {parts}, the "
                                     f"first at data row {first_inf + 1}. Remove or fix those rows.")


# --------------------------------------------------------------------------- public API


def _check_solver(solver) -> None:
    """The solver name, checked before any data is read (the estimator checks the rest)."""
    from ..core.errors import check_choice
    from ..core.exact import SOLVERS

    check_choice("solver", solver, SOLVERS + GRADIENT_SOLVERS)


def _new_model(params: dict):
    """The (unfitted) estimator of checked ``params``."""
    from .linear import LinearRegression

    return LinearRegression(**params)


def _estimator(params: dict, sol, results, *, one_d: bool, feature_names, target_names, spec):
    """The fitted estimator of an exact fit's result (what ``LinearRegression.fit`` would hold)."""
    model = _new_model(params)
    d = len(feature_names)
    model.feature_names_in_ = np.asarray(feature_names, dtype=object)
    model.n_features_in_ = d
    model.target_names_ = tuple(target_names)
    model.formula_ = spec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankWarning)  # given once already, by the fit
        model._set_solution(sol, one_d, d)
    model.results_ = results
    if mergeable_state(model.solver, sol.state) is not None:
        model.state_ = sol.state
    return model


def stream_fit(data, *, target=None, features=None, formula: str | None = None, weights: str | None = None,
               solver: str = "auto", fit_intercept: bool | None = None, alpha: float = 0.0, dtype: str = "float64",
               missing: str = "raise", progress: bool | None = None, sample_size: int = SAMPLE_SIZE, seed=0,
               prefetch_depth: int = 1, estimator: bool = True, cluster=None, **params) -> StreamFit:
    """Fit ``jaxlm.LinearRegression`` to a table, streamed block by block (see the module docstring).

    Parameters
    ----------
    data : path, directory, glob, DataFrame or :class:`~jaxlm.io.values.Source`
    target : str or list of str
        The column to predict (a list: several targets, ``coef_`` of shape (m, d)). Not with ``formula``.
    features : list of str or "a,b,c", optional
        Default: every column except the targets and the weights (all must be numeric).
    formula : str, optional
        A formulaic formula, ``"y ~ x1 * x2 + C(group) + np.log(z)"`` (instead of target/features).
        Its intercept (default on; ``- 1`` removes it) decides ``fit_intercept``.
    weights : str, optional
        Column of non-negative frequency weights.
    solver, alpha, dtype : as :class:`jaxlm.LinearRegression`. ``fit_intercept`` defaults to True.
    missing : {"raise", "drop"}
        Rows with a missing value (empty, null, NaN) in a used column: an error that says which
        columns and how many rows (default), or left out (counted in ``n_dropped``).
    progress : bool or None
        A progress bar on stderr when it is a terminal (None or True); False: never.
    sample_size, seed : size and seed of the reservoir sample of fitted rows.
    cluster : str or list of str, optional
        With ``cov_type="cluster"``: the cluster column (two: two-way clustering), read in one more
        pass (:mod:`jaxlm.models.stream_cov`). ``cov_type="HAC"`` takes the rows in file order.
    estimator : bool, default True
        Build the fitted ``LinearRegression`` (``StreamFit.model``). False: an exact fit leaves
        ``model`` None and imports neither scikit-learn nor JAX (gradient solvers build it anyway).
    **params : other :class:`jaxlm.LinearRegression` parameters (``weights_kind``, ``robust``, ...).

    Returns
    -------
    StreamFit
    """
    t_start = time.perf_counter()
    missing = check_missing(missing)
    if not isinstance(sample_size, (int, np.integer)) or isinstance(sample_size, bool) or sample_size < 0:
        raise InputError("sample_size", f"sample_size must be an integer >= 0; got sample_size={sample_size!r}.")
    source = open_table(data)
    _check_solver(solver)
    est = source.estimated_rows()
    bar = Progress(progress, source.name, est)
    # the parameters are checked once the columns are known to be good
    new_params = lambda intercept: linear_params(solver=solver, fit_intercept=intercept, alpha=alpha,  # noqa: E731
                                                 dtype=dtype, **params)
    try:
        return _stream_fit(source, new_params, cluster, estimator=estimator, target=target, features=features,
                           formula=formula, weights=weights, fit_intercept=fit_intercept, missing=missing, bar=bar,
                           sample_size=int(sample_size), seed=seed, depth=prefetch_depth, t_start=t_start, est=est)
    finally:
        bar.close()


def _stream_fit(source, new_params, cluster, *, estimator, target, features, formula, weights, fit_intercept, missing, bar,
                sample_size, seed, depth, t_start, est):
    passes_extra = 0
    if formula is not None:
        if target is not None or features is not None:
            raise InputError("formula", "formula must be given instead of target and features, not with them; got "
                                        f"formula={formula!r} and {'target' if target is not None else 'features'}.")
        if weights is not None:
            source.require([weights], "weights")
            check_numeric(source, [weights], "weights")
        from ..io.formula import FormulaSpec  # the formula grammar (~10 ms): imported for formulas only
        from .frame_arrays import BareFrame

        bare = isinstance(source, BareFrame) and (source.spec.formula, source.weights) == (formula, weights)
        bar.start("reading levels of")
        spec = source.spec if bare else FormulaSpec.from_source(formula, source, missing=missing, weights=weights,
                                                                progress=lambda _, n: bar.advance(n))
        passes_extra = 1 if spec.levels else 0
        if fit_intercept is not None and bool(fit_intercept) != spec.fit_intercept:
            raise InputError("fit_intercept", f"fit_intercept must agree with the formula; got "
                                              f"fit_intercept={fit_intercept!r} for formula={formula!r}, which "
                                              f"{'has' if spec.fit_intercept else 'has no'} intercept (write '- 1' "
                                              f"in the formula to remove it).")
        if weights is not None and weights in spec.outputs:
            raise InputError("weights", f"weights must not be the target; got weights={weights!r}.")
        params = new_params(spec.fit_intercept)
        columns = list(dict.fromkeys(spec.outputs + spec.inputs + ((weights,) if weights else ())))
        types = spec.read_types(source, columns)
        design = source.design if bare else spec.design(missing, weights)
        feature_names, target_names, one_d = spec.features, spec.targets, len(spec.targets) == 1
    else:
        sel = select_columns(source, target=target, features=features, weights=weights)
        params = new_params(True if fit_intercept is None else fit_intercept)
        spec = None
        columns = list(sel.features + sel.targets + ((sel.weights,) if sel.weights else ()))
        types = float_types(source, columns) if source.kind == "csv" else None
        design = numeric_design(sel, missing)
        feature_names, target_names, one_d = sel.features, sel.targets, sel.one_d
    from ..core import exact
    from . import stream_cov

    clusters = stream_cov.check_request(params, cluster)
    source.require(clusters, "cluster")
    d, m = len(feature_names), len(target_names)
    reservoir = _Reservoir(sample_size, d, m, seed)
    passes = _Passes(source, columns, types, design, names=(feature_names, target_names),
                     fit_intercept=params["fit_intercept"], missing=missing, progress=bar, reservoir=reservoir,
                     depth=depth, formula=spec)

    run = stream.runner(passes, progress=bar, depth=depth)

    def refit_batches():
        return ((b.X, b.Y, b.w) for b in passes.blocks() if not b.void and len(b.X))

    if params["solver"] in exact.SOLVERS:
        later = params["cov_type"] in ("cluster", "HAC")  # its own pass, after the fit's
        sol, results = _fit_exact(run, passes, {**params, "cov_type": "nonrobust"} if later else params, d, m, one_d,
                                  est, feature_names, target_names)
        if later:
            res, k = stream_cov.streamed_cov(results if isinstance(results, tuple) else (results,), params, sol,
                                             passes, clusters, progress=bar, depth=depth)
            results, run.passes = (res[0] if one_d else res), run.passes + k
        model = _estimator(params, sol, results, one_d=one_d, feature_names=feature_names,
                           target_names=target_names, spec=spec) if estimator else None
    else:
        model = _new_model(params)
        model.feature_names_in_ = np.asarray(feature_names, dtype=object)
        model.n_features_in_ = d
        model.target_names_ = tuple(target_names)
        model.formula_ = spec
        _fit_in_memory(model, passes, feature_names, one_d, bar)
        run.passes += 1  # the reading pass above
        # fit() drops what an earlier file fit left on the model; set this fit's names again
        model.target_names_ = tuple(target_names)
        model.formula_ = spec
        model._set_results(model.solution_, one_d, run=run)
        sol, results = model.solution_, model.results_

    return StreamFit(model, source, refit_batches, passes.n_read, passes.n_rows, passes.n_dropped,
                     dict(passes.dropped_by_column), run.passes + passes_extra, time.perf_counter() - t_start,
                     reservoir.sample(), tuple(feature_names), tuple(target_names), spec, sol, results, params)


def _fit_exact(run, passes, params, d, m, one_d, est, feature_names, target_names):
    """(solution, results) of an exact fit, as ``LinearRegression`` computes them (its RankWarning
    included), without the estimator."""
    from ..core import exact
    from ..inference import regression_results
    from .covariance import apply_params, needs_hc

    size = None if est is None else est * d
    alpha, fit_intercept = float(params["alpha"]), params["fit_intercept"]
    with stream.blas_share() if size is None or size > SMALL_SIZE else contextlib.nullcontext():
        # the fit's passes are order-free: folded in chunks by one thread per core (jaxlm.reduce.stream)
        sol = exact.fit_reduced(run.folded, d, m, solver=params["solver"], alpha=alpha, fit_intercept=fit_intercept,
                                refine_data=False if params["positive"] else None,  # (as LinearRegression)
                                dtype=params["dtype"], on_nonfinite=passes.locate_nonfinite,
                                feature_names=feature_names, target_names=target_names)
        if params["positive"]:  # as LinearRegression._constrain
            from ..core import nnls

            sol = nnls.nonnegative(sol, alpha=alpha, fit_intercept=fit_intercept)
        names = np.asarray(feature_names, dtype=object)
        message = rank_message(sol, d, params["solver"], names)
        if message is not None:  # stacklevel: stream_fit, as the estimator's warning
            warnings.warn(message, RankWarning, stacklevel=3)
        res = regression_results(sol, fit_intercept=fit_intercept, weights_kind=params["weights_kind"], alpha=alpha,
                                 run=run, robust=needs_hc(params), feature_names=names, target_names=tuple(target_names))
        res = apply_params(res, params, solution=sol)  # positive: no inference; an HC cov_type the default
    return sol, res[0] if one_d else res


def _fit_in_memory(model, passes: _Passes, feature_names, one_d, bar):
    """Gradient solvers: gather every block (the first pass, with its books), then the
    estimator's own ``fit``."""
    import pandas as pd

    Xs, Ys, ws = [], [], []
    bar.start("reading")
    for (X, Y, w), n_read in passes(1):
        bar.advance(n_read)
        if not len(X):
            continue
        Xs.append(np.asarray(X))
        Ys.append(np.asarray(Y))
        ws.append(np.asarray(w))
    X = np.concatenate(Xs) if Xs else np.zeros((0, len(feature_names)))
    Y = np.concatenate(Ys)
    w = np.concatenate(ws)
    frame = pd.DataFrame(X, columns=list(feature_names), copy=False)
    model.fit(frame, Y[:, 0] if one_d else Y, sample_weight=w)


def fit_table(data, *, target=None, features=None, formula: str | None = None, weights: str | None = None,
              solver: str = "auto", missing: str = "raise", progress: bool | None = None, **kwargs):
    """A fitted :class:`jaxlm.LinearRegression` from a table, streamed: ``stream_fit(...).model``; with
    ``family=`` a :class:`jaxlm.GLM` (:func:`~jaxlm.models.glm_tables.stream_glm`). Equal to the fit in memory
    (≤ 1e-10 relative) in a few blocks of memory; ``target_names_`` and ``formula_`` are set. A pandas DataFrame
    and a formula of its bare numeric columns skip Arrow and formulaic (:mod:`jaxlm.models.frame_arrays`).
    >>> import pandas as pd, jaxlm.io
    >>> df = pd.DataFrame({"celsius": [0.0, 10.0, 20.0, 30.0], "fahrenheit": [32.0, 50.0, 68.0, 86.0]})
    >>> m = jaxlm.io.fit_table(df, formula="fahrenheit ~ celsius", progress=False)
    >>> round(float(m.coef_[0]), 6), round(float(m.intercept_), 6)
    (1.8, 32.0)
    """
    if kwargs.get("family") is not None:  # a GLM: one pass per IRLS iteration
        from .glm_tables import fit_glm_table
        return fit_glm_table(data, target=target, features=features, formula=formula, weights=weights, missing=missing,
                             progress=progress, **kwargs, **({} if solver == "auto" else {"solver": solver}))
    if kwargs.pop("family", None) is None and isinstance(formula, str) and "|" in formula:  # absorbed FE, in memory
        from .absorbed import fit_absorbed
        return fit_absorbed(data, formula, weights=weights, **kwargs)
    if formula is not None and target is None and features is None:  # a pandas frame's bare columns: no Arrow
        from .frame_arrays import bare_frame
        frame = bare_frame(data, formula, weights=weights, cluster=kwargs.get("cluster"))
        data = data if frame is None else frame
    kwargs.setdefault("sample_size", 0)  # the model holds no sample of rows
    return stream_fit(data, target=target, features=features, formula=formula, weights=weights, solver=solver,
                      missing=missing, progress=progress, **kwargs).model
