"""Tables in: CSV, Parquet (file, directory, glob), Arrow/Feather and DataFrames, read in blocks.

:func:`open_table` returns a :class:`Source`: the column names and types of the data, and
:meth:`Source.blocks`, a fresh iterator of :class:`Block` (a ``pyarrow.Table`` of the columns
asked for and the index of its first row) every time it is called, so that a file can be
passed over more than once (refinement passes of an exact fit) without being held in memory.

Memory is bounded by one block, whatever the size of the file:

- Parquet is read **one row group at a time** (``ParquetFile.read_row_group``). pyarrow's
  ``dataset.to_batches`` and ``ParquetFile.iter_batches`` keep memory that grows with the
  file (apache/arrow#39808: 2.3 GB and 1.5 GB on a 1.7 GB file, against 0.4 GB for row
  groups). A row group whose selected columns exceed :data:`MAX_BLOCK_BYTES` is read in
  slices of one row group with ``iter_batches`` instead.
- CSV is parsed by ``pyarrow.csv.open_csv`` in blocks of :data:`CSV_BLOCK_BYTES`; the
  numeric columns are converted straight to float64, so a non-numeric value is reported
  with its column, row and text (:class:`BadValueError`).
- Arrow IPC / Feather files are read record batch by record batch (not memory-mapped:
  mapped pages would count in the process's resident memory).
- DataFrames (pandas, polars via ``to_arrow()``, pyarrow Tables) are sliced without copies.

Row numbers in messages are 1-based data rows (the header is not counted; for a CSV file
with a header line, data row r is on line r + 1).

:func:`select_columns` resolves ``target`` / ``features`` / ``weights`` by name (unknown
names get the closest matches; a non-numeric column among the features is an error that
names it), and :func:`numeric_design` turns blocks into the float64 ``(X, Y, w)`` arrays of
the core, applying the missing-value policy. :func:`prefetch` overlaps reading and decoding
the next block (a thread; pyarrow releases the GIL) with the arithmetic on the current one.
"""
from __future__ import annotations

import difflib
import glob as _glob
import os
import queue
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.errors import InputError

__all__ = ["Block", "BadValueError", "DesignBlock", "MISSING", "Selection", "Source", "numeric_design",
           "open_table", "prefetch", "select_columns", "closest_names"]

PARQUET_EXT = (".parquet", ".pq", ".parq")
ARROW_EXT = (".arrow", ".feather", ".ipc", ".arrows", ".fea")
CSV_EXT = (".csv", ".tsv", ".tab", ".txt")
COMPRESSED_EXT = (".gz", ".bz2", ".zst", ".lz4")
#: CSV parse block (bytes); one block of rows is converted at a time.
CSV_BLOCK_BYTES = 8 << 20
#: In-memory tables and small record batches are handed out in blocks of about this many rows.
BLOCK_ROWS = 65_536
#: A Parquet row group whose selected columns decode to more than this is read in slices.
MAX_BLOCK_BYTES = 256 << 20
MISSING = ("raise", "drop")


class BadValueError(InputError):
    """A value that cannot be read as a number, with its column, 1-based data row and text."""

    def __init__(self, column: str, row: int, value: str, where: str = ""):
        super().__init__("data", f"data column {column!r} must hold numbers; got {value!r} at data row {row}"
                                 f"{where}. Fix or remove that value (an empty field or NA marks it missing).")
        self.column, self.row, self.value = column, row, value


class Block(NamedTuple):
    """A slice of the source: ``table`` holds the columns asked for; ``start`` is the 0-based
    index of its first row among all data rows of the source."""

    start: int
    table: pa.Table


# --------------------------------------------------------------------------- helpers


def closest_names(name: str, names: Sequence[str], n: int = 3) -> list[str]:
    """The names most like ``name`` (difflib), case-insensitive matches first."""
    exact_ci = [c for c in names if c.lower() == str(name).lower()]
    near = difflib.get_close_matches(str(name), list(names), n=n, cutoff=0.5)
    near_ci = [names[[c.lower() for c in names].index(m)] for m in
               difflib.get_close_matches(str(name).lower(), [c.lower() for c in names], n=n, cutoff=0.5)]
    out: list[str] = []
    for c in exact_ci + near + near_ci:
        if c not in out:
            out.append(c)
    return out[:n]


