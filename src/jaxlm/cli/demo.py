"""``jaxlm demo``: the article's Celsius→Fahrenheit study, three fits compared, plots and results."""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import threading
from pathlib import Path

from jaxlm.core.errors import InputError

from ._common import (EXIT_FAILED, EXIT_OK, Handler, _WriteError, _input_error, _int_arg, _prepare_dir, _progress,
                      _seconds, _usage_error)


_DEMO_OPTIONS = {
    "seed": "--seed", "start": "--start", "stop": "--stop", "step": "--step", "noise_sd": "--noise",
    "lr": "--lr", "learning_rate": "--lr", "max_iter": "--max-iter", "tol": "--tol", "out": "--out",
}
_DEMO_FILES = ("data.png", "fit.png", "loss.png", "data.csv", "results.json")


HELP = "the article's Celsius→Fahrenheit study: three fits compared, plots and results"
DESCRIPTION = ("Fit F = slope·C + intercept to noisy thermometer readings three ways (the statistics "
                     "formula, scikit-learn, JAX gradient descent), print them side by side and write "
                     "data.png, fit.png, loss.png, data.csv and results.json to --out. Exit code 0 when "
                     "gradient descent converged, 1 when it diverged or ran out of --max-iter, 2 for bad input.")


@contextlib.contextmanager
def _no_collection():
    """The garbage collector off while matplotlib is imported in a thread beside XLA's compile.

    Loading one of matplotlib's extension modules (``dlopen``) holds the dynamic loader's lock, and its
    static initialisers allocate Python objects; a collection triggered there runs JAX's
    ``gc.callbacks`` (Python code), which gives the GIL to the main thread, whose MLIR verifier keeps
    it while waiting for LLVM threads that need the loader's lock: ``jaxlm demo`` hung (seen in
    ``tests/test_cli.py``, gdb: the warm-up thread in ``ft2font``'s initialiser under ``dlopen``).
    With no collection nothing runs Python code under the loader's lock. Restored afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def configure(p: argparse.ArgumentParser) -> Handler:
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
    from jaxlm import demo
    from jaxlm.plotting import study as plotting
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

    from jaxlm.io.files import OutputGroup

    outputs = OutputGroup()  # the five files appear together, or none does

    def save(name, write):
        try:
            with open(outputs.reserve(out / name), "wb") as fh:
                write(fh)
        except OSError as e:
            raise _WriteError(name, e) from e

    def save_png(name, fig):
        save(name, lambda fh: fig.savefig(fh, format="png"))

    try:
        # scikit-learn is imported (~2 s) in a second process while JAX compiles in this one.
        with outputs, demo.SklearnJob(c, f, subprocess=True) as job, _progress(stderr) as status:
            status("Fitting: closed form")
            cf = demo.fit_closed_form(c, f)
            # XLA compiles without holding the GIL: import matplotlib meanwhile (JAX first: importing
            # both at once races on NumPy's type tables, which JAX's dtypes extend)
            import jaxlm.core.gradient  # noqa: F401

            with _no_collection():
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
    except OSError as e:  # renaming the files into place (nothing is left if one fails)
        target = getattr(e, "filename2", None)
        return out_error(e, Path(target).name if target else None)

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
