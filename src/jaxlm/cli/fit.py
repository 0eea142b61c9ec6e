"""``jaxlm fit``: fit a linear model to a table file and print (and write) its results.

:mod:`jaxlm.cli.main` lists it as :data:`FIT`; its options are :mod:`jaxlm.cli.fit_options`,
the coefficient-table file :mod:`jaxlm.cli.coef_table`, and ``jaxlm predict`` is
:mod:`jaxlm.cli.predict`.

Exit codes as :mod:`jaxlm.cli`: 0 success; 2 bad input (one line on stderr naming the option
or argument, the rule and the value received, no traceback, nothing written); 130 interrupted
(143 SIGTERM, 129 SIGHUP). Every output (model file, coefficient table, plots) is written to a
temporary file in its directory and renamed into place, and the outputs of one command appear
together or not at all (:class:`jaxlm.io.files.OutputGroup`); inputs are never modified.

stdout carries the result (the summary, or the JSON document) and nothing else, so that
``> summary.txt`` captures just that; status lines ("fitted N of N rows", "saved the model to
...") and notes go to stderr, and ``--quiet`` silences them; warnings go to stderr too, one line
each (``jaxlm fit: warning: ...``), also under ``--quiet``. Text from the data (column names, values) is shown with control
characters escaped (``\\x1b``), never raw.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from jaxlm.core.text import printable

from ._common import EXIT_OK, _guard, _same_file, _status, _Usage, dropped_text
from .fit_options import OPTIONS, absorbed, add_fit_options, glm_params, model_params, summary_cov

__all__ = ["FIT", "configure_fit", "run_fit"]


def _printable(text) -> str:
    """``text`` with control characters escaped (:func:`jaxlm.core.text.printable`)."""
    return printable(text)


def _check_plots_dir(path: str) -> tuple[Path, list[Path]]:
    """The plots directory, created if needed and proven writable, and the directories this created
    (innermost first: removed again if the command fails)."""
    p = Path(path)
    if not path:
        raise _Usage("--plots must be a directory path; got --plots ''.")
    created = []
    try:
        q = p
        while not q.exists() and q != q.parent:
            created.append(q)
            q = q.parent
        p.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p, prefix=".jaxlm-write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        _remove_empty(created)
        raise _Usage(f"--plots must be a directory that can be created and written; got --plots {path!r} "
                     f"({e.strerror or e}).") from None
    return p, created


def _remove_empty(directories: list[Path]) -> None:
    """Remove these directories, innermost first, where still empty."""
    for d in directories:
        try:
            d.rmdir()
        except OSError:
            return


# --------------------------------------------------------------------------- fit


def configure_fit(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Add the options of ``jaxlm fit`` to ``p`` (:func:`~jaxlm.cli.fit_options.add_fit_options`);
    return the handler."""
    add_fit_options(p)
    return run_fit


def run_fit(args: argparse.Namespace) -> int:
    prog = "jaxlm fit"
    return _guard(prog, OPTIONS, lambda: _fit(args, prog))


def _fit(args, prog: str) -> int:
    if args.formula is not None and args.target:
        raise _Usage("--formula names the target itself: use --formula alone or --target with --features; got "
                     f"--formula {args.formula!r} and --target {args.target[0]!r}.")
    if args.formula is not None and args.features is not None:
        raise _Usage(f"--features cannot be combined with --formula: the formula names the features; got --features "
                     f"{args.features!r}.")
    if args.formula is None and not args.target:
        raise _Usage("--target or --formula must be given: the column(s) to predict; e.g. --target y, or --formula "
                     "'y ~ x1 + x2'.")
    glm = glm_params(args)
    if glm and absorbed(args):
        raise _Usage(f"--family cannot be combined with absorbed fixed effects ('|' in --formula); got --formula "
                     f"{args.formula!r} with --family {args.family}.")
    params = {} if glm or absorbed(args) else model_params(args)
    table_fmt = _table_format(args.coef_table) if args.coef_table is not None else None
    save = _output_path(args.save, "path") if args.save is not None else None
    if save is not None and _same_file(save, args.data):
        raise _Usage(f"--save must not overwrite the data; got --save {args.save!r}.")
    table = _output_path(args.coef_table, "coef_table") if table_fmt is not None else None
    if table is not None and _same_file(table, args.data):
        raise _Usage(f"--coef-table must not overwrite the data; got --coef-table {args.coef_table!r}.")
    if table is not None and save is not None and os.path.abspath(table) == os.path.abspath(save):
        raise _Usage(f"--coef-table and --save must be different files; got {args.save!r} for both.")
    if absorbed(args):
        from .fit_absorbed import fit_absorbed

        return fit_absorbed(args, prog, save, (table, table_fmt))
    if glm:
        from .fit_glm import fit_glm

        return fit_glm(args, prog, glm, save, (table, table_fmt))
    plots, created = _check_plots_dir(args.plots) if args.plots is not None else (None, [])
    try:
        return _fit_and_write(args, prog, params, save, plots, (table, table_fmt))
    except BaseException:
        _remove_empty(created)
        raise


