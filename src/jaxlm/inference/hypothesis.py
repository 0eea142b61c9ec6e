"""Wald, t and F tests of linear restrictions, and nested-model comparison (ANOVA, LR).

Everything works on plain arrays — coefficients ``b`` (p,), a covariance ``V`` (p, p) of any
kind (non-robust, HC, cluster, HAC), the term names and the denominator degrees of freedom —
so any estimator can call it.

Restrictions ``R b = q`` are given as

* a string, ``"x1 = x2, x3 = 0"``: comma-separated restrictions; each is ``lhs = rhs`` (a chain
  ``a = b = c`` is two restrictions; a lone expression means ``= 0``). The text is parsed with
  Python's :mod:`ast` against a closed grammar — term names, numbers, ``+``, ``-``, ``*`` (one
  factor a number: restrictions are linear), parentheses, ``=`` — and anything else is refused
  with an InputError before anything is evaluated: data is never code. Term names are matched
  whole (longest first), so names that are not Python identifiers (``x[T.a]``, ``log(x)``,
  ``a:b``) work as written;
* a matrix ``R`` (q = 0), or a pair ``(R, q)``.

``wald_test`` gives ``F = (Rb − q)ᵀ (R V Rᵀ)⁻¹ (Rb − q) / J`` against ``F(J, df)`` (statsmodels
``f_test``), or ``W = J·F`` against ``χ²(J)`` when ``df`` is None; ``df = n − k`` for classical
and HC covariances, ``G − 1`` under clustering (statsmodels' ``df_resid_inference``). When
``R V Rᵀ`` is singular (e.g. more restrictions than clusters − 1) the pseudo-inverse is used and
``J`` is its rank, as statsmodels does, with a note. ``t_test`` gives one t per restriction.

``anova(m1, m2, ...)`` compares nested models fitted to the same rows, smallest first: the F
test of each model against the previous one with the largest model's σ̂² (statsmodels
``anova_lm``; for two models this is ``compare_f_test``) and the likelihood-ratio test
``LR = n log(SSR_r / SSR_f) ~ χ²(Δdf)`` (``compare_lr_test``; the Gaussian log-likelihoods'
difference, in which weights' ``Σ log w`` cancels).
"""
from __future__ import annotations

import ast
import math
import re
from typing import NamedTuple, Sequence

import numpy as np
from ..core import special  # t and F without SciPy: a robust summary's Wald F must not cost its import
from ..core.precision import LazyModule

from ..core.errors import InputError

sp_special = LazyModule("scipy.special")  # the normal and chi² references (imported on first use)

#: Longest restriction text accepted (a bound before parsing).
MAX_TEXT = 10_000
_PLACEHOLDER = "__jaxlm_term_{}__"
_IDENT = r"A-Za-z0-9_"
_WHAT = {"Pow": "'**'", "Div": "'/'", "FloorDiv": "'//'", "Mod": "'%'", "MatMult": "'@'", "Call": "a function call",
         "Attribute": "an attribute", "Subscript": "a subscript", "Compare": "a comparison", "BitXor": "'^'",
         "BitAnd": "'&'", "BitOr": "'|'", "Not": "'not'", "Invert": "'~'", "LShift": "'<<'", "RShift": "'>>'"}


# ------------------------------------------------------------------------------------ parsing
def _substitute(text: str, names: Sequence[str]) -> str:
    """Replace whole occurrences of term names (longest first) by placeholder identifiers."""
    order = sorted(range(len(names)), key=lambda j: -len(names[j]))
    order = [j for j in order if names[j]]
    if not order:
        return text
    pattern = re.compile("|".join(f"(?<![{_IDENT}]){re.escape(names[j])}(?![{_IDENT}])" for j in order))
    lookup = {names[j]: j for j in reversed(order)}
    return pattern.sub(lambda mt: _PLACEHOLDER.format(lookup[mt.group(0)]), text)


def _refuse(what: str, where: str, names) -> InputError:
    return InputError("restrictions", f"restrictions may contain only term names, numbers, +, -, * (by a number), "
                                      f"parentheses and =; got {what} in {where!r}. Known terms: "
                                      f"{', '.join(names[:20])}{' ...' if len(names) > 20 else ''}.")


