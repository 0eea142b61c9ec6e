"""The model-file schema: every field of a parsed model document validated as data.

:func:`check_document` validates a document parsed by :func:`jaxlm.io.model_json.parse`
against the explicit schema below and returns a :class:`Checked` document, before anything
is built; :func:`expand` then parses its numeric arrays. No field of the file ever reaches
code: strings are compared with closed sets of names, the formula is checked by the closed
formula grammar (:func:`jaxlm.io.grammar.check_formula`), numbers become float64 arrays.
The numbers are checked against each other by :mod:`jaxlm.io.model_checks`.

The schema
----------
Top level (unknown keys are refused: a file from a newer layout says so by a higher
``format_version``)::

    format          "jaxlm-model"                                  required
    format_version  integer 1 .. FORMAT_VERSION                    required
    jaxlm_version   string                                         optional
    estimator       "LinearRegression" (GLM estimators: jaxlm.io.glm_schema)  required
    params          object, keys from PARAMS (each optional)       required
    features        d distinct non-empty strings, d <= max_features required
    targets         m non-empty strings, m <= max_targets          required
    target_ndim     1 (then m == 1) or 2                           required
    coef            (m, d) finite numbers                          required
    intercept       (m,) finite numbers                            required
    solution        object with every key of SOLUTION              required
    state           null or {"kind": "gram"|"qr", arrays}          optional
    formula         null or FORMULA object                         optional
    weights         null or string                                 optional
    statistics      any JSON (data only: never read back into the model) optional
    metadata        object (free-form data, not interpreted)       optional

Numbers are JSON numbers (never strings, booleans or null) except where a field allows the
non-finite spellings "NaN", "Infinity", "-Infinity" (``solution.condition_number`` and
``solution.grad_norm``; anything inside ``statistics``). Bare ``NaN``/``Infinity`` tokens
(not JSON), integers of more than MAX_INT_CHARS digits and duplicate keys are refused.

- ``params``: only the names of :data:`PARAMS` (the keyword arguments of
  ``jaxlm.LinearRegression``), each with its type and range; nothing else reaches the
  estimator's constructor. ``alpha`` is a number or a list of 1 or m numbers (per target).
- ``solution``: every key of :data:`SOLUTION`; ``solver`` must be one that ``params.solver``
  reports (``"auto"`` -> cholesky/qr/svd, ``"qr"`` -> qr/svd, ``"lbfgs"`` -> lbfgs or
  "cholesky (after lbfgs diverged)", ...); ``rank`` in [0, d]; ``aliased`` distinct indices;
  ``sse`` null or (m,) numbers >= 0.
- ``state``: only with an exact solver (then ``solution.sse`` is required); ``kind`` "gram"
  (count, wsum, wsum2, mean_x (d,), mean_y (m,), sxx (d, d), sxy (d, m), syy (m, m)) or "qr"
  (the same with r (d+m, d+m) for sxx/sxy/syy), and optionally the power-of-two units
  ``log2_x`` (d,), ``log2_y`` (m,), ``log2_w`` (whole numbers, ``log2_w`` even), and the
  roundings of the means ``mean_x_lo`` (d,), ``mean_y_lo`` (m,) (each at most one ulp of its mean).
- ``formula``: ``formula`` (a string the closed formula grammar accepts), ``levels`` (column
  -> non-empty list of distinct levels of one kind: strings, finite numbers or booleans; all
  columns together at most ``max_levels`` levels and at most ``d + (number of columns)``, since
  a categorical with L levels encodes into at least L - 1 columns), and optionally
  ``features``/``targets`` (equal to the file's), ``fit_intercept`` (equal to
  ``params.fit_intercept``), ``inputs``/``outputs`` (column names; after the rebuild equal
  to what the formula reads).

Numbers checked against each other (after the schema, before the model is built; see
:func:`check_state_values` and :func:`check_solution_values`): a state must be one that
data can give (count a whole number >= 1, wsum > 0, wsum2 <= wsum² <= count·wsum2, a
triangular ``r``, or a symmetric ``[[sxx, sxy], [sxyᵀ, syy]]`` that is positive
semidefinite); the coefficients must solve its normal equations, the SSE must be the one it
gives at the coefficients and the intercept must pass through its means, each up to the
rounding a float64 state carries (unit-free bounds, no condition number); a column with no
spread must have no coefficient. Not checkable from the file: the count and weight sums
themselves (they set the degrees of freedom), the normal equations of a rank-deficient state
(float64 does not pin down its range), and anything about a file whose every number was
forged consistently, as for fake data: the checks catch edits and corruption, not forgery.
Without a state (iterative solvers) the coefficients are taken as stored.
"""
from __future__ import annotations

