"""Absorbed fixed effects from a formula: ``y ~ x1 + x2 | firm + year`` (fixest's syntax).

The part before ``|`` is a formula of the closed grammar (:mod:`jaxlm.io.grammar`); after it, one
or more column names joined by ``+`` (bare or in backticks) — the factors whose dummies are
absorbed, never formed (:mod:`jaxlm.core.absorb`: one factor exactly in one pass, several by
alternating projections to ``tol``). The coefficients of ``x`` are those of the regression with
full dummy sets; the standard errors are that regression's (``fixef_k="full"``, fixest's
``fixef.K = "full"``), or with ``fixef_k="nested"`` a factor nested in the cluster column counts
one parameter (fixest's and pyfixest's default under clustering). Covariances: ``"nonrobust"``,
``"cluster"`` (``cluster=`` column(s); CR1, ``G − 1`` degrees of freedom) or ``"HAC"``.

:func:`fit_absorbed` takes a table in memory (pandas, polars or pyarrow) and returns an
:class:`AbsorbedModel`: ``coef_``, ``results_`` (:class:`AbsorbedResults`: standard errors, t, p,
intervals, ``wald_test``; usable by :func:`jaxlm.table`), ``summary()`` listing the absorbed
factors and their level counts, ``fixef()`` and ``predict(table)``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import InputError, NonFiniteData, check_choice
from .frame_arrays import check_finite, check_weights, frame_error, frame_matrices

_NAME = re.compile(r"\s*(`[^`]+`|[A-Za-z_][A-Za-z0-9_.]*)\s*")


def split_formula(formula: str) -> tuple[str, tuple[str, ...]]:
    """``("y ~ x1 + x2", ("firm", "year"))`` from ``"y ~ x1 + x2 | firm + year"``; the fixed-effect
    part may hold only column names joined by ``+`` (an InputError otherwise)."""
    if not isinstance(formula, str) or formula.count("|") != 1:
        raise InputError("formula", f"formula must have one '|' before the absorbed fixed effects, as "
                                    f"'y ~ x1 + x2 | firm + year'; got formula={formula!r}.")
    main, fe = formula.split("|")
    names = []
    for piece in fe.split("+"):
        m = _NAME.fullmatch(piece)
        if not m:
            raise InputError("formula", f"the fixed effects after '|' must be column names joined by '+' (e.g. "
                                        f"'| firm + year'); got {piece.strip()!r} in formula={formula!r}.")
        names.append(m.group(1).strip("`"))
    if len(set(names)) != len(names):
        raise InputError("formula", f"formula must name each fixed effect once after '|'; got {names}.")
    from ..io.grammar import check_formula

    check_formula(main)
    return main.strip(), tuple(names)


@dataclass(frozen=True, eq=False)
class AbsorbedResults:
    """Statistics of an absorbed fit (one target): the slopes' table under ``cov_type``."""

    term_names: tuple
    coef: np.ndarray
    n_obs: float
    df_resid: float
    sse: float
    r_squared: float
    r2_within: float
    fixed_effects: tuple
    n_levels: tuple
    target_name: str
    cov_type: str
    _covs: dict = field(repr=False)     # kind -> (p, p)
    _dfs: dict = field(repr=False)      # kind -> degrees of freedom of t and F
    _labels: dict = field(repr=False)   # kind -> description

    def cov(self, kind: str | None = None) -> np.ndarray:
        kind = self.cov_type if kind is None else kind
        if kind not in self._covs:
            raise InputError("cov", f"cov={kind!r} was not computed for this fit; fit with cov_type={kind!r} (and "
                                    f"cluster= for 'cluster'), or use cov={self.cov_type!r}.")
        return self._covs[kind].copy()

    def inference_df(self, cov: str | None = None) -> float:
        return float(self._dfs[self.cov_type if cov is None else cov])

    def coef_table(self, *, cov: str | None = None, level: float = 0.95):
        from scipy import special

        from ..inference._common import CoefTable, _check_level

        level = _check_level(level)
        se = np.sqrt(np.maximum(np.diag(self.cov(cov)), 0.0))
        df = self.inference_df(cov)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = self.coef / se
        p = 2.0 * special.stdtr(df, -np.abs(t)) if df > 0 else np.full_like(t, np.nan)
        q = special.stdtrit(df, 0.5 + level / 2.0) if df > 0 else math.nan
        return CoefTable(self.coef, se, t, p, self.coef - q * se, self.coef + q * se)

    @property
    def std_errors(self):
        return self.coef_table().std_errors

    @property
    def p_values(self):
        return self.coef_table().p_values

    def conf_int(self, level: float = 0.95) -> np.ndarray:
        tab = self.coef_table(level=level)
        return np.column_stack([tab.lower, tab.upper])

    def wald_test(self, restrictions, *, cov: str | None = None):
        """Wald/F test of linear restrictions on the slopes (:func:`jaxlm.inference.hypothesis.wald_test`)."""
        from ..inference.hypothesis import wald_test
        return wald_test(self.coef, self.cov(cov), restrictions, names=self.term_names, df=self.inference_df(cov))

    def summary(self, *, level: float = 0.95) -> str:
        """The coefficient table with the absorbed factors, their level counts, N, R² and within R²."""
        tab = self.coef_table(level=level)
        width = max([len(t) for t in self.term_names] + [9])
        lines = [f"Absorbed fixed effects regression: {self.target_name}",
                 "Fixed effects: " + ", ".join(f"{f} ({n:,} levels)" for f, n in zip(self.fixed_effects, self.n_levels)),
                 f"Observations: {self.n_obs:g}   R²: {self.r_squared:.6g}   within R²: {self.r2_within:.6g}",
                 f"Standard errors: {self._labels[self.cov_type]}",
                 f"{'':{width}}  {'coef':>12} {'std err':>12} {'t':>9} {'P>|t|':>9} {'[' + format((1 - level) / 2, '.3g'):>10}"
                 f" {format((1 + level) / 2, '.3g') + ']':>10}"]
        for i, name in enumerate(self.term_names):
            lines.append(f"{name:{width}}  {tab.coef[i]:12.6g} {tab.std_errors[i]:12.6g} {tab.t_values[i]:9.4g} "
                         f"{tab.p_values[i]:9.3g} {tab.lower[i]:10.5g} {tab.upper[i]:10.5g}")
        return "\n".join(lines)


