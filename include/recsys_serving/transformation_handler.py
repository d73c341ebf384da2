"""The Firehose data-transformation Lambda (``<prefix>-transformation-lambda``).

Contract (AWS Firehose): ``{"records": [{"recordId", "data" (base64), ...}]}`` in, ``{"records": [{"recordId",
"result": "Ok" | "Dropped" | "ProcessingFailed", "data" (base64)}]}`` out, every input recordId exactly once. Each
valid event becomes one JSON line: the event itself, then its recommendations; a malformed record (not base64, not
UTF-8, not JSON, a schema violation, features the model cannot embed) becomes ``ProcessingFailed`` with the reason
logged, without failing the rest. A database outage, or a served model version the vector DB no longer holds, fails
the invocation (Firehose retries it). Responses stay under Lambda's 6 MB: records beyond it come back
``ProcessingFailed`` without data (Firehose writes their original data under the error prefix).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from recsys_serving import runtime
from recsys_serving.events import EventError, parse_event
from recsys_serving.recommender import Recommendation, recommend

log = logging.getLogger()
log.setLevel(logging.INFO)

#: Lambda's synchronous response limit is 6 MB; keep a margin for the JSON envelope.
MAX_RESPONSE_BYTES = 5_500_000


def _failed(record_id: str, data: str, reason: str) -> dict[str, Any]:
    log.warning("record %s: ProcessingFailed: %s", record_id, reason)
    return {"recordId": record_id, "result": "ProcessingFailed", "data": data}


def decode(record: dict[str, Any]) -> Any:
    try:
        raw = base64.b64decode(record.get("data", ""), validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise EventError(f"data is not base64: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError(f"data is not UTF-8: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventError(f"data is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def transform(records: list[dict[str, Any]], conn: Any, bundle: Any) -> list[dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    events, positions = [], []
    for index, record in enumerate(records):
        record_id = str(record.get("recordId", ""))
        data = record.get("data", "") if isinstance(record.get("data"), str) else ""
        try:
            events.append(parse_event(decode(record)))
            positions.append(index)
        except EventError as exc:
            results[index] = _failed(record_id, data, str(exc))
    for index, outcome in zip(positions, recommend(conn, bundle, events), strict=True):
        record = records[index]
        if isinstance(outcome, Recommendation):
            line = json.dumps(outcome.to_json(), separators=(",", ":")) + "\n"
            results[index] = {
                "recordId": record["recordId"],
                "result": "Ok",
                "data": base64.b64encode(line.encode()).decode(),
            }
        else:
            results[index] = _failed(str(record["recordId"]), record["data"], str(outcome))
    ordered, size = [], len('{"records": []}')
    for index in range(len(records)):
        result = results[index]
        cost = len(json.dumps(result)) + 2
        if size + cost > MAX_RESPONSE_BYTES:
            # Lambda refuses responses over 6 MB. Firehose writes a ProcessingFailed record's original data (its
            # rawData) under the error prefix itself, so the overflow returns none and stays within the bound.
            log.warning("record %s: ProcessingFailed: the response would exceed 6 MB", result["recordId"])
            result = {"recordId": result["recordId"], "result": "ProcessingFailed", "data": ""}
            cost = len(json.dumps(result)) + 2
        size += cost
        ordered.append(result)
    return ordered


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    records = event.get("records", [])
    out = transform(records, runtime.connection(), runtime.bundle())
    ok = sum(1 for r in out if r["result"] == "Ok")
    log.info("invocation %s: %d records, %d Ok, %d failed", event.get("invocationId"), len(out), ok, len(out) - ok)
    return {"records": out}
