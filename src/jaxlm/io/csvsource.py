"""CSV and TSV files (one file, or several with one header), read in blocks by ``pyarrow.csv``.
The rules are those of :mod:`jaxlm.io.sources`."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.errors import InputError

from .values import BadValueError, Block, COMPRESSED_EXT, CSV_BLOCK_BYTES, CSV_PARSE_BYTES, Source, _BOMS, _MAGIC, _check_unique, _first_line, bit_flags, first_bad_value, read_ahead, value_error


class CsvSource(Source):
    """A delimited text file parsed block by block by ``pyarrow.csv.open_csv``.

    Quoted values may span lines (``newlines_in_values``: without it a quoted line break at a
    block boundary desynchronises the parser). Blank lines are kept as rows of missing values
    (``ignore_empty_lines=False``), so that row r of the data is the r-th record after the
    header in any CSV; at the end of a file of two or more columns they are left out.
    """

    kind = "csv"

    def __init__(self, path: Path, name: str, *, block_bytes: int = CSV_BLOCK_BYTES):
        from pyarrow import csv

        self._csv = csv
        self.path, self.name, self.block_bytes = path, name, int(block_bytes)
        lower = path.name.lower()
        self._compressed = lower.endswith(COMPRESSED_EXT)
        for ext in COMPRESSED_EXT:
            if lower.endswith(ext):
                lower = lower[: -len(ext)]
        self._parse = csv.ParseOptions(delimiter="\t" if lower.endswith((".tsv", ".tab")) else ",",
                                       newlines_in_values=True, ignore_empty_lines=False)
        head = self._head()
        _check_text(head, path, name)
        try:
            reader = csv.open_csv(path, read_options=csv.ReadOptions(block_size=min(self.block_bytes, 1 << 20)),
                                  parse_options=self._parse,
                                  convert_options=csv.ConvertOptions(strings_can_be_null=True))
            schema = reader.schema
            reader.close()
            names = list(schema.names)
        except UnicodeDecodeError:
            raise _header_not_utf8(head, name) from None
        except (OSError, pa.ArrowException) as e:
            reason = _first_line(e)
            if "Empty CSV file" in reason:
                raise InputError("data", f"data must not be empty; got data={name!r}, a CSV file with no header "
                                         f"line.") from None
            if "utf8" in reason.lower() or "utf-8" in reason.lower():
                raise _header_not_utf8(head, name) from None
            raise InputError("data", f"data must be a readable CSV file; got data={name!r} ({reason}).") from None
        # a column with bytes that are not UTF-8 in the first block is inferred as binary: call it text,
        # so that reading it as text finds the value and names it (see _error)
        self.schema = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_binary(f.type)
                                 or pa.types.is_large_binary(f.type) else f for f in schema])
        self.num_rows = None
        self._tail_blank: int | None = None
        _check_unique(names, repr(name))

    def _head(self, size: int = 1 << 16) -> bytes:
        """The first bytes of the file (decompressed when its name says it is compressed)."""
        try:
            if self._compressed:
                with pa.input_stream(str(self.path), compression="detect") as fh:
                    return fh.read(size)
            with open(self.path, "rb") as fh:
                return fh.read(size)
        except (OSError, pa.ArrowException) as e:
            what = "compressed file" if self._compressed else "file"
            raise InputError("data", f"data must be a readable {what}; got data={self.name!r} "
                                     f"({_first_line(e)}).") from None

    def estimated_rows(self) -> int | None:
        try:
            size = self.path.stat().st_size
            if self._compressed:
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
        line = _record_line(self.path, row)
        return f" (line {line} of {self.name})" if line is not None else ""

    def _read_types(self, columns, types) -> dict:
        """The Arrow types the named columns are converted to: as asked, except that a true/false
        column asked for as float stays boolean (1/0 downstream, as a Parquet boolean)."""
        types = {c: t for c, t in (types or {}).items() if c in columns}
        for c, t in types.items():
            if pa.types.is_floating(t) and pa.types.is_boolean(self.schema.field(c).type):
                types[c] = pa.bool_()
        return types

    def _reader(self, columns, types, block_bytes=None):
        csv = self._csv
        convert = csv.ConvertOptions(include_columns=list(columns), strings_can_be_null=True,
                                     column_types=self._read_types(columns, types))
        return csv.open_csv(self.path, read_options=csv.ReadOptions(block_size=block_bytes or self.block_bytes),
                            parse_options=self._parse, convert_options=convert)

    def _batches(self, columns, types, block_bytes=None) -> Iterator[pa.RecordBatch]:
        """The record batches of ``columns``, without the rows of blank lines that end a file of two
        or more columns (one batch is held back to know which is last)."""
        reader = self._reader(columns, types, block_bytes)
        with reader:
            held = None
            for batch in reader:
                if held is not None:
                    yield held
                held = batch
            if held is not None:
                yield self._trim_tail(held)

    def _trim_tail(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if len(self.schema) < 2 or batch.num_rows == 0 or batch.num_columns == 0:
            return batch
        empty = None
        for col in batch.columns:
            m = pc.is_null(col)
            empty = m if empty is None else pc.and_(empty, m)
        flags = bit_flags(empty.buffers()[1], empty.offset, len(empty))  # (is_null has no nulls itself)
        k = len(flags) - (int(np.flatnonzero(~flags)[-1]) + 1 if (~flags).any() else 0)
        if k == 0:
            return batch
        k = min(k, self._trailing_blank_lines())
        return batch.slice(0, batch.num_rows - k) if k else batch

    def _trailing_blank_lines(self) -> int:
        """How many blank lines end the file (after the line break of its last row)."""
        if self._tail_blank is None:
            tail = b""
            try:
                if self._compressed:
                    with pa.input_stream(str(self.path), compression="detect") as fh:
                        while chunk := fh.read(1 << 20):
                            tail = (tail + chunk)[-(1 << 16):]
                else:
                    with open(self.path, "rb") as fh:
                        fh.seek(max(0, self.path.stat().st_size - (1 << 16)))
                        tail = fh.read()
            except (OSError, pa.ArrowException):
                pass
            ends = re.search(rb"(?:\r\n|\n|\r)*\Z", tail).group()
            self._tail_blank = max(len(re.findall(rb"\r\n|\n|\r", ends)) - 1, 0)
        return self._tail_blank

    def _joined(self, columns, types) -> Iterator[pa.Table]:
        """The file parsed in pieces of at most :data:`CSV_PARSE_BYTES`, joined into tables of about
        ``block_bytes`` of text (one chunk per piece: no copy)."""
        parse = max(1, min(self.block_bytes, CSV_PARSE_BYTES))
        per = max(1, self.block_bytes // parse)
        pending = []
        for batch in self._batches(columns, types, parse):
            pending.append(batch)
            if len(pending) >= per:
                yield pa.Table.from_batches(pending)
                pending = []
        if pending:
            yield pa.Table.from_batches(pending)

    def blocks(self, columns, *, types=None):
        """Blocks parsed one ahead in a worker thread (:func:`~jaxlm.io.values.read_ahead`) while the
        caller uses the current one."""
        columns = list(columns)
        start = 0
        tables = read_ahead(self._joined(columns, types))
        try:
            while (t := next(tables, None)) is not None:
                n = t.num_rows
                yield Block(start, t)
                del t
                start += n
        except (OSError, pa.ArrowException) as e:
            raise self._error(e, columns, types, start) from None
        finally:
            tables.close()

    def _error(self, e, columns, types, start) -> InputError:
        reason = _first_line(e)
        low = reason.lower()
        if "conversion error" in low:
            read = self._read_types(columns, types)
            targets = {c: t for c, t in read.items() if not pa.types.is_string(t)}
            if "utf8" in low:  # a text column with bytes that are not UTF-8
                targets = {c: pa.string() for c in columns}
            bad = first_bad_value(self, targets)
            if bad is not None:
                col, row, value = bad
                return value_error(self, col, row + 1, value, booleans=pa.types.is_boolean(targets[col]))
        return InputError("data", f"data must be a well-formed CSV file; got data={self.name!r}: {reason} "
                                  f"(after data row {start}).")

    def text_blocks(self, column):
        """``(start, values)`` of one column as raw bytes (binary: a value need not be UTF-8)."""
        start = 0
        try:
            for batch in self._batches([column], {column: pa.binary()}):
                yield start, batch.column(0)
                start += batch.num_rows
        except (OSError, pa.ArrowException) as e:
            raise InputError("data", f"data must be a well-formed CSV file; got data={self.name!r}: "
                                     f"{_first_line(e)} (after data row {start}).") from None


def _check_text(head: bytes, path: Path, name: str) -> None:
    """Refuse content that is not CSV text, saying what it is: compressed, an archive, Parquet,
    Arrow, UTF-16/32, or binary (NUL bytes)."""
    what, ext = None, None
    for magic, kind, e in _MAGIC:
        if head.startswith(magic):
            what, ext = kind, e
    if re.match(rb"BZh[1-9]1AY&SY", head):
        what, ext = "bzip2-compressed", ".bz2"
    if head.startswith(b"PAR1"):
        try:
            with open(path, "rb") as fh:
                fh.seek(-4, os.SEEK_END)
                if fh.read(4) == b"PAR1":
                    what, ext = "a Parquet file", ".parquet"
        except OSError:
            pass
    if what is None:
        for bom, enc in _BOMS:
            if head.startswith(bom):
                raise InputError("data", f"data must be UTF-8 text; got data={name!r}, which is {enc} text (it "
                                         f"starts with a {enc} byte-order mark). Save it as UTF-8.")
        nul = head.count(b"\0")
        if nul and nul * 4 >= len(head):  # UTF-16 text of ASCII is half NULs; a stray NUL is a bad value
            raise InputError("data", f"data must be CSV text; got data={name!r}, which looks binary ({nul} NUL "
                                     f"bytes in its first {len(head):,}; UTF-16 text looks like this too). Give a "
                                     f"CSV file in UTF-8, or a Parquet/Arrow file with its extension.")
        return
    if ext in COMPRESSED_EXT:
        fix = (f"Name it {path.name}{ext} (a compressed CSV is read by its extension: .csv.gz, .csv.bz2, .csv.zst, "
               f".csv.lz4), or decompress it.")
        if path.name.lower().endswith(COMPRESSED_EXT):
            fix = "Its extension says another compression: rename it to match its content, or decompress it."
    elif ext is not None:
        fix = f"Rename it to end in {ext}."
    else:
        fix = "Extract or decompress the CSV file first."
    raise InputError("data", f"data must be CSV text; got data={name!r}, which is {what}. {fix}")


def _header_not_utf8(head: bytes, name: str) -> InputError:
    first = head.split(b"\n", 1)[0]
    try:
        first.decode("utf-8")
        where = ""
    except UnicodeDecodeError as e:
        where = f": byte 0x{first[e.start]:02x} at position {e.start + 1} of {first[:60]!r}"
    return InputError("data", f"data must be UTF-8 text; got data={name!r}, whose header line is not UTF-8{where}. "
                              f"Save the file as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8, if it is Latin-1).")


def _record_line(path: Path, row: int, chunk: int = 8 << 20) -> int | None:
    """The 1-based line of the file on which data row ``row`` (1-based) starts: the line after the
    ``row``-th line break outside double quotes (a quoted value may span lines). None if unknown."""
    ends_wanted, lines, quoted = row, 0, 0
    try:
        with pa.input_stream(str(path), compression="detect") as fh:
            while buf := fh.read(chunk):
                b = np.frombuffer(buf, dtype=np.uint8)
                parity = (np.cumsum(b == 34) + quoted) & 1  # inside quotes after each byte
                nl = b == 10
                ends = np.flatnonzero(nl & (parity == 0))
                if len(ends) >= ends_wanted:
                    at = ends[ends_wanted - 1]
                    return lines + int(np.count_nonzero(nl[:at + 1])) + 1
                ends_wanted -= len(ends)
                lines += int(np.count_nonzero(nl))
                quoted = int(parity[-1])
    except (OSError, pa.ArrowException):
        return None
    return None


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
                                         f"{', '.join(map(repr, p.schema.names[:8]))}, unlike {parts[0].name!r}.")

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
                raise BadValueError(e.column, e.row + offset, e.value, p.line_hint(e.row) or f" (file {p.name!r})",
                                    booleans="true/false" in str(e)) from None
            offset += n

    def text_blocks(self, column):
        offset = 0
        for p in self.parts:
            n = 0
            for s, arr in p.text_blocks(column):
                n = s + len(arr)
                yield offset + s, arr
            offset += n
