"""The closed grammar of model formulas, checked before formulaic ever sees the text.

formulaic evaluates a formula's factors (``{...}`` blocks, ``name(...)`` calls) as Python, so a
formula string is code. jaxlm lets through only formulas of a small, closed grammar, checked
here before anything is parsed by formulaic or evaluated:

* the **formula layer**: ``lhs ~ rhs`` with ``+ - * / :``, ``**`` and an integer 1..16,
  parentheses, the intercept terms ``0``/``1`` (``- 1``, ``+ 0``), column names (``x1``, ``a.b``,
  or any text in backticks: ```my column```) and calls;
* each **call** ``name(...)`` is parsed with :mod:`ast` (never evaluated) and walked against a
  whitelist: column names, int/float literals, ``+ - * / // % **``, unary ``+ -``, comparisons
  and calls of the transforms of :data:`TRANSFORMS`. Strings, booleans and lists appear only
  as ``C()``'s ``levels=[...]`` and reference level.

Anything else is an ``InputError("formula", ...)`` naming the term, the construct and what is
allowed. Names never reach Python's namespace: a name in call position is a transform of the
table; a bare name is a column, because ``FormulaSpec.from_levels`` builds every spec from a
frame with a column for each bare name (so ``open`` or ``type`` are columns, not builtins) and
then checks formulaic found no other name. A column named like a transform that the same
formula calls (``log`` with ``log(x)``, ``np`` with ``np.log(x)``) is refused: it would shadow it.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from ..core.errors import InputError
from .grammar_calls import _Call, verify_formulaic
from .grammar_table import (MAX_LENGTH, MAX_NESTING, MAX_POWER, MAX_TERMS, ParsedFormula, TRANSFORMS, Transform, _SPACE, _check_name, _is_dunder, _refuse, _short, _syntax, callable_names, evaluation_context, transform_table)

__all__ = ["check_formula", "parse", "plain_terms", "ParsedFormula", "Transform", "TRANSFORMS", "transform_table",
           "evaluation_context", "callable_names", "verify_formulaic", "MAX_LENGTH", "MAX_NESTING", "MAX_TERMS"]


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PLAIN = re.compile(rf"\s*({_NAME})\s*~\s*((?:{_NAME}|[01])(?:\s*[+-]\s*(?:{_NAME}|[01]))*)\s*")
_TERM = re.compile(rf"([+-]?)\s*({_NAME}|[01])")


def plain_terms(formula: str):
    """``(target, features, fit_intercept)`` of a formula of plain column names added once each
    (``y ~ x1 + x2``, optionally ``- 1``, ``+ 0`` or ``+ 1``): what formulaic makes of it (its
    main effects in the order written, the intercept unless removed), without formulaic; None for
    any other formula."""
    m = _PLAIN.fullmatch(formula)
    if m is None:
        return None
    features, intercept = [], True
    for sign, term in _TERM.findall(m.group(2)):
        if term in ("0", "1"):
            if term == "0" and sign == "-":  # "- 0": leave it to formulaic
                return None
            intercept = term == "1" and sign != "-"
        elif sign == "-" or term in features or term == m.group(1) or keyword.iskeyword(term):
            return None
        else:
            features.append(term)
    return (m.group(1), tuple(features), intercept) if features else None


def check_formula(text: str) -> None:
    """Raise ``InputError("formula", ...)`` unless ``text`` is a formula of the closed grammar.

    Nothing is evaluated: the text is bounded in length and nesting, tokenised, and each call
    is parsed with :mod:`ast` and checked against the transform table.
    """
    parse(text)


def parse(text, *, two_sided: bool = True) -> ParsedFormula:
    """Check ``text`` against the grammar: the columns and transforms it uses, or an InputError."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("formula", f"formula must be a non-empty string such as 'y ~ x1 + C(group)'; got "
                                    f"formula={_short(text)!r}.")
    if len(text) > MAX_LENGTH:
        raise InputError("formula", f"formula must be at most {MAX_LENGTH:,} characters long; got a formula of "
                                    f"{len(text):,} characters. Build such a model matrix before fitting.")
    depth = best = 0
    for ch in text:
        depth += (ch in "([{") - (ch in ")]}" and depth > 0)
        best = max(best, depth)
    if best > MAX_NESTING:
        raise InputError("formula", f"formula must nest parentheses at most {MAX_NESTING} deep; got {best} levels "
                                    f"in formula={_short(text)!r}.")
    return _Parser(text, _tokens(text), two_sided).parse()


# ---------------------------------------------------------------------------------------- formula layer
@dataclass(frozen=True)
class _Tok:
    kind: str  # name | quoted | call | int | op | ( | ) | end
    text: str
    pos: int


