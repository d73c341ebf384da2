"""Similarity search over the embeddings in PostgreSQL + pgvector; shared by the DAGs and the streaming Lambdas.

Scores are inner products (the model ranks items by ``<user, item>``): the items a query ranks first are the items
the model ranks highest. The index answers them through search keys (:func:`recsys.vectordb.loader.
create_search_index`): each item table has ``<table>_key(embedding)``, the vector extended by one coordinate so all
keys have one length, and a query ``[q, 0]`` is nearest (L2, ``<->``) to the keys of the highest-scoring items; the
``item_emb`` view shows it as ``search_key``. Every function takes an open psycopg 3 connection with pgvector
registered (:func:`connect`), uses parameterised SQL only, and returns ``[(product_code, score), ...]`` best first.

Tables: ``item_emb``/``user_emb`` are views on the live model version's tables; a caller that knows its model
version passes that version's table (:func:`version_tables`) so its queries never mix two models.

Index settings: the item index is IVFFlat (rows / 1000 lists); ``ivfflat.probes`` (default here 15, set per
connection; ``VECTOR_DB_PROBES`` in the Lambdas) is how many lists a query scans: recall@10 0.996 at p99 7.2 ms on
1M item-tower vectors (`make bench`, 2026-11-28, the rating model's towers, before iterative scans); with a few hundred
items the table is one list and every query is exact.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from recsys_serving import EMBEDDING_DIM
from recsys_serving.settings import DEFAULT_PROBES

log = logging.getLogger(__name__)

ITEM_TABLE = "item_emb"
USER_TABLE = "user_emb"

Match = tuple[str, float]


class ModelVersionUnavailable(LookupError):
    """The vector DB no longer (or not yet) holds the embeddings of the model version a caller serves."""


def version_tables(model_version: str) -> tuple[str, str]:
    """The item and user tables of a model version: readable, unique (a hash of the exact version) and within
    PostgreSQL's 63-byte identifier limit with the loader's suffixes."""
    readable = re.sub(r"[^a-z0-9]+", "_", model_version.lower()).strip("_")[:24]
    key = f"{readable}_{hashlib.sha256(model_version.encode()).hexdigest()[:8]}"
    return f"{ITEM_TABLE}_{key}", f"{USER_TABLE}_{key}"


def live_version(conn: Any) -> str | None:
    """The model version the ``item_emb``/``user_emb`` views show (the newest load still in the database)."""
    row = conn.execute(
        "SELECT model_version FROM embedding_versions WHERE dropped_at IS NULL ORDER BY loaded_at DESC LIMIT 1"
    ).fetchone()
    return str(row[0]) if row else None


def _table(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(name)


def _run(conn: Any, query: Any, params: Any, *tables: str) -> list[Any]:
    """Execute; a missing versioned table becomes :class:`ModelVersionUnavailable` naming it (of ``tables``, the one
    PostgreSQL names)."""
    import psycopg

    try:
        return conn.execute(query, params).fetchall()
    except psycopg.errors.UndefinedTable as error:
        message = error.diag.message_primary or ""
        table = next((t for t in tables if f'"{t}"' in message), tables[0])
        raise ModelVersionUnavailable(
            f"table {table} is not in the vector DB: that model version was never loaded or has been dropped "
            "(the loader keeps the newest few); redeploy the Lambdas with a loaded version"
        ) from None
    except (psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedColumn) as error:
        raise ModelVersionUnavailable(
            f"{tables[0]} has no search key ({error.diag.message_primary}): it was loaded before search keys existed; "
            "run vector_db_embeddings once (the load adds them to the versions it keeps)"
        ) from None


def connect(conninfo: str | None = None, probes: int = DEFAULT_PROBES, **kwargs: Any) -> Any:
    """A psycopg 3 connection (autocommit) with the vector type registered, ``ivfflat.probes`` set, and iterative
    index scans on: a query that filters (similar items leave out the anchor itself) keeps scanning lists until k
    rows survive, instead of answering with fewer (pgvector 0.8's ``ivfflat.iterative_scan``; every query here
    orders its final rows by score, so the relaxed order within a scan does not reach an answer)."""
    import psycopg
    from pgvector.psycopg import register_vector

    conn = psycopg.connect(conninfo or "", autocommit=True, **kwargs)
    register_vector(conn)
    conn.execute("SELECT set_config('ivfflat.probes', %s, false)", (str(int(probes)),))
    try:
        conn.execute("SELECT set_config('ivfflat.iterative_scan', 'relaxed_order', false)")
    except psycopg.errors.DatabaseError as error:  # pgvector before 0.8 has no iterative scans: search as before
        log.warning("ivfflat.iterative_scan not set (pgvector >= 0.8 has it): %s", error.diag.message_primary)
    return conn


def search_key(items_table: str, alias: str) -> Any:
    """SQL for the indexed search key of ``alias``'s rows: the view's column, or the version table's key function
    (the very expression its index is built on)."""
    from psycopg import sql

    if items_table == ITEM_TABLE:
        return sql.SQL("{}.search_key").format(sql.Identifier(alias))
    return key_expression(items_table, sql.SQL("{}.embedding").format(sql.Identifier(alias)))


def key_expression(items_table: str, column: Any) -> Any:
    """``<items_table>_key(<column>)::vector(dim + 1)``: the expression the item index is built on, the view's
    ``search_key`` and every query's key (the planner uses the index only for this very expression)."""
    from psycopg import sql

    return sql.SQL("{}({})::vector({})").format(
        sql.Identifier(f"{items_table}_key"), column, sql.Literal(EMBEDDING_DIM + 1)
    )


