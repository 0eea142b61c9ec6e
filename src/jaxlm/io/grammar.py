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

import ast
import keyword
import re
import unicodedata
from dataclasses import dataclass, field

from ..core.errors import InputError

__all__ = ["check_formula", "parse", "ParsedFormula", "Transform", "TRANSFORMS", "transform_table",
           "evaluation_context", "callable_names", "verify_formulaic", "MAX_LENGTH", "MAX_NESTING", "MAX_TERMS"]

MAX_LENGTH = 10_000  #: longest formula, in characters (checked before anything else)
MAX_NESTING = 32  #: deepest nesting of ( [ {, checked before Python's parser (which can overflow)
MAX_EXPR_DEPTH = 64  #: deepest expression tree inside one call (x + x + ... is a deep tree)
MAX_OPERATORS = 256  #: most operator characters in one call, checked before ast.parse (bounds its depth)
MAX_TERMS = 10_000  #: most terms a formula may expand to ((a + b + c) ** 3 grows combinatorially)
MAX_POWER = 16  #: largest integer after ``**`` in the formula layer


@dataclass(frozen=True)
class Transform:
    """One entry of the transform table.

    kind: ``numeric`` (one argument, an elementwise numpy function), ``identity`` (``I``),
    ``categorical`` (``C``), ``contrast`` (only as ``C()``'s contrasts), ``learned`` (refused:
    its parameters are learned from the data), ``lag`` (refused: reads other rows).
    """

    name: str
    kind: str
    doc: str
    function: object = field(default=None, repr=False, compare=False)
    keywords: tuple = ()


def _table() -> tuple[Transform, ...]:
    import numpy as np

    numeric = {"log": "natural logarithm", "log1p": "log(1 + x)", "log2": "base-2 logarithm",
               "log10": "base-10 logarithm", "exp": "exponential", "sqrt": "square root", "abs": "absolute value"}
    learned = ("center", "scale", "standardize", "poly", "bs", "cr", "cs", "cc", "te")
    return (*[Transform(p + n, "numeric", d, getattr(np, n)) for n, d in numeric.items() for p in ("", "np.")],
            Transform("I", "identity", "arithmetic as written: I(x ** 2), I(x > 0), I(a / b)"),
            Transform("C", "categorical", "the column as categories: C(g), C(g, Sum), C(g, Treatment('b')), "
                                          "C(g, levels=['b', 'a'])", keywords=("contrasts", "levels")),
            Transform("Treatment", "contrast", "treatment coding (the default), reference level optional: "
                                               "Treatment(), Treatment('b')", keywords=("reference",)),
            Transform("Sum", "contrast", "sum-to-zero coding: Sum or Sum()"),
            Transform("contr.treatment", "contrast", "as Treatment: contr.treatment, contr.treatment('b')",
                      keywords=("base",)),
            Transform("contr.sum", "contrast", "as Sum: contr.sum, contr.sum()"),
            *[Transform(n, "learned", "learns its parameters from the data") for n in learned],
            Transform("lag", "lag", "reads the previous row"))


#: The one table of transforms a formula may call (name -> Transform).
TRANSFORMS: dict[str, Transform] = {t.name: t for t in _table()}
#: builtins that run code or reach objects: refused even as column names (defence in depth).
_CODE_NAMES = frozenset({"eval", "exec", "compile", "getattr", "setattr", "delattr", "globals", "locals", "vars",
                         "breakpoint", "__import__", "__builtins__"})
_BAD_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")  # control, format (bidi, zero-width), surrogates, separators
_SPACE = " \t\r\n"


def _allowed_text() -> str:
    numeric = ", ".join(n for n, t in TRANSFORMS.items() if t.kind == "numeric" and "." not in n)
    return ("formulas accept column names (other characters in backticks: `my col`), numbers, the operators "
            "+ - * / : ** and, inside I(...) and the transforms, arithmetic (+ - * / // % **) and comparisons, "
            f"and the transforms {numeric} (also as np.log, ...), I(...) and C(column, Treatment('b') | Sum, "
            "levels=[...]) (see the README's formula grammar)")


def transform_table() -> str:
    """The transform table as a Markdown table (for the README / docs)."""
    rows = ["| call | kind | meaning |", "| --- | --- | --- |"]
    for name, t in TRANSFORMS.items():
        if not name.startswith("np."):
            shown = f"`{name}(x)`, `np.{name}(x)`" if t.kind == "numeric" else f"`{name}`"
            rows.append(f"| {shown} | {'refused' if t.kind in ('learned', 'lag') else t.kind} | {t.doc} |")
    return "\n".join(rows)


def callable_names() -> frozenset:
    """Every name a formula may use in call position: the table's names and their namespaces."""
    return frozenset(TRANSFORMS) | {n.split(".")[0] for n in TRANSFORMS if "." in n}


