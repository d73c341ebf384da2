"""Where a dump names a database, the import aims it at the scratch database: wherever a statement starts, never
inside a string or a comment. Line numbers stay those of the original file."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_local.seed.loader import rewrite_dump


def rewritten(tmp_path: Path, text: str) -> tuple[str, int]:
    source, target = tmp_path / "in.sql", tmp_path / "out.sql"
    source.write_text(text)
    changed = rewrite_dump(source, "scratch", target)
    return target.read_text(), changed


@pytest.mark.parametrize(
    ("dump", "expected"),
    [
        ("USE classicmodels;\n", "USE `scratch`;\n"),
        ("  use `classicmodels` ;\n", "  USE `scratch`;\n"),
        ("INSERT INTO t VALUES (1);USE classicmodels;\n", "INSERT INTO t VALUES (1);USE `scratch`;\n"),
        ("SET NAMES utf8mb4;USE classicmodels;DROP TABLE x;\n", "SET NAMES utf8mb4;USE `scratch`;DROP TABLE x;\n"),
        ("/* a comment */ USE classicmodels;\n", "/* a comment */ USE `scratch`;\n"),
        (
            "CREATE DATABASE IF NOT EXISTS classicmodels;\n",
            "/* recsys: ignored: CREATE DATABASE IF NOT EXISTS classicmodels; */\n",
        ),
        ("SELECT 1;DROP SCHEMA classicmodels;\n", "SELECT 1;/* recsys: ignored: DROP SCHEMA classicmodels; */\n"),
        (  # mysqldump's versioned comments inside the ignored statement do not end its comment early
            "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `c` /*!40100 DEFAULT CHARACTER SET latin1 */;\n",
            "/* recsys: ignored: CREATE DATABASE / *!32312 IF NOT EXISTS* / `c` / *!40100 DEFAULT CHARACTER SET latin1 "
            "* /; */\n",
        ),
    ],
)
def test_statements_that_name_a_database_are_aimed_at_the_scratch_database(tmp_path, dump, expected):
    text, changed = rewritten(tmp_path, dump)
    assert text == expected
    assert changed == expected.count("scratch") + expected.count("recsys: ignored")


@pytest.mark.parametrize(
    "dump",
    [
        "INSERT INTO t VALUES ('USE classicmodels;');\n",
        "INSERT INTO t VALUES ('it''s;USE classicmodels;');\n",
        "INSERT INTO t VALUES ('a\\'b;USE classicmodels;');\n",
        'INSERT INTO t VALUES ("x;USE classicmodels;");\n',
        "-- USE classicmodels;\n",
        "SELECT 1; # USE classicmodels;\n",
        "/* USE classicmodels; */\n",
        "/* a comment over\nlines; USE classicmodels; */\n",
        "INSERT INTO t VALUES ('a string over\nlines; USE classicmodels;');\n",
        "SELECT `odd;USE classicmodels;` FROM t;\n",
        "SELECT 1 FROM t WHERE a = 'USE x' ;\n",
        "DELIMITER //\nCREATE PROCEDURE p() BEGIN USE classicmodels; END//\nDELIMITER ;\n",
    ],
)
def test_nothing_inside_strings_comments_or_a_routine_body_is_touched(tmp_path, dump):
    assert rewritten(tmp_path, dump) == (dump, 0)


def test_line_numbers_and_bytes_outside_the_statements_stay(tmp_path):
    dump = "SET NAMES utf8mb4;\nINSERT INTO t VALUES ('é');USE classicmodels;\n\nINSERT INTO t VALUES (2);"
    text, _ = rewritten(tmp_path, dump)
    assert text.splitlines() == [
        "SET NAMES utf8mb4;",
        "INSERT INTO t VALUES ('é');USE `scratch`;",
        "",
        "INSERT INTO t VALUES (2);",
    ]


def test_after_a_delimiter_change_back_statements_are_aimed_again(tmp_path):
    dump = "DELIMITER $$\nSELECT 1$$\nDELIMITER ;\nUSE classicmodels;\n"
    assert rewritten(tmp_path, dump)[0].splitlines()[-1] == "USE `scratch`;"
