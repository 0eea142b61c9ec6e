"""Values from tables: the block type, the Source interface, conversions to float64 and the
errors that name a column, a row and a value. The rest of :mod:`jaxlm.io` builds on these."""
from __future__ import annotations

import re

import collections
import difflib
from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.errors import InputError

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
#: A decoded Parquet row group is handed out in blocks of about this many bytes of float64 values.
SLICE_BYTES = 16 << 20
#: CSV text is parsed in pieces of at most this many bytes (faster than larger ones: the parsed
#: piece stays in cache while it is converted), joined into blocks of ``CSV_BLOCK_BYTES``.
CSV_PARSE_BYTES = 1 << 20
MISSING = ("raise", "drop")
#: Integers of magnitude up to this are exact in float64; beyond it some are not.
MAX_EXACT_INT = 2**53
#: Leading bytes of content that is not CSV text: (magic, what it is, the extension that reads it).
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed", ".gz"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", ".zst"),
    (b"\x04\x22\x4d\x18", "lz4-compressed", ".lz4"),
    (b"\xfd7zXZ\x00", "xz-compressed", None),
    (b"PK\x03\x04", "a ZIP archive", None),
    (b"ARROW1", "an Arrow IPC/Feather file", ".arrow"),
)
_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
         (b"\xfe\xff", "UTF-16"))


class BadValueError(InputError):
    """A value that cannot be read as a number, with its column, 1-based data row and text."""

    def __init__(self, column: str, row: int, value: str, where: str = "", *, booleans: bool = False):
        rule = "true/false values (as its first rows do)" if booleans else "numbers"
        super().__init__("data", f"data column {column!r} must hold {rule}; got {value!r} at data row {row}"
                                 f"{where}. Fix or remove that value (an empty field or NA marks it missing).")
        self.column, self.row, self.value = column, row, value


def not_utf8_error(column: str, row: int, value: bytes, where: str = "") -> InputError:
    """A CSV value that is not UTF-8 text, with its column, 1-based data row and bytes."""
    return InputError("data", f"data must be UTF-8 text; got {value!r} in column {column!r} at data row {row}"
                              f"{where}, which is not valid UTF-8. Save the file as UTF-8 (e.g. iconv -f LATIN1 "
                              f"-t UTF-8, if it is Latin-1).")


def value_error(source: "Source", column: str, row: int, value, *, booleans: bool = False) -> InputError:
    """The error for a value (text or raw bytes) that a numeric column cannot hold; ``row`` is 1-based."""
    where = source.line_hint(row)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return not_utf8_error(column, row, value, where)
    return BadValueError(column, row, value, where, booleans=booleans)


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
    shown = ", ".join(map(repr, names[:12])) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
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


def inexact_integer(col) -> int | None:
    """Index of the first value of an int64/uint64 column that float64 cannot hold exactly
    (it would be rounded); None when every value is exact (always so within ±2**53)."""
    if not (pa.types.is_int64(col.type) or pa.types.is_uint64(col.type)) or len(col) == col.null_count:
        return None
    lo_hi = pc.min_max(col)
    if -MAX_EXACT_INT <= lo_hi["min"].as_py() and lo_hi["max"].as_py() <= MAX_EXACT_INT:
        return None
    a = pc.fill_null(col, 0)
    a = plain_numpy(a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a)
    f = a.astype(np.float64)  # round to nearest; exact iff it converts back to the same integer
    top = 2.0**64 if a.dtype == np.uint64 else 2.0**63  # f == top: rounded up out of range
    exact = (f < top) & (np.where(f < top, f, 0).astype(a.dtype) == a)
    bad = np.flatnonzero(~exact)
    return int(bad[0]) if bad.size else None


def inexact_integer_error(column: str, row: int, value: int, where: str = "") -> InputError:
    """The error for an integer that float64 would round; ``row`` is 1-based."""
    return InputError("data", f"data column {column!r} must hold numbers that float64 represents exactly; got the "
                              f"integer {value} at data row {row}{where}, which float64 would round to "
                              f"{int(float(value))} (integers beyond ±2**53 lose digits). Leave that column out "
                              f"of the model (an identifier?), or convert it to floating point yourself if the "
                              f"rounding is acceptable.")


