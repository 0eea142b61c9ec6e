"""In-memory exact fits against the peers, in one run, on the same data.

    python benchmarks/bench_exact.py            # n=1e6 d=10, n=1e6 d=100, n=4e6 d=50
    python benchmarks/bench_exact.py --quick    # n=2e5 d=10 and d=50 (a minute)

Each method runs in a fresh subprocess that loads the same float64 X (a .npy file) and
reports its best-of-``--repeat`` wall time and its extra peak memory over the loaded
data (VmHWM after the fit minus VmRSS before, with the peak reset in between), after one
warm-up fit on 1,000 rows so that imports and compilation are not counted. The floor
is one ``X.T @ X`` on the same array. The reference solution for "max rel diff" is numpy
``lstsq`` on the centred design (an independent float64 QR/SVD solve).
Prints a markdown table: method, seconds, ratio to sklearn, ratio to floor, extra MB, max
relative difference from the reference.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

METHODS = ["floor", "jaxlm-cholesky", "jaxlm-auto", "jaxlm-qr", "sklearn", "numpy-lstsq", "statsmodels"]


def _rss(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def child(method: str, xpath: str, ypath: str, repeat: int) -> dict:
    X = np.load(xpath)
    y = np.load(ypath)

    def run():
        nonlocal X, y
        if method == "floor":
            X.T @ X
            return None
        if method.startswith("jaxlm"):
            from jaxlm import LinearRegression
            m = LinearRegression(solver=method.split("-")[1]).fit(X, y)
            return np.r_[m.intercept_, m.coef_]
        if method == "sklearn":
            from sklearn.linear_model import LinearRegression
            m = LinearRegression().fit(X, y)
            return np.r_[m.intercept_, m.coef_]
        if method == "numpy-lstsq":
            A = np.column_stack([np.ones(len(y)), X])
            return np.linalg.lstsq(A, y, rcond=None)[0]
        if method == "statsmodels":
            import statsmodels.api as sm
            return sm.OLS(y, sm.add_constant(X, has_constant="add")).fit().params
        raise ValueError(method)

    # Imports and first-call costs are not the steady state: one warm-up fit on 1,000 rows
    # (every method alike) before measuring time and memory.
    full = (X, y)
    X, y = np.ascontiguousarray(full[0][:1000]), full[1][:1000]
    run()
    X, y = full
    times, extra, coef = [], 0, None
    for _ in range(repeat):
        base = _rss("VmRSS")
        _reset_peak()
        t0 = time.perf_counter()
        coef = run()
        times.append(time.perf_counter() - t0)
        extra = max(extra, _rss("VmHWM") - base)
    return {"seconds": min(times), "extra_bytes": extra, "coef": None if coef is None else list(map(float, coef))}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--child", nargs=3, metavar=("METHOD", "X", "Y"))
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.repeat)))
        return
    sizes = [(200_000, 10), (200_000, 50)] if args.quick else [(1_000_000, 10), (1_000_000, 100), (4_000_000, 50)]
    methods = args.methods.split(",")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, float64, best of {args.repeat}\n")
    for n, d in sizes:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n, d))
        y = X @ rng.normal(size=d) + 3.0 + rng.normal(size=n)
        Xc = X - X.mean(axis=0)
        beta = np.linalg.lstsq(Xc, y - y.mean(), rcond=None)[0]
        ref = np.r_[y.mean() - X.mean(axis=0) @ beta, beta]
        del Xc
        with tempfile.TemporaryDirectory() as tmp:
            xp, yp = os.path.join(tmp, "X.npy"), os.path.join(tmp, "y.npy")
            np.save(xp, X)
            np.save(yp, y)
            del X
            rows = {}
            for mth in methods:
                out = subprocess.run([sys.executable, __file__, "--repeat", str(args.repeat), "--child", mth, xp, yp],
                                     capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"{mth} failed: {out.stderr[-500:]}", file=sys.stderr)
                    continue
                rows[mth] = json.loads(out.stdout.strip().splitlines()[-1])
        xmb = n * d * 8 / 2**20
        print(f"### n={n:,} d={d} (X is {xmb:,.0f} MB)\n")
        print("| method | seconds | × sklearn (speed-up) | × floor | extra MB | extra / X | max rel diff |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        sk = rows.get("sklearn", {}).get("seconds")
        fl = rows.get("floor", {}).get("seconds")
        for mth, r in rows.items():
            diff = "" if r["coef"] is None else f"{np.max(np.abs(np.array(r['coef']) - ref) / np.abs(ref)):.1e}"
            speed = f"{sk / r['seconds']:.1f}" if sk else ""
            flr = f"{r['seconds'] / fl:.2f}" if fl else ""
            mb = r["extra_bytes"] / 2**20
            print(f"| {mth} | {r['seconds']:.3f} | {speed} | {flr} | {mb:,.0f} | {mb / xmb:.0%} | {diff} |")
        print()


if __name__ == "__main__":
    main()
