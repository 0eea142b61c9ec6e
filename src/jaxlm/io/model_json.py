"""Model-file bytes as JSON data, parsed under :class:`ModelLimits` (no Python object per number).

:func:`parse` turns the bytes of a model file into plain JSON values, :class:`Row` standing
for each large array of numbers still in the bytes; :func:`numbers` checks a field's shape
by counting and returns it as :class:`Numbers`, parsed on demand into a float64 array.
Nothing here imports JAX, scikit-learn or formulaic. The schema itself is
:mod:`jaxlm.io.model_schema`.

Bounded parsing
---------------
``json.loads`` of a whole file would turn every number into a Python object (24 to 32 bytes
each, plus list overhead) and would recurse into any nesting depth. Instead, in one pass of
a regular expression over the raw bytes (no backtracking: possessive quantifiers):

- every JSON string is skipped whole;
- every array of numbers longer than :data:`ROW_MIN` bytes (the rows of ``coef`` and of the
  state's matrices) is left unparsed in the raw bytes and replaced by a placeholder that no
  file can forge (it carries a random per-read key);
- the rest (the *skeleton*: keys, names, small arrays, statistics) is scanned for its
  nesting depth and its number of values, both bounded, and only then given to
  ``json.loads``.

The placeholders' element counts (commas) are checked against the shapes the document
declares before any of them is parsed, so a file whose sizes disagree is refused before
anything is expanded; each row is then parsed (strict JSON) straight into a preallocated
float64 array. Loading costs the raw bytes plus 8 bytes per number, and time proportional
to the bytes.
"""
from __future__ import annotations

import bisect
import json
import math
import os
import re
import secrets
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..core.errors import InputError

__all__ = ["DEFAULT_LIMITS", "Invalid", "ModelLimits", "Newer", "Numbers", "OverLimit", "Parsed", "Row", "bad",
           "check_limits", "numbers", "over", "parse", "plain", "read_bytes", "show"]

#: Arrays of numbers at least this long (in bytes) are parsed straight into float64 arrays.
ROW_MIN = 256
#: A JSON integer longer than this many characters is refused (Python refuses to convert
#: more than 4,300 digits anyway; no field needs more than a few dozen).
MAX_INT_CHARS = 400
#: The non-finite spellings of numbers (JSON has none).
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class ModelLimits:
    """Bounds on what a model file may hold; each one is checked before the memory it
    guards is allocated. Raise one with ``jaxlm.load(path, limits={"max_features": 5000})``.

    Attributes
    ----------
    max_bytes : int, default 256 MiB
        File size. A float64 number takes 20-30 bytes of JSON.
    max_features : int, default 2048
        Model columns d (the state holds d² numbers; loading factorises it: O(d³) time,
        about a second for d = 2048).
    max_targets : int, default 1024
        Targets m.
    max_levels : int, default 10_000
        Categorical levels stored with the formula, all columns together (each level becomes
        a column of the encoding, so they are also bounded by the model's features).
    max_depth : int, default 32
        Nesting depth of the JSON document (a model file needs 7).
    max_values : int, default 1_000_000
        JSON values outside the large numeric arrays (names, small arrays, statistics,
        metadata): these become Python objects, about 50-70 bytes each.
    """

    max_bytes: int = 256 << 20
    max_features: int = 2048
    max_targets: int = 1024
    max_levels: int = 10_000
    max_depth: int = 32
    max_values: int = 1_000_000


DEFAULT_LIMITS = ModelLimits()


def check_limits(limits) -> ModelLimits:
    """``limits`` as ModelLimits: None (the defaults), a ModelLimits, or a dict of overrides."""
    if limits is None:
        return DEFAULT_LIMITS
    if isinstance(limits, ModelLimits):
        return limits
    names = [f.name for f in fields(ModelLimits)]
    if not isinstance(limits, dict):
        raise InputError("limits", f"limits must be a dict such as {{'max_features': 5000}} (keys {', '.join(names)}) "
                                   f"or a ModelLimits; got limits of type {type(limits).__name__}.")
    for k, v in limits.items():
        if k not in names:
            raise InputError("limits", f"limits must use the keys {', '.join(names)}; got limits key {k!r}.")
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError("limits", f"limits[{k!r}] must be a positive integer; got {v!r}.")
    return replace(DEFAULT_LIMITS, **limits)


