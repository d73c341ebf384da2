"""Where the vector DB's credentials come from: the root's outputs and the RDS-managed secret, the connection's TLS."""

from __future__ import annotations

import json

import pytest

from recsys.vectordb.credentials import from_airflow
from recsys_serving.credentials import from_secret_string

#: terraform/vector_db's outputs, as its DAG task returns them.
OUTPUTS = {
    "vector_db_host": "db.abc.us-east-1.rds.amazonaws.com",
    "vector_db_port": 5432,
    "vector_db_name": "recsys",
    "vector_db_secret_arn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!db-master",
    "vector_db_loader_secret_arn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:loader",
}
TLS = {"sslmode": "verify-full", "sslrootcert": "/opt/airflow/rds-ca.pem"}


@pytest.fixture
def secrets(monkeypatch):
    """The secrets the workers' role may read (RDS-managed master: username and password only)."""
    from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook

    stored = {
        OUTPUTS["vector_db_secret_arn"]: {"username": "postgres", "password": "master-pw"},
        OUTPUTS["vector_db_loader_secret_arn"]: {"username": "recsys_loader", "password": "loader-pw"},
    }
    asked: list[str] = []

    def get_secret(self, secret_name: str) -> str:
        asked.append(secret_name)
        return json.dumps(stored[secret_name])

    monkeypatch.setattr(SecretsManagerHook, "get_secret", get_secret)
    return asked


def test_the_roots_outputs_give_the_endpoint_and_master_secret_and_the_connection_only_tls(monkeypatch, secrets):
    # what docs/aws-deployment.md's settings table asks for before the first run: the TLS settings, no host, no secret
    monkeypatch.setenv("AIRFLOW_CONN_VECTOR_DB", json.dumps({"conn_type": "postgres", "extra": TLS}))
    conninfo = from_airflow(outputs=OUTPUTS)
    assert conninfo == {
        "host": OUTPUTS["vector_db_host"],
        "port": 5432,
        "user": "postgres",
        "password": "master-pw",
        "dbname": "recsys",
        **TLS,
    }
    loader = from_airflow(secret_arn=OUTPUTS["vector_db_loader_secret_arn"], outputs=OUTPUTS)
    assert (loader["host"], loader["user"], loader["sslmode"]) == (
        OUTPUTS["vector_db_host"],
        "recsys_loader",
        "verify-full",
    )
    assert secrets == [OUTPUTS["vector_db_secret_arn"], OUTPUTS["vector_db_loader_secret_arn"]]


def test_the_outputs_win_over_a_stale_host_and_secret_in_the_connection(monkeypatch, secrets):
    stale = {"conn_type": "postgres", "host": "old-db", "port": 5433, "extra": {**TLS, "secret_arn": "arn:old"}}
    monkeypatch.setenv("AIRFLOW_CONN_VECTOR_DB", json.dumps(stale))
    conninfo = from_airflow(outputs=OUTPUTS)
    assert (conninfo["host"], conninfo["port"]) == (OUTPUTS["vector_db_host"], 5432)
    assert secrets == [OUTPUTS["vector_db_secret_arn"]]


def test_without_outputs_the_connection_alone_says_where(monkeypatch):
    conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5433, "login": "u", "password": "p", "schema": "d"}
    monkeypatch.setenv("AIRFLOW_CONN_VECTOR_DB", json.dumps(conn))
    assert from_airflow() == {"host": "127.0.0.1", "port": 5433, "user": "u", "password": "p", "dbname": "d"}


def test_a_secret_without_a_host_and_no_endpoint_names_what_is_missing():
    with pytest.raises(ValueError, match="lack host"):
        from_secret_string(json.dumps({"username": "u", "password": "p"}))
