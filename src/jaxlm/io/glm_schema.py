"""The model-file schema of the GLM estimators (``jaxlm.GLM``, ``LogisticRegression``,
``PoissonRegressor``, ``GammaRegressor``, ``TweedieRegressor``): every field validated as data.

The document has the layout of a linear model's (:mod:`jaxlm.io.model_schema`: ``format``,
``format_version``, ``jaxlm_version``, ``features``, ``targets`` (one), ``target_ndim`` (1),
``coef`` (1, d), ``intercept`` (1,), ``formula``, ``weights``, ``statistics``, ``metadata``,
checked by the same rules), and these (unknown keys refused)::

    estimator    one of GLM_PARAMS' names                                   required
    params       object, keys from GLM_PARAMS[estimator] and "cov_type" (one of GLM_COV_TYPES;
                 each optional)                                             required
    family       {"name": one of FAMILY_LINKS, and its parameter when it has one:
                  "var_power" in [1, 2] (tweedie), "nb_alpha" > 0 (negative_binomial)}  required
    link         a link FAMILY_LINKS[family.name] allows                    required
    classes      LogisticRegression only (required there): two distinct labels of one kind
                 (strings, finite numbers or booleans)
    solution     every key of GLM_SOLUTION                                  required
    state        {"kind": "gram", arrays}: the working weights' least-squares state at the
                 coefficients (as a linear model's gram state, one response column: the
                 working residual); the intervals of the mean are read off it     required
    offset, exposure, var_weights   null or a column name (the fit's per-row columns; a
                 prediction needs the offset and exposure columns)           optional

The numbers are then checked against each other (:func:`jaxlm.io.model_checks.check_glm_numbers`).
"""
from __future__ import annotations

from typing import NamedTuple

from .model_json import Invalid, ModelLimits, Numbers, Parsed, Row, is_number, numbers, plain
from .model_schema import _BOOL as BOOLEAN
from .model_schema import (FAMILY_LINKS, check_keys, FAMILY_PARAMS, GLM_PARAMS, GLM_SOLVERS, INT64, _check_formula, _check_state,
                           _choice, _fields, _finite, _integer, _is_int, _names, _number_or_special, _object, _want,
                           check_header)

__all__ = ["GLMChecked", "GLM_COV_TYPES", "GLM_ESTIMATORS", "GLM_SOLUTION", "check_glm_document", "expand_glm"]

GLM_ESTIMATORS = tuple(GLM_PARAMS)
#: ``params.cov_type`` of a GLM (``jaxlm.models.glm_cov.COV_TYPES``; a test keeps them in step). A
#: rule for it in GLM_PARAMS (:mod:`jaxlm.io.model_schema`) takes precedence.
GLM_COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")


def _real():
    import math

    return (lambda v: is_number(v) and math.isfinite(float(v))), "a finite number"


def _nan_or(rule):
    ok, text = rule
    return (lambda v: v == "NaN" or ok(v)), f"{text} or \"NaN\""


#: ``solution`` of a GLM: every key required (``save`` writes them all); ``rank``, ``aliased``
#: and ``separated`` are checked with the shapes.
GLM_SOLUTION = {
    "solver": _choice(GLM_SOLVERS),
    "n_iter": _integer(0, INT64),
    "converged": BOOLEAN,
    "rank": None,
    "aliased": None,
    "separated": None,
    "condition_number": _number_or_special(0.0),
    "deviance": _finite(0.0),
    "pearson_chi2": _finite(0.0),
    "null_deviance": _finite(0.0),
    "llf": _real(),
    "llnull": _real(),
    "scale": _nan_or(_finite(0.0)),
    "rows": _integer(1, INT64),
    "nobs": _integer(1, INT64),
    "wnobs": _finite(0.0, strict=True),
    "y_mean": _real(),
    "null_mean": _real(),
    "has_offset": BOOLEAN,
}
TOP = ("format", "format_version", "jaxlm_version", "estimator", "params", "family", "link", "classes", "features",
       "targets", "target_ndim", "coef", "intercept", "solution", "state", "formula", "weights", "offset", "exposure",
       "var_weights", "statistics", "metadata")
REQUIRED = ("format", "format_version", "estimator", "params", "family", "link", "features", "targets",
            "target_ndim", "coef", "intercept", "solution", "state")
COLUMNS = ("weights", "offset", "exposure", "var_weights")


class GLMChecked(NamedTuple):
    """A validated GLM document (numeric arrays :class:`Numbers` until :func:`expand_glm`)."""

    version: int
    jaxlm_version: str | None
    estimator: str
    params: dict
    family: dict                # {"name": ..., "var_power" | "nb_alpha": ...}
    link: str
    classes: list | None
    features: tuple
    targets: tuple
    coef: Numbers
    intercept: Numbers
    solution: dict
    state: dict
    formula: dict | None
    columns: dict               # weights, offset, exposure, var_weights: column name or None
    statistics: object
    metadata: dict


def _indices(v, where: str, d: int, raw: bytes) -> tuple:
    v = plain(v, raw) if isinstance(v, Row) else v
    _want(isinstance(v, list) and len(v) <= d and all(_is_int(j) and 0 <= j < d for j in v)
          and len(set(v)) == len(v), where, f"distinct feature indices in [0, {d})", v)
    return tuple(v)


