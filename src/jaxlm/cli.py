"""The ``jaxlm`` command line.

Each subcommand is one function registered with :func:`command`: it receives its own
``argparse`` parser, adds its options and returns the handler that runs it::

    @command("verify", help="check the solvers against NIST certified values")
    def _verify(p: argparse.ArgumentParser):
        p.add_argument("--dataset")
        return run_verify          # run_verify(args: argparse.Namespace) -> int exit code

Exit codes: 0 success; 1 the command ran but its result is not good (e.g. gradient descent
diverged or did not converge); 2 bad input (one line on stderr naming the option, the rule and
the value received); 130 interrupted.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import math
import os
import re
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable, NoReturn

import jaxlm
from jaxlm import InputError

__all__ = ["command", "main", "run"]

Handler = Callable[[argparse.Namespace], int]

#: name -> (configure(parser) -> handler, help, description); filled by :func:`command`.
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], Handler], str, str | None]] = {}

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def command(name: str, *, help: str, description: str | None = None):
    """Register a subcommand; see the module docstring."""

    def register(configure: Callable[[argparse.ArgumentParser], Handler]):
        if name in COMMANDS:
            raise ValueError(f"subcommand {name!r} is already registered")
        COMMANDS[name] = (configure, help, description)
        return configure

    return register


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage block) and exit code 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxlm", description=jaxlm.__doc__,
                     epilog="Run 'jaxlm <command> --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"jaxlm {jaxlm.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    for name, (configure, help_, description) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=description or help_)
        p.set_defaults(handler=configure(p))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``jaxlm`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors
        return e.code if isinstance(e.code, int) else (EXIT_OK if e.code is None else EXIT_USAGE)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print(f"jaxlm {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `jaxlm demo | head -1`
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def run() -> NoReturn:
    """Program entry point: :func:`main`, then a fast exit.

    Tearing down the interpreter after jax and matplotlib were imported takes ~0.4 s, a tenth
    of ``jaxlm demo``. So after ``main`` returns, the ``atexit`` handlers run, the standard
    streams are flushed and the process ends with ``os._exit`` (every output file is already
    closed and renamed into place). Call :func:`main` instead from Python code.
    """
    code = main()
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is None:  # not CPython: exit normally
        sys.exit(code)
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


# --------------------------------------------------------------------------- shared helpers


def _int_arg(text: str) -> int:
    """An integer, also written as 1e4."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}")
    return int(value)


def _usage_error(prog: str, message: str) -> int:
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_USAGE


def _input_error(prog: str, err: InputError, options: dict[str, str]) -> int:
    """Report an InputError in terms of command-line options (``noise_sd=-1`` -> ``--noise -1``)."""
    msg = str(err)
    for param, option in sorted(options.items(), key=lambda kv: -len(kv[0])):
        msg = re.sub(rf"(?<![\w-]){re.escape(param)}=", f"{option} ", msg)
        msg = re.sub(rf"^{re.escape(param)}\b", option, msg)
    option = options.get(err.param, err.param)
    if option not in msg:
        msg = f"{option}: {msg}"
    return _usage_error(prog, msg)


def write_atomic(path: Path, write: Callable) -> None:
    """Write ``path`` through ``write(binary_file)`` via a temporary file renamed into place."""
    from jaxlm.io.files import atomic_write

    atomic_write(path, write)


class _WriteError(Exception):
    def __init__(self, name: str, error: OSError):
        super().__init__(name, error)
        self.name, self.error = name, error


def _prepare_dir(path: Path) -> None:
    """Create ``path`` if needed and prove that a file can be written in it (raises OSError)."""
    path.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path, prefix=".jaxlm-write-test-")
    os.close(fd)
    os.unlink(tmp)


@contextlib.contextmanager
def _progress(console):
    """A spinner with a changing message on a terminal; silent otherwise. Yields ``update(msg)``."""
    if not console.is_terminal:
        yield lambda message: None
        return
    with console.status("Starting…") as status:
        yield status.update


