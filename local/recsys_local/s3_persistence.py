"""Keep the local S3 across restarts and crashes: moto holds state in memory only, so every change is written through.

Each change moto makes to a bucket or an object (``PutObject``, ``CopyObject``, ``CompleteMultipartUpload``,
``DeleteObject(s)``, ``CreateBucket``, ``DeleteBucket``) is mirrored under ``<state_dir>/s3`` *before* the request is
answered, so an acknowledged write survives ``make down``, a SIGKILL of the endpoint, or a stop that outlasts its
grace period:

    <state_dir>/s3/buckets/<bucket>.json          {"name", "region", "account"}
    <state_dir>/s3/objects/<sha256(bucket/key)>   the object's bytes (written to a temporary file, then renamed)
    <state_dir>/s3/objects/<sha256>.json          {"bucket", "key", "account"} (written after the bytes)

The mirror holds each key's current version (a versioned bucket's history and object metadata are not kept). It
survives process crashes, not power loss (no fsync: the page cache outlives the process). On start the mirror is
loaded straight into moto's backend before the endpoint answers. Other AWS resources are re-created by the DAGs'
idempotent provisioning, as Terraform would; Kinesis records have their own journal
(:mod:`recsys_local.kinesis_persistence`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Response

from recsys.config import DEFAULT_REGION, LOCAL_ACCOUNT_ID
from recsys_local.aws_server import AwsCall, Forward

log = logging.getLogger("recsys_local.s3")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Mirror:
    """The on-disk copy of the local S3; every method is safe to call from moto's request threads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.buckets = root / "buckets"
        self.objects = root / "objects"
        self.lock = threading.Lock()
        #: False while the mirror itself loads objects into moto (nothing to write back then).
        self.recording = True

    @staticmethod
    def name(bucket: str, key: str) -> str:
        return hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()

    def ensure(self) -> None:
        self.buckets.mkdir(parents=True, exist_ok=True)
        self.objects.mkdir(parents=True, exist_ok=True)

    def put_bucket(self, account: str, bucket: str, region: str) -> None:
        if self.recording:
            self.ensure()
            payload = {"name": bucket, "region": region, "account": account}
            _atomic_write(self.buckets / f"{bucket}.json", json.dumps(payload).encode())

    def delete_bucket(self, bucket: str) -> None:
        if self.recording:
            (self.buckets / f"{bucket}.json").unlink(missing_ok=True)

    def put_object(self, account: str, bucket: str, key: str, value: bytes) -> None:
        if not self.recording:
            return
        self.ensure()
        name = self.name(bucket, key)
        with self.lock:  # the same key written by two requests: the later rename wins, bytes and index agree
            _atomic_write(self.objects / name, value)
            _atomic_write(
                self.objects / f"{name}.json", json.dumps({"bucket": bucket, "key": key, "account": account}).encode()
            )

    def delete_object(self, bucket: str, key: str) -> None:
        if not self.recording:
            return
        name = self.name(bucket, key)
        with self.lock:
            (self.objects / f"{name}.json").unlink(missing_ok=True)
            (self.objects / name).unlink(missing_ok=True)

    def load(self) -> tuple[list[dict[str, str]], list[tuple[dict[str, str], Path]]]:
        buckets = [json.loads(p.read_text()) for p in sorted(self.buckets.glob("*.json"))]
        objects = []
        for meta in sorted(self.objects.glob("*.json")):
            body = meta.with_suffix("")
            if body.exists():  # the bytes are renamed into place before their index entry: both or neither
                objects.append((json.loads(meta.read_text()), body))
        return buckets, objects


#: The mirror moto's S3 backend writes through to (one local endpoint per process).
_ACTIVE: Mirror | None = None
_PATCHED = False


def _current_value(backend: Any, bucket: str, key: str) -> bytes | None:
    """The key's current bytes in moto, or None when it is absent or a delete marker."""
    try:
        obj = backend.get_bucket(bucket).keys.get(key)
    except Exception:  # the bucket is gone
        return None
    value = getattr(obj, "value", None)
    return value if isinstance(value, bytes) else None