def _table_format(path) -> str:
    from . import coef_table

    return coef_table.check_path(path)


def _output_path(path, param: str):
    """:func:`jaxlm.io.model_file.check_output_path` (the model-file modules are imported only
    when an output is asked for: ~15 ms of a fit that writes none)."""
    from jaxlm.io.model_file import check_output_path

    return check_output_path(path, param)


def _fit_and_write(args, prog: str, params: dict, save: Path | None, plots: Path | None, table) -> int:
    from jaxlm.io.files import OutputGroup
    from jaxlm.models.tables import stream_fit

    target = None
    if args.target:
        target = args.target[0] if len(args.target) == 1 else list(args.target)
    progress = False if args.quiet else None
    # an exact fit without plots needs no estimator: neither scikit-learn nor JAX is imported
    fit = stream_fit(args.data, target=target, features=args.features, formula=args.formula, weights=args.weights,
                     solver=args.solver, missing=args.missing, progress=progress, estimator=plots is not None,
                     **params)
    model = fit.model
    level, cov = args.level, summary_cov(args)
    results, summ, summary_text, statistics, note = _statistics(model, fit, level=level, cov=cov,
                                                                as_dict=save is not None or args.json)
    if note and not args.quiet:
        _status(f"{prog}: note: {note}")
    metadata = {"data": os.fspath(args.data), "n_rows": fit.n_rows, "n_dropped": fit.n_dropped}
    written = []
    # all outputs or none: the plots and the model go to temporaries, renamed together at the end
    with OutputGroup() as outputs:
        if plots is not None:
            written = _write_plots(outputs, plots, model, fit, results)
        if save is not None:
            _save_model(outputs, save, fit, statistics=statistics, weights=args.weights, metadata=metadata)
        if table[0] is not None:
            _write_coef_table(outputs, table, summ, fit, level=level, cov=cov)
    if args.json:
        doc = {"data": os.fspath(args.data), "n_read": fit.n_read, "n_rows": fit.n_rows, "n_dropped": fit.n_dropped,
               "dropped_by_column": fit.dropped_by_column, "passes": fit.passes, "seconds": fit.seconds,
               "model": _document(fit, statistics=statistics, weights=args.weights, metadata=metadata),
               "saved": os.fspath(save) if save is not None else None, "plots": [os.fspath(p) for p in written]}
        print(json.dumps(doc, indent=1, allow_nan=False))
        return EXIT_OK
    _print_fit(model, fit, summary_text, save, written, args)
    return EXIT_OK


def _document(fit, **kwargs) -> dict:
    from jaxlm.models.linear_doc import fit_document

    return fit_document(fit, **kwargs)


def _save_model(outputs, save: Path, fit, **kwargs) -> None:
    """The model file, written to a temporary of ``outputs`` (messages name ``save``, not it)."""
    from jaxlm.core.errors import InputError
    from jaxlm.io.model_file import write_document

    tmp = outputs.reserve(save)
    try:
        write_document(tmp, _document(fit, **kwargs))
    except InputError as e:
        raise InputError(e.param, str(e).replace(tmp, os.fspath(save))) from None


def _statistics(model, fit, *, level: float = 0.95, cov: str = "nonrobust", as_dict: bool = True):
    """(results, Summary or None, summary text, statistics dict, note) at the confidence ``level``
    with the covariance ``cov``. Uses the model's own results when it has them (without a model:
    the fit's, which are the estimator's). The statistics dict (for the model file and the JSON
    output) is None unless ``as_dict``."""
    from jaxlm import inference
    from jaxlm.core.errors import InputError

    res = getattr(model, "results_", None) if model is not None else fit.results
    try:
        if res is None:  # an estimator without statistics of its own: read them off the solution
            res = inference.regression_results(model.solution_, fit_intercept=model.fit_intercept,
                                               alpha=float(model.alpha), batches=fit.batches,
                                               feature_names=fit.feature_names, target_names=fit.target_names)
        summ = inference.summary(res, level=level, cov=cov)  # as LinearRegression.summary(level=, cov=)
        return res, summ, str(summ), _jsonable(summ.to_dict()) if as_dict else None, None
    except InputError:
        if cov != "nonrobust":  # asked for and not available: say so
            raise
        return None, None, _coef_text(model, fit), None, "statistics unavailable"
    except Exception as e:  # noqa: BLE001 - statistics are a bonus; the coefficients stand without them
        return None, None, _coef_text(model, fit), None, f"statistics unavailable ({type(e).__name__}: {e})"


def _jsonable(obj):
    from jaxlm.io.model_file import _jsonable

    return _jsonable(obj)


