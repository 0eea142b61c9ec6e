"""Error types and host-side validation helpers shared by the whole package.

Every message names the parameter, the rule, the value received and the fix,
in the form ``"<param> must be <rule>; got <param>=<value>. <fix>"``.
"""
from __future__ import annotations

import math
from numbers import Integral, Real


class InputError(ValueError):
    """Bad input, with the offending parameter recorded in ``param``."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


class NonFiniteData(InputError):
    """A missing or infinite value (or values whose squares overflow) reached a fit's sums: the
    caller, which knows the columns and rows, may locate it for a more precise message."""


class RankWarning(UserWarning):
    """The design matrix is rank deficient; a minimum-norm solution was returned."""


def fail(param: str, rule: str, value, fix: str = "") -> InputError:
    msg = f"{param} must be {rule}; got {param}={value!r}."
    if fix:
        msg += f" {fix}"
    return InputError(param, msg)


def check_positive(param: str, value, *, fix: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise fail(param, "a finite number > 0", value, fix)
    return float(value)


def check_nonnegative(param: str, value, *, fix: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        raise fail(param, "a finite number >= 0", value, fix)
    return float(value)


def check_positive_int(param: str, value, *, fix: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise fail(param, "a positive integer", value, fix)
    return int(value)


def check_choice(param: str, value, choices) -> str:
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise InputError(param, f"{param} must be one of {valid}; got {param}={value!r}.")
    return value