def check_integers(table: pa.Table, start: int, where: str = "") -> pa.Table:
    """``table`` unchanged, after checking that its int64/uint64 columns hold only integers that
    float64 represents exactly (raises :func:`inexact_integer_error` naming the first other)."""
    for name, col in zip(table.column_names, table.columns):
        i = inexact_integer(col)
        if i is not None:
            raise inexact_integer_error(name, start + i + 1, col[i].as_py(), where)
    return table


def to_float64(col, name: str = "", start: int = 0) -> np.ndarray:
    """A column (Array or ChunkedArray) as a float64 NumPy array; nulls become NaN.

    Integers are converted when float64 holds them exactly, else refused (InputError naming
    ``name`` and the 1-based data row, counted from ``start``).
    """
    if col.type != pa.float64():
        try:
            col = pc.cast(col, pa.float64())
        except pa.ArrowInvalid:  # a large integer: exact ones convert, rounded ones are refused
            if not pa.types.is_integer(col.type):
                raise
            i = inexact_integer(col)
            if i is not None:
                raise inexact_integer_error(name, start + i + 1, col[i].as_py()) from None
            col = pc.cast(col, pa.float64(), safe=False)
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if len(chunks) == 1:
        return float_numpy(chunks[0])
    out = np.empty(len(col), dtype=np.float64)
    r = 0
    for chunk in chunks:
        out[r:r + len(chunk)] = float_numpy(chunk)
        r += len(chunk)
    return out


_F64 = pa.float64()
_PLAIN = {pa.float64(): np.float64, pa.int64(): np.int64, pa.uint64(): np.uint64}


def plain_numpy(a: pa.Array) -> np.ndarray:
    """The values of a float64, int64 or uint64 Array as a read-only NumPy view of its buffer (null
    slots hold whatever the buffer holds). Unlike ``Array.to_numpy``, which makes pyarrow import
    pandas (its conversion initialises pandas' static data: ~0.4 s on the first call), this only
    wraps the buffer."""
    n = len(a)
    buf = a.buffers()[1] if n else None
    if buf is None:
        return np.empty(0, dtype=_PLAIN[a.type])
    return np.frombuffer(buf, dtype=_PLAIN[a.type], count=n, offset=a.offset * 8)


def valid_mask(a: pa.Array) -> np.ndarray | None:
    """(n,) bool, True where ``a`` holds a value; None when it has no nulls."""
    if not a.null_count:
        return None
    n, off = len(a), a.offset
    return bit_flags(a.buffers()[0], off, n)


def bit_flags(buf, offset: int, n: int) -> np.ndarray:
    """(n,) bool from an Arrow bitmap (least significant bit first) starting at bit ``offset``."""
    first, last = offset // 8, (offset + n + 7) // 8
    bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8)[first:last], bitorder="little")
    return bits[offset - 8 * first: offset - 8 * first + n].astype(bool)


def float_numpy(a: pa.Array) -> np.ndarray:
    """A float64 Array as NumPy, nulls as NaN: a view of its buffer when it has no nulls."""
    v = plain_numpy(a)
    valid = valid_mask(a)
    return v if valid is None else np.where(valid, v, np.nan)


def to_matrix(table: pa.Table, names: Sequence[str], start: int = 0) -> np.ndarray:
    """The named columns as an (n, k) float64 array in column-major order (one copy per column).

    A float64 column without nulls is copied chunk by chunk straight from Arrow's buffers
    (:func:`plain_numpy`); others go through :func:`to_float64`.
    """
    M = np.empty((table.num_rows, len(names)), dtype=np.float64, order="F")
    for j, name in enumerate(names):
        col = table.column(name)
        if col.type == _F64 and not col.null_count:
            r = 0
            for chunk in col.chunks:
                k = len(chunk)
                if k:
                    M[r:r + k, j] = plain_numpy(chunk)
                    r += k
        else:
            M[:, j] = to_float64(col, name, start)
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
        """``(start, values as strings)`` over one column: to locate a value that is not a number
        (a CSV source gives raw bytes, which need not be UTF-8)."""
        for block in self.blocks([column]):
            col = block.table.column(column)
            if not _is_text(col.type):
                col = pc.cast(col, pa.string())
            elif pa.types.is_dictionary(col.type):
                col = pc.cast(col, pa.string())
            yield block.start, col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col

    def line_hint(self, row: int) -> str:
        return ""


