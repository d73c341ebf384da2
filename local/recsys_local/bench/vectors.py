"""Vector suite: N item embeddings (the trained item tower's, of a generated catalog; 32-d) loaded through the real
loader into a scratch database ``recsys_bench`` against ``psql \\copy`` of the same CSV into a plain table (the
floor), then top-10 latency (p50, p99) and recall@10 against exact search for several ``ivfflat.probes`` values
(targets: recall@10 >= 0.97 at p99 <= 10 ms with the shipped default). ``bench_seed`` times bulk seeding.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from recsys.vectordb.loader import ROWS_PER_LIST
from recsys_local.bench import Entry, drop_scratch_database, say, scratch_database, train_on_generated
from recsys_local.settings import stack_settings
from recsys_local.stack import Stack

BENCH_DB = "recsys_bench"
RECALL_TARGET = 0.99
P99_TARGET_MS = 5.0
#: The loader's parse + validate + COPY must take at most this fraction of psql's \copy of the same CSV.
LOAD_TARGET = 1 / 1.5


def _write_csv(path: Path, ids: list[Any], vectors: np.ndarray) -> None:
    """The CSV exactly as the model publishes it (:func:`recsys.model.artifacts.embeddings_csv`: float32 values at
    round-trip precision), written in chunks."""
    from recsys.model.artifacts import embeddings_csv

    chunk = 100_000
    with open(path, "wb") as out:
        for start in range(0, len(ids), chunk):
            body = embeddings_csv(ids[start : start + chunk], vectors[start : start + chunk])
            out.write(body if start == 0 else body[body.index(b"\n") + 1 :])
            if len(ids) > chunk:
                say(f"  {min(start + chunk, len(ids)):,} of {len(ids):,} rows written")


def tower_embeddings(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``n`` item embeddings as the model produces them: a two-tower model trained on generated ratings embeds a
    generated catalog of ``n`` products (line, scale, stock, prices) with its item tower; and the user tower's
    embeddings of the generated customers (the queries ``items_from_user`` serves)."""
    from recsys_local.seed.generator import SeedSpec, make_catalog

    say("training the two-tower model on generated ratings (the item tower embeds the catalog)")
    result, data = train_on_generated(SeedSpec(customers=2000, products=110, ratings=40_000, seed=seed + 1), 10, seed)
    bundle = result.bundle("bench")
    users = bundle.user_embeddings(data["customers"][["city", "country", "creditLimit"]].to_dict("records"))
    say(f"generating a catalog of {n:,} products and embedding it")
    products = make_catalog(SeedSpec(products=n, seed=seed + 2), np.random.default_rng(seed + 2))["products"]
    columns = ["productLine", "productScale", "quantityInStock", "buyPrice", "MSRP"]
    vectors = np.vstack(
        [
            bundle.item_embeddings(products[columns].iloc[start : start + 100_000].to_dict("records"))
            for start in range(0, len(products), 100_000)
        ]
    ).astype(np.float32)
    return products["productCode"].astype(str).tolist(), vectors, users.astype(np.float32)