def evaluation_context() -> dict:
    """What formulaic may evaluate a call with besides the data: the table's numpy functions."""
    return {n: t.function for n, t in TRANSFORMS.items() if t.function is not None and "." not in n}


@dataclass(frozen=True)
class ParsedFormula:
    """What the gate learned: the data columns each side uses, and the transforms called."""

    text: str
    lhs: tuple  # column names left of '~' (empty for a one-sided formula)
    rhs: tuple  # column names right of '~'
    calls: tuple  # transform names called (keys of TRANSFORMS)
    categorical: tuple = ()  # columns inside C(...)

    @property
    def columns(self) -> tuple:
        return tuple(dict.fromkeys(self.lhs + self.rhs))


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


# ---------------------------------------------------------------------------------------- messages
def _short(text, n: int = 120):
    return text[: n - 3] + "..." if isinstance(text, str) and len(text) > n else text


def _refuse(term: str, construct: str, formula: str) -> InputError:
    return InputError("formula", f"formula term {_short(term, 80)!r} uses {construct}; {_allowed_text()}; got "
                                 f"formula={_short(formula)!r}.")


def _syntax(formula: str, what: str) -> InputError:
    return InputError("formula", f"formula must be a valid model formula such as 'y ~ x1 * x2 + C(group) + "
                                 f"np.log(z)'; got formula={_short(formula)!r} ({what}).")


def _is_dunder(name: str) -> bool:
    return name.startswith("__") or name.endswith("__")


def _check_name(name: str, term: str, formula: str, *, in_code: bool) -> None:
    """A column name, bare or in backticks (``in_code``: inside a call, where Python reads it)."""
    bad = [c for c in name if unicodedata.category(c) in _BAD_CATEGORIES or c in "\\`"]
    if not name or bad:
        raise _refuse(term, f"the character {bad[0]!r} in the name {name!r} (names must not contain control "
                            "characters, backslashes or backticks)" if bad else "an empty backtick name", formula)
    if _is_dunder(name) or name.startswith("_formulaic"):
        raise _refuse(term, f"the dunder name {name!r} (names must not start or end with '__')", formula)
    if name in _CODE_NAMES:
        raise _refuse(term, f"the name {name!r}, a Python builtin that runs code", formula)
    if in_code and ("'" in name or '"' in name):
        raise _refuse(term, f"a quote in the backtick name {name!r} inside a call", formula)
    if in_code and name.isidentifier() and unicodedata.normalize("NFKC", name) != name:
        raise _refuse(term, f"the name {name!r}, which Python reads as {unicodedata.normalize('NFKC', name)!r} "
                            "(NFKC normalisation)", formula)
    if in_code and keyword.iskeyword(name):
        raise _refuse(term, f"the Python keyword {name!r} as a column name inside a call", formula)


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


