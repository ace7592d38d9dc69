"""Argument helpers shared by subcommands: lists given either space- or comma-separated."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


def split_items(values: Sequence[str]) -> list[str]:
    """``["fid,kid", "prc"]`` → ``["fid", "kid", "prc"]``: users write lists both ways (``--metrics fid,kid``)."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


class ListAction(argparse.Action):
    """``nargs="+"`` that also splits on commas, keeps the first of repeated items and checks ``valid`` itself
    (argparse's ``choices`` would reject ``fid,kid`` as one unknown choice). Given twice, the flag's lists add up
    (``--metrics fid --metrics mnist_fd`` is both): argparse's own last-one-wins dropped the first silently."""

    def __init__(self, option_strings: list[str], dest: str, valid: Sequence[str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("nargs", "+")
        super().__init__(option_strings, dest, **kwargs)
        self.valid = list(valid) if valid is not None else None

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        items = list(dict.fromkeys(split_items(values)))
        earlier = getattr(namespace, self.dest, None)
        if not items:
            parser.error(f"argument {option_string}: expected at least one item")
        bad = [i for i in items if self.valid is not None and i not in self.valid]
        if bad:
            parser.error(f"argument {option_string}: invalid choice: {bad[0]!r} (choose from {', '.join(self.valid or [])})")
        if earlier is not None and earlier is not self.default:  # given before on this command line (not the default)
            items = list(dict.fromkeys([*earlier, *items]))
        setattr(namespace, self.dest, items)
