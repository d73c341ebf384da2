"""Load seed data into the MySQL source: generated (bulk `LOAD DATA LOCAL INFILE`) or from a SQL dump."""

from __future__ import annotations

import hashlib
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from pymysql.converters import escape_str

from recsys_local.mariadb import ADMIN_USER, MariaDBConfig, client_env, connect, root_sql
from recsys_local.process import StackError
from recsys_local.seed.dump import rewrite_dump
from recsys_local.seed.generator import SeedSpec, derive_ratings, generate
from recsys_local.seed.schema import COLUMNS, DDL, TABLES

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


def _escape(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
        return "\\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def write_load_file(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    """Tab-separated, backslash-escaped, ``\\N`` for NULL: the format `LOAD DATA` reads by default."""
    frame = frame.reindex(columns=list(columns))
    out = pd.DataFrame(index=frame.index)
    for column in columns:
        series = frame[column]
        if pd.api.types.is_datetime64_any_dtype(series):
            out[column] = series.dt.strftime("%Y-%m-%d").fillna("\\N")
        elif pd.api.types.is_integer_dtype(series) and not isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
            out[column] = series.astype(str)
        else:
            out[column] = series.astype(object).map(_escape)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for row in out.itertuples(index=False, name=None):
            handle.write("\t".join(row) + "\n")


def load_frame(cursor: object, table: str, frame: pd.DataFrame, workdir: Path) -> None:
    path = workdir / f"{table}.tsv"
    write_load_file(frame, COLUMNS[table], path)
    columns = ", ".join(f"`{c}`" for c in COLUMNS[table])
    cursor.execute(  # type: ignore[attr-defined]
        f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table}` CHARACTER SET utf8mb4 "
        f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({columns})",
        (str(path),),
    )
    path.unlink()


def recreate_schema(cursor: object, tables: tuple[str, ...] = TABLES) -> None:
    cursor.execute("SET FOREIGN_KEY_CHECKS = 0")  # type: ignore[attr-defined]
    for table in reversed(tables):
        cursor.execute(f"DROP TABLE IF EXISTS `{table}`")  # type: ignore[attr-defined]
    for table in tables:
        cursor.execute(DDL[table])  # type: ignore[attr-defined]


def seed(cfg: MariaDBConfig, spec: SeedSpec, progress: Progress = _quiet) -> dict[str, int]:
    """Replace the source's tables with generated data; return the row count of each table."""
    started = time.monotonic()
    progress(
        f"seeding {cfg.database}: {spec.customers:,} customers, {spec.products:,} products, "
        f"~{spec.ratings:,} ratings (seed {spec.seed})"
    )
    with connect(cfg, admin=True, local_infile=True, autocommit=False) as conn, conn.cursor() as cur:
        recreate_schema(cur)
        cur.execute("SET UNIQUE_CHECKS = 0")
        with tempfile.TemporaryDirectory(prefix="recsys-seed-") as tmp:
            for table, frame in generate(spec, progress):
                load_frame(cur, table, frame, Path(tmp))
        cur.execute("SET UNIQUE_CHECKS = 1")
        cur.execute("SET FOREIGN_KEY_CHECKS = 1")
        conn.commit()
        counts = table_counts(cur)
    progress(f"seeded in {time.monotonic() - started:.1f} s: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    return counts


def table_counts(cursor: object) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        cursor.execute(f"SELECT COUNT(*) FROM `{table}`")  # type: ignore[attr-defined]
        counts[table] = int(cursor.fetchone()[0])  # type: ignore[attr-defined]
    return counts


def has_table(cfg: MariaDBConfig, table: str) -> bool:
    with connect(cfg, admin=True) as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES LIKE %s", (table,))
        return cur.fetchone() is not None


def seed_if_empty(cfg: MariaDBConfig, progress: Progress = _quiet) -> None:
    """Seed the default data set unless the source already has a `customers` table."""
    if has_table(cfg, "customers"):
        progress(f"source database {cfg.database} already has data: not seeding")
        return
    seed(cfg, SeedSpec(), progress)


def _dump_error(dump: Path, stderr: str) -> str:
    """The client's last ``ERROR ... at line N`` with that line of the dump quoted."""
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR")]
    message = errors[-1] if errors else stderr.strip()
    found = re.search(r" at line (\d+)", message)
    if found:
        number = int(found.group(1))
        with open(dump, "rb") as handle:
            for index, raw in enumerate(handle, start=1):
                if index == number:
                    statement = raw.decode("utf-8", errors="replace").strip()
                    message += f"\n  line {number} of {dump}: {statement[:200]}"
                    break
    return message


#: The user a dump runs as: every privilege on the scratch database and none anywhere else, so a statement that
#: names the live database (``classicmodels.ratings``, the client's ``\\u``) is refused, never run against it.
IMPORT_USER = "recsys_import"


@contextmanager
def _import_login(cfg: MariaDBConfig, scratch: str) -> Iterator[list[str]]:
    """The ``mariadb`` client's arguments for a one-off user whose grants cover only ``scratch``; dropped after."""
    password = secrets.token_urlsafe(24)
    account = f"'{IMPORT_USER}'@'localhost'"
    root_sql(
        cfg,
        f"DROP USER IF EXISTS {account};\nCREATE USER {account} IDENTIFIED BY {escape_str(password)};\n"
        f"GRANT ALL PRIVILEGES ON `{scratch}`.* TO {account};",
    )
    try:
        with tempfile.TemporaryDirectory(prefix="recsys-import-login-") as tmp:
            options = Path(tmp) / "client.cnf"  # the password stays off the command line (ps) and out of logs
            options.touch(mode=0o600)
            options.write_text(f"[client]\nuser={IMPORT_USER}\npassword={password}\n")
            # --defaults-file first and alone: no option file of the user's (a `local-infile`, a `pager`) applies
            yield [f"--defaults-file={options}", "--protocol=socket", f"--socket={cfg.socket}"]
    finally:
        root_sql(cfg, f"DROP USER IF EXISTS {account};")


def fingerprint(cfg: MariaDBConfig, database: str) -> dict[str, tuple[str, str, str]]:
    """Each table of ``database``: its row count, ``CHECKSUM TABLE ... EXTENDED`` and definition's digest."""
    tables = _tables(cfg, database)
    if not tables:
        return {}
    # one client for every table (a client start costs ~60 ms): three result lines per table, in this order (the
    # batch output escapes a definition's newlines, so each result is one line)
    statements = [
        f"SELECT COUNT(*) FROM {name};\nCHECKSUM TABLE {name} EXTENDED;\nSHOW CREATE TABLE {name};"
        for name in (f"`{database}`.`{table}`" for table in tables)
    ]
    lines = root_sql(cfg, "\n".join(statements)).splitlines()
    if len(lines) != 3 * len(tables):
        raise StackError(f"fingerprint of {database}: expected {3 * len(tables)} result lines, got {len(lines)}")
    return {
        table: (count.strip(), checksum.split()[-1], hashlib.sha256(definition.encode()).hexdigest()[:16])
        for table, count, checksum, definition in zip(tables, lines[0::3], lines[1::3], lines[2::3], strict=True)
    }


def _source_after_failure(cfg: MariaDBConfig, before: dict[str, tuple[str, str, str]]) -> str:
    """What a failed import did to the source, checked: "the source is unchanged" only when every table's count,
    checksum and definition are as before."""
    after = fingerprint(cfg, cfg.database)
    if after == before:
        return f"the source is unchanged (checked: {len(before)} tables, their rows, checksums and definitions)"
    changes = [f"{t} added" for t in sorted(set(after) - set(before))]
    changes += [f"{t} removed" for t in sorted(set(before) - set(after))]
    changes += [
        f"{t} rows {before[t][0]} -> {after[t][0]}" if before[t][0] != after[t][0] else f"{t} contents changed"
        for t in sorted(set(before) & set(after))
        if before[t] != after[t]
    ]
    return "THE SOURCE CHANGED while the dump loaded (another writer?): " + ", ".join(changes)


def load_sql_dump(cfg: MariaDBConfig, dump: Path, seed_value: int = 42, progress: Progress = _quiet) -> dict[str, int]:
    """Replace the source with a classicmodels SQL dump, as published (its own ``CREATE DATABASE``/``USE``, drops in
    any order), all or nothing.

    The dump is read first (:func:`rewrite_dump`): ``USE``/``CREATE``/``DROP DATABASE`` statements are aimed at a
    scratch database, client commands, triggers and routines refused with their line before anything runs. It then
    runs there through the client with :data:`DUMP_CLIENT_OPTIONS`, as a user whose grants cover only that database:
    anything else that names another database fails with its line. The lab's ``ratings`` table is derived from
    orders when the dump has none. Only a complete load replaces the source: one ``RENAME TABLE`` moves the old
    tables out and the new ones in (atomic; the ETL user's database-level grant covers them). After a failure the
    source is compared with its state before the load.
    """
    if not dump.is_file():
        raise StackError(f"{dump}: no such file")
    scratch, previous = f"{cfg.database}__import", f"{cfg.database}__previous"
    with tempfile.TemporaryDirectory(prefix="recsys-dump-") as tmp:
        aimed = Path(tmp) / "dump.sql"
        redirected = rewrite_dump(dump, scratch, aimed)  # refuses what the import does not run, before anything runs
        before = fingerprint(cfg, cfg.database)
        root_sql(
            cfg,
            f"DROP DATABASE IF EXISTS `{scratch}`; CREATE DATABASE `{scratch}` CHARACTER SET utf8mb4;\n"
            f"GRANT ALL PRIVILEGES ON `{scratch}`.* TO '{ADMIN_USER}'@'%';",  # for deriving ratings, after the load
        )
        try:
            _load_into_scratch(cfg, dump, aimed, scratch, redirected, seed_value, before, progress)
            live_tables = _tables(cfg, cfg.database)
            new_tables = _tables(cfg, scratch)
            moves = [f"`{cfg.database}`.`{t}` TO `{previous}`.`{t}`" for t in live_tables]
            moves += [f"`{scratch}`.`{t}` TO `{cfg.database}`.`{t}`" for t in new_tables]
            root_sql(
                cfg,
                f"DROP DATABASE IF EXISTS `{previous}`; CREATE DATABASE `{previous}`;\n"
                f"RENAME TABLE {', '.join(moves)};\n"
                f"DROP DATABASE `{previous}`;",
            )
            progress(f"{cfg.database} now holds the dump's {len(new_tables)} tables")
        finally:
            root_sql(
                cfg,
                f"DROP DATABASE IF EXISTS `{scratch}`;\n"
                f"REVOKE ALL PRIVILEGES ON `{scratch}`.* FROM '{ADMIN_USER}'@'%';",
            )
    with connect(cfg, admin=True) as conn, conn.cursor() as cur:
        return table_counts(cur)


#: The client's options for a dump: no client command but DELIMITER parsed (``--binary-mode``), none that reaches the
#: file system either way (``--sandbox``), no file of this machine sent to the server (``--local-infile=0``).
DUMP_CLIENT_OPTIONS = ("--binary-mode", "--sandbox", "--local-infile=0")


def _load_into_scratch(
    cfg: MariaDBConfig,
    dump: Path,
    aimed: Path,
    scratch: str,
    redirected: int,
    seed_value: int,
    before: dict[str, tuple[str, str, str]],
    progress: Progress,
) -> None:
    """Run the rewritten dump in the scratch database as the one-off import user; derive ratings if it has none."""
    with _import_login(cfg, scratch) as login:
        progress(f"loading {dump} into a scratch database ({scratch}; {redirected} statement(s) redirected)")
        with open(aimed, "rb") as handle:
            result = subprocess.run(
                ["mariadb", *login, *DUMP_CLIENT_OPTIONS, scratch],
                env=client_env(),
                stdin=handle,
                capture_output=True,
                check=False,
            )
    if result.returncode != 0:
        error = _dump_error(dump, result.stderr.decode(errors="replace"))
        raise StackError(f"{dump}: not loaded; {_source_after_failure(cfg, before)}: {error}")
    staged = replace(cfg, database=scratch)
    missing = [t for t in ("customers", "products", "orders", "orderdetails") if not has_table(staged, t)]
    if missing:
        raise StackError(
            f"{dump}: the dump has no {', '.join(missing)} table(s); is it a classicmodels dump? Not loaded; "
            + _source_after_failure(cfg, before)
        )
    if not has_table(staged, "ratings"):
        derived = derive_ratings_in_db(staged, seed_value)
        progress(f"the dump has no ratings table: derived {derived:,} ratings from orders")


def _tables(cfg: MariaDBConfig, database: str) -> list[str]:
    listed = root_sql(cfg, f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{database}'")
    return [line.strip() for line in listed.splitlines() if line.strip()]


def derive_ratings_in_db(cfg: MariaDBConfig, seed_value: int) -> int:
    """Create `ratings` with one rating for each purchased (customer, product) pair."""
    with connect(cfg, admin=True, local_infile=True, autocommit=False) as conn, conn.cursor() as cur:
        customers = _frame(cur, "SELECT customerNumber, country, creditLimit FROM customers")
        products = _frame(cur, "SELECT productCode, productLine, productScale, buyPrice, MSRP FROM products")
        pairs = _frame(
            cur,
            "SELECT DISTINCT o.customerNumber, d.productCode FROM orders o "
            "JOIN orderdetails d ON d.orderNumber = o.orderNumber",
        )
        ratings = derive_ratings(pairs, customers, products, seed_value)
        cur.execute(DDL["ratings"])
        with tempfile.TemporaryDirectory(prefix="recsys-ratings-") as tmp:
            load_frame(cur, "ratings", ratings, Path(tmp))
        conn.commit()
    return len(ratings)


def _frame(cursor: object, query: str) -> pd.DataFrame:
    cursor.execute(query)  # type: ignore[attr-defined]
    names = [d[0] for d in cursor.description]  # type: ignore[attr-defined]
    return pd.DataFrame(list(cursor.fetchall()), columns=names)  # type: ignore[attr-defined]
