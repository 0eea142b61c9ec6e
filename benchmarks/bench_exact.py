"""In-memory exact fits against the peers, in one run, on the same data.

    python benchmarks/bench_exact.py            # n=1e6 d=10, n=1e6 d=100, n=4e6 d=50
    python benchmarks/bench_exact.py --quick    # n=2e5 d=10 and d=50 (a minute)
    python benchmarks/bench_exact.py --robust   # HC standard errors at n=1e6 d=50 (--quick: 2e5)
    python benchmarks/bench_exact.py --offset 1e6   # n=1e6 d=50, columns at 1e6: "auto" refines (one more pass)

Each method runs in a fresh subprocess that loads the same float64 X (a .npy file) and
reports its best-of-``--repeat`` wall time and its extra peak memory over the loaded
data (VmHWM after the fit minus VmRSS before, with the peak reset in between), after one
warm-up fit on 1,000 rows so that imports and compilation are not counted (``jaxlm-partial``:
``partial_fit`` over 4 equal batches, the exact sums of each kept). The floor
is one ``X.T @ X`` on the same array. The reference solution for "max rel diff" is numpy
``lstsq`` on the centred design (an independent float64 QR/SVD solve).
Prints a markdown table: method, seconds, ratio to sklearn, ratio to floor, extra MB, max
relative difference from the reference.

``--robust`` times, in one subprocess and interleaved (round after round, best of ``--repeat``
rounds, default 5, so that a shared machine's load falls on every variant alike): the floor,
the plain fit, ``robust=True`` (all of HC0–HC3) and the per-kind fits ``cov_type="HC1"`` (one
meat, no leverages) and ``cov_type="HC3"`` (leverages and one meat); statsmodels OLS with HC1
and HC3 standard errors in a subprocess of its own. A breakdown, also interleaved: the
statistics' pass alone (``*-pass``: ``run(stats_reduction(plan))`` on the plain fit's solution,
as the fit runs it), so that a fit's time splits into the plain fit, its pass and the rest (after
the fit's Gram, OpenBLAS's idle threads spin ~0.1 s, competing with the pass's threads: an in-memory
fit of large data now holds BLAS single-threaded throughout, and each timed call starts after
``SETTLE`` seconds of idle, so that none pays for the spin of the one before).
It prints each as a ratio to the plain fit
and to the floor, the load average before and after, and the bars of issue 11 with pass/fail
for the per-kind fits: ≤ 2× the plain fit and ≤ 4× the floor ("max rel diff" there: the
fit's standard errors against statsmodels' of the same kind; robust=True: HC3).
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

METHODS = ["floor", "jaxlm-cholesky", "jaxlm-auto", "jaxlm-qr", "jaxlm-partial", "sklearn", "numpy-lstsq", "statsmodels"]
#: batches of the ``jaxlm-partial`` method: ``partial_fit`` over this many equal row ranges (exact sums kept)
PARTIAL_BATCHES = 4
#: --robust's variants timed together in one process, round after round; each returns its SEs (or None)
ROBUST_VARIANTS = ["floor", "jaxlm-plain", "jaxlm-robust", "jaxlm-hc1", "jaxlm-hc3",
                   "jaxlm-robust-pass", "jaxlm-hc1-pass", "jaxlm-hc3-pass"]
#: the breakdown's variants: the statistics' pass alone, of these HC kinds (robust=)
PASS_KINDS = {"jaxlm-robust-pass": True, "jaxlm-hc1-pass": "HC1", "jaxlm-hc3-pass": "HC3"}
#: the kind each variant's standard errors are compared with statsmodels' in
ROBUST_KIND = {"jaxlm-robust": "HC3", "jaxlm-hc1": "HC1", "jaxlm-hc3": "HC3"}
#: issue 11's bars for a robust fit: at most this many times (plain fit, floor); they apply to the
#: per-kind fits (robust=True, all four kinds, is shown against them for information)
ROBUST_BARS = {"jaxlm-plain": 2.0, "floor": 4.0}
BARRED = ("jaxlm-hc1", "jaxlm-hc3")


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


def _robust_variant(method: str, X, y):
    """One fit of a --robust variant; its standard errors of ROBUST_KIND (None for floor and plain)."""
    from jaxlm import LinearRegression
    if method == "floor":
        X.T @ X
        return None
    if method == "jaxlm-plain":
        LinearRegression().fit(X, y)
        return None
    if method in PASS_KINDS:
        _pass_alone(method, X, y)
        return None
    kw = {"jaxlm-robust": {"robust": True}, "jaxlm-hc1": {"cov_type": "HC1"}, "jaxlm-hc3": {"cov_type": "HC3"}}
    m = LinearRegression(**kw[method]).fit(X, y)
    return m.results_.coef_table(cov=ROBUST_KIND[method]).std_errors


_PASSES: dict = {}


def _pass_alone(method: str, X, y):
    """The statistics' pass of ``method``'s kinds over ``X, y``, as a fit runs it (the plan is
    built once per array: the plain fit's solution)."""
    from jaxlm import LinearRegression
    from jaxlm.inference import pass_plan, stats_reduction
    from jaxlm.reduce import memory
    key = (id(X), method)
    if key not in _PASSES:
        sol = LinearRegression().fit(X, y).solution_
        w = np.ones(len(y))
        plan = pass_plan(sol, fit_intercept=True, robust=PASS_KINDS[method])
        _PASSES[key] = (memory.arrays_runner(X, y.reshape(-1, 1), w), stats_reduction(plan))
    run, reduction = _PASSES[key]
    return run(reduction)


#: Seconds of idle before each timed call: OpenBLAS's threads spin ~0.1 s after a threaded call and
#: would slow whatever is timed next (the plain fit ran 0.100 s right after the floor's ``X.T @ X``,
#: 0.067 s after an idle moment); every variant starts from idle threads.
SETTLE = 0.25


def _measure(run) -> tuple:
    """(seconds, extra peak bytes over the resident set before, result) of one call, after
    :data:`SETTLE` seconds of idle."""
    time.sleep(SETTLE)
    base = _rss("VmRSS")
    _reset_peak()
    t0 = time.perf_counter()
    out = run()
    return time.perf_counter() - t0, _rss("VmHWM") - base, out


def robust_child(xpath: str, ypath: str, repeat: int) -> dict:
    """ROBUST_VARIANTS in this process: a warm-up of each on 1,000 rows, then ``repeat`` rounds of
    all of them in turn; per variant the best time, the largest extra peak memory, its SEs."""
    X, y = np.load(xpath), np.load(ypath)
    for mth in ROBUST_VARIANTS:
        _robust_variant(mth, np.ascontiguousarray(X[:1000]), y[:1000])
    for mth in PASS_KINDS:  # (their plans: built here, not timed)
        _pass_alone(mth, X, y)
    rows = {mth: {"seconds": np.inf, "extra_bytes": 0, "coef": None} for mth in ROBUST_VARIANTS}
    for _ in range(repeat):
        for mth in ROBUST_VARIANTS:
            sec, extra, se = _measure(lambda: _robust_variant(mth, X, y))
            r = rows[mth]
            r["seconds"], r["extra_bytes"] = min(r["seconds"], sec), max(r["extra_bytes"], extra)
            r["coef"] = None if se is None else list(map(float, se))
    return rows


def child(method: str, xpath: str, ypath: str, repeat: int) -> dict:
    if method == "robust-suite":
        return robust_child(xpath, ypath, repeat)
    X = np.load(xpath)
    y = np.load(ypath)

    def run():
        if method == "floor":
            X.T @ X
            return None
        if method == "statsmodels-hc":  # timed: the HC3 fit (HC1's SEs are added after timing)
            import statsmodels.api as sm
            return sm.OLS(y, sm.add_constant(X, has_constant="add")).fit(cov_type="HC3").bse
        if method == "jaxlm-partial":
            from jaxlm import LinearRegression
            m = LinearRegression()
            step = -(-len(y) // PARTIAL_BATCHES)
            for s in range(0, len(y), step):
                m.partial_fit(X[s:s + step], y[s:s + step])
            return np.r_[m.intercept_, m.coef_]
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
        sec, ex, coef = _measure(run)
        times.append(sec)
        extra = max(extra, ex)
    if coef is not None:
        coef = list(map(float, coef))
    if method == "statsmodels-hc":
        import statsmodels.api as sm
        hc1 = sm.OLS(y, sm.add_constant(X, has_constant="add")).fit(cov_type="HC1").bse
        coef = {"HC1": list(map(float, hc1)), "HC3": coef}
    return {"seconds": min(times), "extra_bytes": extra, "coef": coef}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=None, help="best of this many (default 2; --robust: 5 rounds)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--child", nargs=3, metavar=("METHOD", "X", "Y"))
    ap.add_argument("--robust", action="store_true")
    ap.add_argument("--offset", type=float, default=0.0,
                    help="add this to every column of X before y is formed (n=1e6 d=50 only; --quick 2e5): "
                         "columns far from the origin, whose intercept cancels, so that jaxlm refines")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.repeat)))
        return
    if args.repeat is None:
        args.repeat = 5 if args.robust else 2
    if args.robust:
        return robust_main(args)
    sizes = [(200_000, 10), (200_000, 50)] if args.quick else [(1_000_000, 10), (1_000_000, 100), (4_000_000, 50)]
    if args.offset:
        sizes = [(200_000, 50)] if args.quick else [(1_000_000, 50)]
    methods = args.methods.split(",")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, float64, best of {args.repeat}\n")
    for n, d in sizes:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n, d)) + args.offset
        y = X @ rng.normal(size=d) + 3.0 + rng.normal(size=n)
        Xc = X - X.mean(axis=0)
        beta = np.linalg.lstsq(Xc, y - y.mean(), rcond=None)[0]
        ref = np.r_[y.mean() - X.mean(axis=0) @ beta, beta]
        del Xc
        rows = run_methods(X, y, methods, args.repeat)
        del X
        xmb = n * d * 8 / 2**20
        print(f"### n={n:,} d={d} (X is {xmb:,.0f} MB)" + (f", every column offset by {args.offset:g}" if args.offset else "") + "\n")
        if args.offset:
            print("(the reference, lstsq on the float64-centred design, is itself inexact here: \"max rel diff\" "
                  "is the sum of both errors)\n")
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