# --------------------------------------------------------------------------- errors


class Invalid(Exception):
    """A file that is not a valid model file; ``str(e)`` says why (it completes
    "model must be a valid jaxlm model file; got model=... (why)")."""


class OverLimit(Exception):
    """A file over one of the :class:`ModelLimits`."""

    def __init__(self, name: str, allowed: int, got: str, what: str):
        super().__init__(f"{what} over limits.{name}={allowed:,} ({got})")
        self.name, self.allowed, self.got, self.what = name, allowed, got, what


class Newer(Exception):
    """A file from a newer format version."""

    def __init__(self, version: int, jaxlm_version):
        super().__init__(version)
        self.version, self.jaxlm_version = version, jaxlm_version


def show(v, width: int = 60) -> str:
    """A short description of a JSON value for messages (never a 5,000-digit repr)."""
    if isinstance(v, Row):
        return "an array of numbers"
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, int):
        return repr(v) if v.bit_length() <= 64 else f"an integer of about {int(v.bit_length() * 0.30103) + 1} digits"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        r = repr(v)
        return r if len(r) <= width else r[:width - 4] + "...'"
    if isinstance(v, dict):
        return f"an object with {len(v)} keys"
    if isinstance(v, list):
        return f"an array of {len(v)} values"
    return type(v).__name__


# --------------------------------------------------------------------------- parsing

_NUMBER_ROW = rb"\[[-+0-9.eE \t\n\r,]{%d,}+\]" % (ROW_MIN - 2)
_STRING = rb'"(?:[^"\\]++|\\[\s\S])*+"'
_TOKENS = re.compile(_STRING + rb"|" + _NUMBER_ROW)
_DIGIT = re.compile(rb"[0-9]")


class Row:
    """A large JSON array of numbers left in the file's bytes: ``raw[start:end]`` is ``[...]``."""

    __slots__ = ("start", "end")

    def __init__(self, start: int, end: int):
        self.start, self.end = start, end

    def count(self, raw: bytes) -> int:
        """Its number of elements, read off its commas (the row is parsed strictly later)."""
        commas = raw.count(b",", self.start, self.end)
        if commas:
            return commas + 1
        return 1 if _DIGIT.search(raw, self.start, self.end) else 0

    def values(self, raw: bytes) -> list:
        """The row as a list of Python numbers (strict JSON)."""
        try:
            out = json.loads(raw[self.start:self.end])
        except ValueError as e:  # malformed, or an integer over Python's digit limit
            raise Invalid(f"an array of numbers at byte {self.start} is not valid JSON ({_json_reason(e)})") from None
        return out


def _json_reason(e: ValueError) -> str:
    return e.msg if isinstance(e, json.JSONDecodeError) else str(e).split(";")[0]


class Parsed(NamedTuple):
    """A parsed document: plain JSON values, with :class:`Row` where a large array of
    numbers stays unparsed in ``raw``."""

    root: object
    raw: bytes


class _TooLong(Exception):
    pass


class _Constant(Exception):
    pass


def _int(text: str) -> int:
    if len(text) > MAX_INT_CHARS:
        raise _TooLong(len(text))
    value = int(text)
    if abs(value) >= 2**1024:  # no field holds an integer float64 cannot: refused here, not as an OverflowError later
        raise Invalid(f"an integer of {len(text.lstrip('-')):,} digits, beyond the float64 range (model files hold "
                      f"numbers up to about 1.8e308)")
    return value


def _check_text(root) -> None:
    """Every string (keys too) must be valid Unicode text: JSON's ``\\ud800`` escapes can make
    lone surrogates, which no file, terminal or Arrow column can hold."""
    stack = [root]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, str):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                raise Invalid(f"a string with a lone UTF-16 surrogate escape ({show(x)}); model files hold "
                              f"Unicode text") from None


def _constant(name: str):
    raise _Constant(name)


def _structure_depth(structure: bytes) -> int:
    """Maximum bracket depth of JSON text without strings (NumPy, in 1 MiB chunks)."""
    a = np.frombuffer(structure, dtype=np.uint8)
    best = level = 0
    chunk = 1 << 20
    for i in range(0, a.size, chunk):
        c = a[i:i + chunk]
        step = ((c == 0x5B) | (c == 0x7B)).astype(np.int32) - ((c == 0x5D) | (c == 0x7D)).astype(np.int32)
        run = np.cumsum(step) + level
        best = max(best, int(run.max()))
        level = int(run[-1])
    return best


