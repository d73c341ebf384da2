"""Validate the embeddings CSVs and load them into pgvector atomically.

Validation happens before anything live is touched: header ``id,embedding``; ids unique and non-empty (item ids
text, user ids integers); exactly ``EMBEDDING_DIM`` finite floats per row, written ``[v1,...,vn]``. Every error names
the file, the line and what is wrong.

Versioned tables: each model version's embeddings live in their own tables, ``item_emb_<version key>`` and
``user_emb_<version key>`` (:func:`recsys_serving.search.version_tables`), never changed once loaded. The lab's
names ``item_emb`` and ``user_emb`` are views on the live version's tables (plain views: the planner inlines them and
the index serves ``ORDER BY search_key <-> q' LIMIT k`` through them). So a reader that knows its model version
(the streaming Lambdas, whose stored user vectors and user tower are that version's) queries that version's tables
even while a newer version goes live, and a reader of ``item_emb`` sees one version per statement.

Loading: staging tables filled with binary ``COPY`` (psycopg 3 + pgvector; the items file parsed block by block
while the previous block is copied), the items' search index (:func:`create_search_index`: IVFFlat over keys that
turn inner-product search into nearest-neighbour search), ``ANALYZE``, then one transaction renames staging to
the version's tables, points the views at them and records the version in ``embedding_versions``. Concurrent
readers block for that instant and then see the new version: never an error, an empty table or a mix. Afterwards
versions beyond the newest ``keep_versions`` (default 3, ``VECTOR_DB_KEEP_VERSIONS``) are dropped: a Lambda still
pinned to a dropped version fails its invocations with that reason (Firehose retries, then routes the records to
``errors/``) instead of mixing versions; the streaming DAG moves the Lambdas right after each load.

One load at a time: a load holds a session advisory lock (:data:`LOAD_LOCK`; a second load waits for it), so with
it held any ``*_staging`` table is an orphan of a load that was killed (client or server) and is dropped first. A
killed session releases the lock with its connection.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys.config import settings
from recsys_serving import EMBEDDING_DIM
from recsys_serving.search import ITEM_TABLE, USER_TABLE, key_expression, version_tables

log = logging.getLogger(__name__)

#: Session advisory lock key held for the whole of a load (one load at a time).
LOAD_LOCK = 7_346_250_001

VERSIONS_TABLE = "embedding_versions"
#: The user id column is ``int`` (the source's customerNumber).
INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
#: Rows per IVFFlat list (pgvector's guidance: rows / 1000 lists up to 1M rows, sqrt(rows) beyond).
ROWS_PER_LIST = 1000


class EmbeddingsFileError(ValueError):
    """A CSV breaks the embeddings contract; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class TableSpec:
    table: str
    id_type: str  # SQL type

    @property
    def python_id(self) -> type:
        return int if self.id_type == "int" else str

    @property
    def copy_type(self) -> str:
        """The type name psycopg's binary COPY knows."""
        return "int4" if self.id_type == "int" else "text"


ITEMS = TableSpec(ITEM_TABLE, "varchar")
USERS = TableSpec(USER_TABLE, "int")