import math
import re
from typing import Callable, NamedTuple

from ..core.errors import InputError
from .model_json import (DEFAULT_LIMITS, Invalid, ModelLimits, Newer, Numbers, OverLimit, Parsed, Row, is_number,
                         numbers, plain, show)

__all__ = ["Checked", "DEFAULT_LIMITS", "FAMILY_LINKS", "FAMILY_PARAMS", "GLM_PARAMS", "ModelLimits", "PARAMS",
           "SOLUTION", "SOLVERS", "check_document", "check_header", "expand"]

FORMAT = "jaxlm-model"
FORMAT_VERSION = 1
EXACT = ("cholesky", "qr", "svd")
GRADIENT = ("gd", "lbfgs", "adam")
#: The estimator's solver names (``jaxlm.LinearRegression``; a test keeps them in step).
SOLVERS = ("auto",) + EXACT + GRADIENT
#: Which solvers a fit with ``params.solver`` can report in ``solution.solver``.
SOLVED_BY = {"auto": EXACT, "cholesky": ("cholesky", "svd"), "qr": ("qr", "svd"), "svd": ("svd",)}
MATMUL_PRECISIONS = ("highest", "high", "default", "float32", "tensorfloat32", "bfloat16")


# --------------------------------------------------------------------------- the schema


class Checked(NamedTuple):
    """A validated model document. Numeric arrays are :class:`Numbers` (shape-checked, parsed
    on demand); everything else is plain validated Python."""

    version: int
    jaxlm_version: str | None
    params: dict
    features: tuple
    targets: tuple
    target_ndim: int
    coef: Numbers               # (NumPy arrays once :func:`expand` ed)
    intercept: Numbers
    solution: dict              # with "sse": Numbers or None
    state: dict | None          # {"kind": "gram"|"qr", name: Numbers}
    formula: dict | None        # formula, levels, features, targets, fit_intercept, inputs, outputs
    weights: str | None
    statistics: object
    metadata: dict


def _is_int(x) -> bool:
    return type(x) is int


def _want(cond: bool, where: str, rule: str, v) -> None:
    if not cond:
        raise Invalid(f"{show(where, 80)} must be {rule}; got {show(v)}")


def _choice(names):
    return (lambda v: isinstance(v, str) and v in names), "one of " + ", ".join(repr(n) for n in names)


def _finite(lo: float, *, strict: bool = False, optional: bool = False):
    def ok(v):
        if v is None:
            return optional
        return is_number(v) and math.isfinite(float(v)) and (float(v) > lo if strict else float(v) >= lo)
    rule = f"a finite number {'>' if strict else '>='} {lo:g}" + (" or null" if optional else "")
    return ok, rule


def _integer(lo: int, hi: int, *, optional: bool = False):
    return (lambda v: (optional and v is None) or (_is_int(v) and lo <= v <= hi)), \
        f"an integer in [{lo}, {hi}]" + (" or null" if optional else "")


_BOOL = ((lambda v: isinstance(v, bool)), "true or false")
INT64 = 2**63 - 1
_NONNEGATIVE = _finite(0.0)[0]
#: ``params.alpha``: one ridge penalty, or one per target (the count is checked against the targets)
_ALPHA = ((lambda v: _NONNEGATIVE(v) or (isinstance(v, list) and len(v) > 0 and all(map(_NONNEGATIVE, v)))),
          "a finite number >= 0 or a non-empty list of them (one per target)")

#: ``params``: the keyword arguments of ``jaxlm.LinearRegression``, each with its rule.
PARAMS: dict[str, tuple[Callable, str]] = {
    "solver": _choice(SOLVERS),
    "fit_intercept": _BOOL,
    "alpha": _ALPHA,
    "dtype": _choice(("float64", "float32")),
    "tol": _finite(0.0, strict=True, optional=True),
    "max_iter": _integer(1, INT64),
    "learning_rate": _finite(0.0, strict=True, optional=True),
    "random_state": _integer(-INT64 - 1, INT64, optional=True),
    "weights_kind": _choice(("frequency", "analytic")),
    "robust": _BOOL,
    "positive": _BOOL,
    "cov_type": _choice(("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster", "HAC")),
    "hac_maxlags": _integer(0, INT64, optional=True),
}