def parse(raw: bytes, limits: ModelLimits) -> Parsed:
    """The document in ``raw`` under ``limits`` (raises Invalid or OverLimit)."""
    quotes = raw.count(b'"')
    if quotes > 2 * limits.max_values + 2:
        raise OverLimit("max_values", limits.max_values, f"{quotes // 2:,} strings", "JSON values")
    key = secrets.token_hex(16)
    prefix = b'{"' + key.encode() + b'":'
    rows: list[Row] = []
    skeleton: list[bytes] = []
    shifts: list[tuple[int, int]] = []   # (skeleton offset after a placeholder, bytes removed so far)
    size = removed = 0
    strings = 0
    pos = 0
    for match in _TOKENS.finditer(raw):
        start, end = match.span()
        if raw[start] == 0x22:  # a string: kept as it is
            strings += 1
            continue
        placeholder = prefix + str(len(rows)).encode() + b"}"
        skeleton += (raw[pos:start], placeholder)
        rows.append(Row(start, end))
        size += start - pos + len(placeholder)
        removed += (end - start) - len(placeholder)
        shifts.append((size, removed))
        pos = end
    skeleton.append(raw[pos:])
    text = b"".join(skeleton)
    del skeleton
    bare = _TOKENS.sub(b"", text) if strings else text   # the structure: no strings, no rows
    depth = _structure_depth(bare) + (1 if rows else 0)
    if depth > limits.max_depth:
        raise OverLimit("max_depth", limits.max_depth, f"nested {depth:,} deep", "nesting")
    values = strings + bare.count(b",") + bare.count(b"[") + bare.count(b"{") - len(rows)
    del bare
    if values > limits.max_values:
        raise OverLimit("max_values", limits.max_values, f"{values:,} values outside its numeric arrays",
                        "JSON values")
    try:
        doc_text = text.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("not a UTF-8 text file") from None

    def hook(pairs):
        if len(pairs) == 1 and pairs[0][0] == key:
            return rows[pairs[0][1]]
        out = dict(pairs)
        if len(out) != len(pairs):
            seen: set = set()
            dup = next(k for k, _ in pairs if k in seen or seen.add(k))
            raise Invalid(f"the key {show(dup)} appears twice in one object")
        return out

    try:
        root = json.loads(doc_text, object_pairs_hook=hook, parse_int=_int, parse_constant=_constant)
        _check_text(root)
    except json.JSONDecodeError as e:
        at = len(doc_text[:e.pos].encode("utf-8"))
        i = bisect.bisect_right(shifts, (at, math.inf)) - 1
        at = min(at + (shifts[i][1] if i >= 0 else 0), len(raw))
        line, col = raw.count(b"\n", 0, at) + 1, at - (raw.rfind(b"\n", 0, at) + 1) + 1
        raise Invalid(f"not JSON: {e.msg} at line {line} column {col}") from None
    except _TooLong as e:
        raise Invalid(f"an integer of {e.args[0]:,} digits; model files hold at most {MAX_INT_CHARS}-digit "
                      f"integers") from None
    except _Constant as e:
        raise Invalid(f"not JSON: the bare token {e.args[0]} (non-finite numbers are written as the strings "
                      f"\"NaN\", \"Infinity\", \"-Infinity\")") from None
    except RecursionError:  # the depth bound makes this unreachable; kept as a second guard
        raise OverLimit("max_depth", limits.max_depth, "nested too deep to parse", "nesting") from None
    return Parsed(root, raw)


# --------------------------------------------------------------------------- numbers


class Numbers:
    """A numeric field whose shape has been checked; :meth:`array` parses it (float64)."""

    __slots__ = ("value", "shape", "what", "raw")

    def __init__(self, value, shape: tuple, what: str, raw: bytes):
        self.value, self.shape, self.what, self.raw = value, shape, what, raw

    def array(self, *, finite: bool = True) -> np.ndarray:
        out = np.empty(self.shape, dtype=np.float64)
        if not self.shape:
            out[()] = self.value
        elif len(self.shape) == 1:
            out[:] = self._row(self.value, 0)
        else:
            for i, row in enumerate(self.value):
                out[i] = self._row(row, i)
        if finite and not np.isfinite(out).all():
            raise Invalid(f"{self.what!r} must hold finite numbers; got NaN or an infinite (or over 1e308) number")
        return out

    def _row(self, row, i: int) -> np.ndarray:
        values = row.values(self.raw) if isinstance(row, Row) else row
        try:
            a = np.asarray(values, dtype=np.float64)
        except OverflowError:
            raise Invalid(f"{self.what!r} must hold finite numbers; got an integer over 1e308") from None
        if a.shape != self.shape[-1:]:  # a row whose commas miscounted its (malformed) numbers
            raise Invalid(f"{self.what!r} must have shape {self.shape}; got a row of {a.size} numbers")
        return a


