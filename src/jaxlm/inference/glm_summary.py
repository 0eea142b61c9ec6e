"""The GLM summary: the same four forms as the linear one (:mod:`jaxlm.inference.summary`):
an aligned text table, HTML for Jupyter, a pandas DataFrame and a plain dict.

Names from the data reach the text and HTML through :func:`jaxlm.core.text.printable` (escaped,
never sent raw to a terminal); ``to_frame`` and ``to_dict`` keep them as they are.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import check_choice
from ..core.text import printable
from ._common import _check_level
from .glm import COV_KINDS, GLMResults
from .summary import COND_WARN, _count, _num, _pval

_COLUMNS = ("coef", "std_err", "z_value", "p_value", "ci_lower", "ci_upper")


@dataclass(frozen=True)
class GLMSummary:
    """Printable, HTML-renderable GLM summary (immutable).

    ``str(summary)``: coefficients with standard errors, z, p (normal, also when the scale is
    estimated, as statsmodels) and confidence intervals; family, link, observations, degrees of
    freedom, scale, iterations, deviance, null deviance, Pearson χ², log-likelihood, AIC, both
    BICs and the Cox–Snell pseudo-R²; notes and warnings. :meth:`to_frame` and :meth:`to_dict`
    give the numbers unformatted.
    """

    target: str
    level: float
    cov_type: str
    stats: dict
    terms: tuple
    table: dict
    inferential: bool
    notes: tuple
    warnings: tuple

    def __str__(self) -> str:
        return _text(self)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        return _html(self)

    def to_frame(self):
        """Coefficient table as a pandas DataFrame (index: term; columns ``coef, std_err,
        z_value, p_value, ci_lower, ci_upper``; ``df.attrs``: level, cov_type, stats)."""
        import pandas as pd

        cols = _COLUMNS if self.inferential else ("coef",)
        df = pd.DataFrame({c: np.asarray(self.table[c]) for c in cols}, index=pd.Index(self.terms, name="term"))
        df.attrs.update(level=self.level, cov_type=self.cov_type, stats={self.target: dict(self.stats)})
        return df

    def to_dict(self) -> dict:
        """``{"level", "cov_type", "targets": [{"target", "stats", "coefficients", "notes", "warnings"}]}``
        (the linear summary's layout)."""
        cols = _COLUMNS if self.inferential else ("coef",)
        return {"level": self.level, "cov_type": self.cov_type, "targets": [{
            "target": self.target, "stats": dict(self.stats),
            "coefficients": {c: {t: float(v) for t, v in zip(self.terms, self.table[c])} for c in cols},
            "notes": list(self.notes), "warnings": list(self.warnings)}]}


def glm_summary(results: GLMResults, *, level: float = 0.95, cov: str | None = None, target: str = "y",
                solver: str = "irls", condition_number: float = math.nan) -> GLMSummary:
    """The :class:`GLMSummary` of ``results`` (``cov``: a kind of :data:`COV_KINDS`, default the
    results' ``cov_type``; the HC kinds need results built with ``robust=True``, "cluster" results
    fitted with ``cov_type="cluster"``)."""
    level = _check_level(level)
    cov = check_choice("cov", results.cov_type if cov is None else cov, COV_KINDS)
    tab = results.coef_table(cov=cov, level=level)
    inferential = bool(np.any(np.isfinite(tab.bse)))
    table = dict(zip(_COLUMNS, (tab.params, tab.bse, tab.z, tab.p, tab.lower, tab.upper)))
    r = results
    stats = {"family": r.family.describe(), "link": r.link.name, "solver": solver, "n_obs": r.nobs,
             "weighted_n_obs": r.wnobs, "df_model": r.df_model, "df_resid": r.df_resid, "scale": r.scale,
             "iterations": r.n_iter, "converged": r.converged, "deviance": r.deviance,
             "null_deviance": r.null_deviance, "pearson_chi2": r.pearson_chi2, "log_likelihood": r.llf,
             "aic": r.aic, "bic_llf": r.bic_llf, "bic_deviance": r.bic_deviance,
             "pseudo_r_squared_cs": r.pseudo_rsquared("cs"), "condition_number": float(condition_number),
             "cov_type": cov}
    notes = []
    if r.alpha > 0:
        notes.append(f"Ridge fit (alpha={r.alpha:g}): penalised estimates have no standard errors here.")
    elif not inferential:
        notes.append("No inferential statistics: no residual degrees of freedom.")
    else:
        scale = "estimated (Pearson χ²/df_resid)" if r.family.estimates_scale else "fixed at 1"
        robust = f" Standard errors are heteroskedasticity-robust ({cov})."
        if cov == "cluster":
            robust = (f" Standard errors are {results.cov_label(cov)}, with statsmodels' small-sample factor "
                      f"G/(G−1)·(N−1)/(N−K).")
        notes.append(f"z and p use the normal distribution; the scale is {scale}."
                     + ("" if cov == "nonrobust" else robust))
    if r.separated:
        cols = ", ".join(r.term_names[j + int(r.fit_intercept)] for j in r.separated)
        notes.append(f"Separation: the coefficients of {cols} diverge; they are not estimates.")
    if not r.converged and not r.separated:
        notes.append("The fit did not converge: the estimates are the last iterate.")
    notes.extend(r.notes)
    warns = []
    if math.isfinite(condition_number) and condition_number > COND_WARN:
        warns.append(f"Condition number {condition_number:.3g} (working-weighted, centred design) is large.")
    if not np.all(r.estimable):
        names = [t for t, e in zip(r.term_names, r.estimable) if not e]
        warns.append(f"Aliased (not estimable) terms: {', '.join(names)}.")
    return GLMSummary(str(target), level, cov, stats, tuple(r.term_names), table, inferential, tuple(notes),
                      tuple(warns))


def _pairs(s: GLMSummary):
    st = s.stats
    left = [("Family:", st["family"]), ("Link:", st["link"]), ("Solver:", st["solver"]),
            ("Observations:", _count(st["n_obs"])), ("Df model:", _count(st["df_model"])),
            ("Df residuals:", _count(st["df_resid"])), ("Scale:", _num(st["scale"], 6)),
            ("Covariance:", st["cov_type"] if s.inferential else "—"),
            ("Iterations:", f"{st['iterations']}{'' if st['converged'] else ' (not converged)'}")]
    right = [("Deviance:", _num(st["deviance"], 8)), ("Null deviance:", _num(st["null_deviance"], 8)),
             ("Pearson chi2:", _num(st["pearson_chi2"], 6)), ("Log-likelihood:", _num(st["log_likelihood"], 8)),
             ("AIC:", _num(st["aic"], 8)), ("BIC (llf):", _num(st["bic_llf"], 8)),
             ("BIC (deviance):", _num(st["bic_deviance"], 8)), ("Pseudo R² (CS):", _num(st["pseudo_r_squared_cs"], 5)),
             ("Condition number:", _num(st["condition_number"], 4))]
    return left, right


def _coef_rows(s: GLMSummary):
    lo, hi = f"[{(1 - s.level) / 2:.4g}", f"{1 - (1 - s.level) / 2:.4g}]"
    t = s.table
    if not s.inferential:
        return ["", "coef"], [[printable(n), _num(t["coef"][j], 8)] for j, n in enumerate(s.terms)]
    head = ["", "coef", "std err", "z", "P>|z|", lo, hi]
    rows = [[printable(n), _num(t["coef"][j]), _num(t["std_err"][j]), _num(t["z_value"][j], 4),
             _pval(t["p_value"][j]), _num(t["ci_lower"][j]), _num(t["ci_upper"][j])] for j, n in enumerate(s.terms)]
    return head, rows


def _text(s: GLMSummary) -> str:
    head, rows = _coef_rows(s)
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    widths = [widths[0]] + [max(w, 9) for w in widths[1:]]

    def line(cells):
        return str(cells[0]).ljust(widths[0]) + "".join("  " + str(c).rjust(w) for c, w in zip(cells[1:], widths[1:]))

    table = [line(head)] + [line(r) for r in rows]
    left, right = _pairs(s)
    la, lv = max(len(a) for a, _ in left), max(len(v) for _, v in left)
    ra, rv = max(len(a) for a, _ in right), max(len(v) for _, v in right)
    width = max(len(table[0]), la + lv + ra + rv + 8)
    info = [(f"{a:<{la}}  {v:>{lv}}".ljust(width - ra - rv - 2) + f"{b:<{ra}}  {w:>{rv}}").rstrip()
            for (a, v), (b, w) in zip(left, right)]
    title = f"Generalized linear model results: {printable(s.target)}"
    out = [title.center(width).rstrip(), "=" * width, *info, "=" * width, table[0], "-" * width, *table[1:],
           "=" * width]
    for label, items in (("Notes:", s.notes), ("Warnings:", s.warnings)):
        if items:
            out.append(label)
            out.extend(f"[{i + 1}] {printable(n)}" for i, n in enumerate(items))
    return "\n".join(out)


def _html(s: GLMSummary) -> str:
    def e(text):
        return html.escape(printable(text))

    left, right = _pairs(s)
    stats = "".join(f"<tr><th>{e(a)}</th><td>{e(v)}</td><th>{e(b)}</th><td>{e(w)}</td></tr>"
                    for (a, v), (b, w) in zip(left, right))
    head, rows = _coef_rows(s)
    coef = ["<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
    coef += ["<tr><th>" + e(r[0]) + "</th>" + "".join(f"<td>{e(c)}</td>" for c in r[1:]) + "</tr>" for r in rows]
    parts = [f'<div class="jaxlm-summary"><h4>Generalized linear model results: {e(s.target)}</h4>',
             f'<table class="jaxlm-stats">{stats}</table>', '<table class="jaxlm-coef">' + "".join(coef) + "</table>"]
    for label, items in (("Notes:", s.notes), ("Warnings:", s.warnings)):
        if items:
            parts.append(f"<p><b>{label}</b></p><ol>" + "".join(f"<li>{e(n)}</li>" for n in items) + "</ol>")
    parts.append("</div>")
    return "\n".join(parts)


__all__ = ["GLMSummary", "glm_summary"]