def _linear(node, p: int, where: str, names) -> tuple[np.ndarray, float]:
    """``(a (p,), c)`` with the expression equal to ``a·b + c``."""
    if isinstance(node, ast.Expression):
        return _linear(node.body, p, where, names)
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _refuse(f"the literal {v!r}", where, names)
        v = float(v)
        if not math.isfinite(v):
            raise _refuse(f"the non-finite number {v!r}", where, names)
        return np.zeros(p), v
    if isinstance(node, ast.Name):
        m = re.fullmatch(_PLACEHOLDER.format(r"(\d+)"), node.id)
        if m is None:
            raise InputError("restrictions", f"restrictions must name terms of the model; got an unknown term "
                                             f"{node.id!r} in {where!r}. Known terms: "
                                             f"{', '.join(names[:20])}{' ...' if len(names) > 20 else ''}.")
        a = np.zeros(p)
        a[int(m.group(1))] = 1.0
        return a, 0.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        a, c = _linear(node.operand, p, where, names)
        return (-a, -c) if isinstance(node.op, ast.USub) else (a, c)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        a1, c1 = _linear(node.left, p, where, names)
        a2, c2 = _linear(node.right, p, where, names)
        if isinstance(node.op, ast.Add):
            return a1 + a2, c1 + c2
        if isinstance(node.op, ast.Sub):
            return a1 - a2, c1 - c2
        if a1.any() and a2.any():
            raise _refuse("a product of two terms (restrictions must be linear)", where, names)
        return (a1 * c2 + a2 * c1), c1 * c2
    kind = type(getattr(node, "op", node)).__name__
    raise _refuse(_WHAT.get(kind, f"a {kind} expression"), where, names)


def parse_restrictions(text: str, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, tuple]:
    """``(R (q, p), q (q,), labels)`` for the restrictions in ``text`` over terms ``names``."""
    names = [str(n) for n in names]
    if not isinstance(text, str):
        raise InputError("restrictions", f"restrictions must be a string, a matrix R or a pair (R, q); got "
                                         f"{type(text).__name__}.")
    if len(text) > MAX_TEXT:
        raise InputError("restrictions", f"restrictions must be at most {MAX_TEXT} characters; got {len(text)}.")
    p = len(names)
    subst = _substitute(text, names)
    rows, rhs, labels = [], [], []
    for piece in subst.split(","):
        original = _display(piece, names)
        if not piece.strip():
            raise InputError("restrictions", f"restrictions must not be empty; got {text!r} (an empty restriction "
                                             f"between commas).")
        sides = piece.split("=")
        if len(sides) == 1:
            sides = sides + ["0"]
        parsed = []
        for side in sides:
            if not side.strip():
                raise _refuse("an empty side of '=' (write 'a = b', not 'a == b')", original, names)
            try:
                tree = ast.parse(side.strip(), mode="eval")
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                raise _refuse("text that is not an expression", original, names) from None
            parsed.append(_linear(tree, p, original, names))
        for (a1, c1), (a2, c2) in zip(parsed[:-1], parsed[1:]):
            a = a1 - a2
            if not a.any():
                raise InputError("restrictions", f"each restriction must involve a coefficient; got {original!r}, "
                                                 f"which reduces to a constant.")
            rows.append(a)
            rhs.append(c2 - c1)
            labels.append(original.strip())
    R, q = np.array(rows), np.array(rhs)
    return R, q, tuple(labels)


def _display(piece: str, names: Sequence[str]) -> str:
    """The user's text of one restriction: placeholders back to term names, spaces squeezed."""
    text = re.sub(_PLACEHOLDER.format(r"(\d+)"), lambda mt: names[int(mt.group(1))], piece)
    return " ".join(text.split())