def parse_embedding(text: str, where: str, dim: int = EMBEDDING_DIM) -> np.ndarray:
    stripped = text.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        raise EmbeddingsFileError(f"{where}: embedding must look like [v1,...,v{dim}], got {stripped[:40]!r}")
    parts = stripped[1:-1].split(",")
    if len(parts) != dim:
        raise EmbeddingsFileError(f"{where}: embedding has {len(parts)} values, expected {dim}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise EmbeddingsFileError(f"{where}: embedding has a value that is not a number") from None
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:
        raise EmbeddingsFileError(f"{where}: embedding value {bad[0] + 1} is {values[bad[0]]} (must be finite)")
    return np.asarray(values, dtype=np.float32)


@dataclass
class EmbeddingsFile:
    """A validated CSV in memory: ids and a float32 matrix (1M x 32 is 128 MB)."""

    path: Path
    ids: list[Any]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def read_embeddings(path: Path, spec: TableSpec, dim: int = EMBEDDING_DIM) -> EmbeddingsFile:
    """Read and validate one CSV; raises :class:`EmbeddingsFileError` on the first problem.

    The files the model publishes (``id,"[v1,...,vn]"`` per line) parse in bulk with pandas' C parser
    (:func:`read_embeddings_fast`, ~3x faster); anything that path does not positively accept is read again by the
    exact line-by-line reader, whose error names the line. Both give the same ids and the same float32 vectors."""
    if not path.is_file():
        raise EmbeddingsFileError(f"{path}: file not found")
    fast = read_embeddings_fast(path, spec, dim)
    return fast if fast is not None else read_embeddings_exact(path, spec, dim)


#: The fast path reads the file in blocks of about this size (whole lines), so a load can COPY one block while the
#: next is parsed.
FAST_BLOCK_BYTES = 16 * 1024 * 1024


class NotFast(Exception):
    """The fast path declines a file (anything unusual); the exact reader then decides and names any problem."""


def read_embeddings_fast(path: Path, spec: TableSpec, dim: int = EMBEDDING_DIM) -> EmbeddingsFile | None:
    """Bulk parse of a well-formed file; None as soon as anything is unusual (the exact reader then decides)."""
    ids: list[Any] = []
    blocks: list[np.ndarray] = []
    try:
        for block_ids, vectors in iter_fast_blocks(path, spec, dim):
            ids.extend(block_ids)
            blocks.append(vectors)
    except NotFast:
        return None
    if len(set(ids)) != len(ids):  # a duplicate across blocks
        return None
    return EmbeddingsFile(path, ids, np.vstack(blocks))


def iter_fast_blocks(path: Path, spec: TableSpec, dim: int = EMBEDDING_DIM) -> Iterator[tuple[list[Any], np.ndarray]]:
    """(ids, float32 vectors) of each block of whole lines, parsed in bulk by pandas' C parser. Raises
    :class:`NotFast` (possibly after some blocks) as soon as anything is unusual. Ids are unique within a block;
    across blocks the caller checks (the loader's staging table has a primary key)."""
    with open(path, "rb") as handle:
        if handle.readline() != b"id,embedding\n":
            raise NotFast
        rest, blocks = b"", 0
        while True:
            block = handle.read(FAST_BLOCK_BYTES)
            data = rest + block
            if not block:
                if data:
                    blocks += 1
                    yield _parse_fast_block(data, spec, dim)
                break
            cut = data.rfind(b"\n")
            rest = data[cut + 1 :]
            if cut >= 0:
                blocks += 1
                yield _parse_fast_block(data[: cut + 1], spec, dim)
        if not blocks:
            raise NotFast


def _parse_fast_block(body: bytes, spec: TableSpec, dim: int) -> tuple[list[Any], np.ndarray]:
    import io

    import pandas as pd

    raw = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(raw == ord("\n"))
    complete = len(newlines) > 0 and newlines[-1] == len(raw) - 1
    ends = newlines if complete else np.append(newlines, len(raw))  # else: the file's last line, no newline
    rows = len(ends)
    # every line exactly: <id without quotes or brackets>,"[<numbers>]" and nothing after it: two quotes per line,
    # the second right before the line's end, the first after a comma and before a `[`, the second after a `]`,
    # and one `[` and one `]` per line in all (so none in the id). Anything else (a carriage return, a blank line,
    # quoting) goes to the exact reader.
    quotes = np.flatnonzero(raw == ord('"'))
    if len(quotes) != 2 * rows or b"\r" in body:
        raise NotFast
    opening, closing = quotes[0::2], quotes[1::2]
    line_starts = np.concatenate(([0], ends[:-1] + 1))
    if not np.array_equal(closing, ends - 1) or (opening <= line_starts).any():
        raise NotFast
    if (raw[opening - 1] != ord(",")).any() or (raw[opening + 1] != ord("[")).any():
        raise NotFast
    if (raw[closing - 1] != ord("]")).any() or body.count(b"[") != rows or body.count(b"]") != rows:
        raise NotFast
    try:
        frame = pd.read_csv(
            io.BytesIO(body.translate(None, b'"[]')),  # with the structure above: exactly `id,v1,...,vn` per line
            header=None,
            names=list(range(dim + 1)),
            dtype={0: str},
            engine="c",
            skip_blank_lines=False,
        )
    except (ValueError, pd.errors.ParserError):
        raise NotFast from None
    if len(frame) != rows or frame[0].isna().any() or not all(frame.dtypes.iloc[1:] == np.float64):
        raise NotFast
    vectors = frame.iloc[:, 1:].to_numpy(dtype=np.float32)
    if not np.isfinite(vectors).all():
        raise NotFast
    text = frame[0].str.strip()
    if (text == "").any() or text.duplicated().any():
        raise NotFast
    if spec.python_id is int:
        if not text.str.fullmatch(r"[+-]?[0-9]+").all():
            raise NotFast
        if text.str.len().max() > 12:  # beyond int64's reach or the id column's range: the exact reader says so
            raise NotFast
        numbers = text.astype(np.int64)
        if numbers.duplicated().any() or numbers.min() < INT4_MIN or numbers.max() > INT4_MAX:  # "7" and "+7"
            raise NotFast
        return numbers.tolist(), vectors
    return text.tolist(), vectors


def read_embeddings_exact(path: Path, spec: TableSpec, dim: int = EMBEDDING_DIM) -> EmbeddingsFile:
    """Read and validate one CSV line by line; raises :class:`EmbeddingsFileError` naming the line."""
    if not path.is_file():
        raise EmbeddingsFileError(f"{path}: file not found")
    ids: list[Any] = []
    seen: set[Any] = set()
    rows: list[np.ndarray] = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != ["id", "embedding"]:
            raise EmbeddingsFileError(f"{path}, line 1: header must be 'id,embedding', got {header!r}")
        for row in reader:
            if len(row) != 2:
                raise EmbeddingsFileError(
                    f"{path}, line {reader.line_num}: expected 2 columns (id, embedding), got {len(row)}"
                )
            raw_id, text = row[0].strip(), row[1].strip()
            if not raw_id:
                raise EmbeddingsFileError(f"{path}, line {reader.line_num}: empty id")
            try:
                identifier = spec.python_id(raw_id)
            except ValueError:
                raise EmbeddingsFileError(f"{path}, line {reader.line_num}: id {raw_id!r} is not an integer") from None
            if spec.python_id is int and not INT4_MIN <= identifier <= INT4_MAX:
                raise EmbeddingsFileError(
                    f"{path}, line {reader.line_num}: id {raw_id!r} is outside the id column's range "
                    f"({INT4_MIN}..{INT4_MAX})"
                )
            if identifier in seen:
                raise EmbeddingsFileError(f"{path}, line {reader.line_num}: duplicate id {raw_id!r}")
            seen.add(identifier)
            ids.append(identifier)
            parts = text[1:-1].split(",") if text.startswith("[") and text.endswith("]") else None
            if parts is None or len(parts) != dim:
                rows.append(parse_embedding(text, f"{path}, line {reader.line_num}", dim))  # raises, with details
                continue
            try:
                rows.append(np.array(parts, dtype=np.float32))
            except ValueError:
                parse_embedding(text, f"{path}, line {reader.line_num}", dim)
    vectors = np.vstack(rows) if rows else np.zeros((0, dim), dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if len(bad):
        # line numbers: csv.reader counts physical lines; rows here are one line each after the header
        parse_embedding(_literal(vectors[bad[0]]), f"{path}, line {int(bad[0]) + 2}", dim)
    if not ids:
        raise EmbeddingsFileError(f"{path}: no rows")
    return EmbeddingsFile(path, ids, vectors)


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(repr(float(v)) for v in vector) + "]"


def validate(path: Path, spec: TableSpec, dim: int = EMBEDDING_DIM) -> int:
    """Row count of a valid file; raises on the first problem."""
    return len(read_embeddings(path, spec, dim))


def ensure_schema(conn: Any) -> None:
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} (model_version text NOT NULL, loaded_at timestamptz NOT NULL "
        "DEFAULT now(), item_rows int NOT NULL, user_rows int NOT NULL, seconds real)"
    )
    conn.execute(f"ALTER TABLE {VERSIONS_TABLE} ADD COLUMN IF NOT EXISTS item_table text")
    conn.execute(f"ALTER TABLE {VERSIONS_TABLE} ADD COLUMN IF NOT EXISTS user_table text")
    conn.execute(f"ALTER TABLE {VERSIONS_TABLE} ADD COLUMN IF NOT EXISTS dropped_at timestamptz")


def _create_staging(conn: Any, spec: TableSpec, staging: str, dim: int) -> None:
    from psycopg import sql

    table = sql.Identifier(staging)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    conn.execute(
        sql.SQL("CREATE TABLE {} (id {} PRIMARY KEY, embedding vector({}) NOT NULL)").format(
            table, sql.SQL(spec.id_type), sql.Literal(int(dim))
        )
    )


def _copy_blocks(conn: Any, spec: TableSpec, staging: str, blocks: Any) -> tuple[int, float]:
    """Binary COPY of ``(ids, vectors)`` blocks into the staging table; (rows written, largest L2 norm). A queued
    writer sends block k from its own thread while this one parses block k+1 (the server ingests on its own
    core)."""
    from psycopg import sql
    from psycopg.copy import QueuedLibpqWriter

    statement = sql.SQL("COPY {} (id, embedding) FROM STDIN WITH (FORMAT BINARY)").format(sql.Identifier(staging))
    rows, max_norm = 0, 0.0
    with conn.cursor() as cur, cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy:
        copy.write(COPY_HEADER)
        for ids, vectors in blocks:
            for chunk in binary_copy_rows(ids, vectors, spec):
                copy.write(chunk)
            rows += len(ids)
            if len(ids):
                max_norm = max(
                    max_norm, float(np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)).max())
                )
        copy.write(COPY_TRAILER)
    return rows, max_norm


