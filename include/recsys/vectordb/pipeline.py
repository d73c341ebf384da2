"""The vector-DB DAG's tasks: resolve the model version, download and validate its embeddings, load, verify."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from recsys.model.artifacts import ITEM_EMBEDDINGS, USER_EMBEDDINGS, read_pointer
from recsys.vectordb.loader import ITEMS, USERS, current_state, load, validate

log = logging.getLogger(__name__)


def resolve_version(s3_client: Any, bucket: str, requested: str = "") -> dict[str, Any]:
    """The version to load (the request, else the bucket's ``latest.json``) and the S3 URLs of its two CSVs."""
    version = requested or read_pointer(s3_client, bucket)["model_version"]
    prefix = f"versions/{version}/"
    return {
        "model_version": version,
        "bucket": bucket,
        "items_key": prefix + ITEM_EMBEDDINGS,
        "users_key": prefix + USER_EMBEDDINGS,
        "keys": [f"s3://{bucket}/{prefix}{ITEM_EMBEDDINGS}", f"s3://{bucket}/{prefix}{USER_EMBEDDINGS}"],
    }


def missing_artifacts(s3_client: Any, target: dict[str, Any]) -> list[str]:
    """The version's embedding files that are not in the bucket (S3 URLs); empty when both are there."""
    missing = []
    for key in (target["items_key"], target["users_key"]):
        try:
            s3_client.head_object(Bucket=target["bucket"], Key=key)
        except s3_client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            missing.append(f"s3://{target['bucket']}/{key}")
    return missing


def report_missing(s3_client: Any, target: dict[str, Any], waited_seconds: int) -> None:
    """Raise with what the wait for the version's files ended without (run after the sensor failed)."""
    missing = missing_artifacts(s3_client, target)
    if missing:
        raise FileNotFoundError(
            f"model version {target['model_version']} is incomplete after waiting {waited_seconds} s: missing "
            + ", ".join(missing)
            + ". The live embedding tables were not touched. Publish the missing file(s) (rerun recommender_model) "
            "or trigger with a complete model_version."
        )
    raise RuntimeError(
        f"waiting for model version {target['model_version']} failed although both files exist now: see the "
        "wait_for_embeddings log (S3 access?); the live embedding tables were not touched"
    )


def _download(s3_client: Any, target: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    items, users = folder / "item_embeddings.csv", folder / "user_embeddings.csv"
    s3_client.download_file(target["bucket"], target["items_key"], str(items))
    s3_client.download_file(target["bucket"], target["users_key"], str(users))
    return items, users


def validate_version(s3_client: Any, target: dict[str, Any]) -> dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="embeddings-") as tmp:
        items, users = _download(s3_client, target, Path(tmp))
        return {"items": validate(items, ITEMS), "users": validate(users, USERS)}


def load_version(s3_client: Any, target: dict[str, Any], connection_kwargs: dict[str, Any]) -> dict[str, Any]:
    import psycopg
    from pgvector.psycopg import register_vector

    with tempfile.TemporaryDirectory(prefix="embeddings-") as tmp:
        items, users = _download(s3_client, target, Path(tmp))
        with psycopg.connect(**connection_kwargs, autocommit=True) as conn:
            register_vector(conn)  # the extension is the master's (recsys.vectordb.roles)
            return load(conn, items, users, target["model_version"])


def verify(connection_kwargs: dict[str, Any], expected: dict[str, Any], model_version: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(**connection_kwargs) as conn:
        state = current_state(conn)
    problems = []
    if state["model_version"] != model_version:
        problems.append(f"loaded version is {state['model_version']}, expected {model_version}")
    if (state["items"], state["users"]) != (expected["items"], expected["users"]):
        problems.append(f"tables hold {state['items']} items / {state['users']} users, CSVs {expected}")
    if not any(
        "item_emb" in name and "ivfflat" in d and "_key(embedding)" in d for name, d in state["indexes"].items()
    ):
        problems.append("no search index (IVFFlat over the search keys) on item_emb")
    if problems:
        raise RuntimeError("vector DB verification failed: " + "; ".join(problems))
    log.info("vector DB holds model %s: %s", model_version, state)
    return {k: v for k, v in state.items() if k != "indexes"}
