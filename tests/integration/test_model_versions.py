"""One model version end to end while a new model is trained and goes live: every recommendation comes from one
model's user tower and that same model's item vectors, and names it (real PostgreSQL + pgvector, real torch)."""

from __future__ import annotations

import base64
import json
import threading
import time

import numpy as np
import pandas as pd
import pytest

from recsys.config import TRAINING_COLUMNS
from recsys.model.artifacts import embeddings_csv
from recsys.model.train import TrainConfig, train
from recsys.vectordb.loader import current_state, load, loaded_versions
from recsys_local.seed.generator import SeedSpec, generate
from recsys_serving import search
from recsys_serving.events import browsed_item
from recsys_serving.transformation_handler import transform

pytestmark = pytest.mark.integration
K = 5


def training_frame() -> tuple[pd.DataFrame, pd.DataFrame]:
    tables: dict[str, list[pd.DataFrame]] = {}
    for table, frame in generate(SeedSpec(customers=120, products=50, ratings=2000, seed=21)):
        tables.setdefault(table, []).append(frame)
    d = {t: pd.concat(v, ignore_index=True) for t, v in tables.items()}
    frame = d["ratings"].merge(d["customers"], on="customerNumber").merge(d["products"], on="productCode")
    return frame[list(TRAINING_COLUMNS)], d["products"]


def publish(result, version: str, folder) -> tuple:
    items, users = folder / f"{version}-items.csv", folder / f"{version}-users.csv"
    items.write_bytes(embeddings_csv(result.item_ids, result.item_embeddings))
    users.write_bytes(embeddings_csv(result.user_ids, result.user_embeddings))
    return items, users


def event(products: pd.DataFrame, number: int) -> dict:
    return {
        "session_id": f"s-{number}",
        "customer_number": 1000 + number,
        "city": ["Nantes", "Madrid", "NYC", "Lyon"][number % 4],
        "country": ["France", "Spain", "USA", "France"][number % 4],
        "credit_limit": float(1000 * (number % 97)),
        "event_time": "2026-11-27T10:00:00Z",
        "browse_history": [browsed_item(products.iloc[number % len(products)], in_shopping_cart=True)],
    }


def brute_force(result, bundle, line: dict) -> tuple[list[str], list[str]]:
    """The answer recomputed from scratch with the model the line names: its user tower, its item vectors."""
    user = bundle.user_embeddings(
        [{"city": line["city"], "country": line["country"], "creditLimit": line["credit_limit"]}]
    )[0]
    recommended = [result.item_ids[i] for i in np.argsort(-(result.item_embeddings @ user))[:K]]
    anchor = line["browse_history"][0]["product_code"]
    vector = result.item_embeddings[result.item_ids.index(anchor)]
    similar = [
        result.item_ids[i] for i in np.argsort(-(result.item_embeddings @ vector)) if result.item_ids[i] != anchor
    ]
    return recommended, similar[:K]


def test_retraining_and_reloading_while_events_flow_never_mixes_two_models(stack, tmp_path):
    frame, products = training_frame()
    cfg = stack.vectordb()

    def connect():
        return search.connect(**cfg.conninfo())

    models = {"v-old": train(frame, TrainConfig(epochs=8, seed=3))}
    bundles = {"v-old": models["v-old"].bundle("v-old")}
    with connect() as conn:
        load(conn, *publish(models["v-old"], "v-old", tmp_path), "v-old")

    serving = {"pinned": "v-old", "follower": "v-old"}  # two Lambdas: one stays pinned, one moves when told
    lines: list[dict] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def lambda_(name: str) -> None:
        # Everything the thread meets lands in `errors`, which the test asserts: an exception or an assert in a
        # thread would only end the thread with a warning, and the test would pass on what the others did.
        try:
            with connect() as conn:
                number = 0
                while not stop.is_set():
                    batch = [event(products, number + i) for i in range(20)]
                    number += 20
                    records = [
                        {"recordId": e["session_id"], "data": base64.b64encode(json.dumps(e).encode()).decode()}
                        for e in batch
                    ]
                    for result in transform(records, conn, bundles[serving[name]]):
                        if result["result"] != "Ok":
                            raise AssertionError(f"{name}: record {result['recordId']} answered {result}")
                        lines.append(json.loads(base64.b64decode(result["data"])))
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=lambda_, args=(name,)) for name in serving]
    for thread in threads:
        thread.start()
    try:
        # retrain while events flow, then the new model goes live in the vector DB, twice over
        for version, seed in (("v-new", 4), ("v-newer", 5)):
            models[version] = train(frame, TrainConfig(epochs=8, seed=seed))
            bundles[version] = models[version].bundle(version)
            with connect() as conn:
                load(conn, *publish(models[version], version, tmp_path), version)
            serving["follower"] = version  # the redeploy of one Lambda; the other never moves
            count, deadline = len(lines), time.monotonic() + 300
            while len(lines) < count + 200 and not stop.is_set():
                assert time.monotonic() < deadline, f"{len(lines) - count} lines in 300 s after {version} went live"
                stop.wait(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not [thread.name for thread in threads if thread.is_alive()], "a serving thread did not stop"
    assert errors == []
    seen = {line["model_version"] for line in lines}
    assert seen == {"v-old", "v-new", "v-newer"}, seen
    mismatches = []
    for line in lines:
        version = line["model_version"]
        recommended, similar = brute_force(models[version], bundles[version], line)
        if [r["product_code"] for r in line["recommended_items"]] != recommended:
            mismatches.append((version, line["session_id"], "recommended"))
        if [r["product_code"] for r in line["similar_items"][0]["items"]] != similar:
            mismatches.append((version, line["session_id"], "similar"))
    assert mismatches == [], f"{len(mismatches)} of {len(lines)} lines mix models: {mismatches[:5]}"
    with connect() as conn:
        state = current_state(conn)
    assert state["model_version"] == "v-newer"
    assert state["items"] == len(models["v-newer"].item_ids)


def test_a_dropped_version_fails_the_batch_by_name_and_the_views_follow_the_live_one(stack, tmp_path):
    frame, products = training_frame()
    result = train(frame, TrainConfig(epochs=3, seed=6))
    cfg = stack.vectordb()
    with search.connect(
        host=cfg.host, port=cfg.port, user=cfg.user, password=cfg.password, dbname=cfg.database
    ) as conn:
        for version in ("v-k1", "v-k2", "v-k3", "v-k4"):
            load(conn, *publish(result, version, tmp_path), version, keep_versions=3)
        kept = [v["model_version"] for v in loaded_versions(conn)]
        assert kept[:3] == ["v-k4", "v-k3", "v-k2"]
        assert "v-k1" not in kept
        record = {"recordId": "r", "data": base64.b64encode(json.dumps(event(products, 1)).encode()).decode()}
        with pytest.raises(
            search.ModelVersionUnavailable, match=r"(item|user)_emb_v_k1_[0-9a-f]{8} is not in the vector DB"
        ):
            transform([record], conn, result.bundle("v-k1"))
        assert transform([record], conn, result.bundle("v-k3"))[0]["result"] == "Ok"
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'item_emb'").fetchone()[0]
        assert kind == "v"
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT id FROM item_emb ORDER BY embedding <#> %s LIMIT 5", (result.item_embeddings[0],)
            ).fetchall()
        )
        assert "item_emb_v_k4_" in plan