def _stage(conn: Any, spec: TableSpec, staging: str, source: Path | EmbeddingsFile, dim: int) -> dict[str, float]:
    """Fill the staging table and index it. A path is parsed block by block while the previous block is copied
    (the fast path); a file the fast path declines, or whose ids repeat across blocks, is read again by the exact
    reader, which names any problem (the staging table is then rebuilt from its rows)."""
    import psycopg
    from psycopg import sql

    table = sql.Identifier(staging)
    _create_staging(conn, spec, staging, dim)
    copy_started = time.monotonic()
    streamed = not isinstance(source, EmbeddingsFile)
    if isinstance(source, EmbeddingsFile):
        rows, max_norm = _copy_blocks(conn, spec, staging, [(source.ids, source.vectors)])
    else:
        try:
            rows, max_norm = _copy_blocks(conn, spec, staging, iter_fast_blocks(source, spec, dim))
        except (NotFast, psycopg.errors.UniqueViolation):
            data = read_embeddings_exact(source, spec, dim)  # raises EmbeddingsFileError naming the line
            _create_staging(conn, spec, staging, dim)
            rows, max_norm = _copy_blocks(conn, spec, staging, [(data.ids, data.vectors)])
            streamed = False
    copy_seconds = time.monotonic() - copy_started
    started = time.monotonic()
    lists = 0
    if spec is ITEMS:  # user vectors are looked up by id only
        # IVFFlat's k-means samples rows into it; size it to the server (a db.t3.micro has 1 GB in all)
        memory = settings().vector_db_maintenance_work_mem
        conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (memory,))
        lists = create_search_index(conn, staging, rows, max_norm)
    conn.execute(sql.SQL("ANALYZE {}").format(table))
    index_seconds = time.monotonic() - started
    log.info(
        "staged %d rows into %s: %s %.1f s (%.0f rows/s), index %.1f s",
        rows,
        staging,
        "parse + COPY" if streamed else "COPY",
        copy_seconds,
        rows / max(copy_seconds, 1e-9),
        index_seconds,
    )
    return {
        "rows": rows,
        "copy_seconds": copy_seconds,
        "index_seconds": index_seconds,
        "streamed": streamed,
        "max_norm": max_norm,
        "lists": lists,
    }


