"""Shared test helpers."""
import os
from pathlib import Path

import jaxlm


def subprocess_env() -> dict:
    """Environment for a subprocess that must import the same jaxlm as this test session."""
    env = dict(os.environ)
    src = str(Path(jaxlm.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.pop("COLUMNS", None)
    return env
