"""Reading a SQL dump before it runs: what it may do, aimed at the import's scratch database, refused with its line
otherwise.

The ``mariadb`` client reads a dump line by line and splits it into statements outside quotes and comments, after
the delimiter (``;`` unless a ``DELIMITER`` line changed it); it also runs client commands (``\\!`` and ``system``
start a shell, ``source``/``tee``/``\\T`` read and write files, ``connect`` reaches another server, ``quit`` ends the
load early). A dump is data: :func:`rewrite_dump` reads it the way the client does and

- refuses every client command but ``DELIMITER`` (and ``USE``, below), naming the line, before anything runs;
- aims ``USE x`` (the statement, anywhere one starts, and the client's form without a delimiter) at the scratch
  database, and turns ``CREATE``/``DROP``/``ALTER DATABASE`` (mysqldump's ``/*!40000 ... */`` form too) into
  comments: the import makes and drops the scratch database itself;
- refuses triggers, routines, events and views (they would run as the import's one-off user, which is dropped after
  the load: MariaDB's error 1449 the first time one fires) and a ``SET`` of the ``ANSI_QUOTES`` or
  ``NO_BACKSLASH_ESCAPES`` modes (they change where a string ends, so the client would split the rest of the file
  differently from this reading).

What it cannot see is kept out by the rest: the client runs with ``--sandbox`` and ``--binary-mode`` (no client
command but ``DELIMITER`` is parsed at all) and ``--local-infile=0``, as a user whose grants cover only the scratch
database. The grants are the guarantee; this reading makes a published dump load and a hostile one fail early, with
its line. (sqlglot's MySQL tokenizer does not fit: it drops ``/*!40000 ... */`` as a comment and knows neither
``DELIMITER`` nor client commands.)
"""

from __future__ import annotations

import re
from pathlib import Path

from recsys_local.process import StackError

#: The ``mariadb`` client's named commands (10.11, ``help``); a line starting with one, where a statement starts, is
#: a client command, with or without a delimiter.
CLIENT_COMMANDS = frozenset(
    {
        "?",
        "charset",
        "clear",
        "connect",
        "delimiter",
        "edit",
        "ego",
        "exit",
        "go",
        "help",
        "nopager",
        "notee",
        "nowarning",
        "pager",
        "print",
        "prompt",
        "quit",
        "rehash",
        "source",
        "status",
        "system",
        "tee",
        "use",
        "warnings",
    }
)
#: Backslash sequences a dump may hold outside strings: ``\\N`` (NULL) and ``\\-`` (the client's sandbox mode, which
#: mariadb-dump writes on its first line as ``/*M!999999\\- enable the sandbox mode */``).
SAFE_ESCAPES = frozenset({"N", "-"})
#: Objects that run as their definer: refused (see the module docstring).
DEFINER_OBJECTS = frozenset({"TRIGGER", "PROCEDURE", "FUNCTION", "EVENT", "VIEW", "PACKAGE"})
#: sql_mode flags that move where a string ends.
QUOTING_MODES = ("ANSI_QUOTES", "NO_BACKSLASH_ESCAPES")
#: What starts a comment outside strings (``--`` with a space after it).
COMMENT_OPENERS = ("/*", "#", "--")

_LINE_COMMAND = re.compile(r"[ \t]*([A-Za-z]+|\?)(?=[ \t\r\n;]|$)")
_TOKEN = re.compile(r"'(?:\\.|''|[^'\\])*'?|\"(?:\\.|\"\"|[^\"\\])*\"?|`(?:``|[^`])*`?|[\w$@.]+|\S", re.DOTALL)
_EXECUTABLE_COMMENT = re.compile(r"/\*M?!\d*")


class DumpRefused(StackError):
    """A dump holds something the import does not run; nothing of it ran."""

    def __init__(self, dump: Path, line: int, reason: str, text: str) -> None:
        self.dump, self.line, self.reason = dump, line, reason
        super().__init__(f"{dump}, line {line}: {reason}; nothing was loaded\n  line {line}: {text.strip()[:200]}")


