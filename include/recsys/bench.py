"""`make bench`: speed goals measured on the local stack (never as timed tests).

* ``vectors``: N item embeddings (a Gaussian mixture, 32-d) loaded through the real loader into a scratch database
  ``recsys_bench``: parse rate, binary-COPY rate (goal: >= 150k vectors/s), HNSW build time, top-10 latency
  (median, p99) and recall@10 against exact search, for several ``hnsw.ef_search`` values.
* ``seed``: bulk generation + ``LOAD DATA`` of a large source (``--customers``, ``--ratings``).

Results are printed and written to ``.local/bench/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from recsys.config import EMBEDDING_DIM, local_stack_settings
from recsys.localstack.stack import Stack

BENCH_DB = "recsys_bench"


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def _write_csv(path: Path, ids: list[Any], vectors: np.ndarray) -> None:
    with open(path, "w") as out:
        out.write("id,embedding\n")
        for start in range(0, len(ids), 50_000):
            chunk = vectors[start : start + 50_000]
            text = np.char.mod("%.6g", chunk)
            out.writelines(
                f'{identifier},"[{",".join(row)}]"\n'
                for identifier, row in zip(ids[start : start + 50_000], text, strict=True)
            )


def bench_vectors(stack: Stack, n: int, queries: int, seed: int = 0) -> dict[str, Any]:
    import psycopg
    from psycopg import sql

    from recsys.localstack.vectordb import _superuser_conn
    from recsys.vectordb import search
    from recsys.vectordb.loader import load

    cfg = stack.vectordb()
    with _superuser_conn(cfg) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone():
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(BENCH_DB), sql.Identifier(cfg.user))
            )
    with _superuser_conn(cfg, BENCH_DB) as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS vector")

    import os

    os.environ.setdefault("VECTOR_DB_MAINTENANCE_WORK_MEM", "1GB")
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(200, EMBEDDING_DIM)).astype(np.float32)
    vectors = (centres[rng.integers(0, 200, n)] + 0.5 * rng.normal(size=(n, EMBEDDING_DIM))).astype(np.float32)
    ids = [f"P{i:07d}" for i in range(n)]
    say(f"writing {n:,} item embeddings to CSV")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        items_csv, users_csv = Path(tmp) / "items.csv", Path(tmp) / "users.csv"
        _write_csv(items_csv, ids, vectors)
        _write_csv(users_csv, list(range(1000)), vectors[:1000])
        say("loading through recsys.vectordb.loader.load (validate, COPY, HNSW, swap)")
        connect = {"host": cfg.host, "port": cfg.port, "user": cfg.user, "password": cfg.password, "dbname": BENCH_DB}
        with psycopg.connect(**connect, autocommit=True) as conn:
            from pgvector.psycopg import register_vector

            register_vector(conn)
            result = load(conn, items_csv, users_csv, "bench")
    timing = result["timings"]["item_emb"]
    report: dict[str, Any] = {
        "vectors": n,
        "parse_seconds": result["parse_seconds"],
        "parse_rate_per_s": round(n / max(result["parse_seconds"], 1e-9)),
        "copy_seconds": round(timing["copy_seconds"], 2),
        "copy_rate_per_s": round(n / max(timing["copy_seconds"], 1e-9)),
        "hnsw_build_seconds": round(timing["index_seconds"], 1),
        "total_load_seconds": result["seconds"],
        "search": {},
    }
    say(f"COPY {report['copy_rate_per_s']:,} vectors/s; HNSW build {report['hnsw_build_seconds']} s")
    picks = rng.choice(n, size=queries, replace=False)
    query_vectors = vectors[picks] + 0.1 * rng.normal(size=(queries, EMBEDDING_DIM)).astype(np.float32)
    exact = [set(np.argpartition(-(vectors @ q), 10)[:10].tolist()) for q in query_vectors]
    for ef in (40, 100, 200):
        with search.connect(ef_search=ef, **connect) as conn:
            latencies, recalls = [], []
            for q, truth in zip(query_vectors, exact, strict=True):
                started = time.perf_counter()
                got = search.items_from_user(conn, embedding=q, k=10)
                latencies.append((time.perf_counter() - started) * 1000)
                recalls.append(len({int(code[1:]) for code, _ in got} & truth) / 10)
        report["search"][f"ef_search={ef}"] = {
            "p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "p99_ms": round(float(np.percentile(latencies, 99)), 2),
            "recall@10": round(float(np.mean(recalls)), 3),
        }
        say(f"ef_search={ef}: {report['search'][f'ef_search={ef}']}")
    return report


def bench_seed(stack: Stack, customers: int, products: int, ratings: int) -> dict[str, Any]:
    from recsys.seed.generator import SeedSpec
    from recsys.seed.loader import seed

    started = time.monotonic()
    counts = seed(stack.mariadb(), SeedSpec(customers, products, ratings, seed=7), say)
    seconds = time.monotonic() - started
    return {"counts": counts, "seconds": round(seconds, 1), "ratings_per_s": round(counts["ratings"] / seconds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys.bench", description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=["vectors"], choices=["vectors", "seed"])
    parser.add_argument("--vectors", type=int, default=1_000_000, help="item embeddings to load (%(default)s)")
    parser.add_argument("--queries", type=int, default=200, help="top-10 queries per ef_search value")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--ratings", type=int, default=10_000_000)
    args = parser.parse_args(argv)
    stack = Stack(local_stack_settings())
    out_dir = stack.home / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.which:
        if name == "vectors":
            report = bench_vectors(stack, args.vectors, args.queries)
        else:
            say("the seed benchmark replaces the local source's data")
            report = bench_seed(stack, args.customers, args.products, args.ratings)
        (out_dir / f"{name}.json").write_text(json.dumps(report, indent=2))
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
