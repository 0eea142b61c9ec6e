"""Model formulas (formulaic): ``"fahrenheit ~ celsius"``, ``"y ~ x1 * x2 + C(group) + np.log(z)"``.

A :class:`FormulaSpec` is a formula string plus the levels of its categorical columns. It is
all that a model file stores (JSON, no pickle): formulaic's ``ModelSpecs`` is rebuilt from it
at load time and re-applied to new data at predict time, so the one-hot columns of a
prediction file are those of the fit.

Streaming and categorical levels
--------------------------------
One-hot encoding needs every level of a categorical column before the first block is encoded
(a level first seen in block 7 would add a column after blocks 1–6 were summed). So a fit
from a file makes **one cheap first pass over only the categorical columns** (Parquet reads
just those columns; CSV parses the file but converts only them) to collect their levels,
sorted as formulaic / pandas sort them in memory. With ``missing="drop"`` that pass reads
every column the formula uses, so that a level seen only in dropped rows is not kept. The
spec is then built from a synthetic frame carrying those levels, and each block is encoded
with it. A formula without categorical terms needs no such pass.

Which columns are categorical is decided as formulaic decides it: text (string or
dictionary) columns, and columns inside ``C(...)``. Booleans are numeric (0/1).

Formulas are data: before formulaic sees a formula, :mod:`jaxlm.io.grammar` checks it against a
closed grammar (column names, numbers, operators and a fixed table of transforms); anything else,
such as formulaic's ``{...}`` Python blocks, is refused without being evaluated.

Not supported (refused with a message): stateful transforms whose parameters formulaic learns
from the data (``center``, ``scale``, ``standardize``, ``poly``, the splines ``bs``/``cr``/
``cs``/``cc``/``te``) and ``lag`` (which reads the previous row): encoded block by block they
would learn from, or look back within, one block only, and a model file (formula + levels)
could not reproduce them. Compute such columns before fitting (a linear model's coefficients
for centred or scaled columns follow from the raw fit anyway).
At predict time a level the fit did not see is an error naming the column, the level and
the row (formulaic itself would warn and encode it as all zeros).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.errors import InputError
from . import grammar
from .design import DesignBlock, check_missing
from .values import Block, Source, _is_numeric, _is_text, closest_names

__all__ = ["FormulaSpec", "parse_formula"]

INTERCEPT = "Intercept"
#: rows of the frame a spec is built from: formulaic encodes every category of a pandas
#: Categorical, seen or not, so a few rows carry any number of levels (memory ~ levels, not levels²).
_SYNTHETIC_ROWS = 2


def _formulaic():
    try:
        import formulaic
    except ImportError:  # pragma: no cover - formulaic is a dependency of jaxlm.io formulas
        raise InputError("formula", "formula needs the 'formulaic' package; install it with "
                                    "'pip install formulaic'.") from None
    return formulaic


def _clean(msg: str) -> str:
    """formulaic's messages carry ANSI colours and an ASCII-art pointer on later lines."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(msg)).replace("⧛", "").replace("⧚", "")
    return " ".join(text.split("\n")[0].split()) or "cannot parse it"


def parse_formula(formula, *, two_sided: bool = True):
    """A formulaic ``Formula`` from a string, or an InputError naming the problem.

    The text is checked against jaxlm's closed formula grammar (:mod:`jaxlm.io.grammar`) before
    formulaic is called, and formulaic's parse is checked again against what the gate saw.
    """
    return _checked(formula, two_sided=two_sided)[0]


def _checked(formula, *, two_sided: bool = True):
    """``(formulaic.Formula, grammar.ParsedFormula)`` of a formula that passed the gate."""
    parsed = grammar.parse(formula, two_sided=two_sided)  # first: nothing reaches formulaic unchecked
    formulaic = _formulaic()
    from formulaic.errors import FormulaicError

    try:
        f = formulaic.Formula(formula)
    except (FormulaicError, SyntaxError, ValueError, TypeError, AttributeError, RecursionError) as e:
        raise InputError("formula", f"formula must be a valid model formula such as 'y ~ x1 * x2 + C(group) + "
                                    f"np.log(z)'; got formula={formula!r} ({_clean(e)}).") from None
    grammar.verify_formulaic(f, parsed)
    return f, parsed


def _kind_categorical(kind) -> bool:
    return getattr(kind, "value", str(kind)) == "categorical"


def _py(v):
    """A level as plain JSON-able Python (numpy scalars unwrapped)."""
    return v.item() if hasattr(v, "item") else v


