"""A reduction added in a test runs on every driver unchanged: a column maximum.

This is the proof of the reduction protocol (jaxlm.core.reduction): the drivers in
jaxlm.reduce know no reduction by name, so a new one -- here the per-column maximum of X over
rows of positive weight -- runs in memory, streamed, on Dask and across devices with no change
to any of them. The reference is numpy's own max over the same rows.
"""
import functools
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlm.core.reduction import Reduction, fold, tree_merge
from jaxlm.reduce import devices, memory, stream


def _init(d):
    return np.full(d, -np.inf)


def _update(acc, X, Y, w):
    X = np.asarray(X)
    keep = np.asarray(w) > 0
    return np.maximum(acc, X[keep].max(axis=0, initial=-np.inf))


def _block(X, Y, w):  # jit-able, for devices
    return jnp.max(jnp.where(w[:, None] > 0, X, -jnp.inf), axis=0)


def column_max(d):
    return Reduction(init=functools.partial(_init, d), update=_update, merge=np.maximum, block=_block)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(10_007, 5)) * [1, 10, 100, 1e-3, 1e6]
    Y = rng.normal(size=(10_007, 2))
    w = rng.uniform(0.5, 2.0, 10_007)
    w[rng.choice(10_007, 50, replace=False)] = 0.0   # zero-weight rows are ignored
    X[w == 0] += 1e9                                 # ... so these must not win
    return X, Y, w


def _expected(X, w):
    return X[w > 0].max(axis=0)


def test_memory_driver(data):
    X, Y, w = data
    run = memory.arrays_runner(X, Y, w, rows=999)
    np.testing.assert_array_equal(run(column_max(5)), _expected(X, w))


def test_stream_driver_with_reader_thread(data):
    X, Y, w = data

    def passes(k):
        for i in range(0, len(X), 1000):
            yield (X[i:i + 1000], Y[i:i + 1000], w[i:i + 1000]), len(X[i:i + 1000])

    run = stream.runner(passes, depth=2)
    np.testing.assert_array_equal(run(column_max(5)), _expected(X, w))
    np.testing.assert_array_equal(run(column_max(5)), _expected(X, w))
    assert run.passes == 2


def test_dask_driver(data):
    da = pytest.importorskip("dask.array")
    from jaxlm.reduce import dask as rdask

    X, Y, w = data
    Xd = da.from_array(X, chunks=(1234, 5))
    Yd = da.from_array(Y, chunks=(1234, 2))
    wd = da.from_array(w, chunks=1234)
    run = rdask.runner(Xd, Yd, wd)
    np.testing.assert_array_equal(run(column_max(5)), _expected(X, w))


def test_devices_driver_one_device_jit_block_and_host_update(data):
    X, Y, w = data
    run = devices.runner(X, Y, w)
    np.testing.assert_array_equal(run(column_max(5)), _expected(X, w))
    host_only = column_max(5)._replace(block=None)
    np.testing.assert_array_equal(run(host_only), _expected(X, w))


def test_tree_merge_and_fold_identity(data):
    X, Y, w = data
    r = column_max(5)
    accs = [fold(r, [(X[i:i + 777], Y[i:i + 777], w[i:i + 777])]) for i in range(0, len(X), 777)]
    np.testing.assert_array_equal(tree_merge(r, accs), _expected(X, w))
    np.testing.assert_array_equal(tree_merge(r, []), r.init())


SCRIPT = textwrap.dedent("""
    import functools, json, sys
    import numpy as np, jax
    sys.path.insert(0, {here!r})
    from test_reduce import column_max
    from jaxlm.reduce import devices
    assert jax.device_count() == 3, jax.devices()
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1001, 4)); Y = rng.normal(size=(1001, 1)); w = np.ones(1001)
    X[-1] = 50.0   # the last row: on the third device, next to its zero-weight padding
    got = devices.runner(X, Y, w)(column_max(4))
    print(json.dumps(bool(np.array_equal(got, X.max(axis=0)))))
""")


def test_devices_driver_three_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=3", JAX_PLATFORMS="cpu")
    script = SCRIPT.format(here=os.path.dirname(__file__))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "true"


def _count_init():
    return {}


def _count_update(acc, X, Y, w, codes):
    out = dict(acc)
    keys, counts = np.unique(np.asarray(codes)[np.asarray(w) > 0], return_counts=True)
    for k, c in zip(keys.tolist(), counts.tolist()):
        out[k] = out.get(k, 0) + c
    return out


def _count_merge(a, b):
    out = dict(a)
    for k, c in b.items():
        out[k] = out.get(k, 0) + c
    return out


def test_extra_row_arrays_pass_through_every_driver(data):
    """A per-key reduction (rows per group code, the shape of a cluster-score sum) gets the
    extra per-row array from each driver, aligned with its rows."""
    X, Y, w = data
    codes = np.random.default_rng(3).integers(0, 13, len(X))
    r = Reduction(init=_count_init, update=_count_update, merge=_count_merge)
    keys, counts = np.unique(codes[w > 0], return_counts=True)
    expected = dict(zip(keys.tolist(), counts.tolist()))
    assert memory.arrays_runner(X, Y, w, codes, rows=500)(r) == expected
    assert devices.runner(X, Y, w, codes)(r) == expected

    def passes(k):
        for i in range(0, len(X), 1000):
            yield (X[i:i + 1000], Y[i:i + 1000], w[i:i + 1000], codes[i:i + 1000]), len(X[i:i + 1000])

    assert stream.runner(passes)(r) == expected
    da = pytest.importorskip("dask.array")
    from jaxlm.reduce import dask as rdask

    chunks = 2000
    run = rdask.runner(da.from_array(X, chunks=(chunks, 5)), da.from_array(Y, chunks=(chunks, 2)),
                       da.from_array(w, chunks=chunks), da.from_array(codes, chunks=chunks))
    assert run(r) == expected
