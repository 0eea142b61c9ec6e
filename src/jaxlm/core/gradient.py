"""Gradient road: a least-squares loss written once, differentiated by ``jax.grad``,
stepped inside one jitted ``lax.while_loop`` (plain steps for "gd", optax for "lbfgs"/"adam").

Data are standardised first, on the host in float64, and the result is mapped back with the
exact inverse (the formulas of :mod:`jaxlm.core.standardize`). The loop stops when the
gradient norm of the standardised loss falls to ``tol`` (converged), when the loss becomes
non-finite or grows a million-fold over its starting value (diverged), or after ``max_iter`` steps.

Loss, in standardised units, per output k and averaged over outputs, with the intercept as
the last row of the parameters ``P`` (k = d + 1) and a column of ones appended to x̃::

    L(P) = mean_k [ Σ_i w_i (ỹ_ik − x̃_i·P_k)² + α Σ_j (P_jk / σx_j)² ] / Σ_i w_i

which is sklearn's ``Ridge`` objective ``‖y − Xβ − β0‖² + α‖β‖²`` rescaled by a constant,
so its minimiser is the exact (ridge) least-squares solution.

Compilation. The loop is one small XLA program per (method, dtype, shapes, max_iter, batch
size). It is compiled once per process and kept, serialised by XLA, in a persistent cache
directory (:func:`cache_dir`: ``$XDG_CACHE_HOME/jaxlm/xla`` or ``~/.cache/jaxlm/xla``; set
``JAXLM_NO_COMPILE_CACHE=1`` to turn it off), so that later processes load it instead of
compiling it again. The cache is jaxlm's own: JAX's global configuration is never touched.
Each entry carries a SHA-256 of its contents; a missing, unreadable, unwritable, foreign or
corrupt entry is ignored and the program compiled afresh. A loaded entry is machine code:
like JAX's own cache the directory must be trusted, so it is only used when it belongs to the
user and nobody else can write to it.

Data near the ends of the float64 range (|x| ~ 1e200, weights ~ 1e300, subnormal values)
are first rescaled per column by powers of two (exact; :func:`jaxlm.core.state.magnitude_units`)
and the coefficients mapped back exactly, or refused with an InputError when they are
themselves beyond float64. With an intercept, a column that holds a single float64 value is
reported as aliased (``rank`` < d): its coefficient is 0.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import platform
import tempfile
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import state as st
from .errors import InputError, check_choice, check_nonnegative, check_positive, check_positive_int
from .precision import MATMUL_PRECISION, check_dtype, x64_scope
from .ranges import ridge_in_units, to_data_units
from .solution import Solution

METHODS = ("gd", "lbfgs", "adam")
#: Default gradient-norm tolerance per dtype (standardised units).
DEFAULT_TOL = {"float64": 1e-10, "float32": 1e-5}
DEFAULT_LR = {"gd": 0.1, "adam": 0.01, "lbfgs": None}
#: The loss may grow to this multiple of its starting value before the run is declared diverged.
DIVERGENCE_FACTOR = 1e6


#: Adam's rate halves every this many epochs (at least ``ADAM_MIN_HALFLIFE`` steps): minibatch
#: noise keeps a constant-rate Adam at a distance ~rate from the optimum.
ADAM_HALFLIFE_EPOCHS = 20
ADAM_MIN_HALFLIFE = 1000

#: XLA options per platform: the CPU's classic fusion emitters compile this loop in about half
#: the time of the newer MLIR ones, to the same results (measured: benchmarks/bench_demo.py).
COMPILER_OPTIONS = {"cpu": {"xla_cpu_use_fusion_emitters": False}}
#: Environment variable that turns the persistent cache off when set to anything but "" or "0".
NO_CACHE_ENV = "JAXLM_NO_COMPILE_CACHE"
_MAGIC = b"JAXLMX01"
_MAX_ENTRY_BYTES = 256 << 20
_MAX_ENTRIES = 64

#: Programs of this process: signature -> callable returning the loop's outputs.
_programs: dict = {}
#: How each program of this process was obtained (tests read it): "compiled" / "loaded" counts.
stats = {"compiled": 0, "loaded": 0}


def _loss(P, Xa, Ys, wn, penn):
    """Weighted mean squared residual plus ridge, averaged over outputs (weights wn sum to 1)."""
    r = Ys - jnp.matmul(Xa, P, precision=MATMUL_PRECISION)
    sse = jnp.matmul(wn, r * r, precision=MATMUL_PRECISION)
    return jnp.mean(sse + jnp.matmul(penn, P * P, precision=MATMUL_PRECISION))


def _optimizer(method: str, lr, epoch: int = 1):
    import optax  # only the lbfgs and adam loops need it

    if method == "adam":
        halflife = max(ADAM_MIN_HALFLIFE, ADAM_HALFLIFE_EPOCHS * epoch)
        return optax.adam(optax.exponential_decay(lr, transition_steps=halflife, decay_rate=0.5))
    return optax.lbfgs(learning_rate=lr)


def _loop(Xa, Ys, wn, penn, lr, tol, loss0, seed, *, method, max_iter, batch_size):
    """Run the optimizer from P = 0: (P, steps, final gradient norm, diverged, loss per pass)."""
    n, k = Xa.shape
    dtype = Xa.dtype
    full = partial(_loss, Xa=Xa, Ys=Ys, wn=wn, penn=penn)
    P0 = jnp.zeros((k, Ys.shape[1]), dtype)
    opt = None if method == "gd" else _optimizer(method, lr, max(1, n // max(batch_size, 1)))

    # Each pass evaluates the loss and gradient at the current point and steps only while the
    # point is neither converged, diverged nor at the iteration bound; so the loop ends having
    # measured its final point (no second copy of the gradient program after the loop).
    def body(c):
        P, opt_state, it, _, _, losses, key, _ = c
        if method == "lbfgs":
            import optax

            value, g = optax.value_and_grad_from_state(full)(P, state=opt_state)
            upd, opt_state = opt.update(g, opt_state, P, value=value, grad=g, value_fn=full)
        elif method == "adam":
            key, sub = jax.random.split(key)
            idx = jax.random.randint(sub, (batch_size,), 0, n)
            wb = wn[idx]
            gb = jax.grad(_loss)(P, Xa[idx], Ys[idx], wb / jnp.sum(wb), penn)
            value, g = jax.value_and_grad(full)(P)
            upd, opt_state = opt.update(gb, opt_state, P)
        else:
            value, g = jax.value_and_grad(full)(P)
            upd = -lr * g  # optax.sgd's update, without its tree machinery
        gnorm = jnp.sqrt(jnp.sum(g * g))
        diverged = ~jnp.isfinite(value) | ~jnp.isfinite(gnorm) | (value > DIVERGENCE_FACTOR * loss0)
        step = ~((gnorm <= tol) | diverged | (it >= max_iter))
        P = jnp.where(step, P + upd, P)
        return P, opt_state, it + step.astype(it.dtype), gnorm, diverged, losses.at[it].set(value), key, step

    key = jax.random.key(seed) if method == "adam" else np.uint32(0)
    c0 = (P0, () if opt is None else opt.init(P0), np.int32(0), np.asarray(np.inf, dtype), np.bool_(False),
          jnp.full((max_iter + 1,), jnp.nan, dtype), key, np.bool_(True))
    P, _, it, gnorm, diverged, losses, _, _ = jax.lax.while_loop(lambda c: c[-1], body, c0)
    return P, it, gnorm, diverged, losses


#: The whole device program (also what tests inspect); fit_gradient compiles it ahead of time.
_fit = jax.jit(_loop, static_argnames=("method", "max_iter", "batch_size"), keep_unused=True)


# --------------------------------------------------------------------------- persistent cache


def cache_dir() -> Path | None:
    """The directory of jaxlm's compiled programs, or None when ``JAXLM_NO_COMPILE_CACHE`` is set.

    ``$XDG_CACHE_HOME/jaxlm/xla`` when ``XDG_CACHE_HOME`` is an absolute path, else
    ``~/.cache/jaxlm/xla``.
    """
    if os.environ.get(NO_CACHE_ENV, "").strip() not in ("", "0"):
        return None
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "jaxlm" / "xla"


def _trusted_dir(path: Path) -> bool:
    """Create ``path`` (mode 0700) if needed; True when it is ours and nobody else may write to it."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError:
        return False
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
        return False
    return os.access(path, os.R_OK | os.X_OK)