def _seconds(s: float) -> str:
    if not math.isfinite(s):
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


# --------------------------------------------------------------------------- demo

_DEMO_OPTIONS = {
    "seed": "--seed", "start": "--start", "stop": "--stop", "step": "--step", "noise_sd": "--noise",
    "lr": "--lr", "learning_rate": "--lr", "max_iter": "--max-iter", "tol": "--tol", "out": "--out",
}
_DEMO_FILES = ("data.png", "fit.png", "loss.png", "data.csv", "results.json")


@command("demo", help="the article's Celsius→Fahrenheit study: three fits compared, plots and results",
         description="Fit F = slope·C + intercept to noisy thermometer readings three ways (the statistics "
                     "formula, scikit-learn, JAX gradient descent), print them side by side and write "
                     "data.png, fit.png, loss.png, data.csv and results.json to --out. Exit code 0 when "
                     "gradient descent converged, 1 when it diverged or ran out of --max-iter, 2 for bad input.")
def _demo_command(p: argparse.ArgumentParser) -> Handler:
    default = " (default: %(default)s)"
    p.add_argument("--seed", type=int, default=0, help="seed of the noise, an integer >= 0" + default)
    p.add_argument("--start", type=float, default=-5.0, metavar="C0", help="first reading, °C" + default)
    p.add_argument("--stop", type=float, default=15.0, metavar="C1", help="readings stop below this, °C" + default)
    p.add_argument("--step", type=float, default=0.05, metavar="S", help="spacing of the readings, °C" + default)
    p.add_argument("--noise", type=float, default=3.0, metavar="SD", help="sd of the Gaussian noise, °F" + default)
    p.add_argument("--lr", type=float, default=0.1, help="gradient-descent learning rate" + default)
    p.add_argument("--max-iter", type=_int_arg, default=10_000, metavar="K",
                   help="gradient-descent iteration bound" + default)
    p.add_argument("--tol", type=float, default=None, metavar="T",
                   help="stop when the gradient norm is <= T (default 1e-5 in float32, 1e-10 with --x64)")
    p.add_argument("--x64", action="store_true",
                   help="run gradient descent in float64 (default float32, JAX's default, as in the article)")
    p.add_argument("--out", default="jaxlm-demo", metavar="DIR", help="directory for the plots and results" + default)
    return run_demo