def unknown_column_error(param: str, name: str, names: Sequence[str], data: str) -> InputError:
    near = closest_names(name, names)
    hint = f" Did you mean {' or '.join(repr(c) for c in near)}?" if near else ""
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    return InputError(param, f"{param} must name a column of {data}; got {param}={name!r}, which is not one."
                             f"{hint} Columns: {shown}.")


def _is_numeric(t: pa.DataType) -> bool:
    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
            or pa.types.is_decimal(t) or pa.types.is_null(t))


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return True
    return pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view",
                                                                            lambda _: False)(t)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0].strip() if text else type(e).__name__


def to_float64(col) -> np.ndarray:
    """A column (Array or ChunkedArray) as a float64 NumPy array; nulls become NaN."""
    if col.type != pa.float64():
        col = pc.cast(col, pa.float64())
    if isinstance(col, pa.ChunkedArray) and col.num_chunks == 1:
        col = col.chunk(0)
    return col.to_numpy(zero_copy_only=False)


def to_matrix(table: pa.Table, names: Sequence[str]) -> np.ndarray:
    """The named columns as an (n, k) float64 array in column-major order (one copy per column)."""
    M = np.empty((table.num_rows, len(names)), dtype=np.float64, order="F")
    for j, name in enumerate(names):
        M[:, j] = to_float64(table.column(name))
    return M


# --------------------------------------------------------------------------- sources


class Source:
    """Tabular data that can be read block by block, any number of times.

    Attributes
    ----------
    name : str            how messages refer to the data (the path as given, or "the DataFrame")
    kind : str            "csv", "parquet", "arrow" or "frame"
    schema : pyarrow.Schema   column names and types (CSV: inferred from the first block)
    num_rows : int or None    known up front (Parquet metadata, Arrow files, DataFrames); None for CSV
    """

    name: str
    kind: str
    schema: pa.Schema
    num_rows: int | None

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def estimated_rows(self) -> int | None:
        """``num_rows`` when known, else an estimate (CSV: from the bytes per line of its start)."""
        return self.num_rows

    def require(self, columns: Iterable[str], param: str) -> None:
        """Raise an InputError naming ``param`` and the closest names for a column not in the data."""
        names = self.column_names
        for c in columns:
            if c not in names:
                raise unknown_column_error(param, c, names, self.name)

    def blocks(self, columns: Sequence[str], *, types: dict | None = None) -> Iterator[Block]:
        """A fresh iterator over the data in blocks of the named ``columns``.

        ``types`` (CSV only) fixes the Arrow type a column is converted to (e.g. float64 for
        every numeric column, so that one block's integers and another's decimals agree).
        """
        raise NotImplementedError

    def text_blocks(self, column: str) -> Iterator[tuple[int, pa.Array]]:
        """``(start, values as strings)`` over one column: to locate a value that is not a number."""
        for block in self.blocks([column]):
            col = block.table.column(column)
            if not _is_text(col.type):
                col = pc.cast(col, pa.string())
            elif pa.types.is_dictionary(col.type):
                col = pc.cast(col, pa.string())
            yield block.start, col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col

    def line_hint(self, row: int) -> str:
        return ""