def _synthetic(levels: dict, numeric: Iterable[str]):
    """A tiny DataFrame carrying every level of every categorical column (numeric columns 1.0).

    Each categorical column is a ``pd.Categorical`` whose categories are all its levels, so
    formulaic encodes all of them from :data:`_SYNTHETIC_ROWS` rows: memory grows with the number
    of levels, not with rows × levels.
    """
    import pandas as pd

    n = _SYNTHETIC_ROWS
    cols = {c: np.ones(n) for c in numeric}
    for c, lv in levels.items():
        vals = [lv[i % len(lv)] for i in range(n)] if lv else [None] * n
        cols[c] = pd.Categorical(vals, categories=list(lv))
    return pd.DataFrame(cols)


def _context() -> dict:
    """What formulaic may evaluate besides the data: the grammar's transform table, nothing else."""
    return grammar.evaluation_context()


@dataclass(frozen=True, eq=False)
class FormulaSpec:
    """A formula and the levels of its categorical columns: enough to rebuild the encoding.

    Attributes
    ----------
    formula : str                 as given, e.g. ``"y ~ x + C(g)"``
    levels : dict[str, list]      categorical data column -> its levels, in encoding order
    features : tuple[str, ...]    encoded model columns (the intercept not included)
    targets : tuple[str, ...]     encoded left-hand-side columns
    fit_intercept : bool          whether the formula has an intercept (``- 1`` / ``+ 0`` remove it)
    inputs : tuple[str, ...]      data columns the right-hand side needs (the columns of a prediction file)
    outputs : tuple[str, ...]     data columns the left-hand side needs
    """

    formula: str
    levels: dict
    features: tuple
    targets: tuple
    fit_intercept: bool
    inputs: tuple
    outputs: tuple
    _specs: object = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_levels(cls, formula: str, levels: dict, *, parsed=None, plain: bool = True) -> FormulaSpec:
        """Build the formulaic spec from the formula and levels (no data needed). ``parsed``: the
        gate's parse when the caller has it. A formula of plain column names without categorical
        levels (:func:`jaxlm.io.grammar.plain_terms`) is read without formulaic (its spec is built on first use of
        :attr:`specs`); ``plain=False`` always asks formulaic."""
        parsed = parsed or grammar.parse(formula)  # the gate first
        terms = grammar.plain_terms(formula) if plain and not any(str(k) in parsed.columns for k in levels) else None
        if terms is not None and INTERCEPT not in parsed.columns and terms[0] not in parsed.rhs:
            target, features, intercept = terms
            return cls(formula, {}, features, (target,), intercept, tuple(sorted(parsed.rhs)), (target,))
        f, parsed = _checked(formula)
        both = [c for c in parsed.lhs if c in parsed.rhs]
        if both:
            raise InputError("formula", f"formula must not use the target {both[0]!r} on the right of '~' too (it "
                                        f"would explain itself: a perfect, meaningless fit); got formula={formula!r}.")
        if INTERCEPT in parsed.columns:
            raise InputError("formula", f"formula must not use a column named {INTERCEPT!r}: formulaic gives that name "
                                        f"to the intercept term, so the column would be taken for it (and '- 1' "
                                        f"ignored); got formula={formula!r}. Rename the column, or fit without "
                                        f"a formula (features=).")
        formulaic = _formulaic()
        # levels of the formula's columns only; every bare name of the formula is a column of the
        # frame, so none can resolve to anything but data
        levels = {str(k): [_py(v) for v in lv] for k, lv in levels.items() if str(k) in parsed.columns}
        numeric = [c for c in parsed.columns if c not in levels]
        frame = _synthetic(levels, numeric)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with np.errstate(all="ignore"):
                    mm = formulaic.model_matrix(f, frame, na_action="ignore", context=_context())
        except Exception as e:  # noqa: BLE001 - formulaic raises many kinds; all mean a bad formula
            raise InputError("formula", f"formula must be evaluable on the data's columns; got formula={formula!r} "
                                        f"({_clean(e)}).") from None
        specs = mm.model_spec
        stateful = sorted(set(specs.rhs.transform_state) | set(specs.lhs.transform_state))
        if stateful:
            raise InputError("formula", f"formula must not use transforms that learn from the data ({', '.join(stateful)}); "
                                        f"got formula={formula!r}. Fitted block by block they would learn from the first "
                                        f"block only: compute those columns before fitting.")
        for part in (specs.lhs,):
            for fac, (kind, _) in part.encoder_state.items():
                if _kind_categorical(kind):
                    raise InputError("formula", f"formula must have a numeric target; got the categorical {fac} on the "
                                                f"left of '~' in formula={formula!r}.")
        _check_nominated_levels(specs.rhs, levels, formula)
        rhs_cols = list(specs.rhs.column_names)
        fit_intercept = INTERCEPT in rhs_cols
        features = tuple(c for c in rhs_cols if c != INTERCEPT)
        if not features:
            raise InputError("formula", f"formula must have at least one term besides the intercept; got "
                                        f"formula={formula!r}.")
        # formulaic must have found no name the gate did not see (a bare name is always a column of
        # the frame above, so it cannot resolve to anything else)
        seen = {str(v) for v in set(specs.lhs.variables) | set(specs.rhs.variables)}
        extra = sorted(seen - set(parsed.columns) - grammar.callable_names())
        if extra:
            raise InputError("formula", f"formula must use only data columns and the allowed transforms; got {extra} "
                                        f"in formula={formula!r}.")
        rhs_vars, lhs_vars = tuple(sorted(parsed.rhs)), tuple(sorted(parsed.lhs))
        return cls(formula, levels, features, tuple(specs.lhs.column_names), fit_intercept, rhs_vars, lhs_vars,
                   specs)

    @classmethod
    def from_source(cls, formula: str, source: Source, *, missing: str = "raise", weights: str | None = None,
                    progress: Callable[[str, int], None] | None = None) -> FormulaSpec:
        """Parse ``formula``, check its columns against ``source`` and collect the categorical levels.

        The level pass reads only the categorical columns (all used columns with
        ``missing="drop"``); it is skipped when the formula has none.
        """
        check_missing(missing)
        parsed = grammar.parse(formula)  # the gate first
        if grammar.plain_terms(formula) is None:
            _checked(formula)  # formulaic's own parse too, before a level pass over the data
        lhs_vars, rhs_vars = list(parsed.lhs), list(parsed.rhs)
        names = source.column_names
        for v in lhs_vars + rhs_vars:
            if v not in names:
                near = closest_names(v, names)
                hint = f" Did you mean {' or '.join(repr(c) for c in near)}?" if near else ""
                raise InputError("formula", f"formula must use columns of {source.name}; got {v!r} in "
                                            f"formula={formula!r}, which is not a column.{hint}")
        used = sorted(set(lhs_vars) | set(rhs_vars))
        schema = source.schema
        for v in used:
            t = schema.field(v).type
            if not (_is_numeric(t) or _is_text(t)):
                raise InputError("formula", f"formula must use numeric or text columns; got column {v!r} of type {t}.")
        # categorical as formulaic decides it: text columns, and the columns inside C(...)
        categorical = {v for v in used if _is_text(schema.field(v).type)} | set(parsed.categorical)
        for v in lhs_vars:
            if v in categorical:
                raise InputError("formula", f"formula must have a numeric target; got text column {v!r} on the "
                                            f"left of '~'.")
        cat_cols = sorted(categorical)
        levels: dict = {c: set() for c in cat_cols}
        if cat_cols:
            read = used + ([weights] if weights and weights not in used else []) if missing == "drop" else cat_cols
            types = _csv_types(source, read, categorical)
            for block in source.blocks(read, types=types):
                t = block.table
                if missing == "drop":
                    mask = _missing_mask(t, read)
                    if mask is not None:
                        t = t.filter(pc.invert(mask))
                for c in cat_cols:
                    col = t.column(c)
                    if pa.types.is_dictionary(col.type):
                        col = pc.cast(col, col.type.value_type)
                    levels[c].update(v for v in pc.unique(col).to_pylist() if v is not None
                                     and not (isinstance(v, float) and v != v))
                if progress is not None:
                    progress("levels", t.num_rows)
        ordered = {}
        for c, vals in levels.items():
            if not vals:
                raise InputError("data", f"data column {c!r} must have at least one non-missing value to be encoded "
                                         f"as categories; got none.")
            try:
                ordered[c] = sorted(vals)
            except TypeError:
                ordered[c] = sorted(vals, key=lambda v: (type(v).__name__, str(v)))
        return FormulaSpec.from_levels(formula, ordered, parsed=parsed)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        """``{"formula", "levels", "features", "targets", "fit_intercept", "inputs", "outputs"}``."""
        return {"formula": self.formula, "levels": {k: list(v) for k, v in self.levels.items()},
                "features": list(self.features), "targets": list(self.targets),
                "fit_intercept": bool(self.fit_intercept), "inputs": list(self.inputs), "outputs": list(self.outputs)}

    @classmethod
    def from_json(cls, doc: dict) -> FormulaSpec:
        """Rebuild from :meth:`to_json`; the rebuilt encoding must give the stored columns."""
        if not isinstance(doc, dict) or not isinstance(doc.get("formula"), str):
            raise InputError("formula", "formula must be an object with a 'formula' string.")
        levels = doc.get("levels", {})
        if not isinstance(levels, dict) or not all(isinstance(k, str) and isinstance(v, list) and v
                                                   and all(isinstance(x, (str, int, float, bool)) for x in v)
                                                   for k, v in levels.items()):
            raise InputError("formula", "formula levels must map column names to non-empty lists of strings or numbers.")
        spec = cls.from_levels(doc["formula"], levels)
        for key, have in (("features", spec.features), ("targets", spec.targets)):
            stored = doc.get(key)
            if stored is not None and tuple(stored) != tuple(have):
                raise InputError("formula", f"formula {doc['formula']!r} with the stored levels encodes {key} "
                                            f"{list(have)}, but the file lists {list(stored)}.")
        if "fit_intercept" in doc and bool(doc["fit_intercept"]) != spec.fit_intercept:
            raise InputError("formula", f"formula {doc['formula']!r} {'has' if spec.fit_intercept else 'has no'} "
                                        f"intercept, but the file says fit_intercept={doc['fit_intercept']!r}.")
        return spec

    # ------------------------------------------------------------------ encoding
    @property
    def specs(self):
        """formulaic's ``ModelSpecs`` (built on first use for a formula read without formulaic)."""
        if self._specs is None:
            object.__setattr__(self, "_specs", FormulaSpec.from_levels(self.formula, self.levels, plain=False)._specs)
        return self._specs

    def read_types(self, source: Source, columns) -> dict:
        return _csv_types(source, columns, set(self.levels))

    def check_levels(self, table: pa.Table, start: int, source: Source | None = None) -> None:
        """Raise an InputError for a categorical value that the fit did not see."""
        for c, lv in self.levels.items():
            if c not in table.column_names:
                continue
            col = table.column(c)
            if pa.types.is_dictionary(col.type):
                col = pc.cast(col, col.type.value_type)
            try:
                known = pa.array(lv, type=col.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                known = pa.array([str(v) for v in lv])
                col = pc.cast(col, pa.string())
            ok = pc.or_kleene(pc.is_in(col, value_set=known), pc.is_null(col, nan_is_null=True))
            ok = ok.combine_chunks() if isinstance(ok, pa.ChunkedArray) else ok
            if not pc.all(ok).as_py():
                i = int(np.flatnonzero(~ok.to_numpy(zero_copy_only=False))[0])
                value = col[i].as_py()
                shown = ", ".join(map(repr, lv[:10])) + (f" and {len(lv) - 10} more" if len(lv) > 10 else "")
                raise InputError("data", f"data column {c!r} must hold levels the model was fitted with; got {value!r} "
                                         f"at data row {start + i + 1}, a level not seen in fitting. Known levels: "
                                         f"{shown}.")

    def _frame(self, table: pa.Table):
        """The formula's columns of ``table`` as pandas (other columns are left out, so none can
        shadow a transform's name)."""
        import pandas as pd

        wanted = set(self.inputs) | set(self.outputs)
        df = table.select([c for c in table.column_names if c in wanted]).to_pandas()
        for c, lv in self.levels.items():
            if c in df.columns:
                df[c] = pd.Categorical(df[c], categories=lv)
        return df

    def is_bare(self, table: pa.Table, weights: str | None = None) -> bool:
        """Whether the model matrices are the table's own numeric columns (``y ~ x1 + x2``), and the
        ``weights`` column (if any) holds integers or floats too."""
        return self._bare(table, True, (weights,) if weights else ())

    def _bare(self, table: pa.Table, targets: bool, extra: tuple = ()) -> bool:
        """Whether every model column is a numeric data column by its own name (``y ~ x1 + x2``):
        then the model matrices are those columns, read without formulaic."""
        names = list(self.features) + (list(self.targets) if targets else []) + list(extra)
        if self.levels or not set(self.features) <= set(self.inputs) or (targets and not set(self.targets) <= set(
                self.outputs)) or not set(names) <= set(table.column_names):
            return False
        return all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in (table.schema.field(c).type
                                                                                for c in names))

    def encode(self, table: pa.Table, *, targets: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Model matrices ``(X (n, d), Y (n, m) or None)`` of a table (no missing values in it)."""
        if self._bare(table, targets):
            X = np.empty((table.num_rows, len(self.features)), dtype=np.float64, order="F")
            for j, c in enumerate(self.features):
                X[:, j] = table.column(c).to_numpy()
            Y = np.column_stack([table.column(c).to_numpy().astype(np.float64, copy=False)
                                 for c in self.targets]) if targets else None
            return X, Y
        df = self._frame(table)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                try:
                    if targets:
                        mm = self.specs.get_model_matrix(df, context=_context())
                        rhs, lhs = mm.rhs, mm.lhs
                    else:
                        rhs, lhs = self.specs.rhs.get_model_matrix(df, context=_context()), None
                except Exception as e:  # noqa: BLE001
                    raise InputError("formula", f"formula could not be evaluated on the data; got "
                                                f"formula={self.formula!r} ({_clean(e)}).") from None
        X = np.asarray(rhs, dtype=np.float64)
        if self.fit_intercept:
            X = np.delete(X, list(rhs.columns).index(INTERCEPT), axis=1)
        X = np.asfortranarray(X)
        Y = None if lhs is None else np.asarray(lhs, dtype=np.float64).reshape(len(X), -1)
        return X, Y

    def design(self, missing: str, weights: str | None = None) -> Callable[[Block], DesignBlock]:
        """Block -> DesignBlock: the missing-value policy on the data columns, then the encoding."""
        check_missing(missing)
        used = list(dict.fromkeys(self.outputs + self.inputs + ((weights,) if weights else ())))

        def design(block: Block) -> DesignBlock:
            t = block.table.select(used)
            n = t.num_rows
            mask = _missing_mask(t, used)
            counts, rows, n_missing, first = {}, None, 0, -1
            if mask is not None:
                for c in used:
                    k = pc.sum(pc.is_null(t.column(c), nan_is_null=True)).as_py() or 0
                    if k:
                        counts[c] = int(k)
                bad = mask.to_numpy(zero_copy_only=False)
                n_missing, first = int(bad.sum()), block.start + int(np.argmax(bad))
                if missing == "raise":
                    e = np.zeros((0, len(self.features)))
                    return DesignBlock(e, np.zeros((0, len(self.targets))), np.zeros(0), block.start, n, None,
                                       counts, n_missing, first, void=True)
                keep = pc.invert(mask)
                rows = block.start + np.flatnonzero(~bad)
                t = t.filter(keep)
            X, Y = self.encode(t)
            w = np.ones(len(X))
            if weights:
                from .values import to_float64

                w = to_float64(t.column(weights))
            d = DesignBlock(X, Y, w, block.start, n, rows, counts, n_missing, first)
            if weights and w.size and (w < 0).any():
                i = int(np.flatnonzero(w < 0)[0])
                raise InputError("weights", f"weights must be >= 0; got weights column {weights!r} = {float(w[i])!r} at "
                                            f"data row {d.source_row(i) + 1}.")
            return d

        return design


def _check_nominated_levels(spec, levels: dict, formula: str) -> None:
    """``C(g, levels=[...])`` must name every level of ``g`` in the data: formulaic codes a value
    outside the nominated levels as missing, i.e. as the reference level (a plausible wrong fit)."""
    for fac, (kind, state) in spec.encoder_state.items():
        if not _kind_categorical(kind) or not isinstance(state, dict) or "categories" not in state:
            continue
        nominated = {str(v) for v in state["categories"]}
        variables = next((v for f, v in spec.factor_variables.items() if str(f) == str(fac)), set())
        for var in variables:
            left_out = [v for v in levels.get(str(var), []) if str(v) not in nominated]
            if left_out:
                shown = ", ".join(repr(v) for v in left_out[:5]) + (f" and {len(left_out) - 5} more"
                                                                   if len(left_out) > 5 else "")
                raise InputError("formula", f"formula term {str(fac)!r} must list every value of column {str(var)!r} "
                                            f"in levels=[...]; got {len(left_out)} value(s) in the data that it leaves "
                                            f"out: {shown} (they would be coded as the reference level). Add them "
                                            f"to levels=, or filter those rows; got formula={formula!r}.")


def _csv_types(source: Source, columns, categorical) -> dict:
    """CSV conversion types: categorical text as strings, the rest as read (numeric as float64)."""
    out = {}
    for c in columns:
        t = source.schema.field(c).type
        if c in categorical:
            out[c] = pa.string() if (_is_text(t) or pa.types.is_null(t)) else t
        elif _is_numeric(t):
            out[c] = pa.float64()
    return out


def _missing_mask(table: pa.Table, columns) -> pa.Array | None:
    """Rows with a null (or NaN) in any of ``columns``; None when there are none (no work done)."""
    mask = None
    for c in columns:
        col = table.column(c)
        if col.null_count == 0 and not pa.types.is_floating(col.type):
            continue
        m = pc.is_null(col, nan_is_null=True)
        m = m.combine_chunks() if isinstance(m, pa.ChunkedArray) else m
        mask = m if mask is None else pc.or_(mask, m)
    if mask is None or not pc.any(mask).as_py():
        return None
    return mask
