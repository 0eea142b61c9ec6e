"""NIST StRD certification: digits of the worst coefficient, residual SD and R²."""
import numpy as np
import pytest

from jaxlm.datasets import load_nist, nist_names
from jaxlm.nist import lre, verify_dataset


@pytest.mark.parametrize("name", nist_names())
@pytest.mark.parametrize("solver", ["auto", "qr", "svd"])
def test_certified_values(name, solver):
    row = verify_dataset(name, solver=solver)
    required = 7.0 if name == "Filip" else 10.0
    assert row.required == required
    assert row.coef_digits >= required, row
    assert row.sd_digits >= required, row
    assert row.residual_sd_digits >= required, row
    assert row.r_squared_digits >= required, row


def test_lre_definition():
    assert lre(1.0, 1.0) == 15.0
    assert lre(1.001, 1.0) == pytest.approx(3.0)
    assert lre(1e-12, 0.0) == pytest.approx(12.0)
    assert lre(float("nan"), 1.0) == 0.0


def test_peers_fail_where_we_pass():
    """The comparison is meaningful: numpy's lstsq on the same float64 design gets Wampler5 wrong."""
    ds = load_nist("Wampler5")
    A = np.column_stack([np.ones(len(ds.y)), ds.X])
    beta = np.linalg.lstsq(A, ds.y, rcond=None)[0]
    digits = min(lre(b, p["estimate"]) for b, p in zip(beta, ds.certified["parameters"]))
    assert digits < 9
    assert verify_dataset("Wampler5").coef_digits >= 10