def _cpu_flags() -> str:
    """The host CPU's feature flags (Linux), so that a shared home never loads foreign code."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.startswith(("flags", "Features")):
                return line.strip()
    return platform.processor()


@functools.lru_cache(maxsize=None)
def _environment(device) -> str | None:
    """Everything besides the signature that a compiled program depends on, or None if unknown."""
    try:
        import jaxlib

        config = tuple(getattr(jax.config, name, None) for name in (
            "jax_default_prng_impl", "jax_threefry_partitionable", "jax_default_matmul_precision"))
        return repr((_MAGIC, hashlib.sha256(Path(__file__).read_bytes()).hexdigest(), jax.__version__,
                     jaxlib.__version__, device.platform, device.device_kind, device.client.platform_version,
                     str(device), platform.machine(), _cpu_flags(), os.environ.get("XLA_FLAGS", ""), config))
    except Exception:  # noqa: BLE001 -- any doubt about the environment means: no cache
        return None


def _read_entry(path: Path) -> bytes | None:
    """The payload of a cache entry, or None when it is missing, oversized or not intact."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if not len(_MAGIC) + 32 < size <= _MAX_ENTRY_BYTES:
                return None
            blob = fh.read(size)
    except OSError:
        return None
    payload = blob[len(_MAGIC) + 32:]
    if blob[:len(_MAGIC)] != _MAGIC or hashlib.sha256(payload).digest() != blob[len(_MAGIC):len(_MAGIC) + 32]:
        return None
    return payload


