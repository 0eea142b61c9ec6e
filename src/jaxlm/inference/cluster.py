"""Cluster-robust covariance (one- and two-way CR1, CR3) as a mergeable reduction.

The meat of the cluster sandwich is ``Σ_g s_g s_gᵀ`` with the per-cluster score sums

    s_g = Σ_{i ∈ g} w_i z_i e_i

(``z_i`` the design row, intercept included; ``e_i`` the residual; ``w_i`` the weight). This is
what statsmodels computes for ``WLS`` (its scores are the whitened rows ``√w z · √w e``) and for
``OLS`` on frequency-weighted rows repeated (``k`` identical rows of one cluster add ``k z e``),
so the same sums serve both weight kinds; only ``n_obs`` in the small-sample factor differs.

As a reduction (:mod:`jaxlm.core.reduction`), a block ``(X, Y, w, g₁[, g₂], *rest)`` contributes
its rows' score sums keyed by the cluster *values* (any hashable dtype: ints, strings, floats),
and ``merge`` adds two accumulators key by key, so a cluster may be spread over any number of
blocks, files or Dask partitions. Memory is ``O(G · m · p)`` for ``G`` clusters, ``m`` targets,
``p`` parameters (CR3 adds ``O(G · p²)``: one Gram per cluster). Rows with ``w = 0`` are ignored
(their cluster value too: drivers pad ragged shards with such rows).

Covariances (``B = (X̃ᵀWX̃)⁻¹`` the bread, ``M_g`` the meat of grouping ``g``, ``N`` = n_obs,
``K`` = parameters):

``"CR1"`` one-way   ``c · B M B``, ``c = G/(G−1) · (N−1)/(N−K)`` (statsmodels ``cov_type="cluster"``,
                    fixest/pyfixest ``CRV1``; ``small_sample=False`` drops ``c``).
``"CR1"`` two-way   Cameron–Gelbach–Miller ``c₁ B M₁ B + c₂ B M₂ B − c₁₂ B M₁₂ B`` over the two
                    groupings and their intersection. ``g_df="conventional"`` (statsmodels):
                    each term its own ``G/(G−1)``; ``g_df="min"`` (fixest's default ``G_min``):
                    every term uses ``min(G₁, G₂)``. The result need not be positive semi-definite.
``"CR3"``           the leave-one-cluster-out jackknife ``(G−1)/G · Σ_g (β̂₍g₎ − β̂)(β̂₍g₎ − β̂)ᵀ``
                    (statsmodels ``cov_type="cluster-crv3"``), with
                    ``β̂₍g₎ = β̂ − (H − H_g)⁻¹ s_g`` from the per-cluster Grams ``H_g`` (one-way only).

Inference under clustering uses ``G − 1`` degrees of freedom (``min(G₁, G₂) − 1`` two-way), as
statsmodels' ``df_resid_inference`` and fixest.

The scores need the fitted coefficients, so this is a *second* pass, after the fit. A *scorer*
(:mod:`jaxlm.inference.hac`: ``LinearScorer`` of an exact fit, ``AbsorbedScorer`` of an
absorbed-fixed-effects fit) turns a block into ``(D, WE)``: the non-constant design columns and
the weighted residuals ``w·e``; the design row is ``z = [1, D − offset]`` and ``transform`` maps
meats in those coordinates to the coefficients' own.

Absorbed fixed effects (:mod:`jaxlm.core.absorb`): :func:`absorbed_stats` gives the bread, the
degrees of freedom and R²; :func:`fe_dof` counts the fixed effects as fixest's ``fixef.K``
(``"full"``: ``Σ L_f − (F − 1)``, the explicit-dummy regression's count; ``"nested"``: a factor
nested in a cluster column counts 1, fixest/pyfixest's default under clustering), and
:func:`nesting_reduction` finds which factors are nested, in one pass.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

from ..core.blas import tall_product
from ..core.keyed import KeyedSums, add_by_key, add_outer_by_key, concat_keys, empty_keyed, group_codes, merge_keyed
from ..core.errors import InputError, check_choice
from ..core.reduction import Reduction
from .hac import bread_from_solution, design_rows, scorer_from_solution

FIXEF_K = ("full", "nested")
#: Largest memory (bytes) the per-cluster sums of one pass may take before it is refused.
MAX_BYTES = 2 << 30
#: Rows per chunk of the score pass (the chunk's rows stay in cache between the scorer and the sums).
CHUNK_ROWS = 8192
KINDS = ("CR1", "CR3")
G_DF = ("conventional", "min")


# ------------------------------------------------------------------------------------ the reduction
class ClusterAcc(NamedTuple):
    """Accumulator of the cluster pass: score sums per grouping (one-way: ``(g,)``; two-way:
    ``(g₁, g₂, g₁∩g₂)``), optional per-cluster Grams (CR3), and the rows seen (w > 0)."""

    sums: tuple            # of KeyedSums, sums (G, m, p)
    grams: KeyedSums | None  # (G, p, p) Σ w z zᵀ per cluster (CR3)
    rows: int


class ClusterMeats(NamedTuple):
    """The finished pass: meats in the coefficients' coordinates (``transform`` applied)."""

    meats: np.ndarray        # (terms, m, p, p): Σ_g s_g s_gᵀ per grouping
    n_clusters: tuple        # G per term
    signs: tuple             # +1, +1, −1 (two-way) or (+1,)
    rows: int                # rows with w > 0
    jackknife: np.ndarray | None  # (m, p, p): Σ_g δ_g δ_gᵀ, δ_g = β̂₍g₎ − β̂ (CR3), else None


