"""Ctrl-C, and SIGTERM where ganeval turns it into one, held off while ganeval cleans up after work: a temporary file
removed, a record saved, a private folder removed, a caller's module put back.

A first Ctrl-C raises ``KeyboardInterrupt`` and the work unwinds through its cleanup. A second one (users press it
again; systemd, Kubernetes and scripts send SIGTERM again) used to raise there too, cutting the cleanup short: a
``.tmp`` file or the watch's private folder left behind, the watch's record not saved, SIGTERM's exit code lost. A
signal that arrives during :func:`held_signals` is acted on once the block is done instead.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM turned into an interrupt (:func:`sigterm_as_interrupt`): the work ends as on Ctrl-C; the CLI exits
    128 + ``signum`` (143), not Ctrl-C's 130."""

    signum = signal.SIGTERM


def exit_code(exc: KeyboardInterrupt) -> int:
    """The exit code of the signal that interrupted: 130 for Ctrl-C, 143 for a SIGTERM turned into an interrupt."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def _raises_interrupt(handler: Any) -> bool:
    """Whether ``handler`` turns its signal into ``KeyboardInterrupt``: Python's own SIGINT handler, or ganeval's
    SIGTERM one. Others (ignored signals, a program's own handlers, SIGTERM's default of ending the process) are
    never taken over."""
    return handler is signal.default_int_handler or getattr(handler, "_ganeval_interrupt", False)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def held_signals() -> Iterator[list[int]]:
    """Run the block with the signals that would raise ``KeyboardInterrupt`` held; one that arrives meanwhile is
    acted on (its handler called: ``KeyboardInterrupt``) once the block is done, so a cleanup is never cut short
    half-way. Yields the signals held, in order; the block may clear the list when the work is ending for an
    interrupt already (a second one asks for nothing more). Off the main thread (no signal reaches it) a no-op."""
    held: list[int] = []
    if not _main_thread():
        yield held
        return

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous: dict[int, Callable[[int, FrameType | None], Any]] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if _raises_interrupt(handler):
            previous[sig] = handler  # type: ignore[assignment]  # a callable: _raises_interrupt said so
            signal.signal(sig, hold)
    try:
        yield held
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            previous[held[0]](held[0], None)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[list[int]]:
    """Run the block with SIGTERM (``kill``, a service or batch-job stop) raising :class:`Terminated`, so it ends the
    work as Ctrl-C does, cleanup included, where it ended the process at once. Yields a list that holds the signal
    once it came; the previous handler is restored after. Off the main thread, or where SIGTERM is ignored or has a
    handler of the program's own, nothing changes."""
    came: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        came.append(signum)
        raise Terminated

    handler._ganeval_interrupt = True  # type: ignore[attr-defined]  # held_signals holds it as it holds Ctrl-C
    if not _main_thread() or signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):  # None: set outside Python
        yield came
        return
    signal.signal(signal.SIGTERM, handler)
    try:
        yield came
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


__all__ = ["Terminated", "exit_code", "held_signals", "sigterm_as_interrupt"]