def ivfflat_lists(rows: int) -> int:
    return max(1, rows // ROWS_PER_LIST) if rows <= 1_000_000 else int(math.sqrt(rows))


def create_search_index(conn: Any, table: str, rows: int, max_norm: float) -> int:
    """The item table's search key function and its IVFFlat index; the number of lists.

    The model scores by inner product, and graph or cluster indexes over raw inner products lose neighbours (on
    the item tower's vectors HNSW with ``vector_ip_ops`` found 0.67 of the true top 10 at 1M; `make bench`). So
    each vector ``x`` is searched by its key ``[x, sqrt(M^2 - |x|^2)]`` (``M``: the version's largest norm): every
    key has length ``M``, and a query ``[q, 0]`` is nearest (L2) to exactly the keys whose items score highest
    (``|x' - q'|^2 = M^2 + |q|^2 - 2<x, q>``). ``<table>_key(embedding)`` computes it (an immutable SQL function
    with this version's ``M``); the index is IVFFlat over the keys (``vector_l2_ops``; k-means lists suit tables
    that never change after loading)."""
    from psycopg import sql

    bound = max_norm * (1 + 1e-6) + 1e-12  # above every norm despite float32 rounding (sqrt of >= 0 anyway)
    conn.execute(
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {}(v vector) RETURNS vector LANGUAGE sql IMMUTABLE PARALLEL SAFE "
            "RETURN v || ARRAY[sqrt(greatest({} - vector_norm(v) ^ 2, 0))]::vector"
        ).format(sql.Identifier(f"{table}_key"), sql.Literal(repr(bound * bound)))
    )
    lists = ivfflat_lists(rows)
    create_ivfflat_index(conn, table, lists)
    return lists


