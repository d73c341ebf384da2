"""Load seed data into the MySQL source: generated (bulk `LOAD DATA LOCAL INFILE`) or from a SQL dump."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.localstack.mariadb import MariaDBConfig, client_args, client_env, connect
from recsys.localstack.process import StackError
from recsys.seed.generator import SeedSpec, derive_ratings, generate
from recsys.seed.schema import COLUMNS, DDL, TABLES

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


def load_sql_dump(cfg: MariaDBConfig, dump: Path, seed_value: int = 42, progress: Progress = _quiet) -> dict[str, int]:
    """Load a classicmodels SQL dump; derive the lab's `ratings` table from orders when the dump has none."""
    if not dump.is_file():
        raise StackError(f"{dump}: no such file")
    progress(f"loading {dump} into {cfg.database}")
    with open(dump, "rb") as handle:
        result = subprocess.run(
            ["mariadb", *client_args(cfg), cfg.database],
            env=client_env(),
            stdin=handle,
            capture_output=True,
            check=False,
        )
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        errors = [line for line in stderr.splitlines() if line.startswith("ERROR")]  # "ERROR 1064 ... at line N: ..."
        raise StackError(f"{dump}: {errors[-1] if errors else stderr}")
    missing = [t for t in ("customers", "products", "orders", "orderdetails") if not has_table(cfg, t)]
    if missing:
        raise StackError(f"{dump}: the dump has no {', '.join(missing)} table(s); is it a classicmodels dump?")
    if not has_table(cfg, "ratings"):
        derived = derive_ratings_in_db(cfg, seed_value)
        progress(f"the dump has no ratings table: derived {derived:,} ratings from orders")
    with connect(cfg, admin=True) as conn, conn.cursor() as cur:
        return table_counts(cur)


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
