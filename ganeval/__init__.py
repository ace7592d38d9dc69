"""ganeval: trustworthy, fast GAN evaluation.

Python API: ``load_generator``, ``list_checkpoints``, ``score``, ``compare``, ``gate``, ``watch``, ``reference_stats``,
``import_stats``, ``export_stats``, ``features``.
Heavy submodules are imported on first use.
"""

from __future__ import annotations

from typing import Any

from ganeval.version import __version__

__all__ = ["__version__", "list_checkpoints", "load_generator", "score", "compare", "gate", "watch", "reference_stats", "import_stats",
           "export_stats", "features"]


def __getattr__(name: str) -> Any:
    # Nothing heavy at import: ``ganeval`` (the command) can then answer a Ctrl-C during its start-up in one line.
    if name in ("list_checkpoints", "load_generator"):
        import ganeval.checkpoints as checkpoints

        return getattr(checkpoints, name)
    if name == "score":
        from ganeval.evaluate import score

        return score
    if name == "compare":
        from ganeval.comparing import compare

        return compare
    if name == "gate":
        from ganeval.gating import gate

        return gate
    if name == "watch":
        from ganeval.watching import watch

        return watch
    if name == "reference_stats":
        from ganeval.reference import reference_stats

        return reference_stats
    if name == "import_stats":
        from ganeval.stats_import import import_stats_file

        return import_stats_file
    if name == "export_stats":
        from ganeval.stats_export import export_stats

        return export_stats
    if name == "features":
        import ganeval.features as features

        return features
    raise AttributeError(f"module 'ganeval' has no attribute {name!r}")
