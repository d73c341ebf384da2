"""Validate the embeddings CSVs and load them into pgvector atomically.

Validation happens before anything live is touched: header ``id,embedding``; ids unique and non-empty (item ids
text, user ids integers); exactly ``EMBEDDING_DIM`` finite floats per row, written ``[v1,...,vn]``. Every error names
the file, the line and what is wrong.

Loading: staging tables filled with binary ``COPY`` (psycopg 3 + pgvector), an HNSW index with ``vector_ip_ops``
(the model scores by inner product), ``ANALYZE``, then one transaction drops the live table, renames staging into
place and records the model version in ``embedding_versions``. Concurrent readers block for that instant and then see
the new table: never an error, an empty table or a mix.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys.config import EMBEDDING_DIM
from recsys.vectordb.search import ITEM_TABLE, USER_TABLE

log = logging.getLogger(__name__)

VERSIONS_TABLE = "embedding_versions"
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
#: Memory for the index build (``maintenance_work_mem``). pgvector builds HNSW fast only while the graph fits in it
#: (1M x 32-d needs about 0.5 GB); size it to the server (a db.t3.micro has 1 GB in all).
MAINTENANCE_WORK_MEM_ENV = "VECTOR_DB_MAINTENANCE_WORK_MEM"
DEFAULT_MAINTENANCE_WORK_MEM = "256MB"


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
    """Read and validate one CSV in a single pass; raises :class:`EmbeddingsFileError` on the first problem."""
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


def _stage(conn: Any, spec: TableSpec, data: EmbeddingsFile, dim: int) -> dict[str, float]:
    staging = f"{spec.table}_staging"
    conn.execute(f"DROP TABLE IF EXISTS {staging}")
    conn.execute(f"CREATE TABLE {staging} (id {spec.id_type} PRIMARY KEY, embedding vector({dim}) NOT NULL)")
    copy_started = time.monotonic()
    with conn.cursor() as cur, cur.copy(f"COPY {staging} (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types([spec.copy_type, "vector"])
        for identifier, vector in zip(data.ids, data.vectors, strict=True):
            copy.write_row((identifier, vector))
    copy_seconds = time.monotonic() - copy_started
    started = time.monotonic()
    memory = os.environ.get(MAINTENANCE_WORK_MEM_ENV, DEFAULT_MAINTENANCE_WORK_MEM)
    conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (memory,))
    conn.execute(
        f"CREATE INDEX {staging}_embedding_idx ON {staging} USING hnsw (embedding vector_ip_ops) "
        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
    )
    conn.execute(f"ANALYZE {staging}")
    index_seconds = time.monotonic() - started
    log.info(
        "staged %d rows into %s: COPY %.1f s (%.0f rows/s), HNSW index %.1f s",
        len(data),
        staging,
        copy_seconds,
        len(data) / max(copy_seconds, 1e-9),
        index_seconds,
    )
    return {"rows": len(data), "copy_seconds": copy_seconds, "index_seconds": index_seconds}


def load(conn: Any, items_csv: Path, users_csv: Path, model_version: str, dim: int = EMBEDDING_DIM) -> dict[str, Any]:
    """Validate both files, stage them, and swap both tables in one transaction. ``conn`` must be autocommit."""
    started = time.monotonic()
    items, users = read_embeddings(items_csv, ITEMS, dim), read_embeddings(users_csv, USERS, dim)
    item_rows, user_rows = len(items), len(users)
    parse_seconds = time.monotonic() - started
    ensure_schema(conn)
    timings = {spec.table: _stage(conn, spec, data, dim) for spec, data in ((ITEMS, items), (USERS, users))}
    with conn.transaction():
        for spec in (ITEMS, USERS):
            staging = f"{spec.table}_staging"
            conn.execute(f"DROP TABLE IF EXISTS {spec.table}")
            conn.execute(f"ALTER TABLE {staging} RENAME TO {spec.table}")
            conn.execute(f"ALTER TABLE {spec.table} RENAME CONSTRAINT {staging}_pkey TO {spec.table}_pkey")
            conn.execute(f"ALTER INDEX {staging}_embedding_idx RENAME TO {spec.table}_embedding_idx")
        seconds = time.monotonic() - started
        conn.execute(
            f"INSERT INTO {VERSIONS_TABLE} (model_version, item_rows, user_rows, seconds) VALUES (%s, %s, %s, %s)",
            (model_version, item_rows, user_rows, seconds),
        )
    log.info("loaded model %s: %d items, %d users in %.1f s", model_version, item_rows, user_rows, seconds)
    return {
        "model_version": model_version,
        "items": item_rows,
        "users": user_rows,
        "seconds": round(seconds, 2),
        "parse_seconds": round(parse_seconds, 2),
        "timings": timings,
    }


def current_state(conn: Any) -> dict[str, Any]:
    """Counts, indexes and the loaded version, as the verification task and tests read them."""
    version = conn.execute(
        f"SELECT model_version, item_rows, user_rows FROM {VERSIONS_TABLE} ORDER BY loaded_at DESC LIMIT 1"
    ).fetchone()
    indexes = {
        name: definition
        for name, definition in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)", ([ITEM_TABLE, USER_TABLE],)
        ).fetchall()
    }
    return {
        "model_version": version[0] if version else None,
        "recorded_rows": (version[1], version[2]) if version else None,
        "items": conn.execute(f"SELECT count(*) FROM {ITEM_TABLE}").fetchone()[0],
        "users": conn.execute(f"SELECT count(*) FROM {USER_TABLE}").fetchone()[0],
        "indexes": indexes,
    }