def _patch_moto() -> None:
    """Wrap the S3 backend's mutating methods once per process; they report to the active mirror."""
    global _PATCHED
    if _PATCHED:
        return
    from moto.s3.models import S3Backend

    put_object, delete_object = S3Backend.put_object, S3Backend.delete_object
    create_bucket, delete_bucket = S3Backend.create_bucket, S3Backend.delete_bucket

    def put_object_through(self, bucket_name, key_name, value, *args, **kwargs):
        key = put_object(self, bucket_name, key_name, value, *args, **kwargs)
        if _ACTIVE is not None:
            _ACTIVE.put_object(self.account_id, bucket_name, key_name, key.value)
        return key

    def delete_object_through(self, bucket_name, key_name, *args, **kwargs):
        result = delete_object(self, bucket_name, key_name, *args, **kwargs)
        if _ACTIVE is not None:
            value = _current_value(self, bucket_name, key_name)  # a versioned delete may leave a current version
            if value is None:
                _ACTIVE.delete_object(bucket_name, key_name)
            else:
                _ACTIVE.put_object(self.account_id, bucket_name, key_name, value)
        return result

    def create_bucket_through(self, bucket_name, region_name, *args, **kwargs):
        bucket = create_bucket(self, bucket_name, region_name, *args, **kwargs)
        if _ACTIVE is not None:
            _ACTIVE.put_bucket(self.account_id, bucket_name, region_name)
        return bucket

    def delete_bucket_through(self, bucket_name):
        result = delete_bucket(self, bucket_name)
        if _ACTIVE is not None and result is not None:
            _ACTIVE.delete_bucket(bucket_name)
        return result

    S3Backend.put_object = put_object_through
    S3Backend.delete_object = delete_object_through
    S3Backend.create_bucket = create_bucket_through
    S3Backend.delete_bucket = delete_bucket_through
    _PATCHED = True


class S3Persistence:
    def __init__(self, state_dir: Path) -> None:
        self.mirror = Mirror(state_dir / "s3")
        self.endpoint_url = ""

    def intercept(self, call: AwsCall, forward: Forward) -> Response | None:
        return None

    def restore(self, endpoint_url: str) -> None:
        global _ACTIVE
        _patch_moto()
        self._migrate_saved_index()
        from moto.s3.models import s3_backends

        buckets, objects = self.mirror.load()
        self.mirror.recording = False
        try:
            for bucket in buckets:
                backend = s3_backends[bucket.get("account", LOCAL_ACCOUNT_ID)]["aws"]
                if bucket["name"] not in backend.buckets:
                    backend.create_bucket(bucket["name"], bucket.get("region", DEFAULT_REGION))
            for meta, body in objects:
                backend = s3_backends[meta.get("account", LOCAL_ACCOUNT_ID)]["aws"]
                if meta["bucket"] in backend.buckets:
                    backend.put_object(meta["bucket"], meta["key"], body.read_bytes())
        finally:
            self.mirror.recording = True
        _ACTIVE = self.mirror
        if buckets:
            log.info("restored %d bucket(s), %d object(s) from %s", len(buckets), len(objects), self.mirror.root)

    def _migrate_saved_index(self) -> None:
        """State saved by the older save-at-stop layout (``index.json`` + ``objects/<sha>``): index it the new way."""
        index_path = self.mirror.root / "index.json"
        if not index_path.exists():
            return
        index: dict[str, dict[str, str]] = json.loads(index_path.read_text())
        self.mirror.ensure()
        for bucket, entries in index.items():
            self.mirror.put_bucket(LOCAL_ACCOUNT_ID, bucket, DEFAULT_REGION)
            for key, filename in entries.items():
                name = Mirror.name(bucket, key)
                if filename != name and (self.mirror.objects / filename).exists():
                    os.replace(self.mirror.objects / filename, self.mirror.objects / name)
                meta = {"bucket": bucket, "key": key, "account": LOCAL_ACCOUNT_ID}
                _atomic_write(self.mirror.objects / f"{name}.json", json.dumps(meta).encode())
        index_path.unlink()
        log.info("converted %s to the write-through layout", index_path)

    def start(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url

    def stop(self) -> None:
        """Nothing to save: every acknowledged change is already on disk."""
        global _ACTIVE
        if _ACTIVE is self.mirror:
            _ACTIVE = None