class AbsorbedModel:
    """A fitted absorbed-fixed-effects model (see the module docstring)."""

    def __init__(self, coef, names, target, fe_names, tables, results, spec):
        self.coef_ = coef
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.target_name_ = target
        self.fixed_effects_ = fe_names
        self.results_ = results
        self.formula_ = spec
        self._tables = tables

    def summary(self, **kw) -> str:
        return self.results_.summary(**kw)

    def fixef(self) -> dict:
        """The estimated fixed effects per factor: ``{name: pandas.Series(level -> value)}`` (with
        several factors their levels are identified only up to constants that cancel in ``predict``)."""
        import pandas as pd

        d = len(self.coef_)
        beta = np.nan_to_num(self.coef_)
        return {f: pd.Series(t.alpha[:, d] - t.alpha[:, :d] @ beta, index=t.index, name=f)
                for f, t in zip(self.fixed_effects_, self._tables)}

    def predict(self, data) -> np.ndarray:
        """``x·β + Σ_f fe_f[level]`` for the rows of ``data``; a level not seen in fitting is refused."""
        df = _frame(data)
        X, _ = self.formula_.encode(_arrow(df), targets=False)
        out = X @ np.nan_to_num(self.coef_)
        for name, values in self.fixef().items():
            codes = values.index.get_indexer(df[name].to_numpy())
            if np.any(codes < 0):
                row = int(np.flatnonzero(codes < 0)[0])
                raise InputError("data", f"data column {name!r} has a level the model was not fitted with: "
                                         f"{df[name].iloc[row]!r} at row {row}.")
            out = out + values.to_numpy()[codes]
        return out


def _frame(data):
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    raise InputError("data", f"data must be a pandas or polars DataFrame or a pyarrow Table; got "
                             f"{type(data).__name__}.")