def _expand(data: str) -> tuple[list[Path], str]:
    """Files named by a path, directory or glob pattern, and the format they share."""
    p = Path(os.path.expanduser(data))
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(PARQUET_EXT)
                       and not f.name.startswith((".", "_")))
        if not files:
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(ARROW_EXT)
                           and not f.name.startswith((".", "_")))
            if not files:
                raise InputError("data", f"data must be a file, a directory of Parquet files or a glob pattern; "
                                         f"got data={data!r}, a directory with no .parquet files.")
            return files, "arrow"
        return files, "parquet"
    if p.exists():
        if not p.is_file():
            raise InputError("data", f"data must be a regular file; got data={data!r}.")
        return [p], _format_of(p)
    if any(ch in data for ch in "*?["):
        files = sorted(Path(f) for f in _glob.glob(os.path.expanduser(data), recursive=True) if Path(f).is_file())
        if not files:
            raise InputError("data", f"data must match at least one file; got data={data!r}, which matches none.")
        fmts = {_format_of(f) for f in files}
        if len(fmts) > 1:
            raise InputError("data", f"data must match files of one format; got data={data!r}, which matches "
                                     f"{', '.join(sorted(fmts))} files.")
        return files, fmts.pop()
    parent = p.parent
    why = "no such file or directory" if parent.exists() else f"no such directory {str(parent)!r}"
    raise InputError("data", f"data must be an existing file, directory or glob pattern; got data={data!r} ({why}).")


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for ext in COMPRESSED_EXT:
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.endswith(PARQUET_EXT):
        return "parquet"
    if name.endswith(ARROW_EXT):
        return "arrow"
    if name.endswith(CSV_EXT):
        return "csv"
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as e:
        raise InputError("data", f"data must be a readable file; got data={str(path)!r} ({e.strerror}).") from None
    if head[:4] == b"PAR1":
        return "parquet"
    if head[:6] == b"ARROW1" or head[:4] == b"\xff\xff\xff\xff":
        return "arrow"
    return "csv"


def open_table(data, *, format: str | None = None, csv_block_bytes: int = CSV_BLOCK_BYTES) -> Source:
    """A :class:`Source` over ``data``.

    Parameters
    ----------
    data : str or os.PathLike, pandas.DataFrame, polars.DataFrame, pyarrow.Table or RecordBatch
        A CSV/TSV file (optionally .gz/.bz2/.zst compressed), a Parquet file, a directory of
        Parquet files (read recursively, in sorted order; hidden and ``_``-prefixed files
        skipped), a glob pattern (``"data/*.parquet"``, ``**`` allowed), or an Arrow IPC /
        Feather file. The format comes from the extension, else from the file's first bytes.
    format : {"csv", "parquet", "arrow"}, optional
        Overrides the detection.

    Raises
    ------
    InputError (``param="data"``) for a missing, empty or unreadable file.
    """
    if isinstance(data, Source):
        return data
    table = _as_arrow_table(data)
    if table is not None:
        return FrameSource(table)
    if not isinstance(data, (str, os.PathLike)):
        raise InputError("data", f"data must be a path, a glob pattern or a DataFrame; got {type(data).__name__}.")
    text = os.fspath(data)
    if not text:
        raise InputError("data", "data must be a path; got data=''.")
    files, fmt = _expand(text)
    if format is not None:
        if format not in ("csv", "parquet", "arrow"):
            raise InputError("format", f"format must be 'csv', 'parquet' or 'arrow'; got format={format!r}.")
        fmt = format
    for f in files:
        try:
            size = f.stat().st_size
        except OSError as e:
            raise InputError("data", f"data must be a readable file; got data={str(f)!r} ({e.strerror}).") from None
        if size == 0:
            raise InputError("data", f"data must not be empty; got data={str(f)!r}, a file of 0 bytes.")
        if not os.access(f, os.R_OK):
            raise InputError("data", f"data must be a readable file; got data={str(f)!r} (permission denied).")
    if fmt == "parquet":
        return ParquetSource(files, text)
    if fmt == "arrow":
        return ArrowSource(files, text)
    if len(files) > 1:
        return _MultiCsv([CsvSource(f, str(f), block_bytes=csv_block_bytes) for f in files], text)
    return CsvSource(files[0], text, block_bytes=csv_block_bytes)


def _as_arrow_table(data) -> pa.Table | None:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__ or ""
    if module.startswith("polars") and hasattr(data, "to_arrow"):
        return data.to_arrow()
    if module.startswith("pandas") and hasattr(data, "columns"):
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
            raise InputError("data", f"data must be a DataFrame whose columns each hold one type; got "
                                     f"{_first_line(e)}.") from None
    return None


class FrameSource(Source):
    """An in-memory Arrow table (from pandas, polars or pyarrow), handed out in zero-copy slices."""

    kind = "frame"

    def __init__(self, table: pa.Table, name: str = "the DataFrame"):
        self.table, self.name = table, name
        self.schema = table.schema
        self.num_rows = table.num_rows
        names = list(table.schema.names)
        if len(set(names)) != len(names):
            dup = sorted({c for c in names if names.count(c) > 1})
            raise InputError("data", f"data must have unique column names; got {self.name} with repeated "
                                     f"{', '.join(map(repr, dup))}.")

    def blocks(self, columns, *, types=None):
        t = self.table.select(list(columns))
        for s in range(0, t.num_rows, BLOCK_ROWS):
            yield Block(s, t.slice(s, BLOCK_ROWS))


