"""Regression statistics read off the fitted least-squares state and solution.

:func:`regression_results` turns a :class:`jaxlm.core.solution.Solution` into one immutable
:class:`RegressionResults` per target. Everything is read off the merged state (weight
sums, means, centred co-moments), the solution (coefficients, the measured residual sum of
squares, the factor of the normal matrix) and, when ``batches`` is given, one extra pass of
mergeable sums (heteroskedasticity-consistent covariances, ``Σ log w``, and a double-double
Gram used to refine ``(XᵀWX)⁻¹``). A streamed or distributed fit therefore gets the same
summary as an in-memory one.

Notation
--------
``n`` observations with weights ``w_i``, ``d`` features, ``p = d + 1`` parameters with an
intercept (``d`` without), ``x̄ = Σ w x / Σ w``, ``Sxx = Σ w (x − x̄)(x − x̄)ᵀ``.
``(X̃ᵀWX̃)⁻¹`` is the "bread" for the design ``X̃ = [1, X]`` (``X`` without intercept). It
is never formed by inverting the uncentred Gram: with an intercept

    (X̃ᵀWX̃)⁻¹ = [[1/Σw + x̄ᵀ Sxx⁻¹ x̄,  −(Sxx⁻¹ x̄)ᵀ],
                 [−Sxx⁻¹ x̄,             Sxx⁻¹     ]]

with ``Sxx⁻¹`` applied by the solution's factor (Cholesky or TSQR of the equilibrated
centred design), refined in double-double when the design is ill-conditioned.

Weights
-------
``weights_kind="frequency"`` (default): a weight of k counts as k identical rows.
``n_obs = Σ w``, ``df_resid = Σ w − p``; every statistic equals that of statsmodels ``OLS``
on the rows repeated.

``weights_kind="analytic"``: inverse-variance weights (``Var(ε_i) = σ²/w_i``), as statsmodels
``WLS(y, X, weights=w)``. ``n_obs`` = number of rows with ``w > 0``, ``df_resid = n_obs − p``.
(Rows with ``w = 0`` are dropped; statsmodels would count them in ``nobs``.)

In both kinds ``σ̂² = Σ w e² / df_resid`` and ``Cov(β̂) = σ̂² (X̃ᵀWX̃)⁻¹``; only the degrees of
freedom, the log-likelihood and the HC weights differ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np
from scipy import special  # t and F distributions (scipy.stats wraps these; its import costs ~1 s)

from ..core import dd
from ..core.errors import InputError, check_choice
from . import _pass

WEIGHTS_KINDS = ("frequency", "analytic")
COV_KINDS = ("nonrobust", "HC0", "HC1", "HC2", "HC3")
#: ``refine="auto"`` refines ``(XᵀWX)⁻¹`` above this condition number (centred, equilibrated
#: design): below it, plain float64 triangular solves already give ≥ 13 digits.
REFINE_COND = 10.0
#: ... and only while the double-double Gram pass costs at most this many n·d² products
#: (≈ 1 s of NumPy); above it a note says how many digits to expect instead.
REFINE_BUDGET = 1 << 24
EPS = np.finfo(np.float64).eps

Batches = Callable[[], Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]]


class CoefTable(NamedTuple):
    """The coefficient table for one covariance kind and confidence level (arrays (p,))."""

    coef: np.ndarray
    std_errors: np.ndarray
    t_values: np.ndarray
    p_values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


class _Design(NamedTuple):
    """Pieces shared by all targets: the bread and what prediction intervals need."""

    bread: np.ndarray | None      # (p, p) (X̃ᵀWX̃)⁻¹ (pseudo-inverse if rank deficient); None: no inference
    sxx_inv: np.ndarray | None    # (d, d) (Xcᵀ W Xc)⁻¹ (centred with an intercept, uncentred without)
    mean_x: np.ndarray            # (d,) x̄ (zeros without intercept)
    wsum: float                   # Σ w


def _readonly(a):
    if a is None:
        return None
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class RegressionResults:
    """Regression statistics of one target (immutable).

    Build with :func:`regression_results`, which returns one per target (a tuple, also for a
    single target). Coefficient-indexed arrays have length
    ``p`` in the order of :attr:`coef`: the intercept first (where fitted), then the
    features. Statistics that are undefined are ``NaN`` and :attr:`inference_note` (or
    :attr:`notes`) says why: ridge and gradient fits (no inferential columns), no residual
    degrees of freedom (``df_resid ≤ 0``), coefficients that are not estimable under rank
    deficiency.

    Attributes
    ----------
    coef : ndarray (p,)            the estimates β̂ (intercept first where fitted)
    term_names : tuple[str, ...]   names of the p coefficients ("intercept", then features)
    target_name : str
    n_obs : float                  Σw (frequency weights) or the number of rows with w > 0 (analytic)
    df_model : float               rank of the centred design (with an intercept) or of X (without):
                                   the number of estimated slopes, intercept not counted
    df_resid : float               n_obs − df_model − (1 if intercept)
    sse : float                    Σ w e² (the solution's double-double measurement)
    sst : float                    Σ w (y − ȳ)² with an intercept; Σ w y² (uncentred) without
    condition_number : float       2-norm condition number of the centred, column-equilibrated design
                                   (the solver's; *not* statsmodels' raw-design convention)
    fit_intercept : bool;  weights_kind : str;  solver : str;  alpha : float
    estimable : ndarray[bool] (p,) False for coefficients not identified under rank deficiency
    inference_note : str or None   why inferential statistics are NaN (None when they are defined)
    notes : tuple[str, ...]        other remarks (perfect fit, rank deficiency, refinement, ...)
    vif : ndarray (d,)             variance inflation factors ``H_jj (H⁻¹)_jj`` (H: the model's Gram)
    cv : ndarray (d,)              coefficient of variation of each feature, sd / |mean|
    cov_refinement_steps : int     double-double refinement steps applied to (XᵀWX)⁻¹ (0: plain factor solves)
    """

    coef: np.ndarray
    term_names: tuple
    target_name: str
    n_obs: float
    df_model: float
    df_resid: float
    sse: float
    sst: float
    condition_number: float
    fit_intercept: bool
    weights_kind: str
    solver: str
    alpha: float
    estimable: np.ndarray
    inference_note: str | None
    notes: tuple
    vif: np.ndarray
    cv: np.ndarray
    cov_refinement_steps: int
    _design: _Design = field(repr=False)
    _hc: dict | None = field(repr=False)           # {"HC0": (p, p), ..., "HC3": (p, p)} covariances
    _hc_note: str | None = field(repr=False)       # why HC covariances are unavailable
    _sum_log_w: float = field(repr=False)          # Σ log w over rows with w > 0 (NaN if unknown)

    # ------------------------------------------------------------------ basic quantities
    @property
    def n_params(self) -> int:
        """p: the number of coefficients, intercept included."""
        return len(self.coef)

    @property
    def k_constant(self) -> int:
        """1 with an intercept, else 0."""
        return int(self.fit_intercept)

    @property
    def has_inference(self) -> bool:
        """Whether standard errors, t, p and intervals are defined (see :attr:`inference_note`)."""
        return self.inference_note is None

    @property
    def scale(self) -> float:
        """σ̂² = SSE / df_resid (the residual variance; NaN when df_resid ≤ 0 or no inference)."""
        if self._design.bread is None or not self.df_resid > 0:
            return math.nan
        return self.sse / self.df_resid

    @property
    def residual_std(self) -> float:
        """σ̂ = sqrt(SSE / df_resid), SSE = Σ w e² (NaN when df_resid ≤ 0, ridge or gradient fits)."""
        return math.sqrt(self.scale) if self.scale >= 0 else math.nan

    # ------------------------------------------------------------------ covariance
    def cov(self, kind: str = "nonrobust") -> np.ndarray:
        """Covariance matrix of :attr:`coef`, shape (p, p), in the order of ``coef``.

        ``B = (X̃ᵀWX̃)⁻¹`` (the pseudo-inverse under rank deficiency), ``e`` the residuals:

        - ``"nonrobust"``: ``σ̂² B``.
        - ``"HC0"``: ``B (Σ a_i x̃_i x̃_iᵀ) B`` with ``a_i = w_i e_i²`` (frequency weights: the
          White estimator of the repeated rows) or ``a_i = w_i² e_i²`` (analytic weights: the
          White estimator of the whitened rows ``√w_i x̃_i``, ``√w_i e_i``, as statsmodels WLS).
        - ``"HC1"``: ``HC0 · n_obs / df_resid``.
        - ``"HC2"``: as HC0 with ``a_i / (1 − h_i)``; ``"HC3"``: with ``a_i / (1 − h_i)²``.
          Leverage ``h_i = x̃_iᵀ B x̃_i`` (frequency) or ``w_i x̃_iᵀ B x̃_i`` (analytic).

        The HC kinds need the extra data pass: they are available only when
        :func:`regression_results` was given ``batches`` (or ``sums``); otherwise this raises
        an InputError saying so. Rows and columns of non-estimable coefficients are NaN; the
        whole matrix is NaN for ridge and gradient fits and when ``df_resid ≤ 0``.
        """
        kind = check_choice("kind", kind, COV_KINDS)
        p = self.n_params
        if self._design.bread is None:
            return np.full((p, p), np.nan)
        if kind == "nonrobust":
            out = self.scale * self._design.bread
        elif not self.df_resid > 0:
            out = np.full((p, p), np.nan)
        elif self._hc is None:
            raise InputError("kind", f"cov(kind={kind!r}) needs the extra pass over the data, but {self._hc_note} "
                                     f"Pass batches=... to regression_results, or use kind='nonrobust'.")
        else:
            out = self._hc[kind]
        out = np.array(out, copy=True)
        bad = ~self.estimable
        out[bad, :] = np.nan
        out[:, bad] = np.nan
        return out

    def coef_table(self, *, cov: str = "nonrobust", level: float = 0.95) -> CoefTable:
        """Coefficient, standard error, t, p and the ``level`` confidence interval, for ``cov``.

        ``se = sqrt(diag(cov))``, ``t = coef / se``, ``p = 2 · P(T > |t|)`` with
        ``T ~ t(df_resid)``, interval ``coef ± t_{(1+level)/2, df_resid} · se`` (t quantiles for
        every covariance kind, as statsmodels' default ``use_t=True``).
        """
        level = _check_level(level)
        c = self.cov(cov)
        se = np.sqrt(np.maximum(np.diag(c), 0.0))  # NaN stays NaN
        with np.errstate(divide="ignore", invalid="ignore"):
            t = self.coef / se
        df = self.df_resid
        if df > 0:
            p = 2.0 * special.stdtr(df, -np.abs(t))
            q = special.stdtrit(df, 0.5 + level / 2.0)
        else:
            p = np.full_like(t, np.nan)
            q = math.nan
        return CoefTable(self.coef, se, t, p, self.coef - q * se, self.coef + q * se)

    @property
    def std_errors(self) -> np.ndarray:
        """se_j = sqrt(σ̂² B_jj), B = (X̃ᵀWX̃)⁻¹ (non-robust; see :meth:`coef_table` for HC kinds)."""
        return self.coef_table().std_errors

    @property
    def t_values(self) -> np.ndarray:
        """t_j = β̂_j / se_j (±inf for a perfect fit with β̂_j ≠ 0: the coefficient is exact)."""
        return self.coef_table().t_values

    @property
    def p_values(self) -> np.ndarray:
        """p_j = 2 · P(T > |t_j|), T ~ Student t with df_resid degrees of freedom."""
        return self.coef_table().p_values

    def conf_int(self, level: float = 0.95) -> np.ndarray:
        """(p, 2) array of [lower, upper] = β̂ ∓ t_{(1+level)/2, df_resid} · se (non-robust)."""
        tab = self.coef_table(level=level)
        return np.column_stack([tab.lower, tab.upper])

    # ------------------------------------------------------------------ goodness of fit
    @property
    def r_squared(self) -> float:
        """R² = 1 − SSE / SST.

        With an intercept SST = Σ w (y − ȳ)² (centred). Without an intercept SST = Σ w y²:
        the *uncentred* R², as R's ``summary.lm``, NIST StRD and statsmodels report for
        models without a constant (it is not comparable with a centred R²).
        """
        return 1.0 - self.sse / self.sst if self.sst > 0 else math.nan

    @property
    def adj_r_squared(self) -> float:
        """1 − (1 − R²) (n_obs − k₀) / df_resid, k₀ = 1 with an intercept, 0 without."""
        if not self._inferential or not self.df_resid > 0:
            return math.nan
        return 1.0 - (1.0 - self.r_squared) * (self.n_obs - self.k_constant) / self.df_resid

    @property
    def f_statistic(self) -> float:
        """F = ((SST − SSE) / df_model) / (SSE / df_resid): all slopes zero (with an intercept)
        or all coefficients zero (without; uncentred SST). +inf for a perfect fit."""
        if not self._inferential or not self.df_resid > 0 or not self.df_model > 0:
            return math.nan
        num = (self.sst - self.sse) / self.df_model
        with np.errstate(divide="ignore"):
            return float(np.float64(num) / np.float64(self.sse / self.df_resid))

    @property
    def f_pvalue(self) -> float:
        """P(F(df_model, df_resid) > F)."""
        f = self.f_statistic
        return float(special.fdtrc(self.df_model, self.df_resid, f)) if not math.isnan(f) else math.nan

    @property
    def log_likelihood(self) -> float:
        """Gaussian log-likelihood at the estimates, σ² concentrated out (σ̂²_ML = SSE / n):

        ``ℓ = −n/2 · (log(2π) + log(SSE / n) + 1)``, plus ``½ Σ log w_i`` for analytic weights
        (the density of y_i ~ N(ŷ_i, σ²/w_i)), n = n_obs. This is statsmodels' OLS/WLS ``llf``.
        +inf for a perfect fit (the likelihood is unbounded). Analytic weights need
        ``Σ log w`` from the data pass (or all weights equal to 1): NaN otherwise.
        """
        if not self._inferential:
            return math.nan
        n = self.n_obs
        with np.errstate(divide="ignore"):
            llf = -0.5 * n * (math.log(2 * math.pi) + float(np.log(np.float64(self.sse) / n)) + 1.0)
        if self.weights_kind == "analytic":
            llf += 0.5 * self._sum_log_w
        return llf

    @property
    def aic(self) -> float:
        """AIC = −2ℓ + 2k, k = df_model + k₀ (the coefficients; σ² is not counted, as statsmodels;
        R's ``AIC()`` adds 2 for σ²)."""
        return -2.0 * self.log_likelihood + 2.0 * (self.df_model + self.k_constant)

    @property
    def bic(self) -> float:
        """BIC = −2ℓ + log(n_obs) · k, k = df_model + k₀ (statsmodels' convention)."""
        return -2.0 * self.log_likelihood + math.log(self.n_obs) * (self.df_model + self.k_constant)

    @property
    def _inferential(self) -> bool:
        return self._design.bread is not None

    # ------------------------------------------------------------------ conveniences
    def summary(self, *, level: float = 0.95, cov: str = "nonrobust"):
        """:func:`jaxlm.inference.summary` of this target."""
        from .summary import summary
        return summary(self, level=level, cov=cov)

    def predict_interval(self, X_new, *, kind: str = "confidence", level: float = 0.95, weights=None):
        """:func:`jaxlm.inference.predict_interval` of this target."""
        from .predict import predict_interval
        return predict_interval(self, X_new, kind=kind, level=level, weights=weights)

    def __repr__(self) -> str:
        return (f"RegressionResults(target={self.target_name!r}, p={self.n_params}, n_obs={self.n_obs:g}, "
                f"r_squared={self.r_squared:.6g}, weights_kind={self.weights_kind!r}, solver={self.solver!r})")


def _check_level(level) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < level < 1:
        raise InputError("level", f"level must be a number strictly between 0 and 1; got level={level!r}. "
                                  f"Use e.g. level=0.95 for 95% intervals.")
    return float(level)


def _names(names, k, default, what):
    if names is None:
        return default
    names = tuple(str(v) for v in names)
    if len(names) != k:
        raise InputError(what, f"{what} must have {k} entries; got {len(names)}: {list(names)[:10]}.")
    return names


def _moments(state, d):
    """(mean_x, mean_y, Sxx, Syy) as float64 NumPy arrays, centred, of either state form."""
    mx = np.asarray(state.mean_x, dtype=np.float64)
    my = np.asarray(state.mean_y, dtype=np.float64)
    if hasattr(state, "r"):
        r = np.asarray(state.r, dtype=np.float64)
        S = r.T @ r
        return mx, my, S[:d, :d], S[d:, d:]
    return mx, my, np.asarray(state.sxx, dtype=np.float64), np.asarray(state.syy, dtype=np.float64)


def _gradient_state(batches, d, m):
    """State of a fit that has none (gradient solvers): one Gram pass with jaxlm.core.state."""
    import jax
    import jax.numpy as jnp

    from ..core import state as st
    from ..core.precision import x64_scope

    with x64_scope("float64"):
        s = st.accumulate(((jnp.asarray(X, jnp.float64), jnp.asarray(Y, jnp.float64).reshape(len(X), -1),
                            jnp.asarray(w, jnp.float64)) for X, Y, w in batches()), d, m)
        return jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float64), s)


def _sse_pass(batches, coef, intercept):
    sse = np.zeros(coef.shape[0])
    for X, Y, w in batches():
        E = np.asarray(Y, dtype=np.float64).reshape(len(X), -1) - (np.asarray(X, np.float64) @ coef.T + intercept)
        sse += np.asarray(w, dtype=np.float64) @ (E * E)
    return sse


def _check_refine(refine):
    if refine not in ("auto", True, False):
        raise InputError("refine", f"refine must be 'auto', True or False; got refine={refine!r}.")
    return refine


def pass_plan(solution, *, fit_intercept: bool, weights_kind: str = "frequency", alpha: float = 0.0,
              robust: bool = True, refine: bool | str = "auto") -> _pass.PassPlan:
    """The plan of the one extra pass over the data for an exact, unpenalised ``solution``.

    For fits whose data live elsewhere (Dask partitions, a stream): evaluate
    ``jaxlm.inference.block_sums(plan, X, Y, w)`` on every block, merge the results with
    ``PassSums.merge`` (associative and commutative: a tree reduction is fine) and pass the
    total as ``regression_results(solution, ..., sums=total)`` with the same keywords.
    The plan holds the coefficients, the state's means and the factor: it is small and
    picklable.
    """
    weights_kind = check_choice("weights_kind", weights_kind, WEIGHTS_KINDS)
    refine = _check_refine(refine)
    if solution.factor is None or solution.state is None or float(alpha) > 0:
        raise InputError("solution", "pass_plan needs an exact, unpenalised fit (alpha=0 and an exact solver): "
                                     "ridge and gradient fits have no inferential statistics to compute.")
    coef = np.atleast_2d(np.asarray(solution.coef, dtype=np.float64))
    m, d = coef.shape
    state = solution.state
    wsum = float(np.asarray(state.wsum))
    count = float(np.asarray(state.count))
    analytic = weights_kind == "analytic"
    df_resid = (count if analytic else wsum) - int(solution.rank) - int(bool(fit_intercept))
    cond = float(solution.condition_number)
    # (a rank-deficient pseudo-inverse is not refined: I − H H⁺ is the null-space projector)
    gram = int(solution.rank) == d and (refine is True or (refine == "auto" and cond > REFINE_COND
                                                           and count * d * d <= REFINE_BUDGET))
    shift = np.asarray(state.mean_x, dtype=np.float64) if fit_intercept else np.zeros(d)
    intercept = np.asarray(solution.intercept, dtype=np.float64).reshape(m) if fit_intercept else np.zeros(m)
    return _pass.PassPlan(coef, intercept, shift, wsum, bool(fit_intercept), analytic, solution.factor,
                          bool(robust) and df_resid > 0, bool(gram))


def regression_results(solution, *, fit_intercept: bool, weights_kind: str = "frequency", alpha: float = 0.0,
                       batches: Batches | None = None, feature_names: Sequence[str] | None = None,
                       target_names: Sequence[str] | None = None, robust: bool = True,
                       refine: bool | str = "auto", sums: _pass.PassSums | None = None
                       ) -> tuple[RegressionResults, ...]:
    """Regression statistics of a fitted linear model, one :class:`RegressionResults` per target.

    Parameters
    ----------
    solution : jaxlm.core.solution.Solution
        The fit. Exact solvers carry the merged state, the measured SSE and the factor of
        the normal matrix, from which everything is read. Gradient solutions carry none
        of these: their results hold the coefficients (and, given ``batches``, R² and the
        counts) but no inferential statistics.
    fit_intercept : bool
        Whether the model has an intercept (as passed to the solver).
    weights_kind : {"frequency", "analytic"}
        Meaning of the weights (see the module docstring): frequency weights count rows
        (``n_obs = Σw``, ``df_resid = Σw − p``); analytic weights are inverse variances
        (``n_obs`` = rows with ``w > 0``, ``df_resid = n_obs − p``, statsmodels ``WLS``).
    alpha : float
        The ridge penalty of the fit. For ``alpha > 0`` no inferential statistics are given
        (the ridge estimator is biased: its t and F statistics mean nothing).
    batches : callable, optional
        The zero-argument callable yielding ``(X, Y, w)`` float64 blocks that the fit used
        (zero-weight padding rows are ignored). Enables one extra pass computing mergeable
        sums: HC0–HC3 covariances, ``Σ log w`` (analytic log-likelihood) and, when the design
        is ill-conditioned, a double-double Gram that refines ``(XᵀWX)⁻¹`` to full precision.
        It is not stored (results stay small and picklable).
    feature_names : sequence of d str, optional (default "x0", "x1", ...)
    target_names : sequence of m str, optional (default "y" for one target, else "y0", "y1", ...)
    robust : bool, default True
        Compute the HC covariances in the pass (3·m extra p×p Gram updates per batch).
    refine : {"auto", True, False}
        Refine ``(XᵀWX)⁻¹`` with the double-double Gram (needs ``batches``). "auto" does so
        when the condition number exceeds ``REFINE_COND`` and ``n·d² ≤ REFINE_BUDGET``.
    sums : PassSums, optional
        The pass computed elsewhere (e.g. on Dask workers): ``plan = pass_plan(solution, ...)``
        with the same keywords, ``block_sums(plan, X, Y, w)`` per block, merged with
        ``PassSums.merge``. Replaces ``batches``.

    Returns
    -------
    tuple of RegressionResults, one per target (length m; ``[0]`` for a single target).

    Notes
    -----
    Degenerate cases:

    - ``df_resid ≤ 0`` (as many parameters as observations): σ̂², standard errors, t, p,
      intervals, F and adjusted R² are NaN (never inf), with :attr:`~RegressionResults.inference_note`.
    - Perfect fit: an SSE below the rounding floor of the fitted values,
      ``(ε · (|β₀| √Σw + Σ_j |β_j| ‖x_j‖_w))²`` — the SSE that rounding the coefficients to
      float64 alone would cause — is indistinguishable from zero and is set to exactly 0
      (NIST Wampler1: SDs exactly 0). A note records the measured value.
    - Rank deficiency: the pseudo-inverse (the solver's minimum-norm factor) gives the
      covariance of the estimable coefficients exactly; coefficients involved in the
      collinearity (``solution.aliased``, and the intercept when a null direction moves it)
      are not estimable and get NaN inference. df_model is the rank.
    """
    weights_kind = check_choice("weights_kind", weights_kind, WEIGHTS_KINDS)
    refine = _check_refine(refine)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise InputError("fit_intercept", f"fit_intercept must be True or False; got fit_intercept={fit_intercept!r}.")
    fit_intercept = bool(fit_intercept)
    alpha = float(alpha)
    coef = np.atleast_2d(np.asarray(solution.coef, dtype=np.float64))
    m, d = coef.shape
    intercept = np.asarray(solution.intercept, dtype=np.float64).reshape(m) if fit_intercept else np.zeros(m)
    p = d + int(fit_intercept)
    feats = _names(feature_names, d, tuple(f"x{j}" for j in range(d)), "feature_names")
    targets = _names(target_names, m, ("y",) if m == 1 else tuple(f"y{k}" for k in range(m)), "target_names")
    terms = (("intercept",) if fit_intercept else ()) + feats
    analytic = weights_kind == "analytic"
    notes: list[str] = []

    state = solution.state
    factor = solution.factor
    sse = None if solution.sse is None else np.asarray(solution.sse, dtype=np.float64).reshape(m)
    exact = state is not None and factor is not None and sse is not None
    if state is None and batches is not None and solution.factor is None:
        state = _gradient_state(batches, d, m)
        sse = _sse_pass(batches, coef, intercept)

    # why inferential statistics are not given
    reason = None
    if not exact:
        reason = (f"solver {solution.solver!r} is iterative: its coefficients approximate the least-squares "
                  f"solution (converged={bool(solution.converged)}, gradient norm {solution.grad_norm:.2g}) and "
                  f"carry no factor of XᵀWX, so standard errors would describe a different estimate. Refit "
                  f"with an exact solver ('auto', 'qr', 'cholesky', 'svd') for inference.")
    elif alpha > 0:
        reason = (f"ridge fit (alpha={alpha:g}): the penalised estimator is biased and its sampling "
                  f"distribution is not the t/F of least squares, so standard errors, t, p, intervals and F "
                  f"would mean nothing. Refit with alpha=0 for inference.")

    # counts and sums of squares, from the state
    if state is not None:
        wsum = float(np.asarray(state.wsum))
        count = float(np.asarray(state.count))
        mean_x, mean_y, sxx_c, syy_c = _moments(state, d)
        if fit_intercept:
            sst = np.diag(syy_c).copy()
            gram_diag = np.diag(sxx_c).copy()
        else:
            sst = np.diag(syy_c) + wsum * mean_y**2
            gram_diag = np.diag(sxx_c) + wsum * mean_x**2
        sd = np.sqrt(np.maximum(np.diag(sxx_c), 0.0) / wsum) if wsum > 0 else np.full(d, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            cv = sd / np.abs(mean_x)
        norms = np.sqrt(np.maximum(np.diag(sxx_c) + wsum * mean_x**2, 0.0))
    else:
        wsum = count = math.nan
        mean_x = np.zeros(d)
        sst = np.full(m, np.nan)
        gram_diag = np.full(d, np.nan)
        cv = np.full(d, np.nan)
        norms = np.full(d, np.nan)
        if sse is None:
            sse = np.full(m, np.nan)
        notes.append("No least-squares state: pass batches= to get R² and counts for a gradient fit.")
    n_obs = count if analytic else wsum
    rank = int(solution.rank) if exact else d
    df_model = float(rank)
    df_resid = n_obs - rank - int(fit_intercept)
    shift = mean_x if fit_intercept else np.zeros(d)

    # perfect fit: SSE below the float64 rounding floor of the fitted values is zero
    if state is not None:
        floor = (EPS * (np.abs(intercept) * math.sqrt(max(wsum, 0.0)) + np.abs(coef) @ norms)) ** 2
        zero = (sse <= floor) & (sse > 0)
        for k in np.flatnonzero(zero):
            notes_k = (f"Perfect fit: the measured SSE {sse[k]:.3g} is below {floor[k]:.3g}, the SSE that "
                       f"rounding the coefficients to float64 alone causes; it is treated as exactly 0.")
            notes.append(notes_k if m == 1 else f"[{targets[k]}] " + notes_k)
        sse = np.where(sse <= floor, 0.0, sse)

    if reason is None and not df_resid > 0:
        reason = (f"no residual degrees of freedom: df_resid = n_obs − parameters = {n_obs:g} − "
                  f"{rank + fit_intercept}"
                  f" = {df_resid:g}, so the residual variance σ² — and with it standard errors, t, p, intervals "
                  f"and F — is undefined (reported as NaN, not inf). Add observations or remove terms.")

    # estimability under rank deficiency
    estimable = np.ones(p, dtype=bool)
    if exact and rank < d:
        off = int(fit_intercept)
        for j in solution.aliased:
            estimable[off + j] = False
        if fit_intercept and factor.v is not None:
            from scipy.linalg import null_space
            null = null_space(factor.v.T) / factor.scale[:, None]  # null directions of Sxx
            if null.size:
                dot = np.abs(mean_x @ null)
                mag = np.abs(mean_x) @ np.abs(null)
                if np.any(dot > 1e-8 * mag):
                    estimable[0] = False
        names = [terms[j] for j in np.flatnonzero(~estimable)]
        notes.append(f"Rank deficient: rank {rank} < {d} features; the design does not identify "
                     f"{', '.join(names) or 'a combination of coefficients'}, reported as NaN. Estimable "
                     f"coefficients' covariances use the pseudo-inverse (exact for estimable quantities).")

    # the bread (X̃ᵀWX̃)⁻¹, from the factor (refined in double-double if worthwhile)
    design = _Design(None, None, shift, wsum)
    hc = None
    hc_note = "no batches were given."
    steps = 0
    sum_log_w = 0.0 if (state is not None and count == wsum and float(np.asarray(state.wsum2)) == count) else math.nan
    if exact and alpha == 0:
        solve = factor.solve
        cond = float(solution.condition_number)
        plan = pass_plan(solution, fit_intercept=fit_intercept, weights_kind=weights_kind, alpha=alpha,
                         robust=robust, refine=refine)
        if sums is None and batches is not None and (plan.robust or plan.gram or plan.analytic):
            sums = _pass.data_pass(batches, plan)
        if sums is not None:
            sum_log_w = sums.sum_log_w
            if refine == "auto" and cond > REFINE_COND and rank == d and sums.gram_dd is None:
                notes.append(f"(XᵀWX)⁻¹ was not refined (n·d² = {count * d * d:.3g} > {REFINE_BUDGET:.3g}); with "
                             f"condition number {cond:.3g} expect about "
                             f"{max(0.0, 15.6 - 2 * math.log10(cond)):.0f} correct digits in the standard errors.")
        eye = np.eye(d)
        if sums is not None and sums.gram_dd is not None:
            h_dd, g_dd = sums.gram_dd, sums.gsum_dd
            if fit_intercept:
                # exact centring: Σ w (x − x̄)(x − x̄)ᵀ = Σ w (x − s)(x − s)ᵀ − g gᵀ / Σw,
                # g = Σ w (x − s)
                g = g_dd[0] + g_dd[1]
                h_dd = dd.add(h_dd, (-np.outer(g, g) / wsum, np.zeros((d, d))))
            sxx_inv, steps = _pass.refine_inverse(solve, h_dd, (eye, np.zeros((d, d))))
            if fit_intercept:
                xbar_dd = dd.add((shift, np.zeros(d)), dd.two_sum(g / wsum, np.zeros(d)))
                u, _ = _pass.refine_inverse(solve, h_dd, (xbar_dd[0][:, None], xbar_dd[1][:, None]))
                u = u[:, 0]
                q = _pass.dd_dot(xbar_dd, u)
        else:
            sxx_inv = solve(eye)
            if fit_intercept:
                u = solve(shift[:, None])[:, 0]
                q = float(shift @ u)
        sxx_inv = 0.5 * (sxx_inv + sxx_inv.T)
        if fit_intercept:
            bread = np.empty((p, p))
            bread[0, 0] = 1.0 / wsum + q
            bread[0, 1:] = bread[1:, 0] = -u
            bread[1:, 1:] = sxx_inv
        else:
            bread = sxx_inv
        design = _Design(bread, sxx_inv, shift, wsum)
        if sums is not None and sums.meat is not None:
            hc = _hc_covs(sums, bread, shift, fit_intercept, n_obs, df_resid)
            if sums.max_leverage >= 1.0 - 1e-12:
                notes.append(f"An observation has leverage {sums.max_leverage:.6g} ≈ 1: HC2 and HC3 are undefined "
                             f"(NaN).")
        elif sums is not None and not df_resid > 0:
            hc_note = "the residual degrees of freedom are zero."  # (cov returns NaN first)
        elif sums is not None:
            hc_note = "robust=False was passed (the pass computed no HC sums)."
        with np.errstate(divide="ignore", invalid="ignore"):
            vif = gram_diag * np.diag(sxx_inv)
        vif[[j for j in range(d) if not estimable[int(fit_intercept) + j]]] = np.inf
    else:
        vif = np.full(d, np.nan)
    if analytic and math.isnan(sum_log_w) and reason is None:
        notes.append("The analytic-weights log-likelihood needs Σ log w from a pass over the data: pass batches= "
                     "(log-likelihood, AIC and BIC are NaN).")

    out = []
    for k in range(m):
        coef_k = np.concatenate([[intercept[k]], coef[k]]) if fit_intercept else coef[k].copy()
        hc_k = None if hc is None else {kind: _readonly(v[k]) for kind, v in hc.items()}
        notes_k = tuple(n for n in notes if m == 1 or not n.startswith("[") or n.startswith(f"[{targets[k]}]"))
        out.append(RegressionResults(
            coef=_readonly(coef_k), term_names=terms, target_name=targets[k], n_obs=float(n_obs),
            df_model=df_model, df_resid=float(df_resid), sse=float(sse[k]), sst=float(sst[k]),
            condition_number=float(solution.condition_number), fit_intercept=fit_intercept,
            weights_kind=weights_kind, solver=str(solution.solver), alpha=alpha,
            estimable=_readonly_bool(estimable), inference_note=reason, notes=notes_k, vif=_readonly(vif),
            cv=_readonly(cv), _design=_Design(_readonly(design.bread), _readonly(design.sxx_inv),
                                              _readonly(design.mean_x), design.wsum),
            cov_refinement_steps=steps, _hc=hc_k, _hc_note=hc_note, _sum_log_w=float(sum_log_w)))
    return tuple(out)


def _readonly_bool(a):
    a = np.array(a, dtype=bool, copy=True)
    a.setflags(write=False)
    return a


def _hc_covs(sums, bread, shift, fit_intercept, n_obs, df_resid):
    """HC0–HC3 (m, p, p) from the meats in centred coordinates.

    The pass used ``z = [1, x − s]``; with ``A = [[1, −sᵀ], [0, I]]`` (so that ``z = Aᵀ x̃``)
    the meat about the origin is ``A⁻ᵀ M_z A⁻¹``, and ``B M B`` is invariant to the choice.
    """
    p = bread.shape[0]
    meats = sums.meat  # (3, m, p, p)
    if fit_intercept:
        # x̃ = A⁻ᵀ z  with  A⁻ᵀ = [[1, 0], [s, I]]
        T = np.eye(p)
        T[1:, 0] = shift
        meats = T @ meats @ T.T
    covs = bread @ meats @ bread  # (3, m, p, p)
    covs = 0.5 * (covs + np.swapaxes(covs, -1, -2))
    hc0, hc2, hc3 = covs
    scale = n_obs / df_resid if df_resid > 0 else math.nan
    return {"HC0": hc0, "HC1": hc0 * scale, "HC2": hc2, "HC3": hc3}
