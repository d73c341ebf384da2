"""Where the vector DB's credentials come from: an Airflow connection, or an RDS-style secret in Secrets Manager."""

from __future__ import annotations

import json
from typing import Any

from recsys.config import AWS_CONN_ID, VECTOR_DB_CONN_ID


def from_secret_string(secret_string: str) -> dict[str, Any]:
    """psycopg keyword arguments from an RDS secret (``host``, ``port``, ``username``, ``password``, ``dbname``)."""
    secret = json.loads(secret_string)
    missing = [k for k in ("host", "username", "password") if not secret.get(k)]
    if missing:
        raise ValueError(f"the vector DB secret lacks {', '.join(missing)}")
    return {
        "host": secret["host"],
        "port": int(secret.get("port", 5432)),
        "user": secret["username"],
        "password": secret["password"],
        "dbname": secret.get("dbname", "postgres"),
    }


def from_airflow(conn_id: str = VECTOR_DB_CONN_ID, aws_conn_id: str = AWS_CONN_ID) -> dict[str, Any]:
    """psycopg keyword arguments from the Airflow connection; with extra ``secret_arn`` the secret supplies them."""
    from airflow.providers.common.compat.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    secret_arn = conn.extra_dejson.get("secret_arn")
    if secret_arn:
        from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook

        return from_secret_string(SecretsManagerHook(aws_conn_id=aws_conn_id).get_secret(secret_arn))
    return {
        "host": conn.host,
        "port": int(conn.port or 5432),
        "user": conn.login,
        "password": conn.password,
        "dbname": conn.schema or "postgres",
    }
