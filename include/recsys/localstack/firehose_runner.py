"""Firehose delivery on the local stack: Kinesis source -> processor Lambda -> S3, as Firehose does it.

moto accepts a delivery stream with a Kinesis source but never reads the stream nor calls the processor, and writes
``PutRecord``/``PutRecordBatch`` of a DirectPut stream straight to S3 without its processor. This executor polls
every delivery stream whose source is a Kinesis stream, and takes the records put to a DirectPut stream that has a
processor (the deploy DAG's smoke-test stream) into its buffer (in memory):

* reads each shard after its checkpoint (``<state>/firehose/<stream>.json``, written after each delivery, so a
  restart neither loses nor repeats records);
* buffers records until the delivery stream's ``BufferingHints`` are met (``SizeInMBs``, ``IntervalInSeconds``:
  Terraform's ``buffering_size_mb`` and ``buffering_interval_seconds``, which the local target sets to a short
  interval); ``FIREHOSE_BUFFER_BYTES`` / ``FIREHOSE_BUFFER_SECONDS`` override them for experiments;
* invokes the processor Lambda (through the local Lambda executor) with Firehose's event, retrying a failed
  invocation ``NumberOfRetries`` times (default 3); checks every recordId comes back once;
* writes ``Ok`` records to ``<prefix>YYYY/MM/dd/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>`` (UTC, the oldest record's
  arrival; ``!{timestamp:...}`` expressions in the prefix are evaluated), drops ``Dropped`` ones, and writes
  ``ProcessingFailed`` ones (or all, when the Lambda keeps failing) under the error output prefix as Firehose's
  error JSON lines ``{attemptsMade, arrivalTimestamp, errorCode, errorMessage, attemptEndingTimestamp, rawData,
  lambdaArn}``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Response

from recsys.localstack.aws_server import AwsCall, Forward
from recsys.localstack.s3_persistence import local_client

log = logging.getLogger("recsys.localstack.firehose")

EXPRESSION = re.compile(r"!\{([^}]+)\}")
JAVA_TO_STRFTIME = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))


@dataclass
class Buffered:
    data: bytes
    arrival: datetime
    shard: str
    sequence: str


@dataclass
class StreamState:
    name: str
    checkpoints: dict[str, str] = field(default_factory=dict)
    #: The Kinesis stream incarnation the checkpoints belong to (ARN and creation time): a stream created anew
    #: (after `make down`/`make up`) numbers its records from the start again, so old checkpoints must not apply.
    source: str = ""
    buffer: list[Buffered] = field(default_factory=list)

    def buffer_bytes(self) -> int:
        return sum(len(r.data) for r in self.buffer)


def _env_number(name: str, kind: type) -> Any:
    value = os.environ.get(name)
    return kind(value) if value else None


def render_prefix(prefix: str, when: datetime, error_type: str = "") -> str:
    """Evaluate Firehose prefix expressions; a prefix without any gets ``YYYY/MM/dd/HH/`` appended, as in AWS."""
    if not EXPRESSION.search(prefix):
        return prefix + when.strftime("%Y/%m/%d/%H/")

    def expand(match: re.Match[str]) -> str:
        namespace, _, value = match.group(1).partition(":")
        if namespace == "timestamp":
            fmt = value
            for java, py in JAVA_TO_STRFTIME:
                fmt = fmt.replace(java, py)
            return when.strftime(fmt)
        if namespace == "firehose" and value == "error-output-type":
            return error_type
        if namespace == "firehose" and value == "random-string":
            return uuid.uuid4().hex[:11]
        raise ValueError(f"unsupported prefix expression {match.group(0)}")

    return EXPRESSION.sub(expand, prefix)


def _processors(description: dict[str, Any]) -> list[dict[str, Any]]:
    """The enabled processors of a delivery stream's S3 destination."""
    destinations = description.get("Destinations") or [{}]
    processing = destinations[0].get("ExtendedS3DestinationDescription", {}).get("ProcessingConfiguration", {})
    return list(processing.get("Processors", [])) if processing.get("Enabled", True) else []