def restriction_matrix(restrictions, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, tuple]:
    """``(R, q, labels)`` from a string, a sequence of strings, a matrix ``R`` or a pair ``(R, q)``."""
    names = [str(n) for n in names]
    p = len(names)
    if isinstance(restrictions, str):
        R, q, labels = parse_restrictions(restrictions, names)
    elif isinstance(restrictions, (list, tuple)) and restrictions and all(isinstance(r, str) for r in restrictions):
        parts = [parse_restrictions(r, names) for r in restrictions]
        R = np.vstack([pt[0] for pt in parts])
        q = np.concatenate([pt[1] for pt in parts])
        labels = tuple(lab for pt in parts for lab in pt[2])
    else:
        if isinstance(restrictions, tuple) and len(restrictions) == 2:
            R, q = restrictions
        else:
            R, q = restrictions, None
        try:
            R = np.atleast_2d(np.asarray(R, dtype=np.float64))
            q = np.zeros(R.shape[0]) if q is None else np.asarray(q, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise InputError("restrictions", "restrictions must be a string, a matrix R (q, p) or a pair (R, q) of "
                                             "numbers.") from None
        if R.ndim != 2 or R.shape[1] != p or q.shape[0] != R.shape[0]:
            raise InputError("restrictions", f"R must have shape (q, {p}) (one column per coefficient) and q length "
                                             f"q; got R {R.shape} and q {q.shape}.")
        if not (np.all(np.isfinite(R)) and np.all(np.isfinite(q))):
            raise InputError("restrictions", "R and q must be finite numbers.")
        labels = tuple(_label(r, c, names) for r, c in zip(R, q))
    if R.shape[0] == 0:
        raise InputError("restrictions", "restrictions must contain at least one restriction; got none.")
    if np.linalg.matrix_rank(R) < R.shape[0]:
        raise InputError("restrictions", f"restrictions must be linearly independent; got {R.shape[0]} restrictions "
                                         f"of rank {np.linalg.matrix_rank(R)} ({'; '.join(labels)}). Drop the "
                                         f"redundant ones.")
    return R, q, labels


def _label(r, c, names) -> str:
    terms = [f"{'+' if v > 0 else '-'} {abs(v):g}*{names[j]}" for j, v in enumerate(r) if v != 0]
    s = " ".join(terms).lstrip("+ ").replace("1*", "") if terms else "0"
    return f"{s} = {c:g}"


# ------------------------------------------------------------------------------------ tests
class TTest(NamedTuple):
    """One t test per restriction row: effect ``R b``, its standard error, t, two-sided p."""

    labels: tuple
    effect: np.ndarray
    value: np.ndarray      # q: the hypothesised values
    std_error: np.ndarray
    t: np.ndarray
    p: np.ndarray
    df: float | None       # None: normal reference distribution


class WaldTest(NamedTuple):
    """A joint test of ``R b = q``: F (or χ² when ``df_denom`` is None) and its p-value."""

    labels: tuple
    R: np.ndarray
    q: np.ndarray
    statistic: float
    p: float
    df_num: int
    df_denom: float | None
    distribution: str      # "F" or "chi2"
    note: str | None

    def __str__(self) -> str:
        dist = f"F({self.df_num}, {self.df_denom:g})" if self.distribution == "F" else f"chi2({self.df_num})"
        return f"Wald test of {'; '.join(self.labels)}: {dist} = {self.statistic:.6g}, p = {self.p:.4g}"


def _inputs(coef, cov, names):
    coef = np.asarray(coef, dtype=np.float64).reshape(-1)
    cov = np.asarray(cov, dtype=np.float64)
    p = coef.size
    if cov.shape != (p, p):
        raise InputError("cov", f"cov must be ({p}, {p}) for {p} coefficients; got {cov.shape}.")
    names = [f"x{j}" for j in range(p)] if names is None else [str(n) for n in names]
    if len(names) != p:
        raise InputError("names", f"names must have {p} entries (one per coefficient); got {len(names)}.")
    return coef, cov, names


def _check_df(df):
    if df is None:
        return None
    if isinstance(df, bool) or not isinstance(df, (int, float, np.integer, np.floating)) or not df > 0:
        raise InputError("df", f"df must be a number > 0 (n − k, or G − 1 under clustering) or None for the "
                               f"normal/χ² reference; got df={df!r}.")
    return float(df)


def _estimable(R, coef, cov, labels):
    used = np.any(R != 0, axis=0)
    bad = used & (~np.isfinite(coef) | ~np.isfinite(np.diag(cov)))
    if bad.any():
        raise InputError("restrictions", f"restrictions must involve estimable coefficients only; "
                                         f"{'; '.join(labels)} involves coefficient(s) at position(s) "
                                         f"{np.flatnonzero(bad).tolist()}, which are not estimable (NaN).")


def t_test(coef, cov, restrictions, *, names=None, df=None) -> TTest:
    """One t test per restriction (statsmodels ``t_test``): ``t = (R b − q) / sqrt(diag(R V Rᵀ))``,
    two-sided p from ``t(df)`` (normal when ``df`` is None)."""
    coef, cov, names = _inputs(coef, cov, names)
    df = _check_df(df)
    R, q, labels = restriction_matrix(restrictions, names)
    _estimable(R, coef, cov, labels)
    effect = R @ coef
    sd = np.sqrt(np.maximum(np.diag(R @ cov @ R.T), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (effect - q) / sd
    p = special.t_sf2(df, t) if df is not None else 2.0 * sp_special.ndtr(-np.abs(t))
    return TTest(labels, effect, q, sd, t, p, df)


def wald_test(coef, cov, restrictions, *, names=None, df=None) -> WaldTest:
    """Joint test of ``R b = q`` under ``cov`` (see the module docstring); statsmodels ``f_test``
    when ``df`` is given (``wald_test(..., use_f=False)`` when it is None)."""
    coef, cov, names = _inputs(coef, cov, names)
    df = _check_df(df)
    R, q, labels = restriction_matrix(restrictions, names)
    _estimable(R, coef, cov, labels)
    diff = R @ coef - q
    V = R @ cov @ R.T
    V = 0.5 * (V + V.T)
    J = R.shape[0]
    rank = int(np.linalg.matrix_rank(V))
    note = None
    if rank < J:
        note = (f"the covariance of the {J} restrictions has rank {rank} (e.g. more restrictions than clusters − 1): "
                f"the pseudo-inverse is used and the test has {rank} numerator degrees of freedom.")
        J = rank
    if J == 0:
        raise InputError("restrictions", "restrictions must have a nonzero covariance; the covariance of "
                                         f"{'; '.join(labels)} is zero, so no test is possible.")
    W = float(diff @ np.linalg.pinv(V) @ diff)
    if df is None:
        return WaldTest(labels, R, q, W, float(sp_special.chdtrc(J, W)), J, None, "chi2", note)
    F = W / J
    return WaldTest(labels, R, q, F, float(special.fdtrc(J, df, F)), J, df, "F", note)


# ------------------------------------------------------------------------------------ anova
class ModelFit(NamedTuple):
    """What nested-model comparison needs of a fit (a :class:`jaxlm.inference.RegressionResults`
    has these attributes too, and can be passed as it is)."""

    term_names: tuple
    sse: float
    df_resid: float
    n_obs: float


class Anova(NamedTuple):
    """Nested-model comparison, one row per model (the first row's tests are NaN)."""

    df_resid: np.ndarray
    ssr: np.ndarray
    df_diff: np.ndarray
    ss_diff: np.ndarray
    F: np.ndarray
    p_F: np.ndarray
    LR: np.ndarray
    p_LR: np.ndarray

    def to_frame(self):
        """A pandas DataFrame with statsmodels ``anova_lm``'s columns, plus ``LR`` and ``Pr(>Chi2)``."""
        import pandas as pd

        return pd.DataFrame({"df_resid": self.df_resid, "ssr": self.ssr, "df_diff": self.df_diff,
                             "ss_diff": self.ss_diff, "F": self.F, "Pr(>F)": self.p_F, "LR": self.LR,
                             "Pr(>Chi2)": self.p_LR})

    def __str__(self) -> str:
        return self.to_frame().to_string()


def _as_fit(m, i) -> ModelFit:
    try:
        return ModelFit(tuple(str(t) for t in m.term_names), float(m.sse), float(m.df_resid), float(m.n_obs))
    except AttributeError:
        raise InputError("models", f"models must be fits with term_names, sse, df_resid and n_obs (a ModelFit or "
                                   f"RegressionResults); model {i + 1} is a {type(m).__name__}.") from None


def anova(*models, scale: float | None = None) -> Anova:
    """Compare nested models, smallest first (see the module docstring). ``scale``: σ̂² for the F
    tests (default: the last, largest model's ``SSR / df_resid``, as statsmodels)."""
    fits = [_as_fit(m, i) for i, m in enumerate(models)]
    if len(fits) < 2:
        raise InputError("models", f"anova needs at least two nested models; got {len(fits)}.")
    for i, (small, big) in enumerate(zip(fits[:-1], fits[1:])):
        missing = [t for t in small.term_names if t not in big.term_names]
        if missing:
            raise InputError("models", f"models must be nested, smallest first: model {i + 1}'s terms must all be in "
                                       f"model {i + 2}; got {missing[:10]} only in model {i + 1}. Reorder the models "
                                       f"or compare nested ones.")
        if small.n_obs != big.n_obs:
            raise InputError("models", f"models must be fitted to the same rows; model {i + 1} has n_obs="
                                       f"{small.n_obs:g} and model {i + 2} n_obs={big.n_obs:g}.")
        if big.df_resid > small.df_resid or small.sse < big.sse * (1 - 1e-8) - 1e-300:
            raise InputError("models", f"models must be nested, smallest first: model {i + 2} must fit at least as "
                                       f"well with no more residual degrees of freedom; got SSR {small.sse:.6g} → "
                                       f"{big.sse:.6g}, df_resid {small.df_resid:g} → {big.df_resid:g}.")
    df_resid = np.array([f.df_resid for f in fits])
    ssr = np.array([f.sse for f in fits])
    if scale is None:
        scale = ssr[-1] / df_resid[-1] if df_resid[-1] > 0 else math.nan
    nan = np.full(1, np.nan)
    df_diff = np.concatenate([nan, -np.diff(df_resid)])
    ss_diff = np.concatenate([nan, -np.diff(ssr)])
    with np.errstate(divide="ignore", invalid="ignore"):
        F = ss_diff / df_diff / scale
        p_F = special.fdtrc(df_diff, df_resid, F)
        n = fits[0].n_obs
        LR = np.concatenate([nan, n * np.log(ssr[:-1] / ssr[1:])])
        p_LR = sp_special.chdtrc(df_diff, LR)
    p_F = np.where(np.isnan(F), np.nan, p_F)
    p_LR = np.where(np.isnan(LR), np.nan, p_LR)
    return Anova(df_resid, ssr, df_diff, ss_diff, F, p_F, LR, p_LR)


__all__ = ["Anova", "MAX_TEXT", "ModelFit", "TTest", "WaldTest", "anova", "parse_restrictions",
           "restriction_matrix", "t_test", "wald_test"]