# ---------------------------------------------------------------------------------------- calls
_STRING_OR_TICK = re.compile(r"(\"[^\"]*\"|'[^']*'|`[^`]*`)")
_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_OP_TEXT = {ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>", ast.MatMult: "@",
            ast.Invert: "~", ast.Not: "not", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
_CONSTRUCTS = {
    ast.Attribute: "attribute access (only np.<transform> and contr.<contrast> are allowed)",
    ast.Subscript: "a subscript [...]", ast.Slice: "a slice", ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression", ast.Set: "a {...} set display", ast.Dict: "a {...} dict display",
    ast.JoinedStr: "an f-string", ast.NamedExpr: "an assignment expression (:=)", ast.Starred: "a starred argument",
    ast.IfExp: "a conditional expression (x if c else y)", ast.BoolOp: "'and'/'or'", ast.Await: "'await'",
    ast.Yield: "'yield'", ast.YieldFrom: "'yield'", ast.Compare: "a comparison", ast.BinOp: "arithmetic",
    ast.UnaryOp: "arithmetic", ast.Call: "a call of a computed function",
    ast.List: "a list [...] (lists are allowed only as C()'s levels=[...])", ast.Tuple: "a tuple",
}


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    if isinstance(node, ast.Constant):
        return f"the literal {node.value!r}"
    return _CONSTRUCTS.get(type(node), f"the Python construct {type(node).__name__}")


def _constant(node: ast.AST) -> bool:
    """Whether a subtree uses no column (literals and operators only)."""
    return not any(isinstance(n, (ast.Name, ast.Call)) for n in ast.walk(node))


def _literal(node: ast.AST) -> bool:
    """A string, number or boolean literal, or a negative number."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float)
    return isinstance(node, ast.Constant) and type(node.value) in (str, int, float, bool)


class _Call:
    """One call ``name(...)`` of a formula: parsed with :mod:`ast`, never evaluated, and walked."""

    def __init__(self, term: str, formula: str):
        self.term, self.formula = term, formula
        self.names, self.calls, self.learned, self.categorical = [], [], [], []
        self.ticks: dict[str, str] = {}

    def refuse(self, construct: str) -> InputError:
        return _refuse(self.term, construct, self.formula)

    def check(self) -> None:
        try:
            node = ast.parse(self._replace_ticks(), mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as e:
            what = "nesting too deep" if isinstance(e, (RecursionError, MemoryError)) else \
                getattr(e, "msg", None) or str(e).split("\n")[0]
            raise _syntax(self.formula, f"the term {_short(self.term, 80)!r} is not a valid call: {what}") from None
        if not isinstance(node, ast.Call):
            raise self.refuse(_describe(node))
        self._call(node, top=True, depth=0)

    def _replace_ticks(self) -> str:
        """Backtick names -> placeholder identifiers; code outside strings and names must be ASCII."""
        out = []
        for part in _STRING_OR_TICK.split(self.term):
            if len(part) >= 2 and part[0] == part[-1] == "`":
                _check_name(part[1:-1], self.term, self.formula, in_code=True)
                key = f"__jaxlm_tick{len(self.ticks)}__"  # a dunder: no user name can be one
                self.ticks[key] = part[1:-1]
                out.append(f" {key} ")
                continue
            quoted = len(part) >= 2 and part[0] == part[-1] and part[0] in "'\""
            bad = [c for c in part if (unicodedata.category(c) in _BAD_CATEGORIES and c not in _SPACE)
                   or c in "`\\" or not (quoted or c.isascii())]
            if bad:
                raise self.refuse(f"the character {bad[0]!r} in a string literal" if quoted else
                                  f"the character {bad[0]!r} outside a backtick name or a string (Python would read "
                                  f"{unicodedata.normalize('NFKC', bad[0])!r}); quote column names with other "
                                  f"characters in backticks")
            if "#" in part and not quoted:
                raise self.refuse("a '#' comment")
            out.append(part)
        code = "".join(out)
        if sum(code.count(c) for c in "+-*/%<>=!~&|^@") > MAX_OPERATORS:
            raise self.refuse(f"more than {MAX_OPERATORS} operators in one term; split it or compute the column "
                              f"before fitting")
        return code

    def _call_name(self, func: ast.AST) -> str:
        """``name`` or ``a.b.c`` of a call; '' for anything computed."""
        parts = []
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if not isinstance(func, ast.Name) or func.id in self.ticks:
            return ""
        return ".".join([func.id, *reversed(parts)])

    def _call(self, node: ast.Call, *, top: bool, depth: int, contrast: bool = False) -> None:
        name = self._call_name(node.func)
        spec = TRANSFORMS.get(name)
        if spec is None:
            dunder = [p for p in name.split(".") if _is_dunder(p)]
            raise self.refuse(f"a call of {_describe(node.func)}" if not name else
                              f"the dunder name {dunder[0]!r} in '{name}(...)'" if dunder else
                              f"attribute access '{name}' (only np.<transform> and contr.<contrast> are allowed)"
                              if "." in name else f"a call of '{name}(...)', which is not an allowed transform")
        if spec.kind in ("learned", "lag"):
            self.learned.append(name)  # refused after the walk, unless something worse is found first
            return
        if (spec.kind == "contrast") != contrast:
            raise self.refuse(f"the contrast '{name}(...)' outside C(column, {name}(...))" if not contrast else
                              f"{name}(...) as C()'s contrasts (allowed: Treatment(), Sum, contr.treatment, contr.sum)")
        if spec.kind == "categorical" and not top:
            raise self.refuse("C(...) inside another expression (C must be a whole term, as in C(g):x)")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.refuse("a starred argument (*args)")
        for kw in node.keywords:
            if kw.arg is None:
                raise self.refuse("a ** keyword expansion")
            if kw.arg not in spec.keywords:
                raise self.refuse(f"the keyword argument '{kw.arg}=' in {name}(...) (allowed: "
                                  f"{', '.join(k + '=' for k in spec.keywords) or 'none'})")
        self.calls.append(name)
        if spec.kind == "categorical":
            return self._categorical(node, depth)
        if spec.kind == "contrast":
            values = node.args + [kw.value for kw in node.keywords]
            if len(values) > len(spec.keywords):
                raise self.refuse(f"{name}(...) with {len(values)} arguments (at most {len(spec.keywords)})")
            for v in values:
                if not _literal(v):
                    raise self.refuse(f"{_describe(v)} as a reference level (it must be a string or number literal)")
            return None
        if len(node.args) != 1:
            raise self.refuse(f"{name}(...) with {len(node.args)} arguments ({name} takes exactly one)")
        return self._value(node.args[0], depth + 1)

    def _categorical(self, node: ast.Call, depth: int) -> None:
        kws = {kw.arg: kw.value for kw in node.keywords}
        if not 1 <= len(node.args) <= 2 or (len(node.args) == 2 and "contrasts" in kws):
            raise self.refuse("C(...) with other arguments than C(column, contrasts, levels=[...])")
        if not isinstance(node.args[0], ast.Name):
            raise self.refuse(f"{_describe(node.args[0])} as C()'s first argument (it must be a column name)")
        self._value(node.args[0], depth + 1)
        self.categorical.append(self.names[-1])
        contrast = node.args[1] if len(node.args) == 2 else kws.get("contrasts")
        if isinstance(contrast, ast.Call):
            self._call(contrast, top=False, depth=depth + 1, contrast=True)
        elif contrast is not None:
            name = self._call_name(contrast) if isinstance(contrast, (ast.Name, ast.Attribute)) else ""
            if name == "Treatment":
                raise self.refuse("Treatment without parentheses as C()'s contrasts (write Treatment() or "
                                  "Treatment('level'))")
            if getattr(TRANSFORMS.get(name), "kind", None) != "contrast":
                raise self.refuse(f"{_describe(contrast)} as C()'s contrasts (allowed: Treatment(), "
                                  f"Treatment('level'), Sum, contr.treatment, contr.sum)")
            self.calls.append(name)
        levels = kws.get("levels")
        if levels is not None and not (isinstance(levels, (ast.List, ast.Tuple)) and levels.elts):
            raise self.refuse(f"levels={_describe(levels)} (levels must be a non-empty list of strings or numbers)")
        for e in getattr(levels, "elts", ()):
            if not _literal(e):
                raise self.refuse(f"{_describe(e)} as a level (it must be a string or number literal)")

    def _value(self, node: ast.AST, depth: int) -> None:
        """A numeric expression: columns, numbers, arithmetic, comparisons, numeric transforms."""
        if depth > MAX_EXPR_DEPTH:
            raise self.refuse(f"an expression nested more than {MAX_EXPR_DEPTH} deep")
        if isinstance(node, ast.Name):
            name = self.ticks.get(node.id)
            if name is None:
                _check_name(node.id, self.term, self.formula, in_code=True)
            self.names.append(name or node.id)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                what = "a string literal" if isinstance(node.value, (str, bytes)) else f"the constant {node.value!r}"
                raise self.refuse(f"{what} (strings are allowed only as C()'s levels and reference level)")
        elif isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare)):
            ops = [node.op] if not isinstance(node, ast.Compare) else node.ops
            bad = [op for op in ops if isinstance(op, (ast.Is, ast.IsNot, ast.In, ast.NotIn, ast.Not, ast.Invert))
                   or (isinstance(node, ast.BinOp) and not isinstance(op, _BINOPS))]
            if bad:
                raise self.refuse(f"the operator {_OP_TEXT.get(type(bad[0]), type(bad[0]).__name__)!r} (allowed: "
                                  f"+ - * / // % ** and == != < <= > >=)")
            if isinstance(node.op if not isinstance(node, ast.Compare) else None, ast.Pow) \
                    and _constant(node.left) and _constant(node.right):
                raise self.refuse("a power of two constants (compute it yourself)")
            for sub in ast.iter_child_nodes(node):
                if not isinstance(sub, (ast.operator, ast.unaryop, ast.cmpop)):
                    self._value(sub, depth + 1)
        elif isinstance(node, ast.Call):
            self._call(node, top=False, depth=depth + 1)
        else:
            raise self.refuse(_describe(node))


# ---------------------------------------------------------------------------------------- after formulaic
def verify_formulaic(formula, parsed: ParsedFormula) -> None:
    """Check that formulaic's parse of a gated formula holds only factors the gate checked.

    ``formula`` is the ``formulaic.Formula`` of ``parsed.text`` (building one evaluates nothing).
    Each factor formulaic will evaluate as Python is walked again with the same whitelist, each
    looked-up name must be a column the gate saw, each literal an intercept.
    """
    names = set(parsed.columns)
    parts = [formula.lhs, formula.rhs] if hasattr(formula, "rhs") else [formula]
    for term in (t for part in parts for t in part):
        for fac in term.factors:
            method, expr = fac.eval_method.value, str(fac.expr)
            if method == "python":
                code = _Call(expr, parsed.text)
                code.check()
                ok = set(code.names) <= names and not code.learned
            else:
                ok = expr in names if method == "lookup" else method == "literal" and expr in ("0", "1")
            if not ok:
                raise _refuse(expr, f"a term that formulaic reads differently ({method})", parsed.text)
