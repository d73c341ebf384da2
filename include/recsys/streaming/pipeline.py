"""The deploy DAG's tasks: build and upload packages, deploy the functions, smoke-test the stream end to end."""

from __future__ import annotations

import json
import logging
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from recsys.streaming.packaging import FUNCTIONS, build

log = logging.getLogger(__name__)


def build_and_upload(s3_client: Any, bucket: str, cache_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Build both zips and upload them to the scripts bucket under content-hashed keys."""
    from recsys.streaming.deploy import upload_packages

    try:
        s3_client.head_bucket(Bucket=bucket)
    except s3_client.exceptions.ClientError:
        raise RuntimeError(
            f"bucket {bucket} does not exist: apply terraform/etl first (the batch_training_data DAG)"
        ) from None
    with tempfile.TemporaryDirectory(prefix="lambda-build-") as tmp:
        cache = cache_dir or Path(tempfile.gettempdir()) / "recsys-lambda-cache"
        packages = [build(function, Path(tmp), cache).to_dict() for function in FUNCTIONS]
        uploaded = upload_packages(s3_client, bucket, packages)
    return {p["function"]: {k: v for k, v in p.items() if k != "path"} for p in uploaded}


def serving_version(connection_kwargs: dict[str, Any], requested: str = "") -> str:
    """The model version the Lambdas should serve: ``requested`` if the vector DB holds its tables, else the vector
    DB's live version. Never a version whose item vectors are not loaded (the Lambdas would fail every batch)."""
    import psycopg

    from recsys.vectordb.loader import loaded_versions

    with psycopg.connect(**connection_kwargs) as conn:
        loaded = [v["model_version"] for v in loaded_versions(conn)]
    if not loaded:
        raise RuntimeError("the vector DB holds no model version: run vector_db_embeddings first")
    if requested and requested not in loaded:
        raise RuntimeError(f"model version {requested} is not loaded in the vector DB (loaded: {', '.join(loaded)})")
    return requested or loaded[0]


def deploy_all(
    lambda_client: Any, streaming: dict[str, Any], packages: dict[str, dict[str, Any]], rollback_version: str = ""
) -> dict[str, Any]:
    """Move both functions' ``live`` alias: to new versions of the built packages, or back to ``rollback_version``.

    ``rollback_version`` names the published versions to return to: ``"<transformation>"`` or
    ``"<transformation>,<model inference>"``; a function given no version keeps its alias where it is.
    """
    from recsys.streaming.deploy import publish_and_promote, roll_back

    names = {
        "transformation": streaming["transformation_lambda_name"],
        "model_inference": streaming["model_inference_lambda_name"],
    }
    if rollback_version:
        wanted = [v.strip() for v in rollback_version.split(",")]
        return {
            function: roll_back(lambda_client, names[function], version)
            for function, version in zip(FUNCTIONS, wanted, strict=False)
            if version
        }
    return {function: publish_and_promote(lambda_client, names[function], packages[function]) for function in FUNCTIONS}


def smoke_event(products: list[dict[str, Any]], run_tag: str) -> dict[str, Any]:
    return {
        "session_id": f"smoke-{run_tag}-{uuid.uuid4().hex[:8]}",
        "customer_number": 999_999_999,
        "city": "Smoke Test City",
        "country": "USA",
        "credit_limit": 50_000.0,
        "event_time": datetime.now(UTC).isoformat(),
        "browse_history": [{**products[0], "in_shopping_cart": True}],
    }


def put_smoke_event(kinesis_client: Any, stream: str, product: dict[str, Any], run_tag: str) -> dict[str, Any]:
    event = smoke_event([product], run_tag)
    kinesis_client.put_record(StreamName=stream, Data=json.dumps(event).encode(), PartitionKey=event["session_id"])
    now = datetime.now(UTC)
    return {"session_id": event["session_id"], "hour_prefix": now.strftime("%Y/%m/%d/%H/"), "put_at": now.isoformat()}


def find_recommendation(s3_client: Any, bucket: str, hour_prefix: str, session_id: str, timeout: float = 120) -> dict:
    """The delivered line for ``session_id`` under the hour prefix (or the next hour's); raise if it never comes."""
    deadline = time.monotonic() + timeout
    hour = datetime.strptime(hour_prefix, "%Y/%m/%d/%H/").replace(tzinfo=UTC)
    prefixes = [hour_prefix, (hour + timedelta(hours=1)).strftime("%Y/%m/%d/%H/")]
    while time.monotonic() < deadline:
        for prefix in prefixes:
            for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    body = s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
                    for line in body.splitlines():
                        record = json.loads(line)
                        if record.get("session_id") == session_id:
                            if not record.get("recommended_items") or not record.get("similar_items"):
                                raise AssertionError(f"{obj['Key']}: the smoke event got no recommendations: {line}")
                            return {"key": obj["Key"], "record": record}
        time.sleep(3)
    raise TimeoutError(f"no recommendation for {session_id} under s3://{bucket}/{hour_prefix} in {timeout:.0f} s")
