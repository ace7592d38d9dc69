"""Ctrl-C, and SIGTERM where ganeval turns it into one, held off while ganeval cleans up after work: a temporary file
removed, a record saved, a private folder removed, a caller's module put back.

A first Ctrl-C raises ``KeyboardInterrupt`` and the work unwinds through its cleanup. A second one (users press it
again; systemd, Kubernetes and scripts send SIGTERM again) used to raise there too, cutting the cleanup short: a
``.tmp`` file or the watch's private folder left behind, the watch's record not saved, SIGTERM's exit code lost. A
signal that arrives during :func:`held_signals` is acted on once the block is done instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
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


#: Seconds a SIGTERM may wait for the work to act on it before the process ends at once, as SIGTERM's default did.
#: The Python handler runs only between bytecodes: a torchrun rank waiting in a collective for a peer (gloo's C++
#: code) would otherwise take SIGTERM's stop only once the peer came or the group timed out (30 minutes), or
#: torchrun's SIGKILL 30 s later; a stop meant to be prompt must stay so.
TERM_GRACE_S = 10.0


@contextlib.contextmanager
def sigterm_as_interrupt(grace_s: float | None = None, last_words: str | None = None) -> Iterator[list[int]]:
    """Run the block with SIGTERM (``kill``, a service or batch-job stop, torchrun stopping its ranks) raising
    :class:`Terminated`, so it ends the work as Ctrl-C does, cleanup included, where it ended the process at once.
    Yields a list that holds the signal once it came; the previous handler is restored after. Off the main thread,
    or where SIGTERM is ignored or has a handler of the program's own, nothing changes; inside another such block,
    the outer one's list is yielded.

    Where the work cannot act on the signal within ``grace_s`` seconds (default :data:`TERM_GRACE_S`; blocked in C
    code, such as a collective waiting for a peer), the process ends then with exit code 143, after ``last_words``
    (a line for stderr) if given."""
    current = signal.getsignal(signal.SIGTERM)
    outer = getattr(current, "_ganeval_came", None)
    if outer is not None:  # already turned into an interrupt (the CLI's dispatch, then a command's own block)
        yield outer
        return
    came: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        came.append(signum)
        raise Terminated

    handler._ganeval_interrupt = True  # type: ignore[attr-defined]  # held_signals holds it as it holds Ctrl-C
    handler._ganeval_came = came  # type: ignore[attr-defined]
    if not _main_thread() or current not in (signal.SIG_DFL, None):  # None: set outside Python
        yield came
        return
    signal.signal(signal.SIGTERM, handler)
    try:
        with _ends_if_stuck(TERM_GRACE_S if grace_s is None else grace_s, last_words):
            yield came
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


#: Seconds the end after a stuck SIGTERM waits for its line and the buffered output to be written.
FLUSH_WAIT_S = 1.0


def _last_words(line: str | None) -> None:
    """Write ``line`` to stderr, then flush stderr and stdout, each failure ignored (the process is ending)."""
    for step in (lambda: line and sys.stderr.write(line + "\n"), sys.stderr.flush, sys.stdout.flush):
        with contextlib.suppress(Exception):
            step()


@contextlib.contextmanager
def _ends_if_stuck(grace_s: float, last_words: str | None) -> Iterator[None]:
    """Within the block, end the process (exit 143) ``grace_s`` seconds after a SIGTERM unless the block is done by
    then. The signal is seen by a thread through Python's wakeup file descriptor, which the C-level handler writes at
    once, even while the main thread is blocked in C code and cannot run the Python one. Where the program uses
    the wakeup descriptor already (an asyncio loop), nothing is watched."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    try:
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except ValueError:  # not the main thread, or a descriptor it refuses
        previous = None
    if previous != -1:
        if previous is not None:
            signal.set_wakeup_fd(previous)
        os.close(read)
        os.close(write)
        yield
        return
    done = threading.Event()

    def watch() -> None:
        try:
            while not done.is_set():
                data = os.read(read, 64)
                if not data:  # the block is done: the write end was closed
                    return
                if signal.SIGTERM in data and not done.wait(grace_s):
                    # Said and flushed from a thread of its own, waited for FLUSH_WAIT_S at most: a stream whose pipe
                    # nobody reads (or whose lock the stuck main thread holds) would block the flush, and the end
                    # with it, for ever.
                    saying = threading.Thread(target=_last_words, args=(last_words,), daemon=True)
                    saying.start()
                    saying.join(FLUSH_WAIT_S)
                    os._exit(128 + signal.SIGTERM)
        finally:
            os.close(read)

    threading.Thread(target=watch, name="ganeval-sigterm-grace", daemon=True).start()
    try:
        yield
    finally:
        done.set()
        signal.set_wakeup_fd(-1)
        os.close(write)  # the thread's read ends (it closes its own end)


__all__ = ["TERM_GRACE_S", "Terminated", "exit_code", "held_signals", "sigterm_as_interrupt"]
