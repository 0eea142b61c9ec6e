"""The regression summary: an aligned text table, HTML, Markdown, LaTeX, a pandas DataFrame, a
dict and the coefficient rows.

Names from the data (targets, terms) reach the text and HTML through :func:`printable`: a
column named ``"\\x1b]0;pwned\\x07"`` is shown escaped, never sent raw to a terminal; Markdown
and LaTeX escape their own special characters too (a name is data, never markup).
``to_frame``, ``to_dict`` and ``coef_rows`` keep the names as they are.

Two condition numbers are reported: ``condition_number``, of the centred, column-equilibrated
design (the solver's: it bounds the relative error of the coefficients), and
``condition_number_raw``, the 2-norm condition number of the design as given, constant column
included (statsmodels' ``OLS(...).fit().condition_number``; for analytic weights that of
``√w·X``, as ``WLS``), computed by :func:`raw_condition_number`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import InputError, check_choice
from ..core.text import printable
from ._common import COV_KINDS, _check_level, is_results

#: Condition number (centred, equilibrated design) above which the summary warns.
COND_WARN = 1e3
#: Variance inflation factor above which a feature is reported as nearly collinear.
VIF_WARN = 10.0
#: Coefficient of variation (sd / |mean|) below which a feature's spread is "tiny".
CV_WARN = 1e-7

_COLUMNS = ("coef", "std_err", "t_value", "p_value", "ci_lower", "ci_upper")
#: the names of :meth:`Summary.coef_rows`' numbers (and of ``jaxlm fit --coef-table``'s columns)
ROW_COLUMNS = ("estimate", "std_error", "t", "p", "ci_lower", "ci_upper")


@dataclass(frozen=True)
class _Block:
    target: str
    stats: dict            # ordered name -> value (floats, ints, str)
    terms: tuple
    table: dict            # column name -> ndarray (p,)
    inferential: bool
    notes: tuple
    warnings: tuple


@dataclass(frozen=True)
class Summary:
    """Printable, HTML-renderable regression summary (immutable).

    ``str(summary)`` is an aligned text table (coefficients with standard errors, t, p and
    the confidence interval; R², adjusted R², F and its p-value, residual SD, degrees of
    freedom, n, log-likelihood, AIC, BIC, the condition numbers (centred and equilibrated; raw,
    as statsmodels); notes and numerical-health warnings). ``_repr_html_`` renders it in
    Jupyter, :meth:`to_markdown` and :meth:`to_latex` for reports; :meth:`to_frame`,
    :meth:`to_dict` and :meth:`coef_rows` give the numbers unformatted, with the term names.
    ``==`` compares content (level, covariance, names, statistics, table; NaN equals NaN).
    """

    level: float
    cov_type: str
    blocks: tuple

    # ------------------------------------------------------------------ text
    def __str__(self) -> str:
        return "\n\n".join(_text(b, self.level, self.cov_type) for b in self.blocks)

    def __repr__(self) -> str:
        return self.__str__()

    def __eq__(self, other) -> bool:
        if not isinstance(other, Summary):
            return NotImplemented
        return (_same(self.level, other.level) and self.cov_type == other.cov_type
                and len(self.blocks) == len(other.blocks)
                and all(_same_block(a, b) for a, b in zip(self.blocks, other.blocks)))

    def __hash__(self) -> int:  # of what equal summaries share
        return hash((self.level, self.cov_type, tuple((b.target, b.terms) for b in self.blocks)))

    # ------------------------------------------------------------------ HTML, Markdown, LaTeX
    def _repr_html_(self) -> str:
        return "\n".join(_html(b, self.level) for b in self.blocks)

    def to_markdown(self) -> str:
        """The summary as Markdown (GitHub tables): per target a title, the model statistics, the
        coefficient table, notes and warnings. Names are escaped (``|``, ``*``, ``_``, ...)."""
        return "\n\n".join(_markdown(b, self.level) for b in self.blocks) + "\n"

    def to_latex(self) -> str:
        """The summary as LaTeX ``tabular`` environments (booktabs rules: ``\\usepackage{booktabs}``),
        one coefficient table and one statistics table per target, notes as a list. Names are
        escaped (``\\ & % $ # _ { } ~ ^ < >``); other characters are kept (UTF-8)."""
        return "\n".join(_latex(b, self.level) for b in self.blocks)

    # ------------------------------------------------------------------ data
    def to_frame(self):
        """Coefficient table as a pandas DataFrame.

        Index: the term names (a (target, term) MultiIndex for several targets). Columns:
        ``coef, std_err, t_value, p_value, ci_lower, ci_upper`` (only ``coef`` for fits
        without inference). ``df.attrs`` holds ``level``, ``cov_type`` and each target's
        model statistics under ``"stats"``.
        """
        import pandas as pd  # test/optional dependency: imported only here

        frames = []
        for b in self.blocks:
            cols = _COLUMNS if b.inferential else ("coef",)
            frames.append(pd.DataFrame({c: np.asarray(b.table[c]) for c in cols}, index=pd.Index(b.terms, name="term")))
        if len(frames) == 1:
            df = frames[0]
        else:
            df = pd.concat(frames, keys=[b.target for b in self.blocks], names=["target", "term"])
        df.attrs["level"] = self.level
        df.attrs["cov_type"] = self.cov_type
        df.attrs["stats"] = {b.target: dict(b.stats) for b in self.blocks}
        return df

    def to_dict(self) -> dict:
        """Plain-Python form: ``{"level", "cov_type", "targets": [{"target", "stats",
        "coefficients": {column: {term: value}}, "notes", "warnings"}]}``."""
        targets = []
        for b in self.blocks:
            cols = _COLUMNS if b.inferential else ("coef",)
            targets.append({
                "target": b.target,
                "stats": dict(b.stats),
                "coefficients": {c: {t: float(v) for t, v in zip(b.terms, b.table[c])} for c in cols},
                "notes": list(b.notes),
                "warnings": list(b.warnings),
            })
        return {"level": self.level, "cov_type": self.cov_type, "targets": targets}

    def coef_rows(self) -> list[dict]:
        """The coefficient table as plain rows, one per term and target, in order:
        ``{"target", "term", "estimate", "std_error", "t", "p", "ci_lower", "ci_upper"}`` (floats;
        NaN where a fit has no inference, e.g. ridge or gradient solvers)."""
        rows = []
        for b in self.blocks:
            cols = [np.asarray(b.table.get(c, np.full(len(b.terms), np.nan)), dtype=np.float64) for c in _COLUMNS]
            for j, term in enumerate(b.terms):
                rows.append({"target": b.target, "term": term,
                             **{name: float(col[j]) for name, col in zip(ROW_COLUMNS, cols)}})
        return rows


def summary(results, *, level: float = 0.95,
            cov: str = "nonrobust") -> Summary:
    """Summary of one target's results, or of each target of a sequence.

    Parameters
    ----------
    results : RegressionResults or a sequence of them (one per target)
    level : float in (0, 1), the confidence level of the intervals (default 0.95)
    cov : {"nonrobust", "HC0", "HC1", "HC2", "HC3"}, the covariance behind the standard
        errors (the HC kinds need results computed with ``batches``).
    """
    level = _check_level(level)
    cov = check_choice("cov", cov, COV_KINDS)
    seq = (results,) if is_results(results) else tuple(results)
    if not seq or not all(is_results(r) for r in seq):
        raise InputError("results", "results must be a RegressionResults or a sequence of them; got "
                                    f"{type(results).__name__}.")
    return Summary(level, cov, tuple(_block(r, level, cov) for r in seq))


def _block(r, level: float, cov: str) -> _Block:
    inferential = r._design.bread is not None  # df_resid ≤ 0 keeps the columns, as NaN
    if inferential:
        tab = r.coef_table(cov=cov, level=level)
        table = dict(zip(_COLUMNS, (tab.coef, tab.std_errors, tab.t_values, tab.p_values, tab.lower, tab.upper)))
    else:
        table = {"coef": np.asarray(r.coef)}
    f_value, f_p = r.model_f_test(cov)  # under cov, as statsmodels' fvalue of a robust fit
    stats = {
        "solver": r.solver,
        "weights_kind": r.weights_kind,
        "n_obs": r.n_obs,
        "df_model": r.df_model,
        "df_resid": r.df_resid,
        "residual_std": r.residual_std,
        "r_squared": r.r_squared,
        "adj_r_squared": r.adj_r_squared,
        "f_statistic": f_value,
        "f_pvalue": f_p,
        "log_likelihood": r.log_likelihood,
        "aic": r.aic,
        "bic": r.bic,
        "condition_number": r.condition_number,
        "condition_number_raw": raw_condition_number(r),
        "cov_type": cov,
        "r_squared_kind": "centred" if r.fit_intercept else "uncentred",
    }
    notes = []
    if r.inference_note is not None:
        notes.append(("No inferential statistics: " if r._design.bread is None else "") + r.inference_note)
    if not r.fit_intercept:
        notes.append("No intercept: R² is uncentred, 1 − SSE/Σwy² (as R, NIST and statsmodels report it); it is "
                     "not comparable with a centred R².")
    if inferential:
        if cov == "nonrobust":
            notes.append("Standard errors assume independent errors with variance σ²"
                         + ("/w (analytic weights)." if r.weights_kind == "analytic" else "."))
        elif cov in ("cluster", "HAC"):
            label = (getattr(r, "_extra", None) or {}).get(cov, (None, None, cov))[2]
            df = r.inference_df(cov)
            notes.append(f"Standard errors are {label}" + (f"; t and F with G − 1 = {df:g} degrees of freedom."
                                                           if cov == "cluster" else "."))
        else:
            notes.append(f"Standard errors are heteroskedasticity-robust ({cov}).")
    notes.extend(r.notes)
    return _Block(r.target_name, stats, tuple(r.term_names), table, inferential, tuple(notes), _health(r))


def raw_condition_number(r) -> float:
    """The 2-norm condition number of the raw design ``[1, X]`` (``X`` without an intercept;
    ``√w``-scaled rows: the design whose Gram is ``X̃ᵀWX̃``), as statsmodels' ``condition_number``.

    Computed without the data from what the results carry: the centred Gram
    ``S = (Xcᵀ W Xc)`` (inverted from the equilibrated ``S⁻¹``, whose condition number is
    ``condition_number``², moderate where the raw one is not) gives ``Rc`` with ``RcᵀRc = S``,
    and ``R = [[√Σw, √Σw·x̄ᵀ], [0, Rc]]`` has ``RᵀR = X̃ᵀWX̃``: the singular values of ``R`` are
    those of the raw design, without squaring its condition number. NaN when the results have
    no inferential statistics (ridge, gradient solvers) or values beyond the float64 range; inf
    for a singular design.
    """
    d = r._design
    if d.bread is None or d.sxx_inv is None or r.alpha != 0:
        return math.nan
    if r.condition_number == math.inf:
        return math.inf
    inv = np.asarray(d.sxx_inv, dtype=np.float64)
    mean = np.asarray(d.mean_x, dtype=np.float64)
    if not (np.isfinite(inv).all() and np.isfinite(mean).all() and math.isfinite(d.wsum) and d.wsum > 0):
        return math.nan
    try:
        scale = np.sqrt(np.diag(inv))
        gram = np.linalg.inv(inv / scale[:, None] / scale[None, :]) / scale[:, None] / scale[None, :]
        rc = np.linalg.cholesky((gram + gram.T) / 2).T
    except (np.linalg.LinAlgError, FloatingPointError):
        return math.inf
    if r.fit_intercept:
        sw = math.sqrt(d.wsum)
        rc = np.block([[np.array([[sw]]), sw * mean[None, :]], [np.zeros((len(mean), 1)), rc]])
    sv = np.linalg.svd(rc, compute_uv=False)
    if not np.isfinite(sv).all():
        return math.nan
    return float(sv[0] / sv[-1]) if sv[-1] > 0 else math.inf


def _health(r) -> tuple:
    """Numerical-health warnings: condition number, VIF > 10, tiny spread relative to the mean."""
    out = []
    off = r.k_constant
    feats = r.term_names[off:]
    if math.isfinite(r.condition_number) and r.condition_number > COND_WARN:
        out.append(f"Condition number {r.condition_number:.3g} (centred, equilibrated design) is large: relative "
                   f"errors in the data may be amplified up to that factor in the coefficients.")
    elif r.condition_number == math.inf:
        out.append("Condition number is infinite: the design is singular.")
    vif = np.asarray(r.vif)
    high = [j for j in range(len(feats)) if np.isfinite(vif[j]) and vif[j] > VIF_WARN or vif[j] == np.inf]
    if high:
        shown = ", ".join(f"{feats[j]} ({vif[j]:.3g})" for j in high[:8])
        out.append(f"Near-collinearity: variance inflation factor > {VIF_WARN:g} for {shown}"
                   f"{f' and {len(high) - 8} more' if len(high) > 8 else ''}.")
    cv = np.asarray(r.cv)
    const = [feats[j] for j in range(len(feats)) if cv[j] == 0]
    tiny = [j for j in range(len(feats)) if 0 < cv[j] < CV_WARN]
    if const:
        out.append(f"Constant column(s): {', '.join(const)} (no spread; "
                   f"{'aliased with the intercept' if r.fit_intercept else 'a multiple of an intercept'}).")
    if tiny:
        shown = ", ".join(f"{feats[j]} (sd/|mean| = {cv[j]:.2g})" for j in tiny[:8])
        out.append(f"Tiny spread relative to the mean: {shown}. The fit is exact for these float64 values, but "
                   f"their coefficients and the intercept are very sensitive to errors in the data (a relative "
                   f"error of sd/|mean| in a value changes its column's spread entirely).")
    return tuple(out)


# ---------------------------------------------------------------------- formatting
def _num(x, digits: int = 5) -> str:
    if isinstance(x, str):
        return x
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    return f"{x:.{digits}g}"


def _pval(p: float) -> str:
    p = float(p)
    if math.isnan(p):
        return "NaN"
    if p < 1e-16:
        return "<1e-16"
    return f"{p:.3g}"


def _count(x: float) -> str:
    x = float(x)
    if math.isnan(x):
        return "NaN"
    return f"{int(x)}" if x == int(x) else f"{x:.6g}"


def _stats_pairs(b: _Block):
    s = b.stats
    left = [("Solver:", s["solver"]), ("Weights:", s["weights_kind"]), ("Observations:", _count(s["n_obs"])),
            ("Df model:", _count(s["df_model"])), ("Df residuals:", _count(s["df_resid"])),
            ("Residual std. error:", _num(s["residual_std"])),
            ("Covariance:", s["cov_type"] if b.inferential else "—"),
            ("Cond. no. (centred, equil.):", _num(s["condition_number"], 4)),
            ("Cond. no. (raw, statsmodels):", _num(s.get("condition_number_raw", math.nan), 4))]
    r2 = "R-squared:" if s["r_squared_kind"] == "centred" else "R-squared (uncentred):"
    right = [(r2, _num(s["r_squared"], 6)), ("Adj. R-squared:", _num(s["adj_r_squared"], 6)),
             ("F-statistic:", _num(s["f_statistic"], 5)), ("Prob (F-statistic):", _pval(s["f_pvalue"])),
             ("Log-likelihood:", _num(s["log_likelihood"], 6)), ("AIC:", _num(s["aic"], 6)),
             ("BIC:", _num(s["bic"], 6))]
    return left, right


def _coef_rows(b: _Block, level: float):
    lo = f"[{(1 - level) / 2:.4g}"
    hi = f"{1 - (1 - level) / 2:.4g}]"
    if b.inferential:
        head = ["", "coef", "std err", "t", "P>|t|", lo, hi]
        rows = [[printable(t), _num(b.table["coef"][j]), _num(b.table["std_err"][j]), _num(b.table["t_value"][j], 4),
                 _pval(b.table["p_value"][j]), _num(b.table["ci_lower"][j]), _num(b.table["ci_upper"][j])]
                for j, t in enumerate(b.terms)]
    else:
        head = ["", "coef"]
        rows = [[printable(t), _num(b.table["coef"][j], 8)] for j, t in enumerate(b.terms)]
    return head, rows


def _text(b: _Block, level: float, cov_type: str) -> str:
    head, rows = _coef_rows(b, level)
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    widths = [widths[0]] + [max(w, 9) for w in widths[1:]]
    sep = "  "

    def line(cells):
        return (str(cells[0]).ljust(widths[0]) + "".join(sep + str(c).rjust(w) for c, w in zip(cells[1:], widths[1:])))

    table = [line(head)] + [line(r) for r in rows]
    left, right = _stats_pairs(b)
    la, lv = max(len(a) for a, _ in left), max(len(v) for _, v in left)
    ra, rv = max(len(a) for a, _ in right), max(len(v) for _, v in right)
    lw, rw = la + 2 + lv, ra + 2 + rv
    width = max(len(table[0]), lw + 4 + rw)
    info = []
    for i in range(max(len(left), len(right))):
        lt = f"{left[i][0]:<{la}}  {left[i][1]:>{lv}}" if i < len(left) else ""
        rt = f"{right[i][0]:<{ra}}  {right[i][1]:>{rv}}" if i < len(right) else ""
        info.append((lt.ljust(width - rw) + rt).rstrip())
    title = f"Linear regression results: {printable(b.target)}"
    out = [title.center(width).rstrip(), "=" * width, *info, "=" * width, table[0], "-" * width, *table[1:],
           "=" * width]
    if b.notes:
        out.append("Notes:")
        out.extend(f"[{i + 1}] {printable(n)}" for i, n in enumerate(b.notes))
    if b.warnings:
        out.append("Warnings:")
        out.extend(f"[{i + 1}] {printable(n)}" for i, n in enumerate(b.warnings))
    return "\n".join(out)


def _html(b: _Block, level: float) -> str:
    import html  # (where used: ~1 ms of every summary otherwise)

    def e(text):
        return html.escape(printable(text))

    left, right = _stats_pairs(b)
    rows = []
    for i in range(max(len(left), len(right))):
        cells = []
        for side in (left, right):
            if i < len(side):
                cells.append(f"<th>{e(side[i][0])}</th><td>{e(side[i][1])}</td>")
            else:
                cells.append("<th></th><td></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head, crow = _coef_rows(b, level)
    coef = ["<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
    coef += ["<tr><th>" + e(r[0]) + "</th>" + "".join(f"<td>{e(c)}</td>" for c in r[1:]) + "</tr>" for r in crow]
    parts = [f'<div class="jaxlm-summary"><h4>Linear regression results: {e(b.target)}</h4>',
             '<table class="jaxlm-stats">' + "".join(rows) + "</table>",
             '<table class="jaxlm-coef">' + "".join(coef) + "</table>"]
    if b.notes:
        parts.append("<p><b>Notes:</b></p><ol>" + "".join(f"<li>{e(n)}</li>" for n in b.notes) + "</ol>")
    if b.warnings:
        parts.append("<p><b>Warnings:</b></p><ol>" + "".join(f"<li>{e(n)}</li>" for n in b.warnings) + "</ol>")
    parts.append("</div>")
    return "\n".join(parts)


# ---------------------------------------------------------------------- equality, Markdown, LaTeX
def _same(a, b) -> bool:
    """Value equality of two statistics (NaN equals NaN; arrays elementwise, same shape)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == b.dtype.kind == "f"))
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    return x == y or (math.isnan(x) and math.isnan(y))


def _same_block(a: _Block, b: _Block) -> bool:
    return (a.target == b.target and a.terms == b.terms and a.inferential == b.inferential
            and a.notes == b.notes and a.warnings == b.warnings
            and a.stats.keys() == b.stats.keys() and all(_same(a.stats[k], b.stats[k]) for k in a.stats)
            and a.table.keys() == b.table.keys() and all(_same(a.table[k], b.table[k]) for k in a.table))


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|~!#&$"})  # all that acts inside a cell


def md_escape(text) -> str:
    """``text`` (data) as literal Markdown: control characters escaped as in the terminal, then
    every character with a meaning in Markdown or a table cell (``|``) backslash-escaped."""
    return printable(text).translate(_MD_SPECIAL)


def md_table(head, rows, align: str | None = None) -> str:
    """A GitHub Markdown table; ``head`` and ``rows`` are cells already escaped; ``align`` one
    ``l`` or ``r`` per column (default: the first left, the others right)."""
    align = align or "l" + "r" * (len(head) - 1)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _escaped(b: _Block, level: float, esc):
    """The coefficient table's header and rows and the statistics' pairs, each cell escaped by ``esc``
    (names are data: never markup)."""
    head, rows = _coef_rows(b, level)
    rows = [[esc(b.terms[i])] + [esc(c) for c in r[1:]] for i, r in enumerate(rows)]
    left, right = _stats_pairs(b)
    return [esc(h) for h in head], rows, [[esc(k), esc(v)] for k, v in left + right]


def _markdown(b: _Block, level: float) -> str:
    head, rows, stats = _escaped(b, level, md_escape)
    out = [f"**Linear regression results: {md_escape(b.target)}**", md_table(["statistic", "value"], stats),
           md_table(head, rows)]
    for title, items in (("Notes", b.notes), ("Warnings", b.warnings)):
        if items:
            out.append(f"{title}:\n\n" + "\n".join(f"{i + 1}. {md_escape(n)}" for i, n in enumerate(items)))
    return "\n\n".join(out)


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def tex_escape(text) -> str:
    """``text`` (data) as literal LaTeX text: control characters escaped as in the terminal, then
    LaTeX's special characters replaced by their commands."""
    return "".join(_TEX_SPECIAL.get(c, c) for c in printable(text))


def tex_table(head, rows, align: str) -> str:
    """A booktabs ``tabular``; ``head`` and ``rows`` are cells already escaped."""
    lines = [f"\\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in rows]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"])


def _latex(b: _Block, level: float) -> str:
    head, rows, stats = _escaped(b, level, tex_escape)
    out = [f"% Linear regression results: {tex_escape(b.target)}",
           tex_table(head, rows, "l" + "r" * (len(head) - 1)), "",
           tex_table(["statistic", "value"], stats, "lr")]
    for title, items in (("Notes", b.notes), ("Warnings", b.warnings)):
        if items:
            out += ["", f"\\paragraph{{{title}}}", r"\begin{enumerate}"]
            out += [f"\\item {tex_escape(n)}" for n in items] + [r"\end{enumerate}"]
    return "\n".join(out) + "\n"