def _init(n_dims: int, m: int, p: int, jackknife: bool) -> ClusterAcc:
    terms = 1 if n_dims == 1 else 3
    return ClusterAcc(tuple(empty_keyed(1 if t < 2 else 2, (m, p)) for t in range(terms)),
                      empty_keyed(1, (p, p)) if jackknife else None, 0)


def _update(scorer, n_dims: int, jackknife: bool, acc: ClusterAcc, X, Y, w, *extra) -> ClusterAcc:
    if len(extra) < n_dims:
        raise InputError("groups", f"the cluster pass needs {n_dims} cluster column(s) after X, Y, w; got "
                                   f"{len(extra)}.")
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    keep = w > 0
    groups, rest = list(extra[:n_dims]), list(extra[n_dims:])
    if not keep.all():
        X, Y, w = np.asarray(X)[keep], np.asarray(Y)[keep], w[keep]
        groups = [np.asarray(g)[keep] for g in groups]
        rest = [np.asarray(r)[keep] for r in rest]
    if w.size == 0:
        return acc
    cols_per_term = [(groups[0],)] if n_dims == 1 else [(groups[0],), (groups[1],), (groups[0], groups[1])]
    coded = [group_codes(cols) for cols in cols_per_term]
    m, p = acc.sums[0].sums.shape[1:]
    offset, const = scorer.offset, scorer.const
    shifted = bool(np.any(offset))
    Gs = [G for _, G, _ in coded]
    # chunk by chunk (cache-sized: the scorer's pass over X and the sums read it once from memory), in
    # one thread: at 1e6×20 with 1,000 or 100,000 clusters, row ranges over threads (sums of their own)
    # took 1.1–1.5× as long, the scattered sums being bound by memory. Per grouping, target and cluster:
    # Σ we (the constant's column, apart: no copy of D) and Σ we (d − offset).
    ones = [np.zeros((m, G, int(const))) for G in Gs]
    cols = [np.zeros((m, G, p - int(const))) for G in Gs]
    gram = np.zeros((Gs[0], p * p)) if jackknife else None
    for s in range(0, w.size, CHUNK_ROWS):
        sl = slice(s, s + CHUNK_ROWS)
        D, WE = scorer(X[sl], Y[sl], w[sl], *(r[sl] for r in rest))
        Dc = D - offset[None, :] if shifted else D
        unit = np.ones((D.shape[0], 1))
        wes = [np.ascontiguousarray(WE[:, j]) for j in range(m)]
        for one, col, (codes, _, _) in zip(ones, cols, coded):
            for j, we in enumerate(wes):
                add_by_key(col[j], codes[sl], Dc, we)
                if const:
                    add_by_key(one[j], codes[sl], unit, we)
        if jackknife:
            add_outer_by_key(gram, coded[0][0][sl], design_rows(D, offset, const), w[sl])
    sums = [np.moveaxis(np.concatenate([o, c], axis=2), 0, 1) for o, c in zip(ones, cols)]  # (G, m, p)
    gram = None if gram is None else gram.reshape(-1, p, p)
    new = tuple(merge_keyed(a, KeyedSums(tuple(np.asarray(c)[first] for c in cols), out))
                for a, cols, (_, _, first), out in zip(acc.sums, cols_per_term, coded, sums))
    grams = acc.grams
    if jackknife:
        grams = merge_keyed(grams, KeyedSums((np.asarray(groups[0])[coded[0][2]],), gram))
    return _bounded(ClusterAcc(new, grams, acc.rows + int(w.size)))


