"""Shared test helpers."""
import os
import tempfile
from pathlib import Path

import jaxlm

# The gradient solvers' compiled-program cache (jaxlm.core.gradient.cache_dir) of the test session
# and its subprocesses: a fresh directory, never the user's ~/.cache/jaxlm.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="jaxlm-test-cache-")


def subprocess_env() -> dict:
    """Environment for a subprocess that must import the same jaxlm as this test session."""
    env = dict(os.environ)
    src = str(Path(jaxlm.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.pop("COLUMNS", None)
    return env
