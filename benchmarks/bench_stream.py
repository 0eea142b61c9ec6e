"""Streaming a Parquet file into an exact fit, against the bare pyarrow read and pandas + sklearn.

    python benchmarks/bench_stream.py            # 1e6 x 50 float64 (+ y), row groups of 250,000; ~2 min
    python benchmarks/bench_stream.py --quick    # 2.5e5 x 50, row groups of 62,500
    python benchmarks/bench_stream.py --full     # the issue's 4e6 x 50 (1.7 GiB), row groups of 250,000

One run writes the file (``--dir``, default a temporary directory; reused if present) and a
copy with every row group written four times (4x the size), then times, each in a fresh
subprocess, best of ``--repeat``:

- ``bare read``: ``ParquetFile.read_row_group`` over every row group, all columns decoded (the
  floor; the faster of pyarrow's default and ``pre_buffer=False``);
- ``naive pyarrow + numpy Gram``: the same read, one column-major copy and ``X.T @ X`` per
  row group, in series;
- ``jaxlm stream_fit``: :func:`jaxlm.models.tables.stream_fit` (a reader thread decodes the next row group
  while the main thread sums the current one into the mergeable state; same code path as
  ``jaxlm fit``), in process after imports;
- ``jaxlm fit`` (CLI process): the whole ``jaxlm fit DATA --target y --quiet`` process, imports
  and summary included;
- ``pandas + sklearn``: ``pandas.read_parquet`` then ``sklearn.linear_model.LinearRegression``.

Peak memory is the process's VmHWM (/proc/self/status) at the end of the child: everything
the process ever held, imports included; "extra" subtracts the peak after the imports. The
streamed fit is also measured on the 4x file: its peak must not grow with the file.
Prints a markdown table, then the bars of the issue with pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def _hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------- children


def child(method: str, path: str, repeat: int) -> dict:
    import numpy as np
    import pyarrow.parquet as pq

    if method in ("jaxlm",):
        import jaxlm.models.linear  # noqa: F401 - imports outside the timing, as a library user has them
        import jaxlm.models.tables  # noqa: F401
    if method == "pandas+sklearn":
        import pandas as pd
        from sklearn.linear_model import LinearRegression
    base = _hwm_mb()
    times, coef = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        if method.startswith("bare"):
            pf = pq.ParquetFile(path, pre_buffer=method == "bare-default")
            rows = 0
            for i in range(pf.num_row_groups):
                rows += pf.read_row_group(i).num_rows
        elif method == "naive":
            pf = pq.ParquetFile(path, pre_buffer=False)
            names = pf.schema_arrow.names
            feats = [c for c in names if c != "y"]
            G = 0.0
            for i in range(pf.num_row_groups):
                t = pf.read_row_group(i)
                Z = np.empty((t.num_rows, len(names)), order="F")
                for j, c in enumerate(feats + ["y"]):
                    Z[:, j] = t.column(c).to_numpy()
                del t
                G = G + Z.T @ Z
        elif method == "jaxlm":
            fit = jaxlm.models.tables.stream_fit(path, target="y", progress=False)
            coef = np.r_[fit.model.intercept_, fit.model.coef_]
            passes = fit.passes
        elif method == "pandas+sklearn":
            df = pd.read_parquet(path)
            X, y = df.drop(columns="y").to_numpy(), df["y"].to_numpy()
            del df
            m = LinearRegression().fit(X, y)
            coef = np.r_[m.intercept_, m.coef_]
            del X, y, m
        else:
            raise SystemExit(f"unknown method {method}")
        times.append(time.perf_counter() - t0)
    out = {"method": method, "seconds": min(times), "all": times, "peak_mb": _hwm_mb(), "base_mb": base}
    if coef is not None:
        out["coef"] = coef.tolist()
    if method == "jaxlm":
        out["passes"] = passes
    return out


# --------------------------------------------------------------------------- parent


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    return env


def run_child(method: str, path: Path, repeat: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method, str(path), "--repeat", str(repeat)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    if r.returncode != 0:
        raise SystemExit(f"{method} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_cli(path: Path) -> dict:
    code = ("import sys, time, resource\n"
            "from jaxlm.cli import main\n"
            "code = main(sys.argv[1:])\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
            "print('HWM', int(hwm) / 1024, file=sys.stderr)\n"
            "sys.exit(code)\n")
    cmd = [sys.executable, "-c", code, "fit", str(path), "--target", "y", "--quiet", "--json"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"jaxlm fit failed:\n{r.stderr[-3000:]}")
    peak = float([line for line in r.stderr.splitlines() if line.startswith("HWM")][-1].split()[1])
    doc = json.loads(r.stdout)
    return {"method": "jaxlm-cli", "seconds": wall, "peak_mb": peak, "fit_seconds": doc["seconds"]}


def make_file(path: Path, n: int, d: int, row_group: int, seed: int = 0) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    beta = rng.normal(size=d)
    schema = pa.schema([(f"x{j}", pa.float64()) for j in range(d)] + [("y", pa.float64())])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as w:
        for s in range(0, n, row_group):
            k = min(row_group, n - s)
            X = rng.normal(size=(k, d)) * rng.uniform(0.5, 3.0, d) + rng.normal(size=d)
            y = X @ beta + 1.0 + rng.normal(size=k)
            cols = {f"x{j}": X[:, j] for j in range(d)}
            cols["y"] = y
            w.write_table(pa.table(cols, schema=schema), row_group_size=row_group)
    os.replace(tmp, path)


def make_4x(src: Path, dst: Path) -> None:
    """Every row group of ``src`` written four times: a file 4x the size, one row group at a time."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(src)
    tmp = dst.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, pf.schema_arrow) as w:
        for _ in range(4):
            for i in range(pf.num_row_groups):
                t = pf.read_row_group(i)
                w.write_table(t, row_group_size=t.num_rows)
    os.replace(tmp, dst)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=float, default=None, help="rows of the 1x file (default 1e6; --quick 2.5e5)")
    ap.add_argument("--cols", type=int, default=50, help="feature columns (default 50)")
    ap.add_argument("--row-group", type=int, default=None, help="rows per row group (default rows/4, at most 250,000)")
    ap.add_argument("--full", action="store_true", help="the issue's size: 4e6 x 50, row groups of 250,000")
    ap.add_argument("--quick", action="store_true", help="2.5e5 x 50")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per method (default 3)")
    ap.add_argument("--dir", default=None, help="where the Parquet files go (reused if present)")
    ap.add_argument("--no-pandas", action="store_true", help="skip pandas + sklearn (it needs ~10x the file in RAM)")
    ap.add_argument("--child", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.repeat)))
        return 0
    n = int(args.rows if args.rows else 4e6 if args.full else 2.5e5 if args.quick else 1e6)
    rg = args.row_group or min(250_000, max(1, n // 4))
    d = args.cols
    directory = Path(args.dir) if args.dir else Path(tempfile.gettempdir()) / "jaxlm-bench-stream"
    directory.mkdir(parents=True, exist_ok=True)
    f1 = directory / f"stream_{n}x{d}_rg{rg}.parquet"
    f4 = directory / f"stream_{n}x{d}_rg{rg}_x4.parquet"
    t0 = time.perf_counter()
    if not f1.exists():
        make_file(f1, n, d, rg)
    if not f4.exists():
        make_4x(f1, f4)
    made = time.perf_counter() - t0
    size1, size4 = f1.stat().st_size / 2**20, f4.stat().st_size / 2**20
    load0 = os.getloadavg()[0]
    print(f"Data: {n:,} rows x {d} float64 features + y, row groups of {rg:,} rows: {size1:,.0f} MiB "
          f"({f1.name}); the 4x file {size4:,.0f} MiB. {os.cpu_count()} CPU cores. Best of {args.repeat} runs (the 4x "
          f"file: best of 2), each method in a fresh process (files made in {made:.0f} s).\n", flush=True)

    res = {}
    for m in ("bare-default", "bare-nopre", "naive", "jaxlm"):
        res[m] = run_child(m, f1, args.repeat)
    res["jaxlm-4x"] = run_child("jaxlm", f4, min(args.repeat, 2))
    res["cli"] = run_cli(f1)
    if not args.no_pandas:
        res["pandas"] = run_child("pandas+sklearn", f1, max(1, min(args.repeat, 2)))
    floor_key = min(("bare-default", "bare-nopre"), key=lambda k: res[k]["seconds"])
    floor = res[floor_key]["seconds"]

    def row(label, r, note=""):
        s = r["seconds"]
        extra = r["peak_mb"] - r.get("base_mb", float("nan"))
        extra_text = f"{extra:,.0f}" if extra == extra else "-"
        return (f"| {label} | {s:.3f} | {s / floor:.2f}x | {r['peak_mb']:,.0f} | {extra_text} | {note} |")

    lines = ["| method | seconds | vs bare read | peak MB (process) | extra MB (over imports) | notes |",
             "|---|---:|---:|---:|---:|---|"]
    lines.append(row("bare read, pyarrow default (pre_buffer)", res["bare-default"],
                     "floor" if floor_key == "bare-default" else ""))
    lines.append(row("bare read, pre_buffer=False", res["bare-nopre"], "floor" if floor_key == "bare-nopre" else ""))
    lines.append(row("naive pyarrow + numpy Gram (serial)", res["naive"]))
    lines.append(row("**jaxlm stream_fit**", res["jaxlm"], f"{res['jaxlm'].get('passes')} pass(es)"))
    lines.append(row("jaxlm stream_fit, 4x file", res["jaxlm-4x"], f"{size4:,.0f} MiB file"))
    c = res["cli"]
    lines.append(f"| `jaxlm fit DATA --target y` (whole CLI process) | {c['seconds']:.3f} | {c['seconds'] / floor:.2f}x "
                 f"| {c['peak_mb']:,.0f} | - | of which the fit call {c['fit_seconds']:.3f} s (it includes the first "
                 f"import of scikit-learn and JAX and their warm-up); the rest: interpreter, imports, summary |")
    if "pandas" in res:
        lines.append(row("pandas read_parquet + sklearn fit", res["pandas"]))
    print("\n".join(lines))

    import numpy as np

    print()
    if "pandas" in res:
        a, b = np.array(res["jaxlm"]["coef"]), np.array(res["pandas"]["coef"])
        print(f"jaxlm vs sklearn coefficients: max relative difference {np.max(np.abs(a - b)) / np.max(np.abs(b)):.2e}")
    j = res["jaxlm"]["seconds"]
    bars = [("jaxlm wall <= 1.3x the bare read", j <= 1.3 * floor, f"{j / floor:.2f}x"),
            ("peak memory of the streamed fit < 1 GB at 1x and 4x",
             max(res["jaxlm"]["peak_mb"], res["jaxlm-4x"]["peak_mb"]) < 1000,
             f"{res['jaxlm']['peak_mb']:,.0f} MB and {res['jaxlm-4x']['peak_mb']:,.0f} MB"),
            ("peak memory does not grow with the file (4x vs 1x within 10%)",
             res["jaxlm-4x"]["peak_mb"] <= 1.1 * res["jaxlm"]["peak_mb"],
             f"{res['jaxlm-4x']['peak_mb'] / res['jaxlm']['peak_mb']:.2f}x")]
    if "pandas" in res:
        p = res["pandas"]["seconds"]
        bars.append(("jaxlm >= 5x faster than pandas + sklearn", p >= 5 * j, f"{p / j:.1f}x"))
    print(f"\nLoad average (1 min) of the machine: {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
          f"(other work on a shared machine slows every row; compare rows of one run only).")
    print("\n| bar | result | measured |\n|---|---|---|")
    for name, ok, text in bars:
        print(f"| {name} | {'pass' if ok else '**miss**'} | {text} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
