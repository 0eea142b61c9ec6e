"""The options of ``jaxlm fit`` and what they become: ``LinearRegression`` parameters and the
summary's level and covariance.

Groups: the data (``DATA``, ``--target``, ``--features``, ``--formula``, ``--weights``,
``--weights-kind``, ``--missing``), the model (``--no-intercept``, ``--alpha``, ``--solver`` and
the gradient solvers' ``--max-iter``, ``--tol``, ``--learning-rate``), the statistics
(``--level``, ``--robust``, ``--cov``, ``--cluster``: :func:`summary_cov` decides the covariance),
a GLM (``--family``, ``--link``, ``--offset``, ``--exposure``, ``--var-weights``: :func:`glm_params`)
and the outputs (``--save``, ``--plots``, ``--coef-table``, ``--json``, ``--quiet``).

Every combination that would be ignored silently is refused before any data is read (exit 2):
a gradient option with an exact solver, ``--weights-kind`` without ``--weights``,
``--no-intercept`` with a formula (which says so itself: ``- 1``), ``--robust`` or ``--cov`` where no
standard errors exist (ridge, gradient solvers), ``--robust`` with another ``--cov`` than HC3, a GLM
option without ``--family``. ``--cluster`` and ``--cov HAC`` take one more pass over the data
(``HAC``: the rows in file order are the time order).
"""
from __future__ import annotations

import argparse
import math

from ._common import _int_arg, _unit_interval, _Usage

__all__ = ["OPTIONS", "absorbed", "add_fit_options", "cluster_columns", "glm_params", "model_params", "summary_cov"]

#: library parameter name -> how the command line spells it, for error messages
OPTIONS = {"data": "DATA", "target": "--target", "features": "--features", "formula": "--formula",
           "weights": "--weights", "weights_kind": "--weights-kind", "solver": "--solver", "missing": "--missing",
           "path": "--save", "fit_intercept": "--no-intercept", "alpha": "--alpha", "plots": "--plots",
           "max_iter": "--max-iter", "tol": "--tol", "learning_rate": "--learning-rate", "level": "--level",
           "robust": "--robust", "coef_table": "--coef-table", "X": "DATA", "y": "DATA", "cov_type": "--cov",
           "cov": "--cov", "cluster": "--cluster", "groups": "--cluster", "family": "--family", "link": "--link",
           "offset": "--offset", "exposure": "--exposure", "var_weights": "--var-weights"}
GRADIENT = ("gd", "lbfgs", "adam")
#: --cov choices (statsmodels' names); "cluster" is asked for by --cluster COL
COV_CHOICES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "HAC")
FAMILIES = ("gaussian", "binomial", "poisson", "gamma", "tweedie", "negative_binomial", "inverse_gaussian")
#: the GLM options and their attribute names
GLM_OPTIONS = (("--link", "link"), ("--offset", "offset"), ("--exposure", "exposure"), ("--var-weights", "var_weights"))


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
    stats.add_argument("--cov", choices=COV_CHOICES, default=None,
                       help="the covariance behind the standard errors (statsmodels' cov_type): nonrobust (default), "
                            "HC0-HC3 (one extra pass over the data) or HAC (Newey-West, Bartlett kernel; the rows in file order "
                            "are the periods)")
    stats.add_argument("--cluster", metavar="COL[,COL]",
                       help="cluster-robust standard errors (CR1, G-1 degrees of freedom) by this column, or two "
                            "(two-way); one extra pass over the data")
    glm = p.add_argument_group("generalised linear model")
    glm.add_argument("--family", choices=FAMILIES, default=None,
                     help="fit a GLM of this family by IRLS (one pass over the data per iteration)")
    glm.add_argument("--link", metavar="LINK", help="the GLM's link (default: the family's canonical link)")
    glm.add_argument("--offset", metavar="COL", help="GLM: column added to the linear predictor")
    glm.add_argument("--exposure", metavar="COL", help="GLM: column of exposures > 0 (adds log(exposure))")
    glm.add_argument("--var-weights", metavar="COL", help="GLM: column of variance weights > 0")
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
    cov = summary_cov(args)
    if cov != "nonrobust" and (gradient or args.alpha > 0):
        what = f"--solver {args.solver}" if gradient else f"--alpha {args.alpha:g}"
        option = "--robust" if args.robust else "--cov"
        raise _Usage(f"{option} needs standard errors, which a fit with {what} does not have; use an exact "
                     f"solver (--solver auto) without --alpha.")
    if cov in ("cluster", "HAC"):  # one more pass over DATA (in file order for HAC)
        params["cov_type"] = cov
        if cov == "cluster":
            params["cluster"] = list(cluster_columns(args))
        return params
    if args.robust and args.save is None:
        params["cov_type"] = "HC3"  # the pass computes HC3 alone (robust=True would compute all four)
    elif args.robust:
        params["robust"] = True
    elif args.cov is not None and args.save is not None and cov != "nonrobust":
        # a model file whose cov_type is an HC kind cannot be read back by jaxlm.load yet (it recomputes the
        # statistics under that kind without the data): the same HC pass via robust=True, and the summary,
        # --json statistics and --coef-table under --cov as below
        params["robust"] = True
    elif args.cov is not None:
        params["cov_type"] = args.cov
    return params


