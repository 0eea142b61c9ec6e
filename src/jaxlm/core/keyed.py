"""Per-key sums merged by key: the accumulators of the keyed passes (fixed-effect levels,
cluster score sums), and the dense codes of key columns.

:func:`group_codes` numbers the distinct key combinations of a block; non-negative integer
keys of a compact range (at most twice as many values as rows) are numbered by a counting pass
in key order (~10× cheaper than hashing: the common case of integer firm or level ids), other
keys by hashing (``pandas.factorize``) in order of first appearance. Nothing downstream depends
on the numbering: sums are merged by key.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import InputError


class KeyedSums(NamedTuple):
    """Per-key sums: ``keys`` one (G,) array per key component, ``sums`` (G, ...)."""

    keys: tuple
    sums: np.ndarray


def group_codes(cols: Sequence, param: str = "groups"):
    """``(codes (b,), G, first (G,))``: a dense code per distinct combination of the row-aligned
    key columns ``cols``, and each group's first row. Missing values (NaN, None, pandas NA) are
    an InputError naming ``param``."""
    code = None
    for c in cols:
        c = np.asarray(c)
        if c.ndim != 1:
            raise InputError(param, f"{param} must be one value per row (a 1-D column); got shape {c.shape}.")
        cj, n_uniq = _column_codes(c, param)
        code = cj if code is None else code * n_uniq + cj
    if len(cols) > 1:
        code = pd.factorize(code)[0].astype(np.int64, copy=False)
    G = int(code.max()) + 1 if code.size else 0
    first = np.empty(G, dtype=np.int64)
    first[code[::-1]] = np.arange(code.size - 1, -1, -1)
    return code, G, first


def _compact(lo, hi, n: int) -> bool:
    """Whether integer keys in ``[lo, hi]`` (``n`` of them) are numbered by counting, not hashing."""
    return int(hi) - int(lo) < 2 * n + 64


def _column_codes(c: np.ndarray, param: str) -> tuple[np.ndarray, int]:
    """``(codes, number of distinct values)`` of one key column."""
    if c.dtype.kind in "iu" and c.size:
        lo, hi = c.min(), c.max()
        if _compact(lo, hi, c.size):  # a compact range: count, no hashing
            shifted = (c - lo if c.dtype.kind == "u" else c.astype(np.int64) - int(lo)).astype(np.intp, copy=False)
            present = np.zeros(int(hi) - int(lo) + 1, dtype=bool)
            present[shifted] = True
            remap = np.cumsum(present, dtype=np.int64) - 1
            return remap[shifted], int(remap[-1]) + 1
    cj, uniq = pd.factorize(c, use_na_sentinel=True)
    if cj.size and cj.min() < 0:
        raise InputError(param, f"{param} must have a value on every row; got {int(np.sum(cj < 0))} missing "
                                f"value(s) (NaN/None) in a block of {cj.size} rows. Drop those rows or fill "
                                f"the column before fitting.")
    return cj.astype(np.int64, copy=False), len(uniq)


class LevelIndex:
    """Positions of key values in a table's ``keys`` (``get_indexer``, −1 for a value not there):
    compact integer keys (as :func:`group_codes` counts them) through a dense position table, one
    gather per call; other keys through pandas' hash index. A pass looks rows up chunk by chunk:
    hashing them took about as long as the pass's own sums."""

    def __init__(self, keys):
        keys = np.asarray(keys)
        self.keys, self.table, self.lo = keys, None, 0
        if keys.dtype.kind in "iu" and keys.size and int(keys.max()) < 2**62 and int(keys.min()) > -2**62:
            lo, hi = int(keys.min()), int(keys.max())
            if _compact(lo, hi, keys.size):
                self.lo, self.table = lo, np.full(hi - lo + 1, -1, dtype=np.int64)
                self.table[keys.astype(np.int64) - lo] = np.arange(keys.size)
        self._index = None

    def __len__(self) -> int:
        return int(self.keys.size)

    def get_indexer(self, col) -> np.ndarray:
        col = np.asarray(col)
        if self.table is not None and (col.dtype.kind == "i" or (col.dtype.kind == "u" and col.dtype.itemsize < 8)):
            at = col.astype(np.int64) - self.lo
            inside = (at >= 0) & (at < self.table.size)
            out = self.table.take(np.where(inside, at, 0))
            out[~inside] = -1
            return out
        if self._index is None:
            self._index = pd.Index(self.keys)
        return self._index.get_indexer(col)


