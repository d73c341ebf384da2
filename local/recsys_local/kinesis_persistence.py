"""Keep local Kinesis streams and their records across restarts and crashes (moto holds them in memory only).

A journal per stream, ``<state_dir>/kinesis/<account>/<region>/<stream>.jsonl``, gets one line per change moto makes,
written (to the OS, before the request is answered, so an acknowledged ``PutRecord(s)`` survives a SIGKILL of the
endpoint):

    {"op": "create", "name", "arn", "shards", "mode", "retention_hours", "created"}
    {"op": "put", "shard", "sequence", "partition_key", "explicit_hash_key", "data" (base64), "arrival"}

On start each journal is replayed straight into moto's backend: the stream comes back with its ARN, creation time,
shards, and every record with its sequence number and arrival time, so a consumer's checkpoint (the local Firehose's)
stays valid. Records older than the stream's retention period are dropped then, and the journal is rewritten without
them. ``DeleteStream`` deletes the journal. Resharding is not journaled (the pipelines never reshard).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from werkzeug.wrappers import Response

from recsys_local.aws_server import AwsCall, Forward

log = logging.getLogger("recsys_local.kinesis")


class Journal:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.files: dict[str, IO[str]] = {}
        self.recording = True

    def path(self, account: str, region: str, name: str) -> Path:
        return self.root / account / region / f"{name}.jsonl"

    def append(self, path: Path, entry: dict[str, Any], truncate: bool = False) -> None:
        if not self.recording:
            return
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self.lock:
            handle = self.files.get(str(path))
            if truncate or handle is None:
                if handle is not None:
                    handle.close()
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = path.open("w" if truncate else "a", encoding="utf-8")
                self.files[str(path)] = handle
            handle.write(line)
            handle.flush()  # in the OS before moto's answer leaves: survives the process, not the machine

    def remove(self, path: Path) -> None:
        if not self.recording:
            return
        with self.lock:
            handle = self.files.pop(str(path), None)
            if handle is not None:
                handle.close()
            path.unlink(missing_ok=True)

    def close(self) -> None:
        with self.lock:
            for handle in self.files.values():
                handle.close()
            self.files.clear()


_ACTIVE: Journal | None = None
_PATCHED = False


def _stamp(when: datetime) -> str:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


def _patch_moto() -> None:
    """Wrap moto's stream creation, deletion and record puts once per process; they report to the active journal."""
    global _PATCHED
    if _PATCHED:
        return
    from moto.kinesis.models import KinesisBackend, Stream

    create_stream, delete_stream = KinesisBackend.create_stream, KinesisBackend.delete_stream
    put_record = Stream.put_record

    def create_stream_through(self, stream_name, shard_count, *args, **kwargs):
        stream = create_stream(self, stream_name, shard_count, *args, **kwargs)
        if _ACTIVE is not None:
            entry = {
                "op": "create",
                "name": stream.stream_name,
                "arn": stream.arn,
                "shards": len(stream.shards),
                "mode": stream.stream_mode,
                "retention_hours": stream.retention_period_hours,
                "created": _stamp(stream.creation_datetime),
            }
            _ACTIVE.append(_ACTIVE.path(self.account_id, self.region_name, stream.stream_name), entry, truncate=True)
        return stream

    def delete_stream_through(self, *args, **kwargs):
        stream = delete_stream(self, *args, **kwargs)
        if _ACTIVE is not None and stream is not None:
            _ACTIVE.remove(_ACTIVE.path(self.account_id, self.region_name, stream.stream_name))
        return stream

    def put_record_through(self, partition_key, explicit_hash_key, data):
        sequence, shard_id = put_record(self, partition_key, explicit_hash_key, data)
        if _ACTIVE is not None:
            record = self.shards[shard_id].records[int(sequence)]
            entry = {
                "op": "put",
                "shard": shard_id,
                "sequence": int(sequence),
                "partition_key": partition_key,
                "explicit_hash_key": explicit_hash_key,
                "data": data,
                "arrival": _stamp(record.created_at_datetime),
            }
            _ACTIVE.append(_ACTIVE.path(self.account_id, self.region, self.stream_name), entry)
        return sequence, shard_id

    KinesisBackend.create_stream = create_stream_through
    KinesisBackend.delete_stream = delete_stream_through
    Stream.put_record = put_record_through
    _PATCHED = True


def _replay(path: Path, now: datetime) -> tuple[str, int, int]:
    """Load one journal into moto; returns (stream, records kept, records expired) and rewrites expired ones away."""
    from moto.core.utils import unix_time
    from moto.kinesis.models import Record, kinesis_backends

    account, region = path.parent.parent.name, path.parent.name
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines or lines[0].get("op") != "create":
        raise ValueError(f"{path}: a journal must start with its stream's creation")
    created = lines[0]
    backend = kinesis_backends[account][region]
    stream = backend.create_stream(
        created["name"],
        created["shards"],
        stream_mode=created["mode"],
        retention_period_hours=created["retention_hours"],
    )
    stream.creation_datetime = datetime.fromisoformat(created["created"]).replace(tzinfo=None)
    horizon = now - timedelta(hours=int(created["retention_hours"] or 24))
    kept: list[dict[str, Any]] = []
    expired = 0
    for number, entry in enumerate(lines[1:], start=2):
        if entry.get("op") != "put":
            raise ValueError(f"{path}:{number}: unknown journal entry {entry.get('op')!r}")
        arrival = datetime.fromisoformat(entry["arrival"])
        if arrival < horizon:
            expired += 1
            continue
        record = Record(entry["partition_key"], entry["data"], entry["sequence"], entry["explicit_hash_key"])
        record.created_at_datetime = arrival.astimezone(UTC).replace(tzinfo=None)
        record.created_at = unix_time(record.created_at_datetime)
        stream.shards[entry["shard"]].records[entry["sequence"]] = record
        kept.append(entry)
    if expired:  # compact: the journal keeps what Kinesis still retains
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in [created, *kept]), "utf-8")
        os.replace(tmp, path)
    return created["name"], len(kept), expired


class KinesisPersistence:
    def __init__(self, state_dir: Path) -> None:
        self.journal = Journal(state_dir / "kinesis")

    def intercept(self, call: AwsCall, forward: Forward) -> Response | None:
        return None

    def restore(self, endpoint_url: str) -> None:
        global _ACTIVE
        _patch_moto()
        self.journal.recording = False
        try:
            for path in sorted(self.journal.root.glob("*/*/*.jsonl")):
                name, kept, expired = _replay(path, datetime.now(UTC))
                log.info("restored stream %s: %d record(s) (%d past retention dropped)", name, kept, expired)
        finally:
            self.journal.recording = True
        _ACTIVE = self.journal

    def start(self, endpoint_url: str) -> None:
        return None

    def stop(self) -> None:
        global _ACTIVE
        if _ACTIVE is self.journal:
            _ACTIVE = None
        self.journal.close()
