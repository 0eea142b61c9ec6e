"""``jaxlm table``: models side by side (fixest ``etable``, statsmodels ``summary_col``) from model files.

Each ``MODEL`` file is read by :func:`jaxlm.load` (validated in full: model files are data) and the
models go to :func:`jaxlm.table` with the file stems as column titles (``--titles`` to name them).
The table is printed (``--format text``, ``html``, ``markdown`` or ``latex``) or, with ``-o FILE``,
written to FILE through a temporary renamed into place (the format then defaults to the extension:
``.html``, ``.md``, ``.tex``, else text). Exit codes as :mod:`jaxlm.cli`.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from ._common import EXIT_OK, _guard, _int_arg, _limit_arg, _status, _Usage

__all__ = ["TABLE", "configure_table", "run_table"]

OPTIONS = {"models": "MODEL", "model": "MODEL", "titles": "--titles", "digits": "--digits", "fmt": "--format",
           "path": "-o", "output": "-o", "limits": "--limit"}
FORMATS = ("text", "html", "markdown", "latex")
#: output extension -> format (when --format is not given)
_BY_SUFFIX = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown", ".tex": "latex"}


def configure_table(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Add the options of ``jaxlm table`` to ``p``; return the handler."""
    p.add_argument("models", nargs="+", metavar="MODEL", help="JSON model files written by 'jaxlm fit --save'")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="text (default), html, markdown or latex (default with -o: by its extension)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the table to FILE instead of stdout")
    p.add_argument("--titles", metavar="A,B,...", help="comma-separated column titles, one per model (default: "
                                                       "the file names without extension)")
    p.add_argument("--stars", action=argparse.BooleanOptionalAction, default=True,
                   help="significance stars: * p < 0.1, ** p < 0.05, *** p < 0.01 (default: on)")
    p.add_argument("--digits", type=_int_arg, default=3, metavar="N",
                   help="decimals of the coefficients and standard errors, 0 to 12 (default 3)")
    p.add_argument("--limit", action="append", default=[], type=_limit_arg, metavar="NAME=N",
                   help="raise a model-file limit for a trusted large model, e.g. --limit max_features=5000 "
                        "(repeatable)")
    p.add_argument("--quiet", action="store_true", help="no status line on stderr")
    return run_table


def run_table(args: argparse.Namespace) -> int:
    prog = "jaxlm table"
    return _guard(prog, OPTIONS, lambda: _table(args))


def _titles(args) -> list[str]:
    if args.titles is None:
        return [Path(m).stem for m in args.models]
    titles = [t.strip() for t in args.titles.split(",")]
    if len(titles) != len(args.models) or not all(titles):
        raise _Usage(f"--titles must give one non-empty title per MODEL ({len(args.models)}), separated by commas; "
                     f"got --titles {args.titles!r}.")
    return titles


def _table(args) -> int:
    titles = _titles(args)
    out = fmt = None
    if args.output is not None:
        from jaxlm.io.model_file import check_output_path

        out = check_output_path(args.output, "output")
        if any(_same(out, m) for m in args.models):
            raise _Usage(f"-o must not overwrite a MODEL file; got -o {args.output!r}.")
        fmt = _BY_SUFFIX.get(out.suffix.lower())
    fmt = args.format or fmt or "text"
    if not 0 <= args.digits <= 12:
        raise _Usage(f"--digits must be an integer from 0 to 12; got --digits {args.digits}.")
    import jaxlm
    from jaxlm.models.registry import load_model

    limits = dict(args.limit) or None
    models = [_load(load_model, m, limits) for m in args.models]
    text = jaxlm.table(models, titles=titles, stars=args.stars, digits=args.digits).render(fmt)
    if out is None:
        print(text)
        return EXIT_OK
    from ._common import write_atomic

    write_atomic(out, lambda fh: fh.write((text + "\n").encode("utf-8")))
    if not args.quiet:
        _status(f"wrote a table of {len(models)} models to {out}")
    return EXIT_OK


def _load(load_model, path: str, limits):
    """The model of one file; an error names the file."""
    from jaxlm.core.errors import InputError

    try:
        model = load_model(path, limits=limits)
    except InputError as e:
        if path in str(e):
            raise
        raise InputError(e.param, f"{path}: {e}") from None
    if hasattr(model, "family_"):
        raise _Usage(f"MODEL must be a linear model file (jaxlm fit without --family); got {path!r}, a "
                     f"{type(model).__name__} ({model.family_.name} family). Compare GLMs with their summaries.")
    if len(getattr(model, "target_names_", ()) or ()) > 1:
        raise _Usage(f"MODEL must have one target; got {path!r} with {len(model.target_names_)} "
                     f"({', '.join(map(repr, model.target_names_))}). Fit one target per model file.")
    return model


def _same(out: Path, path: str) -> bool:
    from ._common import _same_file

    return _same_file(out, path)


TABLE = SimpleNamespace(
    HELP="models side by side (coefficients, standard errors, N, R²) from saved model files",
    DESCRIPTION="Print (or write) a regression table of saved models side by side, as fixest's etable.",
    configure=configure_table, OPTIONS=OPTIONS)
