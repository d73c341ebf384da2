"""What both Lambdas keep warm between invocations: the inference bundle and one database connection.

Configuration comes from the function's environment (set by the deploy DAG / Terraform): ``ML_ARTIFACTS_BUCKET``,
``MODEL_VERSION`` (the deploy DAG pins the version the vector DB serves; ``latest`` follows the vector DB's live
version, re-checked every ``MODEL_REFRESH_SECONDS`` (60), or ``latest.json`` when no vector DB is configured: either
way the bundle and the item tables it queries are one version), ``VECTOR_DB_SECRET_ARN`` (the RDS-managed secret:
user and password are read from Secrets Manager, never from the environment), ``VECTOR_DB_HOST``, ``VECTOR_DB_PORT``,
``VECTOR_DB_NAME``, ``VECTOR_DB_SSLMODE`` (``verify-full``) with ``VECTOR_DB_SSLROOTCERT`` (the CA bundle in the
package, relative to ``LAMBDA_TASK_ROOT``), optional ``VECTOR_DB_PROBES`` (IVFFlat lists a query scans).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from recsys_serving.bundle import InferenceBundle

log = logging.getLogger(__name__)
_state: dict[str, Any] = {}


def _pinned_version() -> str | None:
    """``MODEL_VERSION`` when it names a version; None for ``latest``."""
    version = os.environ.get("MODEL_VERSION", "latest")
    return None if version in ("", "latest") else version


def _wanted_version(s3: Any, bucket: str) -> str:
    from recsys_serving.search import live_version

    pinned = _pinned_version()
    if pinned:
        return pinned
    live = live_version(connection()) if os.environ.get("VECTOR_DB_SECRET_ARN") else None
    if live:
        return live
    return str(json.loads(s3.get_object(Bucket=bucket, Key="latest.json")["Body"].read())["model_version"])


def bundle() -> InferenceBundle:
    """The inference bundle of the version to serve; with ``latest``, re-resolved at most every
    ``MODEL_REFRESH_SECONDS`` and swapped between invocations (never inside one)."""
    refresh = float(os.environ.get("MODEL_REFRESH_SECONDS", "60"))
    if "bundle" in _state and (_pinned_version() or time.monotonic() - _state["resolved_at"] < refresh):
        return _state["bundle"]
    import boto3

    s3 = boto3.client("s3")
    bucket = os.environ["ML_ARTIFACTS_BUCKET"]
    version = _wanted_version(s3, bucket)
    _state["resolved_at"] = time.monotonic()
    if "bundle" in _state and _state["bundle"].model_version == version:
        return _state["bundle"]
    prefix = f"versions/{version}/"
    npz = s3.get_object(Bucket=bucket, Key=prefix + "model/inference_bundle.npz")["Body"].read()
    meta = s3.get_object(Bucket=bucket, Key=prefix + "model/inference_bundle.json")["Body"].read()
    _state["bundle"] = InferenceBundle.from_files(npz, meta)
    log.info("loaded inference bundle %s", _state["bundle"].model_version)
    return _state["bundle"]


def connection() -> Any:
    """The warm connection, reconnecting when it was closed or broken."""
    conn = _state.get("conn")
    if conn is not None and not conn.closed and not conn.broken:
        return conn
    import boto3

    from recsys_serving.credentials import from_secret_string
    from recsys_serving.search import DEFAULT_PROBES, connect

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["VECTOR_DB_SECRET_ARN"])
    kwargs = from_secret_string(
        secret["SecretString"],
        host=os.environ.get("VECTOR_DB_HOST"),
        port=os.environ.get("VECTOR_DB_PORT"),
        dbname=os.environ.get("VECTOR_DB_NAME"),
    )
    kwargs.update(tls_options())
    probes = int(os.environ.get("VECTOR_DB_PROBES", DEFAULT_PROBES))
    _state["conn"] = connect(probes=probes, connect_timeout=5, **kwargs)
    _state["connections"] = _state.get("connections", 0) + 1
    log.info("connected to the vector DB at %s (connection #%d)", kwargs["host"], _state["connections"])
    return _state["conn"]


def tls_options() -> dict[str, str]:
    """libpq TLS settings from the environment: the CA file is resolved against the unzipped package."""
    options = {}
    if os.environ.get("VECTOR_DB_SSLMODE"):
        options["sslmode"] = os.environ["VECTOR_DB_SSLMODE"]
    root_cert = os.environ.get("VECTOR_DB_SSLROOTCERT")
    if root_cert:
        task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.path.dirname(os.path.dirname(__file__))
        options["sslrootcert"] = os.path.join(task_root, root_cert)
    return options


def stats() -> dict[str, Any]:
    """How many connections this warm environment opened (tests check reuse)."""
    return {"connections": _state.get("connections", 0)}
