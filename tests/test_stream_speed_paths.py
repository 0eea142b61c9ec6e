"""The fast paths of streaming: Parquet row groups handed out in slices, a row group (or CSV block)
read ahead in a worker thread, CSV parsed in small pieces and joined, columns copied chunk by chunk.
Each must give the same rows, the same errors and the same fit as the plain path."""
from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from jaxlm.core.errors import InputError
from jaxlm.io import sources, values
from jaxlm.io.design import numeric_design, select_columns
from jaxlm.io.sources import open_table
from jaxlm.io.values import read_ahead, to_matrix
from jaxlm.models.tables import stream_fit


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 3000
    X = rng.normal(size=(n, 3)) * [1.0, 4.0, 0.5] + [2.0, -1.0, 10.0]
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["y"] = 0.5 + X @ [1.0, -2.0, 3.0] + rng.normal(size=n)
    return df


@pytest.fixture(scope="module")
def files(tmp_path_factory, frame) -> dict:
    d = tmp_path_factory.mktemp("speed")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    out = {"parquet": d / "big_groups.parquet", "csv": d / "f.csv"}
    pq.write_table(table, out["parquet"], row_group_size=1200)  # 1200, 1200, 600 rows
    frame.to_csv(out["csv"], index=False, float_format="%.17g")
    return out


def _lstsq(frame: pd.DataFrame) -> np.ndarray:
    A = np.c_[np.ones(len(frame)), frame[["a", "b", "c"]].to_numpy()]
    return np.linalg.lstsq(A, frame["y"].to_numpy(), rcond=None)[0]


def test_slice_rows_is_a_few_mib_and_at_least_16_rows_per_column():
    assert sources.slice_rows(51) == values.SLICE_BYTES // (8 * 51)
    assert sources.slice_rows(10**6) == 16 * 10**6
    assert sources.slice_rows(0) >= 1


def test_row_groups_are_handed_out_in_equal_slices_in_order(files, frame, monkeypatch):
    monkeypatch.setattr(sources, "SLICE_BYTES", 8 * 4 * 500)  # 500 rows of 4 columns
    src = open_table(files["parquet"])
    blocks = list(src.blocks(["a", "b", "c", "y"]))
    sizes = [b.table.num_rows for b in blocks]
    # row groups of 1200 -> 3 slices of 400; the last of 600 -> 2 of 300; none crosses a row group
    assert sizes == [400, 400, 400, 400, 400, 400, 300, 300]
    assert [b.start for b in blocks] == list(np.cumsum([0] + sizes[:-1]))
    got = pa.concat_tables([b.table for b in blocks]).to_pandas()
    pd.testing.assert_frame_equal(got, frame[["a", "b", "c", "y"]])


def test_sliced_stream_fit_equals_lstsq_and_the_unsliced_fit(files, frame, monkeypatch):
    whole = stream_fit(files["parquet"], target="y", progress=False)
    monkeypatch.setattr(sources, "SLICE_BYTES", 8 * 4 * 100)
    sliced = stream_fit(files["parquet"], target="y", progress=False)
    ref = _lstsq(frame)
    for fit in (whole, sliced):
        sol = fit.solution if getattr(fit, "solution", None) is not None else fit.model.solution_
        got = np.r_[np.ravel(sol.intercept), np.ravel(sol.coef)]
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)
        assert fit.n_read == fit.n_rows == len(frame)


def test_a_missing_value_is_located_in_a_later_slice(tmp_path, frame, monkeypatch):
    df = frame.copy()
    df.loc[1777, "b"] = np.nan
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=1200)
    monkeypatch.setattr(sources, "SLICE_BYTES", 8 * 4 * 100)
    with pytest.raises(InputError) as e:
        stream_fit(path, target="y", progress=False)
    assert "'b'" in str(e.value) and "data row 1778" in str(e.value)


def test_read_ahead_keeps_order_and_at_most_two_items_alive():
    class Item:
        pass

    alive = weakref.WeakSet()
    most = [0]

    def produce():
        for k in range(6):
            gc.collect()
            most[0] = max(most[0], len(alive) + 1)  # the items alive while the next is made
            it = Item()
            it.k = k
            alive.add(it)
            yield it
            del it

    got = []
    for it in read_ahead(produce()):
        got.append(it.k)
        del it
    assert got == list(range(6))
    assert most[0] <= 2


def test_read_ahead_raises_the_workers_error_in_the_caller():
    def produce():
        yield 1
        raise InputError("data", "broken at item 2")

    it = read_ahead(produce())
    assert next(it) == 1
    with pytest.raises(InputError, match="broken at item 2"):
        next(it)


def test_closing_read_ahead_early_stops_the_worker_and_closes_the_source():
    closed = threading.Event()

    def produce():
        try:
            yield from range(10**6)
        finally:
            closed.set()

    it = read_ahead(produce())
    assert next(it) == 0
    it.close()
    assert closed.is_set()
    assert not any(t.name.startswith("jaxlm-read-ahead") and t.is_alive() for t in threading.enumerate())