def bench_vectors(stack: Stack, n: int, queries: int, seed: int = 0) -> dict[str, Any]:
    import psycopg

    from recsys.vectordb.loader import load
    from recsys_serving import search

    connect = scratch_database(stack, BENCH_DB)

    import os

    os.environ.setdefault("VECTOR_DB_MAINTENANCE_WORK_MEM", "1GB")
    rng = np.random.default_rng(seed)
    ids, vectors, users = tower_embeddings(n, seed)
    say(f"writing {n:,} item embeddings to CSV")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        items_csv, users_csv = Path(tmp) / "items.csv", Path(tmp) / "users.csv"
        _write_csv(items_csv, ids, vectors)
        _write_csv(users_csv, list(range(1000)), vectors[:1000])
        say("loading through recsys.vectordb.loader.load (validate, COPY, search index, swap)")
        with psycopg.connect(**connect, autocommit=True) as conn:
            from pgvector.psycopg import register_vector

            register_vector(conn)
            started = time.perf_counter()
            result = load(conn, items_csv, users_csv, "bench")
            load_seconds = time.perf_counter() - started
        say("the floor: psql \\copy of the same CSV into a plain table")
        floor = copy_floor(stack, items_csv)
    timing = result["timings"]["item_emb"]
    index_seconds = sum(t["index_seconds"] for t in result["timings"].values())
    report: dict[str, Any] = {
        "vectors": n,
        "load_without_index_seconds": round(load_seconds - index_seconds, 2),
        "items_parse_and_copy_seconds": round(timing["copy_seconds"], 2),
        "items_streamed": timing.get("streamed"),
        "items_per_s": round(n / max(timing["copy_seconds"], 1e-9)),
        "users_validate_seconds": result["parse_seconds"],
        "index_build_seconds": round(timing["index_seconds"], 1),
        "index": {"type": "ivfflat over search keys", "lists": timing.get("lists"), "rows_per_list": ROWS_PER_LIST},
        "total_load_seconds": round(load_seconds, 2),
        "copy_floor_seconds": round(floor, 2),
        "search": {},
    }
    say(
        f"loader without the index build {report['load_without_index_seconds']} s (items parsed and copied at "
        f"{report['items_per_s']:,}/s); \\copy {report['copy_floor_seconds']} s; "
        f"index build {report['index_build_seconds']} s ({timing.get('lists')} lists)"
    )
    # the queries items_from_user serves: user-tower embeddings of generated customers
    query_vectors = users[rng.choice(len(users), size=queries, replace=len(users) < queries)]
    # exact top-10 by score; an answer counts when its true score reaches the 10th best (ties count as hits)
    tenth = [float(np.partition(-(vectors @ q), 9)[9]) * -1 for q in query_vectors]
    position = {identifier: i for i, identifier in enumerate(ids)}
    with search.connect(**connect) as conn:  # the exact answer's latency: a scan without the index
        conn.execute("SET enable_indexscan = off")
        exact_ms = []
        for q in query_vectors[:20]:
            started = time.perf_counter()
            search.items_from_user(conn, embedding=q, k=10)
            exact_ms.append((time.perf_counter() - started) * 1000)
    report["exact_p99_ms"] = round(float(np.percentile(exact_ms, 99)), 2)
    for ef in (10, 15, 30):
        with search.connect(probes=ef, **connect) as conn:
            latencies, recalls = [], []
            for q, threshold in zip(query_vectors, tenth, strict=True):
                started = time.perf_counter()
                got = search.items_from_user(conn, embedding=q, k=10)
                latencies.append((time.perf_counter() - started) * 1000)
                hits = sum(float(vectors[position[code]] @ q) >= threshold - 1e-5 for code, _ in got)
                recalls.append(hits / 10)
        report["search"][f"probes={ef}"] = {
            "p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "p99_ms": round(float(np.percentile(latencies, 99)), 2),
            "recall@10": round(float(np.mean(recalls)), 3),
        }
        say(f"probes={ef}: {report['search'][f'probes={ef}']}")
    return report


def bench_seed(stack: Stack, customers: int, products: int, ratings: int) -> dict[str, Any]:
    from recsys_local.seed.generator import SeedSpec
    from recsys_local.seed.loader import seed

    started = time.monotonic()
    counts = seed(stack.mariadb(), SeedSpec(customers, products, ratings, seed=7), say)
    seconds = time.monotonic() - started
    return {"counts": counts, "seconds": round(seconds, 1), "ratings_per_s": round(counts["ratings"] / seconds)}


def copy_floor(stack: Stack, items_csv: Path) -> float:
    """Seconds psql's ``\\copy`` takes to load the CSV into a plain table (over the server's socket)."""
    import subprocess

    from recsys_local.postgres import SUPERUSER, _bin

    cfg = stack.vectordb()
    script = (
        "DROP TABLE IF EXISTS copy_floor; CREATE TABLE copy_floor (id text, embedding vector(32));\n"
        f"\\copy copy_floor FROM '{items_csv}' WITH (FORMAT csv, HEADER true)\n"
        "DROP TABLE copy_floor;\n"
    )
    started = time.perf_counter()
    subprocess.run(
        [_bin("psql"), "-h", str(cfg.socket_dir), "-p", str(cfg.port), "-U", SUPERUSER, "-d", BENCH_DB,
         "-v", "ON_ERROR_STOP=1", "-q"],
        input=script, text=True, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def run(quick: bool, n: int, queries: int) -> list[Entry]:
    stack = Stack(stack_settings())
    try:
        report = bench_vectors(stack, n, queries)
    finally:  # the bench leaves nothing on the stack
        drop_scratch_database(stack, BENCH_DB)
    entries = [
        Entry(
            name=f"vector load of {n:,} items: validate, parse, COPY, swap (index build apart)",
            value=report["load_without_index_seconds"],
            unit="s",
            reference_name="psql \\copy of the same CSV",
            reference=round(report["copy_floor_seconds"], 2),
            target=round(LOAD_TARGET, 3),
            detail={k: v for k, v in report.items() if k != "search"},
        )
    ]
    from recsys_serving.search import DEFAULT_PROBES

    for label, figures in report["search"].items():
        ef = int(label.split("=")[1])
        default = " (shipped default)" if ef == DEFAULT_PROBES else ""
        entries.append(
            Entry(
                name=f"top-10 recall@10, ivfflat.probes={ef}{default}, {n:,} items",
                value=figures["recall@10"],
                unit="",
                reference_name="exact search",
                reference=1.0,
                target=RECALL_TARGET,
                better="higher",
                absolute=True,
                detail=figures,
            )
        )
        entries.append(
            Entry(
                name=f"top-10 p99 latency, ivfflat.probes={ef}{default}, {n:,} items",
                value=figures["p99_ms"],
                unit="ms",
                reference_name="exact search p99",
                reference=report["exact_p99_ms"],
                target=P99_TARGET_MS,
                absolute=True,
                detail=figures,
            )
        )
    return entries
