"""Tables in: CSV, Parquet (file, directory, glob), Arrow/Feather and DataFrames, read in blocks.

:func:`open_table` returns a :class:`Source`: the column names and types of the data, and
:meth:`Source.blocks`, a fresh iterator of :class:`Block` (a ``pyarrow.Table`` of the columns
asked for and the index of its first row) every time it is called, so that a file can be
passed over more than once (refinement passes of an exact fit) without being held in memory.

Memory is bounded by two blocks, whatever the size of the file: files are read one block ahead
in a worker thread (:func:`~jaxlm.io.values.read_ahead`; decoding releases the GIL), so the next
block is decoded while the caller converts and sums the current one.

- Parquet is read **one row group at a time** (``ParquetFile.read_row_group``). pyarrow's
  ``dataset.to_batches`` and ``ParquetFile.iter_batches`` keep memory that grows with the
  file (apache/arrow#39808: 2.3 GB and 1.5 GB on a 1.7 GB file, against 0.4 GB for row
  groups), and ``iter_batches`` costs 1.5x the CPU of ``read_row_group``. A row group whose
  selected columns exceed :data:`MAX_BLOCK_BYTES` is read in slices of one row group with
  ``iter_batches`` instead. A decoded row group is handed out in zero-copy slices of about
  :data:`~jaxlm.io.values.SLICE_BYTES` (:func:`slice_rows`): the caller's float64 copy of a slice then stays in
  cache while it is summed (copy + Gram measured 25% cheaper than on a whole 250,000-row group).
- CSV is parsed by ``pyarrow.csv.open_csv`` in pieces of :data:`~jaxlm.io.values.CSV_PARSE_BYTES` (faster than
  larger pieces), joined without copies into blocks of :data:`CSV_BLOCK_BYTES` of text; the
  numeric columns are converted straight to float64, so a non-numeric value is reported
  with its column, row and text (:class:`BadValueError`). CSV rules: the text must be UTF-8
  (a value that is not is named with its row); a quoted value may span lines; a column of
  ``true``/``false`` is read as booleans, used as 1/0 like Parquet booleans; a **blank line is
  a row whose fields are all missing** (in a one-column file it is an empty value, so rows stay
  aligned with lines), except blank lines at the very end of a file of two or more columns,
  which are ignored; compressed or binary content under a text name is refused with what it
  is (a compressed CSV is read by its extension: ``.csv.gz``, ``.csv.bz2``, ``.csv.zst``,
  ``.csv.lz4``).
- Integers are used as float64: an int64/uint64 value beyond ±2**53 that float64 cannot hold
  exactly is refused with its column, row and value (rounding it would change the data
  silently); one it holds exactly (e.g. 2**60) is converted. (CSV numbers are decimal text,
  parsed to the nearest float64 like any decimal.)
- A directory or glob of Parquet/Arrow files must agree on each used column's kind: numbers
  in one file and text, timestamps or lists in another are refused, naming the file.
- Arrow IPC / Feather files are read record batch by record batch (not memory-mapped:
  mapped pages would count in the process's resident memory).
- DataFrames (pandas, polars via ``to_arrow()``, pyarrow Tables) are sliced without copies.

Row numbers in messages are 1-based data rows (the header is not counted; for a CSV file
with a header line, data row r is on line r + 1).

CSV lives in :mod:`jaxlm.io.csvsource`; turning blocks into numbers in :mod:`jaxlm.io.design`.
"""
from __future__ import annotations

import glob as _glob
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..core.errors import InputError

from .values import ARROW_EXT, BLOCK_ROWS, SLICE_BYTES, Block, COMPRESSED_EXT, CSV_BLOCK_BYTES, CSV_EXT, MAX_BLOCK_BYTES, PARQUET_EXT, Source, _check_unique, read_ahead, _first_failing, _first_line, _is_numeric, _is_text, check_integers
from .csvsource import CsvSource, _MultiCsv


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
        _check_unique([str(c) for c in data.columns], "the DataFrame")  # before pyarrow meets them
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
        _check_unique(list(table.schema.names), self.name)

    def blocks(self, columns, *, types=None):
        t = self.table.select(list(columns))
        for s in range(0, t.num_rows, BLOCK_ROWS):
            yield Block(s, check_integers(t.slice(s, BLOCK_ROWS), s))


def _kind(t: pa.DataType) -> str:
    """How a column can be used: "number", "text", "empty" (all null) or its Arrow type."""
    if pa.types.is_null(t):
        return "empty"
    if _is_numeric(t):
        return "number"
    return "text" if _is_text(t) else str(t)


