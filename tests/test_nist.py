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


def test_verify_command_prints_the_table_and_passes():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "jaxlm", "verify", "--json"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    import json
    rows = json.loads(out.stdout)
    assert [r["dataset"] for r in rows] == nist_names()
    assert all(r["passed"] for r in rows)
    table = subprocess.run([sys.executable, "-m", "jaxlm", "verify"], capture_output=True, text=True, timeout=300)
    assert table.returncode == 0 and "Wampler5" in table.stdout and "FAIL" not in table.stdout
