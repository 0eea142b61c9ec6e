"""Writing files so that an interrupted run leaves no partial file."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path) -> Iterator[str]:
    """Yield a temporary path in ``path``'s directory; on success it is renamed onto ``path``
    (``os.replace``: readers see the old file or the new one, never a part), on any error it is
    removed. Raises OSError if the directory cannot be written."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path, write: Callable) -> None:
    """Write ``path`` through ``write(binary_file)``, atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
