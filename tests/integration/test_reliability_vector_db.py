"""Reliability of the vector DB under change: similarity readers never fail nor come back empty while the loader makes
three versions live back to back (scenario 9), and a PostgreSQL killed during a reload comes back with the previous
version live and complete (scenario 4)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time

import numpy as np
import pytest

from recsys.model.artifacts import embeddings_csv
from recsys.vectordb.loader import current_state, load, loaded_versions
from recsys_serving import search

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

ITEMS, USERS = 4000, 1000


def write_version(folder, seed: int, n_items: int = ITEMS, n_users: int = USERS):
    rng = np.random.default_rng(seed)
    items = [f"R{n:06d}" for n in range(n_items)]
    users = list(range(1, n_users + 1))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.csv").write_bytes(embeddings_csv(items, rng.normal(size=(n_items, 32)).astype(np.float32)))
    (folder / "users.csv").write_bytes(embeddings_csv(users, rng.normal(size=(n_users, 32)).astype(np.float32)))
    return folder / "items.csv", folder / "users.csv", items, users


def connect(stack):
    cfg = stack.vectordb()
    return search.connect(**cfg.conninfo())


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def test_readers_see_no_error_and_no_empty_result_during_back_to_back_reloads(stack, tmp_path, reliability):
    conn = connect(stack)
    items_csv, users_csv, items, users = write_version(tmp_path / "v0", 0)
    load(conn, items_csv, users_csv, "reliability-v0")
    versions = [write_version(tmp_path / f"v{n}", n) for n in (1, 2, 3)]

    stop = threading.Event()
    reloading = threading.Event()
    samples: list[tuple[bool, float]] = []  # (during reload, seconds)
    errors: list[str] = []
    empty = 0
    lock = threading.Lock()

    def reader(seed: int) -> None:
        nonlocal empty
        rnd = random.Random(seed)
        own = connect(stack)
        try:
            while not stop.is_set():
                during = reloading.is_set()
                started = time.perf_counter()
                try:
                    if rnd.random() < 0.5:
                        result = search.items_from_item(own, rnd.choice(items), k=10)
                    else:
                        result = search.items_from_user(own, customer_number=rnd.choice(users), k=10)
                except Exception as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - started
                with lock:
                    samples.append((during, elapsed))
                    empty += len(result) == 0
        finally:
            own.close()

    threads = [threading.Thread(target=reader, args=(n,), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(4)  # at rest
    reloading.set()
    reload_seconds = []
    for number, (items_path, users_path, _, _) in enumerate(versions, start=1):
        started = time.monotonic()
        load(conn, items_path, users_path, f"reliability-v{number}", keep_versions=2)
        reload_seconds.append(time.monotonic() - started)
    reloading.clear()
    time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    live = loaded_versions(conn)[0]["model_version"]
    conn.close()

    rest = [s for during, s in samples if not during]
    busy = [s for during, s in samples if during]
    reliability(
        "9. similarity readers during 3 back-to-back reloads",
        f"4 readers (items_from_item / items_from_user on the live views), {ITEMS} items, prune to 2 versions",
        f"{len(samples)} queries, errors {len(errors)}, empty {empty}; p50/p99 at rest "
        f"{percentile(rest, 50) * 1000:.1f}/{percentile(rest, 99) * 1000:.1f} ms, during reload "
        f"{percentile(busy, 50) * 1000:.1f}/{percentile(busy, 99) * 1000:.1f} ms; reloads "
        + "/".join(f"{s:.1f}" for s in reload_seconds)
        + " s",
        "errors 0, empty 0",
    )
    assert live == "reliability-v3"
    assert len(busy) > 50, "the readers hardly ran during the reloads"
    assert not errors, errors[:5]
    assert empty == 0


def staging_tables(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE right(tablename, 8) = '_staging'")]


def test_postgres_killed_during_a_reload_comes_back_with_the_previous_version(stack, tmp_path, reliability):
    from recsys_local import postgres as local_postgres

    conn = connect(stack)
    items_csv, users_csv, _, _ = write_version(tmp_path / "good", 10)
    load(conn, items_csv, users_csv, "reliability-good")
    before = current_state(conn)
    # a version big enough that its COPY and index build take seconds: the kill lands inside them
    big_items, big_users, _, _ = write_version(tmp_path / "next", 11, n_items=80_000, n_users=20_000)

    record = stack.state.running(local_postgres.SERVICE)
    assert record is not None, "the test stack's PostgreSQL is not running"
    failure: list[BaseException] = []

    def reload() -> None:
        try:
            load(conn, big_items, big_users, "reliability-next")
        except BaseException as exc:  # the connection dies with the server
            failure.append(exc)

    loader = threading.Thread(target=reload)
    loader.start()
    # kill the postmaster while the loader is staging (its COPY and index build take a few hundred ms)
    deadline = time.monotonic() + 20
    staged = False
    probe = connect(stack)
    while time.monotonic() < deadline and not staged:
        staged = bool(
            probe.execute(
                "SELECT 1 FROM pg_class WHERE relname LIKE %s", (search.version_tables("reliability-next")[0] + "%",)
            ).fetchall()
        )
        if not staged:
            time.sleep(0.005)
    probe.close()
    os.kill(record.pid, signal.SIGKILL)
    # SIGKILL is asynchronous: until the postmaster has exited it still looks alive, and `make up` would leave it be
    gone_by = time.monotonic() + 30
    while record.is_running() and time.monotonic() < gone_by:
        time.sleep(0.05)
    assert not record.is_running(), f"the postmaster {record.pid} survived SIGKILL for 30 s"
    loader.join(timeout=60)
    with contextlib.suppress(Exception):  # its server is gone
        conn.close()
    stack.up(lambda _m: None, migrate_airflow=False)  # what `make up` does: restart what is not running

    conn = connect(stack)
    after = current_state(conn)
    live = loaded_versions(conn)[0]
    rows = conn.execute("SELECT count(*) FROM item_emb").fetchone()[0]
    users = conn.execute("SELECT count(*) FROM user_emb").fetchone()[0]
    left = staging_tables(conn)
    # the next load (of another version) finds the killed load's staging tables and drops them
    load(conn, items_csv, users_csv, "reliability-after")
    left_after_next = staging_tables(conn)
    conn.close()
    reliability(
        "4. PostgreSQL killed during a reload",
        "SIGKILL of the postmaster once the new version's staging table exists, then `make up`",
        f"loader failed: {bool(failure)}; live after restart {live['model_version']} with {rows} items, {users} "
        f"users; staging tables left by the killed load {len(left)}, after the next load {len(left_after_next)}",
        f"previous version live and complete ({ITEMS} items, {USERS} users); the next load removes the leftovers",
    )
    assert left_after_next == []
    assert staged, "the kill did not land during the reload"
    assert failure, "the reload survived a killed server?"
    assert live["model_version"] == "reliability-good"
    assert (rows, users) == (ITEMS, USERS)
    assert after["indexes"].keys() == before["indexes"].keys()  # the live version's indexes are intact
    assert after["recorded_rows"] == (ITEMS, USERS)