#: GLM estimators (``jaxlm.models.glm``): their solvers, families and the links each family
#: takes (``jaxlm.core.families`` has the same table; a test keeps them in step).
GLM_SOLVERS = ("irls", "lbfgs")
FAMILY_LINKS = {"gaussian": ("identity", "log", "inverse"), "binomial": ("logit", "probit", "cloglog"),
                "poisson": ("log", "identity", "sqrt"), "gamma": ("inverse", "log", "identity"),
                "inverse_gaussian": ("inverse_squared", "log", "inverse", "identity"), "tweedie": ("log",),
                "negative_binomial": ("log",)}
LINKS = tuple(dict.fromkeys(k for links in FAMILY_LINKS.values() for k in links))


def _within(lo: float, hi: float, *, optional: bool = False, also=()):
    def ok(v):
        if v is None:
            return optional
        return is_number(v) and (float(v) in also or lo <= float(v) <= hi)
    extra = "".join(f" or {a:g}" for a in also)
    return ok, f"a number in [{lo:g}, {hi:g}]{extra}" + (" or null" if optional else "")


def _optional_choice(names):
    return (lambda v: v is None or (isinstance(v, str) and v in names)), \
        "null or one of " + ", ".join(repr(n) for n in names)


_GLM_COMMON = {"alpha": _finite(0.0), "fit_intercept": _BOOL, "tol": _finite(0.0, strict=True),
               "max_iter": _integer(1, INT64), "solver": _choice(GLM_SOLVERS), "robust": _BOOL,
               "cov_type": _choice(("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"))}
#: ``params`` of each GLM estimator (its keyword arguments), each with its rule.
GLM_PARAMS: dict[str, dict[str, tuple[Callable, str]]] = {
    "GLM": {"family": _choice(tuple(FAMILY_LINKS)), "link": _optional_choice(LINKS),
            "power": _within(1.0, 2.0, optional=True), "nb_alpha": _finite(0.0, strict=True), **_GLM_COMMON},
    "LogisticRegression": {"link": _choice(FAMILY_LINKS["binomial"]), **_GLM_COMMON},
    "PoissonRegressor": dict(_GLM_COMMON),
    "GammaRegressor": dict(_GLM_COMMON),
    "TweedieRegressor": {"power": _within(1.0, 2.0, also=(0.0, 3.0)), "link": _choice(("auto",) + LINKS),
                         **_GLM_COMMON},
}
#: ``family``: its name, and the parameters of the families that have one.
FAMILY_PARAMS = {"tweedie": {"var_power": _within(1.0, 2.0)}, "negative_binomial": {"nb_alpha": _finite(0.0, strict=True)}}

_SOLVER_NAME = re.compile(r"(cholesky|qr|svd|gd|lbfgs|adam)(?: \(after (gd|lbfgs|adam) diverged\))?")


def _number_or_special(lo: float):
    def ok(v):
        if isinstance(v, str):
            return v in ("NaN", "Infinity")
        return is_number(v) and math.isfinite(float(v)) and float(v) >= lo
    return ok, f"a number >= {lo:g} or \"NaN\"/\"Infinity\""


#: ``solution``: every key required (save_model writes them all); ``sse`` and ``aliased``
#: are checked with the shapes.
SOLUTION: dict[str, tuple[Callable, str]] = {
    "solver": ((lambda v: isinstance(v, str) and _SOLVER_NAME.fullmatch(v) is not None),
               "a solver name such as 'cholesky', 'qr', 'svd', 'lbfgs' or 'cholesky (after gd diverged)'"),
    "dtype": _choice(("float64", "float32")),
    "rank": None,
    "n_iter": _integer(0, INT64),
    "converged": _BOOL,
    "diverged": _BOOL,
    "grad_norm": _number_or_special(0.0),
    "condition_number": _number_or_special(0.0),
    "aliased": None,
    "refinement_steps": _integer(0, 10_000),
    "matmul_precision": _choice(MATMUL_PRECISIONS),
    "sse": None,
}

TOP = ("format", "format_version", "jaxlm_version", "estimator", "params", "features", "targets", "target_ndim",
       "coef", "intercept", "solution", "state", "formula", "weights", "statistics", "metadata")
REQUIRED = ("format", "format_version", "estimator", "params", "features", "targets", "target_ndim", "coef",
            "intercept", "solution")