_WORD = re.compile(r"[A-Za-z0-9_.]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")
_BAD_CHARS = {"'": "a string literal", '"': "a string literal", "[": "a list or subscript [...]",
              "%": "the % operator (formulaic's %in% is not supported)", "^": "'^' (write powers as **)",
              "\\": "a backslash", ",": "a comma outside a call", "=": "'=' outside a call"}


def _tokens(text: str) -> list[_Tok]:
    """The formula layer, split as formulaic's tokenizer splits it (a subset of what it accepts)."""
    i, out = 0, []
    while i < len(text):
        ch = text[i]
        if ch in _SPACE:
            i += 1
        elif ch == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise _syntax(text, f"the backtick at position {i + 1} is not closed")
            _check_name(text[i + 1: j], text[i: j + 1], text, in_code=False)
            out.append(_Tok("quoted", text[i + 1: j], i))
            i = j + 1
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            word = _WORD.match(text, i).group()
            j = i + len(word)
            dunder = [p for p in word.split(".") if _is_dunder(p)]
            if dunder:
                shown = word + ("(...)" if text[j: j + 1] == "(" else "")
                raise _refuse(shown, f"the dunder name {dunder[0]!r} (names must not start or end with '__')", text)
            if text[j: j + 1] == "(":
                j = _call_end(text, i, j)
                out.append(_Tok("call", text[i:j], i))
            elif text[j: j + 1] == "[":
                raise _refuse(word + "[...]", "a subscript [...]", text)
            elif not _NAME.fullmatch(word):
                raise _syntax(text, f"{word!r} is not a column name; quote such names in backticks")
            else:
                out.append(_Tok("name", word, i))
            i = j
        elif ch.isascii() and ch.isdigit() or ch == ".":
            word = _WORD.match(text, i).group()
            if word == ".":
                raise _refuse(".", "the '.' (all other columns) operator; name the columns", text)
            if not word.isdigit():
                raise _syntax(text, f"{word!r} at position {i + 1} is neither a number nor a column name; quote "
                                    f"such names in backticks, write arithmetic inside I(...)")
            out.append(_Tok("int", word, i))
            i += len(word)
        elif ch in "()~+-*/:":
            op = "**" if text.startswith("**", i) else ch
            out.append(_Tok(op if op in "()" else "op", op, i))
            i += len(op)
        elif ch == "{":
            j = text.find("}", i)
            raise _refuse(text[i: j + 1] if j > i else text[i:], "a {...} Python block", text)
        elif ch == "|":
            raise InputError("formula", f"formula must have a single right-hand side; got '|' at position {i + 1} "
                                        f"in formula={_short(text)!r} (multi-part formulas are not supported).")
        elif ch in _BAD_CHARS:
            raise _refuse(text[i:i + 20], _BAD_CHARS[ch], text)
        else:
            raise _syntax(text, f"unexpected character {ch!r} at position {i + 1}")
    return out + [_Tok("end", "", len(text))]


def _call_end(text: str, start: int, j: int) -> int:
    """End of the call ``name(...)`` opened at ``j``, delimited as formulaic's tokenizer does.

    formulaic tracks ( [ and backticks only (quotes are plain characters inside a call), and a
    call followed at once by ( or [ continues the same Python token.
    """
    while j < len(text) and text[j] in "([":
        stack, k = [], j
        while True:
            ch = text[k]
            if ch == "\\":
                raise _refuse(text[start: k + 1] + "...", "a backslash", text)
            if stack and stack[-1] == "`":
                if ch == "`":
                    stack.pop()
            elif ch in "([`":
                stack.append({"(": ")", "[": "]", "`": "`"}[ch])
            elif stack and ch == stack[-1]:
                stack.pop()
            k += 1
            if not stack:
                break
            if k == len(text):
                raise _syntax(text, f"the call at position {start + 1} is not closed: expected {stack[-1]!r}")
        j = k
    return j


#: formula-layer binary operators: precedence and an upper bound of the terms they produce.
_BINARY = {"+": (1, lambda n, m: n + m), "-": (1, lambda n, m: n + m), "*": (2, lambda n, m: n + m + n * m),
           "/": (2, lambda n, m: n + n * m), ":": (3, lambda n, m: n * m)}


