"""Regression tables: several models side by side (fixest ``etable``, statsmodels ``summary_col``).

Each model is a small plain :class:`ModelRecord` — term names, coefficients, standard errors,
N, R², fixed effects, covariance kind — so the table does not depend on any estimator class
(:func:`record` builds one from a :class:`jaxlm.inference.RegressionResults`). Rows are the union
of the models' terms in order of first appearance: the coefficient (with significance stars,
optional) over its standard error in parentheses; then one row per fixed effect ("Yes" where
absorbed), the covariance kind, N, R² and any extra rows. Renders as text, HTML, Markdown and
LaTeX; every cell is escaped for its format (names are data, not markup).

Stars: ``***`` p < 0.01, ``**`` p < 0.05, ``*`` p < 0.1 (the convention of both references);
p-values are the record's own, else two-sided from ``t(df)`` (normal without ``df``).
"""
from __future__ import annotations

import html as _html
import math
from typing import NamedTuple, Sequence

import numpy as np
from scipy import special

from ..core.errors import InputError, check_choice

FORMATS = ("text", "html", "markdown", "latex")
STARS = ((0.01, "***"), (0.05, "**"), (0.1, "*"))


class ModelRecord(NamedTuple):
    """One model's column of a :func:`table`."""

    names: tuple                 # term names (p,)
    coef: np.ndarray             # (p,)
    se: np.ndarray               # (p,)
    n_obs: float
    r2: float = math.nan
    fe: tuple = ()               # names of absorbed fixed effects
    cov_kind: str = "nonrobust"  # e.g. "CR1 (firm)", "HC1", "HAC(4)"
    p: np.ndarray | None = None  # (p,) p-values; None: from coef/se and df
    df: float | None = None      # degrees of freedom of the t reference (None: normal)
    title: str | None = None     # column header (default "(1)", "(2)", ...)
    extra: tuple = ()            # ((label, value), ...) more rows, e.g. (("Within R²", 0.31),)


def record(results, *, cov: str | None = None, title: str | None = None, fe: Sequence[str] = (),
           extra: Sequence = ()) -> ModelRecord:
    """A :class:`ModelRecord` of a :class:`jaxlm.inference.RegressionResults` under ``cov``
    (default: the results' own ``cov_type``; t with its degrees of freedom, ``G − 1`` clustered)."""
    cov = getattr(results, "cov_type", "nonrobust") if cov is None else cov
    tab = results.coef_table(cov=cov)
    df = results.inference_df(cov) if hasattr(results, "inference_df") else results.df_resid
    return ModelRecord(tuple(results.term_names), np.asarray(tab.coef), np.asarray(tab.std_errors),
                       float(results.n_obs), float(results.r_squared), tuple(fe), cov, np.asarray(tab.p_values),
                       float(df), title, tuple(extra))


def _pvalues(r: ModelRecord) -> np.ndarray:
    if r.p is not None:
        return np.asarray(r.p, dtype=np.float64)
    coef, se = np.asarray(r.coef, dtype=np.float64), np.asarray(r.se, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(coef / se)
    return 2.0 * (special.stdtr(r.df, -t) if r.df else special.ndtr(-t))


def _num(v, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, str):
        return v
    v = float(v)
    if not math.isfinite(v):
        return "inf" if v > 0 else "-inf" if v < 0 else ""
    if v != 0 and (abs(v) >= 1e6 or abs(v) < 10.0 ** -digits):
        return f"{v:.{digits}g}"
    return f"{v:.{digits}f}"


def _count(v) -> str:
    v = float(v)
    return f"{int(v):,}" if v.is_integer() else f"{v:,.2f}"


def _stars(p: float) -> str:
    for level, mark in STARS:
        if p < level:
            return mark
    return ""


class Table(NamedTuple):
    """The cells of a regression table; render with :meth:`render` (or ``str()`` for text)."""

    header: tuple          # column titles
    body: tuple            # ((label, (cells...), kind), ...) kind: "coef", "se", "info"
    notes: str

    def render(self, fmt: str = "text") -> str:
        fmt = check_choice("fmt", fmt, FORMATS)
        return {"text": self._text, "html": self._html, "markdown": self._markdown, "latex": self._latex}[fmt]()

    def __str__(self) -> str:
        return self._text()

    def _repr_html_(self) -> str:
        return self._html()

    # ---------------------------------------------------------------- renderers
    def _rows(self):
        yield ("", self.header, "head")
        yield from self.body

    def _text(self) -> str:
        rows = list(self._rows())
        width0 = max(len(r[0]) for r in rows)
        widths = [max(len(r[1][j]) for r in rows) for j in range(len(self.header))]
        line = "=" * (width0 + sum(w + 2 for w in widths))
        out = [line]
        prev = "head"
        for label, cells, kind in rows:
            if kind == "info" and prev in ("coef", "se"):
                out.append("-" * len(line))
            out.append(label.ljust(width0) + "".join("  " + c.rjust(w) for c, w in zip(cells, widths)))
            if kind == "head":
                out.append("-" * len(line))
            prev = kind
        out += [line, self.notes]
        return "\n".join(out)

    def _html(self) -> str:
        esc = _html.escape
        out = ['<table class="jaxlm-table">', "<thead><tr><th></th>" +
               "".join(f"<th>{esc(h)}</th>" for h in self.header) + "</tr></thead>", "<tbody>"]
        for label, cells, kind in self.body:
            tds = "".join(f"<td>{_html_cell(c)}</td>" for c in cells)
            out.append(f'<tr class="{kind}"><th>{esc(label)}</th>{tds}</tr>')
        out += ["</tbody>", f'<tfoot><tr><td colspan="{len(self.header) + 1}">{esc(self.notes)}</td></tr></tfoot>',
                "</table>"]
        return "\n".join(out)

    def _markdown(self) -> str:
        esc = _md
        out = ["| " + " | ".join([""] + [esc(h) for h in self.header]) + " |",
               "|" + "---|" + "".join("---:|" for _ in self.header)]
        for label, cells, _ in self.body:
            out.append("| " + " | ".join([esc(label)] + [esc(c) for c in cells]) + " |")
        out += ["", esc(self.notes)]
        return "\n".join(out)

    def _latex(self) -> str:
        esc = _tex
        k = len(self.header)
        out = [r"\begin{tabular}{l" + "c" * k + "}", r"\toprule",
               " & ".join([""] + [esc(h) for h in self.header]) + r" \\", r"\midrule"]
        prev = "head"
        for label, cells, kind in self.body:
            if kind == "info" and prev in ("coef", "se"):
                out.append(r"\midrule")
            out.append(" & ".join([esc(label)] + [_tex_cell(c) for c in cells]) + r" \\")
            prev = kind
        out += [r"\bottomrule", r"\multicolumn{" + str(k + 1) + r"}{l}{\footnotesize " + esc(self.notes) + "}",
                r"\end{tabular}"]
        return "\n".join(out)


def _split_stars(cell: str) -> tuple[str, str]:
    core = cell.rstrip("*")
    return core, cell[len(core):]


def _html_cell(cell: str) -> str:
    core, stars = _split_stars(cell)
    return _html.escape(core) + (f"<sup>{stars}</sup>" if stars else "")


def _md(text: str) -> str:
    out = []
    for ch in text:
        out.append("\\" + ch if ch in "\\|*_`[]<>#" else ch)
    return "".join(out)


_TEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
        "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}", "|": r"\textbar{}",
        "<": r"\textless{}", ">": r"\textgreater{}", "²": r"$^2$"}


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def _tex_cell(cell: str) -> str:
    core, stars = _split_stars(cell)
    return _tex(core) + (f"$^{{{stars}}}$" if stars else "")


