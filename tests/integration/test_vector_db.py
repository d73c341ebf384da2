"""Loading embeddings into the real local PostgreSQL + pgvector, and searching them."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from recsys.model.artifacts import embeddings_csv
from recsys.vectordb.loader import LOAD_LOCK, EmbeddingsFileError, current_state, load, loaded_versions
from recsys_serving import search

pytestmark = pytest.mark.integration
DIM = 32


@pytest.fixture
def conn(stack):
    cfg = stack.vectordb()
    connection = search.connect(**cfg.conninfo())
    yield connection
    connection.close()


def write(tmp_path, seed: int, items: int = 200, users: int = 50):
    rng = np.random.default_rng(seed)
    item_ids = [f"S{seed}_{i:04d}" for i in range(items)]
    item_vecs = rng.normal(size=(items, DIM)).astype(np.float32)
    user_ids = list(range(100, 100 + users))
    user_vecs = rng.normal(size=(users, DIM)).astype(np.float32)
    items_csv, users_csv = tmp_path / f"items{seed}.csv", tmp_path / f"users{seed}.csv"
    items_csv.write_bytes(embeddings_csv(item_ids, item_vecs))
    users_csv.write_bytes(embeddings_csv(user_ids, user_vecs))
    return items_csv, users_csv, item_ids, item_vecs, user_ids, user_vecs


def brute_force(item_ids, item_vecs, query, k, exclude=None):
    scores = item_vecs @ query
    order = [i for i in np.argsort(-scores) if item_ids[i] != exclude][:k]
    return [item_ids[i] for i in order], [float(scores[i]) for i in order]


def test_load_then_search_equals_brute_force(conn, tmp_path):
    items_csv, users_csv, item_ids, item_vecs, user_ids, user_vecs = write(tmp_path, 1)
    result = load(conn, items_csv, users_csv, "v-one")
    assert (result["items"], result["users"]) == (200, 50)
    state = current_state(conn)
    assert state["model_version"] == "v-one"
    assert (state["items"], state["users"]) == (200, 50)
    assert any(
        "ivfflat" in d and "_key(embedding)" in d for n, d in state["indexes"].items() if n.startswith("item_emb")
    )

    for u in range(5):
        got = search.items_from_user(conn, customer_number=user_ids[u], k=10)
        expected_ids, expected_scores = brute_force(item_ids, item_vecs, user_vecs[u], 10)
        assert [g[0] for g in got] == expected_ids
        np.testing.assert_allclose([g[1] for g in got], expected_scores, rtol=1e-4)

    similar = search.items_from_item(conn, item_ids[3], k=10)
    assert item_ids[3] not in [s[0] for s in similar]
    assert len({s[0] for s in similar}) == 10
    assert [s[0] for s in similar] == brute_force(item_ids, item_vecs, item_vecs[3], 10, exclude=item_ids[3])[0]

    batch = search.items_from_users_batch(conn, user_vecs[:4], k=5)
    assert [[m[0] for m in row] for row in batch] == [brute_force(item_ids, item_vecs, v, 5)[0] for v in user_vecs[:4]]
    by_item = search.items_from_items_batch(conn, [item_ids[0], item_ids[1], "NO_SUCH"], k=5)
    assert set(by_item) == {item_ids[0], item_ids[1]}
    assert [m[0] for m in by_item[item_ids[1]]] == [m[0] for m in search.items_from_item(conn, item_ids[1], k=5)]


def test_a_load_waits_for_the_one_running_and_drops_what_a_killed_one_left(stack, conn, tmp_path):
    items_csv, users_csv, *_ = write(tmp_path, 7)
    conn.execute("CREATE TABLE item_emb_vkilled_staging (id text)")  # what a load killed mid-COPY leaves
    other = search.connect(**stack.vectordb().conninfo())
    other.execute("SELECT pg_advisory_lock(%s)", (LOAD_LOCK,))  # a load in progress elsewhere
    finished = threading.Event()
    worker = threading.Thread(target=lambda: (load(conn, items_csv, users_csv, "v-waits"), finished.set()))
    worker.start()
    try:
        assert not finished.wait(2), "a second load ran while another held the load lock"
        other.execute("SELECT pg_advisory_unlock(%s)", (LOAD_LOCK,))
        worker.join(timeout=60)
    finally:
        other.close()
    assert finished.is_set()
    assert current_state(conn)["model_version"] == "v-waits"
    left = conn.execute("SELECT count(*) FROM pg_tables WHERE right(tablename, 8) = '_staging'").fetchone()[0]
    assert left == 0
    held = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchone()[0]
    assert held == 0  # released when the load ended


def test_loading_the_same_version_twice_leaves_the_same_state(conn, tmp_path):
    items_csv, users_csv, *_ = write(tmp_path, 2)
    load(conn, items_csv, users_csv, "v-two")
    first = current_state(conn)
    load(conn, items_csv, users_csv, "v-two")
    second = current_state(conn)
    assert first == second


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda lines: [lines[0], lines[1].replace("[", "[1.0,", 1), *lines[2:]], r"line 2: embedding has 33 values"),
        (
            lambda lines: [lines[0], lines[1], lines[2].replace("[", "[nan,", 1).replace(",", "", 1), *lines[3:]],
            "line 3",
        ),
        (lambda lines: [*lines, lines[1]], "duplicate id"),
        (lambda lines: ["id;embedding", *lines[1:]], "line 1: header"),
        (lambda lines: [lines[0], lines[1].split(",", 1)[1], *lines[2:]], "line 2"),
        (lambda lines: [lines[0], "," + lines[1].split(",", 1)[1], *lines[2:]], "line 2: empty id"),
    ],
    ids=["wrong-dimension", "nan", "duplicate-id", "bad-header", "missing-column", "empty-id"],
)
def test_malformed_items_fail_before_the_live_tables_change(conn, tmp_path, mutate, message):
    good_items, good_users, *_ = write(tmp_path, 3)
    load(conn, good_items, good_users, "v-good")
    before = current_state(conn)
    lines = good_items.read_text().splitlines()
    bad = tmp_path / "bad_items.csv"
    bad.write_text("\n".join(mutate(lines)) + "\n")
    with pytest.raises(EmbeddingsFileError, match=message):
        load(conn, bad, good_users, "v-bad")
    assert current_state(conn) == before


def test_non_integer_user_ids_and_missing_files_are_reported(conn, tmp_path):
    good_items, good_users, *_ = write(tmp_path, 4)
    bad_users = tmp_path / "bad_users.csv"
    bad_users.write_text(good_users.read_text().replace("\n100,", "\nabc,", 1))
    with pytest.raises(EmbeddingsFileError, match=r"bad_users\.csv, line 2: id 'abc' is not an integer"):
        load(conn, good_items, bad_users, "v")
    with pytest.raises(EmbeddingsFileError, match="file not found"):
        load(conn, tmp_path / "nope.csv", good_users, "v")


def test_readers_never_see_an_error_an_empty_table_or_a_mix_during_reloads(stack, conn, tmp_path):
    versions = [write(tmp_path, seed, items=300) for seed in (10, 11)]
    query_item = "QUERY"
    # Both versions hold the same ids (plus a common query item) but different vectors: a mix would show.
    shared_ids = [f"S_{i:04d}" for i in range(300)]
    answers = []
    for index, (items_csv, _users_csv, _, item_vecs, _, _) in enumerate(versions):
        vecs = np.vstack([item_vecs, np.full((1, DIM), 0.1 * (index + 1), dtype=np.float32)])
        items_csv.write_bytes(embeddings_csv([*shared_ids, query_item], vecs))
        answers.append(tuple(brute_force([*shared_ids, query_item], vecs, vecs[-1], 5, exclude=query_item)[0]))
    assert answers[0] != answers[1]
    load(conn, versions[0][0], versions[0][1], "v-a")

    cfg = stack.vectordb()
    errors: list[BaseException] = []
    seen: list[tuple[str, ...]] = []
    stop = threading.Event()

    def reader() -> None:
        with search.connect(
            host=cfg.host, port=cfg.port, user=cfg.user, password=cfg.password, dbname=cfg.database
        ) as reader_conn:
            while not stop.is_set():
                try:
                    seen.append(tuple(code for code, _ in search.items_from_item(reader_conn, query_item, k=5)))
                except BaseException as exc:
                    errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    deadline = time.monotonic() + 60
    for round_ in range(4):
        items_csv, users_csv, *_ = versions[(round_ + 1) % 2]
        load(conn, items_csv, users_csv, f"v-{round_}")
    while len(seen) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=30)
    assert errors == []
    assert len(seen) >= 50
    assert set(seen) <= set(answers)


def _plan(conn, query, params) -> str:
    return "\n".join(row[0] for row in conn.execute("EXPLAIN " + query.as_string(conn), params).fetchall())


def test_search_keys_rank_by_inner_product_through_the_index_on_view_and_version_table(conn, tmp_path):
    """Vectors of very different lengths (where inner product and distance disagree most): the IVFFlat index over
    the search keys, scanning every list, returns exactly the brute-force inner-product ranking."""
    items_csv, users_csv, item_ids, item_vecs, _user_ids, user_vecs = write(tmp_path, 7, items=3000, users=20)
    rng = np.random.default_rng(8)
    item_vecs = item_vecs * rng.uniform(0.1, 3.0, size=(3000, 1)).astype(np.float32)
    items_csv.write_bytes(embeddings_csv(item_ids, item_vecs))
    result = load(conn, items_csv, users_csv, "v-keys")
    assert result["timings"]["item_emb"]["lists"] == 3
    version_table = search.version_tables("v-keys")[0]
    conn.execute("SET enable_seqscan = off")  # the index must be usable for these exact expressions
    try:
        for table in ("item_emb", version_table):
            from psycopg import sql

            query = sql.SQL("SELECT i.id FROM {} i ORDER BY {} <-> %s LIMIT 10").format(
                sql.Identifier(table), search.search_key(table, "i")
            )
            assert f"{version_table}_ivf" in _plan(conn, query, (search.query_key(user_vecs[0]),))
            for u in range(5):
                got = search.items_from_user(conn, embedding=user_vecs[u], k=10, items_table=table)
                expected_ids, expected_scores = brute_force(item_ids, item_vecs, user_vecs[u], 10)
                assert [g[0] for g in got] == expected_ids
                np.testing.assert_allclose([g[1] for g in got], expected_scores, rtol=1e-4)
            similar = search.items_from_item(conn, item_ids[0], k=5, items_table=table)
            expected_ids, _ = brute_force(item_ids, item_vecs, item_vecs[0], 5, exclude=item_ids[0])
            assert [g[0] for g in similar] == expected_ids
    finally:
        conn.execute("RESET enable_seqscan")


def test_a_version_loaded_before_search_keys_gets_them_at_the_next_load(conn, tmp_path):
    from psycopg import sql

    items_csv, users_csv, item_ids, item_vecs, _user_ids, user_vecs = write(tmp_path, 9)
    load(conn, items_csv, users_csv, "v-legacy")
    legacy = search.version_tables("v-legacy")[0]
    # as an older loader left it: no key function, an HNSW index over raw inner products
    conn.execute(sql.SQL("DROP FUNCTION {} CASCADE").format(sql.Identifier(f"{legacy}_key")))
    conn.execute(
        sql.SQL("CREATE INDEX {} ON {} USING hnsw (embedding vector_ip_ops)").format(
            sql.Identifier(f"{legacy}_hnsw"), sql.Identifier(legacy)
        )
    )
    with pytest.raises(search.ModelVersionUnavailable, match=r"no search key.*run vector_db_embeddings"):
        search.items_from_user(conn, embedding=user_vecs[0], k=5, items_table=legacy)
    items2, users2, *_ = write(tmp_path, 10)
    load(conn, items2, users2, "v-after")
    assert "v-legacy" in [v["model_version"] for v in loaded_versions(conn)]
    got = search.items_from_user(conn, embedding=user_vecs[0], k=5, items_table=legacy)
    assert [g[0] for g in got] == brute_force(item_ids, item_vecs, user_vecs[0], 5)[0]
    indexes = [r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (legacy,))]
    assert f"{legacy}_ivf" in indexes
    assert f"{legacy}_hnsw" not in indexes
