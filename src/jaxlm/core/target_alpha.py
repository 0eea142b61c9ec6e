"""Per-target ridge penalties: scikit-learn's ``Ridge(alpha=array of shape (n_targets,))``.

Every target of a multi-target fit shares the design, so they share one state; only the
penalty differs. The exact solvers (:mod:`jaxlm.core.exact`) take ``alpha`` as a float (one
penalty for all targets) or as a float64 array ``(m,)``, one per target (:func:`per_target`
turns the user's value into one of these: an array whose entries are all equal becomes the
float, so that such a fit is bit-identical to the scalar one). For an array the normal
matrix is factorised once per distinct penalty (:class:`Grouped`, whose ``solve`` applies to
each target's column the factor of its own penalty); refinement runs over all targets at once,
each against its own penalty (:func:`penalty`: a ``(d, m)`` matrix in the state's units).
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Callable, NamedTuple

import numpy as np

from .errors import InputError
from .ranges import ridge_in_units


def values_of(alpha) -> np.ndarray:
    """``alpha`` as a float64 array, checked by :func:`check_values` (an InputError naming alpha
    for anything that is not numbers >= 0)."""
    try:
        a = np.asarray(alpha, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("alpha", f"alpha must be a number >= 0 or one number >= 0 per target; got alpha={alpha!r}. "
                                  f"Use alpha=0 for ordinary least squares.") from None
    check_values(a)
    return a


def per_target(alpha, m: int):
    """``alpha`` as the exact solvers take it: a float, or a float64 array (m,) of per-target
    penalties that are not all equal. A sequence of length 1 is broadcast (as scikit-learn's
    ``Ridge``). Raises InputError naming ``alpha`` for a wrong length, a negative or a
    non-finite entry."""
    if isinstance(alpha, Real) and not isinstance(alpha, bool):
        return float(alpha)
    a = values_of(alpha)
    if a.ndim == 0:
        return float(a)
    if a.size not in (1, m):
        raise InputError("alpha", f"alpha must be one number or one number per target ({m}); got {a.size} "
                                  f"penalties (alpha={a.tolist()}). Pass {m} penalties, or one for all targets.")
    return float(a[0]) if np.all(a == a[0]) else a.copy()


def check_values(a: np.ndarray) -> None:
    """The rules every alpha follows, before the number of targets is known: a number or a
    1-D list of numbers, each finite and >= 0 (InputError naming ``alpha`` otherwise)."""
    if a.ndim > 1 or (a.ndim == 1 and a.size == 0):
        raise InputError("alpha", f"alpha must be a number >= 0 or a 1-D list of one number >= 0 per target; got "
                                  f"an array of shape {a.shape}.")
    bad = ~np.isfinite(a) | (a < 0)
    if np.any(bad):
        first = float(a.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]])
        raise InputError("alpha", f"alpha must be finite and >= 0 (a ridge penalty, per target); got {first!r}"
                                  f"{'' if a.ndim == 0 else f' in alpha={a.tolist()}'}. Use alpha=0 for ordinary "
                                  f"least squares.")


def is_per_target(alpha) -> bool:
    """Whether ``alpha`` (as :func:`per_target` returns it) holds one penalty per target."""
    return np.ndim(alpha) == 1


def groups(alpha) -> tuple[tuple[float, np.ndarray], ...]:
    """The distinct penalties of a per-target ``alpha`` in order of first appearance, each with
    the indices of its targets."""
    a = np.asarray(alpha, dtype=np.float64)
    values = list(dict.fromkeys(a.tolist()))
    return tuple((v, np.flatnonzero(a == v)) for v in values)


def penalty(alpha, units, d: int):
    """The penalty in the state's units: for a float what :func:`jaxlm.core.ranges.ridge_in_units`
    gives (a float, or one per column); for per-target penalties a ``(d, m)`` matrix, column k
    the penalty of target k on each feature."""
    if not is_per_target(alpha):
        return alpha if units is None else ridge_in_units(alpha, units)
    cols = [np.broadcast_to(np.asarray(a if units is None else ridge_in_units(a, units), dtype=np.float64), (d,))
            for a in np.asarray(alpha, dtype=np.float64).tolist()]
    return np.stack(cols, axis=1)


class Grouped(NamedTuple):
    """One factor (:class:`jaxlm.core.exact.Factor`) per distinct penalty; ``groups`` holds the
    target indices of each. ``solve(g)`` solves each target's column with its own factor.
    ``rank``/``cond``/``aliased``/``kind`` report the least favourable group (the smallest
    rank, the largest condition number, every aliased column, the most robust solver used)."""

    parts: tuple
    groups: tuple
    alphas: tuple

    @classmethod
    def build(cls, factor_of: Callable, alpha) -> "Grouped":
        """The factors ``factor_of(alpha=α)`` of the distinct penalties of ``alpha``."""
        grp = groups(alpha)
        return cls(tuple(factor_of(alpha=v) for v, _ in grp), tuple(idx for _, idx in grp), tuple(v for v, _ in grp))

    def solve(self, g: np.ndarray) -> np.ndarray:
        """H_k⁻¹ g[:, k] for each target k (g of shape (d, m)), H_k the normal matrix of k's penalty."""
        out = np.empty_like(np.asarray(g, dtype=np.float64))
        for f, idx in zip(self.parts, self.groups):
            out[:, idx] = f.solve(g[:, idx])
        return out

    @property
    def kind(self) -> str:
        kinds = {f.kind for f in self.parts}
        return next(k for k in ("svd", "qr", "cholesky") if k in kinds)

    @property
    def rank(self) -> int:
        return min(f.rank for f in self.parts)

    @property
    def cond(self) -> float:
        return max((f.cond for f in self.parts), key=lambda c: math.inf if math.isnan(c) else c)

    @property
    def aliased(self) -> tuple:
        return tuple(sorted({j for f in self.parts for j in f.aliased}))

    @property
    def v(self):  # a rank-deficient part holds its pseudo-inverse (model-file checks ask for it)
        return next((f.v for f in self.parts if f.v is not None), None)