class FirehoseRunner:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "firehose"
        self.endpoint_url = ""
        self.streams: dict[str, StreamState] = {}
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        #: Overrides of the streams' own BufferingHints (None: use the stream's, as Firehose does).
        self.buffer_bytes: int | None = _env_number("FIREHOSE_BUFFER_BYTES", int)
        self.buffer_seconds: float | None = _env_number("FIREHOSE_BUFFER_SECONDS", float)
        self.poll_seconds = float(os.environ.get("FIREHOSE_POLL_SECONDS", 1))
        #: Guards buffers DirectPut calls append to while the loop delivers them.
        self.lock = threading.RLock()
        self.direct_sequence = 0

    # --- Extension protocol ---------------------------------------------------------------------------------------
    def intercept(self, call: AwsCall, forward: Forward) -> Response | None:
        if call.target not in ("Firehose_20150804.PutRecord", "Firehose_20150804.PutRecordBatch"):
            return None
        request = call.json()
        name = request.get("DeliveryStreamName", "")
        try:
            description = local_client("firehose", self.endpoint_url).describe_delivery_stream(DeliveryStreamName=name)[
                "DeliveryStreamDescription"
            ]
        except Exception:  # unknown stream: moto answers with its own error
            return None
        if description.get("DeliveryStreamType") != "DirectPut" or not _processors(description):
            return None
        records = [request["Record"]] if "Record" in request else request.get("Records", [])
        now = datetime.now(UTC)
        with self.lock:
            state = self.streams.setdefault(name, StreamState(name=name, source="DirectPut"))
            ids = []
            for record in records:
                self.direct_sequence += 1
                sequence = f"{self.direct_sequence:020d}"
                state.buffer.append(Buffered(base64.b64decode(record.get("Data", "")), now, "direct-put", sequence))
                ids.append(sequence)
        if "Record" in request:
            body = {"RecordId": ids[0], "Encrypted": False}
        else:
            body = {"FailedPutCount": 0, "Encrypted": False, "RequestResponses": [{"RecordId": i} for i in ids]}
        return Response(json.dumps(body), status=200, content_type="application/x-amz-json-1.1")

    def restore(self, endpoint_url: str) -> None:
        return None

    def start(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.root.mkdir(parents=True, exist_ok=True)
        self.thread = threading.Thread(target=self._loop, name="firehose", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=30)

    # --- loop -------------------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.stopped.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # keep delivering: a failing pass is logged and retried on the next poll
                log.exception("firehose poll failed")

    def poll_once(self, flush: bool = False) -> None:
        firehose = local_client("firehose", self.endpoint_url)
        for name in firehose.list_delivery_streams().get("DeliveryStreamNames", []):
            description = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
            source = description.get("Source", {}).get("KinesisStreamSourceDescription")
            if not source and name not in self.streams:
                continue
            with self.lock:
                state = self.streams.get(name) or self._load_state(name)
                self.streams[name] = state
            if source:
                self._read(state, source["KinesisStreamARN"].split("/")[-1])
            max_bytes, max_seconds = self._thresholds(description)
            with self.lock:
                oldest = min((r.arrival for r in state.buffer), default=None)
                due = oldest is not None and (datetime.now(UTC) - oldest).total_seconds() >= max_seconds
                if not (state.buffer and (flush or due or state.buffer_bytes() >= max_bytes)):
                    continue
                if not source:  # DirectPut: take the buffer; new puts start a fresh one
                    taken, state.buffer = state.buffer, []
                    state = StreamState(name=name, source="DirectPut", buffer=taken)
            self._deliver(state, description)

    def _thresholds(self, description: dict[str, Any]) -> tuple[int, float]:
        """(bytes, seconds) after which the buffer is delivered: the overrides, else the stream's BufferingHints."""
        destinations = description.get("Destinations") or [{}]
        hints = destinations[0].get("ExtendedS3DestinationDescription", {}).get("BufferingHints", {})
        size = self.buffer_bytes if self.buffer_bytes is not None else int(hints.get("SizeInMBs", 5)) * 1024 * 1024
        seconds = self.buffer_seconds if self.buffer_seconds is not None else float(hints.get("IntervalInSeconds", 300))
        return size, seconds

    def _load_state(self, name: str) -> StreamState:
        path = self.root / f"{name}.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        return StreamState(name=name, checkpoints=saved.get("shards", {}), source=saved.get("source", ""))

    def _save_checkpoints(self, state: StreamState) -> None:
        path = self.root / f"{state.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"source": state.source, "shards": state.checkpoints}))
        tmp.replace(path)

    def _read(self, state: StreamState, stream_name: str) -> None:
        kinesis = local_client("kinesis", self.endpoint_url)
        summary = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
        source = f"{summary['StreamARN']}@{summary['StreamCreationTimestamp'].timestamp()}"
        if source != state.source:
            if state.source:
                log.info("%s: source stream %s is new; starting from its first record", state.name, stream_name)
            state.source, state.checkpoints, state.buffer = source, {}, []
        pending = {r.shard: r.sequence for r in state.buffer}
        for shard in kinesis.list_shards(StreamName=stream_name)["Shards"]:
            shard_id = shard["ShardId"]
            after = pending.get(shard_id) or state.checkpoints.get(shard_id)
            if after:
                iterator = kinesis.get_shard_iterator(
                    StreamName=stream_name,
                    ShardId=shard_id,
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    StartingSequenceNumber=after,
                )["ShardIterator"]
            else:
                iterator = kinesis.get_shard_iterator(
                    StreamName=stream_name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            while iterator:
                page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
                for record in page["Records"]:
                    arrival = record["ApproximateArrivalTimestamp"]
                    arrival = arrival if arrival.tzinfo else arrival.replace(tzinfo=UTC)
                    state.buffer.append(
                        Buffered(record["Data"], arrival.astimezone(UTC), shard_id, record["SequenceNumber"])
                    )
                if not page["Records"] or page.get("MillisBehindLatest", 0) == 0:
                    break
                iterator = page.get("NextShardIterator")

    # --- delivery ---------------------------------------------------------------------------------------------------
    def _deliver(self, state: StreamState, description: dict[str, Any]) -> None:
        destination = description["Destinations"][0]["ExtendedS3DestinationDescription"]
        bucket = destination["BucketARN"].split(":::")[-1]
        processors = _processors(description)
        records = state.buffer
        oldest = min(r.arrival for r in records)
        ids = [f"{r.shard}-{r.sequence}" for r in records]
        ok: list[bytes] = []
        failed: list[tuple[Buffered, str, str, int]] = []  # record, errorCode, errorMessage, attempts
        lambda_arn = ""
        if processors:
            params = {p["ParameterName"]: p["ParameterValue"] for p in processors[0].get("Parameters", [])}
            lambda_arn = params["LambdaArn"]
            retries = int(params.get("NumberOfRetries", 3))
            results, attempts, error = self._invoke(state, description, lambda_arn, records, ids, retries)
            if results is None:
                failed = [(r, "Lambda.FunctionError", error, attempts) for r in records]
            else:
                for record, record_id in zip(records, ids, strict=True):
                    result = results.get(record_id)
                    if result is None:
                        failed.append(
                            (record, "Lambda.MissingRecordId", f"recordId {record_id} not returned", attempts)
                        )
                    elif result.get("result") == "Ok":
                        ok.append(base64.b64decode(result.get("data", "")))
                    elif result.get("result") == "ProcessingFailed":
                        failed.append((record, "Lambda.ProcessingFailed", "the processor failed this record", attempts))
                    elif result.get("result") != "Dropped":
                        failed.append((record, "Lambda.InvalidResult", f"result {result.get('result')!r}", attempts))
        else:
            ok = [r.data for r in records]
        s3 = local_client("s3", self.endpoint_url)
        stamp = oldest.strftime("%Y-%m-%d-%H-%M-%S")
        if ok:
            key = f"{render_prefix(destination.get('Prefix', ''), oldest)}{state.name}-1-{stamp}-{uuid.uuid4()}"
            s3.put_object(Bucket=bucket, Key=key, Body=b"".join(ok))
            log.info("delivered %d records of %s to s3://%s/%s", len(ok), state.name, bucket, key)
        if failed:
            error_prefix = (
                destination.get("ErrorOutputPrefix") or "!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
            )
            now_ms = int(time.time() * 1000)
            lines = [
                json.dumps(
                    {
                        "attemptsMade": attempts,
                        "arrivalTimestamp": int(record.arrival.timestamp() * 1000),
                        "errorCode": code,
                        "errorMessage": message,
                        "attemptEndingTimestamp": now_ms,
                        "rawData": base64.b64encode(record.data).decode(),
                        "lambdaArn": lambda_arn,
                    }
                )
                for record, code, message, attempts in failed
            ]
            key = f"{render_prefix(error_prefix, oldest, 'processing-failed')}{state.name}-1-{stamp}-{uuid.uuid4()}"
            s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
            log.info("wrote %d failed records of %s to s3://%s/%s", len(failed), state.name, bucket, key)
        if state.source != "DirectPut":
            for record in records:
                state.checkpoints[record.shard] = record.sequence
            self._save_checkpoints(state)
        state.buffer = []

    def _invoke(
        self,
        state: StreamState,
        description: dict[str, Any],
        lambda_arn: str,
        records: list[Buffered],
        ids: list[str],
        retries: int,
    ) -> tuple[dict[str, dict[str, Any]] | None, int, str]:
        source = description.get("Source", {}).get("KinesisStreamSourceDescription")
        event: dict[str, Any] = {
            "invocationId": str(uuid.uuid4()),
            "deliveryStreamArn": description["DeliveryStreamARN"],
            "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "records": [
                {
                    "recordId": record_id,
                    "approximateArrivalTimestamp": int(r.arrival.timestamp() * 1000),
                    "data": base64.b64encode(r.data).decode(),
                }
                for r, record_id in zip(records, ids, strict=True)
            ],
        }
        if source:  # records read from a Kinesis stream carry its metadata (DirectPut ones do not)
            event["sourceKinesisStreamArn"] = source["KinesisStreamARN"]
            for record, r in zip(event["records"], records, strict=True):
                record["kinesisRecordMetadata"] = {
                    "shardId": r.shard,
                    "partitionKey": "",
                    "approximateArrivalTimestamp": int(r.arrival.timestamp() * 1000),
                    "sequenceNumber": r.sequence,
                    "subsequenceNumber": "",
                }
        client = local_client("lambda", self.endpoint_url)
        error = ""
        for attempt in range(1, retries + 2):
            try:
                response = client.invoke(FunctionName=lambda_arn, Payload=json.dumps(event).encode())
                payload = json.loads(response["Payload"].read() or b"null")
                if response.get("FunctionError"):
                    error = f"{payload.get('errorType')}: {payload.get('errorMessage')}"
                else:
                    returned = payload.get("records", []) if isinstance(payload, dict) else []
                    counts: dict[str, int] = {}
                    for item in returned:
                        counts[item.get("recordId")] = counts.get(item.get("recordId"), 0) + 1
                    duplicated = [rid for rid, n in counts.items() if n > 1]
                    if duplicated:
                        error = f"recordIds returned more than once: {duplicated[:3]}"
                    else:
                        return {item["recordId"]: item for item in returned}, attempt, ""
            except Exception as exc:  # an invocation failure is retried, like Firehose does
                error = f"{type(exc).__name__}: {exc}"
            log.warning("%s: processor invocation %d failed: %s", state.name, attempt, error)
        return None, retries + 1, error
