"""The formula grammar's fixed parts: the table of transforms, the limits, and the rules for
names (see :mod:`jaxlm.io.grammar`)."""
from __future__ import annotations

import keyword
import unicodedata
from dataclasses import dataclass, field

from ..core.errors import InputError


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
