"""``jaxlm predict``: predictions (and intervals) for every row of a table file, from a model file.

:mod:`jaxlm.cli.main` lists it as :data:`PREDICT` (``configure`` adds the options and returns
the handler). Exit codes as :mod:`jaxlm.cli`. The output is written to a temporary file in its
directory and renamed into place; inputs are never modified. ``--keep id,date`` copies those
columns of DATA to the output, row for row, before the predictions (from a CSV file as text, as
written there; from Parquet/Arrow with their types). With ``--missing keep`` a note on stderr
says how many rows were left without a prediction. For a GLM model file (``jaxlm fit --family``)
the predictions are the mean (``--kind link``: the linear predictor), ``--interval confidence``
the confidence interval of the mean, and the offset and exposure come from the columns the model
was fitted with (stored in its file) unless ``--offset COL`` / ``--exposure COL`` name others.
"""
from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

from jaxlm.io.files import atomic_path

from ._common import (
    EXIT_OK,
    _guard,
    _limit_arg,
    _same_file,
    _status,
    _unit_interval,
    _Usage,
)

__all__ = ["PREDICT", "configure_predict", "run_predict"]

#: library parameter name -> how the command line spells it, for error messages
OPTIONS = {"data": "DATA", "model": "MODEL", "output": "-o", "path": "-o", "interval": "--interval",
           "level": "--level", "missing": "--missing", "formula": "MODEL", "limits": "--limit", "keep": "--keep",
           "kind": "--kind", "offset": "--offset", "exposure": "--exposure"}
_OUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def configure_predict(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Add the options of ``jaxlm predict`` to ``p``; return the handler."""
    p.add_argument("model", metavar="MODEL", help="JSON model file written by 'jaxlm fit --save'")
    p.add_argument("data", metavar="DATA", help="CSV/TSV, Parquet or Arrow/Feather file with the model's columns")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file, .parquet or .csv")
    p.add_argument("--interval", choices=("prediction", "confidence"),
                   help="also write 'lower' and 'upper' bounds of this interval")
    p.add_argument("--level", type=_unit_interval, default=None, help="interval level in (0, 1) (default 0.95)")
    p.add_argument("--missing", default="raise", choices=("raise", "keep"),
                   help="rows with a missing feature: an error (default) or an empty prediction (a note says how "
                        "many)")
    p.add_argument("--keep", metavar="A,B,...", help="comma-separated columns of DATA to copy to the output, row for "
                                                     "row, before the predictions (e.g. --keep id,date)")
    p.add_argument("--limit", action="append", default=[], type=_limit_arg, metavar="NAME=N",
                   help="raise a model-file limit for a trusted large model, e.g. --limit max_features=5000 "
                        "(names: max_bytes, max_features, max_targets, max_levels, max_depth, max_values; "
                        "repeatable)")
    glm = p.add_argument_group("GLM model files")
    glm.add_argument("--kind", choices=("mean", "link"), default=None,
                     help="GLM: predict the mean (default) or the linear predictor")
    glm.add_argument("--offset", metavar="COL", help="GLM: the offset column (default: the one the model was "
                                                     "fitted with)")
    glm.add_argument("--exposure", metavar="COL", help="GLM: the exposure column, > 0 (default: the one the model "
                                                       "was fitted with)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary line and no notes")
    return run_predict


def run_predict(args: argparse.Namespace) -> int:
    prog = "jaxlm predict"
    return _guard(prog, OPTIONS, lambda: _predict(args, prog))


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
    keep = _keep_names(args.keep)
    limits = dict(args.limit) or None
    needed = required_columns(args.model, limits=limits)
    source = None
    if needed is not None or keep:  # a missing column is found before the model is built
        from jaxlm.io.sources import open_table
        from jaxlm.models.predict import _missing_feature

        source = open_table(args.data)
        for c in needed or ():
            if c not in source.column_names:
                raise _missing_feature(c, source)
        source.require(keep, "keep")
    from jaxlm.models.predict import output_names, predict_table
    from jaxlm.models.registry import read_predictor

    mf = read_predictor(args.model, limits=limits)  # the estimator's predictions, without scikit-learn or JAX
    model = mf.model
    names = output_names(model, args.interval)
    clash = sorted(set(keep) & set(names))
    if clash:
        raise _Usage(f"--keep must not name an output column ({', '.join(names)}); got --keep {args.keep!r}, which "
                     f"names {', '.join(map(repr, clash))}. Rename that column in DATA.")
    glm = hasattr(model, "family_")
    interval_fn = _interval_fn(model, args.interval) if args.interval and not glm else None
    extra = {k: v for k, v in (("kind", args.kind), ("offset", args.offset), ("exposure", args.exposure))
             if v is not None}
    batches = predict_table(model, args.data, interval=args.interval, level=level, missing=args.missing,
                            interval_fn=interval_fn, progress=False if args.quiet else None, **extra)
    if keep:
        batches = _with_kept(batches, source, keep)
    rows, empty = _write_table(out, fmt, batches, names[0])
    if not args.quiet:
        if empty:
            _status(f"{prog}: note: {empty:,} of {rows:,} rows have a missing feature value: their predictions are "
                    f"empty (--missing keep); rows stay aligned with DATA.")
        _status(f"wrote {rows:,} predictions to {out}")
    return EXIT_OK


def _keep_names(text: str | None) -> list[str]:
    """The column names of ``--keep A,B`` (checked: non-empty, no repeats)."""
    if text is None:
        return []
    names = [c.strip() for c in text.split(",")]
    if not all(names):
        raise _Usage(f"--keep must be comma-separated column names, e.g. --keep id,date; got --keep {text!r}.")
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise _Usage(f"--keep must name each column once; got --keep {text!r} ({', '.join(map(repr, repeated))} "
                     f"repeated).")
    return names


def _with_kept(batches: Iterator, source, names: list[str]) -> Iterator:
    """``batches`` with the columns ``names`` of ``source`` in front, row for row (the data are
    read a second time alongside; a CSV source's columns are read as text, as written)."""
    import pyarrow as pa

    types = {c: pa.string() for c in names} if source.kind == "csv" else None
    tables = (block.table for block in source.blocks(names, types=types))
    pending = None
    for batch in batches:
        n = batch.num_rows
        while pending is None or pending.num_rows < n:
            table = next(tables, None)
            if table is None:
                raise _Usage(f"DATA changed while it was read: fewer rows for --keep than predictions ({n:,} more "
                             f"needed).")
            pending = table if pending is None else pa.concat_tables([pending, table])
        kept, pending = pending.slice(0, n), pending.slice(n)
        arrays = [kept.column(c).combine_chunks() for c in names] + list(batch.columns)
        yield pa.RecordBatch.from_arrays(arrays, names=names + list(batch.schema.names))


def _interval_fn(model, kind):
    """Interval bounds from the model's ``predict_interval`` or, failing that, from its saved state."""
    import warnings

    import numpy as np

    from jaxlm.core.errors import InputError

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


def _write_table(out: Path, fmt: str, batches, prediction: str) -> tuple[int, int]:
    """Stream record batches into ``out`` through a temporary file in its directory; return the
    row count and the number of rows whose ``prediction`` column is empty."""
    rows = empty = 0
    writer = None
    with atomic_path(out) as tmp:
        try:
            for batch in batches:
                if writer is None:
                    writer = _writer(tmp, fmt, batch.schema)
                writer.write_batch(batch)
                rows += batch.num_rows
                empty += batch.column(prediction).null_count
            if writer is None:
                raise _Usage("DATA has no rows to predict for.")
        finally:
            if writer is not None:
                writer.close()
    return rows, empty


def _writer(path: str, fmt: str, schema):
    """A Parquet or CSV writer. In CSV a missing prediction is an empty field, except in a file of
    one column, where an empty field would be a blank line, which most readers skip (pandas, R,
    pyarrow by default), so that rows would no longer line up: there it is written ``NA``."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetWriter(path, schema)
    from pyarrow import csv

    return csv.CSVWriter(path, schema, write_options=csv.WriteOptions(null_string="NA" if len(schema) == 1 else ""))


PREDICT = SimpleNamespace(
    HELP="predict from a saved model file for the rows of a table file",
    DESCRIPTION="Write predictions (and optional intervals) for the rows of a table file.",
    configure=configure_predict, OPTIONS=OPTIONS)
