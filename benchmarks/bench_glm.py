"""GLM fits (IRLS on the mergeable least-squares state) against the peers, in one run.

    python benchmarks/bench_glm.py            # n=1e6, d=50: logistic and Poisson regression
    python benchmarks/bench_glm.py --quick    # n=2e5, d=20
    python benchmarks/bench_glm.py --stream-memory   # peak memory of a streamed fit of a 1.7 GiB file

For each model, on the same float64 data (X standard normal, η with standard deviation ~0.8):

- ``floor``: one ``X.T @ X`` (BLAS syrk), the least any pass over X can cost;
- ``gram pass``: one pass of jaxlm's least-squares state over (X, y) (what an exact linear fit costs);
- ``jaxlm``: :func:`jaxlm.core.irls.fit_irls` with the in-memory runner (check pass, start pass,
  IRLS iterations), its iterations, the seconds per pass, and one IRLS pass timed alone (as a fit
  runs it: BLAS single-threaded, the chunks shared between threads, one per core);
- ``jaxlm+sub``: the first iterations on a 5% row prefix (tol 1e-6), then full passes from there;
- ``estimator``: what users call, ``jaxlm.models.glm.LogisticRegression()`` / ``PoissonRegressor()``
  ``.fit(X, y)`` (the rows checked on the host, a fit on every 20th row, quasi-Newton steps from
  score passes with its curvature, a Newton pass (float32 Gram), a chord step, the last full
  pass; llf and the null deviance come with the first pass; ``results_`` complete; "passes"
  counts score passes too). The bars are measured on it;
- ``statsmodels``: ``GLM(y, add_constant(X), family).fit()`` (IRLS, its default tol 1e-8);
- ``sklearn``: ``LogisticRegression(penalty=None, tol=1e-10)`` / ``PoissonRegressor(alpha=0,
  tol=1e-10)`` (lbfgs, the default solver; max_iter raised so that tol decides), and for
  information the ``newton-cholesky`` solver with the same tol;
- ``glum`` (when it is installed; no bar): ``GeneralizedLinearRegressor(family, alpha=0,
  gradient_tol=1e-10)`` with its default solver (IRLS with coordinate descent).

"max coef err" is max|β − β*| / max|β*| over intercept and slopes, β* a fully converged fit
(jaxlm IRLS continued with tol=1e-14 from its solution: it stops at the rounding floor).
jaxlm and the floor/gram timings are the best of ``--repeat`` runs; the peers run once.
``--clock cpu`` reports CPU seconds instead of wall seconds (for a shared machine).
Bars (printed PASS/FAIL): jaxlm ≥ 5× faster than statsmodels, ≥ 2× faster than scikit-learn
(lbfgs), one IRLS iteration ≤ 1.5× one gram pass.

``--stream-memory`` instead writes a Parquet file of ``--stream-rows`` × ``--stream-cols``
standard normal float64 columns ``x0, x1, ...`` and a 0/1 response ``y`` (float64) in row groups
of ``--row-group`` rows (default 4.5e6 × 50 in 65,536-row groups: 1.7 GiB, 69 row groups) into
a temporary directory (deleted afterwards; refused when the disk has less than twice the file
free), fits ``jaxlm.fit_table(path, formula="y ~ x0 + ... ", family="binomial")`` in a child
process and reports the child's peak resident memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss``,
and its peak right after importing jaxlm) against the bar: < 1 GB (10⁹ bytes).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np


#: The clock: wall time (default) or this process's CPU time (``--clock cpu``: all threads'
#: work, robust when other processes share the cores; run it with OPENBLAS_NUM_THREADS=1 so
#: that idle BLAS threads spinning are not counted).
CLOCK = time.perf_counter


def _best(fn, repeat: int):
    out, best = None, float("inf")
    for _ in range(repeat):
        t0 = CLOCK()
        out = fn()
        best = min(best, CLOCK() - t0)
    return best, out


def _err(params, ref) -> float:
    return float(np.max(np.abs(np.asarray(params) - ref)) / np.max(np.abs(ref)))


def make_data(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta = rng.standard_normal(d) * 0.8 / np.sqrt(d)
    eta = X @ beta + 0.2
    y_logit = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.float64)
    y_pois = rng.poisson(np.exp(0.5 * eta)).astype(np.float64)
    return X, {"logistic": y_logit, "poisson": y_pois}


def bench_model(model: str, X, y, repeat: int, peers: bool, sub_fraction: float) -> dict:
    from jaxlm.core import state as st
    from jaxlm.core.glm_passes import Point, pass_reduction, single_threaded_blas
    from jaxlm.core.irls import fit_irls
    from jaxlm.core.reduction import Reduction
    from jaxlm.reduce import memory

    n, d = X.shape
    family = "binomial" if model == "logistic" else "poisson"
    w = np.ones(n)
    run = memory.arrays_runner(X, y[:, None], w)
    rows = {}
    t_floor, _ = _best(lambda: X.T @ X, repeat)
    gram = Reduction(functools.partial(st.init, d, 1), st.update, st.merge)
    t_gram, _ = _best(lambda: run(gram), repeat)
    t_fit, sol = _best(lambda: fit_irls(run, d, family=family), repeat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_sol = fit_irls(run, d, family=family, tol=1e-14, start=(sol.coef, sol.intercept))
    ref = np.r_[ref_sol.intercept, ref_sol.coef]
    with single_threaded_blas():  # as a fit runs its passes (fit_irls holds BLAS single-threaded)
        t_pass, _ = _best(lambda: run(pass_reduction(sol.family, sol.link, Point(sol.coef, sol.intercept), d)), repeat)
    rows["floor X.T@X"] = dict(seconds=t_floor)
    rows["gram pass"] = dict(seconds=t_gram)
    rows["jaxlm"] = dict(seconds=t_fit, iters=sol.n_iter, passes=sol.passes,
                         err=_err(np.r_[sol.intercept, sol.coef], ref))
    m = max(int(n * sub_fraction), 10 * d)

    def sub_then_full():
        sub = fit_irls(memory.arrays_runner(X[:m], y[:m, None], w[:m]), d, family=family, tol=1e-6)
        return sub, fit_irls(run, d, family=family, start=(sub.coef, sub.intercept))

    t_sub, (sub, full) = _best(sub_then_full, repeat)
    rows["jaxlm+sub"] = dict(seconds=t_sub, iters=f"{sub.n_iter}+{full.n_iter}", passes=f"{sub.passes}+{full.passes}",
                             err=_err(np.r_[full.intercept, full.coef], ref))
    from jaxlm.models.glm import LogisticRegression as JLogit, PoissonRegressor as JPoisson

    est_cls = JLogit if model == "logistic" else JPoisson
    t_est, est = _best(lambda: est_cls().fit(X, y), repeat)
    stats_pass = not np.isfinite(est.solution_.saturated)  # else llf etc. came with the fit's first pass
    rows["estimator"] = dict(seconds=t_est, iters=est.n_iter_, passes=est.solution_.passes + int(stats_pass),
                             err=_err(np.r_[est.intercept_, est.coef_], ref))
    if peers:
        import statsmodels.api as sm
        from sklearn.linear_model import LogisticRegression, PoissonRegressor

        fam = sm.families.Binomial() if model == "logistic" else sm.families.Poisson()
        t0 = CLOCK()
        r = sm.GLM(y, sm.add_constant(X, prepend=True), family=fam).fit()
        rows["statsmodels"] = dict(seconds=CLOCK() - t0, iters=r.fit_history["iteration"],
                                   err=_err(r.params, ref))
        for solver in ("lbfgs", "newton-cholesky"):
            if model == "logistic":
                est = LogisticRegression(penalty=None, tol=1e-10, solver=solver, max_iter=100_000)
            else:
                est = PoissonRegressor(alpha=0.0, tol=1e-10, solver=solver, max_iter=100_000)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = CLOCK()
                est.fit(X, y)
                t = CLOCK() - t0
            it = est.n_iter_[0] if np.ndim(est.n_iter_) else est.n_iter_
            rows["sklearn" if solver == "lbfgs" else "sklearn newton-chol"] = dict(
                seconds=t, iters=int(it), err=_err(np.r_[np.ravel(est.intercept_)[0], np.ravel(est.coef_)], ref))
        glum = _glum(model, X, y, ref)
        if glum is not None:
            rows["glum"] = glum
    return dict(rows=rows, t_fit=t_fit, t_est=t_est, t_pass=t_pass, t_gram=t_gram, t_floor=t_floor,
                passes=sol.passes)


def _glum(model: str, X, y, ref) -> dict | None:
    """glum's fit (unpenalised, its default solver) of the same data, or None without glum."""
    try:
        import glum
    except ImportError:
        return None
    est = glum.GeneralizedLinearRegressor(family="binomial" if model == "logistic" else "poisson", alpha=0,
                                          gradient_tol=1e-10, max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = CLOCK()
        est.fit(X, y)
        t = CLOCK() - t0
    return dict(seconds=t, iters=int(est.n_iter_), err=_err(np.r_[est.intercept_, est.coef_], ref),
                name=f"glum {glum.__version__}")


def report(model: str, n: int, d: int, res: dict) -> list[str]:
    rows, t_fit, t_est = res["rows"], res["t_fit"], res["t_est"]
    lines = [f"\n### {model} regression, n={n:,}, d={d}\n",
             "| method | seconds | × estimator | iterations | passes | max coef err |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        err = f"{r['err']:.1e}" if "err" in r else ""
        lines.append(f"| {r.get('name', name)} | {r['seconds']:.3f} | {r['seconds'] / t_est:.2f} | {r.get('iters', '')} | "
                     f"{r.get('passes', '')} | {err} |")
    per_pass = t_fit / res["passes"]
    lines.append("")
    lines.append(f"one IRLS pass alone: {res['t_pass']:.3f} s = {res['t_pass'] / res['t_gram']:.2f}× one gram pass "
                 f"({res['t_gram']:.3f} s) = {res['t_pass'] / res['t_floor']:.2f}× X.T@X; fit time per pass "
                 f"{per_pass:.3f} s = {per_pass / res['t_gram']:.2f}× a gram pass")
    bars = [("IRLS iteration ≤ 1.5× gram pass", res["t_pass"] <= 1.5 * res["t_gram"])]
    if "statsmodels" in rows:
        bars.append(("estimator ≥ 5× faster than statsmodels", rows["statsmodels"]["seconds"] >= 5 * t_est))
        bars.append(("estimator ≥ 2× faster than scikit-learn (lbfgs)", rows["sklearn"]["seconds"] >= 2 * t_est))
        bars.append(("estimator more accurate than scikit-learn (lbfgs)",
                     rows["estimator"]["err"] < rows["sklearn"]["err"]))
    for text, ok in bars:
        lines.append(f"- {'PASS' if ok else 'FAIL'}: {text}")
    return lines


#: The child process of ``--stream-memory``: import, note the peak memory, fit, report.
_STREAM_CHILD = """
import json, resource, sys, time
path, d = sys.argv[1], int(sys.argv[2])
import jaxlm
imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
m = jaxlm.fit_table(path, formula="y ~ " + " + ".join(f"x{j}" for j in range(d)), family="binomial",
                    progress=False)
print(json.dumps(dict(imported_kib=imported, seconds=time.perf_counter() - t0, n_iter=int(m.n_iter_),
                      converged=bool(m.converged_), coef=[float(c) for c in m.coef_[:3]])))
"""


def write_parquet(path: str, rows: int, d: int, row_group: int, seed: int) -> None:
    """A Parquet file of ``rows`` × ``d`` standard normal columns and a 0/1 response ``y`` (a
    logistic model), written one row group at a time (never all in memory), plain-encoded and
    uncompressed (random doubles do not compress): 8 (d + 1) bytes a row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    beta = rng.standard_normal(d) * 0.8 / np.sqrt(d)
    schema = pa.schema([(f"x{j}", pa.float64()) for j in range(d)] + [("y", pa.float64())])
    with pq.ParquetWriter(path, schema, compression="none", use_dictionary=False) as writer:
        for start in range(0, rows, row_group):
            m = min(row_group, rows - start)
            Xt = rng.standard_normal((d, m))  # one contiguous row per column
            y = (rng.random(m) < 1.0 / (1.0 + np.exp(-(beta @ Xt + 0.2)))).astype(np.float64)
            writer.write_table(pa.Table.from_arrays([*Xt, y], schema=schema), row_group_size=m)


def stream_memory(rows: int, d: int, row_group: int, seed: int) -> list[str]:
    """Peak memory of a streamed logistic fit of a large Parquet file (see the module docstring)."""
    need = rows * (d + 1) * 8
    tmp_root = tempfile.gettempdir()
    free = shutil.disk_usage(tmp_root).free
    if free < 2 * need:
        return [f"stream memory: SKIPPED, {free / 2**30:.1f} GiB free in {tmp_root}, need {2 * need / 2**30:.1f} GiB"]
    with tempfile.TemporaryDirectory(prefix="jaxlm-bench-glm-", dir=tmp_root) as tmp:
        path = os.path.join(tmp, "glm.parquet")
        t0 = time.perf_counter()
        write_parquet(path, rows, d, row_group, seed)
        size = os.path.getsize(path)
        print(f"wrote {path}: {size / 2**30:.2f} GiB, {rows:,} rows x {d} columns + y, "
              f"{-(-rows // row_group)} row groups, in {time.perf_counter() - t0:.1f} s", flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        proc = subprocess.run([sys.executable, "-c", _STREAM_CHILD, path, str(d)], capture_output=True, text=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    if proc.returncode != 0:
        return [f"stream memory: the child failed ({proc.returncode}):\n{proc.stderr[-3000:]}"]
    if before * 1024 >= peak:
        return ["stream memory: an earlier child had a larger peak; run --stream-memory alone"]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    ok = peak < 1e9
    return [f"\n### streamed logistic fit of a {size / 2**30:.2f} GiB Parquet file ({rows:,} x {d}, "
            f"{-(-rows // row_group)} row groups)\n",
            f"peak resident memory of the fitting process: {peak / 2**20:.0f} MiB ({peak / 1e9:.2f} GB; "
            f"{out['imported_kib'] / 1024:.0f} MiB after importing jaxlm); fit {out['seconds']:.1f} s, "
            f"{out['n_iter']} IRLS iterations, converged={out['converged']}",
            f"- {'PASS' if ok else 'FAIL'}: streamed GLM fit peak memory < 1 GB"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n=2e5, d=20")
    ap.add_argument("--n", type=int)
    ap.add_argument("--d", type=int)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-peers", action="store_true", help="skip statsmodels and scikit-learn")
    ap.add_argument("--sub", type=float, default=0.05, help="row fraction of the subsample start")
    ap.add_argument("--models", default="logistic,poisson")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall time, or CPU time of this process (see CLOCK)")
    ap.add_argument("--stream-memory", action="store_true",
                    help="only: peak memory of a streamed logistic fit of a large Parquet file")
    ap.add_argument("--stream-rows", type=int, default=4_500_000)
    ap.add_argument("--stream-cols", type=int, default=50)
    ap.add_argument("--row-group", type=int, default=65_536)
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"load average: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.stream_memory:
        lines = stream_memory(args.stream_rows, args.stream_cols, args.row_group, args.seed)
        print("\n".join(lines), flush=True)
        return lines
    print(f"clock: {args.clock}" + (f", OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
                                    if args.clock == "cpu" else ""))
    n = args.n or (200_000 if args.quick else 1_000_000)
    d = args.d or (20 if args.quick else 50)
    X, ys = make_data(n, d, args.seed)
    out = []
    for model in args.models.split(","):
        res = bench_model(model, X, ys[model], args.repeat, not args.no_peers, args.sub)
        lines = report(model, n, d, res)
        print("\n".join(lines), flush=True)
        out += lines
    return out


if __name__ == "__main__":
    main()
