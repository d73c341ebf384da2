"""Reachability checks of the platform's three endpoints through the Airflow connections the DAGs use."""

from __future__ import annotations

import logging
from typing import Any

from recsys.config import AWS_CONN_ID, MYSQL_CONN_ID, SOURCE_TABLES, VECTOR_DB_CONN_ID, platform_names

log = logging.getLogger(__name__)

#: Source tables the pipelines read; the check fails when one is missing.
REQUIRED_SOURCE_TABLES = ("customers", "products", "ratings")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class PlatformCheckError(RuntimeError):
    """An endpoint is unreachable or not as the pipelines need it; the message says which and why."""


def check_mysql_source(conn_id: str = MYSQL_CONN_ID) -> dict[str, Any]:
    """The source answers as its read-only ETL user and holds the tables the batch job reads."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    hook = MySqlHook(mysql_conn_id=conn_id)
    rows = hook.get_records(
        "SELECT table_name, table_rows FROM information_schema.tables WHERE table_schema = DATABASE()"
    )
    present = {str(name).lower() for name, _ in rows}
    missing = [t for t in REQUIRED_SOURCE_TABLES if t not in present]
    if missing:
        raise PlatformCheckError(f"connection {conn_id!r}: source database lacks table(s) {', '.join(missing)}")
    (ratings,) = hook.get_first("SELECT COUNT(*) FROM ratings")
    result = {"tables": sorted(t for t in present if t in SOURCE_TABLES), "ratings": int(ratings)}
    log.info("MySQL source via %s: %s", conn_id, result)
    return result


def check_vector_db(conn_id: str = VECTOR_DB_CONN_ID) -> dict[str, Any]:
    """PostgreSQL answers and offers the pgvector extension (installed or installable).

    The endpoint is the connection's host when it has one; else ``terraform/vector_db``'s outputs (in AWS the
    connection holds only the TLS settings, and the master user comes from the RDS-managed secret). Before that root's
    first apply there is no database to check yet: the result says so (``checked`` false) instead of failing."""
    import psycopg
    from airflow.providers.common.compat.sdk import BaseHook

    from recsys.provisioning import NotAppliedError, provisioner
    from recsys.vectordb.credentials import from_airflow

    outputs = None
    if not BaseHook.get_connection(conn_id).host:
        try:
            outputs = provisioner().provision("vector_db", apply=False)
        except NotAppliedError as exc:
            log.warning("vector DB not checked: %s", exc)
            return {"checked": False, "reason": str(exc)}
    where = f"connection {conn_id!r}" if outputs is None else f"terraform/vector_db's endpoint (TLS from {conn_id!r})"
    try:
        with psycopg.connect(**from_airflow(conn_id, outputs=outputs), connect_timeout=10) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            row = conn.execute(
                "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
    except psycopg.OperationalError as exc:
        raise PlatformCheckError(f"{where}: PostgreSQL does not answer ({_first_line(exc)})") from exc
    if row is None:
        raise PlatformCheckError(f"{where}: PostgreSQL {version} does not offer the pgvector extension")
    result = {"checked": True, "postgres": version, "pgvector_available": row[0], "pgvector_installed": row[1]}
    log.info("vector DB via %s: %s", where, result)
    return result


def check_aws(conn_id: str = AWS_CONN_ID) -> dict[str, Any]:
    """The AWS endpoint answers STS and S3 and reports which of the platform's buckets exist."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.amazon.aws.hooks.sts import StsHook

    account = StsHook(aws_conn_id=conn_id).get_account_number()
    existing = {b["Name"] for b in S3Hook(aws_conn_id=conn_id).get_conn().list_buckets().get("Buckets", [])}
    names = platform_names(account=account)  # the caller's account, never a default one
    result = {"account": account, "buckets": {b: b in existing for b in names.buckets()}}
    log.info("AWS via %s: %s", conn_id, result)
    return result
