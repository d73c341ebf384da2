"""The vector DB's least-privilege roles (recsys.vectordb.roles) on the real local PostgreSQL, with their secrets in
the local Secrets Manager.

Each test works in a database of its own with role names of its own (roles are cluster-wide), so the stack's real
roles and tables are never touched."""

from __future__ import annotations

import json
import uuid

import numpy as np
import psycopg
import pytest
from psycopg import errors, sql

from recsys.model.artifacts import embeddings_csv
from recsys.vectordb.loader import load
from recsys.vectordb.roles import ensure_roles
from recsys_local import postgres
from recsys_serving import search

pytestmark = pytest.mark.integration
DIM = 32


@pytest.fixture
def sandbox(stack):
    """A database owned by the stack's master user, two fresh role names, their empty secrets; all removed after."""
    cfg = stack.vectordb()
    tag = uuid.uuid4().hex[:8]
    database = f"roles_{tag}"
    roles = {"loader": f"t_loader_{tag}", "reader": f"t_reader_{tag}"}
    with postgres._superuser_conn(cfg) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(cfg.user)))
    with postgres._superuser_conn(cfg, database) as admin:
        admin.execute("CREATE EXTENSION vector")  # RDS lets the master create it; locally the superuser does once
    client = stack.client("secretsmanager")
    arns = {kind: client.create_secret(Name=f"test-{name}")["ARN"] for kind, name in roles.items()}
    master = {**cfg.conninfo(), "dbname": database}
    yield {"master": master, "roles": roles, "arns": arns, "client": client, "cfg": cfg}
    for arn in arns.values():
        client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    with postgres._superuser_conn(cfg) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
        for role in roles.values():
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def secret(sandbox, kind: str) -> dict:
    return json.loads(sandbox["client"].get_secret_value(SecretId=sandbox["arns"][kind])["SecretString"])


def login(sandbox, kind: str, password: str | None = None) -> psycopg.Connection:
    creds = secret(sandbox, kind)
    return psycopg.connect(
        **{**sandbox["master"], "user": creds["username"], "password": password or creds["password"]},
        autocommit=True,
    )


def ensure(sandbox, **kwargs):
    return ensure_roles(sandbox["master"], sandbox["client"], sandbox["arns"], roles=sandbox["roles"], **kwargs)


def write_version(tmp_path, seed: int):
    rng = np.random.default_rng(seed)
    items = [f"P{seed}_{i:03d}" for i in range(60)]
    items_csv, users_csv = tmp_path / f"items{seed}.csv", tmp_path / f"users{seed}.csv"
    items_csv.write_bytes(embeddings_csv(items, rng.normal(size=(60, DIM)).astype(np.float32)))
    users_csv.write_bytes(embeddings_csv(list(range(100, 120)), rng.normal(size=(20, DIM)).astype(np.float32)))
    return items_csv, users_csv