def create_ivfflat_index(conn: Any, table: str, lists: int) -> None:
    """The item table's IVFFlat index over its search keys (``<table>_ivf``), with ``lists`` lists."""
    from psycopg import sql

    conn.execute(
        sql.SQL("CREATE INDEX {} ON {} USING ivfflat (({}) vector_l2_ops) WITH (lists = {})").format(
            sql.Identifier(f"{table}_ivf"),
            sql.Identifier(table),
            key_expression(table, sql.Identifier("embedding")),
            sql.Literal(int(lists)),
        )
    )


#: PostgreSQL's binary COPY framing: signature, flags, header extension length; the trailer is a field count of -1.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
COPY_CHUNK_ROWS = 50_000


def binary_copy_stream(ids: list[Any], vectors: np.ndarray, spec: TableSpec) -> Iterator[bytes]:
    """A whole binary COPY stream: header, :func:`binary_copy_rows`, trailer."""
    yield COPY_HEADER
    yield from binary_copy_rows(ids, vectors, spec)
    yield COPY_TRAILER


def binary_copy_rows(ids: list[Any], vectors: np.ndarray, spec: TableSpec) -> Iterator[bytes]:
    """The rows in PostgreSQL's binary COPY format, built by numpy in chunks (no per-row Python work): each row is
    a field count (2), the id (``int4`` or UTF-8 text) and the pgvector value (``int16 dim, int16 0,
    float4[dim]``), all big-endian. Rows of one chunk are grouped by the id's byte length (one record layout each);
    the order of rows does not matter to a table."""
    dim = int(vectors.shape[1])
    for start in range(0, len(ids), COPY_CHUNK_ROWS):
        chunk_ids = ids[start : start + COPY_CHUNK_ROWS]
        chunk_vectors = vectors[start : start + COPY_CHUNK_ROWS]
        if spec.python_id is int:
            groups = [(np.arange(len(chunk_ids)), np.dtype(">i4"), np.asarray(chunk_ids, dtype=">i4"), 4)]
        else:
            encoded = [str(i).encode() for i in chunk_ids]
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
            groups = []
            for length in np.unique(lengths):
                where = np.flatnonzero(lengths == length)
                values = np.array([encoded[i] for i in where], dtype=f"S{length}")
                groups.append((where, np.dtype(f"S{length}"), values, int(length)))
        for where, id_type, id_values, id_length in groups:
            layout = np.dtype(
                [("fields", ">i2"), ("id_length", ">i4"), ("id", id_type), ("vector_length", ">i4"),
                 ("dim", ">i2"), ("unused", ">i2"), ("vector", ">f4", (dim,))]
            )  # fmt: skip
            records = np.empty(len(where), dtype=layout)
            records["fields"] = 2
            records["id_length"] = id_length
            records["id"] = id_values
            records["vector_length"] = 4 + 4 * dim
            records["dim"] = dim
            records["unused"] = 0
            records["vector"] = chunk_vectors[where]
            yield records.tobytes()


