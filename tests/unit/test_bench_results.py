"""The benchmark harness's arithmetic and output (the measurements themselves run in `make bench`, never in tests)."""

from __future__ import annotations

import json

from recsys_local.bench import Entry, write_results


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

    json_path, md_path = write_results({"vectors": [faster, slower, recall]}, tmp_path, quick=True)
    data = json.loads(json_path.read_text())
    run = data["suites"]["vectors"]
    assert [e["passed"] for e in run["entries"]] == [True, False, False]
    assert run["quick"] is True
    assert run["machine"]["cpus"] >= 1
    table = md_path.read_text()
    assert "## vectors (quick run)" in table
    assert "| load | 4 s | 8 s (floor) | 0.5 | <= 0.667 x the reference | pass |" in table
    assert "| recall | 0.95 | 1 (exact) | 0.95 | >= 0.97 | MISS |" in table


def test_a_suite_run_alone_replaces_its_own_results_and_keeps_the_others(tmp_path):
    parse = Entry("parse", value=99.0, unit="ms", reference_name="empty", reference=40.0, target=100, absolute=True)
    load = Entry("load", value=4.0, unit="s", reference_name="floor", reference=8.0, target=0.667)
    write_results({"dag_parse": [parse], "vectors": [load]}, tmp_path, quick=False)
    slower = Entry("load", value=9.0, unit="s", reference_name="floor", reference=8.0, target=0.667)
    json_path, md_path = write_results({"vectors": [slower]}, tmp_path, quick=True)
    suites = json.loads(json_path.read_text())["suites"]
    assert suites["dag_parse"]["quick"] is False
    assert [e["value"] for e in suites["dag_parse"]["entries"]] == [99.0]
    assert suites["vectors"]["quick"] is True
    assert [e["value"] for e in suites["vectors"]["entries"]] == [9.0]
    table = md_path.read_text()
    assert "## dag_parse (full run)" in table
    assert "## vectors (quick run)" in table
    assert "| load | 4 s |" not in table


def test_results_from_an_older_layout_are_replaced_not_fatal(tmp_path):
    (tmp_path / "latest.json").write_text('{"entries": [], "quick": false}')
    load = Entry("load", value=4.0, unit="s", reference_name="floor", reference=8.0, target=0.667)
    json_path, _ = write_results({"vectors": [load]}, tmp_path, quick=False)
    assert list(json.loads(json_path.read_text())["suites"]) == ["vectors"]


def test_the_command_line_runs_every_suite_by_default_and_refuses_unknown_ones(capsys):
    import pytest

    from recsys_local.bench.__main__ import SUITES, parse_args

    assert parse_args([]).suites == list(SUITES)
    assert parse_args(["--quick"]).suites == list(SUITES)
    assert parse_args(["etl", "vectors"]).suites == ["etl", "vectors"]
    with pytest.raises(SystemExit):
        parse_args(["etl", "nonsense"])
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err
