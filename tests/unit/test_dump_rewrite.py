"""Reading a dump before it runs: where it names a database, the import aims it at the scratch database, wherever a
statement starts, never inside a string or a comment; client commands, triggers and routines are refused with their
line before anything runs. Line numbers stay those of the original file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dump_strategies import READER, SERVER, Dump, dumps
from hypothesis import given, settings

from recsys_local.seed.dump import DumpRefused, rewrite_dump


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
        "DELIMITER //\nSELECT 1; USE classicmodels; SELECT 2//\nDELIMITER ;\n",  # one statement: USE is not first
    ],
)
def test_nothing_inside_strings_comments_or_a_delimited_block_is_touched(tmp_path, dump):
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


@pytest.mark.parametrize(
    ("dump", "expected"),
    [
        (  # mysqldump --add-drop-database
            "/*!40000 DROP DATABASE IF EXISTS `classicmodels`*/;\n",
            "/* recsys: ignored: / *!40000 DROP DATABASE IF EXISTS `classicmodels`* /; */\n",
        ),
        ("USE classicmodels\nSELECT 1;\n", "USE `scratch`;\nSELECT 1;\n"),  # the client's USE: no delimiter
        ("USE/**/classicmodels;\n", "USE `scratch`;\n"),
        ("USE\n classicmodels;\nSELECT 1;\n", None),  # refused below: the client's USE without a name
        (
            "CREATE DATABASE\n  IF NOT EXISTS classicmodels\n  CHARACTER SET utf8mb4;\nSELECT 1;\n",
            "/* recsys: ignored: CREATE DATABASE\n  IF NOT EXISTS classicmodels\n  CHARACTER SET utf8mb4; */\n"
            "SELECT 1;\n",
        ),
        ("--\tUSE classicmodels;\nSELECT 1;\n", "--\tUSE classicmodels;\nSELECT 1;\n"),  # --<TAB> is a comment
        (
            "CREATE DATABASE c COMMENT 'a;b';\nINSERT INTO t VALUES ('x');\n",
            "/* recsys: ignored: CREATE DATABASE c COMMENT 'a;b'; */\nINSERT INTO t VALUES ('x');\n",
        ),
        ("CREATE OR REPLACE SCHEMA c;\n", "/* recsys: ignored: CREATE OR REPLACE SCHEMA c; */\n"),
        (
            "USE classicmodels;\r\nSELECT 'a\r\nb';\r\n",
            "USE `scratch`;\nSELECT 'a\nb';\n",
        ),  # CRLF, as the client reads it
        ("SELECT 1;\nUSE classicmodels", "SELECT 1;\nUSE `scratch`;"),  # no final newline
        ("DELIMITER ;;\nUSE classicmodels;;\nDELIMITER ;\n", "DELIMITER ;;\nUSE `scratch`;;\nDELIMITER ;\n"),
        ("SELECT \\N;\n", "SELECT \\N;\n"),  # NULL, not a client command
        ("HELP 'contents';\n", "HELP 'contents';\n"),  # the statement, not the client's help
    ],
)
def test_every_form_of_naming_a_database_is_aimed_or_ignored_without_corrupting_what_follows(tmp_path, dump, expected):
    if expected is None:
        with pytest.raises(DumpRefused, match=r"line 1: USE without a database name"):
            rewritten(tmp_path, dump)
        return
    text, _ = rewritten(tmp_path, dump)
    assert text == expected
    assert text.count("\n") == dump.count("\n")


@pytest.mark.parametrize(
    ("dump", "line", "reason"),
    [
        ("SELECT 1;\n\\! touch /tmp/x\nSELECT 2;\n", 2, r"the client command \\!"),
        ("SELECT 1;\nsystem touch /tmp/x;\n", 2, "the client command 'system'"),
        ("SELECT 1;\n  source /etc/passwd\n", 2, "the client command 'source'"),
        ("SELECT 1;\ntee /tmp/out\n", 2, "the client command 'tee'"),
        ("SELECT 1; \\T /tmp/out\n", 1, r"the client command \\T"),
        ("\\u classicmodels\n", 1, r"the client command \\u"),
        ("SELECT 1;\nquit\nDROP TABLE t;\n", 2, "the client command 'quit'"),  # would end the load early, silently
        ("connect classicmodels 10.0.0.1\n", 1, "the client command 'connect'"),
        (
            "SELECT 1 /*! \\! touch /tmp/x */;\n",
            1,
            r"the client command \\!",
        ),  # the server runs /*! */: so does the client
        ("SELECT 1;\r\nSELECT 2 \\G\r\n", 2, r"the client command \\G"),
        (
            "DELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER t BEFORE INSERT"
            " ON x FOR EACH ROW SET NEW.a = 1 */;;\nDELIMITER ;\n",
            2,
            "CREATE TRIGGER: the import loads tables and rows only",
        ),
        ("CREATE DEFINER=CURRENT_USER PROCEDURE p() SELECT 1;\n", 1, "CREATE PROCEDURE"),
        ("SELECT 1;\nCREATE OR REPLACE ALGORITHM=MERGE VIEW v AS SELECT 1;\n", 2, "CREATE VIEW"),
        ("SET sql_mode = 'NO_BACKSLASH_ESCAPES';\n", 1, "a SET of NO_BACKSLASH_ESCAPES"),
        ("/*!40101 SET SQL_MODE='ANSI_QUOTES' */;\n", 1, "a SET of ANSI_QUOTES"),
        ("SELECT 1;\nINSERT INTO t VALUES ('never closed);\n", 2, "a ' quote opened on this line is never closed"),
        ("DELIMITER 'x'\n", 1, "a DELIMITER the import cannot read"),
    ],
)
def test_what_the_import_does_not_run_is_refused_with_its_line_before_anything_runs(tmp_path, dump, line, reason):
    source = tmp_path / "hostile.sql"
    source.write_text(dump, newline="")
    with pytest.raises(DumpRefused, match=rf"hostile\.sql, line {line}: {reason}") as refused:
        rewrite_dump(source, "scratch", tmp_path / "out.sql")
    assert refused.value.line == line
    assert "nothing was loaded" in str(refused.value)


@pytest.mark.parametrize(
    ("delimiter", "comment"),
    [("#", "# {}"), ("-", "-- {}"), ("--", "-- {}"), ("/", "/* {} */"), ("/*", "/* {} */")],
)
def test_a_delimiter_that_overlaps_a_comment_is_refused_for_the_client_would_run_what_the_comment_hides(
    tmp_path, delimiter, comment
):
    """The client looks for its delimiter before it looks for a comment (checked with the mariadb client): after
    `DELIMITER #`, `SELECT 1 # \\! touch x` is a statement, then a shell command. Found by the property test below."""
    source = tmp_path / "hidden.sql"
    hidden = comment.format("\\! touch /tmp/x")
    source.write_text(f"SELECT 0;\nDELIMITER {delimiter}\nSELECT 1 {hidden}\n")
    with pytest.raises(DumpRefused, match=r"hidden\.sql, line 2: a DELIMITER the import cannot read"):
        rewrite_dump(source, "scratch", tmp_path / "out.sql")


@pytest.mark.parametrize(
    "dump",
    [
        "CREATE TABLE t (`view` int, trigger_count int);\n",  # names, not objects
        "CREATE TABLE `procedure` (id int);\n",
        "DROP TRIGGER IF EXISTS t;\n",  # in the scratch database, harmless
        "INSERT INTO t VALUES ('SET sql_mode = NO_BACKSLASH_ESCAPES');\n",  # data
        "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n",
        "SELECT 'a\\\\';\n",  # an escaped backslash ends before the quote
        "SELECT 'status'; SELECT 1;\nstatusx INT;\n",  # not a client command word
    ],
)
def test_what_a_published_dump_holds_passes_unchanged(tmp_path, dump):
    assert rewritten(tmp_path, dump) == (dump, 0)


def test_mariadb_dumps_sandbox_line_passes_and_does_not_hide_the_next_statement(tmp_path):
    dump = "/*M!999999\\- enable the sandbox mode */\nUSE classicmodels;\nSELECT 1;\n"
    assert rewritten(tmp_path, dump) == ("USE `scratch`;\n\nSELECT 1;\n", 1)


# --- properties over generated dumps (tests/dump_strategies.py) ----------------------------------------------------


#: Examples per property: each costs ~4 ms, mostly generating it.
READER_EXAMPLES = 1000


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """One folder for every example (a folder made and removed per example cost more than the reading)."""
    return tmp_path_factory.mktemp("generated")


def _rewrite(folder: Path, dump: Dump) -> tuple[str, int]:
    source, target = folder / "generated.sql", folder / "out.sql"
    source.write_bytes(dump.text.encode())
    changed = rewrite_dump(source, "scratch", target)
    return target.read_bytes().decode(), changed


@settings(max_examples=READER_EXAMPLES, deadline=None, derandomize=True, database=None)
@given(dump=dumps(walls=(SERVER,)))
def test_a_dump_the_reading_passes_keeps_its_lines_and_changes_only_the_statements_naming_a_database(folder, dump):
    text, changed = _rewrite(folder, dump)
    original = dump.text.replace("\r\n", "\n").split("\n")
    rewritten = text.split("\n")
    assert len(rewritten) == len(original)
    for number, (before, after) in enumerate(zip(original, rewritten, strict=True), start=1):
        if number not in dump.changeable:
            assert after == before, f"line {number} changed"
        else:  # aimed at the scratch database or made a comment: no USE of the source's name is left
            assert not re.search(r"\bUSE\b\s*(/\*\*/)?\s*`?classicmodels", after, re.IGNORECASE), after
    assert changed == dump.redirects
    assert text.count("USE `scratch`") + text.count("/* recsys: ignored: ") == dump.redirects


@settings(max_examples=READER_EXAMPLES, deadline=None, derandomize=True, database=None)
@given(dump=dumps(required=READER, walls=(READER, SERVER)))
def test_a_dump_holding_what_the_reading_refuses_is_refused_at_the_first_such_line(folder, dump):
    expected = dump.stopped_by
    with pytest.raises(DumpRefused) as refused:
        _rewrite(folder, dump)
    assert refused.value.line == expected.line, f"refused line {refused.value.line}, expected {expected}"
    assert re.search(rf"generated\.sql, line {expected.line}: {expected.reason}", str(refused.value))
