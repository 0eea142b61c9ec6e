"""In-memory exact fits against the peers, in one run, on the same data.

    python benchmarks/bench_exact.py            # n=1e6 d=10, n=1e6 d=100, n=4e6 d=50
    python benchmarks/bench_exact.py --quick    # n=2e5 d=10 and d=50 (a minute)
    python benchmarks/bench_exact.py --robust   # HC standard errors at n=1e6 d=50 (--quick: 2e5)

Each method runs in a fresh subprocess that loads the same float64 X (a .npy file) and
reports its best-of-``--repeat`` wall time and its extra peak memory over the loaded
data (VmHWM after the fit minus VmRSS before, with the peak reset in between), after one
warm-up fit on 1,000 rows so that imports and compilation are not counted. The floor
is one ``X.T @ X`` on the same array. The reference solution for "max rel diff" is numpy
``lstsq`` on the centred design (an independent float64 QR/SVD solve).
Prints a markdown table: method, seconds, ratio to sklearn, ratio to floor, extra MB, max
relative difference from the reference.

``--robust`` times the plain fit, the robust fit (``robust=True``: HC0–HC3), the floor and
statsmodels OLS with HC3 standard errors, and prints the bars of issue 11 with pass/fail:
robust ≤ 2× the plain fit and ≤ 4× the floor ("max rel diff" there: the HC3 standard errors
against statsmodels').
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
ROBUST_METHODS = ["floor", "jaxlm-plain", "jaxlm-robust", "statsmodels-hc3"]
#: issue 11's bars for the robust fit: (numerator, denominator, most allowed)
ROBUST_BARS = [("jaxlm-robust", "jaxlm-plain", 2.0), ("jaxlm-robust", "floor", 4.0)]


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
        if method == "jaxlm-plain":
            from jaxlm import LinearRegression
            m = LinearRegression().fit(X, y)
            return np.r_[m.intercept_, m.coef_]
        if method == "jaxlm-robust":
            from jaxlm import LinearRegression
            m = LinearRegression(robust=True).fit(X, y)
            return m.results_.coef_table(cov="HC3").std_errors
        if method == "statsmodels-hc3":
            import statsmodels.api as sm
            return sm.OLS(y, sm.add_constant(X, has_constant="add")).fit(cov_type="HC3").bse
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
    ap.add_argument("--robust", action="store_true")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.repeat)))
        return
    if args.robust:
        return robust_main(args)
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
        rows = run_methods(X, y, methods, args.repeat)
        del X
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


def run_methods(X, y, methods, repeat: int) -> dict:
    """Each method in its own subprocess on the same saved X, y: {method: child's result}."""
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        xp, yp = os.path.join(tmp, "X.npy"), os.path.join(tmp, "y.npy")
        np.save(xp, X)
        np.save(yp, y)
        for mth in methods:
            out = subprocess.run([sys.executable, __file__, "--repeat", str(repeat), "--child", mth, xp, yp],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{mth} failed: {out.stderr[-500:]}", file=sys.stderr)
                continue
            rows[mth] = json.loads(out.stdout.strip().splitlines()[-1])
    return rows


def robust_main(args):
    """The robust (HC0–HC3) fit against the plain fit, the floor and statsmodels HC3; the bars."""
    n, d = (200_000, 50) if args.quick else (1_000_000, 50)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 3.0 + rng.normal(size=n) * (1 + np.abs(X[:, 0]))  # heteroskedastic
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, float64, best of {args.repeat}, "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    rows = run_methods(X, y, ROBUST_METHODS, args.repeat)
    print(f"### robust (HC0–HC3) fit, n={n:,} d={d}\n")
    print("| method | seconds | × floor | × jaxlm-plain | extra MB | HC3 SE max rel diff vs statsmodels |")
    print("|---|---:|---:|---:|---:|---:|")
    sm_se = rows.get("statsmodels-hc3", {}).get("coef")
    fl = rows.get("floor", {}).get("seconds")
    pl = rows.get("jaxlm-plain", {}).get("seconds")
    for mth, r in rows.items():
        diff = ""
        if mth == "jaxlm-robust" and sm_se is not None:
            diff = f"{np.max(np.abs(np.array(r['coef']) - sm_se) / np.abs(sm_se)):.1e}"
        flr = f"{r['seconds'] / fl:.2f}" if fl else ""
        plr = f"{r['seconds'] / pl:.2f}" if pl else ""
        print(f"| {mth} | {r['seconds']:.3f} | {flr} | {plr} | {r['extra_bytes'] / 2**20:,.0f} | {diff} |")
    print()
    for num, den, most in ROBUST_BARS:
        if num in rows and den in rows:
            ratio = rows[num]["seconds"] / rows[den]["seconds"]
            print(f"bar: {num} / {den} = {ratio:.2f} (≤ {most:g}): {'PASS' if ratio <= most else 'FAIL'}")
    if "statsmodels-hc3" in rows and "jaxlm-robust" in rows:
        print(f"speed-up over statsmodels HC3: {rows['statsmodels-hc3']['seconds'] / rows['jaxlm-robust']['seconds']:.1f}×")


if __name__ == "__main__":
    main()