def sql_tokens(statement: str, limit: int = 64) -> list[str]:
    """The first ``limit`` tokens of a statement as the server reads it: comments dropped, mysqldump's executable
    comments (``/*!40000 ... */``, ``/*M!100100 ... */``) opened; strings and quoted names one token each."""
    tokens: list[str] = []
    i, n, executable = 0, len(statement), 0
    while i < n and len(tokens) < limit:
        if statement[i].isspace():
            i += 1
            continue
        if statement.startswith("\\-", i):  # the client's sandbox command; in a comment, the client drops the rest
            end = statement.find("*/", i) if executable else -1
            i, executable = (i + 2, executable) if end < 0 else (end + 2, executable - 1)
            continue
        opened = _EXECUTABLE_COMMENT.match(statement, i)
        if opened:
            executable += 1
            i = opened.end()
            continue
        if statement.startswith("*/", i) and executable:
            executable -= 1
            i += 2
            continue
        if statement.startswith("/*", i):
            end = statement.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if statement[i] == "#" or (statement.startswith("--", i) and (i + 2 == n or statement[i + 2].isspace())):
            end = statement.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        token = _TOKEN.match(statement, i)
        assert token is not None
        tokens.append(token.group(0))
        i = token.end()
    return tokens


def _unquoted(token: str) -> str:
    return token[1:-1] if len(token) > 1 and token[0] == token[-1] and token[0] in "`'\"" else token


def classify(statement: str) -> tuple[str, str]:
    """(kind, detail) of a statement: ``use``, ``database``, ``definer`` (a trigger, routine, event or view),
    ``quoting`` (a SET of a quoting mode) or ``other``."""
    tokens = sql_tokens(statement)
    words = [t.upper() for t in tokens]
    if not words:
        return "other", ""
    if words[0] == "USE" and len(words) > 1:
        return "use", _unquoted(tokens[1])
    if words[0] in ("CREATE", "DROP", "ALTER"):
        head = [w for w in words[1:4] if w not in ("OR", "REPLACE")]
        if head and head[0] in ("DATABASE", "SCHEMA"):
            return "database", f"{words[0]} {head[0]}"
        if words[0] != "DROP":
            for word in words[1:16]:
                if word in DEFINER_OBJECTS:
                    return "definer", f"{words[0]} {word}"
                if word in ("TABLE", "INDEX", "(", "SEQUENCE", "USER", "ROLE", "SERVER"):
                    break
    if words[0] == "SET":
        upper = statement.upper()
        for mode in QUOTING_MODES:
            if mode in upper:
                return "quoting", mode
    return "other", ""


def _overlaps_a_comment(delimiter: str) -> bool:
    """Whether a comment can start where this delimiter does. The client looks for its delimiter before it looks for
    a comment, this reading the other way round: with ``DELIMITER #``, ``SELECT 1 # \\! touch x`` is a comment here
    and a statement then a shell command to the client, so such a delimiter is refused."""
    return any(delimiter.startswith(opener) or opener.startswith(delimiter) for opener in COMMENT_OPENERS)