def check_same_kinds(source: "Source", files: Sequence[Path], schemas: Sequence[pa.Schema], rows: Sequence,
                     columns: Sequence[str]) -> None:
    """Raise an InputError when the files of a directory or glob disagree on the kind of a used column
    (numbers in one, text, timestamps or lists in another), naming the file and, for text, its
    first value that is not a number. ``rows[i]``: rows in file i (None: unknown)."""
    for c in columns:
        want = _kind(schemas[0].field(c).type)
        offset = 0
        for k, (f, schema) in enumerate(zip(files, schemas)):
            t = schema.field(c).type if c in schema.names else pa.null()
            kind = _kind(t)
            if kind != want and "empty" not in (kind, want):
                example = ""
                if kind == "text" and want == "number" and hasattr(source, "file_text"):
                    found = source.file_text(k, c)
                    if found is not None:
                        i, value = found
                        row = f", data row {offset + i + 1}" if None not in rows[:k] else ""
                        example = f" (its row {i + 1} holds {value!r}{row})"
                raise InputError("data", f"data files must agree on the type of each column; got column {c!r} of "
                                         f"type {t} in {str(f)!r}{example}, but {schemas[0].field(c).type} in "
                                         f"{str(files[0])!r}. Rewrite that file with the column as "
                                         f"{'numbers' if want == 'number' else want}, or leave it out.")
            offset += rows[k] or 0


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

    def file_text(self, k: int, column: str) -> tuple[int, str] | None:
        """``(row in file k, value)`` of the first value of a text column there that is not a number."""
        h, offset = self._handles[k], 0
        for i in range(h.num_row_groups):
            arr = pc.cast(h.read_row_group(i, columns=[column]).column(0), pa.string()).combine_chunks()
            j = _first_failing(arr, pa.float64())
            if j is not None:
                return offset + j, arr[j].as_py()
            offset += len(arr)
        return None

    def _tables(self, columns) -> Iterator[tuple[int, pa.Table]]:
        """``(start, table)`` per row group (or per slice of one too big to decode whole), in order."""
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
                            yield start, check_integers(pa.Table.from_batches([batch]), start)
                            del batch
                            start += n
                        continue
                    t = h.read_row_group(i, columns=columns, use_threads=True)
                except (OSError, pa.ArrowException) as e:
                    raise InputError("data", f"data must be a readable Parquet file; got data={str(f)!r} "
                                             f"(row group {i}: {_first_line(e)}).") from None
                n = t.num_rows
                yield start, check_integers(t, start)
                del t  # not held while the next row group is read
                start += n

    def blocks(self, columns, *, types=None):
        """Row groups read one ahead in a worker thread (:func:`read_ahead`) while the caller uses the
        current one, handed out in zero-copy slices of :func:`slice_rows` rows."""
        columns = list(columns)
        check_same_kinds(self, self.files, [h.schema_arrow for h in self._handles],
                         [h.metadata.num_rows for h in self._handles], columns)
        target = slice_rows(len(columns))
        tables = read_ahead(self._tables(columns))
        try:
            while (item := next(tables, None)) is not None:
                start, t = item
                del item
                n = t.num_rows
                step = -(-n // -(-n // target)) if n > target else max(n, 1)  # equal slices of <= target rows
                for s in range(0, n, step):
                    yield Block(start + s, t.slice(s, step) if n > step else t)
                del t  # freed before the row group after next is read
        finally:
            tables.close()


def slice_rows(n_columns: int) -> int:
    """Rows per block handed out of a Parquet row group: about :data:`SLICE_BYTES` of float64 values
    (a block that stays in cache while it is converted and summed), and at least 16 rows per column
    (so that merging a block's d×d summary costs little next to forming it)."""
    k = max(1, int(n_columns))
    return max(SLICE_BYTES // (8 * k), 16 * k, 1)


class ArrowSource(Source):
    """Arrow IPC files (Feather v2) or streams, read record batch by record batch."""

    kind = "arrow"

    def __init__(self, files: Sequence[Path], name: str):
        self.files, self.name = list(files), name
        schemas, rows, counts = [], 0, []
        for f in self.files:
            with self._open(f) as (reader, n):
                schemas.append(reader.schema)
                counts.append(n)
                rows = None if (rows is None or n is None) else rows + n
        self.schema = schemas[0]
        self.num_rows = rows
        self._schemas, self._counts = schemas, counts

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

    def _tables(self, columns) -> Iterator[Block]:
        start = 0
        for f in self.files:
            with self._open(f) as (reader, _):
                try:
                    if isinstance(reader, pa.ipc.RecordBatchFileReader):
                        batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
                    else:
                        batches = iter(reader)
                    for t in _coalesce(b.select(columns) for b in batches):
                        yield Block(start, check_integers(t, start))
                        start += t.num_rows
                except (OSError, pa.ArrowException) as e:
                    raise InputError("data", f"data must be a readable Arrow IPC/Feather file; got data={str(f)!r} "
                                             f"(after data row {start}: {_first_line(e)}).") from None

    def blocks(self, columns, *, types=None):
        """Blocks read one ahead in a worker thread (:func:`~jaxlm.io.values.read_ahead`)."""
        columns = list(columns)
        check_same_kinds(self, self.files, self._schemas, self._counts, columns)
        tables = read_ahead(self._tables(columns))
        try:
            yield from tables
        finally:
            tables.close()


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
