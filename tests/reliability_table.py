"""The reliability page's table, rewritten by `make reliability` from its own run (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

#: The page that holds the table, relative to the project root.
PAGE = Path("docs") / "reliability.md"
#: The table sits between these lines.
MARKERS = ("<!-- reliability-table: written by make reliability -->", "<!-- reliability-table: end -->")


def page_with_table(text: str, heading: str, table: list[str]) -> str:
    """``text`` with the block between :data:`MARKERS` replaced by ``heading`` and ``table``; a page without the
    markers (in order, once each) is an error, never silently left as it was."""
    start, end = text.find(MARKERS[0]), text.find(MARKERS[1])
    if start < 0 or end < start or text.count(MARKERS[0]) != 1 or text.count(MARKERS[1]) != 1:
        raise ValueError(f"{PAGE} needs one {MARKERS[0]!r} line before one {MARKERS[1]!r} line")
    block = "\n".join([MARKERS[0], heading, "", *table, MARKERS[1]])
    return text[:start] + block + text[end + len(MARKERS[1]) :]
