"""The devices driver, on 2 forced CPU devices (a subprocess: the flag must precede JAX's start)."""
import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, numpy as np, jax
    from jaxlm.scale.devices import fit_sharded
    from jaxlm.core import exact
    from jaxlm.datasets import make_linear
    assert jax.device_count() == 2, jax.devices()
    X, Y, _, _ = make_linear(20_001, 7, 2, seed=3)   # odd n: one device gets a zero-weight pad row
    X = X + 1e6                                        # far from the origin: the shift must work
    w = np.random.default_rng(3).uniform(0.5, 2.0, 20_001)
    out = {}
    for refine in (False, True):
        two = fit_sharded(X, Y, w, refine_data=refine)
        one = fit_sharded(X, Y, w, refine_data=refine, devices=jax.devices()[:1])
        mem = exact.fit_exact(lambda: [(X, Y, w)], 7, 2, refine_data=refine)
        # the same two shares of rows as the two devices, merged on the host as the devices' states are
        halves = exact.fit_exact(lambda: [(X[:10_001], Y[:10_001], w[:10_001]), (X[10_001:], Y[10_001:], w[10_001:])],
                                 7, 2, refine_data=refine)
        rel = lambda a, b: float(np.max(np.abs(a - b) / np.abs(b)))
        out[str(refine)] = dict(coef=rel(two.coef, halves.coef), intercept=rel(two.intercept, halves.intercept),
                                one_vs_memory=rel(one.coef, mem.coef), vs_memory=rel(two.coef, mem.coef))
    print(json.dumps(out))
""")


def test_two_devices_equal_single_device_and_memory():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    # Two devices reduce the same two shares of rows as a two-block host loop and merge them the same way:
    # equal to rounding. One device equals one host block. (Unrefined, the merge of two states of data
    # far from the origin loses ~1e-12 to the rounding of the means at 1e6; the refinement removes it.)
    for refine, r in res.items():
        assert r["coef"] < 1e-13 and r["intercept"] < 1e-13, (refine, r)
        assert r["one_vs_memory"] < 1e-13, (refine, r)
        assert r["vs_memory"] < (1e-13 if refine == "True" else 1e-10), (refine, r)