class _Reader:
    """The client's reading of a dump, line by line (``mariadb``'s ``add_line``): quotes (``'``, ``"``, backticks,
    with backslash escapes outside backticks), comments (``/* */``; ``-- `` and ``#`` to the end of the line;
    ``/*!`` is not a comment: the server runs its content) and the delimiter."""

    def __init__(self, dump: Path, database: str) -> None:
        self.dump, self.database = dump, database
        self.quote = ""  # the open quote character
        self.comment = False  # inside /* */
        self.delimiter = ";"
        self.statement: list[str] = []  # from its first character that is not a space or comment
        self.statement_line = 0
        self.opened_line, self.opened_text = 0, ""  # where the open quote or comment started
        self.changed = 0

    def refuse(self, line: int, reason: str, text: str) -> DumpRefused:
        return DumpRefused(self.dump, line, reason, text)

    def line(self, number: int, line: str) -> str:
        """What the rewritten dump holds for this line; a statement is held until its delimiter."""
        if line.endswith("\r\n"):  # the client drops it without --binary-mode (with it, `\r` would become data)
            line = line[:-2] + "\n"
        if not self.statement and not self.quote and not self.comment:
            command = _LINE_COMMAND.match(line)
            if command and command.group(1).lower() in CLIENT_COMMANDS:
                handled = self._client_command(number, line, command)
                if handled is not None:
                    return handled
        out: list[str] = []
        i, n = 0, len(line)
        while i < n:
            target = self.statement if self.statement else out
            char = line[i]
            if self.comment:
                end = line.find("*/", i)
                if end < 0:
                    target.append(line[i:])
                    break
                target.append(line[i : end + 2])
                i, self.comment = end + 2, False
                continue
            if self.quote:
                if char == "\\" and self.quote != "`":
                    target.append(line[i : i + 2])
                    i += 2
                    continue
                if char == self.quote:
                    self.quote = ""
                target.append(char)
                i += 1
                continue
            if char == "\\" and line[i + 1 : i + 2] not in SAFE_ESCAPES:
                raise self.refuse(number, f"the client command \\{line[i + 1 : i + 2].strip()}", line)
            if line.startswith("/*", i) and not (line.startswith("/*!", i) or line.startswith("/*M!", i)):
                self.comment = True
                self.opened_line, self.opened_text = number, line
                target.append("/*")
                i += 2
                continue
            if char == "#" or (line.startswith("--", i) and (i + 2 == n or line[i + 2].isspace())):
                target.append(line[i:])
                break
            if line.startswith(self.delimiter, i):
                out.append(self._end_statement(number) if self.statement else self.delimiter)
                i += len(self.delimiter)
                continue
            if char.isspace():
                target.append(char)
                i += 1
                continue
            if not self.statement:
                self.statement_line = number
                target = self.statement
            if char in "'\"`":
                self.quote = char
                self.opened_line, self.opened_text = number, line
            target.append(char)
            i += 1
        return "".join(out)

    def _client_command(self, number: int, line: str, command: re.Match[str]) -> str | None:
        name = command.group(1).lower()
        rest = line[command.end() :].strip()
        if name == "delimiter":
            delimiter = rest.split()[0] if rest else ""
            if not delimiter or delimiter[0] in "'\"`" or "\\" in delimiter or _overlaps_a_comment(delimiter):
                raise self.refuse(
                    number,
                    "a DELIMITER the import cannot read (none, quoted, with \\, or one a comment starts with or that "
                    "starts a comment: #, -, --, /, /*)",
                    line,
                )
            self.delimiter = delimiter
            return line
        if name in ("use", "help") and self.delimiter in rest:
            return None  # a statement (USE x; HELP 'x';), read as one
        if name == "use":
            if not rest:
                raise self.refuse(number, "USE without a database name on its line", line)
            self.changed += 1
            ending = "\n" if line.endswith("\n") else ""
            return line[: len(line) - len(line.lstrip())] + f"USE `{self.database}`{self.delimiter}{ending}"
        raise self.refuse(number, f"the client command '{name}' (a dump is SQL only)", line)

    def _end_statement(self, number: int) -> str:
        text = "".join(self.statement)
        start, self.statement = self.statement_line, []
        kind, detail = classify(text)
        if kind == "use":
            self.changed += 1
            return f"USE `{self.database}`{self.delimiter}" + "\n" * text.count("\n")
        if kind == "database":
            self.changed += 1
            ignored = (text + self.delimiter).replace("/*", "/ *").replace("*/", "* /")
            return f"/* recsys: ignored: {ignored} */"
        if kind == "definer":
            raise self.refuse(
                start,
                f"{detail}: the import loads tables and rows only; a trigger, routine, event or view would run as "
                "the import's one-off user, which is dropped after the load (dump without them: mysqldump "
                "--skip-triggers, and without --routines or --events)",
                text.splitlines()[0],
            )
        if kind == "quoting":
            raise self.refuse(
                start,
                f"a SET of {detail}: it changes where strings end, and the import reads the dump with MariaDB's "
                "default quoting",
                text.splitlines()[0],
            )
        return text + self.delimiter

    def end(self, number: int) -> str:
        """The end of the file: a last statement without its delimiter runs as the client runs it, at the end."""
        if self.quote or self.comment:
            what = "a comment" if self.comment else f"a {self.quote} quote"
            raise self.refuse(self.opened_line, f"{what} opened on this line is never closed", self.opened_text)
        return self._end_statement(number) if self.statement else ""


def rewrite_dump(dump: Path, database: str, out: Path) -> int:
    """Copy ``dump`` into ``out`` aimed at ``database`` (see the module docstring); line numbers stay those of the
    original file, so the client's errors point into it. Returns how many statements were changed; raises
    :class:`DumpRefused` naming the line of anything the import does not run."""
    reader = _Reader(dump, database)
    number = 0
    with open(dump, "rb") as source, open(out, "wb") as target:
        for number, raw in enumerate(source, start=1):
            text = reader.line(number, raw.decode("utf-8", errors="surrogateescape"))
            target.write(text.encode("utf-8", errors="surrogateescape"))
        target.write(reader.end(number).encode("utf-8", errors="surrogateescape"))
    return reader.changed
