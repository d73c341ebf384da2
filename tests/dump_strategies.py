"""Hypothesis strategies for SQL dumps shaped like classicmodels dumps (the published file's and mysqldump's forms)
that mix valid content with hostile elements, each dump with what the import must answer.

Valid content: every table of :mod:`recsys_local.seed.schema` created and filled with rows of its columns' types,
strings holding ``;``, quotes, ``USE classicmodels;``, comment openers, line breaks and client commands as data,
comments of every kind, mysqldump's ``/*!40101 ... */`` statements, ``USE`` and ``CREATE/DROP DATABASE`` in their
forms, ``DELIMITER`` blocks; each dump in LF, CRLF or mixed line endings, with or without a final newline, and
sometimes two files joined, the first without its final newline (so its last line runs on into the second's first).

A hostile element is stopped by one of two walls, which the test must see stop it on its line:

- :data:`READER`: the reading before anything runs (:func:`recsys_local.seed.dump.rewrite_dump`): client commands
  (in ``/*! */`` and inside a statement too), triggers, routines, events, views, a ``SET`` of a quoting mode, a
  ``USE`` without a name on its line, a ``DELIMITER`` a comment can start at;
- :data:`SERVER`: what the reading passes and MariaDB refuses (the import user's grants cover the scratch database
  only and no FILE privilege; the client runs with ``--local-infile=0``): :data:`SERVER_FORMS`.

The reading reads the whole file first, so the element the import stops at is the first one of the reader's, or,
when there is none, the first one of the server's (:attr:`Dump.stopped_by`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from hypothesis import strategies as st

from recsys_local.seed.schema import COLUMNS, DDL, TABLES

T = TypeVar("T")
READER = "reader"
SERVER = "server"


@dataclass(frozen=True)
class Piece:
    """A few whole lines of a dump (``\\n`` between them, none at the end), starting where no statement is open."""

    text: str
    hostile: str | None = None  # READER or SERVER
    at: int = 0  # the line within the piece the import must name (a statement's first line)
    reason: str = ""  # a pattern of the reading's refusal (READER pieces)
    redirects: int = 0  # USE / CREATE, DROP, ALTER DATABASE statements the reading changes (on this piece's lines)


@dataclass(frozen=True)
class Hostile:
    line: int
    wall: str
    reason: str
    text: str


@dataclass(frozen=True)
class Dump:
    text: str  # the file's content
    hostile: tuple[Hostile, ...]  # in file order
    changeable: frozenset[int]  # the lines a statement the reading changes is on (1-based)
    redirects: int  # statements the reading changes

    @property
    def stopped_by(self) -> Hostile | None:
        """The element the import must stop at, or None for a dump the reading passes and the server runs."""
        readers = [h for h in self.hostile if h.wall == READER]
        return readers[0] if readers else (self.hostile[0] if self.hostile else None)


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # int, smallint, decimal, date, string, blob
    size: int  # bytes, for strings
    nullable: bool
    key: bool


def _columns(table: str) -> tuple[_Column, ...]:
    """The table's columns (:data:`recsys_local.seed.schema.COLUMNS`) with their types as its DDL defines them."""
    ddl = DDL[table]
    primary = re.search(r"PRIMARY KEY \(([^)]*)\)", ddl)
    assert primary is not None
    keys = set(re.findall(r"`(\w+)`", primary.group(1)))
    columns = []
    for name in COLUMNS[table]:
        found = re.search(rf"^\s*`{name}` (\w+)(?:\((\d+)(?:,\d+)?\))?(.*)$", ddl, re.MULTILINE)
        assert found is not None, (table, name)
        sql_type, size, rest = found.groups()
        kind = {"int": "int", "smallint": "smallint", "decimal": "decimal", "date": "date", "mediumblob": "blob"}.get(
            sql_type, "string"
        )
        limit = int(size) if sql_type == "varchar" else 200  # text columns: short enough to keep dumps small
        columns.append(_Column(name, kind, min(limit, 200), "NOT NULL" not in rest, name in keys))
    return tuple(columns)


SHAPES = {table: _columns(table) for table in TABLES}

