"""Command-line interface: a thin layer over the Python API (one module per subcommand)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI (``ganeval.cli.app.main``); a Ctrl-C while its modules (torch among them) are still being
    imported is one line and exit 130, as it is once the command runs, not a traceback of the import."""
    try:
        from ganeval.cli.app import main as run
    except KeyboardInterrupt:
        print("ganeval: interrupted", file=sys.stderr)
        return 130
    return run(argv)
