"""The ``jaxlm`` command line.

Each subcommand is a module of this package with ``HELP``, ``DESCRIPTION`` and
``configure(parser) -> handler``: it adds its options to its own ``argparse`` parser and returns
the handler that runs it (``handler(args) -> exit code``). :data:`COMMANDS` lists them.

Exit codes: 0 success; 1 the command ran but its result is not good (e.g. gradient descent
diverged or did not converge); 2 bad input (one line on stderr naming the option, the rule and
the value received); 130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP).
Python warnings raised while a command runs are one line each on stderr, ``jaxlm <command>:
warning: <message>``, in the command's terms, also under ``--quiet``
(:func:`jaxlm.cli._messages.cli_warnings`).
SIGTERM and SIGHUP are handled like Ctrl-C while a command runs (they raise
:class:`Terminated`, a ``KeyboardInterrupt``), so that its temporary files are removed and no
partial output is left; the previous handlers are restored afterwards.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import signal
import sys
from typing import NoReturn

import jaxlm

from . import demo, fit, predict, table, verify
from ._common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Terminated, _Parser,
                      _signals_interrupt)

__all__ = ["COMMANDS", "Terminated", "build_parser", "main", "run"]

#: name -> the module that configures and runs it (HELP, DESCRIPTION, configure)
COMMANDS = {"demo": demo, "verify": verify, "fit": fit.FIT, "predict": predict.PREDICT, "table": table.TABLE}


class _Version(argparse.Action):
    """``--version``: prints ``jaxlm X.Y.Z`` (the version is looked up only then)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show program's version number and exit"):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser._print_message(f"jaxlm {jaxlm.__version__}\n", sys.stdout)
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxlm", description=jaxlm.__doc__,
                     epilog="Run 'jaxlm <command> --help' for a command's options.")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.HELP, description=cmd.DESCRIPTION or cmd.HELP)
        p.set_defaults(handler=cmd.configure(p))
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
    from ._messages import cli_warnings

    options = getattr(COMMANDS.get(args.command), "OPTIONS", None)
    try:
        with _signals_interrupt(), cli_warnings(f"jaxlm {args.command}", options=options):
            return args.handler(args)
    except Terminated as e:
        name = signal.Signals(e.signum).name
        print(f"jaxlm {args.command}: terminated by {name}; no partial output was left", file=sys.stderr)
        return 128 + e.signum
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
