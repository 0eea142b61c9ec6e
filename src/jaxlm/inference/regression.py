"""One target's regression statistics: :class:`RegressionResults` (immutable)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..core import special  # t and F without SciPy (``import scipy.special``: ~0.1 s of a CLI fit)
from ..core.errors import InputError, check_choice
from ..core.ranges import ldexp as _ldexp
from ..core.ranges import to_data as _to_data
from ._common import COV_KINDS, CoefTable, _check_level, _Design, _Scaled


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

    _REGRESSION_RESULTS = True  # see jaxlm.inference._common.is_results

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
    _hc: dict | None = field(repr=False)           # {"HC0": (p, p), ..., "HC3": (p, p)} covariances, scaled
    _hc_note: str | None = field(repr=False)       # why HC covariances are unavailable
    _sum_log_w: float = field(repr=False)          # Σ log w over rows with w > 0 (NaN if unknown)
    _scaled: _Scaled = field(repr=False, default=None)  # the statistics in the state's units
    #: the covariance kind that :meth:`cov`, :meth:`coef_table`, the standard errors, t, p,
    #: intervals and the summary use when none is named (``LinearRegression(cov_type=...)``)
    cov_type: str = "nonrobust"
    _extra: dict | None = field(repr=False, default=None)  # {"cluster"|"HAC": (cov (p, p) data units, df, label)}

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
        """σ̂² = SSE / df_resid (the residual variance; NaN when df_resid ≤ 0 or no inference;
        inf (NaN), with a note, when it lies above (below) the float64 range although σ̂ does not)."""
        if self._design.bread is None or not self.df_resid > 0:
            return math.nan
        return float(_to_data(self._scale_s, self._scaled.log2_sse))

    @property
    def _scale_s(self) -> float:
        """σ̂² in the state's units (``scale = _scale_s·2^log2_sse``)."""
        return self._scaled.sse / self.df_resid

    @property
    def residual_std(self) -> float:
        """σ̂ = sqrt(SSE / df_resid), SSE = Σ w e² (NaN when df_resid ≤ 0, ridge or gradient fits)."""
        if self._design.bread is None or not self.df_resid > 0:
            return math.nan
        return float(_ldexp(math.sqrt(self._scale_s), self._scaled.log2_sse / 2)) if self._scale_s >= 0 else math.nan

    # ------------------------------------------------------------------ covariance
    def cov(self, kind: str | None = None) -> np.ndarray:
        """Covariance matrix of :attr:`coef`, shape (p, p), in the order of ``coef``; ``kind``
        defaults to :attr:`cov_type`.

        ``B = (X̃ᵀWX̃)⁻¹`` (the pseudo-inverse under rank deficiency), ``e`` the residuals:

        - ``"nonrobust"``: ``σ̂² B``.
        - ``"HC0"``: ``B (Σ a_i x̃_i x̃_iᵀ) B`` with ``a_i = w_i e_i²`` (frequency weights: the
          White estimator of the repeated rows) or ``a_i = w_i² e_i²`` (analytic weights: the
          White estimator of the whitened rows ``√w_i x̃_i``, ``√w_i e_i``, as statsmodels WLS).
        - ``"HC1"``: ``HC0 · n_obs / df_resid``.
        - ``"HC2"``: as HC0 with ``a_i / (1 − h_i)``; ``"HC3"``: with ``a_i / (1 − h_i)²``.
          Leverage ``h_i = x̃_iᵀ B x̃_i`` (frequency) or ``w_i x̃_iᵀ B x̃_i`` (analytic).

        - ``"cluster"``: one- or two-way cluster-robust CR1 (:mod:`jaxlm.inference.cluster`);
          ``"HAC"``: Newey–West (:mod:`jaxlm.inference.hac`) — computed by the estimator's
          ``cov_type`` from the cluster column(s) or the rows in time order.

        The HC kinds need the extra data pass over the rows; a kind that was not computed raises
        an InputError saying how to get it. Rows and columns of non-estimable coefficients are NaN; the
        whole matrix is NaN for ridge and gradient fits and when ``df_resid ≤ 0``.
        """
        lc = self._scaled.lc
        return _to_data(self._cov_s(kind), lc[:, None] + lc[None, :])

    def _prediction_sd(self, X: np.ndarray, kind: str, wn: np.ndarray) -> np.ndarray:
        """sqrt(Var) of the prediction at rows ``X`` (n, d) in the data's units (see
        :func:`jaxlm.inference.predict_interval`): ``Var = σ̂² (x̃ᵀ(X̃ᵀWX̃)⁻¹x̃) (+ σ̂²/w_new)``,
        evaluated in the state's units, where neither σ̂² nor (X̃ᵀWX̃)⁻¹ can leave the float64
        range, so that the result is finite wherever the standard deviation itself is."""
        sc = self._scaled
        s2 = self._scale_s if self.df_resid > 0 else math.nan  # σ̂²·2^-(uw + 2uy)
        if self.cov_type == "nonrobust":
            Xc = _ldexp(X, -sc.ux[None, :]) - sc.mean_x[None, :]
            v = np.einsum("ij,jk,ik->i", Xc, sc.sxx_inv, Xc)
            if self.fit_intercept:
                v = v + 1.0 / sc.wsum
            mean_var = s2 * np.maximum(v, 0.0)
        else:  # x̃ᵀ V x̃ under the robust covariance (in the state's units)
            Z = _ldexp(X, -sc.ux[None, :])
            if self.fit_intercept:
                Z = np.column_stack([np.ones(len(Z)), Z])
            mean_var = np.maximum(np.einsum("ij,jk,ik->i", Z, self._cov_s(None), Z), 0.0)
        var = mean_var + (_ldexp(s2, sc.uw) / wn if kind == "prediction" else 0.0)
        return _ldexp(np.sqrt(var), sc.uy)

    def _cov_s(self, kind: str | None) -> np.ndarray:
        """:meth:`cov` in the state's units."""
        kind = check_choice("cov", self.cov_type if kind is None else kind, COV_KINDS)
        p = self.n_params
        if self._design.bread is None:
            return np.full((p, p), np.nan)
        if kind in ("cluster", "HAC"):
            if not self._extra or kind not in self._extra:
                how = ("LinearRegression(cov_type='cluster') and fit(X, y, groups=...)" if kind == "cluster" else
                       "LinearRegression(cov_type='HAC') on rows in time order")
                raise InputError("cov", f"cov={kind!r} was not computed for this fit (its covariance needs a pass "
                                        f"over the data with {'the cluster column' if kind == 'cluster' else 'the rows in order'}). "
                                        f"Fit with {how}, or use cov='nonrobust'.")
            lc = self._scaled.lc
            out = np.array(_ldexp(self._extra[kind][0], -(lc[:, None] + lc[None, :])), copy=True)
        elif kind == "nonrobust":
            out = self._scale_s * self._scaled.bread if self.df_resid > 0 else np.full((p, p), np.nan)
        elif not self.df_resid > 0:
            out = np.full((p, p), np.nan)
        elif self._hc is None:
            raise InputError("cov", f"cov={kind!r} (heteroskedasticity-robust) was not computed for this fit: "
                                    f"{self._hc_note} Fit with LinearRegression(cov_type={kind!r}) (or robust=True), "
                                    f"or use cov='nonrobust'.")
        else:
            out = self._hc[kind]
        out = np.array(out, copy=True)
        bad = ~self.estimable
        out[bad, :] = np.nan
        out[:, bad] = np.nan
        return out

    def coef_table(self, *, cov: str | None = None, level: float = 0.95) -> CoefTable:
        """Coefficient, standard error, t, p and the ``level`` confidence interval, for ``cov``
        (default :attr:`cov_type`).

        ``se = sqrt(diag(cov))``, ``t = coef / se``, ``p = 2 · P(T > |t|)`` with
        ``T ~ t(df)``, interval ``coef ± t_{(1+level)/2, df} · se`` (t quantiles for every
        covariance kind, as statsmodels' ``use_t=True``); ``df = df_resid``, except under
        clustering, ``G − 1`` (statsmodels' ``df_resid_inference``, fixest).
        """
        level = _check_level(level)
        c = self._cov_s(cov)
        se_s = np.sqrt(np.maximum(np.diag(c), 0.0))  # NaN stays NaN
        se = _ldexp(se_s, self._scaled.lc)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = _ldexp(self.coef, -self._scaled.lc) / se_s
        df = self.inference_df(cov)
        if df > 0:
            p = special.t_sf2(df, t)  # 2·P(T > |t|), = 2·scipy.special.stdtr(df, −|t|)
            q = special.stdtrit(df, 0.5 + level / 2.0)
        else:
            p = np.full_like(t, np.nan)
            q = math.nan
        return CoefTable(self.coef, se, t, p, self.coef - q * se, self.coef + q * se)

    def inference_df(self, cov: str | None = None) -> float:
        """Degrees of freedom of the t and F references under ``cov`` (default :attr:`cov_type`):
        ``df_resid``, or ``G − 1`` for cluster-robust covariances."""
        kind = self.cov_type if cov is None else cov
        if kind in ("cluster", "HAC") and self._extra and kind in self._extra:
            return float(self._extra[kind][1])
        return self.df_resid

    @property
    def std_errors(self) -> np.ndarray:
        """se_j = sqrt(V_jj) under :attr:`cov_type` (non-robust: ``V = σ̂² (X̃ᵀWX̃)⁻¹``)."""
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
        """(p, 2) array of [lower, upper] = β̂ ∓ t_{(1+level)/2, df} · se (under :attr:`cov_type`)."""
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
        sse, sst = self._scaled.sse, self._scaled.sst
        return 1.0 - sse / sst if sst > 0 else math.nan

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
        sse, sst = self._scaled.sse, self._scaled.sst
        num = (sst - sse) / self.df_model
        with np.errstate(divide="ignore"):
            return float(np.float64(num) / np.float64(sse / self.df_resid))

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
            # log(SSE / n) with SSE = sse_s·2^log2_sse (which may lie beyond float64)
            log_sse = float(np.log(np.float64(self._scaled.sse))) + self._scaled.log2_sse * math.log(2)
            llf = -0.5 * n * (math.log(2 * math.pi) + log_sse - math.log(n) + 1.0)
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
    def summary(self, *, level: float = 0.95, cov: str | None = None):
        """:func:`jaxlm.inference.summary` of this target (``cov`` default :attr:`cov_type`)."""
        from .summary import summary
        return summary(self, level=level, cov=self.cov_type if cov is None else cov)

    def wald_test(self, restrictions, *, cov: str | None = None):
        """Wald/F test of linear restrictions ``R b = q`` under ``cov`` (default :attr:`cov_type`):
        ``"x1 = x2, x3 = 0"`` (term names as in :attr:`term_names`), a matrix ``R`` or ``(R, q)``;
        ``F(J, df)`` with ``df`` as the t tests (statsmodels ``f_test``;
        :func:`jaxlm.inference.hypothesis.wald_test`)."""
        from .hypothesis import wald_test
        return wald_test(self.coef, self.cov(cov), restrictions, names=self.term_names, df=self.inference_df(cov))

    f_test = wald_test

    def model_f_test(self, cov: str | None = None) -> tuple[float, float]:
        """``(F, p)`` of "all slopes are zero" (every coefficient without an intercept) under ``cov``
        (default :attr:`cov_type`): the classical :attr:`f_statistic` for ``"nonrobust"``, else the
        Wald F of that restriction under the robust covariance with :meth:`inference_df`
        denominator degrees of freedom — statsmodels' ``fvalue``/``f_pvalue`` of a robust fit."""
        kind = self.cov_type if cov is None else cov
        if kind == "nonrobust":
            return self.f_statistic, self.f_pvalue
        p = len(self.term_names)
        R = np.eye(p)[int(self.fit_intercept):]
        if not self._inferential or not self.df_model > 0 or not len(R):
            return math.nan, math.nan
        try:
            w = self.wald_test(R, cov=kind)
        except InputError:  # aliased coefficients, a zero covariance: no test
            return math.nan, math.nan
        return float(w.statistic), float(w.p)

    def t_test(self, restrictions, *, cov: str | None = None):
        """One t test per restriction (statsmodels ``t_test``; :func:`jaxlm.inference.hypothesis.t_test`)."""
        from .hypothesis import t_test
        return t_test(self.coef, self.cov(cov), restrictions, names=self.term_names, df=self.inference_df(cov))

    def with_cov_type(self, cov_type: str, extra: dict | None = None) -> RegressionResults:
        """These results with ``cov_type`` as the default covariance kind; ``extra`` adds computed
        covariances ``{"cluster"|"HAC": (cov (p, p) in the data's units, df, label)}``. The kind
        must be available (an InputError says how to get it otherwise)."""
        out = replace(self, cov_type=check_choice("cov_type", cov_type, COV_KINDS),
                      _extra={**(self._extra or {}), **(extra or {})})
        out._cov_s(None)  # raises if the kind was not computed
        return out

    def predict_interval(self, X_new, *, kind: str = "confidence", level: float = 0.95, weights=None):
        """:func:`jaxlm.inference.predict_interval` of this target."""
        from .predict import predict_interval
        return predict_interval(self, X_new, kind=kind, level=level, weights=weights)

    def __repr__(self) -> str:
        return (f"RegressionResults(target={self.target_name!r}, p={self.n_params}, n_obs={self.n_obs:g}, "
                f"r_squared={self.r_squared:.6g}, weights_kind={self.weights_kind!r}, solver={self.solver!r})")