_DONE = object()


def read_ahead(items: Iterator) -> Iterator:
    """``items``, each produced one ahead in a worker thread while the caller uses the previous one.

    Decoding (pyarrow) releases the GIL, so a row group is read while the caller converts and sums
    the one before. At most two items are alive: the caller's and the one being read (the next
    read starts when the caller asks for the item being read). An exception in the worker is
    raised in the caller; closing the iterator waits for the read in flight and closes ``items``.
    """
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="jaxlm-read-ahead")
    try:
        pending = pool.submit(next, items, _DONE)
        while True:
            item = pending.result()
            if item is _DONE:
                return
            pending = pool.submit(next, items, _DONE)
            yield item
            del item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        items.close()


def _check_unique(names: Sequence[str], what: str) -> None:
    dup = sorted(c for c, k in collections.Counter(names).items() if k > 1)
    if dup:
        raise InputError("data", f"data must have unique column names; got {what} with repeated "
                                 f"{', '.join(map(repr, dup))}. Rename or drop the repeated columns.")


def _first_failing(arr: pa.Array, to: pa.DataType) -> int | None:
    """Index of the first non-null value that Arrow cannot cast to ``to`` (binary search); None if all can."""
    try:
        pc.cast(arr, to)
        return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    lo, hi = 0, len(arr)  # the first failure lies in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(arr.slice(lo, mid - lo), to)
            lo = mid
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            hi = mid
    return lo


def first_bad_value(source: Source, columns) -> tuple[str, int, object] | None:
    """``(column, 0-based row, value)`` of the earliest value in ``columns`` that cannot be read as
    its type. ``columns``: names (read as float64) or a dict name -> Arrow type. The value is the
    text, or raw bytes where the source gives bytes (CSV)."""
    targets = columns if isinstance(columns, dict) else {c: pa.float64() for c in columns}
    best = None
    for c, to in targets.items():
        for start, arr in source.text_blocks(c):
            if best is not None and start > best[1]:
                break
            i = _first_failing(arr, to)
            if i is not None:
                if best is None or start + i < best[1]:
                    best = (c, start + i, arr[i].as_py())
                break
    return best


def _display(value) -> str:
    """A value for a message: text as it is; bytes that are not UTF-8 with escapes."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*|\s*[+-]?(inf|infinity|nan)\s*", re.IGNORECASE)


def _text_column_error(source: Source, column: str, param: str, how: str) -> InputError:
    """A text column where numbers are needed: a stray value in numbers, or a column of text.
    A value counts as a number only as a CSV reader reads one (no ``1_0``, which Python's
    ``float`` accepts); ``true``/``false`` count in a column of them, not among numbers."""
    sample, first_text, first_word, numbers = [], None, None, False
    for start, arr in source.text_blocks(column):
        vals = arr.to_pylist()
        for i, v in enumerate(vals):
            if v is None:
                continue
            text = _display(v)
            if _NUMBER.fullmatch(text):
                numbers, ok = True, True
            elif text.strip().lower() in ("true", "false"):  # read as 1/0 in a column of them
                ok = True
                if first_word is None:
                    first_word = (start + i, v)
            else:
                ok = False
                if first_text is None:
                    first_text = (start + i, v)
            sample.append(ok)
            if len(sample) >= 2000:
                break
        if len(sample) >= 2000:
            break
    words = first_word is not None
    if first_text is None and words and numbers:  # booleans mixed with numbers: the first word is the stray value
        first_text = first_word
    if first_text is None:
        return InputError(param, f"{param} must be numeric columns; got column {column!r} of type "
                                 f"{source.schema.field(column).type}.")
    row, value = first_text
    if sum(sample) > len(sample) / 2:
        return value_error(source, column, row + 1, value, booleans=words and not numbers)
    fix = ("Choose the numeric columns with features (--features A,B), or encode it as categories with a "
           f"formula term C({column})." if param == "features" else "It must be a numeric column.")
    return InputError(param, f"{param} must be numeric; got {how}column {column!r}, which holds text (e.g. "
                             f"{_display(value)!r} at data row {row + 1}). {fix}")