def _arrow(df):
    import pyarrow as pa

    return pa.Table.from_pandas(df, preserve_index=False)


class _Rows:
    """The fit's rows on one driver: ``spec`` (the formula of the part before ``|``), ``n_rows``,
    and ``run(names)``: a driver over blocks ``(X, Y, w, *columns named)`` (factors, clusters);
    ``keyed(names)`` the same for the keyed passes (nesting, clusters): in memory one block, as
    per-block keyed sums and their merge cost as much as the rows when there are many clusters
    (those passes work in row chunks of their own). ``arrays`` (X, Y, w, {name: column}) for data
    in memory, None for a streamed file."""

    def __init__(self, spec, run, n_rows, arrays=None, keyed=None):
        self.spec, self.run, self.n_rows, self.arrays = spec, run, n_rows, arrays
        self.keyed = run if keyed is None else keyed


def _in_memory(df, main: str, names: tuple, weights) -> _Rows:
    from ..io.formula import FormulaSpec
    from ..io.sources import open_table
    from ..io.values import Block
    from ..reduce import memory
    from .stream_cov import no_void

    head = _arrow(df.iloc[:1])  # the column types: a formula of bare numeric columns needs no more of Arrow
    spec = FormulaSpec.from_source(main, open_table(head), weights=weights)
    if spec.is_bare(head, weights):  # views of the frame's columns (the passes read rows in chunks)
        arrays = frame_matrices(df, spec, weights, check=False)  # a bad value in X or y: the fit's sums tell
        if arrays is None:  # a missing, infinite or negative weight: its error
            frame_error(df, spec, weights)
        X, Y, w = arrays
    else:
        table = _arrow(df)
        spec = FormulaSpec.from_source(main, open_table(table), weights=weights)
        blk = no_void(spec.design("raise", weights)(Block(0, table)), complete=True)  # missing values, negative weights: errors
        X, Y, w = blk.X, blk.Y, blk.w
        check_finite(X, spec.features)
        check_finite(Y, spec.targets)
        check_weights(w, weights)
    cols = {c: df[c].to_numpy() for c in names}
    def run(order, rows=None):
        return memory.arrays_runner(X, Y, w, *(cols[c] for c in order), rows=rows)

    return _Rows(spec, run, len(df), (X, Y, w, cols), keyed=lambda order: run(order, rows=max(len(df), 1)))


def _finite_design(design, spec, weights):
    """``design`` (Block -> DesignBlock) that also refuses infinite values (streamed files)."""
    def checked(block):
        blk = design(block)
        if not blk.void:
            check_finite(blk.X, spec.features, blk.source_row)
            check_finite(blk.Y, spec.targets, blk.source_row)
            check_weights(blk.w, weights, blk.source_row)
        return blk

    return checked


def _streamed(source, main: str, names: tuple, weights) -> _Rows:
    """A file read block by block, once per pass (the first pass's blocks kept when small)."""
    from ..io.formula import FormulaSpec
    from .stream_cov import KeyedPasses
    from ..reduce.stream import KEEP_BYTES

    spec = FormulaSpec.from_source(main, source, weights=weights)
    columns = list(dict.fromkeys(spec.outputs + spec.inputs + ((weights,) if weights else ())))
    design = _finite_design(spec.design("raise", weights), spec, weights)
    passes = KeyedPasses(source, columns, spec.read_types(source, columns), design, names,
                         "fixed-effect or cluster column", KEEP_BYTES, text=False)
    rows = _Rows(spec, passes.runner, 0)
    rows.passes = passes
    return rows