def _write_entry(path: Path, payload: bytes) -> None:
    """Write an entry atomically (a reader sees the old file or the whole new one); errors are ignored."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
        os.replace(tmp, path)
        tmp = None
        entries = sorted(path.parent.glob("*.xla"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-_MAX_ENTRIES]:
            old.unlink()
    except OSError:
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _load(payload: bytes, device):
    """A callable running a serialised executable on ``device``, or None if it cannot be loaded."""
    try:
        executable = device.client.deserialize_executable(payload, [device], None)
    except Exception:  # noqa: BLE001 -- a stale or foreign entry: compile instead
        return None

    def run(*args):
        bufs = [jax.device_put(a, device) for a in args]
        return [out[0] for out in executable.execute_sharded(bufs).disassemble_into_single_device_arrays()]

    run.loaded = True
    return run


def _compile(args, static: dict):
    """Trace, lower and compile the loop for these arguments (AOT, with :data:`COMPILER_OPTIONS`)."""
    lowered = _fit.trace(*args, **static).lower()
    options = COMPILER_OPTIONS.get(jax.default_backend())
    stats["compiled"] += 1
    if options:
        try:
            return lowered.compile(compiler_options=options)
        except Exception:  # noqa: BLE001 -- an XLA without this option: compile with its defaults
            pass
    return lowered.compile()


def _program(args, static: dict, signature: tuple):
    """This process's program for ``signature``: kept, loaded from the cache, or compiled (and stored)."""
    run = _programs.get(signature)
    if run is not None:
        return run
    directory, device, path = cache_dir(), jax.devices()[0], None
    env = _environment(device) if directory is not None and _trusted_dir(directory) else None
    if env is not None:
        path = directory / (hashlib.sha256(f"{env}|{signature!r}".encode()).hexdigest()[:40] + ".xla")
        payload = _read_entry(path)
        run = _load(payload, device) if payload is not None else None
        if run is not None:
            stats["loaded"] += 1
            _programs[signature] = run
            return run
    run = _compile(args, static)
    if path is not None:
        with contextlib.suppress(Exception):
            _write_entry(path, run.runtime_executable().serialize())
    _programs[signature] = run
    return run


def _run(args, static: dict, signature: tuple):
    """The loop's outputs; a loaded program that fails to run is replaced by a compiled one."""
    run = _program(args, static, signature)
    try:
        return run(*args)
    except Exception:
        if not getattr(run, "loaded", False):
            raise
    run = _programs[signature] = _compile(args, static)
    return run(*args)