class ParquetSource(Source):
    """One or more Parquet files, read one row group at a time."""

    kind = "parquet"

    def __init__(self, files: Sequence[Path], name: str):
        import pyarrow.parquet as pq

        self.files, self.name = list(files), name
        self._pq = pq
        self._handles = []
        for f in self.files:
            try:
                # no memory map (mapped pages count as resident memory); no pre-buffering (it holds a
                # second copy of the row group: measured 100 MB more peak memory, and no faster locally)
                self._handles.append(pq.ParquetFile(f, memory_map=False, pre_buffer=False))
            except (OSError, pa.ArrowException) as e:
                raise InputError("data", f"data must be a readable Parquet file; got data={str(f)!r} "
                                         f"({_first_line(e)}).") from None
        self.schema = self._handles[0].schema_arrow
        self.num_rows = sum(h.metadata.num_rows for h in self._handles)
        for f, h in zip(self.files[1:], self._handles[1:]):
            missing = [c for c in self.schema.names if c not in h.schema_arrow.names]
            if missing:
                raise InputError("data", f"data files must share their columns; got {str(f)!r} without "
                                         f"{', '.join(map(repr, missing[:5]))} (present in {str(self.files[0])!r}).")

    def blocks(self, columns, *, types=None):
        columns = list(columns)
        start = 0
        for f, h in zip(self.files, self._handles):
            md = h.metadata
            width = [md.schema.column(i).name for i in range(md.num_columns)]
            share = max(sum(1 for c in width if c.split(".")[0] in columns), 1) / max(len(width), 1)
            for i in range(h.num_row_groups):
                rg = md.row_group(i)
                try:
                    if rg.total_byte_size * share > MAX_BLOCK_BYTES and rg.num_rows > 1:
                        rows = max(1, int(rg.num_rows * MAX_BLOCK_BYTES / (rg.total_byte_size * share)))
                        for batch in h.iter_batches(batch_size=rows, row_groups=[i], columns=columns,
                                                    use_threads=True):
                            n = batch.num_rows
                            yield Block(start, pa.Table.from_batches([batch]))
                            del batch
                            start += n
                        continue
                    t = h.read_row_group(i, columns=columns, use_threads=True)
                except (OSError, pa.ArrowException) as e:
                    raise InputError("data", f"data must be a readable Parquet file; got data={str(f)!r} "
                                             f"(row group {i}: {_first_line(e)}).") from None
                n = t.num_rows
                yield Block(start, t)
                del t  # not held while the next row group is read
                start += n


class ArrowSource(Source):
    """Arrow IPC files (Feather v2) or streams, read record batch by record batch."""

    kind = "arrow"

    def __init__(self, files: Sequence[Path], name: str):
        self.files, self.name = list(files), name
        schemas, rows = [], 0
        for f in self.files:
            with self._open(f) as (reader, n):
                schemas.append(reader.schema)
                rows = None if (rows is None or n is None) else rows + n
        self.schema = schemas[0]
        self.num_rows = rows

    def _open(self, f: Path):
        import contextlib

        @contextlib.contextmanager
        def cm():
            src = pa.OSFile(str(f), "rb")
            try:
                try:
                    reader = pa.ipc.open_file(src)
                    n = reader.count_rows() if hasattr(reader, "count_rows") else None
                except pa.ArrowInvalid:
                    src.seek(0)
                    reader, n = pa.ipc.open_stream(src), None
            except (OSError, pa.ArrowException) as e:
                src.close()
                raise InputError("data", f"data must be a readable Arrow IPC/Feather file; got data={str(f)!r} "
                                         f"({_first_line(e)}).") from None
            try:
                yield reader, n
            finally:
                src.close()

        return cm()

    def blocks(self, columns, *, types=None):
        columns = list(columns)
        start = 0
        for f in self.files:
            with self._open(f) as (reader, _):
                try:
                    if isinstance(reader, pa.ipc.RecordBatchFileReader):
                        batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
                    else:
                        batches = iter(reader)
                    for t in _coalesce(b.select(columns) for b in batches):
                        yield Block(start, t)
                        start += t.num_rows
                except (OSError, pa.ArrowException) as e:
                    raise InputError("data", f"data must be a readable Arrow IPC/Feather file; got data={str(f)!r} "
                                             f"(after data row {start}: {_first_line(e)}).") from None


