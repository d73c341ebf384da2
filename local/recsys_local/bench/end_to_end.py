"""End-to-end suite: an event put on the Kinesis stream until its recommendation line is readable in the
recommendations bucket, on the deployed streaming pipeline (run `make demo` first), against the delivery stream's
configured buffer interval. Target: at most the interval + 2 s (median of the events)."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from recsys_local.bench import Entry, say
from recsys_local.settings import ExecutorSettings, stack_settings
from recsys_local.stack import Stack

SLACK_SECONDS = 2.0


class NotDeployed(RuntimeError):
    """The streaming pipeline is not deployed on the local stack: the suite is skipped (run `make demo`)."""


def _product(stack: Stack) -> dict[str, Any]:
    from recsys_local import mariadb
    from recsys_serving.events import PRODUCT_COLUMNS, browsed_item

    with mariadb.connect(stack.mariadb()) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(PRODUCT_COLUMNS)} FROM products LIMIT 1")
        return browsed_item(dict(zip(PRODUCT_COLUMNS, cur.fetchone(), strict=True)), in_shopping_cart=True)


def _event(session: str, product: dict[str, Any]) -> dict[str, Any]:
    return {
        "session_id": session,
        "customer_number": 103,
        "city": "Nantes",
        "country": "France",
        "credit_limit": 21000.0,
        "event_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "browse_history": [product],
    }


def run(quick: bool) -> list[Entry]:
    stack = Stack(stack_settings())
    names = stack.settings.names
    firehose, kinesis, s3 = stack.client("firehose"), stack.client("kinesis"), stack.client("s3")
    try:
        description = firehose.describe_delivery_stream(DeliveryStreamName=names.delivery_stream)
    except firehose.exceptions.ResourceNotFoundException:
        raise NotDeployed(f"{names.delivery_stream} does not exist: run `make demo` first") from None
    destination = description["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
    hinted = float(destination["BufferingHints"]["IntervalInSeconds"])
    override = ExecutorSettings.load().firehose_buffer_seconds
    interval = hinted if override is None else override
    bucket = names.recommendations_bucket
    product = _product(stack)
    events = 1 if quick else 10  # each waits for one buffer interval
    latencies = []
    for n in range(events):
        session = f"bench-{uuid.uuid4().hex[:12]}"
        seen = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in
                page.get("Contents", [])}  # fmt: skip
        put_at = time.monotonic()
        kinesis.put_record(
            StreamName=names.kinesis_stream, PartitionKey=session, Data=json.dumps(_event(session, product))
        )
        found = None
        while found is None and time.monotonic() - put_at < interval * 4 + 60:
            time.sleep(0.1)
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if key in seen or key.startswith(("errors/", "smoke-tests/")):
                        continue
                    seen.add(key)
                    if session.encode() in s3.get_object(Bucket=bucket, Key=key)["Body"].read():
                        found = time.monotonic() - put_at
        if found is None:
            raise RuntimeError(f"event {session} never reached s3://{bucket}/ (is the streaming DAG deployed?)")
        say(f"event {n + 1}/{events}: visible after {found:.1f} s (buffer interval {interval:g} s)")
        latencies.append(found)
    median = statistics.median(latencies)
    return [
        Entry(
            name="end to end: Kinesis put -> recommendation line readable in S3 (median)",
            value=round(median, 2),
            unit="s",
            reference_name="the delivery stream's buffer interval",
            reference=interval,
            target=interval + SLACK_SECONDS,
            absolute=True,
            detail={"latencies_s": [round(x, 2) for x in latencies], "client": "boto3 (what the AWS CLI runs)"},
        )
    ]