def select_state(state, idx: np.ndarray):
    """The state of the targets ``idx`` only (the features' sums are shared). For a QR state
    the columns of ``R`` are re-triangularised (``Rᵀ R`` is unchanged for the kept columns)."""
    d = np.shape(state.mean_x)[0]
    m = np.shape(state.mean_y)[0]
    pick = lambda a: a if np.ndim(a) == 0 else np.asarray(a)[idx]  # noqa: E731
    out = {"mean_y": pick(state.mean_y), "log2_y": pick(state.log2_y), "mean_y_lo": pick(state.mean_y_lo)}
    if hasattr(state, "r"):
        r = np.asarray(state.r, dtype=np.float64)
        cols = np.r_[np.arange(d), d + np.asarray(idx)]
        out["r"] = np.linalg.qr(r[:, cols], mode="r") if len(idx) < m else r
    else:
        out["sxy"] = np.asarray(state.sxy)[:, idx]
        out["syy"] = np.asarray(state.syy)[np.ix_(idx, idx)]
    return state._replace(**out)


def select(sol, idx: np.ndarray, factor):
    """The solution of the targets ``idx`` (coefficients, intercepts, SSE, state) with ``factor``."""
    sse = None if sol.sse is None else np.asarray(sol.sse, dtype=np.float64).reshape(-1)[idx]
    state = None if sol.state is None else select_state(sol.state, idx)
    out = sol._replace(coef=np.atleast_2d(sol.coef)[idx], intercept=np.asarray(sol.intercept).reshape(-1)[idx],
                       sse=sse, state=state, factor=factor)
    if factor is None:
        return out
    return out._replace(solver=factor.kind, rank=factor.rank, condition_number=factor.cond,
                        aliased=tuple(factor.aliased))
