"""Text for Markdown (``GITHUB_STEP_SUMMARY``, pull-request comments): user-given names escaped."""

from __future__ import annotations

import re
from typing import Any

#: Characters Markdown would read as syntax (a ``|`` splits a table cell; ``<`` starts raw HTML; ``&`` starts an
#: entity: a name holding ``&lt;`` was shown as ``<``).
_SPECIAL = re.compile(r"([\\`*_\[\]|<>#~&])")


def md_text(value: Any) -> str:
    """``value`` as literal Markdown text: every special character backslash-escaped, newlines as spaces."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(value).splitlines()))


def md_code(value: Any) -> str:
    """``value`` as a Markdown code span, fenced by more backticks than it holds (outside tables: ``|`` stays)."""
    text = " ".join(str(value).splitlines())
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
