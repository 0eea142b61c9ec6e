"""jaxlm.io sources, values and design: formats, blocks, column selection and the messages for bad tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from jaxlm.core.errors import InputError
from jaxlm.io import design, sources, values
from jaxlm.io.design import select_columns
from jaxlm.io.sources import open_table
from jaxlm.io.values import BadValueError
from jaxlm.reduce.stream import prefetch


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 1000
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 9, n), "flag": rng.random(n) < 0.5,
                         "city": rng.choice(["Paris", "Oslo", "Lima"], n), "y": rng.normal(size=n)})


@pytest.fixture(scope="module")
def files(tmp_path_factory, frame) -> dict:
    d = tmp_path_factory.mktemp("tables")
    out = {"csv": d / "t.csv", "tsv": d / "t.tsv", "parquet": d / "t.parquet", "feather": d / "t.feather",
           "dir": d / "parts", "glob": str(d / "parts" / "*.parquet"), "gz": d / "t.csv.gz"}
    frame.to_csv(out["csv"], index=False)
    frame.to_csv(out["tsv"], index=False, sep="\t")
    frame.to_csv(out["gz"], index=False, compression="gzip")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, out["parquet"], row_group_size=128)
    feather.write_feather(table, out["feather"], chunksize=100)
    out["dir"].mkdir()
    for k, s in enumerate(range(0, len(frame), 300)):
        pq.write_table(table.slice(s, 300), out["dir"] / f"part-{k:02d}.parquet", row_group_size=100)
    (out["dir"] / "_SUCCESS").write_text("")
    return out


def _read_all(source, cols):
    parts, starts = [], []
    for b in source.blocks(cols, types=design.float_types(source, cols) if source.kind == "csv" else None):
        starts.append(b.start)
        parts.append(b.table)
    return pa.concat_tables(parts).to_pandas(), starts


@pytest.mark.parametrize("kind", ["csv", "tsv", "gz", "parquet", "feather", "dir", "glob", "pandas", "arrow"])
def test_every_format_reads_the_same_rows_in_order(kind, files, frame):
    data = frame if kind == "pandas" else pa.Table.from_pandas(frame) if kind == "arrow" else files[kind]
    source = open_table(data)
    assert source.column_names == list(frame.columns)
    got, starts = _read_all(source, ["a", "b", "y"])
    np.testing.assert_array_equal(got["a"].to_numpy(), frame["a"].to_numpy())  # CSV floats round-trip exactly
    np.testing.assert_array_equal(got["b"].to_numpy(), frame["b"].to_numpy())
    assert starts[0] == 0 and starts == sorted(starts)
    if kind == "parquet":
        assert len(starts) == pq.ParquetFile(files["parquet"]).num_row_groups  # one row group per block
    if source.num_rows is not None:
        assert source.num_rows == len(frame)


def test_csv_is_read_in_bounded_blocks(files, frame):
    source = open_table(files["csv"], csv_block_bytes=4096)
    got, starts = _read_all(source, ["a", "y"])
    assert len(starts) > 5
    np.testing.assert_array_equal(got["y"].to_numpy(), frame["y"].to_numpy())
    est = source.estimated_rows()
    assert 0.5 * len(frame) < est < 2 * len(frame)


def test_select_defaults_to_every_other_numeric_column_and_refuses_text(files):
    source = open_table(files["parquet"])
    with pytest.raises(InputError) as e:
        select_columns(source, target="y")
    msg = str(e.value)
    assert e.value.param == "features" and "'city'" in msg and "--features" in msg and "C(city)" in msg
    sel = select_columns(source, target="y", features="a, b,flag")
    assert sel.features == ("a", "b", "flag") and sel.targets == ("y",) and sel.one_d
    sel = select_columns(source, target=["y", "a"], features=["b"], weights=None)
    assert sel.targets == ("y", "a") and not sel.one_d


@pytest.mark.parametrize("param,kwargs,expect", [
    ("target", {"target": "Y"}, "'y'"),
    ("target", {"target": "cty"}, "'city'"),
    ("features", {"target": "y", "features": "a,bb"}, "'b'"),
    ("weights", {"target": "y", "features": "a", "weights": "flg"}, "'flag'"),
])
def test_unknown_columns_suggest_the_closest_names(files, param, kwargs, expect):
    with pytest.raises(InputError) as e:
        select_columns(open_table(files["csv"]), **kwargs)
    assert e.value.param == param and "Did you mean" in str(e.value) and expect in str(e.value)


@pytest.mark.parametrize("kwargs,param", [
    ({"target": "y", "features": "y,a"}, "features"),
    ({"target": "y", "features": "a,a"}, "features"),
    ({"target": "y", "features": ""}, "features"),
    ({"target": "y", "weights": "y"}, "weights"),
    ({"target": "city", "features": "a"}, "target"),
])
def test_inconsistent_selections_are_refused(files, kwargs, param):
    with pytest.raises(InputError) as e:
        select_columns(open_table(files["parquet"]), **kwargs)
    assert e.value.param == param


def test_a_stray_text_value_in_a_numeric_csv_column_gives_column_row_and_value(tmp_path):
    rows = [f"{i},{2 * i}" for i in range(20_000)]
    rows[15_321] = "15321,n/a?"  # far beyond the first parse block
    p = tmp_path / "bad.csv"
    p.write_text("x,y\n" + "\n".join(rows) + "\n")
    source = open_table(p, csv_block_bytes=8192)
    sel = select_columns(source, target="y", features="x")  # the first block infers numbers
    with pytest.raises(BadValueError) as e:
        for _ in source.blocks(["x", "y"], types=design.float_types(source, ["x", "y"])):
            pass
    assert (e.value.column, e.value.row, e.value.value) == ("y", 15_322, "n/a?")
    assert "line 15323" in str(e.value)
    assert sel.features == ("x",)


def test_a_stray_text_value_in_the_first_block_is_still_a_bad_value(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("x,y\n1,2\n2,4\nthree,6\n4,8\n")
    with pytest.raises(BadValueError) as e:
        select_columns(open_table(p), target="y")
    assert (e.value.column, e.value.row, e.value.value) == ("x", 3, "three")


@pytest.mark.parametrize("case", ["missing", "empty", "truncated", "junk", "nomatch", "emptydir"])
def test_unreadable_data_is_an_input_error_about_data(tmp_path, files, case):
    target = {"missing": tmp_path / "nope.csv", "nomatch": str(tmp_path / "*.parquet"),
              "emptydir": tmp_path / "emptydir"}.get(case)
    if case == "empty":
        target = tmp_path / "empty.csv"
        target.write_bytes(b"")
    if case == "truncated":
        raw = files["parquet"].read_bytes()
        target = tmp_path / "cut.parquet"
        target.write_bytes(raw[: len(raw) // 2])
    if case == "junk":
        target = tmp_path / "junk.parquet"
        target.write_bytes(b"this is not a parquet file\n" * 10)
    if case == "emptydir":
        target.mkdir()
    with pytest.raises(InputError) as e:
        open_table(target)
    assert e.value.param == "data" and "data must" in str(e.value)


def test_a_corrupt_row_group_fails_while_reading_with_the_file_named(tmp_path, files):
    raw = bytearray(files["parquet"].read_bytes())
    raw[4:64] = b"\xff" * 60  # the first page header of the first row group; the footer is intact
    p = tmp_path / "corrupt.parquet"
    p.write_bytes(bytes(raw))
    source = open_table(p)
    with pytest.raises(InputError) as e:
        for _ in source.blocks(["a", "b", "y"]):
            pass
    assert "corrupt.parquet" in str(e.value) and "row group" in str(e.value)


def test_header_only_csv_opens_and_has_no_rows(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("x,y\n")
    source = open_table(p)
    assert source.column_names == ["x", "y"]
    assert sum(b.table.num_rows for b in source.blocks(["x", "y"])) == 0


def test_prefetch_keeps_order_propagates_errors_and_stops_early():
    assert list(prefetch(lambda: iter(range(50)), depth=2)) == list(range(50))

    def boom():
        yield 1
        raise InputError("data", "data must be fine; got broken.")

    it = prefetch(boom)
    assert next(it) == 1
    with pytest.raises(InputError, match="broken"):
        next(it)
    produced = []

    def many():
        for i in range(10_000):
            produced.append(i)
            yield i

    it = prefetch(many, depth=1)
    assert next(it) == 0
    it.close()  # the producer stops: it ran at most a few items ahead
    assert len(produced) <= 4


def test_polars_frames_are_accepted_when_polars_is_installed(frame):
    pl = pytest.importorskip("polars")
    source = open_table(pl.from_pandas(frame))
    assert source.kind == "frame" and source.num_rows == len(frame)
