"""The ``jaxlm`` command line: ``main(argv) -> exit code`` and ``run()`` (the console script).

Subcommands: ``demo`` (:mod:`.demo`), ``verify`` (:mod:`.verify`), ``fit`` and ``predict``
(:mod:`.fit`). Nothing in the library imports this package.
"""
from .main import COMMANDS, Terminated, build_parser, main, run

__all__ = ["COMMANDS", "Terminated", "build_parser", "main", "run"]
