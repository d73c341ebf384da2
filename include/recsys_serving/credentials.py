"""Where the vector DB's credentials come from: an Airflow connection, or the RDS-managed secret plus the endpoint.

RDS keeps the master user's credentials in a secret it manages and rotates (``manage_master_user_password``):
``{"username", "password"}`` only. Host, port and database come from elsewhere (the Lambdas' ``VECTOR_DB_HOST``,
``VECTOR_DB_PORT``, ``VECTOR_DB_NAME``, which Terraform sets; the Airflow connection's fields). A secret that also
carries ``host``/``port``/``dbname`` (the shape of self-managed RDS secrets) wins over those. The loader and reader
roles have secrets of their own (:mod:`recsys.vectordb.roles`). Airflow tasks read them through
:func:`recsys.vectordb.credentials.from_airflow`.
"""

from __future__ import annotations

import json
from typing import Any

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
