"""Start-up: ``import jaxlm``, ``jaxlm fit`` and ``jaxlm predict`` on a 50-row CSV, as whole processes.

    python benchmarks/bench_startup.py              # best of 5 runs of each command
    python benchmarks/bench_startup.py --repeat 9
    python benchmarks/bench_startup.py --compare /tmp/old/src   # also an older jaxlm, same run

Bytecode: an installed jaxlm has its modules compiled (``.pyc``) at install time; a source
checkout run with ``PYTHONDONTWRITEBYTECODE=1`` compiles all of jaxlm's modules in every process
(~50-100 ms here). So every command runs with bytecode cached in a temporary
``PYTHONPYCACHEPREFIX`` (nothing is written to the source tree), warmed by a first run;
``--compile`` measures instead with the caller's environment as it is.

Every command is a fresh ``python`` process (the user's wait: interpreter start, imports, work,
exit); the commands are run round-robin, so that the load of the (shared, noisy) machine hits
them alike, and the best of ``--repeat`` runs of each is reported, with its ratio to the
baseline ``python -c "import numpy, pyarrow.csv"``. Bars (issue 11): ``jaxlm fit`` and
``jaxlm predict`` ≤ 2× the baseline; ``import jaxlm`` ≤ 0.3 s.

The floor below the bars is measured in the same run: the imports the commands cannot avoid
(numpy, pyarrow.csv and pyarrow.compute for reading), so that a miss says what it is made of.
The row "+ scipy.special, scipy.linalg" is what the fit cost while it imported SciPy (the
p-values and t quantiles of the summary, the exact solver's triangular solves: ~0.1 s each
through SciPy's array-API layer); both are now NumPy-only (:mod:`jaxlm.core.special`,
:mod:`jaxlm.core.triangular`). The last line lists which heavy packages each command imported
(a subprocess audit of ``sys.modules``): none is the goal for the three.
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
RATIO_BAR = 2.0
IMPORT_BAR = 0.3
HEAVY = ("jax", "sklearn", "scipy", "pandas", "formulaic", "matplotlib", "optax")


#: a temporary bytecode cache for the measured processes (None: the environment as it is)
PYCACHE: list = [None]


def _env(src: Path = SRC) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    if PYCACHE[0] is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE[0]
    return env


def _data(directory: Path) -> tuple[Path, Path]:
    """A 50-row CSV (x1, x2, y) and the model file ``jaxlm fit --save`` writes for it."""
    import numpy as np

    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=50).tolist(), rng.uniform(size=50).tolist()
    y = [1.0 + 2.0 * a - b + 0.1 * e for a, b, e in zip(x1, x2, rng.normal(size=50).tolist())]
    csv = directory / "small.csv"
    csv.write_text("x1,x2,y\n" + "".join(f"{a!r},{b!r},{c!r}\n" for a, b, c in zip(x1, x2, y)))
    return csv, _save(directory, csv, "small.json")


def _save(directory: Path, csv: Path, name: str, src: Path = SRC) -> Path:
    """The model file ``jaxlm fit --save`` (the jaxlm of ``src``) writes for ``csv``."""
    model = directory / name
    subprocess.run([sys.executable, "-m", "jaxlm", "fit", str(csv), "--target", "y", "--save", str(model), "--quiet"],
                   check=True, capture_output=True, env=_env(src), cwd=directory)
    return model


def _commands(csv: Path, model: Path, out: Path) -> dict[str, list[str]]:
    py = [sys.executable]
    return {
        "python (no site)": py + ["-S", "-c", "pass"],
        "python -c pass": py + ["-c", "pass"],
        "import numpy, pyarrow.csv": py + ["-c", "import numpy, pyarrow.csv"],
        "  + pyarrow.compute": py + ["-c", "import numpy, pyarrow.csv, pyarrow.compute"],
        "  + pyarrow.compute, scipy.special, scipy.linalg": py + [
            "-c", "import numpy, pyarrow.csv, pyarrow.compute, scipy.special, scipy.linalg"],
        "import jaxlm": py + ["-c", "import jaxlm"],
        "jaxlm fit small.csv --target y": py + ["-m", "jaxlm", "fit", str(csv), "--target", "y"],
        "jaxlm predict small.json small.csv -o out.csv": py + ["-m", "jaxlm", "predict", str(model), str(csv),
                                                              "-o", str(out)],
    }


def _time(cmd: list[str], cwd: Path, src: Path = SRC) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, env=_env(src), cwd=cwd)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr.decode()[-2000:]}")
    return elapsed


AUDIT = ("import json, sys\nfrom jaxlm.cli.main import main\ncode = main({argv!r})\n"
         "print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))")


def _audit(argv: list[str], cwd: Path) -> list[str]:
    r = subprocess.run([sys.executable, "-c", AUDIT.format(argv=argv)], capture_output=True, text=True, env=_env(),
                       cwd=cwd)
    loaded = set(json.loads(r.stdout.strip().splitlines()[-1]))
    return sorted(loaded & set(HEAVY))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs of each command (best reported; default 5)")
    ap.add_argument("--compare", metavar="SRC", type=Path,
                    help="also time fit and predict with the jaxlm of this src directory (e.g. an older checkout)")
    ap.add_argument("--compile", action="store_true",
                    help="no bytecode cache: measure with the environment as it is (PYTHONDONTWRITEBYTECODE)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.compile:
            PYCACHE[0] = str(tmp / "pycache")
        csv, model = _data(tmp)
        commands = {name: (cmd, SRC) for name, cmd in _commands(csv, model, tmp / "out.csv").items()}
        if args.compare is not None:  # its own model file: a newer format may not be readable by it
            src = args.compare.resolve()
            other = _commands(csv, _save(tmp, csv, "small-compare.json", src), tmp / "out.csv")
            for name in ("jaxlm fit small.csv --target y", "jaxlm predict small.json small.csv -o out.csv"):
                commands[f"{name} [{args.compare}]"] = (other[name], src)
        best = {name: float("inf") for name in commands}
        for name, (cmd, src) in commands.items():  # warm the file cache once
            _time(cmd, tmp, src)
        for _ in range(args.repeat):
            for name, (cmd, src) in commands.items():
                best[name] = min(best[name], _time(cmd, tmp, src))
        audits = {"jaxlm fit": _audit(["fit", str(csv), "--target", "y"], tmp),
                  "jaxlm predict": _audit(["predict", str(model), str(csv), "-o", str(tmp / "o.csv")], tmp),
                  "jaxlm predict --interval": _audit(["predict", str(model), str(csv), "-o", str(tmp / "o.csv"),
                                                      "--interval", "prediction"], tmp)}
    base = best["import numpy, pyarrow.csv"]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    cache = "bytecode compiled in every process" if args.compile else "bytecode cached"
    print(f"Start-up, best of {args.repeat} (load average {load[0]:.2f}, {os.cpu_count()} cores, "
          f"python {sys.version.split()[0]}, {cache})\n")
    width = max(48, *(len(name) for name in best))
    print(f"| {'command':<{width}} | {'seconds':>7} | {'× baseline':>10} |")
    print(f"|{'-' * (width + 2)}|{'-' * 9}|{'-' * 12}|")
    for name, s in best.items():
        print(f"| {name:<{width}} | {s:7.3f} | {s / base:10.2f} |")
    print()
    rows = [("jaxlm fit ≤ 2× baseline", best["jaxlm fit small.csv --target y"] / base, RATIO_BAR, "×"),
            ("jaxlm predict ≤ 2× baseline", best["jaxlm predict small.json small.csv -o out.csv"] / base, RATIO_BAR,
             "×"),
            ("import jaxlm ≤ 0.3 s", best["import jaxlm"], IMPORT_BAR, " s")]
    print(f"| {'bar':<32} | {'measured':>9} | {'bar':>6} | result |")
    print(f"|{'-' * 34}|{'-' * 11}|{'-' * 8}|--------|")
    for name, got, bar, unit in rows:
        print(f"| {name:<32} | {got:8.2f}{unit[-1]} | {bar:5.1f}{unit[-1]} | {'pass' if got <= bar else 'FAIL':<6} |")
    print()
    floor = best["  + pyarrow.compute"]
    fit, scipy = best["jaxlm fit small.csv --target y"], best["  + pyarrow.compute, scipy.special, scipy.linalg"]
    print(f"floor: fit and predict import at least numpy, pyarrow.csv and pyarrow.compute: {floor:.3f} s = "
          f"{floor / base:.2f}× baseline; the fit's own imports and work above it: {fit - floor:.3f} s; "
          f"scipy.special and scipy.linalg would add {scipy - floor:.3f} s")
    print()
    print("heavy packages imported: " + "; ".join(f"{k}: {', '.join(v) or 'none'}" for k, v in audits.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
