"""How the ``jaxlm`` commands word what they print on stderr: errors, warnings and notes.

Every message is one line, in the terms of the command line: a library parameter written
``max_iter=5`` reads ``--max-iter 5``; NumPy scalars read as plain numbers (``np.float64(1.0)``
-> ``1.0``); a list cut short ends ", and others" rather than " ...."; control characters from
the data are escaped. Python warnings raised while a command runs (a RankWarning, a gradient
solver's ConvergenceWarning) are printed by :func:`cli_warnings` as ``jaxlm fit: warning:
<message>``, once each, without the file path and source line that Python's default display
adds. ``--quiet`` does not silence them: they say that the result is not what was asked for
(a rank-deficient design, a solver that stopped early), and a warning on stderr is the only
place a script sees that.
"""
from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Iterator

from jaxlm.core.text import printable

__all__ = ["clean_message", "cli_warnings", "translate"]

#: library parameters that are spelled as options in every command's messages
COMMON_OPTIONS = {"max_iter": "--max-iter", "tol": "--tol", "learning_rate": "--learning-rate", "solver": "--solver"}
#: the default gradient tolerance (``jaxlm.core.gradient.DEFAULT_TOL["float64"]``; checked by a test)
DEFAULT_TOL = 1e-10

_NP_SCALAR = re.compile(r"\bnp\.(?:float(?:16|32|64|128)?|u?int(?:8|16|32|64)?|bool_?|str_|longdouble)\("
                        r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^()'\"]*)\)")
_CUT_LIST = re.compile(r" \.\.\.(?=[.)\];,]|$)")


def clean_message(text) -> str:
    """One printable line: whitespace runs collapsed, NumPy scalar reprs as plain values, a cut
    list ended with ", and others"."""
    text = " ".join(str(text).split())
    text = _NP_SCALAR.sub(lambda m: m[1], text)
    text = _CUT_LIST.sub(", and others", text)
    return printable(text)


def translate(msg: str, options: dict, param: str | None = None) -> str:
    """``msg`` in command-line terms: ``param=value`` -> ``--option value`` for every library
    parameter in ``options`` (library name -> option), a message starting with ``param`` starts
    with its option, and a message about ``param`` that names no option is prefixed with it."""
    for p, option in sorted(options.items(), key=lambda kv: -len(kv[0])):
        msg = re.sub(rf"(?<![\w-]){re.escape(p)}=", f"{option} ", msg)
    if param is None:
        return msg
    option = options.get(param, param)
    msg = re.sub(rf"^{re.escape(param)}\b", option, msg)
    if not msg.startswith(option):
        msg = f"{option}: {msg}"
    return msg


def warning_text(message, options: dict | None = None) -> str:
    """A warning's message in command-line terms: the gradient solver's parameters as options
    (``tol=default`` -> ``--tol 1e-10 (the default)``; "Increase max_iter or tol" -> "Increase
    --max-iter or --tol"), then :func:`clean_message`."""
    opts = {**COMMON_OPTIONS, **(options or {})}
    text = str(message).replace("tol=default", f"tol={DEFAULT_TOL:g} (the default)")
    text = translate(text, opts)
    for name in ("max_iter", "learning_rate", "tol"):  # the names alone, as in "Increase max_iter or tol"
        text = re.sub(rf"(?<![\w.-]){name}\b(?![=(])", opts[name], text)
    return clean_message(text)


@contextlib.contextmanager
def cli_warnings(prog: str, *, options: dict | None = None) -> Iterator[list]:
    """While the block runs, each Python warning is one line on stderr, ``<prog>: warning: <text>``
    (:func:`warning_text`; each text once). The filters in force are kept (a warning that is
    ignored stays ignored). Yields the list of texts shown."""
    shown: list[str] = []

    def show(message, category, filename, lineno, file=None, line=None):
        text = warning_text(message, options)
        if text not in shown:
            shown.append(text)
            print(f"{prog}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield shown
