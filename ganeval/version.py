"""Package version, single source."""

__version__ = "0.2.0"