FORMULA_KEYS = ("formula", "levels", "features", "targets", "fit_intercept", "inputs", "outputs")
GRAM = ("count", "wsum", "wsum2", "mean_x", "mean_y", "sxx", "sxy", "syy")
QR = ("count", "wsum", "wsum2", "mean_x", "mean_y", "r")


def _names(v, where: str, *, limit: int | None = None, limit_name: str = "", distinct: bool = True,
           empty_ok: bool = False) -> tuple:
    """A JSON array of non-empty strings (column names)."""
    if isinstance(v, Row):
        raise Invalid(f"{where!r} must be an array of column names; got an array of numbers")
    _want(isinstance(v, list), where, "an array of column names", v)
    if limit is not None and len(v) > limit:
        raise OverLimit(limit_name, limit, f"{len(v):,} {where}", where)
    _want(empty_ok or len(v) > 0, where, "a non-empty array of column names", v)
    for c in v:
        _want(isinstance(c, str) and c != "", where, "an array of non-empty strings", c)
    if distinct and len(set(v)) != len(v):
        raise Invalid(f"{where!r} must list distinct column names; got {show(_first_repeat(v))} twice")
    return tuple(v)


def _listed(names, k: int = 5) -> str:
    """The first k names, for messages."""
    return ", ".join(show(n, 40) for n in names[:k]) + (", ..." if len(names) > k else "")


def _object(v, where: str) -> dict:
    _want(isinstance(v, dict), where, "an object", v)
    return v


def _fields(doc: dict, rules: dict, where: str, *, required: bool, prefix: str = "") -> dict:
    unknown = [k for k in doc if k not in rules]
    if unknown:
        shown = ", ".join(show(k) for k in unknown[:5])
        raise Invalid(f"unknown {where} [{shown}] (not keys of this jaxlm's model format)")
    out = {}
    for k, rule in rules.items():
        if k not in doc:
            if required:
                raise Invalid(f"missing key {where + '.' + k!r}")
            continue
        if rule is not None:
            ok, text = rule
            if not ok(doc[k]):
                raise Invalid(f"{prefix}{show(where + '.' + k, 80)} must be {text}; got {show(doc[k])}")
        out[k] = doc[k]
    return out


def _check_levels(levels, d: int, limits: ModelLimits, raw: bytes) -> dict:
    """Levels: column -> distinct values of one kind; bounded, and consistent with the d
    encoded columns (a categorical with L levels encodes into at least L - 1 columns)."""
    _want(isinstance(levels, dict), "formula.levels", "an object mapping column names to level lists", levels)
    total = 0
    for col, lv in levels.items():
        _want(col != "", "formula.levels", "keyed by non-empty column names", col)
        _want(isinstance(lv, (list, Row)), f"formula.levels.{col}", "an array of levels", lv)
        total += lv.count(raw) if isinstance(lv, Row) else len(lv)
    if total > limits.max_levels:
        raise OverLimit("max_levels", limits.max_levels, f"{total:,} levels", "categorical levels")
    if total - len(levels) > d:
        raise Invalid(f"'formula.levels' must agree with the coefficients: {total:,} levels in {len(levels)} "
                      f"categorical column(s) encode into at least {total - len(levels):,} columns, but the model "
                      f"has {d:,} features")
    out = {}
    for col, lv in levels.items():
        where = f"formula.levels.{col}"
        lv = lv.values(raw) if isinstance(lv, Row) else lv
        _want(len(lv) > 0, where, "a non-empty array of levels", lv)
        kinds = {str if isinstance(x, str) else bool if isinstance(x, bool) else float if is_number(x) else None
                 for x in lv}
        if None in kinds:
            bad = next(x for x in lv if not (isinstance(x, (str, bool)) or is_number(x)))
            raise Invalid(f"{where!r} must be an array of strings, numbers or booleans; got {show(bad)} in it")
        _want(len(kinds) == 1, where, "levels of one kind (all strings, all numbers or all booleans)", lv)
        if float in kinds:
            bad = next((x for x in lv if (abs(x) > INT64 if type(x) is int else not math.isfinite(x))), None)
            _want(bad is None, where, "finite numbers", bad)
        if len(set(lv)) != len(lv):
            raise Invalid(f"{where!r} must list distinct levels; got {show(_first_repeat(lv))} twice")
        out[col] = list(lv)
    return out


def _first_repeat(items):
    seen: set = set()
    return next(x for x in items if x in seen or seen.add(x))