def run_methods(X, y, methods, repeat: int, repeats: dict | None = None) -> dict:
    """Each method in its own subprocess on the same saved X, y: {method: child's result} (the
    robust suite's child gives several methods; ``repeats`` overrides ``repeat`` per method)."""
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        xp, yp = os.path.join(tmp, "X.npy"), os.path.join(tmp, "y.npy")
        np.save(xp, X)
        np.save(yp, y)
        for mth in methods:
            rep = str((repeats or {}).get(mth, repeat))
            out = subprocess.run([sys.executable, __file__, "--repeat", rep, "--child", mth, xp, yp],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{mth} failed: {out.stderr[-500:]}", file=sys.stderr)
                continue
            got = json.loads(out.stdout.strip().splitlines()[-1])
            rows.update(got if mth == "robust-suite" else {mth: got})
    return rows


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def robust_main(args):
    """Floor, plain, robust=True and the per-kind fits (one process, interleaved rounds), statsmodels
    HC1/HC3; ratios to the plain fit and the floor; issue 11's bars for the per-kind fits."""
    n, d = (200_000, 50) if args.quick else (1_000_000, 50)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 3.0 + rng.normal(size=n) * (1 + np.abs(X[:, 0]))  # heteroskedastic
    before = _load()
    rows = run_methods(X, y, ["robust-suite", "statsmodels-hc"], args.repeat, {"statsmodels-hc": 1})
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, float64, best of {args.repeat} interleaved "
          f"rounds (statsmodels HC3: 1), load average (1, 5, 15 min) before {before}, after {_load()}\n")
    print(f"### robust fits, n={n:,} d={d}\n")
    print("| method | seconds | × jaxlm-plain | × floor | extra MB | SE max rel diff vs statsmodels (kind) |")
    print("|---|---:|---:|---:|---:|---:|")
    sm_se = rows.get("statsmodels-hc", {}).get("coef")
    fl = rows.get("floor", {}).get("seconds")
    pl = rows.get("jaxlm-plain", {}).get("seconds")
    for mth, r in rows.items():
        diff = ""
        if mth in ROBUST_KIND and sm_se is not None:
            ref = np.array(sm_se[ROBUST_KIND[mth]])
            diff = f"{np.max(np.abs(np.array(r['coef']) - ref) / np.abs(ref)):.1e} ({ROBUST_KIND[mth]})"
        flr = f"{r['seconds'] / fl:.2f}" if fl else ""
        plr = f"{r['seconds'] / pl:.2f}" if pl else ""
        print(f"| {mth} | {r['seconds']:.3f} | {plr} | {flr} | {r['extra_bytes'] / 2**20:,.0f} | {diff} |")
    print()
    for num in BARRED + ("jaxlm-robust",):
        for den, most in ROBUST_BARS.items():
            if num in rows and den in rows:
                ratio = rows[num]["seconds"] / rows[den]["seconds"]
                verdict = ("PASS" if ratio <= most else "FAIL") if num in BARRED else "(all four kinds; no bar)"
                print(f"bar: {num} / {den} = {ratio:.2f} (≤ {most:g}): {verdict}")
    if "statsmodels-hc" in rows and "jaxlm-hc3" in rows:
        print(f"speed-up of cov_type='HC3' over statsmodels OLS(...).fit(cov_type='HC3'): "
              f"{rows['statsmodels-hc']['seconds'] / rows['jaxlm-hc3']['seconds']:.1f}×")


if __name__ == "__main__":
    main()
