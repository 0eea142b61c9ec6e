"""Explicit dtype and matmul precision, scoped (never a global ``jax.config`` flip)."""
from __future__ import annotations

import contextlib

import jax
import numpy as np

from .errors import check_choice

DTYPES = ("float64", "float32")
#: Matmul precision used by every jaxlm dot product (JAX's default may be TF32/bf16 on GPUs).
MATMUL_PRECISION = jax.lax.Precision.HIGHEST


def check_dtype(dtype) -> str:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    return check_choice("dtype", name, DTYPES)


def x64_scope(dtype: str):
    """Context in which JAX arrays of ``dtype`` can be made.

    ``jax.enable_x64`` is a thread-local, scoped setting: it does not change the
    global configuration seen by the caller's own JAX code.
    """
    if dtype == "float64":
        return jax.enable_x64(True)
    return contextlib.nullcontext()