def test_csv_pieces_are_joined_into_blocks_of_about_block_bytes(files, frame, monkeypatch):
    monkeypatch.setattr("jaxlm.io.csvsource.CSV_PARSE_BYTES", 4096)
    src = open_table(files["csv"], csv_block_bytes=4 * 4096)
    blocks = list(src.blocks(["a", "b", "c", "y"], types={c: pa.float64() for c in "abcy"}))
    assert all(b.table.column("a").num_chunks <= 4 for b in blocks)
    assert any(b.table.column("a").num_chunks > 1 for b in blocks)
    got = pa.concat_tables([b.table for b in blocks]).to_pandas()
    ref = pcsv.read_csv(files["csv"]).to_pandas()
    pd.testing.assert_frame_equal(got, ref)  # every value round-trips (%.17g)
    assert [b.start for b in blocks] == list(np.cumsum([0] + [b.table.num_rows for b in blocks[:-1]]))


def test_csv_bad_value_after_the_first_blocks_names_its_row(tmp_path, frame, monkeypatch):
    df = frame.astype(object)
    df.loc[2500, "c"] = "oops"
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    monkeypatch.setattr("jaxlm.io.csvsource.CSV_PARSE_BYTES", 4096)
    src = open_table(path, csv_block_bytes=8192)  # the types come from the first 8 KiB: numbers
    assert pa.types.is_floating(src.schema.field("c").type)
    with pytest.raises(InputError) as e:
        stream_fit(src, target="y", progress=False)
    assert "'c'" in str(e.value) and "'oops'" in str(e.value) and "data row 2501" in str(e.value)


def test_to_matrix_copies_chunked_columns_and_converts_others():
    a = pa.chunked_array([[1.0, 2.0], [], [3.0, 4.0, 5.0]])
    b = pa.chunked_array([[1, 2, 3], [4, 5]], type=pa.int32())
    c = pa.chunked_array([[1.5, None], [2.5, 3.5, None]])
    t = pa.table({"a": a, "b": b, "c": c})
    M = to_matrix(t, ["c", "a", "b"])
    assert M.flags.f_contiguous and M.dtype == np.float64
    np.testing.assert_array_equal(M[:, 1], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(M[:, 2], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(M[:, 0], [1.5, np.nan, 2.5, 3.5, np.nan])


def test_design_of_joined_csv_blocks_equals_the_frame(files, frame, monkeypatch):
    monkeypatch.setattr("jaxlm.io.csvsource.CSV_PARSE_BYTES", 4096)
    src = open_table(files["csv"], csv_block_bytes=3 * 4096)
    sel = select_columns(src, target="y")
    design = numeric_design(sel, "raise")
    blocks = [design(b) for b in src.blocks(list(sel.features + sel.targets),
                                            types={c: pa.float64() for c in "abcy"})]
    X = np.concatenate([b.X for b in blocks])
    np.testing.assert_array_equal(X, frame[["a", "b", "c"]].to_numpy())
    np.testing.assert_array_equal(np.concatenate([b.Y for b in blocks])[:, 0], frame["y"].to_numpy())


@pytest.mark.parametrize("offset", [0, 3, 8, 13])
def test_buffer_views_equal_arrows_own_conversion_on_slices_with_nulls(offset):
    rng = np.random.default_rng(offset)
    vals = rng.normal(size=40)
    nulls = rng.random(40) < 0.3
    a = pa.array(vals, mask=nulls).slice(offset, 21)
    got = values.float_numpy(a)
    want = np.where(nulls[offset:offset + 21], np.nan, vals[offset:offset + 21])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(values.valid_mask(a), ~nulls[offset:offset + 21])
    ints = pa.array(np.arange(40, dtype=np.int64) * (2**40)).slice(offset, 21)
    np.testing.assert_array_equal(values.plain_numpy(ints), np.arange(offset, offset + 21) * (2**40))
    assert values.valid_mask(pa.array(vals).slice(offset, 5)) is None
    assert values.plain_numpy(pa.array([], type=pa.float64())).shape == (0,)


def test_to_float64_converts_booleans_integers_and_chunks_with_nulls_as_nan():
    col = pa.chunked_array([[True, None], [False]], type=pa.bool_())
    np.testing.assert_array_equal(values.to_float64(col), [1.0, np.nan, 0.0])
    big = pa.chunked_array([[2**60, 3], [None]], type=pa.int64())
    np.testing.assert_array_equal(values.to_float64(big), [2.0**60, 3.0, np.nan])
    with pytest.raises(InputError, match="2\\*\\*53"):
        values.to_float64(pa.array([2**60 + 1], type=pa.int64()), "id", 0)


def test_reading_a_numeric_csv_block_does_not_import_pandas(files):
    import subprocess
    import sys

    code = ("import sys\nfrom jaxlm.io.sources import open_table\nfrom jaxlm.io.design import numeric_design, "
            "select_columns, float_types\n"
            f"src = open_table({str(files['csv'])!r})\nsel = select_columns(src, target='y')\n"
            "cols = list(sel.features + sel.targets)\ndesign = numeric_design(sel, 'raise')\n"
            "n = sum(len(design(b).X) for b in src.blocks(cols, types=float_types(src, cols)))\n"
            "print(n, 'pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["3000", "False"]
