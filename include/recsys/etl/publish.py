"""Publish the Glue script from `include/` to S3, only when its content changed (sha256 in object metadata)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from recsys.etl import glue_job

log = logging.getLogger(__name__)

SCRIPT_PATH = Path(glue_job.__file__)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def publish_glue_script(s3_hook: Any, script_url: str, script: Path = SCRIPT_PATH) -> dict[str, Any]:
    """Upload ``script`` to ``script_url`` unless the object there has the same sha256; say which happened."""
    bucket, _, key = script_url.removeprefix("s3://").partition("/")
    digest = file_sha256(script)
    client = s3_hook.get_conn()
    try:
        current = client.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get("sha256")
    except client.exceptions.ClientError:
        current = None
    if current == digest:
        log.info("Glue script unchanged at %s (sha256 %s)", script_url, digest[:12])
        return {"script_url": script_url, "sha256": digest, "uploaded": False}
    client.upload_file(str(script), bucket, key, ExtraArgs={"Metadata": {"sha256": digest}})
    log.info("published Glue script to %s (sha256 %s, was %s)", script_url, digest[:12], (current or "absent")[:12])
    return {"script_url": script_url, "sha256": digest, "uploaded": True}


def manifest_url(datalake_bucket: str, run_id: str) -> str:
    """Where a DAG run's Glue job writes its manifest: one key per run, so a sensor waits for this run only."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_id)
    return f"s3://{datalake_bucket}/manifests/ratings-ml-training/{safe}.json"
