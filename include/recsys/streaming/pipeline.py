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

from recsys.config import platform_names
from recsys.streaming.packaging import FUNCTIONS, build

log = logging.getLogger(__name__)


def build_and_upload(s3_client: Any, cache_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Build both zips and upload them to the scripts bucket under content-hashed keys."""
    from recsys.streaming.deploy import upload_packages

    bucket = platform_names().scripts_bucket
    try:
        s3_client.head_bucket(Bucket=bucket)
    except s3_client.exceptions.ClientError:
        raise RuntimeError(
            f"bucket {bucket} does not exist: provision the etl pipeline first (batch_training_data)"
        ) from None
    with tempfile.TemporaryDirectory(prefix="lambda-build-") as tmp:
        cache = cache_dir or Path(tempfile.gettempdir()) / "recsys-lambda-cache"
        packages = [build(function, Path(tmp), cache).to_dict() for function in FUNCTIONS]
        uploaded = upload_packages(s3_client, bucket, packages)
    return {p["function"]: {k: v for k, v in p.items() if k != "path"} for p in uploaded}


def current_model_version(s3_client: Any, bucket: str) -> str:
    from recsys.model.artifacts import read_pointer

    return str(read_pointer(s3_client, bucket)["model_version"])


def deploy_all(
    lambda_client: Any,
    iam_client: Any,
    streaming: dict[str, Any],
    vector_db: dict[str, Any],
    packages: dict[str, dict[str, Any]],
    model_version: str,
) -> dict[str, Any]:
    from recsys.streaming.deploy import deploy_function

    environment = {
        "VECTOR_DB_SECRET_ARN": vector_db["vector_db_secret_arn"],
        "ML_ARTIFACTS_BUCKET": vector_db["ml_artifacts_bucket"],
        "MODEL_VERSION": model_version,
    }
    names = {
        "transformation": streaming["transformation_lambda_name"],
        "model_inference": streaming["model_inference_lambda_name"],
    }
    results = {}
    for function, spec in FUNCTIONS.items():
        results[function] = deploy_function(
            lambda_client,
            iam_client,
            names[function],
            packages[function],
            environment,
            int(spec["timeout"]),
            int(spec["memory"]),
        )
    try:
        url = lambda_client.get_function_url_config(FunctionName=names["model_inference"])["FunctionUrl"]
    except lambda_client.exceptions.ResourceNotFoundException:
        url = lambda_client.create_function_url_config(FunctionName=names["model_inference"], AuthType="AWS_IAM")[
            "FunctionUrl"
        ]
    results["model_inference_url"] = url
    return results


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