def is_number(x) -> bool:
    return type(x) in (int, float)


def numbers(v, shape: tuple, what: str, raw: bytes) -> Numbers:
    """Check that ``v`` is a JSON array of numbers of ``shape`` (counting only) and return it
    pending; small arrays are type-checked here, large rows when parsed."""
    def row_ok(row, k, where):
        if isinstance(row, Row):
            n = row.count(raw)
            if n != k:
                raise Invalid(f"{what!r} must have shape {shape}; got {n:,} numbers in {where}")
        elif isinstance(row, list):
            if len(row) != k:
                raise Invalid(f"{what!r} must have shape {shape}; got {len(row):,} values in {where}")
            if not all(map(is_number, row)):
                bad = next(x for x in row if not is_number(x))
                raise Invalid(f"{what!r} must be an array of numbers, all finite; got {show(bad)} in it")
        else:
            raise Invalid(f"{what!r} must be an array of numbers of shape {shape}; got {show(row)} as {where}")

    if not shape:
        if not is_number(v):
            raise Invalid(f"{what!r} must be a number; got {show(v)}")
    elif len(shape) == 1:
        row_ok(v, shape[0], "it")
    else:
        if not isinstance(v, list):
            raise Invalid(f"{what!r} must be an array of {shape[0]} rows; got {show(v)}")
        if len(v) != shape[0]:
            raise Invalid(f"{what!r} must have shape {shape}; got {len(v):,} rows")
        for i, row in enumerate(v):
            row_ok(row, shape[1], f"row {i}")
    return Numbers(v, shape, what, raw)


def plain(v, raw: bytes):
    """A parsed value with its :class:`Row` placeholders turned back into lists (free-form data)."""
    if isinstance(v, Row):
        return v.values(raw)
    if isinstance(v, list):
        return [plain(x, raw) for x in v]
    if isinstance(v, dict):
        return {k: plain(x, raw) for k, x in v.items()}
    return v


# --------------------------------------------------------------------------- files


def bad(path: str, why: str) -> InputError:
    return InputError("model", f"model must be a valid jaxlm model file; got model={path!r} ({why}).")


def over(path: str, e: OverLimit) -> InputError:
    return InputError("model", f"model must be within the model-file limits; got model={path!r} with {e.got}, over "
                               f"limits.{e.name}={e.allowed:,}. If the file is trusted, raise the limit: "
                               f"jaxlm.load(path, limits={{{e.name!r}: ...}}), or jaxlm predict --limit {e.name}=N.")


def read_bytes(path, limits: ModelLimits) -> tuple[str, bytes]:
    """The file's bytes (at most ``limits.max_bytes``), refused if it is not a regular file."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError("model", f"model must be a path to a model file; got {type(path).__name__}.")
    shown = os.fspath(path)
    if isinstance(shown, bytes):
        shown = os.fsdecode(shown)
    p = Path(os.path.expanduser(shown))
    if not p.exists():
        raise InputError("model", f"model must be an existing model file; got model={shown!r} (no such file).")
    if not p.is_file():
        raise InputError("model", f"model must be a model file; got model={shown!r}, which is not a regular file.")
    try:
        with open(p, "rb") as fh:
            raw = fh.read(limits.max_bytes + 1)
    except OSError as e:
        raise InputError("model", f"model must be a readable file; got model={shown!r} ({e.strerror}).") from None
    if len(raw) > limits.max_bytes:
        raise over(shown, OverLimit("max_bytes", limits.max_bytes, "more bytes", "file size"))
    if raw[:1] == b"\x80":
        raise bad(shown, "this looks like a pickle, which jaxlm never loads: loading a pickle can run arbitrary code")
    return shown, raw
