"""``jaxlm fit --formula 'y ~ x1 + x2 | firm + year'``: absorbed fixed effects, streamed.

A formula with ``|`` goes to :func:`jaxlm.fit_table`, which streams the file through
:func:`jaxlm.models.absorbed.fit_absorbed` (one pass for one factor, one per conjugate-gradient
iteration for several) (fixest's syntax: the factors after ``|`` are absorbed,
never formed as dummies). Covariances: ``nonrobust`` (default), ``--cluster COL[,COL]`` (CR1) and
``--cov HAC``; the HC kinds are not available for absorbed models. The summary goes to stdout and
``--coef-table`` is written as for a linear fit. Not available (exit 2): ``--save`` (no model file
format for absorbed models yet), ``--plots``, ``--json``, ``--missing drop``, ``--alpha``,
``--solver``, gradient options and ``--no-intercept``.
"""
from __future__ import annotations

from ._common import EXIT_OK, _status, _Usage

__all__ = ["fit_absorbed"]


def _check(args, save) -> None:
    """Refuse the options an absorbed fit cannot honour (before anything is read)."""
    from .fit_options import summary_cov

    summary_cov(args)  # conflicting covariance options first
    if save is not None:
        raise _Usage(f"--save is not supported for absorbed fixed effects ('|' in --formula) yet: there is no model "
                     f"file for them; got --save {args.save!r}. Use --coef-table FILE to keep the coefficients.")
    refused = (("--plots", args.plots, None), ("--json", args.json, False), ("--missing", args.missing, "raise"),
               ("--alpha", args.alpha, 0.0), ("--solver", args.solver, "auto"), ("--max-iter", args.max_iter, None),
               ("--tol", args.tol, None), ("--learning-rate", args.learning_rate, None),
               ("--no-intercept", args.no_intercept, False))
    for option, value, default in refused:
        if value != default:
            shown = "" if isinstance(value, bool) else f" {value!r}" if isinstance(value, str) else f" {value:g}"
            raise _Usage(f"{option} is not available with absorbed fixed effects ('|' in --formula, fitted in "
                         f"memory); got {option}{shown} with --formula {args.formula!r}.")
    if args.cov is not None and args.cov not in ("nonrobust", "HAC"):
        raise _Usage(f"--cov {args.cov} is not available with absorbed fixed effects; use --cluster COL (cluster-"
                     f"robust), --cov HAC or --cov nonrobust; got --formula {args.formula!r}.")
    if args.robust:
        raise _Usage(f"--robust (HC3) is not available with absorbed fixed effects; use --cluster COL (cluster-"
                     f"robust) or --cov HAC; got --formula {args.formula!r}.")


def fit_absorbed(args, prog: str, save, table) -> int:
    """Fit the absorbed model, print its summary and write ``--coef-table``."""
    from jaxlm.io.files import OutputGroup
    from jaxlm.models.tables import fit_table

    from .fit_options import cluster_columns, summary_cov

    _check(args, save)
    cov = summary_cov(args)
    kw = {"cov_type": cov}
    if cov == "cluster":
        names = cluster_columns(args)
        kw["cluster"] = names[0] if len(names) == 1 else list(names)
    if args.weights_kind is not None:
        kw["weights_kind"] = args.weights_kind
    model = fit_table(args.data, formula=args.formula, weights=args.weights, progress=False, **kw)
    res = model.results_
    if table[0] is not None:
        with OutputGroup() as outputs:
            _write_coef_table(outputs.reserve(table[0]), table[1], res, level=args.level)
    print(model.summary(level=args.level))
    if not args.quiet:
        _status(f"{args.data}: fitted {res.n_obs:,.0f} rows in memory, absorbing "
                + ", ".join(f"{f} ({n:,} levels)" for f, n in zip(res.fixed_effects, res.n_levels)))
    return EXIT_OK


def _write_coef_table(tmp: str, fmt: str, res, *, level: float) -> None:
    from . import coef_table

    tab = res.coef_table(level=level)
    rows = [{"target": res.target_name, "term": str(term), "estimate": float(tab.coef[j]),
             "std_error": float(tab.std_errors[j]), "t": float(tab.t_values[j]), "p": float(tab.p_values[j]),
             "ci_lower": float(tab.lower[j]), "ci_upper": float(tab.upper[j])}
            for j, term in enumerate(res.term_names)]
    coef_table.write(tmp, fmt, rows, level=level, cov_type=res.cov_type)
