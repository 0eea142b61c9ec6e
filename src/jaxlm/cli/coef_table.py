"""``jaxlm fit --coef-table FILE``: the coefficient table as a file, its format by the extension.

Columns: ``target`` (only when the model has several targets), ``term``, ``estimate``,
``std_error``, ``t``, ``p``, ``ci_lower``, ``ci_upper`` (the interval at ``--level``; the
standard errors of the covariance in use), one row per term and target, in the summary's order.
A GLM's table has ``z`` instead of ``t`` (``stat="z"``: normal reference, as its summary).
Numbers without inference (ridge, gradient solvers) are missing: an empty CSV field, a Parquet
null, a JSON ``null``, "NaN" in Markdown and LaTeX.

- ``.csv``: the full float64 values (they read back exactly);
- ``.parquet``: float64 columns, with the level and covariance in the schema metadata;
- ``.json``: ``{"level", "cov_type", "columns", "rows": [{column: value}]}``;
- ``.md`` / ``.tex``: a GitHub Markdown table / a booktabs ``tabular``, numbers as in the
  summary (5 significant digits), names escaped (they are data, never markup).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["FORMATS", "check_path", "columns", "write"]

#: extension -> format
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".md": "md", ".markdown": "md", ".tex": "tex",
           ".json": "json"}


def check_path(path: str) -> str:
    """The format of ``--coef-table path`` (checked before anything is read)."""
    from ._common import _Usage

    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise _Usage(f"--coef-table must end in .csv, .parquet, .md, .tex or .json (the file format); got "
                     f"--coef-table {path!r}.")
    return fmt


def columns(rows: list[dict], stat: str = "t") -> list[str]:
    """The columns of the file: ``target`` only for several targets; ``stat`` the test statistic's
    column (``"t"``, or ``"z"`` for a GLM)."""
    from jaxlm.inference.summary import ROW_COLUMNS

    several = len({r["target"] for r in rows}) > 1
    return (["target"] if several else []) + ["term", *(stat if c == "t" else c for c in ROW_COLUMNS)]


def write(tmp: str, fmt: str, rows: list[dict], *, level: float, cov_type: str, stat: str = "t") -> None:
    """Write ``rows`` to the file ``tmp`` (a temporary, renamed into place by the caller); ``rows``
    have the key ``stat`` (``"t"`` or ``"z"``) for the test statistic."""
    cols = columns(rows, stat)
    if fmt in ("csv", "parquet"):
        _write_arrow(tmp, fmt, rows, cols, level=level, cov_type=cov_type)
        return
    if fmt == "json":
        doc = {"level": level, "cov_type": cov_type, "columns": cols,
               "rows": [{c: _json_value(r[c]) for c in cols} for r in rows]}
        text = json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    else:
        text = _text_table(fmt, rows, cols, level=level, cov_type=cov_type)
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def _json_value(v):
    """A JSON value: NaN -> null, ±inf -> "Infinity"/"-Infinity" (as in model files)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def _write_arrow(tmp: str, fmt: str, rows, cols, *, level: float, cov_type: str) -> None:
    import numpy as np
    import pyarrow as pa

    arrays = []
    for c in cols:
        values = [r[c] for r in rows]
        if c in ("target", "term"):
            arrays.append(pa.array(values, pa.string()))
        else:
            v = np.asarray(values, dtype=np.float64)
            arrays.append(pa.array(v, pa.float64(), mask=np.isnan(v)))
    meta = {"jaxlm.level": repr(level), "jaxlm.cov_type": cov_type}
    table = pa.Table.from_arrays(arrays, names=cols).replace_schema_metadata(meta)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, tmp)
    else:
        from pyarrow import csv

        csv.write_csv(table, tmp, write_options=csv.WriteOptions(quoting_style="needed"))


def _text_table(fmt: str, rows, cols, *, level: float, cov_type: str) -> str:
    """A Markdown or LaTeX table, numbers formatted as in the text summary."""
    from jaxlm.inference.summary import (
        _num,
        _pval,
        md_escape,
        md_table,
        tex_escape,
        tex_table,
    )

    def cell(c, v):
        if c in ("target", "term"):
            return v
        return _pval(v) if c == "p" else _num(v, 4 if c in ("t", "z") else 5)

    body = [[cell(c, r[c]) for c in cols] for r in rows]
    caption = f"level {level:g}, covariance {cov_type}"
    align = "".join("l" if c in ("target", "term") else "r" for c in cols)
    if fmt == "md":
        esc = [[md_escape(x) for x in row] for row in body]
        return (f"<!-- jaxlm fit --coef-table: {caption} -->\n" + md_table([md_escape(c) for c in cols], esc, align)
                + "\n")
    esc = [[tex_escape(x) for x in row] for row in body]
    return f"% jaxlm fit --coef-table: {caption}\n" + tex_table([tex_escape(c) for c in cols], esc, align) + "\n"
