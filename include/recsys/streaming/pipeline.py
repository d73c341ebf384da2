"""The deploy DAG's logic (its tasks, :mod:`recsys.streaming.tasks`, open the hooks): build and upload packages,
deploy the functions, smoke-test the stream end to end."""

from __future__ import annotations

import json
import logging
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from recsys.config import aws_region
from recsys.streaming.packaging import FUNCTIONS, build, ca_bundle, zip_name

log = logging.getLogger(__name__)


class SmokeTestError(RuntimeError):
    """The deployed streaming path answered the smoke test wrongly; the message says what came back."""


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
        ca_file = ca_bundle(cache, s3_client.meta.region_name)
        packages = [build(function, Path(tmp), cache, ca_file).to_dict() for function in FUNCTIONS]
        uploaded = upload_packages(s3_client, bucket, packages)
    return {p["function"]: {k: v for k, v in p.items() if k != "path"} for p in uploaded}


def chosen_prebuilt_packages(param: str, env: dict[str, str] | None = None) -> str:
    """The prebuilt packages a run deploys: its ``prebuilt_packages`` Param, else the workers'
    ``RECSYS_PREBUILT_PACKAGES`` (what an Asset-started run, which sets no Param, deploys on workers with no route to
    the package index), else none (the run builds)."""
    from recsys.config import setting

    return str(param).strip() or (setting("prebuilt_packages", env) or "").strip()


def prebuilt_packages(s3_client: Any, bucket: str, sha256s: str) -> dict[str, dict[str, Any]]:
    """The packages ``python -m recsys.streaming.packaging --build`` made ahead of time and someone uploaded to the
    scripts bucket's ``lambda/``, named by their sha256s (``"<transformation>,<model inference>"``, the order of
    :data:`FUNCTIONS`): each is read back and its sha256 checked, nothing is built (no package index, no download)."""
    import hashlib
    import io
    import zipfile

    digests = [d.strip().lower() for d in sha256s.split(",")]
    if len(digests) != len(FUNCTIONS):
        raise ValueError(f"prebuilt_packages wants {len(FUNCTIONS)} sha256s ({', '.join(FUNCTIONS)}), got {sha256s!r}")
    packages: dict[str, dict[str, Any]] = {}
    for function, digest in zip(FUNCTIONS, digests, strict=True):
        key = f"lambda/{zip_name(function, digest)}"
        try:
            body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3_client.exceptions.NoSuchKey:
            raise RuntimeError(
                f"{function}: no prebuilt package s3://{bucket}/{key}: upload what `make package` built"
            ) from None
        actual = hashlib.sha256(body).hexdigest()
        if actual != digest:
            raise RuntimeError(f"{function}: s3://{bucket}/{key} has sha256 {actual}, not {digest}")
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
        log.info("%s: prebuilt s3://%s/%s (sha256 %s)", function, bucket, key, digest)
        packages[function] = {
            "function": function,
            "sha256": digest,
            "size": len(body),
            "unzipped_size": unzipped,
            "key": key,
            "bucket": bucket,
            "uploaded": False,
        }
    return packages


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


SMOKE_PREFIX = "smoke-tests/"


def smoke_event(products: list[dict[str, Any]], run_tag: str) -> dict[str, Any]:
    """A fresh synthetic event (its own session id) about a real product (a browsed item of
    :func:`recsys.streaming.generator.load_catalog`), in the cart."""
    return {
        "session_id": f"smoke-{run_tag}-{uuid.uuid4().hex[:8]}",
        "customer_number": 999_999_999,
        "city": "Smoke Test City",
        "country": "USA",
        "credit_limit": 50_000.0,
        "event_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "browse_history": [{**products[0], "in_shopping_cart": True}],
    }


def firehose_transformation_event(records: list[tuple[str, bytes]], invocation_id: str, stream: str) -> dict[str, Any]:
    """A Firehose transformation event (what Firehose sends its processor Lambda) carrying ``records``
    (``(recordId, data)``), as from the delivery stream ``stream``."""
    import base64

    now_ms = int(time.time() * 1000)
    return {
        "invocationId": invocation_id,
        "deliveryStreamArn": f"arn:aws:firehose:::deliverystream/{stream}",
        "region": aws_region(),
        "records": [
            {"recordId": record_id, "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": now_ms}
            for record_id, data in records
        ],
    }


