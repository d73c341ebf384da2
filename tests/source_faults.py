"""Faults in the MySQL source for the reliability tests: the ``ratings`` table temporarily replaced by a view over
the real rows (``ratings_base``) that is slow (``SLEEP`` per row, so a JDBC read lasts long enough for a kill to land
inside it) or has drifted (a column gone), and the source's running queries as the server lists them.

The real rows are never touched; :func:`restore` puts the table back (also after a kill of the server, once it has
restarted) and is safe to call when nothing was replaced."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from recsys_local import mariadb

BASE = "ratings_base"


def root(stack: Any, sql: str) -> list[list[str]]:
    """Rows of ``sql`` run as the server's superuser (over its socket)."""
    out = mariadb.root_sql(stack.mariadb(), f"USE `{stack.mariadb().database}`;\n{sql}")
    return [line.split("\t") for line in out.splitlines() if line]


def etl_queries(stack: Any) -> list[tuple[int, str, str]]:
    """(thread id, state, query) of every statement the ETL user is running now."""
    user = stack.mariadb().etl_user
    rows = root(
        stack,
        "SELECT id, IFNULL(state, ''), REPLACE(REPLACE(IFNULL(info, ''), '\\n', ' '), '\\t', ' ') "
        f"FROM information_schema.processlist WHERE user = '{user}' AND command = 'Query'",
    )
    return [(int(r[0]), r[1], r[2]) for r in rows if len(r) == 3]


def restore(stack: Any) -> None:
    """Put the real ``ratings`` table back: end the ETL user's queries on the view, drop it, rename the base back."""
    if not root(stack, f"SHOW TABLES LIKE '{BASE}'"):
        return
    for thread, _state, _query in etl_queries(stack):
        root(stack, f"KILL {thread}")
    root(stack, f"DROP VIEW IF EXISTS ratings; RENAME TABLE {BASE} TO ratings;")


@contextmanager
def ratings_view(stack: Any, select: str) -> Iterator[None]:
    """Serve ``ratings`` as ``CREATE VIEW ratings AS <select>`` (``select`` reads ``ratings_base``) until the block
    ends. The caller restarts a server it killed before the block ends."""
    restore(stack)
    root(stack, f"RENAME TABLE ratings TO {BASE}; CREATE VIEW ratings AS {select};")
    try:
        yield
    finally:
        restore(stack)


def slow_ratings(stack: Any, seconds_per_row: float) -> Any:
    """``ratings`` that takes ``seconds_per_row`` for every row a query scans (a slow or throttled source)."""
    return ratings_view(stack, f"SELECT * FROM {BASE} WHERE SLEEP({seconds_per_row:.4f}) = 0")


def wait_for_query(stack: Any, matches: Any, timeout: float) -> str | None:
    """Poll the server's process list until a query of the ETL user satisfies ``matches(query)``; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _thread, _state, query in etl_queries(stack):
            if matches(query):
                return query
        time.sleep(0.05)
    return None
