"""Formulas of plain column names are read without formulaic (io.grammar.plain_terms): the
features, target and intercept must be what formulaic makes of the same formula, and the spec
built on first use must equal formulaic's."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jaxlm.io import grammar
from jaxlm.io.formula import FormulaSpec

COLS = ["y", "x1", "x2", "b_3", "Z"]


def _formulaic_terms(formula):
    spec = FormulaSpec.from_levels(formula, {}, plain=False)  # formulaic's own reading
    return spec.targets[0], spec.features, spec.fit_intercept


def _formulas():
    rng = np.random.default_rng(5)
    out = ["y ~ x1", "y~x1+x2", " y ~ x2 + x1 ", "y ~ x1 - 1", "y ~ 0 + x1 + x2", "y ~ x1 + 0", "y ~ 1 + x1",
           "y ~ x1 + x2 - 1 + 1", "y ~ x1 + 1 - 1", "y ~ Z + b_3 + x1"]
    for _ in range(20):  # random orders, with and without an intercept term
        names = list(rng.permutation(COLS[1:])[: rng.integers(1, 5)])
        extra = [[], ["- 1"], ["+ 0"], ["+ 1"]][rng.integers(0, 4)]
        out.append("y ~ " + " + ".join(names) + (" " + extra[0] if extra else ""))
    return out


@pytest.mark.parametrize("formula", _formulas())
def test_plain_terms_equal_formulaics(formula):
    got = grammar.plain_terms(formula)
    assert got is not None
    assert got == _formulaic_terms(formula)
    fast = FormulaSpec.from_levels(formula, {})
    slow = FormulaSpec.from_levels(formula, {}, plain=False)
    assert (fast.features, fast.targets, fast.fit_intercept, fast.inputs, fast.outputs) == \
        (slow.features, slow.targets, slow.fit_intercept, slow.inputs, slow.outputs)
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(6, len(COLS))), columns=COLS)
    assert list(fast.specs.rhs.get_model_matrix(df).columns) == list(slow.specs.rhs.get_model_matrix(df).columns)


@pytest.mark.parametrize("formula", ["y ~ x1 + x1", "y ~ x1 - x2", "y ~ x1:x2", "y ~ x1 * x2", "y ~ np.log(x1)",
                                     "y ~ C(x1)", "y ~ x1 - 0", "y ~ 1", "y ~ 0", "y + x1 ~ x2", "y ~ y + x1",
                                     "y ~ `x 1`", "y ~ x1 | g", "y ~ None + x1", "y ~ -1 + x2"])
def test_other_formulas_go_to_formulaic(formula):
    assert grammar.plain_terms(formula) is None
