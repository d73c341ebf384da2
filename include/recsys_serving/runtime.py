"""What both Lambdas keep warm between invocations: the inference bundle and one database connection.

Configuration comes from the function's environment (set by the deploy DAG / Terraform), read per invocation through
:class:`recsys_serving.settings.LambdaSettings` (docs/configuration.md, "The Lambdas' environment"). ``MODEL_VERSION``:
the deploy DAG pins the version the vector DB serves; ``latest`` follows the vector DB's live version, re-checked every
``MODEL_REFRESH_SECONDS``, or ``latest.json`` when no vector DB is configured: either way the bundle and the item
tables it queries are one version. The vector DB's user and password come from Secrets Manager
(``VECTOR_DB_SECRET_ARN``), never from the environment.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from recsys_serving.bundle import InferenceBundle
from recsys_serving.settings import LambdaSettings

log = logging.getLogger(__name__)
_state: dict[str, Any] = {}


def _pinned_version(config: LambdaSettings) -> str | None:
    """``MODEL_VERSION`` when it names a version; None for ``latest``."""
    return None if config.model_version == "latest" else config.model_version


def _wanted_version(config: LambdaSettings, s3: Any, bucket: str) -> str:
    from recsys_serving.search import live_version

    pinned = _pinned_version(config)
    if pinned:
        return pinned
    live = live_version(connection()) if config.vector_db_secret_arn else None
    if live:
        return live
    return str(json.loads(s3.get_object(Bucket=bucket, Key="latest.json")["Body"].read())["model_version"])


def bundle() -> InferenceBundle:
    """The inference bundle of the version to serve; with ``latest``, re-resolved at most every
    ``MODEL_REFRESH_SECONDS`` and swapped between invocations (never inside one)."""
    config = LambdaSettings.load()
    fresh = time.monotonic() - _state.get("resolved_at", float("-inf")) < config.model_refresh_seconds
    if "bundle" in _state and (_pinned_version(config) or fresh):
        return _state["bundle"]
    import boto3

    s3 = boto3.client("s3")
    bucket = config.ml_artifacts_bucket
    if not bucket:
        raise RuntimeError(f"{LambdaSettings.variable('ml_artifacts_bucket')} is not set: the bundle's bucket")
    version = _wanted_version(config, s3, bucket)
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
    from recsys_serving.search import connect

    config = LambdaSettings.load()
    if not config.vector_db_secret_arn:
        raise RuntimeError(f"{LambdaSettings.variable('vector_db_secret_arn')} is not set: no vector DB to connect to")
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=config.vector_db_secret_arn)
    kwargs = from_secret_string(
        secret["SecretString"],
        host=config.vector_db_host,
        port=None if config.vector_db_port is None else str(config.vector_db_port),
        dbname=config.vector_db_name,
    )
    kwargs.update(tls_options(config))
    _state["conn"] = connect(probes=config.vector_db_probes, connect_timeout=5, **kwargs)
    _state["connections"] = _state.get("connections", 0) + 1
    log.info("connected to the vector DB at %s (connection #%d)", kwargs["host"], _state["connections"])
    return _state["conn"]


def tls_options(config: LambdaSettings | None = None) -> dict[str, str]:
    """libpq TLS settings from the environment: the CA file is resolved against the unzipped package."""
    config = config or LambdaSettings.load()
    options = {}
    if config.vector_db_sslmode:
        options["sslmode"] = config.vector_db_sslmode
    if config.vector_db_sslrootcert:
        options["sslrootcert"] = str(config.task_root / config.vector_db_sslrootcert)
    return options


def stats() -> dict[str, Any]:
    """How many connections this warm environment opened (tests check reuse)."""
    return {"connections": _state.get("connections", 0)}
