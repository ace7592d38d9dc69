"""``ganeval`` entry point: builds the subcommand parsers and maps errors to documented exit codes.

Exit codes: 0 success; 1 something failed (a gate criterion, or some checkpoints could not be scored);
2 usage or input error (one line naming the file and the problem); 130 Ctrl-C; 143 SIGTERM, which every command
takes as it takes Ctrl-C (the work unwinds through its cleanup: no ``.tmp`` file, nothing half-written); 141 the
reader of stdout left (a closed pipe), silently, as a program SIGPIPE ends.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from ganeval.cli import (
    cmd_compare,
    cmd_export,
    cmd_floors,
    cmd_gate,
    cmd_metrics,
    cmd_score,
    cmd_stats,
    cmd_train,
    cmd_train_classifier,
    cmd_watch,
)
from ganeval.errors import EXIT_INPUT, EXIT_PIPE, GanevalError, PeerLost
from ganeval.interrupts import TERM_GRACE_S, exit_code, sigterm_as_interrupt
from ganeval.launch import launched_rank

COMMANDS = [cmd_train, cmd_train_classifier, cmd_stats, cmd_floors, cmd_score, cmd_compare, cmd_gate, cmd_watch, cmd_export, cmd_metrics]


class OneLineParser(argparse.ArgumentParser):
    """argparse with usage errors in one line (the problem and where the help is), not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        if re.match(r"argument --output-range(/[^:]*)?: expected one argument$", message):  # argparse takes -1,1 for a flag
            message += " (a value that starts with '-' is joined to the flag: --output-range=-1,1)"
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n" if _speaks() else None)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (used by the CLI and its tests)."""
    from ganeval.version import __version__

    parser = OneLineParser(prog="ganeval", description="Trustworthy, fast GAN evaluation.")
    parser.add_argument("--version", action="version", version=f"ganeval {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    stuck = f"ganeval: interrupted (SIGTERM; the work did not stop within {TERM_GRACE_S:g} s, so it ended at once)"
    try:
        # SIGTERM (kill, a service or batch-job stop, torchrun stopping its ranks) ends the work as Ctrl-C does
        with sigterm_as_interrupt(last_words=stuck if _speaks() else None):
            code = int(args.func(args) or 0)
            if "ganeval.distributed" not in sys.modules:  # no process group can have been joined
                return code
            from ganeval.distributed import leave_together

            return leave_together(code)  # torchrun: every rank waits for rank 0's reports before any exits
    except GanevalError as exc:
        _say(f"ganeval: error: {exc}", every_rank=isinstance(exc, PeerLost))  # rank 0 may be the rank lost
        return _failed(exc.exit_code)
    except KeyboardInterrupt as exc:
        _say("ganeval: interrupted")
        return _failed(exit_code(exc))  # 130; 143 for SIGTERM
    except BrokenPipeError:  # the reader of stdout left (`ganeval metrics | true`): no usage or input error
        _quiet_stdout()
        return EXIT_PIPE
    except OSError as exc:  # a folder that cannot be made, a read-only or full disk: one line naming the path
        where = f"{exc.filename}: " if exc.filename else ""
        hint = " (a file where a folder is needed?)" if isinstance(exc, FileExistsError | NotADirectoryError) else ""
        _say(f"ganeval: error: {where}{exc.strerror or exc}{hint}")
        return _failed(EXIT_INPUT)
    except Exception as exc:
        if type(exc).__name__ != "SafetensorError":  # safetensors' own write errors (e.g. no space left on device)
            raise
        _say(f"ganeval: error: cannot write a safetensors file: {exc}")
        return EXIT_INPUT


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what the closed pipe did not take is no second
    error (Python's advice for SIGPIPE)."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (stdout replaced, as by a test's capture): nothing to flush
        pass


def _speaks() -> bool:
    """Whether this process prints the error line: rank 0 alone under torchrun (every rank meets the same input error,
    and a share's failure reaches every rank with the failing rank named), so the line is shown once."""
    return launched_rank() == 0


def _say(line: str, every_rank: bool = False) -> None:
    """Print an error line to stderr, on rank 0 only unless ``every_rank``; other ranks keep their exit code."""
    if every_rank or _speaks():
        print(line, file=sys.stderr)


def _failed(code: int) -> int:
    """An error's exit code; a torchrun rank leaves with it at once (``distributed.abandon``). Without
    ganeval.distributed loaded no group was joined: nothing to leave, and torch is not imported to say so."""
    if "ganeval.distributed" in sys.modules:
        from ganeval.distributed import abandon

        abandon(code)
    return code
