"""Markdown text of user-given names (``GITHUB_STEP_SUMMARY``, pull-request comments): shown literally."""

from __future__ import annotations

import re

import pytest

from ganeval.report.markdown import md_text

#: What CommonMark reads as markup in running text or a table cell (the characters md_text must escape).
MARKUP = set("\\`*_[]|<>#~&")


@pytest.mark.parametrize("name", ["G&lt;script&gt;.pt", "a&amp;b", "x&#124;y", "<img src=x>", "a|b `c` *d* [e](f)"])
def test_a_name_reads_back_literally(name: str) -> None:
    """A name holding an HTML entity (``&lt;``) was shown as the character it names (``<``): ``&`` was left bare."""
    text = md_text(name)
    bare = re.sub(r"\\.", "", text)  # drop every backslash-escaped character
    assert not MARKUP & set(bare), text  # nothing left that Markdown reads as markup
    assert re.sub(r"\\(.)", r"\1", text) == name  # and unescaping gives the name back
