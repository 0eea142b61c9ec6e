"""jaxlm on Dask against dask-ml, on the same LocalCluster and the same data, in one run.

    python benchmarks/bench_dask.py                 # n=4e6 d=50, 16 partitions, 2 workers
    python benchmarks/bench_dask.py --n 1000000 --d 10

The data are generated on the workers (``dask.array.random``) and persisted before timing.
The reference solution is jaxlm's in-memory fit of the same array gathered to the client
(numpy ``lstsq`` would need a second copy of X). dask-ml's ``LinearRegression`` is an
L2-penalised ADMM by default (dask-ml#240); it is run as users run it, with defaults.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4_000_000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-dask-ml", action="store_true")
    args = ap.parse_args(argv)

    import dask.array as da
    from distributed import Client, LocalCluster

    from jaxlm import LinearRegression

    rows = []
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40, memory_limit=0) as cluster, Client(cluster) as client:
        chunk = -(-args.n // args.partitions)
        rs = da.random.RandomState(0)
        X = rs.normal(size=(args.n, args.d), chunks=(chunk, args.d))
        beta = np.random.default_rng(0).normal(size=args.d)
        y = X @ beta + 3.0 + rs.normal(size=args.n, chunks=chunk)
        X, y = client.persist([X, y])
        from distributed import wait
        wait([X, y])

        for label in ("first fit: workers import jaxlm/JAX", "second fit"):
            t = time.perf_counter()
            ours = LinearRegression().fit(X, y)
            rows.append((f"jaxlm (dask, exact), {label}", time.perf_counter() - t,
                         np.r_[ours.intercept_, ours.coef_]))

        if not args.skip_dask_ml:
            from dask_ml.linear_model import LinearRegression as DaskMLLR
            t = time.perf_counter()
            theirs = DaskMLLR().fit(X, y)
            rows.append(("dask-ml LinearRegression (defaults)", time.perf_counter() - t,
                         np.r_[theirs.intercept_, theirs.coef_]))

        Xl, yl = X.compute(), y.compute()
    t = time.perf_counter()
    ref = LinearRegression().fit(Xl, yl)
    t_mem = time.perf_counter() - t
    ref = np.r_[ref.intercept_, ref.coef_]
    rows.append(("jaxlm in memory (reference)", t_mem, ref))

    print(f"### Dask: n={args.n:,} d={args.d}, {args.partitions} partitions, LocalCluster "
          f"{args.workers} workers × 1 thread\n")
    print("| method | seconds | speed-up vs dask-ml | max rel diff from in-memory |")
    print("|---|---:|---:|---:|")
    dml = dict((r[0], r[1]) for r in rows).get("dask-ml LinearRegression (defaults)")
    for name, sec, coef in rows:
        diff = np.max(np.abs(coef - ref) / np.abs(ref))
        print(f"| {name} | {sec:.2f} | {'' if dml is None else f'{dml / sec:.1f}'} | {diff:.1e} |")
    print()


if __name__ == "__main__":
    main()