def _relkind(conn: Any, name: str) -> str | None:
    row = conn.execute(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relname = %s",
        (name,),
    ).fetchone()
    return None if row is None else str(row[0])


def _function_names(conn: Any) -> set[str]:
    """Names of the functions in the current schema (the search key functions among them)."""
    rows = conn.execute(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = current_schema()"
    ).fetchall()
    return {str(row[0]) for row in rows}


def _go_live(conn: Any, spec: TableSpec, staging: str, versioned: str) -> None:
    """Inside the swap transaction: the staged table becomes the version's table, the lab's view points at it."""
    from psycopg import sql

    live, target = sql.Identifier(spec.table), sql.Identifier(versioned)
    kind = _relkind(conn, spec.table)
    if kind == "v":
        conn.execute(sql.SQL("DROP VIEW {}").format(live))
    elif kind is not None:  # a plain table from before versioned tables: replaced by the view
        conn.execute(sql.SQL("DROP TABLE {} CASCADE").format(live))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))  # the same version loaded again
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(staging), target))
    conn.execute(
        sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
            target, sql.Identifier(f"{staging}_pkey"), sql.Identifier(f"{versioned}_pkey")
        )
    )
    if spec is not ITEMS:
        conn.execute(sql.SQL("CREATE VIEW {} AS SELECT id, embedding FROM {}").format(live, target))
        return
    key = sql.Identifier(f"{versioned}_key")
    conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}(vector)").format(key))
    conn.execute(sql.SQL("ALTER FUNCTION {}(vector) RENAME TO {}").format(sql.Identifier(f"{staging}_key"), key))
    conn.execute(
        sql.SQL("ALTER INDEX {} RENAME TO {}").format(
            sql.Identifier(f"{staging}_ivf"), sql.Identifier(f"{versioned}_ivf")
        )
    )
    conn.execute(
        sql.SQL("CREATE VIEW {} AS SELECT id, embedding, {} AS search_key FROM {}").format(
            live, key_expression(versioned, sql.Identifier("embedding")), target
        )
    )


def load(
    conn: Any,
    items_csv: Path,
    users_csv: Path,
    model_version: str,
    dim: int = EMBEDDING_DIM,
    keep_versions: int | None = None,
) -> dict[str, Any]:
    """Validate both files, stage them, make the version live in one transaction, drop versions beyond
    ``keep_versions``. ``conn`` must be autocommit."""
    started = time.monotonic()
    # the users file is small: read and validated whole before anything is touched; the items file (up to millions
    # of rows) is parsed block by block into its staging table (a problem drops the staging, nothing live changes)
    users = read_embeddings(users_csv, USERS, dim)
    if not items_csv.is_file():
        raise EmbeddingsFileError(f"{items_csv}: file not found")
    parse_seconds = time.monotonic() - started
    conn.execute("SELECT pg_advisory_lock(%s)", (LOAD_LOCK,))
    try:
        ensure_schema(conn)
        drop_orphan_staging(conn)
        tables = dict(zip((ITEM_TABLE, USER_TABLE), version_tables(model_version), strict=True))
        try:
            timings = {
                spec.table: _stage(conn, spec, f"{tables[spec.table]}_staging", source, dim)
                for spec, source in ((ITEMS, items_csv), (USERS, users))
            }
        except Exception:
            if not conn.closed and not conn.broken:
                drop_orphan_staging(conn)
            raise
        item_rows, user_rows = int(timings[ITEM_TABLE]["rows"]), int(timings[USER_TABLE]["rows"])
        with conn.transaction():
            for spec in (ITEMS, USERS):
                _go_live(conn, spec, f"{tables[spec.table]}_staging", tables[spec.table])
            seconds = time.monotonic() - started
            conn.execute(f"UPDATE {VERSIONS_TABLE} SET dropped_at = now() WHERE model_version = %s", (model_version,))
            conn.execute(
                f"INSERT INTO {VERSIONS_TABLE} (model_version, item_rows, user_rows, seconds, item_table, user_table) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (model_version, item_rows, user_rows, seconds, tables[ITEM_TABLE], tables[USER_TABLE]),
            )
        dropped = prune(conn, keep_versions)
        ensure_search_keys(conn)
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOAD_LOCK,))
    log.info("loaded model %s: %d items, %d users in %.1f s", model_version, item_rows, user_rows, seconds)
    return {
        "model_version": model_version,
        "items": item_rows,
        "users": user_rows,
        "seconds": round(seconds, 2),
        "parse_seconds": round(parse_seconds, 2),
        "timings": timings,
        "dropped_versions": dropped,
    }


