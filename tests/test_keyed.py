"""core/keyed.py: key columns numbered by counting (compact integer ranges) or by hashing agree."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import jaxlm
from jaxlm.core import keyed
from jaxlm.core.keyed import group_codes, merge_keyed, KeyedSums


def _same_grouping(code, G, first, col):
    assert G == len(pd.unique(col))
    np.testing.assert_array_equal(col[first][code], col)           # a code's key is its rows' key
    assert np.all(first[code] <= np.arange(col.size))               # first is each group's first row
    np.testing.assert_array_equal(np.bincount(code, minlength=G) > 0, np.ones(G, dtype=bool))


@pytest.mark.parametrize("col", [
    np.array([5, 3, 5, 9, 3], dtype=np.int64),                      # compact: counted
    np.array([-128, 127, 0, -128], dtype=np.int8),                  # span 256 > 2·rows + 64: hashed
    np.arange(-40, 40, dtype=np.int16)[::-1],                       # negative, compact
    np.array([2**64 - 1, 2**64 - 3, 2**64 - 1], dtype=np.uint64),   # beyond int64, compact
    np.array([0, 10**12, 7]),                                       # wide: hashed
    np.random.default_rng(0).integers(0, 1000, 5000),
    np.array(["b", "a", "b"]),
])
def test_codes_group_rows_by_key(col):
    _same_grouping(*group_codes([col]), col)


def test_two_columns_and_missing_values():
    a, b = np.array([1, 1, 2, 2, 1]), np.array([0, 1, 0, 0, 1])
    code, G, _ = group_codes([a, b])
    assert G == 3 and code[1] == code[4] and code[2] == code[3] and len({code[0], code[1], code[2]}) == 3
    with pytest.raises(jaxlm.InputError, match="groups must have a value on every row"):
        group_codes([np.array([1.0, np.nan])])


def test_merge_adds_by_key_whatever_the_numbering():
    a = KeyedSums((np.array([3, 1]),), np.array([[1.0], [2.0]]))
    b = KeyedSums((np.array([1, 10**15]),), np.array([[5.0], [7.0]]))
    out = merge_keyed(a, b)
    got = dict(zip(out.keys[0].tolist(), out.sums[:, 0].tolist()))
    assert got == {3: 1.0, 1: 7.0, 10**15: 7.0}


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("weighted", [False, True])
def test_add_by_key_adds_rows_into_their_key(dtype, weighted):
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 40, 500).astype(dtype)
    rows, w = rng.normal(size=(500, 3)), rng.random(500)
    out = np.full((40, 3), 2.0)
    keyed.add_by_key(out, codes, rows, w if weighted else None)
    want = np.full((40, 3), 2.0)
    for i, c in enumerate(codes):  # by hand, row by row
        want[c] += (w[i] if weighted else 1.0) * rows[i]
    np.testing.assert_allclose(out, want, rtol=1e-13, atol=1e-13)


def test_add_by_key_refuses_codes_outside_the_table():
    out = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        keyed.add_by_key(out, np.array([0, 4]), np.ones((2, 2)))
    with pytest.raises(ValueError):
        keyed.add_by_key(out, np.array([-1, 0]), np.ones((2, 2)))
    assert not out.any()


@pytest.mark.parametrize("keys", [
    np.array([7, 3, 12, 5]),                                   # compact: a position table
    np.array([-4, 9, 0], dtype=np.int16),
    np.array([10**15, 3, 7]),                                  # wide: hashed
    np.array(["b", "a", "c"]),
])
def test_level_index_positions_equal_pandas(keys):
    col = np.concatenate([keys[::-1], keys[:1]])
    extra = {"i": np.array([1, 1000, -7]), "U": np.array(["zz", "a"])}.get(keys.dtype.kind, np.array([1, 1000, -7]))
    for c in (col, np.concatenate([col, extra.astype(keys.dtype)])):
        np.testing.assert_array_equal(keyed.LevelIndex(keys).get_indexer(c), pd.Index(keys).get_indexer(c))
    np.testing.assert_array_equal(keyed.LevelIndex(keys[:0]).get_indexer(keys[:0]), [])


def test_add_by_key_without_scipys_private_kernel(monkeypatch):
    """If SciPy moves its CSC kernel, the public sparse product does the same sums."""
    rng = np.random.default_rng(4)
    codes, rows, w = rng.integers(0, 30, 400), rng.normal(size=(400, 2)), rng.random(400)
    fast = keyed.add_by_key(np.zeros((30, 2)), codes, rows, w)
    monkeypatch.setattr(keyed, "_CSC_MATVECS", None)
    slow = keyed.add_by_key(np.zeros((30, 2)), codes, rows, w)
    np.testing.assert_allclose(slow, fast, rtol=1e-13, atol=1e-14)


def test_add_by_key_refuses_shapes_the_kernel_would_overrun():
    out = np.zeros((4, 2))
    for rows, w in ((np.ones((4, 2)), None), (np.ones((2, 4)), None), (np.ones((2, 2)), np.ones(1))):
        with pytest.raises(ValueError, match="add_by_key needs"):
            keyed.add_by_key(out, np.array([0, 1]), rows, w)
    assert not out.any()


def test_outer_sums_by_key_equal_per_row_outer_products(monkeypatch):
    rng = np.random.default_rng(6)
    codes, A, w = rng.integers(0, 5, 50), rng.normal(size=(50, 3)), rng.random(50)
    monkeypatch.setattr(keyed, "OUTER_ELEMENTS", 20)  # chunks of two rows
    got = keyed.add_outer_by_key(np.zeros((5, 9)), codes, A, w).reshape(5, 3, 3)
    want = np.zeros((5, 3, 3))
    for i, c in enumerate(codes):
        want[c] += w[i] * np.outer(A[i], A[i])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