# --------------------------------------------------------------------------- host side


def _moments(a: np.ndarray, w: np.ndarray, wsum: float, centre: bool):
    """Weighted population mean (rounding-corrected) and scale (1 for a constant column), float64."""
    mean = np.zeros(a.shape[1])
    if centre:
        mean = (w @ a) / wsum
        mean = mean + (w @ (a - mean)) / wsum  # a column constant in float64 then centres to exactly 0
    scale = np.sqrt((w @ (a - mean) ** 2) / wsum)
    return mean, np.where(scale > 0, scale, 1.0)


def _problem(X, Y, w, alpha, dtype: str, fit_intercept: bool):
    """The standardised problem: design (n, k) with a ones column when fitting an intercept,
    targets, weights summing to 1, the ridge penalty per row of P (0 for the intercept), the
    loss at P = 0, and the standardiser's (x_mean, x_scale, y_mean, y_scale)."""
    X, Y, w = (np.asarray(a, np.float64) for a in (X, Y, w))
    n, d = X.shape
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        wsum = float(np.sum(w))
        xm, xs = _moments(X, w, wsum, fit_intercept)
        ym, ys = _moments(Y, w, wsum, fit_intercept)
        Xa = np.empty((n, d + fit_intercept), dtype)
        Xa[:, :d] = (X - xm) / xs
        if fit_intercept:
            Xa[:, d] = 1.0
        Ys = (Y - ym) / ys
        wn = w / wsum
        penn = np.zeros(Xa.shape[1])
        penn[:d] = np.asarray(alpha, np.float64) / xs**2 / wsum
        loss0 = float(np.mean(wn @ Ys**2))
    return (Xa, Ys.astype(dtype), wn.astype(dtype), penn.astype(dtype), loss0), (xm, xs, ym, ys)


def _to_original(P: np.ndarray, scales, fit_intercept: bool):
    """Map P (k, m) back to coef (m, d) and intercept (m,) in data units, float64 (exact inverse)."""
    xm, xs, ym, ys = scales
    d = xs.shape[0]
    coef = P[:d].T * ys[:, None] / xs[None, :]
    b = P[d] if fit_intercept else np.zeros(ys.shape[0])
    return coef, ym + b * ys - coef @ xm


def _in_range(X, Y, w, alpha, dtype: str):
    """The data rescaled per column by powers of two when they are near the ends of the range
    (else as given), their units, and the ridge penalty in them (a (d,) vector when rescaled)."""
    keep = w > 0
    Xk, Yk = (X, Y) if keep.all() else (X[keep], Y[keep])
    with np.errstate(invalid="ignore"):
        units = st.magnitude_units(np.max(np.abs(Xk), axis=0, initial=0.0), np.max(np.abs(Yk), axis=0, initial=0.0),
                                   float(np.max(w, initial=0.0)))
    lim = st.SAFE_LOG2[dtype] // 2
    if max(np.max(np.abs(units.x), initial=0), np.max(np.abs(units.y), initial=0), abs(units.w)) <= lim:
        return X, Y, w, st.Units(np.zeros_like(units.x), np.zeros_like(units.y), 0.0), alpha
    Xs, Ys, ws = st.scale_batch(np.asarray(X, np.float64), np.asarray(Y, np.float64), np.asarray(w, np.float64),
                                units)
    return Xs, Ys, ws, units, ridge_in_units(alpha, units)


def _constant_columns(X, w) -> np.ndarray:
    """(d,) bool: columns holding a single value over the rows of positive weight."""
    Xk = X[w > 0]
    if Xk.shape[0] == 0:
        return np.zeros(X.shape[1], bool)
    return np.all(Xk == Xk[0], axis=0)