def run_demo(args: argparse.Namespace) -> int:
    from jaxlm import demo, plotting
    from rich.console import Console

    prog = "jaxlm demo"
    try:
        params = demo.check_params(seed=args.seed, start=args.start, stop=args.stop, step=args.step,
                                   noise_sd=args.noise, lr=args.lr, max_iter=args.max_iter, tol=args.tol,
                                   x64=args.x64)
    except InputError as e:
        return _input_error(prog, e, _DEMO_OPTIONS)
    out = Path(args.out)

    def out_error(e: OSError, name: str | None = None) -> int:
        reason = e.strerror or str(e)
        what = f"cannot write {name}: " if name else ""
        return _usage_error(prog, f"--out must be a directory that can be created and written; "
                                  f"got --out {args.out!r}: {what}{reason}.")

    if not args.out:
        return _usage_error(prog, "--out must be a non-empty directory path; got --out ''.")
    try:
        _prepare_dir(out)
    except OSError as e:
        return out_error(e)

    stdout = Console(highlight=False)
    stderr = Console(stderr=True, highlight=False)
    try:
        c, f = demo.make_data(params)
    except InputError as e:
        return _input_error(prog, e, _DEMO_OPTIONS)

    def save(name, write):
        try:
            write_atomic(out / name, write)
        except OSError as e:
            raise _WriteError(name, e) from e

    def save_png(name, fig):
        save(name, lambda fh: fig.savefig(fh, format="png"))

    try:
        # scikit-learn is imported (~2 s) in a second process while JAX compiles in this one.
        with demo.SklearnJob(c, f, subprocess=True) as job, _progress(stderr) as status:
            status("Fitting: closed form")
            cf = demo.fit_closed_form(c, f)
            # XLA compiles without holding the GIL: import matplotlib meanwhile.
            warm = threading.Thread(target=plotting.warm_up, name="jaxlm-warm-matplotlib", daemon=True)
            warm.start()
            status(f"Fitting: gradient descent ({params.dtype}; JAX traces and compiles on the first call)")
            gd = demo.fit_gd(c, f, lr=params.lr, max_iter=params.max_iter, tol=params.tol, dtype=params.dtype)
            status("Plotting data.png and loss.png")
            warm.join()
            save_png("data.png", plotting.plot_data(c, f, demo.IDEAL))
            save_png("loss.png", plotting.plot_loss(
                gd.loss_curve, converged=gd.converged,
                title=f"Gradient descent ({gd.dtype}, lr {gd.learning_rate:g}): {gd.status}, {gd.n_iter} iterations"))
            status("Statistics of the exact fit")
            stats = demo.fit_statistics(c, f)
            status("Fitting: scikit-learn")
            sk = job.result()
            result = demo.assemble(params, c, f, cf, sk, gd, stats)
            status("Writing fit.png, data.csv and results.json")
            labels = {fit.method: fit.label for fit in result.fits}
            labels["gradient_descent"] += f" ({gd.dtype})"
            save_png("fit.png", plotting.plot_fits(
                c, f, {labels[fit.method]: (fit.slope, fit.intercept) for fit in result.fits}, ideal=demo.IDEAL))
            rows = "".join(f"{a!r},{b!r}\n" for a, b in zip(c.tolist(), f.tolist()))
            save("data.csv", lambda fh: fh.write(("celsius,fahrenheit\n" + rows).encode()))
            doc = json.dumps(result.to_json_dict(), indent=2, allow_nan=False) + "\n"
            save("results.json", lambda fh: fh.write(doc.encode()))
    except _WriteError as e:
        return out_error(e.error, e.name)

    _print_demo(stdout, result, out)
    gd = result.gradient_descent
    if gd.diverged:
        print(f"{prog}: gradient descent diverged after {gd.n_iter} iteration(s) with --lr {gd.learning_rate:g} "
              f"(the loss grew or became non-finite); no gradient-descent fit is reported. "
              f"Try a smaller --lr, e.g. --lr 0.1.", file=sys.stderr)
        return EXIT_FAILED
    if not gd.converged:
        print(f"{prog}: gradient descent did not converge within --max-iter {gd.max_iter}: the last gradient "
              f"norm was {gd.grad_norm:.3g} > --tol {gd.tol:g}. Raise --max-iter or --tol.", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


_TABLE_LABELS = {"closed_form": "closed form", "sklearn": "scikit-learn", "gradient_descent": "JAX GD"}


def _print_demo(console, result, out: Path) -> None:
    """The table (fits an 80-column terminal) and the lines under it."""
    from rich.table import Table

    p = result.params
    s0, b0 = result.ideal
    gd = result.gradient_descent
    console.print(f"F = slope·C + intercept fitted to {result.n} readings (C from {p.start:g} by {p.step:g} "
                  f"to <{p.stop:g}, noise sd {p.noise_sd:g}, seed {p.seed}):", soft_wrap=True)
    table = Table()
    table.add_column("method")
    table.add_column("slope", justify="right")
    table.add_column("intercept", justify="right")
    table.add_column(f"error vs ideal\n({s0:g}, {b0:g})", justify="right")
    table.add_column("fit time", justify="right")
    for fit in result.fits:
        label = _TABLE_LABELS[fit.method] + (f" ({gd.dtype})" if fit is gd else "")
        if fit is gd and gd.diverged:
            table.add_row(label, "—", "—", "[bold red]diverged[/]", _seconds(fit.seconds))
            continue
        es, ei = fit.error_vs_ideal
        table.add_row(label, f"{fit.slope:.10g}", f"{fit.intercept:.10g}", f"{es:+.4f}, {ei:+.4f}",
                      _seconds(fit.seconds))
    console.print(table)
    how = (f"lr {gd.learning_rate:g}, {gd.dtype}, tol {gd.tol:g}; first call {_seconds(gd.first_call_seconds)} "
           "including JAX compilation")
    if gd.diverged:
        console.print(f"Gradient descent: [bold red]DIVERGED[/] after {gd.n_iter} iteration(s) ({how}).",
                      soft_wrap=True)
    elif gd.converged:
        console.print(f"Gradient descent: [green]converged[/] in {gd.n_iter} iterations, gradient norm "
                      f"{gd.grad_norm:.3g} <= tol ({how}).", soft_wrap=True)
    else:
        console.print(f"Gradient descent: [bold yellow]NOT CONVERGED[/] after {gd.n_iter} iterations (max-iter "
                      f"{gd.max_iter}), last gradient norm {gd.grad_norm:.3g} > tol ({how}).", soft_wrap=True)
    if gd.diverged:
        console.print("Gradient descent vs closed form: no distance (gradient descent diverged).")
    else:
        d = result.gd_vs_closed_form
        console.print(f"Gradient descent vs closed form: slope differs by {d.slope_abs:.2g} ({d.slope_rel:.2g} "
                      f"relative), intercept by {d.intercept_abs:.2g} ({d.intercept_rel:.2g} relative).",
                      soft_wrap=True)
    if result.statistics is not None:
        from jaxlm.inference import summary

        console.print()
        console.print(str(summary(result.statistics)), highlight=False, markup=False, soft_wrap=True)
    console.print(f"Wrote {', '.join(_DEMO_FILES)} to {out}{os.sep}", soft_wrap=True)


# -- verify: NIST StRD certification ---------------------------------------------------------

@command("verify", help="fit the NIST StRD linear regression datasets and compare with the certified values",
         description="Fit the 11 NIST StRD linear least-squares datasets and print the correct digits (LRE) of "
                     "the worst coefficient, the worst parameter standard deviation, the residual SD and R², "
                     "against the bars: >= 10 digits (Filip >= 7, the limit of a float64 design). Exit code 1 if "
                     "any dataset fails.")
def _verify_command(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("--solver", default="auto", choices=["auto", "cholesky", "qr", "svd"],
                   help="exact solver to certify (default: auto)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    return run_verify


def run_verify(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from jaxlm.nist import verify

    rows = verify(solver=args.solver)
    if args.json:
        print(json.dumps([dict(r._asdict(), passed=r.passed) for r in rows], indent=1))
    else:
        table = Table(title=f"NIST StRD, solver={args.solver!r}: correct digits (LRE, max 15)")
        for col in ("dataset", "difficulty", "coef", "coef SD", "resid SD", "R²", "needs", "solver", "result"):
            table.add_column(col, justify="left" if col in ("dataset", "difficulty", "solver") else "right")
        for r in rows:
            table.add_row(r.dataset, r.difficulty, f"{r.coef_digits:.1f}", f"{r.sd_digits:.1f}",
                          f"{r.residual_sd_digits:.1f}", f"{r.r_squared_digits:.1f}", f">= {r.required:g}", r.solver,
                          "[green]pass[/]" if r.passed else "[bold red]FAIL[/]")
        Console(width=None if sys.stdout.isatty() else 100).print(table)
    return EXIT_OK if all(r.passed for r in rows) else EXIT_FAILED


# -- fit / predict: files in and out (jaxlm.cli_data) ----------------------------------------

def _cli_data():
    from jaxlm import cli_data

    return cli_data


@command("fit", help="fit a linear model to a CSV/Parquet/Arrow file (streamed, bounded memory)",
         description="Fit a linear model to a table file, streamed in record batches; print the summary.")
def _fit_command(p: argparse.ArgumentParser) -> Handler:
    return _cli_data().configure_fit(p)


@command("predict", help="predict from a saved model file for the rows of a table file",
         description="Write predictions (and optional intervals) for the rows of a table file.")
def _predict_command(p: argparse.ArgumentParser) -> Handler:
    return _cli_data().configure_predict(p)