def loaded_versions(conn: Any) -> list[dict[str, Any]]:
    """Versions whose tables are still in the database, newest first (the first is live)."""
    rows = conn.execute(
        f"SELECT DISTINCT ON (model_version) model_version, loaded_at, item_table, user_table, item_rows, user_rows "
        f"FROM {VERSIONS_TABLE} WHERE dropped_at IS NULL AND item_table IS NOT NULL "
        "ORDER BY model_version, loaded_at DESC"
    ).fetchall()
    keys = ("model_version", "loaded_at", "item_table", "user_table", "item_rows", "user_rows")
    return sorted((dict(zip(keys, r, strict=True)) for r in rows), key=lambda v: v["loaded_at"], reverse=True)


def drop_orphan_staging(conn: Any) -> list[str]:
    """Drop the staging tables a killed load left (call with :data:`LOAD_LOCK` held: no load is running)."""
    from psycopg import sql

    names = [
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND right(tablename, 8) = '_staging'"
        ).fetchall()
    ]
    for name in names:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
    for function in sorted(f for f in _function_names(conn) if f.endswith("_staging_key")):
        conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}(vector)").format(sql.Identifier(function)))
    if names:
        log.info("dropped %d staging table(s) a killed load left: %s", len(names), ", ".join(names))
    return names


def prune(conn: Any, keep_versions: int | None = None) -> list[str]:
    """Drop the tables of every version but the newest ``keep_versions`` (the live one is always kept)."""
    from psycopg import sql

    keep = int(keep_versions or settings().vector_db_keep_versions)
    dropped = []
    for version in loaded_versions(conn)[max(keep, 1) :]:
        for name in (version["item_table"], version["user_table"]):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("DROP FUNCTION IF EXISTS {}(vector)").format(sql.Identifier(f"{version['item_table']}_key"))
        )
        conn.execute(
            f"UPDATE {VERSIONS_TABLE} SET dropped_at = now() WHERE model_version = %s AND dropped_at IS NULL",
            (version["model_version"],),
        )
        dropped.append(version["model_version"])
    if dropped:
        log.info("dropped the tables of model versions %s (keeping the newest %d)", dropped, keep)
    return dropped


def ensure_search_keys(conn: Any) -> list[str]:
    """Give the kept versions loaded before search keys existed their key function and index (their HNSW index
    over raw inner products goes); returns the item tables it migrated."""
    from psycopg import sql

    migrated = []
    functions = _function_names(conn)
    for version in loaded_versions(conn):
        table = version["item_table"]
        if f"{table}_key" in functions or _relkind(conn, table) != "r":
            continue
        rows, max_norm = conn.execute(
            sql.SQL("SELECT count(*), coalesce(max(vector_norm(embedding)), 0) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        create_search_index(conn, table, int(rows), float(max_norm))
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(f"{table}_hnsw")))
        migrated.append(table)
    if migrated:
        log.info("added search keys to the tables of earlier versions: %s", ", ".join(migrated))
    return migrated


def current_state(conn: Any) -> dict[str, Any]:
    """Counts, indexes and the live version, as the verification task and tests read them."""
    versions = loaded_versions(conn) if _relkind(conn, VERSIONS_TABLE) else []
    live = versions[0] if versions else None
    tables = [live["item_table"], live["user_table"]] if live else [ITEM_TABLE, USER_TABLE]
    indexes = {
        name: definition
        for name, definition in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)", (tables,)
        ).fetchall()
    }
    return {
        "model_version": live["model_version"] if live else None,
        "recorded_rows": (live["item_rows"], live["user_rows"]) if live else None,
        "items": conn.execute(f"SELECT count(*) FROM {ITEM_TABLE}").fetchone()[0],
        "users": conn.execute(f"SELECT count(*) FROM {USER_TABLE}").fetchone()[0],
        "indexes": indexes,
        "tables": tables,
        "versions": [v["model_version"] for v in versions],
    }
