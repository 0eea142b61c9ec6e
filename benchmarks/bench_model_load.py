"""Loading model files: normal ones, and hostile ones an attacker would write.

    python benchmarks/bench_model_load.py            # all files (about a minute)
    python benchmarks/bench_model_load.py --quick    # without the 1,000-feature normal file

Each file is loaded by ``jaxlm.models.registry.read_model_file`` in a fresh subprocess, after
the imports (jaxlm, the estimator, formulaic) and a ``gc.collect()`` (without it, the first
load of the process pays ~80 ms for the interpreter's first full collection of the objects
the imports made, whatever the file): the peak RSS over that baseline is the
process's high-water mark (VmHWM, reset through /proc/self/clear_refs after the imports)
minus its RSS before the load. "numbers" is the size of the numbers the file holds as
float64 (8 bytes each); "model holds" the float64 arrays the loaded model keeps (coefficients,
state, factor, statistics). Load time: the best of three loads in the process (the first in
parentheses). Bars (from the issue): a hostile file is refused in < 0.1 s, peaking under
64 MiB; a normal load peaks at most at 2 x the numbers held (the larger of the file's and
the model's) + 64 MiB.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
CONSTANT_MB = 64.0
REFUSE_S = 0.1


# --------------------------------------------------------------------------- files


def _fit_file(directory: Path, d: int, n: int, *, formula: bool = False) -> Path:
    """A model file as ``jaxlm fit --save`` writes it: d features (or a formula with a
    three-level categorical), fitted on n random rows."""
    import numpy as np
    import pandas as pd

    import jaxlm
    from jaxlm.io import fit_table
    from jaxlm.models.registry import save_model

    rng = np.random.default_rng(0)
    if formula:
        df = pd.DataFrame({"a": rng.normal(size=n), "g": rng.choice(["u", "v", "w"], n)})
        df["y"] = 1 + df.a + (df.g == "v") + rng.normal(size=n)
        model = fit_table(df, formula="y ~ a + C(g)", progress=False)
    else:
        X = rng.normal(size=(n, d))
        model = jaxlm.LinearRegression().fit(X, X @ rng.normal(size=d) + rng.normal(size=n))
    return save_model(model, directory / ("formula.json" if formula else f"normal_d{d}.json"))


def _levels_file(directory: Path, base: Path, k: int) -> Path:
    """The formula file with k stored levels of ``g`` (the coefficients still have 3 columns)."""
    doc = json.loads(base.read_text())
    doc["formula"]["levels"] = {"g": [f"level{i:06d}" for i in range(k)]}
    path = directory / f"levels_{k}.json"
    path.write_text(json.dumps(doc, separators=(",", ":")))
    return path


def _zero_state(d: int, *, row: int | None = None) -> str:
    """A compact document with a zero Gram state of d features (``row``: the length of the
    state's rows, to make the sizes disagree)."""
    row = d if row is None else row
    zeros = "[" + ",".join(["0"] * row) + "]"
    features = json.dumps([f"x{j}" for j in range(d)])
    head = ('{"format":"jaxlm-model","format_version":1,"estimator":"LinearRegression",'
            '"params":{"solver":"auto"},"features":%s,"targets":["y"],"target_ndim":1,'
            '"coef":[%s],"intercept":[0],"solution":{"solver":"svd","dtype":"float64","rank":0,"n_iter":1,'
            '"converged":true,"diverged":false,"grad_norm":0,"condition_number":"Infinity","aliased":[],'
            '"refinement_steps":0,"matmul_precision":"highest","sse":[0]},'
            '"state":{"kind":"gram","count":2,"wsum":2,"wsum2":2,"mean_x":%s,"mean_y":[0],"sxx":['
            % (features, "[" + ",".join(["0"] * d) + "]", "[" + ",".join(["0"] * d) + "]"))
    return head + ",".join([zeros] * d) + '],"sxy":[' + ",".join(["[0]"] * d) + '],"syy":[[0]]}}'


def _hostile(directory: Path, formula: Path) -> dict[str, Path]:
    files = {
        "8,000 levels": _levels_file(directory, formula, 8_000),
        "40,000 levels": _levels_file(directory, formula, 40_000),
    }
    p = directory / "zero_state_3000.json"
    p.write_text(_zero_state(3000))
    files["3,000-feature zero state"] = p
    p = directory / "mismatched.json"
    p.write_text(_zero_state(2000, row=2001))
    files["mismatched sizes (2,000 features, rows of 2,001)"] = p
    p = directory / "deep.json"
    p.write_text('{"format":"jaxlm-model","format_version":1,"metadata":' + "[" * 100_000 + "]" * 100_000 + "}")
    files["100,000-deep nesting"] = p
    doc = json.loads(formula.read_text())
    text = json.dumps(doc).replace('"n_iter": 1', '"n_iter": 1' + "0" * 5000)
    p = directory / "digits.json"
    p.write_text(text)
    files["5,000-digit integer"] = p
    return files


# --------------------------------------------------------------------------- child


def _status(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(path: str) -> dict:
    import jaxlm
    import jaxlm.io.formula  # noqa: F401 - imports outside the measurement, as a library user has them

    jaxlm.LinearRegression  # noqa: B018 - the estimator (and scikit-learn) imported too
    gc.collect()  # else the first load pays the full collection of the imports' objects (~80 ms)
    from jaxlm.core.errors import InputError
    from jaxlm.models.registry import read_model_file

    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    before = _status("VmRSS")
    times = []
    for i in range(3):  # the peak is the first load's; the time the best of three (the machine is shared)
        t = time.perf_counter()
        try:
            mf = read_model_file(path)
            outcome, message = "loaded", ""
        except InputError as e:
            mf, outcome, message = None, "refused", str(e)
        times.append(time.perf_counter() - t)
        if i == 0:
            peak = _status("VmHWM") - before
        if i < 2:
            mf = None
    return {"outcome": outcome, "seconds": min(times), "first_seconds": times[0], "peak_mb": peak,
            "model_mb": _held_mb(mf.model) if mf is not None else 0.0, "message": message}


def _held_mb(model) -> float:
    """MiB of the float64 arrays a loaded model keeps: solution (coefficients, state, factor)
    and statistics (results_)."""
    import numpy as np

    seen, total = set(), 0

    def walk(obj, depth=0):
        nonlocal total
        if depth > 4 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            total += obj.nbytes
        elif isinstance(obj, (tuple, list)):
            for x in obj:
                walk(x, depth + 1)
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("jaxlm"):
            for x in vars(obj).values():
                walk(x, depth + 1)

    walk(model.solution_)
    walk(getattr(model, "results_", None))
    return total / 2**20


def _numbers_mb(path: Path) -> float:
    """Numbers in the file (float64 bytes): count the JSON numbers outside strings."""
    import re

    text = path.read_bytes()
    text = re.sub(rb'"(?:[^"\\]++|\\[\s\S])*+"', b"", text)
    return len(re.findall(rb"-?[0-9][0-9.eE+-]*", text)) * 8 / 2**20


def _run(path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True, env=env,
                         timeout=600)
    if out.returncode != 0:
        return {"outcome": f"crashed ({out.returncode})", "seconds": float("nan"), "first_seconds": float("nan"),
                "peak_mb": float("nan"),
                "model_mb": 0.0, "message": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child")
    ap.add_argument("--dir", help="where to write the files (default: a temporary directory)")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(args.dir or tmp)
        directory.mkdir(parents=True, exist_ok=True)
        formula = _fit_file(directory, 0, 500, formula=True)
        normal = {"normal: formula y ~ a + C(g)": formula,
                  "normal: 200 features": _fit_file(directory, 200, 2_000)}
        if not args.quick:
            normal["normal: 1,000 features"] = _fit_file(directory, 1000, 5_000)
        hostile = _hostile(directory, formula)
        rows = []
        print("| file | size | numbers in file | outcome | load time (first) | peak over baseline | model holds | bar |")
        print("|---|---:|---:|---|---:|---:|---:|---|")
        for kind, files in (("normal", normal), ("hostile", hostile)):
            for name, path in files.items():
                r = _run(path)
                numbers = _numbers_mb(path)
                if kind == "hostile":  # refused: it holds nothing, so the peak must stay under the constant
                    ok = r["outcome"] == "refused" and r["seconds"] < REFUSE_S and r["peak_mb"] <= CONSTANT_MB
                    bar = f"refused in < {REFUSE_S} s, peak <= {CONSTANT_MB:.0f} MiB"
                else:
                    held = max(numbers, r["model_mb"])
                    ok = r["outcome"] == "loaded" and r["peak_mb"] <= 2 * held + CONSTANT_MB
                    bar = f"loaded, peak <= 2 x {held:.1f} + {CONSTANT_MB:.0f} MiB"
                rows.append((name, ok))
                print(f"| {name} | {path.stat().st_size / 2**20:.2f} MiB | {numbers:.2f} MiB | {r['outcome']} | "
                      f"{r['seconds'] * 1e3:.1f} ms ({r['first_seconds'] * 1e3:.0f}) | {r['peak_mb']:.1f} MiB | {r['model_mb']:.1f} MiB | "
                      f"{'PASS' if ok else 'FAIL'} ({bar}) |")
                if r["message"]:
                    print(f"|   | | | {r['message'][:200]} | | | | |")
        print()
        print(f"{sum(ok for _, ok in rows)}/{len(rows)} files within the bars.")


if __name__ == "__main__":
    main()