class _Parser:
    """Precedence climbing over the formula layer, bounding the number of terms it expands to."""

    def __init__(self, text: str, tokens: list[_Tok], two_sided: bool):
        self.text, self.toks, self.i, self.two_sided = text, tokens, 0, two_sided
        self.names, self.calls, self.learned, self.categorical = [], [], [], []

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def _take(self) -> _Tok:
        self.i += 1
        return self.toks[self.i - 1]

    def _unexpected(self) -> InputError:
        t = self.tok
        return _syntax(self.text, "it ends where a term is expected" if t.kind == "end" else
                       f"unexpected {t.text!r} at position {t.pos + 1}")

    def parse(self) -> ParsedFormula:
        tildes = [t for t in self.toks if t.text == "~"]
        if len(tildes) > 1:
            raise _syntax(self.text, f"a second '~' at position {tildes[1].pos + 1}")
        if self.two_sided and not tildes:
            raise InputError("formula", f"formula must have a target on the left of '~', as in 'y ~ x1 + x2'; got "
                                        f"formula={_short(self.text)!r}.")
        lhs = []
        if tildes:
            if self.tok is tildes[0] and self.two_sided:
                raise InputError("formula", f"formula must name a target column on the left of '~', as in "
                                            f"'y ~ x1 + x2'; got formula={_short(self.text)!r}.")
            if self.tok is not tildes[0]:
                self._bounded(self._expr())
                if self.tok is not tildes[0]:
                    raise self._unexpected()
            lhs, self.names = self.names, []
            self._take()
        if self.tok.kind == "end":
            raise _syntax(self.text, "nothing on the right of '~'")
        self._bounded(self._expr())
        if self.tok.kind != "end":
            raise self._unexpected()
        if self.learned:
            raise InputError("formula", f"formula must not use transforms that learn from the data or look across "
                                        f"rows ({', '.join(n + '()' for n in dict.fromkeys(self.learned))}); got "
                                        f"formula={_short(self.text)!r}. Fitted block by block they would learn from "
                                        f"the first block only: compute those columns before fitting.")
        called = set(self.calls) | {c.split(".")[0] for c in self.calls}
        for n in lhs + self.names:
            if n in called:
                raise _refuse(n, f"a column named {n!r} in a formula that also calls the transform {n!r}; rename "
                                 f"the column", self.text)
        return ParsedFormula(self.text, *(tuple(dict.fromkeys(v)) for v in (lhs, self.names, self.calls,
                                                                           self.categorical)))

    def _bounded(self, n: int) -> None:
        if n > MAX_TERMS:
            raise InputError("formula", f"formula must expand to at most {MAX_TERMS:,} terms; got "
                                        f"formula={_short(self.text)!r}, which can expand to more. Use fewer "
                                        f"interactions.")

    def _expr(self, min_prec: int = 1) -> int:
        while self.tok.kind == "op" and self.tok.text in "+-":  # unary signs: -1, +0, - x
            self._take()
        n = self._power(self._operand())
        while self.tok.kind == "op" and self.tok.text in _BINARY and _BINARY[self.tok.text][0] >= min_prec:
            prec, combine = _BINARY[self._take().text]
            n = min(combine(n, self._expr(prec + 1)), MAX_TERMS + 1)
        return n

    def _power(self, n: int) -> int:
        """``term ** k``: at most sum of C(n, r) for r <= k terms."""
        if not (self.tok.kind == "op" and self.tok.text == "**"):
            return n
        self._take()
        t = self._take()
        if t.kind != "int" or not 1 <= int(t.text) <= MAX_POWER:
            raise _syntax(self.text, f"'**' must be followed by an integer from 1 to {MAX_POWER} (for arithmetic "
                                     f"powers write I(x ** 2)); got {t.text or 'nothing'!r}")
        total, comb = 0, 1
        for r in range(1, min(int(t.text), n) + 1):
            comb = comb * (n - r + 1) // r
            total = min(total + comb, MAX_TERMS + 1)
        return total

    def _operand(self) -> int:
        t = self._take()
        if t.kind == "(":
            n = self._expr()
            if self.tok.kind != ")":
                raise _syntax(self.text, f"the '(' at position {t.pos + 1} is not closed") \
                    if self.tok.kind == "end" else self._unexpected()
            self._take()
            return n
        if t.kind in ("name", "quoted"):
            if t.kind == "name" and keyword.iskeyword(t.text):
                raise _refuse(t.text, f"the Python keyword {t.text!r} as a name (quote it in backticks)", self.text)
            _check_name(t.text, t.text, self.text, in_code=False)
            self.names.append(t.text)
        elif t.kind == "call":
            code = _Call(t.text, self.text)
            code.check()
            self.names += code.names
            self.calls += code.calls
            self.learned += code.learned
            self.categorical += code.categorical
        elif t.kind == "int" and t.text in ("0", "1"):
            pass
        elif t.kind == "int":
            raise _syntax(self.text, f"the number {t.text} at position {t.pos + 1}: numbers in a formula are only 0 "
                                     f"or 1 (the intercept) or a power after '**'; write arithmetic inside I(...), "
                                     f"e.g. I(2 * x)")
        else:
            self.i -= 1
            raise self._unexpected()
        return 1