def _check_formula(f, features: tuple, targets: tuple, d: int, limits: ModelLimits, raw: bytes) -> dict:
    f = _fields(_object(f, "formula"), {k: None for k in FORMULA_KEYS}, "formula", required=False)
    if "formula" not in f:
        raise Invalid("missing key 'formula.formula'")
    text = f["formula"]
    _want(isinstance(text, str) and text.strip() != "", "formula.formula", "a formula string", text)
    levels = _check_levels(f.get("levels", {}), d, limits, raw)
    out = {"formula": text, "levels": levels}
    for key, have in (("features", features), ("targets", targets)):
        if key in f:
            stored = _names(f[key], f"formula.{key}", distinct=False, empty_ok=True)
            if stored != have:
                raise Invalid(f"the formula's {key} [{_listed(stored)}] are not the file's {key} [{_listed(have)}]")
        out[key] = have
    for key in ("inputs", "outputs"):
        if key in f:
            out[key] = _names(f[key], f"formula.{key}", empty_ok=True,
                              limit=limits.max_features + limits.max_targets, limit_name="max_features")
    if "fit_intercept" in f:
        _want(isinstance(f["fit_intercept"], bool), "formula.fit_intercept", "true or false", f["fit_intercept"])
        out["fit_intercept"] = f["fit_intercept"]
    if "inputs" in out:
        extra = [c for c in levels if c not in out["inputs"]]
        if extra:
            raise Invalid(f"'formula.levels' names {show(extra[0])}, which is not an input of the formula")
    from .grammar import check_formula

    try:
        check_formula(text)
    except InputError as e:
        raise Invalid(f"its formula is refused: {e}") from None
    return out


#: A state's optional power-of-two units (``jaxlm.core.state``: the state describes
#: ``X·2^-log2_x``, ``Y·2^-log2_y``, ``w·2^-log2_w``); absent in files written before them: 0.
UNITS = ("log2_x", "log2_y", "log2_w")
#: The roundings of the state's means (the means are ``mean_x + mean_x_lo``); absent in files
#: written before them: 0.
LO = ("mean_x_lo", "mean_y_lo")
def _check_state(s, d: int, m: int, raw: bytes) -> dict:
    s = _object(s, "state")
    kind = s.get("kind")
    _want(kind in ("gram", "qr"), "state.kind", "'gram' or 'qr'", kind)
    names = GRAM if kind == "gram" else QR
    p = d + m
    shapes = {"count": (), "wsum": (), "wsum2": (), "mean_x": (d,), "mean_y": (m,), "sxx": (d, d), "sxy": (d, m),
              "syy": (m, m), "r": (p, p)}
    unknown = [k for k in s if k != "kind" and k not in names and k not in UNITS and k not in LO]
    if unknown:
        raise Invalid(f"unknown key {show('state.' + unknown[0])} in a {kind!r} state")
    out = {"kind": kind}
    for k in names:
        if k not in s:
            raise Invalid(f"missing key 'state.{k}'")
        out[k] = numbers(s[k], shapes[k], f"state.{k}", raw)
    for k, n in zip(UNITS, (d, m, 0)):
        if k in s:  # a number (the same for every column) or one per column
            shape = () if is_number(s[k]) or not n else (n,)
            out[k] = numbers(s[k], shape, f"state.{k}", raw)
    for k, n in zip(LO, (d, m)):
        if k in s:  # one per column (a single number only as written for no rows: zero)
            out[k] = numbers(s[k], () if is_number(s[k]) else (n,), f"state.{k}", raw)
    return out