def indicator(codes: np.ndarray, G: int, values=None) -> sp.csc_matrix:
    """(G, b) sparse, ``values[i]`` (default 1) at ``(codes[i], i)``: ``indicator(c, G, v) @ A``
    sums the rows of ``v·A`` by group in one sparse product."""
    data = np.ones(codes.size) if values is None else np.asarray(values, dtype=np.float64)
    return sp.csc_matrix((data, codes, np.arange(codes.size + 1)), shape=(G, codes.size))


def _kernel():
    """SciPy's compiled ``Y += A @ X`` for a CSC matrix ``A`` (private: ``None`` if it moves)."""
    try:
        from scipy.sparse._sparsetools import csc_matvecs
    except ImportError:  # pragma: no cover - depends on SciPy's layout
        return None
    return csc_matvecs


_CSC_MATVECS = _kernel()


def add_by_key(out: np.ndarray, codes: np.ndarray, rows: np.ndarray, weights=None) -> np.ndarray:
    """``out[codes[i]] += weights[i] · rows[i]`` for every row, in place, and ``out``.

    ``indicator(codes, G, weights) @ rows`` without the new (G, q) result: a row-chunked pass can
    add each chunk straight into its accumulator. ``out`` (G, q) C-contiguous float64, ``rows``
    (b, q), ``codes`` (b,) in ``[0, G)``. SciPy's CSC kernel does the work."""
    b = codes.size
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    w = np.ones(b) if weights is None else np.ascontiguousarray(weights, dtype=np.float64).reshape(-1)
    # the kernel checks nothing: shapes and codes are checked here
    if out.ndim != 2 or rows.shape != (b, out.shape[1]) or w.shape != (b,):
        raise ValueError(f"add_by_key needs out (G, q), rows (b, q), weights (b,); got out {out.shape}, rows "
                         f"{rows.shape}, weights {w.shape} for {b} codes.")
    if b and (codes.min() < 0 or codes.max() >= out.shape[0]):
        raise ValueError(f"codes must lie in [0, {out.shape[0]}); got {codes.min()}..{codes.max()}.")
    if _CSC_MATVECS is None or not out.flags.c_contiguous or out.dtype != np.float64:
        out += indicator(codes, out.shape[0], w) @ rows
        return out
    idx = codes.dtype if codes.dtype in (np.int32, np.int64) else np.int64
    _CSC_MATVECS(out.shape[0], b, rows.shape[1], np.arange(b + 1, dtype=idx), np.ascontiguousarray(codes, dtype=idx),
                 w, rows.ravel(), out.reshape(-1))
    return out


#: Elements per chunk when per-row outer products are formed (:func:`add_outer_by_key`).
OUTER_ELEMENTS = 1 << 21


def add_outer_by_key(out: np.ndarray, codes: np.ndarray, A: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``out`` (G, q·q) += ``Σ_{i∈g} w_i a_i a_iᵀ`` per key ``g``, in row chunks of outer products
    (per-cluster Grams); returns ``out``."""
    b, q = A.shape
    step = max(1, OUTER_ELEMENTS // (q * q))
    for s in range(0, b, step):
        a = A[s:s + step]
        add_by_key(out, codes[s:s + step], ((a * w[s:s + step, None])[:, :, None] * a[:, None, :]).reshape(-1, q * q))
    return out


def concat_keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Concatenate key arrays; an empty one keeps the other's dtype (int64 ids stay exact)."""
    return np.asarray(b) if a.size == 0 else np.asarray(a) if b.size == 0 else np.concatenate([a, b])


def merge_keyed(a: KeyedSums, b: KeyedSums) -> KeyedSums:
    """Add two keyed sums key by key (a key present in one only is kept as it is)."""
    if a.sums.shape[0] == 0:
        return b
    if b.sums.shape[0] == 0:
        return a
    cols = tuple(concat_keys(x, y) for x, y in zip(a.keys, b.keys))
    codes, G, first = group_codes(cols)
    stacked = np.concatenate([a.sums, b.sums])
    sums = indicator(codes, G) @ stacked.reshape(stacked.shape[0], -1)
    return KeyedSums(tuple(c[first] for c in cols), np.asarray(sums).reshape((G,) + stacked.shape[1:]))


def empty_keyed(n_keys: int, shape: tuple) -> KeyedSums:
    return KeyedSums(tuple(np.empty(0) for _ in range(n_keys)), np.zeros((0,) + tuple(shape)))


__all__ = ["KeyedSums", "LevelIndex", "OUTER_ELEMENTS", "add_by_key", "add_outer_by_key", "concat_keys", "empty_keyed", "group_codes", "indicator", "merge_keyed"]
