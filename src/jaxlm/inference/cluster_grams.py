"""Cluster-robust covariances in ONE pass: per-cluster Gram matrices, for ``partial_fit``.

The cluster pass of :mod:`jaxlm.inference.cluster` sums each cluster's scores
``s_g = Σ_{i∈g} w_i z_i e_i`` after the fit, which needs the coefficients and so a second look
at the rows. A model fed batch by batch (``partial_fit``) sees each row once, so it keeps instead,
per cluster, the Gram matrix of the augmented rows ``a_i = [z_i, y_i − c_y]``
(``z_i = [1, x_i − c_x]`` with an intercept, ``x_i`` without; ``c`` the first batch's weighted
mean, zero without an intercept)::

    M_g = Σ_{i∈g} w_i a_i a_iᵀ          (q × q, q = p + m)

from which the scores of any coefficients follow exactly in exact arithmetic:
``s_g = M_g[z, y] − M_g[z, z] β_c`` (``β_c`` the coefficients in the centred coordinates). The
Grams merge by key like the score sums, so batches may split clusters in any way. Memory is
``G · q²`` floats per grouping (two-way: the two groupings and their intersection) instead of the
second pass's ``G · m · p``; :func:`check_memory` bounds it before allocating. Accuracy: forming
``s_g`` as a difference loses about ``log10(|Σ w z y| / |s_g|)`` digits to cancellation; the
centring keeps that to a few digits on ordinary data (tests compare with the two-pass result).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..core.keyed import KeyedSums, add_outer_by_key, group_codes, merge_keyed
from ..core.errors import InputError
from .cluster import ClusterMeats

#: Largest memory (bytes) the per-cluster Grams may take before partial_fit refuses.
MAX_BYTES = 1 << 30


class ClusterGrams(NamedTuple):
    """Per-cluster augmented Grams of the rows seen so far (one :class:`KeyedSums` per grouping:
    one-way ``(g,)``, two-way ``(g₁, g₂, g₁∩g₂)``), the centring ``c`` (d + m,), and the rows with w > 0."""

    shift: np.ndarray
    const: bool
    grams: tuple
    rows: int


def _terms(groups: list) -> list:
    return [(groups[0],)] if len(groups) == 1 else [(groups[0],), (groups[1],), (groups[0], groups[1])]


def check_memory(G: int, q: int, terms: int) -> None:
    """Refuse per-cluster Grams larger than :data:`MAX_BYTES`, naming the fix."""
    need = G * q * q * 8 * terms
    if need > MAX_BYTES:
        raise InputError("groups", f"partial_fit with cov_type='cluster' keeps one {q}×{q} matrix per cluster: "
                                   f"{G:,} clusters need {need / 2**30:.1f} GiB, more than the "
                                   f"{MAX_BYTES / 2**30:.0f} GiB allowed. Use fit() or jaxlm.fit_table (a second "
                                   f"pass over the rows, {G:,} × {q} numbers), or fewer clusters.")


def _grams(A, w, codes, G):
    """(G, q, q): Σ_{i∈g} w_i a_i a_iᵀ."""
    return add_outer_by_key(np.zeros((G, A.shape[1] ** 2)), codes, A, w).reshape(G, A.shape[1], A.shape[1])


def batch_grams(X, Y, w, groups: list, *, fit_intercept: bool, shift=None) -> ClusterGrams:
    """The :class:`ClusterGrams` of one batch (``groups``: one or two checked key columns);
    ``shift`` the centring of earlier batches (None: this batch's weighted mean, or 0 without an
    intercept)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    keep = w > 0
    if not keep.all():
        X, Y, w = X[keep], Y[keep], w[keep]
        groups = [np.asarray(g)[keep] for g in groups]
    d, m = X.shape[1], Y.shape[1]
    if shift is None:
        shift = (np.concatenate([X, Y], axis=1).T @ w) / w.sum() if fit_intercept and w.size else np.zeros(d + m)
    A = np.concatenate([X, Y], axis=1) - shift[None, :]
    if fit_intercept:
        A = np.concatenate([np.ones((A.shape[0], 1)), A], axis=1)
    q = A.shape[1]
    out = []
    for cols in _terms(groups):
        codes, G, first = group_codes(cols, "groups")
        check_memory(G, q, len(_terms(groups)))
        out.append(KeyedSums(tuple(np.asarray(c)[first] for c in cols), _grams(A, w, codes, G)))
    return ClusterGrams(np.asarray(shift, dtype=np.float64), bool(fit_intercept), tuple(out), int(w.size))


def merge_grams(a: ClusterGrams, b: ClusterGrams) -> ClusterGrams:
    """Both batches' Grams, key by key (``b`` must have ``a``'s centring and groupings)."""
    if len(a.grams) != len(b.grams):
        raise InputError("groups", f"groups must have the same number of cluster columns in every batch; got "
                                   f"{1 if len(a.grams) == 1 else 2} earlier and {1 if len(b.grams) == 1 else 2} now.")
    merged = tuple(merge_keyed(x, y) for x, y in zip(a.grams, b.grams))
    check_memory(sum(g.sums.shape[0] for g in merged), a.grams[0].sums.shape[-1], 1)
    return a._replace(grams=merged, rows=a.rows + b.rows)


def meats(cg: ClusterGrams, coef, intercept, centre=None) -> ClusterMeats:
    """:class:`ClusterMeats` of the fit with ``coef`` (m, d) and ``intercept`` (m,) from the Grams
    (the scores ``s_g`` formed as above): in the coefficients' coordinates ``[1, x]``, or with
    ``centre`` (d,) in ``[1, x − centre]`` (the centred coordinates of
    :func:`jaxlm.inference.cluster.clustered`)."""
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    m, d = coef.shape
    const = cg.const
    p = d + int(const)
    cx, cy = cg.shift[:d], cg.shift[d:]
    if const:  # β in z = [1, x − c_x] for y − c_y: intercept at the centre
        bc = np.concatenate([(np.asarray(intercept, dtype=np.float64).reshape(m) + coef @ cx - cy)[:, None], coef],
                            axis=1)
    else:
        bc = coef
    out, counts = [], []
    for ks in cg.grams:
        M = ks.sums                                        # (G, q, q)
        S = M[:, :p, p:].transpose(0, 2, 1) - np.einsum("gij,kj->gki", M[:, :p, :p], bc)   # (G, m, p)
        if const:  # to z = [1, x − centre]: s[1:] + (c_x − centre) s[0]
            move = cx if centre is None else cx - np.asarray(centre, dtype=np.float64)
            S = S.copy()
            S[:, :, 1:] += S[:, :, :1] * move[None, None, :]
        out.append(np.einsum("gki,gkj->kij", S, S))
        counts.append(int(M.shape[0]))
    signs = (1,) if len(cg.grams) == 1 else (1, 1, -1)
    return ClusterMeats(np.stack(out), tuple(counts), signs, cg.rows, None)


__all__ = ["ClusterGrams", "MAX_BYTES", "batch_grams", "check_memory", "merge_grams", "meats"]