def test_roles_get_their_own_passwords_only_through_their_secrets(sandbox):
    first = ensure(sandbox)
    assert first["roles"] == {"loader": "created", "reader": "created"}
    assert sorted(first["new_passwords"]) == ["loader", "reader"]
    loader, reader = secret(sandbox, "loader"), secret(sandbox, "reader")
    assert (loader["username"], reader["username"]) == (sandbox["roles"]["loader"], sandbox["roles"]["reader"])
    master_password = sandbox["cfg"].password
    assert len({loader["password"], reader["password"], master_password}) == 3
    assert loader["password"] not in json.dumps(first)
    assert reader["password"] not in json.dumps(first)
    for kind in ("loader", "reader"):
        with login(sandbox, kind) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == sandbox["roles"][kind]

    again = ensure(sandbox)  # idempotent: same passwords, roles repaired in place
    assert again["roles"] == {"loader": "updated", "reader": "updated"}
    assert again["new_passwords"] == []
    assert secret(sandbox, "reader") == reader

    rotated = ensure(sandbox, rotate=True)
    assert sorted(rotated["new_passwords"]) == ["loader", "reader"]
    assert secret(sandbox, "reader")["password"] != reader["password"]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        login(sandbox, "reader", password=reader["password"])
    with login(sandbox, "reader") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_readers_connection_can_only_read_the_embeddings(sandbox, tmp_path):
    ensure(sandbox)
    with psycopg.connect(**sandbox["master"], autocommit=True) as master:
        master.execute("CREATE TABLE platform_private (note text)")
        master.execute("INSERT INTO platform_private VALUES ('not for the Lambdas')")
    with login(sandbox, "loader") as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        load(conn, *write_version(tmp_path, 1), "v-roles-1")
        version_items = search.version_tables("v-roles-1")[0]
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM platform_private")

    with login(sandbox, "reader") as conn:
        assert conn.execute("SELECT count(*) FROM item_emb").fetchone()[0] == 60
        assert conn.execute("SELECT count(*) FROM user_emb").fetchone()[0] == 20
        assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(version_items))).fetchone()[0]
        assert search.live_version(conn) == "v-roles-1"
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        # Not even with read-write transactions asked for explicitly:
        conn.execute("SET default_transaction_read_only = off")
        for statement in (
            "INSERT INTO item_emb (id, embedding) SELECT 'X', embedding FROM item_emb LIMIT 1",
            f"INSERT INTO {version_items} (id, embedding) SELECT 'X', embedding FROM {version_items} LIMIT 1",
            f"DELETE FROM {version_items}",
            "UPDATE embedding_versions SET model_version = 'forged'",
            f"TRUNCATE {version_items}",
            f"DROP TABLE {version_items}",
            "DROP VIEW item_emb",
            "CREATE TABLE planted (x int)",
            "SELECT * FROM platform_private",
            f"ALTER TABLE {version_items} RENAME TO stolen",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
        with pytest.raises(errors.InsufficientPrivilege):  # nor make itself more
            conn.execute(sql.SQL("GRANT {} TO {}").format(*map(sql.Identifier, sandbox["roles"].values())))
    with login(sandbox, "reader") as conn:
        assert conn.execute("SELECT count(*) FROM item_emb").fetchone()[0] == 60  # nothing above took effect


def test_relations_an_older_deployment_left_to_the_master_move_to_the_loader(sandbox, tmp_path):
    with psycopg.connect(**sandbox["master"], autocommit=True) as master:
        from pgvector.psycopg import register_vector

        register_vector(master)
        load(master, *write_version(tmp_path, 2), "v-before-roles")  # as the master did before roles existed
    done = ensure(sandbox)
    before_items, before_users = search.version_tables("v-before-roles")
    assert {"embedding_versions", "item_emb", "user_emb", before_items, before_users} <= set(done["owners_moved"])
    assert f"{before_items}_key(vector)" in done["owners_moved"]  # the version's key function goes with its tables
    with login(sandbox, "reader") as conn:
        assert search.live_version(conn) == "v-before-roles"
    with login(sandbox, "loader") as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        # replaces the master's views and, keeping one version, drops the master's version as the owner it now is
        assert load(conn, *write_version(tmp_path, 3), "v-after-roles", keep_versions=1)["dropped_versions"] == [
            "v-before-roles"
        ]
    with login(sandbox, "reader") as conn:
        assert search.live_version(conn) == "v-after-roles"
        assert conn.execute("SELECT count(*) FROM item_emb").fetchone()[0] == 60
        left = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname IN (%s, %s)", (before_items, before_users)
        ).fetchone()[0]
        assert left == 0
        assert (
            conn.execute("SELECT count(*) FROM pg_proc WHERE proname = %s", (f"{before_items}_key",)).fetchone()[0] == 0
        )


def test_a_secret_that_does_not_name_the_role_gets_a_new_password(sandbox):
    ensure(sandbox)
    sandbox["client"].put_secret_value(
        SecretId=sandbox["arns"]["reader"], SecretString=json.dumps({"username": "postgres", "password": "x"})
    )
    done = ensure(sandbox)
    assert done["new_passwords"] == ["reader"]
    assert secret(sandbox, "reader")["username"] == sandbox["roles"]["reader"]
    with login(sandbox, "reader") as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == sandbox["roles"]["reader"]
