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
    conn_id: str = VECTOR_DB_CONN_ID, aws_conn_id: str = AWS_CONN_ID, secret_arn: str | None = None
) -> dict[str, Any]:
    """psycopg keyword arguments from the Airflow connection (the master user's: administration).

    With ``secret_arn`` (a role's secret, :mod:`recsys.vectordb.roles`) or the connection's extra ``secret_arn``
    (the RDS-managed master secret), that secret supplies the user and password; host, port and database stay the
    connection's (unless the secret carries them)."""
    from airflow.providers.common.compat.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson
    tls = {key: str(extra[key]) for key in TLS_OPTIONS if extra.get(key)}
    arn = secret_arn or extra.get("secret_arn")
    if arn:
        from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook

        secret = SecretsManagerHook(aws_conn_id=aws_conn_id).get_secret(arn)
        return {**from_secret_string(secret, host=conn.host, port=conn.port, dbname=conn.schema), **tls}
    return {
        "host": conn.host,
        "port": int(conn.port or 5432),
        "user": conn.login,
        "password": conn.password,
        "dbname": conn.schema or "postgres",
        **tls,
    }