def _coefficients(model, fit):
    """(coef (m, d), intercept (m,), fit_intercept) of the fit."""
    import numpy as np

    coef = np.atleast_2d(model.coef_ if model is not None else fit.solution.coef)
    inter = np.atleast_1d(model.intercept_ if model is not None else fit.solution.intercept)
    fit_intercept = model.fit_intercept if model is not None else fit.params["fit_intercept"]
    return coef, inter, fit_intercept


def _coef_text(model, fit) -> str:
    """The coefficients alone, per target (when the statistics are unavailable)."""
    coef, inter, fit_intercept = _coefficients(model, fit)
    lines = []
    names = [_printable(c) for c in fit.feature_names]
    for k, t in enumerate(fit.target_names):
        lines.append(f"{_printable(t)}:")
        width = max([len("intercept")] + [len(c) for c in names])
        if fit_intercept:
            lines.append(f"  {'intercept':<{width}}  {inter[k]: .10g}")
        for name, b in zip(names, coef[k]):
            lines.append(f"  {name:<{width}}  {b: .10g}")
    return "\n".join(lines)


def _write_coef_table(outputs, table, summ, fit, *, level: float, cov: str) -> None:
    """``--coef-table``: the summary's coefficient rows (estimates alone when the statistics are
    unavailable), written to a temporary of ``outputs``."""
    from . import coef_table

    path, fmt = table
    if summ is not None:
        rows = summ.coef_rows()
    else:
        coef, inter, fit_intercept = _coefficients(fit.model, fit)
        nan = float("nan")
        rows = [{"target": t, "term": term, "estimate": float(v), "std_error": nan, "t": nan, "p": nan,
                 "ci_lower": nan, "ci_upper": nan}
                for k, t in enumerate(fit.target_names)
                for term, v in zip((("intercept",) if fit_intercept else ()) + tuple(fit.feature_names),
                                   ([inter[k]] if fit_intercept else []) + list(coef[k]))]
    coef_table.write(outputs.reserve(path), fmt, rows, level=level, cov_type=cov)


def _print_fit(model, fit, summary_text, save, written, args):
    """The formula and the summary on stdout; what was done on stderr (unless --quiet)."""
    if fit.formula is not None:
        print(f"formula: {_printable(fit.formula.formula)}")
    print(summary_text)
    if args.quiet:
        return
    dropped = dropped_text(fit)
    passes = f"{fit.passes} pass{'es' if fit.passes != 1 else ''}"
    _status(f"{args.data}: fitted {fit.n_rows:,} of {fit.n_read:,} rows{dropped} with solver "
            f"{fit.solution.solver!r} in {fit.seconds:.2f} s ({passes} over the data)")
    if save is not None:
        _status(f"saved the model to {save}")
    if written:
        _status(f"wrote {len(written)} plots to {written[0].parent}{os.sep}")


def _bands(model, fit, results, level=0.95):
    """(grid, fitted, conf, pred) for the one-predictor plot, from the fit's statistics."""
    import numpy as np

    x = fit.sample.X[:, 0]
    if x.size == 0:
        return None
    grid = np.linspace(float(np.min(x)), float(np.max(x)), 200)
    fitted = grid * float(np.atleast_2d(model.coef_)[0, 0]) + float(np.atleast_1d(model.intercept_)[0])
    try:
        from jaxlm import inference

        r = results[0] if isinstance(results, (list, tuple)) else results
        conf = inference.predict_interval(r, grid[:, None], kind="confidence", level=level)
        pred = inference.predict_interval(r, grid[:, None], kind="prediction", level=level)
        return grid, conf.mean, (conf.lower, conf.upper), (pred.lower, pred.upper)
    except Exception:  # noqa: BLE001 - no bands (ridge, gradient); the line alone
        return grid, fitted, None, None


def _write_plots(outputs, directory: Path, model, fit, results) -> list[Path]:
    """The diagnostic plots, each written to a temporary of ``outputs``; the paths they will have."""
    from jaxlm.plotting import diagnostics as pdg
    from jaxlm.core.errors import InputError

    s = fit.sample
    bands = _bands(model, fit, results) if len(fit.feature_names) == 1 and len(fit.target_names) == 1 else None
    figs = pdg.diagnostic_figures(model, s.X, s.Y, s.w, rows=s.rows, bands=bands)
    written = []
    for stem, fig in figs.items():
        path = directory / f"{stem}.png"
        try:
            with open(outputs.reserve(path), "wb") as fh:
                fig.savefig(fh, format="png")
        except OSError as e:
            raise InputError("plots", f"plots must be written to a directory with room for them; got --plots "
                                      f"{os.fspath(directory)!r}: cannot write {path.name} ({e.strerror or e}). "
                                      f"Nothing was written.") from None
        written.append(path)
    return written


FIT = SimpleNamespace(
    HELP="fit a linear model or a GLM to a CSV/Parquet/Arrow file (streamed, bounded memory)",
    DESCRIPTION="Fit a linear model (or with --family a GLM) to a table file, streamed in record batches; print the "
                "summary.",
    configure=configure_fit, OPTIONS=OPTIONS)