def fit_absorbed(data, formula: str, *, weights: str | None = None, weights_kind: str = "frequency",
                 cov_type: str = "nonrobust", cluster=None, hac_maxlags: int | None = None, fixef_k: str = "full",
                 tol: float | None = None, max_iter: int | None = None) -> AbsorbedModel:
    """Fit ``formula`` (``y ~ x | fe₁ + fe₂``) to a table in memory or a file, streamed (see the module docstring)."""
    from ..core import absorb as ab
    from ..inference import cluster as cl
    from ..inference import hac as hc
    from .stream_cov import cluster_names

    cov_type = check_choice("cov_type", cov_type, ("nonrobust", "cluster", "HAC"))
    fixef_k = check_choice("fixef_k", fixef_k, cl.FIXEF_K)
    main, fe_names = split_formula(formula)
    cl_names = cluster_names(cluster)
    if cov_type == "cluster" and not cl_names:
        raise InputError("cluster", "cov_type='cluster' needs cluster= (the cluster column name, or two).")
    names = tuple(dict.fromkeys(fe_names + cl_names))
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        from ..io.sources import open_table

        source = open_table(data)
        for col in names + ((weights,) if weights else ()):
            source.require([col], "formula" if col in fe_names else "cluster" if col in cl_names else "weights")
        rows = _streamed(source, main, names, weights)
    else:
        df = _frame(data)
        for col in names + ((weights,) if weights else ()):
            if col not in df.columns:
                raise InputError("formula" if col in fe_names else "cluster" if col in cl_names else "weights",
                                 f"column {col!r} is not in the data (columns: {', '.join(map(str, df.columns[:20]))}).")
        rows = _in_memory(df, main, names, weights)
    spec = rows.spec
    kw = {k: v for k, v in (("tol", tol), ("max_iter", max_iter)) if v is not None}
    if rows.arrays is not None:  # in memory: alternating projections over the arrays
        X, Y, w, cols = rows.arrays
        try:
            fit = ab.absorb_arrays(X, Y, w, [cols[c] for c in fe_names], **kw)
        except NonFiniteData:
            if set(spec.features + spec.targets) <= set(df.columns):  # the frame's own columns: name the value
                frame_error(df, spec, weights)
            raise
    else:  # streamed: one pass per conjugate-gradient iteration (one pass in all for one factor)
        fit = ab.absorb(rows.run(fe_names), len(spec.features), len(spec.targets), len(fe_names), **kw)
        rows.n_rows = rows.passes.n_rows
    stats = cl.absorbed_stats(fit, weights_kind=weights_kind)
    covs = {"nonrobust": stats.cov(0)}
    dfs = {"nonrobust": stats.df_resid}
    labels = {"nonrobust": "non-robust (the dummy regression's)"}
    if cov_type == "cluster":
        nested = tuple(f in cl_names for f in fe_names)  # a factor is nested in itself: no pass needed
        if fixef_k == "nested" and not all(nested):
            nested = rows.keyed(fe_names + cl_names)(cl.nesting_reduction(len(fe_names), len(cl_names)))
        scorer = hc.absorbed_scorer(fit, nested if len(cl_names) == 1 else None)  # nested in every cluster column
        meats = rows.keyed(cl_names + fe_names)(cl.cluster_reduction(scorer, len(cl_names)))
        cc = cl.cluster_cov(meats, stats.bread, n_obs=stats.n_obs, k_params=stats.k_params(fixef_k=fixef_k, nested=nested))
        covs["cluster"], dfs["cluster"] = cc.cov[0], cc.df
        labels["cluster"] = f"{cl.cluster_label(cc, cl_names)[:-1]}; fixef_k={fixef_k!r})"
    elif cov_type == "HAC":
        lags = hc.resolve_lags(hac_maxlags, rows.n_rows)
        meat = rows.run(fe_names)(hc.hac_reduction(hc.absorbed_scorer(fit), lags))
        covs["HAC"], dfs["HAC"] = hc.hac_cov(meat, stats.bread, weights_kind=weights_kind)[0], stats.df_resid
        labels["HAC"] = hc.hac_label(lags)
    for k in covs:
        c = np.array(covs[k], copy=True)
        c[~stats.estimable, :] = np.nan
        c[:, ~stats.estimable] = np.nan
        covs[k] = c
    results = AbsorbedResults(tuple(spec.features), stats.coef[0], stats.n_obs, stats.df_resid, float(stats.sse[0]),
                              float(stats.r2[0]), float(stats.r2_within[0]), fe_names, fit.n_levels,
                              str(spec.targets[0]) if spec.targets else "y", cov_type, covs, dfs, labels)
    return AbsorbedModel(stats.coef[0], spec.features, results.target_name, fe_names, fit.tables, results, spec)
