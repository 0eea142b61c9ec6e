"""Streaming a Parquet or CSV file into an exact fit, against pyarrow's bare read and pandas + sklearn.

    python benchmarks/bench_stream.py            # 1e6 x 50 float64 (+ y), row groups of 250,000; a few minutes
    python benchmarks/bench_stream.py --quick    # 2.5e5 x 50, row groups of 62,500
    python benchmarks/bench_stream.py --full     # the issue's 4e6 x 50 (1.7 GiB), row groups of 250,000
    python benchmarks/bench_stream.py --full --no-csv --breakdown   # + stream_fit pass by pass, and its floors

One run writes the Parquet file (``--dir``, default a temporary directory; reused if present), a
copy with every row group written four times (4x the size), the same rows as CSV (pyarrow's CSV
writer: every float64 round-trips) and a CSV with the data lines written four times. Then it
times, best of ``--repeat``:

- ``bare read``: Parquet: ``ParquetFile.read_row_group`` over every row group, all columns decoded
  (the faster of pyarrow's default and ``pre_buffer=False``); CSV: ``pyarrow.csv.open_csv`` with
  its default options, streaming over every block, all columns decoded;
- ``jaxlm stream_fit``: :func:`jaxlm.models.tables.stream_fit` (the code path of ``jaxlm fit``),
  with as many passes over the file as "auto" decides (``passes`` column), in process after imports;
- ``stream_fit, one pass``: the same with the refinement switched off in the benchmark's process:
  the state pass alone (read, convert, Gram), to tell the streaming from the extra passes;
- ``naive pyarrow + numpy Gram``: the Parquet read, one column-major copy and ``X.T @ X`` per row
  group, in series;
- ``jaxlm fit`` (CLI process): the whole ``jaxlm fit DATA --target y --quiet`` process;
- ``pandas + sklearn``: ``pandas.read_parquet`` then ``sklearn.linear_model.LinearRegression``.

The bare read and stream_fit of one format alternate in one process (so that a change of the
machine's load hits both); each run also records the CPU seconds *other* processes used meanwhile
(/proc/stat), and the row keeps the fastest run. Peak memory is measured in a fresh process per
method and file: VmHWM (/proc/self/status) at the end, imports included; "extra" subtracts the
peak after the imports. Prints a markdown table, then the bars of the issue with pass/fail.
``--breakdown`` adds, from one more process, the wall and CPU seconds of each pass of
``stream_fit`` and the CPU seconds of a pass's pieces run one after another (decode, copy to
float64 blocks, the state's update, the refinement gradient's): the floors of each pass.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import resource
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


def _busy() -> float:
    """Machine-wide busy CPU seconds (/proc/stat)."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


def _own() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def timed(fn):
    """``(seconds, own CPU seconds, other processes' CPU seconds, result)`` of one call."""
    b0, o0, t0 = _busy(), _own(), time.perf_counter()
    out = fn()
    wall, b1, o1 = time.perf_counter() - t0, _busy(), _own()
    return wall, o1 - o0, max(0.0, (b1 - b0) - (o1 - o0)), out


# --------------------------------------------------------------------------- children


def bare_parquet(path: str, pre_buffer: bool) -> int:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path, pre_buffer=pre_buffer)
    return sum(pf.read_row_group(i).num_rows for i in range(pf.num_row_groups))


def bare_csv(path: str) -> int:
    import pyarrow.csv as pcsv

    with pcsv.open_csv(path) as reader:
        return sum(b.num_rows for b in reader)


def jaxlm_fit(path: str, one_pass: bool = False):
    import numpy as np
    from jaxlm.core import exact
    from jaxlm.models.tables import stream_fit

    fit_reduced = exact.fit_reduced
    if one_pass:  # the benchmark's own switch: time the state pass alone (over the caller's refine_data)
        exact.fit_reduced = lambda *args, **kwargs: fit_reduced(*args, **{**kwargs, "refine_data": False})
    try:
        fit = stream_fit(path, target="y", progress=False)
    finally:
        exact.fit_reduced = fit_reduced
    sol = fit.solution if getattr(fit, "solution", None) is not None else fit.model.solution_
    return {"coef": np.r_[np.ravel(sol.intercept), np.ravel(sol.coef)].tolist(), "passes": fit.passes}


