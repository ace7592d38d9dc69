"""Command-line interface: a thin layer over the Python API (one module per subcommand)."""

from ganeval.cli.main import main

__all__ = ["main"]