def _merge(a: ClusterAcc, b: ClusterAcc) -> ClusterAcc:
    grams = None if a.grams is None else merge_keyed(a.grams, b.grams)
    return _bounded(ClusterAcc(tuple(merge_keyed(x, y) for x, y in zip(a.sums, b.sums)), grams, a.rows + b.rows))


def _bounded(acc: ClusterAcc) -> ClusterAcc:
    """``acc``, unless its per-cluster sums outgrow :data:`MAX_BYTES` (a file's cluster column with
    nearly one value per row): then an InputError, before memory runs out."""
    size = sum(ks.sums.nbytes for ks in acc.sums) + (0 if acc.grams is None else acc.grams.sums.nbytes)
    if size > MAX_BYTES:
        G = ", ".join(f"{ks.sums.shape[0]:,}" for ks in acc.sums)
        raise InputError("groups", f"the cluster pass keeps one score sum per cluster (and per pair of clusters "
                                   f"two-way): {G} clusters so far need {size / 2**30:.1f} GiB, more than the "
                                   f"{MAX_BYTES / 2**30:.0f} GiB allowed. Cluster on a coarser grouping (a cluster "
                                   f"of one row is heteroskedasticity-robust HC1: use that cov_type instead).")
    return acc


def _finish(transform: np.ndarray, acc: ClusterAcc) -> ClusterMeats:
    meats, counts = [], []
    identity = transform.shape[0] == transform.shape[1] and np.array_equal(transform, np.eye(transform.shape[0]))
    for ks in acc.sums:
        s = ks.sums if identity else ks.sums @ transform.T  # (G, m, p): scores in the coefficients' coordinates
        meats.append(np.stack([tall_product(s[:, k], s[:, k]) for k in range(s.shape[1])]))
        counts.append(int(ks.sums.shape[0]))
    signs = (1,) if len(acc.sums) == 1 else (1, 1, -1)
    jack = None
    if acc.grams is not None:
        jack = _jackknife(acc.sums[0], acc.grams, transform)
    return ClusterMeats(np.stack(meats), tuple(counts), signs, acc.rows, jack)


def _jackknife(scores: KeyedSums, grams: KeyedSums, transform: np.ndarray) -> np.ndarray:
    """Σ_g δ_g δ_gᵀ with δ_g = β̂₍g₎ − β̂ = −(H − H_g)⁻¹ s_g, mapped to the coefficients' coordinates."""
    # align the Grams with the score sums' keys
    idx = pd.Index(grams.keys[0]).get_indexer(scores.keys[0])
    Hg = grams.sums[idx]                       # (G, p, p)
    H = Hg.sum(axis=0)
    S = scores.sums                            # (G, m, p)
    G, m, p = S.shape
    cinv = np.linalg.inv(transform).T          # β̃ = T⁻ᵀ γ
    out = np.zeros((m, p, p))
    for g in range(G):
        A = H - Hg[g]
        if np.linalg.matrix_rank(A) < p:
            raise InputError("cov_type", f"CR3 (the cluster jackknife) is undefined here: leaving out cluster "
                                         f"{scores.keys[0][g]!r} leaves a rank-deficient design (a regressor is "
                                         f"constant within, or collinear across, single clusters). Use CR1.")
        delta = np.linalg.solve(A, S[g].T).T   # (m, p)
        delta = delta @ cinv.T
        out += np.einsum("mi,mj->mij", delta, delta)
    return out