def test_an_index_whose_probes_miss_lists_still_answers_k_items(stack, tmp_path):
    """Ten IVFFlat lists scanned one at a time: similar items (which leave out the anchor) and user queries still
    get k items each, because the connection scans on until k rows survive (iterative scans); without that, some
    anchors get fewer."""
    from recsys_local.served import rebuild_item_index

    frame, _ = training_frame()
    result = train(frame, TrainConfig(epochs=3, seed=6))
    cfg = stack.vectordb()
    with search.connect(probes=1, **cfg.conninfo()) as conn:
        load(conn, *publish(result, "v-lists", tmp_path), "v-lists", keep_versions=3)
        items_table, users_table = search.version_tables("v-lists")
        rebuild_item_index(conn, items_table, lists=10)
        similar = search.similar_items(conn, result.item_ids, K, items_table)
        assert set(similar) == set(result.item_ids)
        assert {len(matches) for matches, _ in similar.values()} == {K}
        batch = search.items_from_users_batch(
            conn, result.user_embeddings[:20], K, items_table, result.user_ids[:20], users_table
        )
        assert {len(matches) for matches in batch} == {K}
        conn.execute("SET ivfflat.iterative_scan = off")
        short = search.similar_items(conn, result.item_ids, K, items_table)
        assert min((len(short.get(code, ([], False))[0]) for code in result.item_ids), default=K) < K


def test_a_known_customer_is_served_from_their_stored_vector_and_a_newcomer_from_the_tower(stack, tmp_path):
    """One batch, two events with the same attributes: the known customer's list is the top k of their stored vector
    (ids learned in training), the newcomer's the top k of the bundle's user tower over the event."""
    from recsys.model.train import CANDIDATES

    frame, products = training_frame()
    result = train(frame, TrainConfig(epochs=5, seed=6), candidates=tuple(c for c in CANDIDATES if c.ids))
    bundle = result.bundle("v-known")
    known = result.user_ids[0]
    assert 1002 not in result.user_ids  # the second event's customer is a newcomer
    cfg = stack.vectordb()
    with search.connect(**cfg.conninfo()) as conn:
        load(conn, *publish(result, "v-known", tmp_path), "v-known", keep_versions=3)
        records = []
        for number, customer in ((1, known), (2, 1002)):
            data = {**event(products, 1), "session_id": f"s-{number}", "customer_number": int(customer)}
            records.append({"recordId": f"r{number}", "data": base64.b64encode(json.dumps(data).encode()).decode()})
        lines = [json.loads(base64.b64decode(r["data"])) for r in transform(records, conn, bundle)]
    stored = result.user_embeddings[0]
    tower = bundle.user_embeddings([{"city": "Madrid", "country": "Spain", "creditLimit": 1000.0}])[0]

    def top(vector):
        return [result.item_ids[i] for i in np.argsort(-(result.item_embeddings @ vector), kind="stable")[:K]]

    assert [item["product_code"] for item in lines[0]["recommended_items"]] == top(stored)
    assert [item["product_code"] for item in lines[1]["recommended_items"]] == top(tower)
    assert top(stored) != top(tower)  # the ids matter: the test tells the two paths apart