def firehose_test_event(products: list[dict[str, Any]], run_tag: str) -> dict[str, Any]:
    """A synthetic Firehose transformation event: one valid record and one malformed one (isolation is checked too).
    Invoking the Lambda with it has no side effect: nothing is delivered anywhere."""
    event = smoke_event(products, run_tag)
    records = [("smoke-valid", json.dumps(event).encode()), ("smoke-malformed", b'{"session_id": "smoke-broken"}')]
    return {
        **firehose_transformation_event(records, f"smoke-{run_tag}", "smoke-test"),
        "session_id": event["session_id"],
    }


def check_transformation_response(payload: str, session_id: str, model_version: str) -> dict[str, Any]:
    """The transformation Lambda's answer to :func:`firehose_test_event`: each recordId once, the valid record
    ``Ok`` with recommendations of ``model_version``, the malformed one ``ProcessingFailed``."""
    import base64

    try:
        records = {r["recordId"]: r for r in json.loads(payload)["records"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise SmokeTestError(f"not a Firehose transformation response ({exc}): {payload[:300]}") from None
    problems = []
    if set(records) != {"smoke-valid", "smoke-malformed"}:
        problems.append(f"recordIds {sorted(records)} != the two sent")
    valid, malformed = records.get("smoke-valid", {}), records.get("smoke-malformed", {})
    line: dict[str, Any] = {}
    if valid.get("result") != "Ok":
        problems.append(f"the valid record came back {valid.get('result')!r}")
    else:
        line = json.loads(base64.b64decode(valid["data"]))
        if line.get("session_id") != session_id or not line.get("recommended_items") or not line.get("similar_items"):
            problems.append(f"the valid record's line has no recommendations for {session_id}: {line}")
        if line.get("model_version") != model_version:
            problems.append(f"served model {line.get('model_version')}, expected {model_version}")
    if malformed.get("result") != "ProcessingFailed":
        problems.append(f"the malformed record came back {malformed.get('result')!r}, not ProcessingFailed")
    if problems:
        raise SmokeTestError("transformation Lambda smoke test failed: " + "; ".join(problems))
    return {"session_id": session_id, "model_version": line["model_version"], "recommended": line["recommended_items"]}


def put_smoke_event(firehose_client: Any, stream: str, product: dict[str, Any], run_tag: str) -> dict[str, Any]:
    """Put a fresh event on the smoke-test delivery stream (DirectPut, prefix ``smoke-tests/``); never on the
    production stream or hours. Fails unless the put was accepted."""
    event = smoke_event([product], run_tag)
    put_at = datetime.now(UTC)
    response = firehose_client.put_record(DeliveryStreamName=stream, Record={"Data": json.dumps(event).encode()})
    if not response.get("RecordId"):
        raise RuntimeError(f"the smoke-test delivery stream {stream} did not accept the record: {response}")
    return {
        "session_id": event["session_id"],
        "hour_prefix": SMOKE_PREFIX + put_at.strftime("%Y/%m/%d/%H/"),
        "put_at": put_at.isoformat(),
    }


def newer_than_put(files: list[dict[str, Any]], put_at: str) -> bool:
    """For the sensor: an object under the smoke prefix written after this run's put."""
    since = datetime.fromisoformat(put_at) - timedelta(seconds=1)
    return any(f.get("LastModified") and f["LastModified"] >= since for f in files)


def find_recommendation(
    s3_client: Any, bucket: str, hour_prefix: str, session_id: str, put_at: str, timeout: float = 120
) -> dict:
    """The delivered line for ``session_id`` in objects written after ``put_at`` under the hour prefix (or the next
    hour's); raise if it never comes."""
    deadline = time.monotonic() + timeout
    since = datetime.fromisoformat(put_at) - timedelta(seconds=1)
    base = hour_prefix[: -len("YYYY/MM/DD/HH/")]
    hour = datetime.strptime(hour_prefix[len(base) :], "%Y/%m/%d/%H/").replace(tzinfo=UTC)
    prefixes = [hour_prefix, base + (hour + timedelta(hours=1)).strftime("%Y/%m/%d/%H/")]
    while time.monotonic() < deadline:
        for prefix in prefixes:
            for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    if obj["LastModified"] < since:
                        continue
                    body = s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
                    for line in body.splitlines():
                        record = json.loads(line)
                        if record.get("session_id") == session_id:
                            if not record.get("recommended_items") or not record.get("similar_items"):
                                raise SmokeTestError(f"{obj['Key']}: the smoke event got no recommendations: {line}")
                            return {"key": obj["Key"], "record": record}
        time.sleep(3)
    raise TimeoutError(f"no recommendation for {session_id} under s3://{bucket}/{hour_prefix} in {timeout:.0f} s")
