"""What Firehose delivered for given sessions: the recommendation lines and the error-prefix records of the
recommendations bucket, for the demo and the tests that count events end to end."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Deliveries:
    #: session id -> [(object key, LastModified)], one entry per line that carried it (more than one: a duplicate)
    delivered: dict[str, list[tuple[str, datetime]]] = field(default_factory=dict)
    #: session id -> the Firehose error record (errorCode, attemptsMade, rawData...) that carried it
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: object keys already read (pass the same instance again to read only new objects)
    seen: set[str] = field(default_factory=set)

    def arrived(self) -> int:
        return len(self.delivered) + len(self.failed)


def scan(s3: Any, bucket: str, sessions: set[str], since: datetime, into: Deliveries | None = None) -> Deliveries:
    """Read the objects written since ``since`` (smoke-test objects excluded) and note where each session landed."""
    found = into if into is not None else Deliveries()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if obj["LastModified"] < since or key in found.seen or key.startswith("smoke-tests/"):
                continue
            found.seen.add(key)
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            for line in body.splitlines():
                item = json.loads(line)
                if key.startswith("errors/"):
                    session = json.loads(base64.b64decode(item["rawData"])).get("session_id")
                    if session in sessions:
                        found.failed[session] = item
                elif item.get("session_id") in sessions:
                    found.delivered.setdefault(item["session_id"], []).append((key, obj["LastModified"]))
    return found
