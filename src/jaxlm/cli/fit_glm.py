"""``jaxlm fit --family F``: a generalised linear model fitted to a table file, streamed.

:func:`fit_glm` runs :func:`jaxlm.models.glm_tables.stream_glm` (one pass over the data per IRLS
iteration), prints the formula and ``model.summary()`` (``--level``; ``--cov HC0``-``HC3`` or
``--robust``: the robust covariance, computed during the fit) and writes ``--save`` (the GLM
model file, with the offset/exposure columns for ``jaxlm predict``) and ``--coef-table`` (with a
``z`` column: a GLM's tests are normal) together or not at all. ``--json`` prints the counts and
the model document. Separation and non-convergence are warnings, one line each on stderr.
"""
from __future__ import annotations

import json
import os

from ._common import EXIT_OK, _status, dropped_text

__all__ = ["fit_glm"]

#: GLMSummary table column -> coefficient-table column
_ROW = {"coef": "estimate", "std_err": "std_error", "z_value": "z", "p_value": "p", "ci_lower": "ci_lower",
        "ci_upper": "ci_upper"}


def fit_glm(args, prog: str, params: dict, save, table) -> int:
    """Fit, print and write a GLM (``params``: :func:`jaxlm.cli.fit_options.glm_params`)."""
    from jaxlm.io.files import OutputGroup
    from jaxlm.io.model_file import _jsonable
    from jaxlm.models.glm_tables import stream_glm

    from .fit_options import summary_cov

    target = None
    if args.target:
        target = args.target[0] if len(args.target) == 1 else list(args.target)
    fit = stream_glm(args.data, target=target, features=args.features, formula=args.formula, weights=args.weights,
                     missing=args.missing, progress=False if args.quiet else None, **params)
    model, cov = fit.model, summary_cov(args)
    summ = _summary(model, level=args.level, cov=cov)
    statistics = _jsonable(summ.to_dict())
    metadata = {"data": os.fspath(args.data), "n_rows": fit.n_rows, "n_dropped": fit.n_dropped}
    with OutputGroup() as outputs:
        if save is not None:
            _save(model, outputs.reserve(save), save, statistics=statistics, metadata=metadata)
        if table[0] is not None:
            _write_coef_table(outputs.reserve(table[0]), table[1], summ)
    if args.json:
        from jaxlm.models.glm_doc import model_to_dict

        doc = {"data": os.fspath(args.data), "n_read": fit.n_read, "n_rows": fit.n_rows, "n_dropped": fit.n_dropped,
               "dropped_by_column": fit.dropped_by_column, "passes": fit.passes, "seconds": fit.seconds,
               "model": model_to_dict(model, statistics=statistics, metadata=metadata),
               "saved": os.fspath(save) if save is not None else None}
        print(json.dumps(doc, indent=1, allow_nan=False))
        return EXIT_OK
    if fit.formula is not None:
        print(f"formula: {printable(fit.formula.formula)}")
    print(summ)
    if not args.quiet:
        dropped = dropped_text(fit, printable)
        iters = f"{model.n_iter_} IRLS iteration{'s' if model.n_iter_ != 1 else ''}"
        _status(f"{args.data}: fitted {fit.n_rows:,} of {fit.n_read:,} rows{dropped} in {iters}, "
                f"{fit.seconds:.2f} s ({fit.passes} passes over the data)")
        if save is not None:
            _status(f"saved the model to {save}")
    return EXIT_OK


def _summary(model, *, level: float, cov: str):
    """``model.summary(level=, cov=)`` titled with the response's name (``GLM.summary`` says "y")."""
    from jaxlm.inference.glm_summary import glm_summary

    return glm_summary(model.results_, level=level, cov=cov, target=str(model.target_names_[0]), solver=model.solver,
                       condition_number=model.solution_.condition_number)


def printable(text) -> str:
    from jaxlm.core.text import printable as _p

    return _p(text)


def _save(model, tmp: str, save, **kwargs) -> None:
    """The GLM model file written to the temporary ``tmp`` (messages name ``save``, not it)."""
    from jaxlm.core.errors import InputError

    try:
        model.save(tmp, **kwargs)
    except InputError as e:
        raise InputError(e.param, str(e).replace(tmp, os.fspath(save))) from None


def coef_rows(summ) -> list[dict]:
    """The rows of a GLM summary's coefficient table (estimate, std_error, z, p, ci_lower, ci_upper;
    NaN where the fit has no inference)."""
    import numpy as np

    n = len(summ.terms)
    cols = {out: np.asarray(summ.table.get(c, np.full(n, np.nan)), dtype=np.float64) for c, out in _ROW.items()}
    return [{"target": summ.target, "term": str(term), **{c: float(v[j]) for c, v in cols.items()}}
            for j, term in enumerate(summ.terms)]


def _write_coef_table(tmp: str, fmt: str, summ) -> None:
    from . import coef_table

    coef_table.write(tmp, fmt, coef_rows(summ), level=summ.level, cov_type=summ.cov_type, stat="z")
