"""core/keyed.py: key columns numbered by counting (compact integer ranges) or by hashing agree."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import jaxlm
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
