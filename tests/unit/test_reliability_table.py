"""make reliability rewrites only the reliability page's table block, from one run."""

from __future__ import annotations

import pytest
from reliability_table import MARKERS, PAGE, page_with_table

from recsys.config import project_root

TABLE = ["| scenario | result |", "|---|---|", "| 1. source down | pass |"]


def test_the_block_between_the_markers_is_replaced_and_nothing_else():
    text = f"# Title\n\nbefore\n{MARKERS[0]}\nold heading\n\n| old | table |\n{MARKERS[1]}\nafter\n"
    new = page_with_table(text, "Figures of one run, 2026-12-06:", TABLE)
    assert new == (
        f"# Title\n\nbefore\n{MARKERS[0]}\nFigures of one run, 2026-12-06:\n\n"
        "| scenario | result |\n|---|---|\n| 1. source down | pass |\n"
        f"{MARKERS[1]}\nafter\n"
    )
    assert page_with_table(new, "Figures of one run, 2026-12-06:", TABLE) == new  # a second run: same text


@pytest.mark.parametrize(
    "text",
    ["no markers at all\n", f"{MARKERS[1]}\n{MARKERS[0]}\n", f"{MARKERS[0]}\n{MARKERS[0]}\n{MARKERS[1]}\n"],
    ids=["none", "reversed", "twice"],
)
def test_a_page_without_one_ordered_block_is_refused(text):
    with pytest.raises(ValueError, match="needs one"):
        page_with_table(text, "heading", TABLE)


def test_the_reliability_page_has_the_block():
    text = (project_root() / PAGE).read_text()
    assert page_with_table(text, "heading", TABLE).count("| 1. source down | pass |") == 1
