"""What the ``jaxlm`` subcommands share: exit codes, the one-line error, signals, small parsers."""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

from jaxlm.core.errors import InputError
from jaxlm.core.text import printable

Handler = Callable[[argparse.Namespace], int]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _printable(text) -> str:
    """``text`` with control characters escaped (``\\x1b``): :func:`jaxlm.core.text.printable`."""
    return printable(text)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage block) and exit code 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_printable(message)} (see '{self.prog} --help')\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while a command ran (``signum``: which)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _importing(frame) -> bool:
    """Whether ``frame`` runs inside an import (a module being loaded or executed)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def _signals_interrupt():
    """While the block runs, SIGTERM and SIGHUP raise :class:`Terminated` and SIGINT
    ``KeyboardInterrupt`` in the main thread (once: a repeat while cleaning up is ignored); the
    previous handlers are restored afterwards. Off the main thread (where handlers cannot be set)
    this does nothing.

    A signal that arrives while a module is being imported is raised as soon as the import is
    over (it is delivered again every 10 ms until then): an exception raised inside an import may
    be swallowed by the code that asked for it. pyarrow's first conversion to NumPy imports
    pandas from C++ and ignores its failure, so a Ctrl-C or SIGTERM in that window was lost and
    the command ran on to the end.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised, pending = [], []

    main_id = threading.main_thread().ident

    def redeliver(signum):  # to the main thread: it wakes from a blocking call to handle it
        if pending and not raised:
            if hasattr(signal, "pthread_kill"):
                signal.pthread_kill(main_id, signum)
            else:  # pragma: no cover - Windows
                signal.raise_signal(signum)

    def handler(signum, frame):
        if raised:
            return
        if _importing(frame):
            timer = threading.Timer(0.01, redeliver, args=(signum,))
            timer.daemon = True
            pending[:] = [timer]
            timer.start()
            return
        pending.clear()
        raised.append(signum)
        raise KeyboardInterrupt if signum == getattr(signal, "SIGINT", None) else Terminated(signum)

    previous = {}
    for name in ("SIGTERM", "SIGHUP", "SIGINT"):
        sig = getattr(signal, name, None)
        if sig is None or (name == "SIGINT" and signal.getsignal(sig) is not signal.default_int_handler):
            continue
        with contextlib.suppress(OSError, ValueError):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for timer in pending:
            timer.cancel()
        pending.clear()
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


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
    """The one-line error on stderr (:func:`jaxlm.cli._messages.clean_message`); exit code 2."""
    from ._messages import clean_message

    print(f"{prog}: error: {clean_message(message)}", file=sys.stderr)
    return EXIT_USAGE


class _Usage(Exception):
    """A command-line error already phrased in terms of options."""


def dropped_text(fit, show=str) -> str:
    """``"; dropped N rows with missing values (col: k, ...; --missing drop)"`` for a streamed fit
    that dropped rows, else ``""`` (``show`` makes a column name printable)."""
    if not fit.n_dropped:
        return ""
    parts = ", ".join(f"{show(c)}: {k:,}" for c, k in fit.dropped_by_column.items())
    return f"; dropped {fit.n_dropped:,} rows with missing values ({parts}; --missing drop)"


def _status(message: str) -> None:
    """A status line or note on stderr (not the result, which goes to stdout)."""
    print(_printable(message), file=sys.stderr)


def _guard(prog: str, options: dict, run: Callable[[], int]) -> int:
    """Run a command body; bad input becomes one line on stderr and exit code 2."""
    from ._messages import translate

    try:
        return run()
    except InputError as e:
        return _usage_error(prog, translate(str(e), options, e.param))
    except _Usage as e:
        return _usage_error(prog, str(e))
    except MemoryError:
        return _usage_error(prog, "out of memory; a streamed fit needs a few row groups of memory: write the Parquet "
                                  "file with smaller row groups, or use fewer columns.")
    except OSError as e:
        where = f" {e.filename!r}" if getattr(e, "filename", None) else ""
        return _usage_error(prog, f"cannot read or write{where}: {e.strerror or e}.")


def _same_file(out: Path, data) -> bool:
    """Whether the output path ``out`` is the existing file ``data``."""
    try:
        return out.exists() and Path(os.fspath(data)).exists() and os.path.samefile(out, os.fspath(data))
    except (OSError, TypeError):
        return False


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


def _unit_interval(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1); got {text!r}") from None
    if not (0.0 < v < 1.0):
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1); got {text!r}")
    return v


def _limit_arg(text: str) -> tuple[str, int]:
    """``NAME=N`` of --limit (the name and value are checked with the limits themselves)."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value.strip().isdigit():
        raise argparse.ArgumentTypeError(f"must be NAME=N with N a positive integer, e.g. max_features=5000; got "
                                         f"{text!r}")
    return name.strip(), int(value)
