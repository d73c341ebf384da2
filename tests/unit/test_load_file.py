import pandas as pd

from recsys_local.seed.loader import write_load_file


def test_nulls_tabs_newlines_and_backslashes_are_escaped(tmp_path):
    frame = pd.DataFrame(
        {
            "a": [1, 2],
            "b": ["tab\there", None],
            "c": ["line\nbreak", "back\\slash"],
            "d": pd.to_datetime(["2004-01-02", None]),
        }
    )
    path = tmp_path / "t.tsv"
    write_load_file(frame, ("a", "b", "c", "d"), path)
    lines = path.read_text().split("\n")
    assert lines[0] == "1\ttab\\there\tline\\nbreak\t2004-01-02"
    assert lines[1] == "2\t\\N\tback\\\\slash\t\\N"
    assert lines[2] == ""


def test_columns_follow_the_given_order(tmp_path):
    frame = pd.DataFrame({"y": [2], "x": [1]})
    path = tmp_path / "t.tsv"
    write_load_file(frame, ("x", "y"), path)
    assert path.read_text() == "1\t2\n"
