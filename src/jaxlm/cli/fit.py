"""``jaxlm fit`` and ``jaxlm predict``: real data in and out, from the command line.

:mod:`jaxlm.cli.main` lists both (:data:`FIT`, :data:`PREDICT`), calling :func:`configure_fit`
and :func:`configure_predict` on the subcommand's parser.

Exit codes as :mod:`jaxlm.cli`: 0 success; 2 bad input (one line on stderr naming the option
or argument, the rule and the value received, no traceback, nothing written); 130 interrupted
(143 SIGTERM, 129 SIGHUP). Every output (model file, prediction file, plots) is written to a
temporary file in its directory and renamed into place, and the outputs of one command appear
together or not at all (:class:`jaxlm.io.files.OutputGroup`); inputs are never modified.

stdout carries the result (the summary, or the JSON document); status lines ("fitted N of N
rows", "saved the model to ...") go to stderr, and ``--quiet`` silences them. Text from the
data (column names, values) is shown with control characters escaped (``\\x1b``), never raw.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from jaxlm.core.text import printable
from jaxlm.io.files import atomic_path

from ._common import _limit_arg, _unit_interval

__all__ = ["configure_fit", "configure_predict", "run_fit", "run_predict"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

FIT_HELP = "fit a linear model to a CSV/Parquet/Arrow file (streamed: files larger than memory are fine)"
FIT_DESCRIPTION = (
    "Fit y ~ X to the rows of DATA (a CSV/TSV file, a Parquet file, directory or glob, or an Arrow/Feather file), "
    "read block by block in one pass with bounded memory, and print the regression summary. Columns by name: "
    "--target (repeat it for several targets) with --features (default: every other column), or a --formula such "
    "as 'fahrenheit ~ celsius' or 'y ~ x1 * x2 + C(group) + np.log(z)'. Exit code 2 for bad input.")
PREDICT_HELP = "predict from a saved model file for every row of a data file"
PREDICT_DESCRIPTION = (
    "Read MODEL (a JSON model file written by 'jaxlm fit --save'), re-apply its columns or formula to DATA and "
    "write a 'prediction' column (with --interval also 'lower' and 'upper'), one row per row of DATA, to OUT "
    "(.parquet or .csv), through a temporary file renamed into place.")

#: library parameter name -> how the command line spells it, for error messages
_FIT_OPTIONS = {"data": "DATA", "target": "--target", "features": "--features", "formula": "--formula",
                "weights": "--weights", "solver": "--solver", "missing": "--missing", "path": "--save",
                "fit_intercept": "--formula", "alpha": "--alpha", "plots": "--plots", "X": "DATA", "y": "DATA"}
_PREDICT_OPTIONS = {"data": "DATA", "model": "MODEL", "output": "-o", "path": "-o", "interval": "--interval",
                    "level": "--level", "missing": "--missing", "formula": "MODEL", "limits": "--limit"}


class _Usage(Exception):
    """A command-line error already phrased in terms of options."""


def _translate(msg: str, param: str, options: dict) -> str:
    """An InputError message in command-line terms (``missing='drop'`` -> ``--missing 'drop'``)."""
    for p, option in sorted(options.items(), key=lambda kv: -len(kv[0])):
        msg = re.sub(rf"(?<![\w-]){re.escape(p)}=", f"{option} ", msg)
    option = options.get(param, param)
    msg = re.sub(rf"^{re.escape(param)}\b", option, msg)
    if not msg.startswith(option):
        msg = f"{option}: {msg}"
    return msg


def _printable(text) -> str:
    """``text`` with control characters escaped (:func:`jaxlm.core.text.printable`)."""
    return printable(text)


def _status(message: str) -> None:
    """A status line on stderr (not the result, which goes to stdout)."""
    print(_printable(message), file=sys.stderr)


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {_printable(' '.join(str(message).split()))}", file=sys.stderr)
    return EXIT_USAGE


def _guard(prog: str, options: dict, run: Callable[[], int]) -> int:
    """Run a command body; bad input becomes one line on stderr and exit code 2."""
    from jaxlm.core.errors import InputError

    try:
        return run()
    except InputError as e:
        return _fail(prog, _translate(str(e), e.param, options))
    except _Usage as e:
        return _fail(prog, str(e))
    except MemoryError:
        return _fail(prog, "out of memory; a streamed fit needs a few row groups of memory: write the Parquet file "
                           "with smaller row groups, or use fewer columns.")
    except OSError as e:
        where = f" {e.filename!r}" if getattr(e, "filename", None) else ""
        return _fail(prog, f"cannot read or write{where}: {e.strerror or e}.")


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
    """Add the options of ``jaxlm fit`` to ``p``; return the handler."""
    p.add_argument("data", metavar="DATA", help="CSV/TSV, Parquet (file, directory or glob) or Arrow/Feather file")
    p.add_argument("--target", action="append", metavar="COL", help="column to predict (repeat for several)")
    p.add_argument("--features", metavar="A,B,...", help="comma-separated feature columns (default: every other "
                                                         "column; all must be numeric)")
    p.add_argument("--formula", metavar="F", help="model formula instead of --target/--features, e.g. "
                                                  "'y ~ x1 * x2 + C(group) + np.log(z)'")
    p.add_argument("--weights", metavar="COL", help="column of non-negative frequency weights")
    p.add_argument("--solver", default="auto", metavar="S",
                   help="auto, cholesky, qr or svd (exact, streamed), or gd, lbfgs or adam (gradient; these load the "
                        "data into memory) (default: %(default)s)")
    p.add_argument("--missing", default="raise", choices=("raise", "drop"),
                   help="rows with a missing value: an error (default) or left out (their number is reported)")
    p.add_argument("--save", metavar="MODEL.json", help="write the fitted model to this JSON model file")
    p.add_argument("--plots", metavar="DIR", help="write diagnostic plots (PNG) to this directory")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of the text summary")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no notes on stderr")
    return run_fit


def run_fit(args: argparse.Namespace) -> int:
    prog = "jaxlm fit"
    return _guard(prog, _FIT_OPTIONS, lambda: _fit(args, prog))


def _fit(args, prog: str) -> int:
    from jaxlm.io.model_file import check_output_path

    if args.formula is not None and args.target:
        raise _Usage("--formula names the target itself: use --formula alone or --target with --features; got "
                     f"--formula {args.formula!r} and --target {args.target[0]!r}.")
    if args.formula is not None and args.features is not None:
        raise _Usage(f"--features cannot be combined with --formula: the formula names the features; got --features "
                     f"{args.features!r}.")
    if args.formula is None and not args.target:
        raise _Usage("--target or --formula must be given: the column(s) to predict; e.g. --target y, or --formula "
                     "'y ~ x1 + x2'.")
    save = check_output_path(args.save, "path") if args.save is not None else None
    if save is not None and _same_file(save, args.data):
        raise _Usage(f"--save must not overwrite the data; got --save {args.save!r}.")
    plots, created = _check_plots_dir(args.plots) if args.plots is not None else (None, [])
    try:
        return _fit_and_write(args, prog, save, plots)
    except BaseException:
        _remove_empty(created)
        raise


def _fit_and_write(args, prog: str, save: Path | None, plots: Path | None) -> int:
    from jaxlm.io.files import OutputGroup
    from jaxlm.models.tables import stream_fit

    target = None
    if args.target:
        target = args.target[0] if len(args.target) == 1 else list(args.target)
    progress = False if args.quiet else None
    # an exact fit without plots needs no estimator: neither scikit-learn nor JAX is imported
    fit = stream_fit(args.data, target=target, features=args.features, formula=args.formula, weights=args.weights,
                     solver=args.solver, missing=args.missing, progress=progress, estimator=plots is not None)
    model = fit.model
    results, summary_text, statistics, note = _statistics(model, fit)
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


def _same_file(out: Path, data) -> bool:
    try:
        return out.exists() and Path(os.fspath(data)).exists() and os.path.samefile(out, os.fspath(data))
    except (OSError, TypeError):
        return False


def _statistics(model, fit):
    """(results, summary text, statistics dict, note). Uses the model's own results when it has them
    (without a model: the fit's, which are the estimator's)."""
    import numpy as np

    from jaxlm.io.model_file import _jsonable

    res = getattr(model, "results_", None) if model is not None else fit.results
    try:
        if model is None and res is not None:
            from jaxlm import inference

            summ = inference.summary(res, level=0.95, cov="nonrobust")  # as LinearRegression.summary()
        elif res is not None and hasattr(model, "summary"):
            summ = model.summary()
        else:  # an estimator without statistics of its own: read them off the solution
            from jaxlm import inference

            res = inference.regression_results(model.solution_, fit_intercept=model.fit_intercept,
                                               alpha=float(model.alpha), batches=fit.batches,
                                               feature_names=fit.feature_names, target_names=fit.target_names)
            summ = inference.summary(res)
        stats = summ.to_dict() if hasattr(summ, "to_dict") else None
        return res, str(summ), _jsonable(stats), None
    except Exception as e:  # noqa: BLE001 - statistics are a bonus; the coefficients stand without them
        coef = np.atleast_2d(model.coef_ if model is not None else fit.solution.coef)
        inter = np.atleast_1d(model.intercept_ if model is not None else fit.solution.intercept)
        fit_intercept = model.fit_intercept if model is not None else fit.params["fit_intercept"]
        lines = []
        names = [_printable(c) for c in fit.feature_names]
        for k, t in enumerate(fit.target_names):
            lines.append(f"{_printable(t)}:")
            width = max([len("intercept")] + [len(c) for c in names])
            if fit_intercept:
                lines.append(f"  {'intercept':<{width}}  {inter[k]: .10g}")
            for name, b in zip(names, coef[k]):
                lines.append(f"  {name:<{width}}  {b: .10g}")
        return None, "\n".join(lines), None, f"statistics unavailable ({type(e).__name__}: {e})"


def _print_fit(model, fit, summary_text, save, written, args):
    """The formula and the summary on stdout; what was done on stderr (unless --quiet)."""
    if fit.formula is not None:
        print(f"formula: {_printable(fit.formula.formula)}")
    print(summary_text)
    if args.quiet:
        return
    dropped = ""
    if fit.n_dropped:
        parts = ", ".join(f"{c}: {k:,}" for c, k in fit.dropped_by_column.items())
        dropped = f"; dropped {fit.n_dropped:,} rows with missing values ({parts}; --missing drop)"
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


# --------------------------------------------------------------------------- predict


def configure_predict(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Add the options of ``jaxlm predict`` to ``p``; return the handler."""
    p.add_argument("model", metavar="MODEL", help="JSON model file written by 'jaxlm fit --save'")
    p.add_argument("data", metavar="DATA", help="CSV/TSV, Parquet or Arrow/Feather file with the model's columns")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file, .parquet or .csv")
    p.add_argument("--interval", choices=("prediction", "confidence"),
                   help="also write 'lower' and 'upper' bounds of this interval")
    p.add_argument("--level", type=_unit_interval, default=None, help="interval level in (0, 1) (default 0.95)")
    p.add_argument("--missing", default="raise", choices=("raise", "keep"),
                   help="rows with a missing feature: an error (default) or an empty prediction")
    p.add_argument("--limit", action="append", default=[], type=_limit_arg, metavar="NAME=N",
                   help="raise a model-file limit for a trusted large model, e.g. --limit max_features=5000 "
                        "(names: max_bytes, max_features, max_targets, max_levels, max_depth, max_values; "
                        "repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    return run_predict


def run_predict(args: argparse.Namespace) -> int:
    prog = "jaxlm predict"
    return _guard(prog, _PREDICT_OPTIONS, lambda: _predict(args, prog))


_OUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def _predict(args, prog: str) -> int:
    from jaxlm.io.model_file import check_output_path, required_columns

    fmt = _OUT_FORMATS.get(Path(args.output).suffix.lower())
    if fmt is None:
        raise _Usage(f"-o must end in .parquet or .csv; got -o {args.output!r}.")
    out = check_output_path(args.output, "output")
    for given, name in ((args.data, "DATA"), (args.model, "MODEL")):
        if _same_file(out, given):
            raise _Usage(f"-o must not overwrite the {name} file; got -o {args.output!r}.")
    if args.level is not None and args.interval is None:
        raise _Usage(f"--level needs --interval (prediction or confidence); got --level {args.level!r} alone.")
    level = 0.95 if args.level is None else args.level
    limits = dict(args.limit) or None
    needed = required_columns(args.model, limits=limits)
    if needed is not None:  # a missing column is found before the model is built
        from jaxlm.io.sources import open_table
        from jaxlm.models.predict import _missing_feature

        source = open_table(args.data)
        for c in needed:
            if c not in source.column_names:
                raise _missing_feature(c, source)
    from jaxlm.models.predict import predict_table
    from jaxlm.models.registry import read_predictor

    mf = read_predictor(args.model, limits=limits)  # the estimator's predictions, without scikit-learn or JAX
    model = mf.model
    interval_fn = _interval_fn(model, args.interval) if args.interval else None
    batches = predict_table(model, args.data, interval=args.interval, level=level, missing=args.missing,
                            interval_fn=interval_fn, progress=False if args.quiet else None)
    rows = _write_table(out, fmt, batches)
    if not args.quiet:
        _status(f"wrote {rows:,} predictions to {out}")
    return EXIT_OK


def _interval_fn(model, kind):
    """Interval bounds from the model's ``predict_interval`` or, failing that, from its saved state."""
    import numpy as np

    from jaxlm.core.errors import InputError

    import warnings

    method = getattr(model, "predict_interval", None)
    if method is not None and getattr(model, "results_", None) is not None:
        def fn(X, kind, level):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                res = method(X, kind=kind, level=level)
            return (res.lower, res.upper) if hasattr(res, "lower") else (res[1], res[2])
    else:
        sol = getattr(model, "solution_", None)
        if sol is None or sol.state is None or sol.factor is None:
            raise InputError("interval", f"interval needs a model fitted with an exact solver (its file stores the "
                                         f"least-squares state); got --interval {kind} for a model fitted with solver "
                                         f"{getattr(model, 'solver_', model.solver)!r}.")
        from jaxlm import inference

        res = inference.regression_results(sol, fit_intercept=model.fit_intercept, alpha=float(model.alpha),
                                           feature_names=[str(c) for c in model.feature_names_in_],
                                           target_names=list(model.target_names_))
        many = np.ndim(model.coef_) == 2

        def fn(X, kind, level):
            iv = inference.predict_interval(res if many else res[0], X, kind=kind, level=level)
            return iv.lower, iv.upper
    d = len(model.feature_names_in_)
    state = getattr(getattr(model, "solution_", None), "state", None)
    probe = np.asarray(state.mean_x, dtype=np.float64) if state is not None else np.zeros(d)
    try:
        fn(probe.reshape(1, d), kind, 0.95)  # fail now, before anything is read or written
    except InputError as e:
        reason = re.sub(r"^\w+: ", "", str(e))
        raise InputError("interval", f"interval needs a model fitted by an exact solver without a ridge penalty; "
                                     f"got --interval {kind} for a model fitted with solver "
                                     f"{getattr(model, 'solver_', model.solver)!r}: {reason}") from None
    return fn


def _write_table(out: Path, fmt: str, batches) -> int:
    """Stream record batches into ``out`` through a temporary file in its directory; return the row count."""
    rows = 0
    writer = None
    with atomic_path(out) as tmp:
        try:
            for batch in batches:
                if writer is None:
                    writer = _writer(tmp, fmt, batch.schema)
                writer.write_batch(batch)
                rows += batch.num_rows
            if writer is None:
                raise _Usage("DATA has no rows to predict for.")
        finally:
            if writer is not None:
                writer.close()
    return rows


def _writer(path: str, fmt: str, schema):
    """A Parquet or CSV writer. In CSV a missing prediction is an empty field, except in a file of
    one column, where an empty field would be a blank line, which most readers skip (pandas, R,
    pyarrow by default), so that rows would no longer line up: there it is written ``NA``."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetWriter(path, schema)
    from pyarrow import csv

    return csv.CSVWriter(path, schema, write_options=csv.WriteOptions(null_string="NA" if len(schema) == 1 else ""))


FIT = SimpleNamespace(
    HELP="fit a linear model to a CSV/Parquet/Arrow file (streamed, bounded memory)",
    DESCRIPTION="Fit a linear model to a table file, streamed in record batches; print the summary.",
    configure=configure_fit)
PREDICT = SimpleNamespace(
    HELP="predict from a saved model file for the rows of a table file",
    DESCRIPTION="Write predictions (and optional intervals) for the rows of a table file.",
    configure=configure_predict)