def _check_family(f) -> tuple[dict, str]:
    f = _object(f, "family")
    name = f.get("name")
    _want(isinstance(name, str) and name in FAMILY_LINKS, "family.name",
          "one of " + ", ".join(repr(k) for k in FAMILY_LINKS), name)
    rules = {"name": None, **FAMILY_PARAMS.get(name, {})}
    out = _fields(f, rules, f"family (for {name!r})", required=True)
    return out, name


def _check_classes(v, raw: bytes) -> list:
    v = plain(v, raw) if isinstance(v, Row) else v
    _want(isinstance(v, list) and len(v) == 2, "classes", "an array of the two class labels", v)
    kinds = {str if isinstance(x, str) else bool if isinstance(x, bool) else float if is_number(x) else None
             for x in v}
    _want(None not in kinds and len(kinds) == 1, "classes", "two labels of one kind (strings, numbers or booleans)", v)
    if float in kinds:
        _real_ok = _real()[0]
        _want(all(_real_ok(x) and (abs(x) <= INT64 if type(x) is int else True) for x in v), "classes",
              "finite numbers", v)
    _want(v[0] != v[1], "classes", "two distinct labels", v)
    try:
        ordered = v == sorted(v)
    except TypeError:
        ordered = False
    _want(ordered, "classes", "sorted (the second label is the event)", v)
    return list(v)


def check_glm_document(parsed: Parsed, limits: ModelLimits) -> GLMChecked:
    """Validate a GLM document (types, ranges, closed names, shapes, limits, the formula's
    grammar) without parsing its numeric arrays or building anything."""
    doc, raw = parsed.root, parsed.raw
    version, jv = check_header(doc)
    check_keys(doc, TOP, REQUIRED)
    estimator = doc["estimator"]
    _want(estimator in GLM_PARAMS, "estimator", "one of " + ", ".join(map(repr, GLM_ESTIMATORS)), estimator)
    rules = {"cov_type": _choice(GLM_COV_TYPES), **GLM_PARAMS[estimator]}
    params = _fields(_object(doc["params"], "params"), rules, "params", required=False, prefix="invalid params: ")
    family, name = _check_family(doc["family"])
    link = doc["link"]
    _want(isinstance(link, str) and link in FAMILY_LINKS[name], "link",
          f"a link of the {name} family (" + ", ".join(map(repr, FAMILY_LINKS[name])) + ")", link)
    classes = None
    if estimator == "LogisticRegression" or doc.get("classes") is not None:
        _want(estimator == "LogisticRegression", "classes", "null for a regressor", doc.get("classes"))
        _want("classes" in doc, "classes", "given for a classifier", None)
        classes = _check_classes(doc["classes"], raw)
    features = _names(doc["features"], "features", limit=limits.max_features, limit_name="max_features")
    targets = _names(doc["targets"], "targets", limit=1, limit_name="max_targets")
    _want(doc["target_ndim"] == 1 and _is_int(doc["target_ndim"]), "target_ndim", "1 (a GLM has one response)",
          doc["target_ndim"])
    d = len(features)
    coef = numbers(doc["coef"], (1, d), "coef", raw)
    intercept = numbers(doc["intercept"], (1,), "intercept", raw)
    sol = _fields(_object(doc["solution"], "solution"), GLM_SOLUTION, "solution", required=True)
    rank = sol["rank"]
    _want(_is_int(rank) and 0 <= rank <= d, "solution.rank", f"an integer in [0, {d}]", rank)
    sol["aliased"] = _indices(sol["aliased"], "solution.aliased", d, raw)
    sol["separated"] = _indices(sol["separated"], "solution.separated", d, raw)
    if sol["separated"] and name != "binomial":
        raise Invalid("'solution.separated' must be empty for a family other than binomial")
    if sol["nobs"] > sol["rows"]:
        raise Invalid(f"'solution.nobs' ({sol['nobs']}) must be at most 'solution.rows' ({sol['rows']})")
    state = _check_state(doc["state"], d, 1, raw)
    _want(state["kind"] == "gram", "state.kind", "'gram' for a GLM", state["kind"])
    formula = None
    if doc.get("formula") is not None:
        formula = _check_formula(doc["formula"], features, targets, d, limits, raw)
        if "fit_intercept" in formula and formula["fit_intercept"] != params.get("fit_intercept", True):
            raise Invalid("the formula's intercept and params.fit_intercept disagree")
    columns = {}
    for k in COLUMNS:
        v = doc.get(k)
        _want(v is None or (isinstance(v, str) and v != ""), k, "a column name or null", v)
        columns[k] = v
    metadata = doc.get("metadata", {})
    _want(isinstance(metadata, dict), "metadata", "an object", metadata)
    return GLMChecked(version, jv, estimator, params, family, link, classes, features, targets, coef, intercept, sol,
                      state, formula, columns, plain(doc.get("statistics"), raw), plain(metadata, raw))


def expand_glm(doc: GLMChecked) -> GLMChecked:
    """The document with every numeric array parsed into a finite float64 NumPy array."""
    state = {k: (v if k == "kind" else v.array()) for k, v in doc.state.items()}
    return doc._replace(coef=doc.coef.array(), intercept=doc.intercept.array(), state=state)