def cluster_reduction(scorer, n_dims: int = 1, *, jackknife: bool = False, centred: bool = False) -> Reduction:
    """The cluster pass over blocks ``(X, Y, w, g₁[, g₂], *rest)``: ``n_dims`` cluster columns
    (any dtype; missing values are an InputError), then whatever else ``scorer`` needs.
    ``run(cluster_reduction(...))`` returns :class:`ClusterMeats`, in the coefficients' coordinates,
    or with ``centred`` in the scorer's own (``z = [1, x − s]``: ``transform`` not applied).
    ``jackknife`` also keeps the per-cluster Grams for CR3 (one-way only)."""
    if n_dims not in (1, 2):
        raise InputError("groups", f"groups must name one or two cluster columns; got {n_dims}. Three-way and "
                                   f"higher clustering is not supported.")
    if jackknife and n_dims != 1:
        raise InputError("cov_type", "CR3 (the cluster jackknife) is one-way only; with two cluster columns use CR1.")
    m = np.atleast_2d(np.asarray(scorer.coef)).shape[0]
    p = scorer.transform.shape[0]
    if centred and jackknife:
        raise InputError("cov_type", "CR3's jackknife works in the coefficients' coordinates; centred=False.")
    T = np.eye(p) if centred else np.asarray(scorer.transform, dtype=np.float64)
    return Reduction(init=partial(_init, n_dims, m, p, jackknife), update=partial(_update, scorer, n_dims, jackknife),
                     merge=_merge, finish=partial(_finish, T))


# ------------------------------------------------------------------------------------ covariance
class ClusterCov(NamedTuple):
    """A cluster-robust covariance: ``cov`` (m, p, p) (``[0]`` for one target), the number of
    clusters per grouping, the degrees of freedom for t and F (``G − 1``), and the kind."""

    cov: np.ndarray
    n_clusters: tuple
    df: float
    kind: str


def _check_groups(counts: tuple, signs: tuple) -> None:
    if counts[0] < 2 or (len(counts) > 1 and counts[1] < 2):
        which = "the cluster column" if len(counts) == 1 else "each cluster column"
        got = counts[0] if len(counts) == 1 else f"{counts[0]} and {counts[1]}"
        raise InputError("groups", f"{which} must have at least 2 distinct values among the rows with weight > 0; "
                                   f"got {got} cluster(s). With one cluster the cluster-robust covariance is "
                                   f"undefined (G − 1 = 0). Cluster on a finer grouping, or use HC1.")


def cluster_cov(meats: ClusterMeats, bread: np.ndarray, *, n_obs: float, k_params: int, kind: str = "CR1",
                small_sample: bool = True, g_df: str = "conventional") -> ClusterCov:
    """The covariance from a finished cluster pass and the bread ``B`` (p, p).

    ``n_obs`` and ``k_params`` enter CR1's ``(N−1)/(N−K)`` (``n_obs``: Σw for frequency weights,
    rows with w > 0 for analytic; ``k_params``: coefficients counted, intercept and, with
    absorbed fixed effects, their levels included). See the module docstring for the kinds.
    """
    kind = check_choice("cov_type", kind, KINDS)
    g_df = check_choice("g_df", g_df, G_DF)
    _check_groups(meats.n_clusters, meats.signs)
    G = meats.n_clusters
    if kind == "CR3":
        if meats.jackknife is None:
            raise InputError("cov_type", "CR3 needs the per-cluster Grams: run cluster_reduction(..., jackknife=True).")
        c = (G[0] - 1.0) / G[0] if small_sample else 1.0
        cov = c * meats.jackknife
        return ClusterCov(0.5 * (cov + np.swapaxes(cov, -1, -2)), G[:1], float(G[0] - 1), kind)
    bread = np.asarray(bread, dtype=np.float64)
    adj = (n_obs - 1.0) / (n_obs - k_params) if small_sample else 1.0
    g_min = min(G[:2])
    cov = 0.0
    for meat, g, sign in zip(meats.meats, G, meats.signs):
        gg = g_min if g_df == "min" else g
        c = adj * gg / (gg - 1.0) if small_sample else 1.0
        cov = cov + sign * c * (bread @ meat @ bread)
    cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    return ClusterCov(cov, G, float(g_min - 1), kind)


