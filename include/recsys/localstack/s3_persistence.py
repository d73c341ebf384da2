"""Keep the local S3 across `make down` / `make up`: moto holds state in memory only.

On stop every bucket and object is written under ``<state_dir>/s3`` (an index plus one file per object); on start
they are put back. Other AWS resources (Glue jobs, Lambda functions, streams) are re-created by the DAGs'
idempotent provisioning tasks, as they would be by Terraform.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import boto3
from botocore.config import Config
from werkzeug.wrappers import Response

from recsys.localstack.aws_server import AwsCall, Forward

log = logging.getLogger("recsys.localstack.s3")


def local_client(service: str, endpoint_url: str, region: str = "us-east-1"):
    """A boto3 client for the local endpoint with moto's throwaway credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - moto accepts any key; not a secret
        config=Config(retries={"max_attempts": 2}),
    )


class S3Persistence:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "s3"
        self.endpoint_url = ""

    def intercept(self, call: AwsCall, forward: Forward) -> Response | None:
        return None

    def start(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url

    def restore(self, endpoint_url: str) -> None:
        index_path = self.root / "index.json"
        if not index_path.exists():
            return
        s3 = local_client("s3", endpoint_url)
        index: dict[str, dict[str, str]] = json.loads(index_path.read_text())
        count = 0
        for bucket, objects in index.items():
            s3.create_bucket(Bucket=bucket)
            for key, filename in objects.items():
                s3.upload_file(str(self.root / "objects" / filename), bucket, key)
                count += 1
        log.info("restored %d bucket(s), %d object(s) from %s", len(index), count, self.root)

    def stop(self) -> None:
        if not self.endpoint_url:
            return
        s3 = local_client("s3", self.endpoint_url)
        staging = self.root.with_name("s3.new")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "objects").mkdir(parents=True)
        index: dict[str, dict[str, str]] = {}
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            index[name] = {}
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                for obj in page.get("Contents", []):
                    filename = hashlib.sha256(f"{name}/{obj['Key']}".encode()).hexdigest()
                    s3.download_file(name, obj["Key"], str(staging / "objects" / filename))
                    index[name][obj["Key"]] = filename
        (staging / "index.json").write_text(json.dumps(index))
        shutil.rmtree(self.root, ignore_errors=True)
        staging.rename(self.root)
        log.info("saved %d bucket(s) to %s", len(index), self.root)
