"""Firehose delivery on the local stack: Kinesis source -> processor Lambda -> S3, as Firehose does it.

moto accepts a delivery stream with a Kinesis source but never reads the stream nor calls the processor, and writes
``PutRecord``/``PutRecordBatch`` of a DirectPut stream straight to S3 without its processor. This executor polls
every delivery stream whose source is a Kinesis stream, and takes the records put to a DirectPut stream that has a
processor (the deploy DAG's smoke-test stream):

* **Bounded reads.** Each shard is read after its checkpoint only until the buffer holds the delivery stream's
  ``BufferingHints.SizeInMBs`` (plus at most one page): a backlog is delivered in buffer-sized batches, never read
  whole into memory. A batch is due when it reaches that size or its oldest record ``IntervalInSeconds``
  (``FIREHOSE_BUFFER_BYTES`` / ``FIREHOSE_BUFFER_SECONDS`` override both for experiments).
* **Processor invocations** as Firehose makes them: a batch is split at the processor's ``BufferSizeInMBs``
  (default 1 MB) and at Lambda's 6 MB request payload; each invocation is retried ``NumberOfRetries`` times (default
  3, with a short back-off) when it fails: a function error, a response over 6 MB or not Firehose's JSON, a result
  other than Ok/Dropped/ProcessingFailed, Ok data that is not base64, or recordIds missing, duplicated or unknown
  (the whole invocation fails, as in AWS). After the last retry its records go to the error prefix.
* **Output** ``<prefix>YYYY/MM/dd/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>`` (UTC, the oldest record's arrival;
  ``!{timestamp:...}`` / ``!{firehose:...}`` expressions are evaluated, and unsupported ones are refused at
  ``CreateDeliveryStream`` like AWS does); ``ProcessingFailed`` records and failed invocations go under the error
  output prefix as Firehose's error JSON lines ``{attemptsMade, arrivalTimestamp, errorCode, errorMessage,
  attemptEndingTimestamp, rawData, lambdaArn}``; ``Dropped`` ones are dropped.
* **Exactly once across restarts and crashes.** Before writing a batch's objects the runner saves an intent
  (``<state>/firehose/<stream>.pending/``: the objects' keys and bytes, and the checkpoints after the batch); it then
  writes the objects, moves the checkpoints (``<stream>.json``) and removes the intent. A restart finds an intent
  and re-puts the same keys (idempotent) before reading on. Kinesis records themselves survive restarts through
  :mod:`recsys_local.kinesis_persistence`, DirectPut records through ``<stream>.direct.jsonl`` (written before
  the put is acknowledged), S3 through :mod:`recsys_local.s3_persistence`. So ``stop()`` has nothing to flush:
  what is buffered is re-read after the restart.
* A batch whose objects cannot be written (S3 refuses) stays pending and is retried each poll with the reason in
  the log; the stream reads nothing more meanwhile, as Firehose keeps retrying its destination.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Response

from recsys.config import aws_region
from recsys_local import service_roles
from recsys_local.aws_server import AwsCall, Forward, json_response
from recsys_local.clients import local_client
from recsys_local.settings import ExecutorSettings

log = logging.getLogger("recsys_local.firehose")

EXPRESSION = re.compile(r"!\{([^}]+)\}")
JAVA_TO_STRFTIME = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))
#: Lambda's synchronous invocation payload limit, each way.
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024
#: What Firehose's event adds around each record's base64 data (recordId, timestamps, Kinesis metadata).
EVENT_BYTES_PER_RECORD = 400
DIRECT_PUT = "direct-put"
RESULTS = ("Ok", "Dropped", "ProcessingFailed")


@dataclass
class Buffered:
    data: bytes
    arrival: datetime
    shard: str
    sequence: str

    @property
    def record_id(self) -> str:
        return f"{self.shard}-{self.sequence}"


@dataclass
class StreamState:
    name: str
    checkpoints: dict[str, str] = field(default_factory=dict)
    #: The Kinesis stream incarnation the checkpoints belong to (ARN and creation time): a stream deleted and
    #: created anew numbers its records from the start again, so old checkpoints must not apply.
    source: str = ""
    buffer: list[Buffered] = field(default_factory=list)
    #: The last sequence number given to a DirectPut record.
    direct_sequence: int = 0
    #: Sessions of the stream's roles (enforcing endpoint only, recsys_local.service_roles): the source's role reads
    #: Kinesis, the destination's invokes the processor and writes S3, as Firehose does; None: moto's own key.
    read_keys: dict[str, str] | None = None
    write_keys: dict[str, str] | None = None

    def buffer_bytes(self) -> int:
        return sum(len(r.data) for r in self.buffer)


class InvocationFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


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


def invocation_batches(records: list[Buffered], max_bytes: int) -> list[list[Buffered]]:
    """Split records into processor invocations: at most ``max_bytes`` of data and Lambda's 6 MB payload each."""
    batches: list[list[Buffered]] = []
    current: list[Buffered] = []
    data_bytes = payload_bytes = 0
    for record in records:
        size = len(record.data)
        encoded = 4 * ((size + 2) // 3) + EVENT_BYTES_PER_RECORD
        if current and (data_bytes + size > max_bytes or payload_bytes + encoded > LAMBDA_PAYLOAD_BYTES - 4096):
            batches.append(current)
            current, data_bytes, payload_bytes = [], 0, 0
        current.append(record)
        data_bytes += size
        payload_bytes += encoded
    if current:
        batches.append(current)
    return batches


def check_response(payload: bytes, records: list[Buffered]) -> dict[str, dict[str, Any]]:
    """Firehose's checks of a processor's response; returns each record's result, or raises InvocationFailed."""
    if len(payload) > LAMBDA_PAYLOAD_BYTES:
        raise InvocationFailed("Lambda.FunctionError", f"response of {len(payload)} bytes exceeds Lambda's 6 MB")
    try:
        body = json.loads(payload or b"null")
    except ValueError as exc:
        raise InvocationFailed("Lambda.JsonProcessingException", f"response is not JSON: {exc}") from None
    returned = body.get("records") if isinstance(body, dict) else None
    if not isinstance(returned, list):
        raise InvocationFailed("Lambda.JsonProcessingException", "response has no 'records' list")
    expected = {r.record_id for r in records}
    results: dict[str, dict[str, Any]] = {}
    for position, item in enumerate(returned):
        record_id = item.get("recordId") if isinstance(item, dict) else None
        if not isinstance(record_id, str) or record_id not in expected:
            raise InvocationFailed(
                "Lambda.MissingRecordId", f"records[{position}]: recordId {record_id!r} is not one of the invocation's"
            )
        if record_id in results:
            raise InvocationFailed("Lambda.DuplicatedRecordId", f"records[{position}]: recordId {record_id} repeated")
        result = item.get("result")
        if result not in RESULTS:
            raise InvocationFailed(
                "Lambda.JsonProcessingException", f"recordId {record_id}: result {result!r} is not one of {RESULTS}"
            )
        if result == "Ok":
            try:
                item["decoded"] = base64.b64decode(item.get("data") or "", validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise InvocationFailed(
                    "Lambda.JsonProcessingException", f"recordId {record_id}: data is not base64"
                ) from None
        results[record_id] = item
    missing = expected - results.keys()
    if missing:
        raise InvocationFailed(
            "Lambda.MissingRecordId", f"{len(missing)} recordId(s) not returned, e.g. {sorted(missing)[0]}"
        )
    return results


def check_prefixes(destination: dict[str, Any]) -> str | None:
    """Why Firehose would refuse this S3 destination's prefixes, or None."""
    when = datetime(2026, 1, 1, tzinfo=UTC)
    for field_name in ("Prefix", "ErrorOutputPrefix"):
        try:
            render_prefix(destination.get(field_name) or "", when, "processing-failed")
        except ValueError as exc:
            return f"{field_name}: {exc}"
    if EXPRESSION.search(destination.get("Prefix") or "") and not destination.get("ErrorOutputPrefix"):
        return "ErrorOutputPrefix must be set when Prefix uses expressions"
    return None


class FirehoseRunner:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "firehose"
        self.endpoint_url = ""
        self.streams: dict[str, StreamState] = {}
        # the streams' roles, assumed as Firehose (an enforcing endpoint only)
        self.sessions = service_roles.Sessions(service_roles.FIREHOSE)
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        knobs = ExecutorSettings.load()
        #: Overrides of the streams' own BufferingHints (None: use the stream's, as Firehose does).
        self.buffer_bytes = knobs.firehose_buffer_bytes
        self.buffer_seconds = knobs.firehose_buffer_seconds
        self.poll_seconds = knobs.firehose_poll_seconds
        #: Seconds between a failed invocation and its retry (doubles each time, at most 5 s).
        self.retry_backoff = knobs.firehose_retry_backoff_seconds
        #: Guards the states DirectPut calls append to while the loop delivers them.
        self.lock = threading.RLock()

    # --- Extension protocol ---------------------------------------------------------------------------------------
    def intercept(self, call: AwsCall, forward: Forward) -> Response | None:
        if call.target in ("Firehose_20150804.CreateDeliveryStream", "Firehose_20150804.UpdateDestination"):
            request = call.json()
            destination = request.get("ExtendedS3DestinationConfiguration") or request.get(
                "ExtendedS3DestinationUpdate"
            )
            problem = check_prefixes(destination or {})
            if problem:
                return json_response({"__type": "InvalidArgumentException", "message": problem}, 400)
            return None
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
            state = self._state(name, direct=True)
            taken = []
            for record in records:
                state.direct_sequence += 1
                taken.append(
                    Buffered(base64.b64decode(record.get("Data", "")), now, DIRECT_PUT, f"{state.direct_sequence:020d}")
                )
            with (self.root / f"{name}.direct.jsonl").open("a", encoding="utf-8") as journal:
                for r in taken:  # on disk before the put is acknowledged
                    journal.write(json.dumps(_buffered_json(r)) + "\n")
            state.buffer.extend(taken)
        ids = [r.record_id for r in taken]
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
        """Stop polling. Nothing is lost: buffered records are still in Kinesis (or the DirectPut journal) after the
        last checkpoint, and a batch being written has its intent on disk."""
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
            direct = description.get("DeliveryStreamType") == "DirectPut"
            if not source and not (direct and _processors(description)):
                continue
            try:
                self._pump(name, description, source, flush)
            except Exception as exc:  # one stream's trouble must not stop the others
                log.error("%s: delivery failed, retrying on the next poll: %s: %s", name, type(exc).__name__, exc)

    def _pump(self, name: str, description: dict[str, Any], source: dict[str, Any] | None, flush: bool) -> None:
        with self.lock:
            state = self._state(name, direct=source is None)
        destination = (description.get("Destinations") or [{}])[0].get("ExtendedS3DestinationDescription", {})
        state.write_keys = self.sessions.get(self.endpoint_url, destination.get("RoleARN", ""), "KinesisFirehose")
        if source:
            state.read_keys = self.sessions.get(self.endpoint_url, source.get("RoleARN", ""), "KinesisFirehose")
        self._finish_pending(state)
        max_bytes, max_seconds = self._thresholds(description)
        while not self.stopped.is_set() or flush:
            if source:
                self._read(state, source["KinesisStreamARN"].split("/")[-1], max_bytes)
            with self.lock:
                batch = self._due_batch(state, max_bytes, max_seconds, flush)
            if not batch:
                return
            self._deliver(state, description, batch)

    @staticmethod
    def _due_batch(state: StreamState, max_bytes: int, max_seconds: float, flush: bool) -> list[Buffered]:
        """The records to deliver now (at most ``max_bytes``, at least one), or none when no threshold is met."""
        if not state.buffer:
            return []
        oldest = min(r.arrival for r in state.buffer)
        due = flush or (datetime.now(UTC) - oldest).total_seconds() >= max_seconds
        if not due and state.buffer_bytes() < max_bytes:
            return []
        batch, size = [], 0
        for record in state.buffer:
            if batch and size + len(record.data) > max_bytes:
                break
            batch.append(record)
            size += len(record.data)
        return batch

    def _thresholds(self, description: dict[str, Any]) -> tuple[int, float]:
        """(bytes, seconds) after which the buffer is delivered: the overrides, else the stream's BufferingHints."""
        destinations = description.get("Destinations") or [{}]
        hints = destinations[0].get("ExtendedS3DestinationDescription", {}).get("BufferingHints", {})
        size = self.buffer_bytes if self.buffer_bytes is not None else int(hints.get("SizeInMBs", 5)) * 1024 * 1024
        seconds = self.buffer_seconds if self.buffer_seconds is not None else float(hints.get("IntervalInSeconds", 300))
        return size, seconds

    # --- state on disk ----------------------------------------------------------------------------------------------
    def _state(self, name: str, direct: bool = False) -> StreamState:
        """The stream's state, loaded from disk the first time (checkpoints, DirectPut journal)."""
        if name in self.streams:
            return self.streams[name]
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{name}.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        state = StreamState(name=name, checkpoints=saved.get("shards", {}), source=saved.get("source", ""))
        if direct:
            state.source = DIRECT_PUT
            delivered = int(state.checkpoints.get(DIRECT_PUT, 0))
            state.direct_sequence = delivered
            journal = self.root / f"{name}.direct.jsonl"
            if journal.exists():
                for line in journal.read_text(encoding="utf-8").splitlines():
                    record = _buffered_from_json(json.loads(line))
                    state.direct_sequence = max(state.direct_sequence, int(record.sequence))
                    if int(record.sequence) > delivered:
                        state.buffer.append(record)
        self.streams[name] = state
        return state

    def _save_checkpoints(self, state: StreamState, checkpoints: dict[str, str]) -> None:
        path = self.root / f"{state.name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"source": state.source, "shards": checkpoints}))
        tmp.replace(path)
        state.checkpoints = checkpoints

    def _pending_dir(self, state: StreamState) -> Path:
        return self.root / f"{state.name}.pending"

    def _finish_pending(self, state: StreamState) -> None:
        """Complete a batch whose intent was saved before a crash or a failed write: re-put its objects, commit."""
        intent_path = self._pending_dir(state) / "intent.json"
        if not intent_path.exists():
            return
        intent = json.loads(intent_path.read_text())
        if intent["source"] != state.source and state.source:
            log.warning("%s: dropping an intent for a previous source stream", state.name)
            shutil.rmtree(self._pending_dir(state))
            return
        count = len(intent["objects"])
        log.info("%s: completing a batch interrupted before its checkpoint (%d object(s))", state.name, count)
        self._write_objects(state, intent)

    def _write_objects(self, state: StreamState, intent: dict[str, Any]) -> None:
        s3 = local_client("s3", self.endpoint_url, credentials=state.write_keys)
        pending = self._pending_dir(state)
        for obj in intent["objects"]:
            try:
                s3.put_object(Bucket=obj["bucket"], Key=obj["key"], Body=(pending / obj["file"]).read_bytes())
            except Exception as exc:
                raise RuntimeError(f"cannot write s3://{obj['bucket']}/{obj['key']}: {exc}") from exc
            log.info("delivered %d %s record(s) to s3://%s/%s", obj["records"], obj["kind"], obj["bucket"], obj["key"])
        with self.lock:
            self._save_checkpoints(state, intent["checkpoints"])
            delivered = set(intent["record_ids"])
            state.buffer = [r for r in state.buffer if r.record_id not in delivered]
            if state.source == DIRECT_PUT:
                self._compact_direct_journal(state)
        shutil.rmtree(pending)

    def _compact_direct_journal(self, state: StreamState) -> None:
        journal = self.root / f"{state.name}.direct.jsonl"
        tmp = journal.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(_buffered_json(r)) + "\n" for r in state.buffer), encoding="utf-8")
        tmp.replace(journal)

    def _read(self, state: StreamState, stream_name: str, max_bytes: int) -> None:
        """Top the buffer up to ``max_bytes`` (plus at most one page) from each shard, after what is buffered."""
        kinesis = local_client("kinesis", self.endpoint_url, credentials=state.read_keys)
        # DescribeStream, as Firehose calls it: what AWS tells a delivery role to allow (with GetShardIterator,
        # GetRecords, ListShards); DescribeStreamSummary is not in that list, and the enforcing endpoint refused it
        summary = kinesis.describe_stream(StreamName=stream_name, Limit=1)["StreamDescription"]
        source = f"{summary['StreamARN']}@{summary['StreamCreationTimestamp'].timestamp()}"
        if source != state.source:
            if state.source:
                log.info("%s: source stream %s is new; starting from its first record", state.name, stream_name)
            state.source, state.checkpoints, state.buffer = source, {}, []
        size = state.buffer_bytes()
        for shard in kinesis.list_shards(StreamName=stream_name)["Shards"]:
            if size >= max_bytes:
                return
            shard_id = shard["ShardId"]
            buffered = [r.sequence for r in state.buffer if r.shard == shard_id]
            after = buffered[-1] if buffered else state.checkpoints.get(shard_id)
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
            while iterator and size < max_bytes:
                page = kinesis.get_records(ShardIterator=iterator, Limit=500)
                for record in page["Records"]:
                    arrival = record["ApproximateArrivalTimestamp"]
                    arrival = arrival if arrival.tzinfo else arrival.replace(tzinfo=UTC)
                    state.buffer.append(
                        Buffered(record["Data"], arrival.astimezone(UTC), shard_id, record["SequenceNumber"])
                    )
                    size += len(record["Data"])
                if len(page["Records"]) < 500:
                    break  # caught up with the shard
                iterator = page.get("NextShardIterator")

    # --- delivery ---------------------------------------------------------------------------------------------------
    def _deliver(self, state: StreamState, description: dict[str, Any], records: list[Buffered]) -> None:
        destination = description["Destinations"][0]["ExtendedS3DestinationDescription"]
        bucket = destination["BucketARN"].split(":::")[-1]
        processors = _processors(description)
        oldest = min(r.arrival for r in records)
        ok: list[bytes] = []
        failed: list[tuple[Buffered, str, str, int]] = []  # record, errorCode, errorMessage, attempts
        lambda_arn = ""
        if processors:
            params = {p["ParameterName"]: p["ParameterValue"] for p in processors[0].get("Parameters", [])}
            lambda_arn = params["LambdaArn"]
            retries = int(params.get("NumberOfRetries", 3))
            processor_bytes = int(float(params.get("BufferSizeInMBs", 1)) * 1024 * 1024)
            for invocation in invocation_batches(records, processor_bytes):
                results, attempts, code, error = self._invoke(state, description, lambda_arn, invocation, retries)
                if results is None:
                    failed.extend((r, code, error, attempts) for r in invocation)
                    continue
                for record in invocation:
                    result = results[record.record_id]
                    if result["result"] == "Ok":
                        ok.append(result["decoded"])
                    elif result["result"] == "ProcessingFailed":
                        failed.append((record, "Lambda.ProcessingFailed", "the processor failed this record", attempts))
        else:
            ok = [r.data for r in records]
        stamp = oldest.strftime("%Y-%m-%d-%H-%M-%S")
        objects: list[tuple[str, bytes, int, str]] = []  # key, body, records, kind
        if ok:
            key = f"{render_prefix(destination.get('Prefix', ''), oldest)}{state.name}-1-{stamp}-{uuid.uuid4()}"
            objects.append((key, b"".join(ok), len(ok), "Ok"))
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
            objects.append((key, ("\n".join(lines) + "\n").encode(), len(failed), "failed"))
        checkpoints = dict(state.checkpoints)
        for record in records:
            checkpoints[record.shard] = record.sequence
        # the intent first: a crash from here on completes this batch with the same keys, never a second one
        pending = self._pending_dir(state)
        shutil.rmtree(pending, ignore_errors=True)
        pending.mkdir(parents=True)
        intent: dict[str, Any] = {
            "source": state.source,
            "checkpoints": checkpoints,
            "record_ids": [r.record_id for r in records],
            "objects": [],
        }
        for number, (key, body, count, kind) in enumerate(objects):
            (pending / f"{number}.body").write_bytes(body)
            intent["objects"].append(
                {"bucket": bucket, "key": key, "file": f"{number}.body", "records": count, "kind": kind}
            )
        tmp = pending / "intent.tmp"
        tmp.write_text(json.dumps(intent))
        tmp.replace(pending / "intent.json")
        self._write_objects(state, intent)

    def _invoke(
        self,
        state: StreamState,
        description: dict[str, Any],
        lambda_arn: str,
        records: list[Buffered],
        retries: int,
    ) -> tuple[dict[str, dict[str, Any]] | None, int, str, str]:
        """(results by recordId, attempts, "", "") or (None, attempts, errorCode, errorMessage) after the retries."""
        source = description.get("Source", {}).get("KinesisStreamSourceDescription")
        event: dict[str, Any] = {
            "invocationId": str(uuid.uuid4()),
            "deliveryStreamArn": description["DeliveryStreamARN"],
            "region": aws_region(),
            "records": [
                {
                    "recordId": r.record_id,
                    "approximateArrivalTimestamp": int(r.arrival.timestamp() * 1000),
                    "data": base64.b64encode(r.data).decode(),
                }
                for r in records
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
        client = local_client("lambda", self.endpoint_url, credentials=state.write_keys)
        code = error = ""
        for attempt in range(1, retries + 2):
            try:
                response = client.invoke(FunctionName=lambda_arn, Payload=json.dumps(event).encode())
                payload = response["Payload"].read()
                if response.get("FunctionError"):
                    try:
                        body = json.loads(payload or b"{}")
                        message = f"{body.get('errorType')}: {body.get('errorMessage')}"
                    except (ValueError, AttributeError):
                        message = payload[:500].decode(errors="replace")
                    raise InvocationFailed("Lambda.FunctionError", message)
                return check_response(payload, records), attempt, "", ""
            except InvocationFailed as exc:
                code, error = exc.code, str(exc)
            except Exception as exc:  # the invoke itself failed (endpoint, network): retried like Firehose does
                code, error = "Lambda.InvokeFailed", f"{type(exc).__name__}: {exc}"
            total = retries + 1
            log.warning("%s: processor invocation %d of %d failed: %s %s", state.name, attempt, total, code, error)
            if self.stopped.is_set():
                # The endpoint is stopping (it no longer answers the invoke): not the processor's failure. The batch
                # is left where it is, after the last checkpoint, for the next start; sending it to the error
                # prefix lost 823 acknowledged records to errors/ in a stop under load.
                raise RuntimeError(f"{state.name}: stopping; the batch is delivered after the next start")
            if attempt <= retries:
                self.stopped.wait(min(self.retry_backoff * 2 ** (attempt - 1), 5.0))
        return None, retries + 1, code, error


def _buffered_json(record: Buffered) -> dict[str, Any]:
    return {
        "sequence": record.sequence,
        "arrival": record.arrival.isoformat(),
        "data": base64.b64encode(record.data).decode(),
    }


def _buffered_from_json(entry: dict[str, Any]) -> Buffered:
    return Buffered(
        base64.b64decode(entry["data"]), datetime.fromisoformat(entry["arrival"]), DIRECT_PUT, entry["sequence"]
    )