def absorbed(args: argparse.Namespace) -> bool:
    """Whether the formula absorbs fixed effects (``y ~ x | firm``)."""
    return args.formula is not None and "|" in args.formula


def cluster_columns(args: argparse.Namespace) -> tuple[str, ...]:
    """The columns of ``--cluster A[,B]`` (one or two, checked)."""
    names = tuple(c.strip() for c in args.cluster.split(","))
    if not all(names) or len(names) > 2 or len(set(names)) != len(names):
        raise _Usage(f"--cluster must be one column or two different ones separated by a comma, e.g. --cluster firm "
                     f"or --cluster firm,year; got --cluster {args.cluster!r}.")
    return names


def glm_params(args: argparse.Namespace) -> dict:
    """The ``stream_glm`` keyword arguments of ``--family`` and the GLM options (checked for
    combinations that would be ignored); a GLM option without ``--family`` is refused."""
    if args.family is None:
        for option, name in GLM_OPTIONS:
            if getattr(args, name) is not None:
                raise _Usage(f"{option} is an option of a GLM fit: add --family (e.g. --family poisson); got {option} "
                             f"{getattr(args, name)!r} without --family.")
        return {}
    for option, value, default in (("--solver", args.solver, "auto"), ("--weights-kind", args.weights_kind, None),
                                   ("--learning-rate", args.learning_rate, None), ("--plots", args.plots, None)):
        if value != default:
            raise _Usage(f"{option} does not apply to a GLM (fitted by IRLS, one pass per iteration); got {option} "
                         f"{value!r} with --family {args.family}.")
    cov = summary_cov(args)
    if cov == "HAC":
        raise _Usage(f"--cov HAC is not available for a GLM; use --cluster COL, --cov HC0, HC1, HC2 or HC3 "
                     f"(heteroskedasticity-robust) or --robust (HC3); got --cov HAC with --family {args.family}.")
    if cov != "nonrobust" and args.alpha > 0:
        raise _Usage(f"{'--robust' if args.robust else '--cov'} needs standard errors, which a GLM with --alpha "
                     f"{args.alpha:g} does not have; drop --alpha.")
    if args.no_intercept and args.formula is not None:
        raise _Usage(f"--no-intercept cannot be combined with --formula: write '- 1' in the formula instead; got "
                     f"--formula {args.formula!r}.")
    params = {"family": args.family, "link": args.link, "offset": args.offset, "exposure": args.exposure,
              "var_weights": args.var_weights, "alpha": args.alpha, "robust": cov not in ("nonrobust", "cluster")}
    if cov == "cluster":  # one more pass over DATA after the IRLS passes
        params.update(cov_type="cluster", cluster=list(cluster_columns(args)))
    params.update({k: getattr(args, k) for k in ("tol", "max_iter") if getattr(args, k) is not None})
    if args.no_intercept:
        params["fit_intercept"] = False
    return params


def summary_cov(args: argparse.Namespace) -> str:
    """The covariance behind the summary's standard errors: ``--cov`` (``"cluster"`` with
    ``--cluster``), ``"HC3"`` with ``--robust``, else ``"nonrobust"``; conflicting ones are refused."""
    if args.robust and args.cov not in (None, "HC3"):
        raise _Usage(f"--robust is short for --cov HC3; got --robust with --cov {args.cov}. Use one of them.")
    if args.cluster is not None:
        if args.cov is not None or args.robust:
            given = f"--cov {args.cov}" if args.cov is not None else "--robust"
            raise _Usage(f"--cluster asks for cluster-robust standard errors itself; got --cluster {args.cluster!r} "
                         f"with {given}. Use one of them.")
        return "cluster"
    return "HC3" if args.robust else (args.cov or "nonrobust")
