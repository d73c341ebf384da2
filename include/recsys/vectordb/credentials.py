"""Where the vector DB's credentials come from: an Airflow connection, or the RDS-managed secret plus the endpoint.

RDS keeps the master user's credentials in a secret it manages and rotates (``manage_master_user_password``):
``{"username", "password"}`` only. Host, port and database come from elsewhere (the Lambdas' ``VECTOR_DB_HOST``,
``VECTOR_DB_PORT``, ``VECTOR_DB_NAME``, which Terraform sets; the Airflow connection's fields). A secret that also
carries ``host``/``port``/``dbname`` (the shape of self-managed RDS secrets) wins over those. The loader and reader
roles have secrets of their own (:mod:`recsys.vectordb.roles`).
"""

from __future__ import annotations

import json
from typing import Any

from recsys.config import AWS_CONN_ID, VECTOR_DB_CONN_ID

#: libpq TLS settings taken from the connection's extra (``sslmode=verify-full`` and ``sslrootcert`` = the CA file:
#: in AWS the RDS bundle, locally the stack's CA).
TLS_OPTIONS = ("sslmode", "sslrootcert")


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
