"""The inside of a formula's calls (``log(x)``, ``C(g, Treatment('b'))``, ``I(x ** 2)``): parsed
with :mod:`ast`, never evaluated, and walked against the whitelist of :mod:`jaxlm.io.grammar`."""
from __future__ import annotations

import ast
import re
import unicodedata

from ..core.errors import InputError
from .grammar_table import (MAX_EXPR_DEPTH, MAX_OPERATORS, TRANSFORMS, ParsedFormula, _BAD_CATEGORIES, _SPACE,
                            _check_name, _is_dunder, _refuse, _short, _syntax)


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

