"""Explicit dtype and matmul precision, scoped (never a global ``jax.config`` flip); JAX on demand.

JAX is imported the first time jaxlm uses it, not when jaxlm is imported: the host path (NumPy
arrays, BLAS) never needs it, and a command-line fit of a small file would otherwise spend most
of its time importing it. Core modules reach JAX through the module proxies :data:`jax` and
:data:`jnp` (``from .precision import jax, jnp``), build their jitted functions with
:func:`lazy_jit` and test for JAX arrays without importing JAX: a JAX array can only exist once
the caller has imported JAX.

:func:`x64_scope` entered before JAX is imported switches JAX's (thread-local, scoped) x64 mode
on the first time a proxy is used inside it, so float64 stays float64 however late JAX arrives.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import sys
import threading

import numpy as np

from .errors import check_choice

DTYPES = ("float64", "float32")
#: Matmul precision used by every jaxlm dot product (JAX's default may be TF32/bf16 on GPUs): the
#: name of ``jax.lax.Precision.HIGHEST``, which JAX accepts wherever it takes a precision.
MATMUL_PRECISION = "highest"


def check_dtype(dtype) -> str:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    return check_choice("dtype", name, DTYPES)


# ----------------------------------------------------------------------------- x64 scopes

_scopes = threading.local()


def _pending() -> list:
    stack = getattr(_scopes, "stack", None)
    if stack is None:
        stack = _scopes.stack = []
    return stack


class _DeferredX64:
    """``x64_scope("float64")`` entered while JAX was not imported yet: JAX's x64 mode is
    switched on by :func:`_activate_x64` when a proxy is first used inside it (attached to the
    outermost such scope of this thread, so it lasts until that scope exits)."""

    def __init__(self):
        self.inner = None
        self.active = False

    def __enter__(self):
        _pending().append(self)
        return self

    def __exit__(self, *exc):
        stack = _pending()
        if stack and stack[-1] is self:
            stack.pop()
        if self.inner is not None:
            inner, self.inner = self.inner, None
            return inner.__exit__(*exc)
        return False


def _activate_x64() -> None:
    stack = getattr(_scopes, "stack", None)
    if not stack or stack[0].active:
        return
    ctx = importlib.import_module("jax").enable_x64(True)
    ctx.__enter__()
    stack[0].inner = ctx
    for scope in stack:
        scope.active = True


def x64_scope(dtype: str):
    """Context in which JAX arrays of ``dtype`` can be made.

    ``jax.enable_x64`` is a thread-local, scoped setting: it does not change the global
    configuration seen by the caller's own JAX code. Before JAX is imported nothing is switched
    yet (the host path needs no JAX); the first use of :data:`jax` or :data:`jnp` in the scope
    switches it on.
    """
    if dtype != "float64":
        return contextlib.nullcontext()
    if "jax" in sys.modules:
        return sys.modules["jax"].enable_x64(True)
    return _DeferredX64()


# ----------------------------------------------------------------------------- JAX on demand

class LazyModule:
    """A module imported on first attribute access (``LazyModule("scipy.linalg").solve_triangular``)."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str):
        self._name = name
        self._module = None

    def _load(self):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self._load(), attr)

    def __repr__(self):
        return f"<lazy module {self._name!r}{' (imported)' if self._module is not None else ''}>"


class _JaxModule(LazyModule):
    """:class:`LazyModule` for JAX: also switches on a pending :func:`x64_scope`, and answers
    ``tree_util.tree_map`` without importing JAX while JAX is not imported (then no leaf can
    be a JAX array)."""

    __slots__ = ()

    def __getattr__(self, attr):
        if attr == "tree_util" and "jax" not in sys.modules:
            return _HOST_TREE_UTIL
        if attr.startswith("__"):
            raise AttributeError(attr)
        module = self._load()
        _activate_x64()
        return getattr(module, attr)


def tree_map(f, tree, *rest):
    """``jax.tree_util.tree_map`` over tuples, named tuples, lists, dicts and None (an empty
    subtree), without JAX (for trees of NumPy arrays and scalars)."""
    if tree is None:
        return None
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(tree_map(f, *xs) for xs in zip(tree, *rest)))
    if isinstance(tree, (tuple, list)):
        return type(tree)(tree_map(f, *xs) for xs in zip(tree, *rest))
    if isinstance(tree, dict):
        return {k: tree_map(f, tree[k], *(r[k] for r in rest)) for k in sorted(tree)}
    return f(tree, *rest)


class _HostTreeUtil:
    tree_map = staticmethod(tree_map)


_HOST_TREE_UTIL = _HostTreeUtil()

#: ``jax`` and ``jax.numpy``, imported on first use
jax = _JaxModule("jax")
jnp = _JaxModule("jax.numpy")


def lazy_jit(fun, **options):
    """``jax.jit(fun, **options)``, built (and JAX imported) on the first call."""

    @functools.cache
    def compiled():
        return jax.jit(fun, **options)

    @functools.wraps(fun)
    def call(*args, **kwargs):
        return compiled()(*args, **kwargs)

    return call


#: installed packages through which JAX may find an accelerator (PJRT plugins, TPU runtime)
_ACCELERATOR_MODULES = ("jax_plugins", "jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin",
                        "jax_rocm7_plugin", "libtpu")


@functools.cache
def _accelerator_installed() -> bool:
    if os.environ.get("JAX_PLATFORMS", "").strip().lower() in ("cpu",) or \
            os.environ.get("JAX_PLATFORM_NAME", "").strip().lower() == "cpu":
        return False
    return any(importlib.util.find_spec(name) is not None for name in _ACCELERATOR_MODULES)


def on_accelerator() -> bool:
    """Whether JAX's default backend is an accelerator (GPU, TPU). Without an accelerator
    plugin installed and JAX not yet imported, False without importing JAX."""
    if "jax" not in sys.modules and not _accelerator_installed():
        return False
    return jax.default_backend() != "cpu"