def naive(path: str) -> None:
    import numpy as np
    import pyarrow.parquet as pq

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


def pandas_sklearn(path: str):
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    df = pd.read_parquet(path)
    X, y = df.drop(columns="y").to_numpy(), df["y"].to_numpy()
    del df
    m = LinearRegression().fit(X, y)
    return {"coef": np.r_[m.intercept_, m.coef_].tolist()}


def breakdown(path: str) -> dict:
    """Where ``stream_fit``'s time goes, in one process: each pass of a real ``stream_fit`` (wall and
    CPU seconds, all threads; the second of two runs), then the pieces of its two passes run one after another in this thread
    (the reader's read-ahead thread off, BLAS single-threaded; Arrow decodes with its own threads):
    the decode of every row group, the Arrow -> float64 block copy, the state's update and the
    refinement gradient's on the chunks ``run.folded`` cuts. Their sum is the CPU floor of a fit."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from jaxlm.core import exact, passes as ps
    from jaxlm.io import sources
    from jaxlm.io.design import numeric_design, select_columns
    from jaxlm.models.tables import stream_fit
    from jaxlm.reduce import stream

    passes, runner = [], stream.runner

    def timed_runner(*a, **k):
        run = runner(*a, **k)
        folded = run.folded

        def one(reduction):
            t0, c0 = time.perf_counter(), _own()
            out = folded(reduction)
            passes.append({"reduction": getattr(reduction.update, "func", reduction.update).__name__.strip("_"),
                           "seconds": time.perf_counter() - t0, "cpu": _own() - c0})
            return out

        run.folded = one
        return run

    stream.runner = timed_runner
    try:
        for _ in range(2):  # the second (warm) run's passes are kept
            passes.clear()
            stream_fit(path, target="y", progress=False, estimator=False)
    finally:
        stream.runner = runner
    src = sources.open_table(path)
    sel = select_columns(src, target="y")
    design, cols, d = numeric_design(sel, "raise"), list(sel.features + sel.targets), len(sel.features)
    pieces = dict.fromkeys(("decode", "copy", "state update", "gradient update"), 0.0)
    read_ahead, sources.read_ahead = sources.read_ahead, iter  # serial: no decode in the background
    try:
        with threadpool_limits(1, "blas"):
            red, acc = ps.state_reduction(d, 1), None
            for which in ("state", "gradient"):
                if which == "gradient":  # the refinement's gradient at the state's solution
                    s = red.finish(acc)
                    coef, _ = exact._solve_scaled(s, exact.factor_state(s), np.zeros(d), True)
                    sx, sy = exact.refine_shift(s)
                    red = ps.gradient_reduction(coef, (s.mean_y - sy) - coef @ (s.mean_x - sx), sx, sy)
                acc, blocks = red.init(), src.blocks(cols)
                while True:
                    c0 = _own()
                    block = next(blocks, None)
                    if block is None:
                        break
                    c1 = _own()
                    blk = design(block)
                    c2 = _own()
                    for chunk in stream.chunks((blk.X, blk.Y, blk.w)):
                        acc = red.update(acc, *chunk)
                    pieces["decode"] += (c1 - c0) / 2
                    pieces["copy"] += (c2 - c1) / 2
                    pieces[f"{which} update"] += _own() - c2
    finally:
        sources.read_ahead = read_ahead
    return {"passes": passes, "pieces": pieces}


RUNS = {
    "bare-default": lambda p: bare_parquet(p, True),
    "bare-nopre": lambda p: bare_parquet(p, False),
    "bare-csv": bare_csv,
    "jaxlm": jaxlm_fit,
    "jaxlm-1pass": lambda p: jaxlm_fit(p, one_pass=True),
    "naive": naive,
    "breakdown": breakdown,
    "pandas+sklearn": pandas_sklearn,
}


def child(methods: list[str], path: str, repeat: int) -> dict:
    """Each method ``repeat`` times, the methods alternating; the fastest run of each."""
    import numpy  # noqa: F401 - imports outside the timing, as a library user has them
    import pyarrow.csv  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    if any(m.startswith("jaxlm") for m in methods):
        import jaxlm.models.linear  # noqa: F401
        import jaxlm.models.tables  # noqa: F401
    if "pandas+sklearn" in methods:
        import pandas  # noqa: F401
        import sklearn.linear_model  # noqa: F401
    base = _hwm_mb()
    out = {m: {"method": m, "seconds": float("inf"), "all": []} for m in methods}
    for _ in range(repeat):
        for m in methods:
            wall, cpu, other, res = timed(lambda m=m: RUNS[m](path))
            r = out[m]
            r["all"].append(round(wall, 4))
            if wall < r["seconds"]:
                r.update(seconds=wall, cpu=cpu, other_cpu=other)
                if isinstance(res, dict):
                    r.update(res)
    for r in out.values():
        r.update(peak_mb=_hwm_mb(), base_mb=base)
    return out


# --------------------------------------------------------------------------- parent


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    return env


def run_child(methods, path: Path, repeat: int) -> dict:
    methods = [methods] if isinstance(methods, str) else list(methods)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", ",".join(methods), str(path),
           "--repeat", str(repeat)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    if r.returncode != 0:
        raise SystemExit(f"{methods} failed:\n{r.stderr[-3000:]}")
    got = json.loads(r.stdout.strip().splitlines()[-1])
    return got if len(methods) > 1 else got[methods[0]]


def run_cli(path: Path) -> dict:
    code = ("import sys\n"
            "from jaxlm.cli import main\n"
            "code = main(sys.argv[1:])\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
            "print('HWM', int(hwm) / 1024, file=sys.stderr)\n"
            "sys.exit(code)\n")
    cmd = [sys.executable, "-c", code, "fit", str(path), "--target", "y", "--quiet", "--json"]
    wall, _, other, r = timed(lambda: subprocess.run(cmd, capture_output=True, text=True, env=_env()))
    if r.returncode != 0:
        raise SystemExit(f"jaxlm fit failed:\n{r.stderr[-3000:]}")
    peak = float([line for line in r.stderr.splitlines() if line.startswith("HWM")][-1].split()[1])
    doc = json.loads(r.stdout)
    return {"method": "jaxlm-cli", "seconds": wall, "peak_mb": peak, "fit_seconds": doc.get("seconds"),
            "other_cpu": other}


def import_seconds(repeat: int = 3) -> float:
    """The fastest ``python -c "import numpy, pyarrow.parquet"`` (the issue's yardstick for the CLI)."""
    cmd = [sys.executable, "-c", "import numpy, pyarrow.parquet"]
    return min(timed(lambda: subprocess.run(cmd, check=True))[0] for _ in range(repeat))


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


def make_csv(src: Path, dst: Path, copies: int = 1) -> None:
    """The rows of the Parquet file ``src`` as CSV (header once), ``copies`` times over."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(src)
    tmp = dst.with_suffix(".tmp")
    with pcsv.CSVWriter(tmp, pf.schema_arrow) as w:
        for _ in range(copies):
            for i in range(pf.num_row_groups):
                w.write_table(pf.read_row_group(i))
    os.replace(tmp, dst)


def print_breakdown(b: dict, bare: dict) -> None:
    """The ``breakdown`` child's numbers, against the bare read of the same file."""
    base = bare["seconds"]
    print(f"\nstream_fit pass by pass (one run; the bare read: {base:.3f} s, {bare['cpu']:.2f} CPU s):\n")
    print("| pass | reduction | seconds | vs bare read | CPU s |\n|---|---|---:|---:|---:|")
    for k, p in enumerate(b["passes"], 1):
        print(f"| {k} | {p['reduction']} | {p['seconds']:.3f} | {p['seconds'] / base:.2f}x | {p['cpu']:.2f} |")
    pc = b["pieces"]
    cores = os.cpu_count() or 1
    print("\nCPU seconds of each piece of a pass, run one after another (BLAS single-threaded):\n")
    print("| piece | CPU s |\n|---|---:|")
    for name, v in pc.items():
        print(f"| {name} | {v:.3f} |")
    state = pc["decode"] + pc["copy"] + pc["state update"]
    grad = pc["decode"] + pc["copy"] + pc["gradient update"]
    print(f"\nFloors on {cores} cores: state pass {state:.2f} CPU s = {state / cores / base:.2f}x the bare read; "
          f"refinement pass {grad:.2f} CPU s = {grad / cores / base:.2f}x; both {(state + grad) / cores / base:.2f}x.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=float, default=None, help="rows of the 1x file (default 1e6; --quick 2.5e5)")
    ap.add_argument("--cols", type=int, default=50, help="feature columns (default 50)")
    ap.add_argument("--row-group", type=int, default=None, help="rows per row group (default rows/4, at most 250,000)")
    ap.add_argument("--full", action="store_true", help="the issue's size: 4e6 x 50, row groups of 250,000")
    ap.add_argument("--quick", action="store_true", help="2.5e5 x 50")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per method (default 3)")
    ap.add_argument("--dir", default=None, help="where the files go (reused if present)")
    ap.add_argument("--no-pandas", action="store_true", help="skip pandas + sklearn (it needs ~10x the file in RAM)")
    ap.add_argument("--no-csv", action="store_true", help="skip the CSV rows")
    ap.add_argument("--breakdown", action="store_true",
                    help="also: stream_fit pass by pass, and the CPU floors of a pass's pieces")
    ap.add_argument("--child", nargs=2, metavar=("METHODS", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0].split(","), args.child[1], args.repeat)))
        return 0
    n = int(args.rows if args.rows else 4e6 if args.full else 2.5e5 if args.quick else 1e6)
    rg = args.row_group or min(250_000, max(1, n // 4))
    d = args.cols
    directory = Path(args.dir) if args.dir else Path(tempfile.gettempdir()) / "jaxlm-bench-stream"
    directory.mkdir(parents=True, exist_ok=True)
    f1 = directory / f"stream_{n}x{d}_rg{rg}.parquet"
    f4 = directory / f"stream_{n}x{d}_rg{rg}_x4.parquet"
    c1, c4 = directory / f"stream_{n}x{d}.csv", directory / f"stream_{n}x{d}_x4.csv"
    t0 = time.perf_counter()
    if not f1.exists():
        make_file(f1, n, d, rg)
    if not f4.exists():
        make_4x(f1, f4)
    if not args.no_csv:
        for path, copies in ((c1, 1), (c4, 4)):
            if not path.exists():
                make_csv(f1, path, copies)
    made = time.perf_counter() - t0
    def mib(p):
        return p.stat().st_size / 2**20

    load0 = os.getloadavg()[0]
    print(f"Data: {n:,} rows x {d} float64 features + y. Parquet: row groups of {rg:,} rows, {mib(f1):,.0f} MiB "
          f"({f1.name}), 4x {mib(f4):,.0f} MiB" + ("" if args.no_csv else f"; CSV {mib(c1):,.0f} MiB, 4x "
                                                    f"{mib(c4):,.0f} MiB") +
          f". {os.cpu_count()} CPU cores. Best of {args.repeat} runs (files made in {made:.0f} s).\n", flush=True)

    res = run_child(["bare-default", "bare-nopre", "jaxlm", "jaxlm-1pass"], f1, args.repeat)
    res["naive"] = run_child("naive", f1, args.repeat)
    res["mem"], res["mem-4x"] = run_child("jaxlm", f1, 1), run_child("jaxlm", f4, 1)
    if not args.no_csv:
        csv = run_child(["bare-csv", "jaxlm", "jaxlm-1pass"], c1, max(1, min(args.repeat, 2)))
        res.update({"csv-" + k: v for k, v in csv.items()})
        res["csv-mem"], res["csv-mem-4x"] = run_child("jaxlm", c1, 1), run_child("jaxlm", c4, 1)
    res["cli"] = run_cli(f1)
    res["imports"] = import_seconds()
    if not args.no_pandas:
        res["pandas"] = run_child("pandas+sklearn", f1, max(1, min(args.repeat, 2)))
    floor_key = min(("bare-default", "bare-nopre"), key=lambda k: res[k]["seconds"])
    floor = res[floor_key]["seconds"]
    csv_floor = res["csv-bare-csv"]["seconds"] if not args.no_csv else None

    def row(label, r, base, note="", mem=None):
        s, mem = r["seconds"], mem or r
        extra = mem["peak_mb"] - mem.get("base_mb", float("nan"))
        extra_text = "-" if math.isnan(extra) else f"{extra:,.0f}"
        other, cpu = r.get("other_cpu"), r.get("cpu")
        return (f"| {label} | {s:.3f} | {s / base:.2f}x | {'-' if cpu is None else f'{cpu:.2f}'} | "
                f"{mem['peak_mb']:,.0f} | {extra_text} | {'-' if other is None else f'{other:.2f}'} | {note} |")

    lines = ["| method | seconds | vs bare read | own CPU s | peak MB (process) | extra MB (over imports) | "
             "other CPU s | notes |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    lines.append(row("Parquet: bare read, pyarrow default (pre_buffer)", res["bare-default"], floor,
                     "floor" if floor_key == "bare-default" else ""))
    lines.append(row("Parquet: bare read, pre_buffer=False", res["bare-nopre"], floor,
                     "floor" if floor_key == "bare-nopre" else ""))
    lines.append(row("Parquet: naive pyarrow + numpy Gram (serial)", res["naive"], floor))
    lines.append(row("**Parquet: jaxlm stream_fit**", res["jaxlm"], floor, f"{res['jaxlm'].get('passes')} pass(es); "
                     "peak from a run of its own", mem=res["mem"]))
    lines.append(row("Parquet: stream_fit, one pass (refinement off)", res["jaxlm-1pass"], floor,
                     f"{res['jaxlm-1pass'].get('passes')} pass"))
    lines.append(row("Parquet: stream_fit, 4x file", res["mem-4x"], floor, f"{mib(f4):,.0f} MiB file, one run"))
    if not args.no_csv:
        lines.append(row("CSV: bare read, pyarrow.csv.open_csv", res["csv-bare-csv"], csv_floor, "floor"))
        lines.append(row("**CSV: jaxlm stream_fit**", res["csv-jaxlm"], csv_floor,
                         f"{res['csv-jaxlm'].get('passes')} pass(es); peak from a run of its own",
                         mem=res["csv-mem"]))
        lines.append(row("CSV: stream_fit, one pass (refinement off)", res["csv-jaxlm-1pass"], csv_floor,
                         f"{res['csv-jaxlm-1pass'].get('passes')} pass"))
        lines.append(row("CSV: stream_fit, 4x file", res["csv-mem-4x"], csv_floor, f"{mib(c4):,.0f} MiB file, one run"))
    c = res["cli"]
    fit_s = "-" if c["fit_seconds"] is None else f"{c['fit_seconds']:.3f} s"
    lines.append(f"| `jaxlm fit DATA.parquet --target y` (whole CLI process) | {c['seconds']:.3f} | "
                 f"{c['seconds'] / floor:.2f}x | - | {c['peak_mb']:,.0f} | - | {c['other_cpu']:.2f} | of which the fit "
                 f"{fit_s}; `python -c \"import numpy, pyarrow.parquet\"` takes {res['imports']:.3f} s |")
    if "pandas" in res:
        lines.append(row("pandas read_parquet + sklearn fit", res["pandas"], floor))
    print("\n".join(lines))

    import numpy as np

    print()
    a = np.array(res["jaxlm"]["coef"])
    if not args.no_csv:
        b = np.array(res["csv-jaxlm"]["coef"])
        print(f"jaxlm coefficients, CSV vs Parquet: max relative difference {np.max(np.abs(a - b)) / np.max(np.abs(a)):.2e}")
    if "pandas" in res:
        b = np.array(res["pandas"]["coef"])
        print(f"jaxlm vs sklearn coefficients: max relative difference {np.max(np.abs(a - b)) / np.max(np.abs(b)):.2e}")
    j = res["jaxlm"]["seconds"]
    peaks = [res[k]["peak_mb"] for k in ("mem", "mem-4x", "csv-mem", "csv-mem-4x") if k in res]
    bars = [("Parquet: stream_fit <= 1.5x the bare read", j <= 1.5 * floor, f"{j / floor:.2f}x"),
            ("Parquet: stream_fit's state pass alone <= 1.5x the bare read", res["jaxlm-1pass"]["seconds"] <= 1.5 * floor,
             f"{res['jaxlm-1pass']['seconds'] / floor:.2f}x")]
    if not args.no_csv:
        jc = res["csv-jaxlm"]["seconds"]
        bars += [("CSV: stream_fit <= 1.5x pyarrow's CSV read", jc <= 1.5 * csv_floor, f"{jc / csv_floor:.2f}x"),
                 ("CSV: stream_fit's state pass alone <= 1.5x pyarrow's CSV read",
                  res["csv-jaxlm-1pass"]["seconds"] <= 1.5 * csv_floor,
                  f"{res['csv-jaxlm-1pass']['seconds'] / csv_floor:.2f}x")]
    bars += [("peak memory of the streamed fit < 1 GB at 1x and 4x (Parquet" + ("" if args.no_csv else ", CSV") + ")",
              max(peaks) < 1000, " / ".join(f"{p:,.0f}" for p in peaks) + " MB"),
             ("peak memory does not grow with the file (4x vs 1x within 10%)",
              res["mem-4x"]["peak_mb"] <= 1.1 * res["mem"]["peak_mb"]
              and ("csv-mem" not in res or res["csv-mem-4x"]["peak_mb"] <= 1.1 * res["csv-mem"]["peak_mb"]),
              f"{res['mem-4x']['peak_mb'] / res['mem']['peak_mb']:.2f}x" + ("" if "csv-mem" not in res else
                                                                            f", CSV {res['csv-mem-4x']['peak_mb'] / res['csv-mem']['peak_mb']:.2f}x")),
             ("`jaxlm fit` process <= 1.5x (bare read + import numpy, pyarrow.parquet)",
              c["seconds"] <= 1.5 * (floor + res["imports"]), f"{c['seconds'] / (floor + res['imports']):.2f}x")]
    if "pandas" in res:
        p = res["pandas"]["seconds"]
        bars.append(("jaxlm >= 5x faster than pandas + sklearn", p >= 5 * j, f"{p / j:.1f}x"))
    print(f"\nLoad average (1 min) of the machine: {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; "
          f"'other CPU s': CPU seconds other processes used during the row's fastest run (well above 0: the "
          f"timing shared the machine's {os.cpu_count()} cores; compare rows of one run only); 'own CPU s': CPU "
          f"seconds of the method itself, all its threads.")
    cores = os.cpu_count() or 1
    for key, label, base in (("jaxlm", "Parquet stream_fit", floor), ("jaxlm-1pass", "Parquet state pass", floor),
                             ("csv-jaxlm", "CSV stream_fit", csv_floor)):
        if key in res and res[key].get("cpu") and base:
            print(f"{label}: {res[key]['cpu']:.2f} CPU s; on {cores} cores it cannot take less than "
                  f"{res[key]['cpu'] / cores:.3f} s = {res[key]['cpu'] / cores / base:.2f}x the bare read.")
    if args.breakdown:
        print_breakdown(run_child("breakdown", f1, 1), res[floor_key])
    print("\n| bar | result | measured |\n|---|---|---|")
    for name, ok, text in bars:
        print(f"| {name} | {'pass' if ok else '**miss**'} | {text} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