def fit_gradient(
    X,
    Y,
    w=None,
    *,
    method: str = "gd",
    fit_intercept: bool = True,
    alpha: float = 0.0,
    dtype: str = "float64",
    learning_rate: float | None = None,
    tol: float | None = None,
    max_iter: int = 10_000,
    batch_size: int | None = None,
    random_state: int | None = 0,
    feature_names=None,
    target_names=None,
) -> Solution:
    """Fit ``Y ≈ X coefᵀ + intercept`` by gradient descent on standardised data.

    Parameters
    ----------
    X : array, shape (n, d);  Y : array, shape (n, m);  w : array, shape (n,), optional weights.
    method : "gd" (full batch, ``optax.sgd``), "lbfgs" (``optax.lbfgs`` with zoom line search)
        or "adam" (seeded minibatches of ``batch_size`` rows, rate halved on plateaus).
    learning_rate : step size in standardised units (defaults: gd 0.1, adam 0.01, lbfgs line search).
    tol : stop when the gradient norm of the standardised loss is ≤ tol
        (defaults: 1e-10 in float64, 1e-5 in float32).

    Returns
    -------
    Solution with ``n_iter``, ``converged``, ``diverged``, ``grad_norm`` and ``loss_curve``.
    A diverged run has NaN ``coef`` and ``intercept``: no fit is presented.
    ``feature_names``/``target_names`` name the columns in the InputError raised when a
    coefficient lies beyond float64.
    """
    method = check_choice("solver", method, METHODS)
    dtype = check_dtype(dtype)
    max_iter = check_positive_int("max_iter", max_iter)
    alpha = check_nonnegative("alpha", alpha)
    tol = DEFAULT_TOL[dtype] if tol is None else check_positive("tol", tol)
    lr = DEFAULT_LR[method] if learning_rate is None else check_positive("learning_rate", learning_rate)
    X = np.asarray(X)
    Y = np.asarray(Y)
    X = X[:, None] if X.ndim == 1 else X  # one feature
    Y = Y[:, None] if Y.ndim == 1 else Y  # one target (the Solution's coef is (1, d))
    if X.ndim != 2 or Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise InputError("Y", f"X must be (n, d) (or (n,) for one feature) and Y (n,) or (n, m) with the same n; got X "
                              f"of shape {X.shape} and Y of shape {Y.shape}.")
    n = X.shape[0]
    w = np.ones(n) if w is None else np.asarray(w)
    X, Y, w, units, alpha = _in_range(X, Y, w, alpha, dtype)
    if batch_size is None:
        batch_size = min(n, 256)
    batch_size = min(check_positive_int("batch_size", batch_size), n)
    seed = 0 if random_state is None else int(random_state)
    problem, scales = _problem(X, Y, w, alpha, dtype, fit_intercept)
    Xa, Ys, wn, penn, loss0 = problem
    lr = 1.0 if lr is None else lr  # optax.lbfgs: no rate means a rate of 1 on the line search's step
    args = (Xa, Ys, wn, penn, *(np.asarray(v, dtype) for v in (lr, tol, loss0)),
            np.asarray(seed, np.int64 if dtype == "float64" else np.int32))
    static = {"method": method, "max_iter": max_iter, "batch_size": batch_size if method == "adam" else 0}
    signature = (dtype, Xa.shape, Ys.shape, *static.values())
    with x64_scope(dtype):
        P, it, gnorm, diverged, losses = _run(args, static, signature)
        it = int(it)
        gnorm = float(gnorm)
        diverged = bool(diverged)
        converged = (not diverged) and gnorm <= tol
        coef, intercept = _to_original(np.asarray(P, dtype=np.float64), scales, fit_intercept)
        if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
            diverged, converged = True, False  # no fit is presented (see Returns)
        if diverged:
            coef = np.full_like(coef, np.nan)
            intercept = np.full_like(intercept, np.nan)
        else:
            coef, intercept = to_data_units(coef, intercept, units, feature_names=feature_names,
                                            target_names=target_names)
        aliased = tuple(int(j) for j in np.flatnonzero(_constant_columns(X, w))) if fit_intercept else ()
        return Solution(
            coef=coef,
            intercept=intercept,
            solver=method,
            dtype=dtype,
            rank=X.shape[1] - len(aliased),
            aliased=aliased,
            n_iter=it,
            converged=converged,
            diverged=diverged,
            grad_norm=gnorm,
            loss_curve=np.asarray(losses, dtype=np.float64)[: it + 1],  # sliced on the host: no compile
        )