def cluster_label(cc: ClusterCov, names=None) -> str:
    """The covariance's line in a summary, e.g. ``cluster-robust CR1 (one-way, G = 1,000)`` (with
    ``names``: ``... CR1 by firm and year (G = 1,000 and 20)``); two-way, the counts of the two
    groupings (not of their intersection)."""
    ways = "one" if len(cc.n_clusters) == 1 else "two"
    by = f" by {' and '.join(names)} (" if names else f" ({ways}-way, "
    return f"cluster-robust {cc.kind}{by}G = " + " and ".join(f"{g:,}" for g in cc.n_clusters[:2]) + ")"


def clustered(run, solution, *, fit_intercept: bool, weights_kind: str = "frequency", n_dims: int = 1,
              kind: str = "CR1", small_sample: bool = True, g_df: str = "conventional") -> ClusterCov:
    """Cluster-robust covariance of an exact fit in one call: ``run`` is a driver bound to the
    fit's data with the cluster column(s) as extra per-row arrays, e.g.
    ``jaxlm.reduce.memory.arrays_runner(X, Y, w, firm)``."""
    weights_kind = check_choice("weights_kind", weights_kind, ("frequency", "analytic"))
    scorer = scorer_from_solution(solution, fit_intercept=fit_intercept)
    # CR1 with an intercept: the sandwich in the centred coordinates z = [1, x − x̄], where the bread
    # is block-diagonal and well conditioned, then mapped to the coefficients' (as the HC pass does:
    # formed with [1, x] it loses ~log10(1 + |x̄|²/var x) digits to cancellation)
    centred = kind == "CR1" and fit_intercept
    meats = run(cluster_reduction(scorer, n_dims, jackknife=kind == "CR3", centred=centred))
    state = solution.state
    n_obs = float(np.asarray(state.count if weights_kind == "analytic" else state.wsum))
    k = scorer.coef.shape[1] + int(fit_intercept)
    bread = None
    if kind == "CR1":
        bread = bread_from_solution(solution, fit_intercept=fit_intercept, centred=centred)
    cc = cluster_cov(meats, bread, n_obs=n_obs, k_params=k, kind=kind, small_sample=small_sample, g_df=g_df)
    if not centred:
        return cc
    J = np.linalg.inv(scorer.transform).T  # β = J γ: the intercept at 0 from the one at x̄
    cov = J @ cc.cov @ J.T
    return cc._replace(cov=0.5 * (cov + np.swapaxes(cov, -1, -2)))


# ------------------------------------------------------------------------------------ absorbed fixed effects
def _pairs(fk, ck):
    """Distinct (level, cluster) pairs, or None when a level lies in two clusters (not nested)."""
    if fk.size == 0:
        return fk, ck
    first = group_codes([fk, ck], "fixed_effects")[2]
    fk, ck = fk[first], ck[first]
    return None if pd.Index(fk).has_duplicates else (fk, ck)


def _pairs_merge_one(x, y):
    return None if x is None or y is None else _pairs(concat_keys(x[0], y[0]), concat_keys(x[1], y[1]))


def _pairs_init(F: int, C: int):
    return tuple(tuple((np.empty(0), np.empty(0)) for _ in range(C)) for _ in range(F))


def _pairs_update(F: int, C: int, acc, X, Y, w, *extra):
    if len(extra) != F + C:
        raise InputError("fixed_effects", f"the nesting pass needs {F} fixed-effect and {C} cluster column(s); got "
                                          f"{len(extra)} extra columns.")
    keep = np.asarray(w, dtype=np.float64).reshape(-1) > 0
    cols = [np.asarray(e)[keep] for e in extra]
    return tuple(tuple(_pairs_merge_one(acc[f][c], (cols[f], cols[F + c])) for c in range(C)) for f in range(F))


def _pairs_merge(a, b):
    return tuple(tuple(_pairs_merge_one(x, y) for x, y in zip(xa, xb)) for xa, xb in zip(a, b))


def _pairs_finish(acc):
    return tuple(any(x is not None for x in per_cluster) for per_cluster in acc)


