"""``jaxlm verify``: fit the NIST StRD datasets and compare with the certified values."""
from __future__ import annotations

import argparse
import json
import sys

from ._common import EXIT_FAILED, EXIT_OK, Handler


HELP = "fit the NIST StRD linear regression datasets and compare with the certified values"
DESCRIPTION = ("Fit the 11 NIST StRD linear least-squares datasets and print the correct digits (LRE) of "
                     "the worst coefficient, the worst parameter standard deviation, the residual SD and R², "
                     "against the bars: >= 10 digits (Filip >= 7, the limit of a float64 design). Exit code 1 if "
                     "any dataset fails.")


def configure(p: argparse.ArgumentParser) -> Handler:
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
