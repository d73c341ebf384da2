"""Where the vector DB's credentials come from: an Airflow connection, or the RDS-managed secret plus the endpoint.

RDS keeps the master user's credentials in a secret it manages and rotates (``manage_master_user_password``):
``{"username", "password"}`` only. Host, port and database come from elsewhere (the Lambdas' ``VECTOR_DB_HOST``,
``VECTOR_DB_PORT``, ``VECTOR_DB_NAME``, which Terraform sets; the Airflow connection's fields). A secret that also
carries ``host``/``port``/``dbname`` (the shape of self-managed RDS secrets) wins over those.
"""

from __future__ import annotations

import json
from typing import Any

from recsys.config import AWS_CONN_ID, VECTOR_DB_CONN_ID


def from_secret_string(
    secret_string: str, host: str | None = None, port: int | str | None = None, dbname: str | None = None
) -> dict[str, Any]:
    """psycopg keyword arguments from a secret (``username``, ``password``; optional ``host``, ``port``, ``dbname``)."""
    secret = json.loads(secret_string)
    values = {
        "host": secret.get("host") or host,
        "port": secret.get("port") or port or 5432,
        "username": secret.get("username"),
        "password": secret.get("password"),
        "dbname": secret.get("dbname") or dbname or "postgres",
    }
    missing = [k for k in ("host", "username", "password") if not values[k]]
    if missing:
        where = "the secret, nor VECTOR_DB_HOST" if "host" in missing else "the secret"
        raise ValueError(f"the vector DB credentials lack {', '.join(missing)} (not in {where})")
    return {
        "host": values["host"],
        "port": int(values["port"]),
        "user": values["username"],
        "password": values["password"],
        "dbname": values["dbname"],
    }


def from_airflow(conn_id: str = VECTOR_DB_CONN_ID, aws_conn_id: str = AWS_CONN_ID) -> dict[str, Any]:
    """psycopg keyword arguments from the Airflow connection; with extra ``secret_arn`` the secret supplies the user
    and password (and the endpoint, if it carries one)."""
    from airflow.providers.common.compat.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    secret_arn = conn.extra_dejson.get("secret_arn")
    if secret_arn:
        from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook

        secret = SecretsManagerHook(aws_conn_id=aws_conn_id).get_secret(secret_arn)
        return from_secret_string(secret, host=conn.host, port=conn.port, dbname=conn.schema)
    return {
        "host": conn.host,
        "port": int(conn.port or 5432),
        "user": conn.login,
        "password": conn.password,
        "dbname": conn.schema or "postgres",
    }
