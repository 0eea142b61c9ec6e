"""Writing files so that an interrupted or failed run leaves no partial file.

:func:`atomic_path` / :func:`atomic_write` write one file through a temporary file renamed
into place. :class:`OutputGroup` does the same for the several outputs of one command (a
model file and its plots): all of them appear, or none does.

Interrupts (Ctrl-C; SIGTERM and SIGHUP, which the CLI turns into exceptions) can arrive
between any two steps. So a temporary file's name is recorded *before* the file is created
(``O_EXCL``, a fresh random name), never after: whatever the moment, the cleanup knows every
file this module made.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable, Iterator


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fresh_name(path: Path, kind: str = "tmp") -> str:
    """A hidden name next to ``path`` (same directory, so a rename is atomic) not yet in use (48
    random bits)."""
    directory = path.parent if str(path.parent) else Path(".")
    return os.fspath(directory / f".{path.name}.{secrets.token_hex(6)}.{kind}")


def _create(name: str) -> None:
    """Create ``name`` as an empty file readable by its owner only; FileExistsError if it exists."""
    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


@contextlib.contextmanager
def atomic_path(path) -> Iterator[str]:
    """Yield a temporary path in ``path``'s directory; on success it is renamed onto ``path``
    (``os.replace``: readers see the old file or the new one, never a part), on any error or
    interrupt it is removed. Raises OSError if the directory cannot be written."""
    path = Path(path)
    tmp = None
    try:
        while True:
            tmp = _fresh_name(path)  # known before the file exists
            try:
                _create(tmp)
                break
            except FileExistsError:  # not ours: another name
                tmp = None
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def atomic_write(path, write: Callable) -> None:
    """Write ``path`` through ``write(binary_file)``, atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)


class OutputGroup:
    """The outputs of one command, which appear together or not at all.

    Every output is first written to a temporary file next to it (:meth:`reserve`); nothing is
    renamed until the ``with`` block ends without an error. Then each temporary is renamed onto
    its path. If the block raises (a full disk, an interrupt), the temporaries are removed and no
    path is touched. If a rename fails or is interrupted part-way, the paths already renamed are
    put back as they were: the previous file restored (kept meanwhile as a hard link, or a copy),
    or the new one removed where there was none.

    >>> with OutputGroup() as out:                                   # doctest: +SKIP
    ...     Path(out.reserve("a.txt")).write_text("a")
    ...     Path(out.reserve("b.txt")).write_text("b")
    """

    def __init__(self):
        self._pending: list[tuple[str, Path]] = []

    def reserve(self, path) -> str:
        """A temporary path to write ``path``'s content to (by any means, even a rename onto it)."""
        path = Path(path)
        while True:
            tmp = _fresh_name(path)
            self._pending.append((tmp, path))  # recorded before it exists
            try:
                _create(tmp)
                return tmp
            except FileExistsError:  # not ours: another name
                self._pending.pop()

    def __enter__(self) -> OutputGroup:
        return self

    def __exit__(self, kind, error, tb) -> bool:
        if kind is None:
            self._commit()
        else:
            self._discard()
        return False

    def _discard(self) -> None:
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._pending = []

    def _commit(self) -> None:
        steps: list[list] = []  # [path, name of the kept previous file or None, rename started]
        try:
            mode = 0o666 & ~_umask()
            for tmp, path in self._pending:
                step = [path, None, False]
                steps.append(step)
                if path.is_file():
                    step[1] = _fresh_name(path, "old")
                    _keep(path, step[1])
                os.chmod(tmp, mode)
                step[2] = True  # set before the rename: if interrupted right after it, it is still undone
                os.replace(tmp, path)
        except BaseException:
            for path, kept, renamed in reversed(steps):
                with contextlib.suppress(OSError):
                    if renamed:
                        if kept is not None:
                            os.replace(kept, path)
                        else:
                            os.unlink(path)
                    elif kept is not None:
                        os.unlink(kept)
            self._discard()
            raise
        self._pending = []
        for _, kept, _ in steps:
            if kept is not None:
                with contextlib.suppress(OSError):
                    os.unlink(kept)


def _keep(path: Path, name: str) -> None:
    """A second name for ``path``'s current content: a hard link, else (no hard links on this file
    system) a copy, removed again if the copy fails."""
    try:
        os.link(path, name)
    except OSError:
        try:
            shutil.copy2(path, name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