def _coalesce(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Record batches joined into tables of at least BLOCK_ROWS rows (big ones pass through)."""
    pending, rows = [], 0
    for b in batches:
        pending.append(b)
        rows += b.num_rows
        if rows >= BLOCK_ROWS:
            yield pa.Table.from_batches(pending)
            pending, rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


class CsvSource(Source):
    """A delimited text file parsed block by block by ``pyarrow.csv.open_csv``."""

    kind = "csv"

    def __init__(self, path: Path, name: str, *, block_bytes: int = CSV_BLOCK_BYTES):
        from pyarrow import csv

        self._csv = csv
        self.path, self.name, self.block_bytes = path, name, int(block_bytes)
        lower = path.name.lower()
        for ext in COMPRESSED_EXT:
            if lower.endswith(ext):
                lower = lower[: -len(ext)]
        self._parse = csv.ParseOptions(delimiter="\t" if lower.endswith((".tsv", ".tab")) else ",")
        try:
            reader = csv.open_csv(path, read_options=csv.ReadOptions(block_size=min(self.block_bytes, 1 << 20)),
                                  parse_options=self._parse,
                                  convert_options=csv.ConvertOptions(strings_can_be_null=True))
        except (OSError, pa.ArrowException) as e:
            reason = _first_line(e)
            if "Empty CSV file" in reason:
                raise InputError("data", f"data must not be empty; got data={name!r}, a CSV file with no header "
                                         f"line.") from None
            raise InputError("data", f"data must be a readable CSV file; got data={name!r} ({reason}).") from None
        self.schema = reader.schema
        reader.close()
        self.num_rows = None
        names = list(self.schema.names)
        if len(set(names)) != len(names):
            dup = sorted({c for c in names if names.count(c) > 1})
            raise InputError("data", f"data must have unique column names; got {name!r} with repeated "
                                     f"{', '.join(map(repr, dup))}.")

    def estimated_rows(self) -> int | None:
        try:
            size = self.path.stat().st_size
            if self.path.name.lower().endswith(COMPRESSED_EXT):
                return None
            with open(self.path, "rb") as fh:
                head = fh.read(1 << 20)
        except OSError:
            return None
        lines = head.count(b"\n")
        if lines <= 1:
            return 1
        return max(1, int(size * (lines - 1) / len(head)))

    def line_hint(self, row: int) -> str:
        return f" (line {row + 1} of {self.name})"

    def _reader(self, columns, types, block_bytes=None):
        csv = self._csv
        convert = csv.ConvertOptions(include_columns=list(columns), strings_can_be_null=True,
                                     column_types={c: t for c, t in (types or {}).items() if c in columns})
        return csv.open_csv(self.path, read_options=csv.ReadOptions(block_size=block_bytes or self.block_bytes),
                            parse_options=self._parse, convert_options=convert)

    def blocks(self, columns, *, types=None):
        columns = list(columns)
        try:
            reader = self._reader(columns, types)
        except (OSError, pa.ArrowException) as e:
            raise self._error(e, columns, types, 0) from None
        start = 0
        with reader:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except (OSError, pa.ArrowException) as e:
                    raise self._error(e, columns, types, start) from None
                yield Block(start, pa.Table.from_batches([batch]))
                start += batch.num_rows

    def _error(self, e, columns, types, start) -> InputError:
        reason = _first_line(e)
        if "conversion error" in reason.lower():
            numeric = [c for c in columns if types and c in types and pa.types.is_floating(types[c])]
            bad = first_bad_value(self, numeric)
            if bad is not None:
                col, row, value = bad
                return BadValueError(col, row + 1, value, self.line_hint(row + 1))
        return InputError("data", f"data must be a well-formed CSV file; got data={self.name!r}: {reason} "
                                  f"(after data row {start}).")

    def text_blocks(self, column):
        reader = self._reader([column], {column: pa.string()})
        start = 0
        with reader:
            for batch in reader:
                yield start, batch.column(0)
                start += batch.num_rows


class _MultiCsv(Source):
    """Several CSV files (a glob) read one after another as one table."""

    kind = "csv"

    def __init__(self, parts: Sequence[CsvSource], name: str):
        self.parts, self.name = list(parts), name
        self.schema = parts[0].schema
        self.num_rows = None
        for p in parts[1:]:
            if p.schema.names != self.schema.names:
                raise InputError("data", f"data files must share their columns; got {p.name!r} with columns "
                                         f"{', '.join(p.schema.names[:8])}, unlike {parts[0].name!r}.")

    def estimated_rows(self):
        est = [p.estimated_rows() for p in self.parts]
        return None if any(e is None for e in est) else sum(est)

    def blocks(self, columns, *, types=None):
        offset = 0
        for p in self.parts:
            n = 0
            try:
                for b in p.blocks(columns, types=types):
                    n = b.start + b.table.num_rows
                    yield Block(offset + b.start, b.table)
            except BadValueError as e:
                raise BadValueError(e.column, e.row + offset, e.value, f" (file {p.name!r})") from None
            offset += n

    def text_blocks(self, column):
        offset = 0
        for p in self.parts:
            n = 0
            for s, arr in p.text_blocks(column):
                n = s + len(arr)
                yield offset + s, arr
            offset += n


# --------------------------------------------------------------------------- locating bad values


def _first_unparsable(arr: pa.Array) -> int | None:
    """Index of the first non-null string that Arrow cannot cast to float64 (binary search)."""
    try:
        pc.cast(arr, pa.float64())
        return None
    except pa.ArrowInvalid:
        pass
    lo, hi = 0, len(arr)  # the first failure lies in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(arr.slice(lo, mid - lo), pa.float64())
            lo = mid
        except pa.ArrowInvalid:
            hi = mid
    return lo


def first_bad_value(source: Source, columns: Sequence[str]) -> tuple[str, int, str] | None:
    """``(column, 0-based row, text)`` of the earliest value in ``columns`` that is not a number."""
    best = None
    for c in columns:
        for start, arr in source.text_blocks(c):
            if best is not None and start > best[1]:
                break
            i = _first_unparsable(arr)
            if i is not None:
                if best is None or start + i < best[1]:
                    best = (c, start + i, arr[i].as_py())
                break
    return best


def _text_column_error(source: Source, column: str, param: str, how: str) -> InputError:
    """A text column where numbers are needed: a stray value in numbers, or a column of text."""
    sample, first_text = [], None
    for start, arr in source.text_blocks(column):
        vals = arr.to_pylist()
        for i, v in enumerate(vals):
            if v is None:
                continue
            try:
                float(v)
                ok = True
            except ValueError:
                ok = False
                if first_text is None:
                    first_text = (start + i, v)
            sample.append(ok)
            if len(sample) >= 2000:
                break
        if len(sample) >= 2000:
            break
    if first_text is None:
        return InputError(param, f"{param} must be numeric columns; got column {column!r} of type "
                                 f"{source.schema.field(column).type}.")
    row, value = first_text
    if sum(sample) > len(sample) / 2:
        return BadValueError(column, row + 1, value, source.line_hint(row + 1))
    fix = ("Choose the numeric columns with features (--features A,B), or encode it as categories with a "
           f"formula term C({column})." if param == "features" else "It must be a numeric column.")
    return InputError(param, f"{param} must be numeric; got {how}column {column!r}, which holds text (e.g. "
                             f"{value!r} at data row {row + 1}). {fix}")


# --------------------------------------------------------------------------- column selection


class Selection(NamedTuple):
    """Columns of a plain (formula-free) model: the targets, the features and the weights."""

    targets: tuple
    features: tuple
    weights: str | None
    one_d: bool  # the target was given as one name (1-D y), not a list


def _as_names(value, param: str) -> list[str]:
    if isinstance(value, str):
        names = [v.strip() for v in value.split(",")] if param == "features" else [value]
    else:
        try:
            names = list(value)
        except TypeError:
            raise InputError(param, f"{param} must be a column name or a list of them; got {param}={value!r}.") from None
    if not names or any(not isinstance(v, str) or not v for v in names):
        raise InputError(param, f"{param} must name at least one column (non-empty strings); got {param}={value!r}.")
    dup = sorted({v for v in names if names.count(v) > 1})
    if dup:
        raise InputError(param, f"{param} must name each column once; got {param}={value!r} (repeats "
                                f"{', '.join(map(repr, dup))}).")
    return names


def check_numeric(source: Source, columns: Sequence[str], param: str, how: str = "") -> None:
    for c in columns:
        t = source.schema.field(c).type
        if _is_numeric(t):
            continue
        if _is_text(t):
            raise _text_column_error(source, c, param, how)
        raise InputError(param, f"{param} must be numeric; got {how}column {c!r} of type {t}. Choose other "
                                f"columns, or convert it to numbers first.")


def select_columns(source: Source, *, target, features=None, weights=None) -> Selection:
    """Resolve the targets, features and weights of a model by column name.

    ``target``: one name (1-D y) or a list (multi-output). ``features``: a list of names or
    a comma-separated string; default every column that is not a target or the weights — a
    non-numeric one among them is an error naming it, never silently dropped.
    """
    if target is None:
        raise InputError("target", "target must name the column(s) to predict; got target=None.")
    one_d = isinstance(target, str)
    targets = _as_names(target, "target")
    source.require(targets, "target")
    w = None
    if weights is not None:
        if not isinstance(weights, str) or not weights:
            raise InputError("weights", f"weights must be one column name; got weights={weights!r}.")
        source.require([weights], "weights")
        if weights in targets:
            raise InputError("weights", f"weights must not be a target column; got weights={weights!r}.")
        w = weights
    if features is None:
        feats = [c for c in source.column_names if c not in targets and c != w]
        if not feats:
            raise InputError("features", f"features must be at least one column besides the target; got "
                                         f"{source.name} with only {', '.join(map(repr, source.column_names))}.")
        how = "the default (every other column) includes "
    else:
        feats = _as_names(features, "features")
        source.require(feats, "features")
        both = [c for c in feats if c in targets or c == w]
        if both:
            raise InputError("features", f"features must not include the target or weights column; got "
                                         f"features containing {', '.join(map(repr, both))}.")
        how = ""
    check_numeric(source, targets, "target")
    check_numeric(source, feats, "features", how)
    if w is not None:
        check_numeric(source, [w], "weights")
    return Selection(tuple(targets), tuple(feats), w, one_d)


def float_types(source: Source, columns: Iterable[str]) -> dict:
    """CSV conversion types: every named column as float64."""
    return {c: pa.float64() for c in columns}


# --------------------------------------------------------------------------- design blocks


class DesignBlock(NamedTuple):
    """Float64 arrays for the core, with the bookkeeping of one source block.

    ``rows`` holds the 0-based source row of each kept row when rows were dropped (None:
    ``start + arange(len(X))``). ``missing`` maps a column to its number of missing values
    in the block; ``n_missing`` counts the rows with any. With ``missing="raise"`` a block
    with missing values is ``void`` (its arrays are not to be used).
    """

    X: np.ndarray
    Y: np.ndarray
    w: np.ndarray
    start: int
    n_read: int
    rows: np.ndarray | None
    missing: dict
    n_missing: int
    first_missing: int = -1  # 0-based source row of the block's first row with a missing value
    void: bool = False

    def source_row(self, i: int) -> int:
        return int(self.rows[i]) if self.rows is not None else self.start + int(i)


def check_missing(missing: str) -> str:
    if missing not in MISSING:
        raise InputError("missing", f"missing must be 'raise' or 'drop'; got missing={missing!r}.")
    return missing


def _nan_counts(arrays_names) -> tuple[dict, np.ndarray]:
    counts, bad = {}, None
    for A, names in arrays_names:
        nan = np.isnan(A)
        per = nan.sum(axis=0)
        for name, k in zip(names, per):
            if k:
                counts[name] = counts.get(name, 0) + int(k)
        rows = nan.any(axis=1)
        bad = rows if bad is None else (bad | rows)
    return counts, bad


def finish_design(X, Y, w, block: Block, names: tuple, missing: str, null_cols: dict,
                  param_w: str | None) -> DesignBlock:
    """Apply the missing-value policy and check the weights of one block of float arrays.

    ``names`` = (feature names, target names, weights name or None). With ``missing="raise"``
    only Arrow nulls are looked for here (free: a count kept by Arrow); NaN values show up as a
    non-finite least-squares state, which is then located (see ``stream``).
    """
    n = X.shape[0]
    fnames, tnames, wname = names
    if missing == "drop":
        groups = [(X, fnames), (Y, tnames)] + ([(w[:, None], (wname,))] if wname else [])
        counts, bad = _nan_counts(groups)
        if bad is not None and bad.any():
            keep = ~bad
            rows = block.start + np.flatnonzero(keep)
            X, Y, w = X[keep], Y[keep], w[keep]
            dropped, first = int(bad.sum()), block.start + int(np.argmax(bad))
        else:
            rows, dropped, counts, first = None, 0, {}, -1
        dblock = DesignBlock(X, Y, w, block.start, n, rows, counts, dropped, first)
    elif null_cols:
        groups = [(X, fnames), (Y, tnames)] + ([(w[:, None], (wname,))] if wname else [])
        counts, bad = _nan_counts(groups)
        return DesignBlock(X, Y, w, block.start, n, None, counts, int(bad.sum()), block.start + int(np.argmax(bad)),
                           void=True)
    else:
        dblock = DesignBlock(X, Y, w, block.start, n, None, {}, 0)
    if wname is not None and dblock.w.size:
        neg = dblock.w < 0
        if neg.any():
            i = int(np.flatnonzero(neg)[0])
            raise InputError(param_w or "weights", f"weights must be >= 0; got weights column {wname!r} = "
                                                   f"{dblock.w[i]!r} at data row {dblock.source_row(i) + 1}.")
    return dblock


def numeric_design(sel: Selection, missing: str) -> Callable[[Block], DesignBlock]:
    """Block -> DesignBlock for plain column selections (one float64 copy of each column)."""
    check_missing(missing)
    used = sel.features + sel.targets + ((sel.weights,) if sel.weights else ())

    def design(block: Block) -> DesignBlock:
        t = block.table
        null_cols = {c: t.column(c).null_count for c in used if t.column(c).null_count}
        X = to_matrix(t, sel.features)
        Y = to_matrix(t, sel.targets)
        w = to_float64(t.column(sel.weights)) if sel.weights else np.ones(t.num_rows)
        return finish_design(X, Y, w, block, (sel.features, sel.targets, sel.weights), missing, null_cols,
                             "weights")

    return design


# --------------------------------------------------------------------------- prefetch

_END = object()


class _Failure(NamedTuple):
    error: BaseException


def prefetch(make: Callable[[], Iterator], *, depth: int = 1, name: str = "jaxlm-reader") -> Iterator:
    """Iterate ``make()`` in a background thread, producing up to ``depth`` items ahead.

    Reading and decoding (pyarrow) and the consumer's arithmetic (BLAS) both release the GIL,
    so they overlap. Memory stays bounded: the producer starts an item only when one of
    ``depth + 1`` permits is free, and the consumer returns its permit when it asks for the
    next item (it is done with the previous one). With ``depth=1`` at most two items are alive:
    the one being summed and the one being read. An exception in the producer is re-raised in
    the consumer; closing the consumer early stops the producer.
    """
    depth = max(1, int(depth))
    q: queue.Queue = queue.Queue()
    permits = threading.Semaphore(depth + 1)
    stop = threading.Event()

    def acquire() -> bool:
        while not stop.is_set():
            if permits.acquire(timeout=0.05):
                return True
        return False

    def work():
        try:
            it = make()
            while acquire():
                try:
                    item = next(it)
                except StopIteration:
                    q.put(_END)
                    return
                q.put(item)
                del item
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(_Failure(e))

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    first = True
    try:
        while True:
            if not first:
                permits.release()  # the consumer is done with the previous item
            first = False
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
            del item
    finally:
        stop.set()
        permits.release()
        while True:
            try:
                q.get_nowait()
            except queue.Empty:
                break
        thread.join()
