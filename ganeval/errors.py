"""Errors with a documented exit code, so the CLI can print one clear line."""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1  # a criterion failed, or some checkpoints could not be scored
EXIT_INPUT = 2  # usage or input error: the message names the file and the problem
EXIT_PIPE = 141  # the reader of stdout left (128 + SIGPIPE, what a shell reports for a program a closed pipe ended)


class GanevalError(Exception):
    """An expected, user-facing failure; ``str(err)`` is the one line shown to the user."""

    exit_code = EXIT_INPUT


class ShareFailed(GanevalError):
    """A generator or feature network raised while computing its share of a pass (``DistContext.my_share``): that
    source fails (an error row), where a ``GanevalError`` raised on purpose may only make one metric unavailable."""

    exit_code = EXIT_FAILED


class PeerLost(GanevalError):
    """A collective failed: a peer rank died or hung. Every surviving rank says so (rank 0 may be the one lost); a
    run that failed, not an input error (exit 1)."""

    exit_code = EXIT_FAILED


class DataError(GanevalError):
    """A data file is missing, truncated, corrupted or has the wrong checksum."""


class CheckpointError(GanevalError):
    """A checkpoint or training state file cannot be used."""


class StatsError(GanevalError):
    """A statistics file is missing, corrupted, or does not match what was asked for."""


class WeightsError(GanevalError):
    """Feature-extractor weights cannot be found or do not verify."""


class OptionError(GanevalError, TypeError):
    """An API call was given an option it does not take: a ganeval error, and the ``TypeError`` Python raises for
    an unknown keyword."""


def require_count(value: Any, low: int, what: str, error: type[GanevalError] = GanevalError) -> None:
    """Refuse ``value`` unless it is an integer (not a bool) of at least ``low``, in one line naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise error(f"{what} must be an integer of at least {low} (got {value!r})")


def as_path(value: Any, what: str, error: type[Exception] = GanevalError) -> Path:
    """``value`` as a ``Path``: a non-empty ``str`` or ``os.PathLike`` of one. ``None``, bytes, numbers and lists
    reached pathlib's TypeError, and ``""`` meant the current folder (a report written into it), silently."""
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(text, str):
        raise error(f"{what} must be a path (a str or os.PathLike), not {type(value).__name__} {short(value, 40)}")
    if not text:
        raise error(f"{what} is an empty path (give '.' for the current folder)")
    return Path(text)


def require_bool(value: Any, what: str, error: type[GanevalError] = GanevalError) -> bool:
    """``value``, refused unless True/False: a truthy string ("no") reversed the caller's intent."""
    if not isinstance(value, bool):
        raise error(f"{what} must be True or False, not {short(value, 40)}")
    return value


def require_number(value: Any, what: str, rule: str, ok: Callable[[float], bool],
                   error: type[GanevalError] = GanevalError) -> None:
    """Refuse ``value`` unless it is a real number (not a bool) for which ``ok`` holds, in one line naming ``what``:
    ``{what} must {rule} (got …)``; a value of another type is named with its type (``the str '0.9'``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{what} must {rule} (got {'None' if value is None else f'the {type(value).__name__} {value!r}'})")
    if not ok(value):
        raise error(f"{what} must {rule} (got {value!r})")


def refused_global(exc: BaseException) -> str | None:
    """The class a ``torch.load(weights_only=True)`` refused to unpickle, as torch's message names it (its wording
    varies by version: "Unsupported global: GLOBAL x.y", "unsupported GLOBAL x.y", "but got <class 'x.y'>"), or None."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc), re.IGNORECASE) or re.search(r"but got <class '([\w.]+)'>", str(exc))
    return found.group(1) if found else None


def unpickler_reason(exc: Exception) -> str | None:
    """The specific reason in torch's weights-only refusal (``Unsupported operand 149``), without the advice around
    it (to re-run with ``weights_only=False``, which would run the file's code)."""
    text = str(exc)
    if "WeightsUnpickler error:" not in text:
        return None
    rest = [line.strip() for line in text.split("WeightsUnpickler error:", 1)[1].splitlines() if line.strip()]
    reason = next((line for line in rest if not line.startswith("Check the documentation")), "")
    return reason[:160] or None


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: an untrusted config can be megabytes of JSON."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "…"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when empty), cut to 200 characters: for one-line
    errors that quote what a library raised."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else exc.__class__.__name__)[:200]


def one_line(exc: BaseException) -> str:
    """``Class: message`` on one line, for a row's error: a message of several lines (TorchScript's interpreter
    wraps the error in both tracebacks, dozens of lines) gives its last ``…Error: …`` line, the error itself, or
    else its first line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if len(lines) > 1:
        last = lines[-1]
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception): ", last):
            return last
    return f"{exc.__class__.__name__}: {lines[0]}" if lines else exc.__class__.__name__