def _check(records) -> list[ModelRecord]:
    records = list(records)
    if not records:
        raise InputError("models", "table needs at least one model record; got none.")
    out = []
    for i, r in enumerate(records):
        if not isinstance(r, ModelRecord):
            raise InputError("models", f"models must be ModelRecord entries (see jaxlm.inference.table.record); "
                                       f"model {i + 1} is a {type(r).__name__}.")
        p = len(r.names)
        if np.asarray(r.coef).shape != (p,) or np.asarray(r.se).shape != (p,):
            raise InputError("models", f"model {i + 1} must have one coefficient and one standard error per term "
                                       f"({p} names); got coef {np.asarray(r.coef).shape}, "
                                       f"se {np.asarray(r.se).shape}.")
        out.append(r)
    return out


def table(records: Sequence[ModelRecord], *, stars: bool = True, digits: int = 3,
          r2_label: str = "R²") -> Table:
    """The side-by-side table of ``records`` (see the module docstring); ``str(t)`` or
    ``t.render("html" | "markdown" | "latex")``."""
    records = _check(records)
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= 12:
        raise InputError("digits", f"digits must be an integer from 0 to 12; got digits={digits!r}.")
    header = tuple(r.title if r.title is not None else f"({i + 1})" for i, r in enumerate(records))
    terms: list[str] = []
    for r in records:
        terms += [str(t) for t in r.names if str(t) not in terms]
    body = []
    for term in terms:
        coef_cells, se_cells = [], []
        for r in records:
            names = [str(t) for t in r.names]
            if term not in names:
                coef_cells.append("")
                se_cells.append("")
                continue
            j = names.index(term)
            c = _num(float(np.asarray(r.coef)[j]), digits)
            if stars and c:
                c += _stars(float(_pvalues(r)[j]))
            coef_cells.append(c)
            s = _num(float(np.asarray(r.se)[j]), digits)
            se_cells.append(f"({s})" if s else "")
        body.append((term, tuple(coef_cells), "coef"))
        body.append(("", tuple(se_cells), "se"))
    fes: list[str] = []
    for r in records:
        fes += [str(f) for f in r.fe if str(f) not in fes]
    for f in fes:
        body.append((f"{f} fixed effects", tuple("Yes" if f in [str(x) for x in r.fe] else "" for r in records),
                     "info"))
    body.append(("Covariance", tuple(str(r.cov_kind) for r in records), "info"))
    body.append(("N", tuple(_count(r.n_obs) for r in records), "info"))
    if any(not math.isnan(float(r.r2)) for r in records):
        body.append((r2_label, tuple(_num(float(r.r2), digits) for r in records), "info"))
    labels: list[str] = []
    for r in records:
        labels += [str(lab) for lab, _ in r.extra if str(lab) not in labels]
    for lab in labels:
        cells = []
        for r in records:
            vals = {str(a): v for a, v in r.extra}
            cells.append(_num(vals.get(lab), digits) if lab in vals else "")
        body.append((lab, tuple(cells), "info"))
    notes = "Standard errors in parentheses."
    if stars:
        notes += " * p<0.1, ** p<0.05, *** p<0.01"
    return Table(header, tuple(body), notes)


__all__ = ["FORMATS", "ModelRecord", "Table", "record", "table"]
