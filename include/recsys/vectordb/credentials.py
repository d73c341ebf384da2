"""The vector DB's credentials for Airflow tasks: an Airflow connection, or the RDS-managed secret plus the endpoint
(the secret's shape: :mod:`recsys_serving.credentials`)."""

from __future__ import annotations

from typing import Any

from recsys.config import AWS_CONN_ID, VECTOR_DB_CONN_ID
from recsys_serving.credentials import TLS_OPTIONS, from_secret_string


def from_airflow(
    conn_id: str = VECTOR_DB_CONN_ID,
    aws_conn_id: str = AWS_CONN_ID,
    secret_arn: str | None = None,
    outputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """psycopg keyword arguments for the vector DB (the master user's: administration).

    With ``outputs`` (``terraform/vector_db``'s: ``vector_db_host``, ``vector_db_port``, ``vector_db_name``,
    ``vector_db_secret_arn``) the endpoint and the RDS-managed master secret are the root's: the connection then only
    needs the TLS settings, all an operator knows before the first apply. Without them, the connection's host, port
    and database, and its extra ``secret_arn`` (else its login and password). ``secret_arn`` (a role's secret,
    :mod:`recsys.vectordb.roles`) supplies the user and password instead of the master's."""
    from airflow.providers.common.compat.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson
    tls = {key: str(extra[key]) for key in TLS_OPTIONS if extra.get(key)}
    host, port, dbname = conn.host, conn.port, conn.schema
    arn = secret_arn or extra.get("secret_arn")
    if outputs is not None:
        host, port, dbname = outputs["vector_db_host"], outputs["vector_db_port"], outputs["vector_db_name"]
        arn = secret_arn or outputs["vector_db_secret_arn"]
    if arn:
        from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook

        secret = SecretsManagerHook(aws_conn_id=aws_conn_id).get_secret(arn)
        return {**from_secret_string(secret, host=host, port=port, dbname=dbname), **tls}
    return {
        "host": conn.host,
        "port": int(conn.port or 5432),
        "user": conn.login,
        "password": conn.password,
        "dbname": conn.schema or "postgres",
        **tls,
    }
