"""One entry point for the whole benchmark suite: ``python -m benchmarks [--quick] [-o REPORT.md]``.

Runs each benchmark script in its own process (so none inherits another's warm caches
or memory) and writes one markdown report: the demo against the article's loop,
in-memory exact fits against sklearn/numpy/statsmodels and the X.T @ X floor, streaming
against the bare pyarrow read, Dask against dask-ml, and the device JAX ran on.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SUITE = [
    # (title, script, full-size args, quick args)
    ("Demo: jitted solver vs the article's un-jitted loop", "bench_demo.py", [], []),
    ("In-memory exact fits vs peers", "bench_exact.py", [], ["--quick"]),
    ("Streaming a Parquet file vs the bare pyarrow read", "bench_stream.py", [], ["--quick"]),
    ("Dask vs dask-ml", "bench_dask.py", [], ["--n", "1000000", "--d", "10"]),
    ("Loading model files, normal and hostile", "bench_model_load.py", [], ["--quick"]),
    ("GLM (IRLS) vs statsmodels and scikit-learn", "bench_glm.py", [], ["--quick"]),
    ("Clustered errors and absorbed fixed effects vs statsmodels / pyfixest", "bench_cluster.py", [], ["--quick"]),
]


def _device() -> str:
    out = subprocess.run([sys.executable, "-c", "import jax; d = jax.devices()[0]; print(d.platform, d.device_kind)"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (minutes instead of tens of minutes)")
    ap.add_argument("-o", "--output", default="benchmarks/REPORT.md")
    ap.add_argument("--only", help="comma-separated script names to run")
    args = ap.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    device = _device()
    lines = [f"# jaxlm benchmark report\n",
             f"{time.strftime('%Y-%m-%d %H:%M')}; python {platform.python_version()}; {os.cpu_count()} CPU cores; "
             f"JAX device: {device}{' (no GPU present: the GPU rows are not measured here)' if 'cpu' in device else ''}; "
             f"{'quick' if args.quick else 'full'} sizes.\n"]
    for title, script, full, quick in SUITE:
        if only and script not in only:
            continue
        path = HERE / script
        if not path.exists():
            lines.append(f"## {title}\n\n(not present: {script})\n")
            continue
        cmd = [sys.executable, str(path), *(quick if args.quick else full)]
        print(f"running {' '.join(cmd[1:])} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        took = time.perf_counter() - t
        lines.append(f"## {title}\n\n`python benchmarks/{script} {' '.join(cmd[2:])}` ({took:.0f} s)\n")
        lines.append(out.stdout.strip() + "\n")
        if out.returncode != 0:
            lines.append(f"**failed** (exit {out.returncode}):\n\n```\n{out.stderr[-2000:]}\n```\n")
    report = "\n".join(lines)
    Path(args.output).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