def check_header(doc) -> tuple[int, str | None]:
    """``(format_version, jaxlm_version)`` of a document that says it is a jaxlm model."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise Invalid(f"not a jaxlm model: no \"format\": \"{FORMAT}\" entry")
    version = doc.get("format_version")
    _want(_is_int(version) and version >= 1, "format_version", "a positive integer", version)
    jv = doc.get("jaxlm_version")
    _want(jv is None or isinstance(jv, str), "jaxlm_version", "a version string", jv)
    if version > FORMAT_VERSION:
        raise Newer(version, jv)
    return version, jv


def check_keys(doc: dict, top, required) -> None:
    """No key outside ``top``, every key of ``required`` present (the document's top level)."""
    unknown = [k for k in doc if k not in top]
    if unknown:
        raise Invalid(f"unknown key {show(unknown[0])} (the file is not from this jaxlm's format)")
    for k in required:
        if k not in doc:
            raise Invalid(f"missing key {k!r}")


def check_document(parsed: Parsed, limits: ModelLimits) -> Checked:
    """Validate the whole document (types, ranges, names, shapes, limits, the formula's
    grammar) without parsing its numeric arrays or building anything."""
    doc, raw = parsed.root, parsed.raw
    version, jv = check_header(doc)
    _want(doc.get("estimator", "LinearRegression") == "LinearRegression", "estimator",
          "one of " + ", ".join(map(repr, ("LinearRegression",) + tuple(GLM_PARAMS))), doc.get("estimator"))
    check_keys(doc, TOP, REQUIRED)
    params = _object(doc["params"], "params")
    if isinstance(params.get("alpha"), Row):  # a long list of per-target penalties
        params = dict(params, alpha=plain(params["alpha"], raw))
    params = _fields(params, PARAMS, "params", required=False, prefix="invalid params: ")
    features = _names(doc["features"], "features", limit=limits.max_features, limit_name="max_features")
    targets = _names(doc["targets"], "targets", limit=limits.max_targets, limit_name="max_targets", distinct=False)
    d, m = len(features), len(targets)
    alpha = params.get("alpha", 0.0)
    _want(not isinstance(alpha, list) or len(alpha) in (1, m), "params.alpha",
          f"one number or one per target ({m})", alpha)
    target_ndim = doc["target_ndim"]
    _want(target_ndim in (1, 2) and _is_int(target_ndim), "target_ndim", "1 or 2", target_ndim)
    if target_ndim == 1 and m != 1:
        raise Invalid(f"'target_ndim' must be 2 for {m} targets; got 1")
    coef = numbers(doc["coef"], (m, d), "coef", raw)
    intercept = numbers(doc["intercept"], (m,), "intercept", raw)

    sol = _fields(_object(doc["solution"], "solution"), SOLUTION, "solution", required=True)
    rank = sol["rank"]
    _want(_is_int(rank) and 0 <= rank <= d, "solution.rank", f"an integer in [0, {d}]", rank)
    aliased = sol["aliased"]
    aliased = plain(aliased, raw) if isinstance(aliased, Row) else aliased
    _want(isinstance(aliased, list) and all(_is_int(j) and 0 <= j < d for j in aliased)
          and len(set(aliased)) == len(aliased), "solution.aliased", f"distinct feature indices in [0, {d})",
          aliased)
    sol["aliased"] = tuple(aliased)
    sol["sse"] = None if sol["sse"] is None else numbers(sol["sse"], (m,), "solution.sse", raw)
    solver = params.get("solver", "auto")
    used, after = _SOLVER_NAME.fullmatch(sol["solver"]).groups()
    allowed = SOLVED_BY.get(solver)
    consistent = (used in allowed and after is None) if allowed else (
        (used == solver and after is None) or (used in EXACT and after == solver))
    if not consistent:
        raise Invalid(f"'solution.solver' {sol['solver']!r} is not a solver that params.solver={solver!r} uses")
    exact = used in EXACT

    state = None
    if doc.get("state") is not None:
        if not exact:
            raise Invalid(f"'state' must be null for a model fitted by the iterative solver {sol['solver']!r}")
        state = _check_state(doc["state"], d, m, raw)
        if sol["sse"] is None:
            raise Invalid("'solution.sse' must be given with a least-squares state")
    formula = None
    if doc.get("formula") is not None:
        formula = _check_formula(doc["formula"], features, targets, d, limits, raw)
        if "fit_intercept" in formula and formula["fit_intercept"] != params.get("fit_intercept", True):
            raise Invalid("the formula's intercept and params.fit_intercept disagree")
    weights = doc.get("weights")
    _want(weights is None or (isinstance(weights, str) and weights != ""), "weights", "a column name or null",
          weights)
    metadata = doc.get("metadata", {})
    _want(isinstance(metadata, dict), "metadata", "an object", metadata)
    return Checked(version, jv, params, features, targets, target_ndim, coef, intercept, sol, state, formula,
                   weights, plain(doc.get("statistics"), raw), plain(metadata, raw))


def expand(doc: Checked) -> Checked:
    """The document with every numeric array parsed into a finite float64 NumPy array (the
    file's bytes are then no longer referenced)."""
    sol = dict(doc.solution)
    sol["sse"] = None if sol["sse"] is None else sol["sse"].array()
    state = None if doc.state is None else {k: (v if k == "kind" else v.array()) for k, v in doc.state.items()}
    return doc._replace(coef=doc.coef.array(), intercept=doc.intercept.array(), solution=sol, state=state)
