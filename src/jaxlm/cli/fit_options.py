"""The options of ``jaxlm fit`` and what they become: ``LinearRegression`` parameters and the
summary's level and covariance.

Groups: the data (``DATA``, ``--target``, ``--features``, ``--formula``, ``--weights``,
``--weights-kind``, ``--missing``), the model (``--no-intercept``, ``--alpha``, ``--solver`` and
the gradient solvers' ``--max-iter``, ``--tol``, ``--learning-rate``), the statistics
(``--level``, ``--robust``; the covariance options ``--cov``/``--cluster`` are to join this
group: :func:`summary_cov` is where they decide the covariance) and the outputs (``--save``,
``--plots``, ``--coef-table``, ``--json``, ``--quiet``).

Every combination that would be ignored silently is refused before any data is read (exit 2):
a gradient option with an exact solver, ``--weights-kind`` without ``--weights``,
``--no-intercept`` with a formula (which says so itself: ``- 1``), ``--robust`` where no
standard errors exist (ridge, gradient solvers).
"""
from __future__ import annotations

import argparse
import math

from ._common import _int_arg, _unit_interval, _Usage

__all__ = ["OPTIONS", "add_fit_options", "model_params", "summary_cov"]

#: library parameter name -> how the command line spells it, for error messages
OPTIONS = {"data": "DATA", "target": "--target", "features": "--features", "formula": "--formula",
           "weights": "--weights", "weights_kind": "--weights-kind", "solver": "--solver", "missing": "--missing",
           "path": "--save", "fit_intercept": "--no-intercept", "alpha": "--alpha", "plots": "--plots",
           "max_iter": "--max-iter", "tol": "--tol", "learning_rate": "--learning-rate", "level": "--level",
           "robust": "--robust", "coef_table": "--coef-table", "X": "DATA", "y": "DATA"}
GRADIENT = ("gd", "lbfgs", "adam")


def _number(text: str) -> float:
    """A finite number (``1e-8`` too)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
    return value


def add_fit_options(p: argparse.ArgumentParser) -> None:
    """Add the arguments and options of ``jaxlm fit`` to ``p``, in groups."""
    p.add_argument("data", metavar="DATA", help="CSV/TSV, Parquet (file, directory or glob) or Arrow/Feather file")
    p.add_argument("--target", action="append", metavar="COL", help="column to predict (repeat for several)")
    p.add_argument("--features", metavar="A,B,...", help="comma-separated feature columns (default: every other "
                                                         "column; all must be numeric)")
    p.add_argument("--formula", metavar="F", help="model formula instead of --target/--features, e.g. "
                                                  "'y ~ x1 * x2 + C(group) + np.log(z)'")
    p.add_argument("--weights", metavar="COL", help="column of non-negative weights (frequency weights unless "
                                                    "--weights-kind analytic)")
    p.add_argument("--weights-kind", choices=("frequency", "analytic"), default=None,
                   help="what --weights mean: frequency (default; a weight of 2 counts a row twice) or analytic "
                        "(inverse variances, as statsmodels WLS)")
    p.add_argument("--missing", default="raise", choices=("raise", "drop"),
                   help="rows with a missing value: an error (default) or left out (their number is reported)")
    model = p.add_argument_group("model")
    model.add_argument("--no-intercept", action="store_true",
                       help="fit without an intercept (with --formula write '- 1' in the formula instead)")
    model.add_argument("--alpha", type=_number, default=0.0, metavar="A",
                       help="ridge penalty α ≥ 0 on the slopes, as scikit-learn's Ridge (default 0: least squares; "
                            "α > 0 gives no standard errors)")
    model.add_argument("--solver", default="auto", metavar="S",
                       help="auto, cholesky, qr or svd (exact, streamed), or gd, lbfgs or adam (gradient; these load "
                            "the data into memory) (default: %(default)s)")
    model.add_argument("--max-iter", type=_int_arg, default=None, metavar="N",
                       help="gradient solvers: at most N iterations (default 10000)")
    model.add_argument("--tol", type=_number, default=None, metavar="T",
                       help="gradient solvers: stop when the gradient norm of the standardised loss is ≤ T "
                            "(default 1e-10)")
    model.add_argument("--learning-rate", type=_number, default=None, metavar="R",
                       help="gradient solvers: step size in standardised units (default: gd 0.1, adam 0.01, lbfgs "
                            "line search)")
    stats = p.add_argument_group("statistics")
    stats.add_argument("--level", type=_unit_interval, default=0.95,
                       help="confidence level of the intervals in the summary and --coef-table, in (0, 1) (default "
                            "0.95)")
    stats.add_argument("--robust", action="store_true",
                       help="heteroskedasticity-robust standard errors (HC3) in the summary and --coef-table (the "
                            "HC0-HC3 covariances are computed in one extra pass over the data)")
    # --cov KIND / --cluster COL join this group; summary_cov() turns them into the covariance
    out = p.add_argument_group("outputs")
    out.add_argument("--save", metavar="MODEL.json", help="write the fitted model to this JSON model file")
    out.add_argument("--plots", metavar="DIR", help="write diagnostic plots (PNG) to this directory")
    out.add_argument("--coef-table", metavar="FILE",
                     help="write the coefficient table (term, estimate, std_error, t, p, ci_lower, ci_upper) to "
                          "FILE: .csv, .parquet, .md, .tex or .json")
    out.add_argument("--json", action="store_true", help="print the result as JSON instead of the text summary")
    out.add_argument("--quiet", action="store_true", help="no progress bar and no status lines or notes on stderr (warnings still show, "
                                                               "one line each)")


def model_params(args: argparse.Namespace) -> dict:
    """The ``LinearRegression`` parameters the options ask for (only those given), checked for
    combinations that would be ignored; the values themselves are checked by the estimator's rules."""
    params = {}
    gradient = args.solver in GRADIENT
    for option, name in (("--max-iter", "max_iter"), ("--tol", "tol"), ("--learning-rate", "learning_rate")):
        value = getattr(args, name)
        if value is None:
            continue
        if not gradient:
            raise _Usage(f"{option} applies to the gradient solvers (--solver gd, lbfgs or adam); got {option} "
                         f"{value!r} with --solver {args.solver}, an exact solver that does not iterate.")
        params[name] = value
    if args.weights_kind is not None:
        if args.weights is None:
            raise _Usage(f"--weights-kind needs --weights COL (the column of weights); got --weights-kind "
                         f"{args.weights_kind} alone.")
        params["weights_kind"] = args.weights_kind
    if args.no_intercept:
        if args.formula is not None:
            raise _Usage(f"--no-intercept cannot be combined with --formula: write '- 1' in the formula instead, e.g. "
                         f"'y ~ x - 1'; got --formula {args.formula!r}.")
        params["fit_intercept"] = False
    if args.alpha != 0.0:
        params["alpha"] = args.alpha
    if args.robust:
        if gradient or args.alpha > 0:
            what = f"--solver {args.solver}" if gradient else f"--alpha {args.alpha:g}"
            raise _Usage(f"--robust needs standard errors, which a fit with {what} does not have; use an exact "
                         f"solver (--solver auto) without --alpha.")
        params["robust"] = True
    return params


def summary_cov(args: argparse.Namespace) -> str:
    """The covariance behind the summary's standard errors: ``"HC3"`` with ``--robust``, else
    ``"nonrobust"``."""
    return "HC3" if args.robust else "nonrobust"