#: What a string holds, as written between single quotes; ``{db}``, ``{w}`` and ``{src}`` are filled in.
STRING_PARTS = (
    "Land of Toys",
    "é",
    ";",
    "; USE {db};",
    "USE {db};",
    "\\'",
    "''",
    "\\\\",
    '"',
    "`",
    "\\n",
    "\n",
    "-- ",
    "#",
    "/*",
    "*/",
    "\\t",
    "\\N",
    "$$",
    ";;",
    "//",
    "\\! touch {w}/in-a-string",
    "\nsystem touch {w}/in-a-string\n",
    "\nsource {src}\n",
    "\nDELIMITER //\n",
    "\nquit\n",
    "\n\\u {db}\n",
)
COMMENT_TEXTS = (
    "Dumping data for table `customers`",
    "USE {db};",
    "\\! touch {w}/in-a-comment",
    "it's",
    'a "quoted',
    "x; DROP TABLE customers;",
    "DELIMITER $$",
    "`",
    "system touch {w}/in-a-comment",
    "source {src}",
    "/*",
    "--",
    "#",
    "é",
    "",
)
#: Statements as mysqldump and the published dump write them, and a few more (``{d}``: the delimiter).
STATEMENTS = (
    "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */{d}",
    "/*!40101 SET NAMES utf8mb4 */{d}",
    "/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */{d}",
    "/*!40103 SET TIME_ZONE='+00:00' */{d}",
    "/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */{d}",
    "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */{d}",
    "/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */{d}",
    "SET NAMES utf8mb4{d}",
    "SET @fuzz_note = 'USE {db}; \\! touch {w}/in-a-string'{d}",
    'SET @fuzz_note = "it\'s; USE {db};"{d}',
    "SELECT 1 /* ; */ + 1{d}",
    "SET @fuzz_a = 1; SET @fuzz_b = 'x;y'{d}",
    "SET @fuzz_a = 2;\nSET @fuzz_b = '\nUSE {db};\n'{d}",
    "/*!40000 SET @fuzz_c = 'a;b' */{d}",
    "SET FOREIGN_KEY_CHECKS=0{d}",
)
DATABASE_STATEMENTS = (
    "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `{db}` /*!40100 DEFAULT CHARACTER SET latin1 */{d}",
    "/*!40000 DROP DATABASE IF EXISTS `{db}`*/{d}",
    "CREATE DATABASE IF NOT EXISTS `{db}`{d}",
    "CREATE DATABASE\n  IF NOT EXISTS {db}\n  CHARACTER SET utf8mb4{d}",
    "CREATE DATABASE c COMMENT 'a;b'{d}",
    "CREATE OR REPLACE SCHEMA {db}{d}",
    "DROP SCHEMA IF EXISTS {db}{d}",
    "ALTER DATABASE {db} CHARACTER SET utf8mb4{d}",
    "create database if not exists {db}{d}",
)
USE_STATEMENTS = (
    "USE {db}{d}",
    "USE `{db}`{d}",
    "use {db} {d}",
    "USE/**/{db}{d}",
    "/* c */ USE {db}{d}",
    "SET NAMES utf8mb4{d}USE {db}{d}",
    "USE {db}",  # the client's form: no delimiter
    "  USE {db}{d}",
    "USE {db}{d} -- and a comment",
)
DELIMITERS = (";;", "$$", "//")
#: Delimiters a comment starts with or that start a comment: what follows them on a line is a comment to a reading
#: that looks for comments first, and code to the client, which looks for its delimiter first.
#: (Each with the comment it hides a client command in.)
COMMENT_DELIMITERS = (("#", "# {}"), ("-", "-- {}"), ("--", "-- {}"), ("/", "/* {} */"), ("/*", "/* {} */"))


@dataclass
class _State:
    db: str
    watched: str
    sourced: str
    delimiter: str = ";"
    created: list[str] = field(default_factory=list)
    serial: int = 0

    def fill(self, template: str) -> str:
        return (
            template.replace("{db}", self.db)
            .replace("{w}", self.watched)
            .replace("{src}", self.sourced)
            .replace("{d}", self.delimiter)
        )

    def next(self) -> int:
        self.serial += 1
        return self.serial


Draw = Callable[[st.SearchStrategy], object]


def _pick(draw: Draw, options: Sequence[T]) -> T:
    """One of ``options`` (``sampled_from`` builds a strategy for every new sequence: the cost of the generation)."""
    return options[draw(st.integers(0, len(options) - 1))]  # type: ignore[index]