def nesting_reduction(n_fe: int, n_clusters: int = 1) -> Reduction:
    """Which factors are nested in a cluster column: blocks ``(X, Y, w, fe₁, ..., fe_F, c₁[, c₂])``;
    ``run`` returns one bool per factor: every level within a single cluster of some cluster column
    (pyfixest's rule). Memory: the distinct (level, cluster) pairs while nested, dropped once not."""
    return Reduction(init=partial(_pairs_init, n_fe, n_clusters), update=partial(_pairs_update, n_fe, n_clusters),
                     merge=_pairs_merge, finish=_pairs_finish)


def fe_dof(n_levels: Sequence[int], *, fixef_k: str = "full", nested: Sequence[bool] | None = None) -> int:
    """Parameters the fixed effects count: ``Σ L_f − (F − 1)``; ``fixef_k="nested"``: a factor
    nested in a cluster column counts 1 (fixest ``fixef.K``, pyfixest ``k_fixef="nonnested"``)."""
    fixef_k = check_choice("fixef_k", fixef_k, FIXEF_K)
    F = len(n_levels)
    if fixef_k == "full" or nested is None:
        return int(sum(n_levels) - (F - 1))
    if len(nested) != F:
        raise InputError("nested", f"nested must have one entry per fixed effect ({F}); got {len(nested)}.")
    return int(sum(1 if nst else L for L, nst in zip(n_levels, nested)) - (F - 1))


class AbsorbedStats(NamedTuple):
    """Statistics of an absorbed fit, all targets: ``coef`` (m, d) (NaN where not estimable),
    ``bread`` (d, d) ``(X̃ᵀWX̃)⁻¹`` (pseudo-inverse), ``df_resid = n_obs − rank − K_fe``,
    ``sse``/``r2``/``r2_within`` (m,) (fixest's ``r2`` with the fixed effects, and ``wr2``).
    The non-robust covariance of target k is ``sse[k] / df_resid · bread`` (the dummy
    regression's); a clustered one uses ``k_params(...)`` in its ``(N−1)/(N−K)``."""

    coef: np.ndarray
    bread: np.ndarray
    estimable: np.ndarray
    n_obs: float
    rank: int
    n_levels: tuple
    k_fe: int
    df_resid: float
    sse: np.ndarray
    r2: np.ndarray
    r2_within: np.ndarray

    def cov(self, k: int = 0) -> np.ndarray:
        """Non-robust covariance of target ``k`` (NaN rows/columns where not estimable)."""
        out = self.sse[k] / self.df_resid * self.bread if self.df_resid > 0 else np.full_like(self.bread, np.nan)
        out[~self.estimable, :] = np.nan
        out[:, ~self.estimable] = np.nan
        return out

    def k_params(self, *, fixef_k: str = "full", nested: Sequence[bool] | None = None) -> int:
        return self.rank + fe_dof(self.n_levels, fixef_k=fixef_k, nested=nested)


def absorbed_stats(fit, *, weights_kind: str = "frequency") -> AbsorbedStats:
    """:class:`AbsorbedStats` of a :class:`jaxlm.core.absorb.AbsorbedFit` (``n_obs``: Σw for frequency
    weights, rows with w > 0 for analytic)."""
    weights_kind = check_choice("weights_kind", weights_kind, ("frequency", "analytic"))
    sol = fit.solution
    coef = np.atleast_2d(np.array(sol.coef, dtype=np.float64, copy=True))
    d = coef.shape[1]
    estimable = np.ones(d, dtype=bool)
    estimable[list(sol.aliased)] = False
    coef[:, ~estimable] = np.nan
    bread = sol.factor.solve(np.eye(d))
    n_obs = fit.count if weights_kind == "analytic" else fit.wsum
    k_fe = fe_dof(fit.n_levels)
    sse = np.asarray(sol.sse, dtype=np.float64).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2, r2w = 1.0 - sse / fit.sst, 1.0 - sse / fit.sst_within
    return AbsorbedStats(coef, 0.5 * (bread + bread.T), estimable, float(n_obs), int(sol.rank), fit.n_levels, k_fe,
                         float(n_obs - sol.rank - k_fe), sse, r2, r2w)


__all__ = ["AbsorbedStats", "ClusterAcc", "ClusterCov", "ClusterMeats", "FIXEF_K", "absorbed_stats", "cluster_cov",
           "cluster_label", "cluster_reduction", "clustered", "fe_dof", "nesting_reduction"]