def query_key(embedding: Sequence[float] | np.ndarray) -> np.ndarray:
    """A query vector as a search key: ``[q, 0]``."""
    return np.append(_vector(embedding), np.float32(0))


def _limit(k: int) -> int:
    if not 1 <= int(k) <= 1000:
        raise ValueError(f"limit must be between 1 and 1000, not {k}")
    return int(k)


def _vector(embedding: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(embedding, dtype=np.float32)
    if array.ndim != 1 or not np.isfinite(array).all():
        raise ValueError("an embedding must be a flat list of finite numbers")
    return array


def as_array(value: Any) -> np.ndarray:
    """A vector column value (pgvector's ``Vector``, a numpy array or text) as float32 numpy."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    elif isinstance(value, str):
        value = [float(v) for v in value.strip("[]").split(",")]
    return np.asarray(value, dtype=np.float32)


def user_embedding(conn: Any, customer_number: int, users_table: str = USER_TABLE) -> np.ndarray | None:
    from psycopg import sql

    query = sql.SQL("SELECT embedding FROM {} WHERE id = %s").format(_table(users_table))
    rows = _run(conn, query, (int(customer_number),), users_table)
    return as_array(rows[0][0]) if rows else None


def items_from_user(
    conn: Any,
    embedding: Sequence[float] | np.ndarray | None = None,
    customer_number: int | None = None,
    k: int = 10,
    items_table: str = ITEM_TABLE,
    users_table: str = USER_TABLE,
) -> list[Match]:
    """Top-k items for a user embedding, or for a known customer's stored embedding (pass both tables of one
    version, so the stored user vector and the items come from the same model)."""
    from psycopg import sql

    if embedding is None:
        if customer_number is None:
            raise ValueError("give an embedding or a customer number")
        embedding = user_embedding(conn, customer_number, users_table)
        if embedding is None:
            raise LookupError(f"customer {customer_number} has no embedding")
    query = sql.SQL(
        "SELECT m.id, m.score FROM (SELECT i.id, -(i.embedding <#> %s) AS score FROM {} i ORDER BY {} <-> %s LIMIT %s)"
        " m ORDER BY m.score DESC"
    ).format(_table(items_table), search_key(items_table, "i"))
    rows = _run(conn, query, (_vector(embedding), query_key(embedding), _limit(k)), items_table)
    return [(str(code), float(score)) for code, score in rows]


def items_from_item(conn: Any, product_code: str, k: int = 10, items_table: str = ITEM_TABLE) -> list[Match]:
    """Top-k items most similar to a product (by inner product), the product itself excluded; one statement, so
    one snapshot even while a new version goes live."""
    from psycopg import sql

    query = sql.SQL(
        """
        SELECT q.id, m.id, m.score
        FROM {t} q
        LEFT JOIN LATERAL (
            SELECT i.id, -(i.embedding <#> q.embedding) AS score
            FROM {t} i WHERE i.id <> q.id ORDER BY {key} <-> (q.embedding || '[0]'::vector) LIMIT %s
        ) m ON true
        WHERE q.id = %s
        ORDER BY m.score DESC
        """
    ).format(t=_table(items_table), key=search_key(items_table, "i"))
    rows = _run(conn, query, (_limit(k), str(product_code)), items_table)
    if not rows:
        raise LookupError(f"product {product_code!r} has no embedding")
    return [(str(code), float(score)) for _q, code, score in rows if code is not None]


def items_from_users_batch(
    conn: Any,
    embeddings: np.ndarray,
    k: int = 10,
    items_table: str = ITEM_TABLE,
    customer_numbers: Sequence[int] | None = None,
    users_table: str = USER_TABLE,
) -> list[list[Match]]:
    """Top-k items for each of many query vectors, in one round trip (one statement: one snapshot).

    With ``customer_numbers`` (aligned with ``embeddings``), a customer ``users_table`` holds is searched with their
    stored vector (what training learned from their purchases) and ``embeddings`` stand in only for the others
    (customers new since training, embedded from their attributes)."""
    from psycopg import sql

    queries = [_vector(e) for e in np.atleast_2d(np.asarray(embeddings, dtype=np.float32))]
    if not queries:
        return []
    customers = [None] * len(queries) if customer_numbers is None else [int(c) for c in customer_numbers]
    if len(customers) != len(queries):
        raise ValueError(f"{len(customers)} customer numbers for {len(queries)} query vectors")
    query = sql.SQL(
        """
        SELECT q.ord, m.id, m.score
        FROM unnest(%s::vector[], %s::int4[]) WITH ORDINALITY AS q(embedding, customer, ord)
        LEFT JOIN {u} u ON u.id = q.customer
        CROSS JOIN LATERAL (
            SELECT i.id, -(i.embedding <#> COALESCE(u.embedding, q.embedding)) AS score
            FROM {t} i ORDER BY {key} <-> (COALESCE(u.embedding, q.embedding) || '[0]'::vector) LIMIT %s
        ) m
        ORDER BY q.ord, m.score DESC
        """
    ).format(u=_table(users_table), t=_table(items_table), key=search_key(items_table, "i"))
    rows = _run(conn, query, (queries, customers, _limit(k)), items_table, users_table)
    out: list[list[Match]] = [[] for _ in queries]
    for ordinal, code, score in rows:
        out[int(ordinal) - 1].append((str(code), float(score)))
    return out


def items_from_items_batch(
    conn: Any, product_codes: Sequence[str], k: int = 10, items_table: str = ITEM_TABLE
) -> dict[str, list[Match]]:
    """Top-k similar items for each known product code (unknown codes are absent from the result), one round trip."""
    return {code: matches for code, (matches, _cold) in similar_items(conn, product_codes, k, items_table).items()}


def similar_items(
    conn: Any,
    product_codes: Sequence[str],
    k: int = 10,
    items_table: str = ITEM_TABLE,
    fallback: dict[str, np.ndarray] | None = None,
) -> dict[str, tuple[list[Match], bool]]:
    """Top-k similar items for each product code, in one statement (one snapshot): ``{code: (matches, cold)}``.

    A code the table holds uses its stored vector (``cold`` False). ``fallback`` gives vectors for codes the table
    may not hold (products new since the model was trained, embedded from their features by the item tower): used
    only when the code is absent (``cold`` True). Codes in neither are absent from the result.
    """
    from psycopg import sql

    codes = [str(c) for c in product_codes]
    if not codes:
        return {}
    fallback = fallback or {}
    given = [c for c in codes if c in fallback]
    query = sql.SQL(
        """
        WITH stored AS (
            SELECT id, embedding FROM {t} WHERE id = ANY(%s)
        ), q AS (
            SELECT id, embedding, false AS cold FROM stored
            UNION ALL
            SELECT g.id, g.embedding, true
            FROM unnest(%s::text[], %s::vector[]) AS g(id, embedding)
            WHERE NOT EXISTS (SELECT 1 FROM stored s WHERE s.id = g.id)
        )
        SELECT q.id, q.cold, m.id, m.score
        FROM q
        CROSS JOIN LATERAL (
            SELECT i.id, -(i.embedding <#> q.embedding) AS score
            FROM {t} i WHERE i.id <> q.id ORDER BY {key} <-> (q.embedding || '[0]'::vector) LIMIT %s
        ) m
        ORDER BY q.id, m.score DESC
        """
    ).format(t=_table(items_table), key=search_key(items_table, "i"))
    params = (codes, given, [_vector(fallback[c]) for c in given], _limit(k))
    out: dict[str, tuple[list[Match], bool]] = {}
    for query_code, cold, code, score in _run(conn, query, params, items_table):
        out.setdefault(str(query_code), ([], bool(cold)))[0].append((str(code), float(score)))
    return out