def _evenly(draw: Draw, options: Sequence[T]) -> T:
    """One of ``options``, each as likely: hypothesis favours the first few of a short range, and each hostile form
    tests a different part of the walls (a seed drawn from a wide range picks evenly)."""
    return random.Random(draw(st.integers(0, 2**32 - 1))).choice(options)


def _string(rng: random.Random, state: _State, size: int) -> str:
    quote = rng.choice(("'", "'", '"'))
    text = ""
    for part in rng.choices(STRING_PARTS, k=rng.randint(0, 5)):
        part = state.fill(part)
        if quote == '"':
            part = {"\\'": '\\"', "''": '""', '"': "'"}.get(part, part)
        if len((text + part).encode()) <= size:
            text += part
    return quote + text + quote


def _value(rng: random.Random, state: _State, column: _Column, serial: int) -> str:
    if column.key:
        return str(serial) if column.kind == "int" else rng.choice((f"'K{serial}'", f"'K;{serial}'"))
    if column.nullable and rng.random() < 0.2:
        return "NULL"
    if column.kind == "int":
        return str(rng.randint(0, 2**31 - 1))
    if column.kind == "smallint":
        return str(rng.randint(-32768, 32767))
    if column.kind == "decimal":
        return f"{rng.randint(0, 99_999_999)}.{rng.randint(0, 99):02d}"
    if column.kind == "date":
        return f"'{rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}'"
    if column.kind == "blob":
        return rng.choice(("0x89504E470D0A1A0A", "_binary 'x;y'", "''"))
    return _string(rng, state, column.size)


