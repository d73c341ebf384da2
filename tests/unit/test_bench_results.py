"""The benchmark harness's arithmetic and output (the measurements themselves run in `make bench`, never in tests)."""

from __future__ import annotations

import json

from recsys.bench import Entry, write_results


def test_ratio_targets_and_absolute_targets_pass_or_miss_the_right_way(tmp_path):
    faster = Entry("load", value=4.0, unit="s", reference_name="floor", reference=8.0, target=0.667)
    slower = Entry("load2", value=14.0, unit="s", reference_name="floor", reference=6.9, target=0.667)
    recall = Entry("recall", value=0.95, unit="", reference_name="exact", reference=1.0, target=0.97,
                   better="higher", absolute=True)  # fmt: skip
    overhead = Entry("parse", value=99.0, unit="ms", reference_name="empty", reference=40.0, target=100, absolute=True)
    no_reference = Entry("x", value=1.0, unit="s", reference_name="none", reference=None, target=1.0)
    assert faster.ratio == 0.5
    assert faster.passed
    assert not slower.passed
    assert not recall.passed
    assert overhead.passed
    assert not no_reference.passed  # a claim without its reference proves nothing

    json_path, md_path = write_results([faster, slower, recall], tmp_path, quick=True)
    data = json.loads(json_path.read_text())
    assert [e["passed"] for e in data["entries"]] == [True, False, False]
    assert data["quick"] is True
    assert data["machine"]["cpus"] >= 1
    table = md_path.read_text()
    assert "| load | 4 s | 8 s (floor) | 0.5 | <= 0.667 x the reference | pass |" in table
    assert "| recall | 0.95 | 1 (exact) | 0.95 | >= 0.97 | MISS |" in table
