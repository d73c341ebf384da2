"""Similarity search over the embeddings in PostgreSQL + pgvector; shared by the DAGs and the streaming Lambdas.

Scores are inner products (the model predicts ``global mean + <user, item>``), so the nearest items by
``<#>`` (pgvector's negative inner product, served by the HNSW index built with ``vector_ip_ops``) are the items the
model would rate highest. Every function takes an open psycopg 3 connection with pgvector registered
(:func:`connect`), uses parameterised SQL only, and returns ``[(product_code, score), ...]`` best first.

Index settings: ``hnsw.ef_search`` (default here 100, set per connection) trades latency for recall: pgvector's
default 40 can miss neighbours on large tables, 100-200 gives recall@10 >= 0.95 in `make bench`; with a few
hundred items the planner scans exactly anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

ITEM_TABLE = "item_emb"
USER_TABLE = "user_emb"
DEFAULT_EF_SEARCH = 100

Match = tuple[str, float]


def connect(conninfo: str | None = None, ef_search: int = DEFAULT_EF_SEARCH, **kwargs: Any) -> Any:
    """A psycopg 3 connection (autocommit) with the vector type registered and ``hnsw.ef_search`` set."""
    import psycopg
    from pgvector.psycopg import register_vector

    conn = psycopg.connect(conninfo or "", autocommit=True, **kwargs)
    register_vector(conn)
    conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(int(ef_search)),))
    return conn


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


def user_embedding(conn: Any, customer_number: int) -> np.ndarray | None:
    row = conn.execute(f"SELECT embedding FROM {USER_TABLE} WHERE id = %s", (int(customer_number),)).fetchone()
    return None if row is None else as_array(row[0])


def items_from_user(
    conn: Any, embedding: Sequence[float] | np.ndarray | None = None, customer_number: int | None = None, k: int = 10
) -> list[Match]:
    """Top-k items for a user embedding, or for a known customer's stored embedding."""
    if embedding is None:
        if customer_number is None:
            raise ValueError("give an embedding or a customer number")
        embedding = user_embedding(conn, customer_number)
        if embedding is None:
            raise LookupError(f"customer {customer_number} has no embedding")
    rows = conn.execute(
        f"SELECT id, -(embedding <#> %s) AS score FROM {ITEM_TABLE} ORDER BY embedding <#> %s LIMIT %s",
        (_vector(embedding), _vector(embedding), _limit(k)),
    ).fetchall()
    return [(str(code), float(score)) for code, score in rows]


def items_from_item(conn: Any, product_code: str, k: int = 10) -> list[Match]:
    """Top-k items most similar to a product (by inner product), the product itself excluded."""
    row = conn.execute(f"SELECT embedding FROM {ITEM_TABLE} WHERE id = %s", (str(product_code),)).fetchone()
    if row is None:
        raise LookupError(f"product {product_code!r} has no embedding")
    query = as_array(row[0])
    rows = conn.execute(
        f"SELECT id, -(embedding <#> %s) AS score FROM {ITEM_TABLE} WHERE id <> %s ORDER BY embedding <#> %s LIMIT %s",
        (query, str(product_code), query, _limit(k)),
    ).fetchall()
    return [(str(code), float(score)) for code, score in rows]


def items_from_users_batch(conn: Any, embeddings: np.ndarray, k: int = 10) -> list[list[Match]]:
    """Top-k items for each of many query vectors, in one round trip."""
    queries = [_vector(e) for e in np.atleast_2d(np.asarray(embeddings, dtype=np.float32))]
    if not queries:
        return []
    rows = conn.execute(
        f"""
        SELECT q.ord, m.id, m.score
        FROM unnest(%s::vector[]) WITH ORDINALITY AS q(embedding, ord)
        CROSS JOIN LATERAL (
            SELECT i.id, -(i.embedding <#> q.embedding) AS score
            FROM {ITEM_TABLE} i ORDER BY i.embedding <#> q.embedding LIMIT %s
        ) m
        ORDER BY q.ord, m.score DESC
        """,
        (queries, _limit(k)),
    ).fetchall()
    out: list[list[Match]] = [[] for _ in queries]
    for ordinal, code, score in rows:
        out[int(ordinal) - 1].append((str(code), float(score)))
    return out


def items_from_items_batch(conn: Any, product_codes: Sequence[str], k: int = 10) -> dict[str, list[Match]]:
    """Top-k similar items for each known product code (unknown codes are absent from the result), one round trip."""
    codes = [str(c) for c in product_codes]
    if not codes:
        return {}
    rows = conn.execute(
        f"""
        SELECT q.id, m.id, m.score
        FROM {ITEM_TABLE} q
        CROSS JOIN LATERAL (
            SELECT i.id, -(i.embedding <#> q.embedding) AS score
            FROM {ITEM_TABLE} i WHERE i.id <> q.id ORDER BY i.embedding <#> q.embedding LIMIT %s
        ) m
        WHERE q.id = ANY(%s)
        ORDER BY q.id, m.score DESC
        """,
        (_limit(k), codes),
    ).fetchall()
    out: dict[str, list[Match]] = {}
    for query, code, score in rows:
        out.setdefault(str(query), []).append((str(code), float(score)))
    return out