def _row(draw: Draw, state: _State, table: str) -> str:
    """One row of the table's column types; its values come from one drawn seed (a draw per value made the
    generation, not the reading, the cost of the reader's property test)."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    serial = state.next()
    return "(" + ",".join(_value(rng, state, column, serial) for column in SHAPES[table]) + ")"


def _comment(draw: Draw, state: _State) -> Piece:
    first, second = (state.fill(_pick(draw, COMMENT_TEXTS)) for _ in range(2))
    forms = (
        f"-- {first}",
        f"--\t{first}",
        f"#{first}",
        f"# {first}",
        "--",
        "",
        f"/* {first} */",
        f"/*\n{first}\n{second}\n*/",
        f"/* {first} */ /* {second} */",
    )
    return Piece(_pick(draw, forms))


def _statement(draw: Draw, state: _State) -> Piece:
    return Piece(state.fill(_pick(draw, STATEMENTS)))


def _database(draw: Draw, state: _State) -> Piece:
    return Piece(state.fill(_pick(draw, DATABASE_STATEMENTS)), redirects=1)


def _use(draw: Draw, state: _State) -> Piece:
    return Piece(state.fill(_pick(draw, USE_STATEMENTS)), redirects=1)


def _table(draw: Draw, state: _State) -> Piece:
    table = _pick(draw, TABLES)
    lines = ["--", f"-- Table structure for table `{table}`", "--", ""] if draw(st.booleans()) else []
    lines.append(state.fill(f"DROP TABLE IF EXISTS `{table}`{{d}}"))
    charset = draw(st.booleans())
    if charset:
        lines.append(state.fill("/*!40101 SET @saved_cs_client     = @@character_set_client */{d}"))
        lines.append(state.fill("/*!40101 SET character_set_client = utf8mb4 */{d}"))
    lines.append(DDL[table].strip() + " DEFAULT CHARSET=utf8mb4" + state.delimiter)
    if charset:
        lines.append(state.fill("/*!40101 SET character_set_client = @saved_cs_client */{d}"))
    if table not in state.created:
        state.created.append(table)
    return Piece("\n".join(lines))


def _insert(draw: Draw, state: _State) -> Piece:
    if not state.created:
        return _table(draw, state)
    table = _pick(draw, state.created)
    rows = [_row(draw, state, table) for _ in range(draw(st.integers(1, 3)))]
    d = state.delimiter
    columns = ", ".join(f"`{name}`" for name in COLUMNS[table])
    forms = (
        f"INSERT INTO `{table}` VALUES {','.join(rows)}{d}",
        f"INSERT INTO `{table}` ({columns}) VALUES {','.join(rows)}{d}",
        f"INSERT INTO `{table}` VALUES\n" + ",\n".join(rows) + d,
        f"REPLACE INTO `{table}` VALUES {','.join(rows)}{d}",
        f"INSERT /* ; USE x; */ INTO {table} VALUES {','.join(rows)}{d}",
        "\n".join(
            [
                f"LOCK TABLES `{table}` WRITE{d}",
                f"/*!40000 ALTER TABLE `{table}` DISABLE KEYS */{d}",
                f"INSERT INTO `{table}` VALUES {','.join(rows)}{d}",
                f"/*!40000 ALTER TABLE `{table}` ENABLE KEYS */{d}",
                f"UNLOCK TABLES{d}",
            ]
        ),
    )
    return Piece(_pick(draw, forms))


def _delimiter(draw: Draw, state: _State) -> Piece:
    if state.delimiter == ";":
        state.delimiter = _pick(draw, DELIMITERS)
    else:
        state.delimiter = _pick(draw, (";", ";", *DELIMITERS))
    return Piece(f"DELIMITER {state.delimiter}")


def _qualified(draw: Draw, state: _State, table: str) -> str:
    db = state.db
    forms = (f"{db}.{table}", f"`{db}`.`{table}`", f"{db} . {table}", f"`{db}` /* x */ . `{table}`", f"{db}.`{table}`")
    return _pick(draw, (*forms, f"{db.upper()}.{table}"))


#: What the reading passes and the server refuses, with the line (of the piece) the refused statement starts on:
#: a name of the live database (``{ratings}``, ``{customers}``, ``{table}``: written in one of :func:`_qualified`'s
#: ways) or of another one, the FILE privilege, a local file.
SERVER_FORMS = (
    ("INSERT INTO {ratings} VALUES (1,'S10_1678',5){d}", 0),
    ("DROP TABLE IF EXISTS {ratings}{d}", 0),
    ("DELETE FROM {ratings}{d}", 0),
    ("UPDATE {customers} SET creditLimit = 0{d}", 0),
    ("TRUNCATE TABLE {ratings}{d}", 0),
    ("CREATE TABLE {table} (id int){d}", 0),
    ("ALTER TABLE {customers} ADD COLUMN fuzz int{d}", 0),
    ("CREATE TABLE fuzz_{n} (id int){d}\nRENAME TABLE fuzz_{n} TO {table}{d}", 1),
    ("CREATE TABLE fuzz_{n} AS SELECT * FROM {customers}{d}", 0),
    ("/*!40000 DELETE FROM {ratings} */{d}", 0),
    ("SELECT * FROM {customers}{d}", 0),
    ("SELECT * FROM mysql.user{d}", 0),
    ("SELECT 'x' INTO OUTFILE '{w}/outfile'{d}", 0),
    ("SELECT 1 INTO DUMPFILE '{w}/dumpfile'{d}", 0),
    ("CREATE TABLE fuzz_{n} (a text){d}\nLOAD DATA LOCAL INFILE '{src}' INTO TABLE fuzz_{n}{d}", 1),
    ("CREATE TABLE fuzz_{n} (a text){d}\nLOAD DATA INFILE '{src}' INTO TABLE fuzz_{n}{d}", 1),
    ("PREPARE fuzz_{n} FROM 'DELETE FROM {ratings}'{d}", 0),
    ("HANDLER {ratings} OPEN{d}", 0),
    ("GRANT SELECT ON `{db}`.* TO CURRENT_USER{d}", 0),
    ("SET @fuzz = 1; DELETE FROM {ratings}{d}", 0),
    ("CREATE TABLE fuzz_{n} (id int){d}\nINSERT INTO fuzz_{n} SELECT customerNumber FROM {customers}{d}", 1),
    # one statement to the client, two to the server: the USE is not where a statement starts (in a block of its own
    # when the delimiter is `;`; the client names the block's first line)
    ("SELECT 1;\nUSE {db}{d}", 0),
)


def _server_hostile(draw: Draw, state: _State, form: int | None = None) -> Piece:
    """One of :data:`SERVER_FORMS` (``form``, or any)."""
    template, at = SERVER_FORMS[form] if form is not None else _evenly(draw, SERVER_FORMS)
    if "USE {db}" in template and state.delimiter == ";":
        template, at = f"DELIMITER ;;\n{template.replace('{d}', ';;')}\nDELIMITER ;", 1
    n = state.next()
    text = (
        state.fill(template)
        .replace("{ratings}", _qualified(draw, state, "ratings"))
        .replace("{customers}", _qualified(draw, state, "customers"))
        .replace("{table}", _qualified(draw, state, f"fuzz_{n}"))
        .replace("{n}", str(n))
    )
    return Piece(text, SERVER, at)


def _reader_hostile(draw: Draw, state: _State) -> Piece:
    """What the reading refuses before anything runs; ``at`` is the line it must name."""
    d, db, w, src = state.delimiter, state.db, state.watched, state.sourced
    shell = r"the client command \\!"
    hiding, comment = _pick(draw, COMMENT_DELIMITERS)
    trigger = (
        (
            "DELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `fuzz_t` BEFORE "
            f"INSERT ON `customers` FOR EACH ROW BEGIN\nDELETE FROM `{db}`.`ratings`;\nEND */;;\nDELIMITER ;",
            1,
        )
        if d == ";"
        else (f"CREATE TRIGGER fuzz_t BEFORE INSERT ON customers\nFOR EACH ROW SET NEW.creditLimit = 0{d}", 0)
    )
    forms = [
        (f"\\! touch {w}/shell", 0, shell),
        (f"  \\! touch {w}/shell", 0, shell),
        (f"SELECT 1{d} \\! touch {w}/shell-after-a-statement", 0, shell),
        (f"system touch {w}/system", 0, "the client command 'system'"),
        (f"SYSTEM touch {w}/system{d}", 0, "the client command 'system'"),
        (f"source {src}", 0, "the client command 'source'"),
        (f"SOURCE {src}{d}", 0, "the client command 'source'"),
        (f"\\. {src}", 0, r"the client command \\\."),
        (f"tee {w}/tee", 0, "the client command 'tee'"),
        (f"\\T {w}/tee", 0, r"the client command \\T"),
        ("notee", 0, "the client command 'notee'"),
        (f"\\u {db}", 0, r"the client command \\u"),
        (f"connect {db}", 0, "the client command 'connect'"),
        ("quit", 0, "the client command 'quit'"),
        ("exit", 0, "the client command 'exit'"),
        ("\\q", 0, r"the client command \\q"),
        (f"SELECT 1 /*!99999 \\! touch {w}/in-an-executable-comment */{d}", 0, shell),
        (f"/*!40101 SET NAMES utf8mb4\n\\! touch {w}/in-an-executable-comment */{d}", 1, shell),
        (f"INSERT INTO `customers` VALUES\n\\! touch {w}/inside-a-statement\n(1){d}", 1, shell),
        (*trigger, "CREATE TRIGGER: the import loads tables and rows only"),
        (
            f"CREATE DEFINER=`root`@`localhost` PROCEDURE `fuzz_p`()\nBEGIN\n  DELETE FROM `{db}`.`ratings`;\nEND{d}",
            0,
            "CREATE PROCEDURE",
        ),
        (f"CREATE FUNCTION fuzz_f() RETURNS INT RETURN 1{d}", 0, "CREATE FUNCTION"),
        (f"CREATE EVENT fuzz_e ON SCHEDULE EVERY 1 MINUTE DO DELETE FROM `{db}`.`ratings`{d}", 0, "CREATE EVENT"),
        (
            "/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n"
            f"/*!50001 VIEW `fuzz_v` AS SELECT * FROM `{db}`.`customers` */{d}",
            0,
            "CREATE VIEW",
        ),
        (f"CREATE OR REPLACE ALGORITHM=MERGE VIEW fuzz_v AS SELECT 1{d}", 0, "CREATE VIEW"),
        (f"SET sql_mode = 'ANSI_QUOTES'{d}", 0, "a SET of ANSI_QUOTES"),
        (f"/*!40101 SET SQL_MODE='NO_BACKSLASH_ESCAPES' */{d}", 0, "a SET of NO_BACKSLASH_ESCAPES"),
        (f"SET SESSION sql_mode = CONCAT(@@sql_mode, ',ansi_quotes'){d}", 0, "a SET of ANSI_QUOTES"),
        (f"USE\n {db}{d}", 0, "USE without a database name on its line"),
        (  # the client ends a statement at its delimiter before it looks for a comment: `#` here is not one
            f"DELIMITER {hiding}\nSELECT 1 " + comment.format(f"\\! touch {w}/behind-a-delimiter"),
            0,
            "a DELIMITER the import cannot read",
        ),
    ]
    text, at, reason = _evenly(draw, forms)
    return Piece(text, READER, at, reason)


BENIGN: tuple[Callable[[Draw, _State], Piece], ...] = (
    _comment,
    _comment,
    _statement,
    _database,
    _use,
    _table,
    _table,
    _insert,
    _insert,
    _insert,
    _delimiter,
)


def _header(draw: Draw, state: _State, first: bool) -> Piece:
    """A file's opening: mariadb-dump's sandbox line (first file only), comments, foreign key checks off (rows of a
    child table may come before their parents')."""
    lines = ["/*M!999999\\- enable the sandbox mode */"] if first and draw(st.booleans()) else []
    lines += _pick(
        draw,
        (
            (),
            ("-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)", "--", "-- Host: localhost"),
            ("/* classicmodels sample database, as published */",),
            ("#", "# a comment", "--\tanother"),
        ),
    )
    lines.append("/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;")
    return Piece("\n".join(lines))


def _file(
    draw: Draw,
    state: _State,
    first: bool,
    last: bool,
    body: int,
    hostile_at: int,
    required: str | None,
    walls: tuple[str, ...],
    server_form: int | None,
) -> list[Piece]:
    pieces = [_header(draw, state, first)]
    for index in range(body):
        wall = required if index == hostile_at else _pick(draw, (None,) * 9 + walls)
        delimiter = state.delimiter
        if wall == READER:
            piece = _reader_hostile(draw, state)
        elif wall == SERVER:
            piece = _server_hostile(draw, state, server_form if index == hostile_at else None)
        else:
            piece = _pick(draw, BENIGN)(draw, state)
        if delimiter.startswith("/"):  # `*///` is `*` and the delimiter to the client (and the reading): keep apart
            piece = replace(piece, text=piece.text.replace("*/" + delimiter, "*/ " + delimiter))
        pieces.append(piece)
    if state.delimiter != ";" and (not last or draw(st.booleans())):
        state.delimiter = ";"
        pieces.append(Piece("DELIMITER ;"))
    if not last:  # ends with a whole statement, which the next file's first line continues
        pieces.append(Piece("/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;"))
    return pieces


@st.composite
def dumps(
    draw: Draw,
    database: str = "classicmodels",
    watched: str = "/nonexistent/watched",
    sourced: str = "/nonexistent/sourced.sql",
    required: str | None = None,
    walls: tuple[str, ...] = (),
    server_form: int | None = None,
) -> Dump:
    """A dump holding at least one hostile element of the ``required`` wall (READER, SERVER; None: not one; of
    :data:`SERVER_FORMS`' ``server_form`` if given), and at random more of the ``walls`` named; ``watched`` is the
    folder the client commands aim at, ``sourced`` a file the ``source`` commands name."""
    state = _State(database, watched, sourced)
    files = _pick(draw, (1, 1, 2))
    bodies = [draw(st.integers(1, 8)) for _ in range(files)]
    hostile_at = draw(st.integers(0, sum(bodies) - 1)) if required else -1
    pieces: list[list[Piece]] = []
    for index, body in enumerate(bodies):
        last = index == files - 1
        pieces.append(_file(draw, state, index == 0, last, body, hostile_at, required, walls, server_form))
        hostile_at -= body
    ending = _pick(draw, ("\n", "\r\n", "mixed"))
    return _assemble(pieces, ending, draw(st.booleans()), draw(st.integers(2, 5)))


def _assemble(files: list[list[Piece]], ending: str, final_newline: bool, every: int) -> Dump:
    text, hostile, changeable, redirects = "", [], set(), 0
    for index, pieces in enumerate(files):
        for number, piece in enumerate(pieces):
            if number:
                text += "\n"
            line = text.count("\n") + 1
            if piece.hostile:
                hostile.append(Hostile(line + piece.at, piece.hostile, piece.reason, piece.text.split("\n")[piece.at]))
            if piece.redirects:
                changeable.update(range(line, line + piece.text.count("\n") + 1))
                redirects += piece.redirects
            text += piece.text
        if index == len(files) - 1 and final_newline:
            text += "\n"
    lines = text.split("\n")
    if ending == "mixed":
        endings = ["\r\n" if number % every == 0 else "\n" for number in range(len(lines) - 1)]
    else:
        endings = [ending] * (len(lines) - 1)
    written = "".join(line + end for line, end in zip(lines, endings, strict=False)) + lines[-1]
    return Dump(written, tuple(hostile), frozenset(changeable), redirects)
