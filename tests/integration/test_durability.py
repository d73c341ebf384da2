"""The local AWS endpoint keeps what it acknowledged across `make down` (SIGTERM) and crashes (SIGKILL).

The endpoint runs as its own process (as in the stack) on a private state directory. A producer puts uniquely
numbered events to Kinesis while the endpoint is stopped and killed; the local Firehose delivers them through a
processor Lambda to S3. Every acknowledged event must be delivered exactly once; an event whose put died with the
endpoint may be delivered at most once; nothing is delivered twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from endpoint_process import Endpoint
from test_local_lambda_and_firehose import create_fn, s3_destination

from recsys_local.process import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

ROLE = "arn:aws:iam::123456789012:role/fh"
#: Stops and kills of the endpoint under the producer: `make reliability` runs tens (DURABILITY_FAULTS), `make test` 4.
FAULTS = int(os.environ.get("DURABILITY_FAULTS", "4"))
FAULT_CYCLE = (signal.SIGKILL, signal.SIGTERM)


def provision(endpoint: Endpoint) -> None:
    """What the streaming DAG's provisioning re-creates when it is missing: after a kill, what the endpoint's last
    checkpoint did not hold (a kill within a second of the create); the bucket and the Kinesis stream are restored by
    the endpoint's journals, and everything by a graceful stop's snapshot."""
    s3, kinesis = endpoint.client("s3"), endpoint.client("kinesis")
    if "out" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket="out")
    if "activity" not in kinesis.list_streams()["StreamNames"]:
        kinesis.create_stream(StreamName="activity", ShardCount=2)
    arn = kinesis.describe_stream_summary(StreamName="activity")["StreamDescriptionSummary"]["StreamARN"]
    if "delivery" in endpoint.client("firehose").list_delivery_streams()["DeliveryStreamNames"]:
        return
    functions = {f["FunctionName"] for f in endpoint.client("lambda").list_functions()["Functions"]}
    if "fn" not in functions:
        if "fn-role" in {r["RoleName"] for r in endpoint.client("iam").list_roles()["Roles"]}:
            endpoint.client("iam").delete_role(RoleName="fn-role")  # create_fn creates it again
        create_fn(endpoint.client, 30)
    endpoint.client("firehose").create_delivery_stream(
        DeliveryStreamName="delivery",
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration=s3_destination(
            "recs/",
            "arn:aws:lambda:us-east-1:123456789012:function:fn",
            BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 60},
        ),
    )


def delivered_lines(endpoint: Endpoint) -> list[str]:
    s3 = endpoint.client("s3")
    lines: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="out", Prefix="recs/"):
        for obj in page.get("Contents", []):
            lines += s3.get_object(Bucket="out", Key=obj["Key"])["Body"].read().decode().splitlines()
    return lines


def shard_ends(endpoint: Endpoint) -> dict[str, int]:
    """Each shard's last sequence number: the stream read to its end."""
    kinesis = endpoint.client("kinesis")
    ends: dict[str, int] = {}
    for shard in kinesis.list_shards(StreamName="activity")["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName="activity", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while records := (page := kinesis.get_records(ShardIterator=iterator, Limit=10_000))["Records"]:
            ends[shard["ShardId"]] = int(records[-1]["SequenceNumber"])
            iterator = page["NextShardIterator"]
    return ends


def delivered_to_the_end(state_dir: Path, ends: dict[str, int]) -> bool:
    """The local Firehose has checkpointed every shard at its last record (``firehose/delivery.json``): a checkpoint
    moves only after its batch's objects are written, so nothing read from the stream is still in flight."""
    path = state_dir / "firehose" / "delivery.json"
    shards = json.loads(path.read_text())["shards"] if path.exists() else {}
    return all(int(shards.get(shard, 0)) >= end for shard, end in ends.items())


@pytest.mark.timeout(180 + 40 * FAULTS)  # a hang guard: ~10 s per fault alone, ~27 s beside a 2-core CPU hog
def test_acknowledged_events_are_delivered_exactly_once_across_stops_and_kills(tmp_path, reliability):
    endpoint = Endpoint(tmp_path / "state", tmp_path / "endpoint.log")
    endpoint.start()
    provision(endpoint)
    acked: set[int] = set()
    unknown: set[int] = set()
    sent = 0
    stop_producing = threading.Event()
    lock = threading.Lock()
    malformed: list[str] = []  # answers that were neither an error nor a PutRecords result

    def produce() -> None:
        nonlocal sent
        number = 0
        while not stop_producing.is_set():
            batch = list(range(number, number + 50))
            number += 50
            records = [{"Data": f"e{n:07d}".encode(), "PartitionKey": str(n)} for n in batch]
            try:
                response = endpoint.client("kinesis").put_records(StreamName="activity", Records=records)
            except Exception:  # the endpoint died under the put: it may or may not have been applied
                with lock:
                    unknown.update(batch)
                time.sleep(0.2)
                continue
            if len(response.get("Records", [])) != len(batch):  # e.g. a 200 cut after its headers
                with lock:
                    malformed.append(f"e{batch[0]:07d}..: {str(response)[:200]}")
                    unknown.update(batch)
                continue
            with lock:
                for n, result in zip(batch, response["Records"], strict=True):
                    (unknown if "ErrorCode" in result else acked).add(n)
            sent = number
            time.sleep(0.02)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    faults = [FAULT_CYCLE[n % len(FAULT_CYCLE)] for n in range(FAULTS)]
    for fault in faults:
        time.sleep(2.5)
        endpoint.stop(fault)
        time.sleep(0.3)
        endpoint.start()
        provision(endpoint)
    time.sleep(1.5)
    stop_producing.set()
    producer.join(timeout=30)

    expected = {f"E{n:07d}" for n in acked}
    ends = shard_ends(endpoint)  # the producer has stopped: the shards end here
    try:
        wait_until(
            lambda: delivered_to_the_end(tmp_path / "state", ends),
            "the delivery stream's checkpoint at every shard's last record",
            timeout=120,
            log=endpoint.log_path,
        )
        lines = delivered_lines(endpoint)
    finally:
        endpoint.stop(signal.SIGTERM)

    counts: dict[str, int] = {}
    for line in lines:
        counts[line] = counts.get(line, 0) + 1
    duplicated = sorted(line for line, n in counts.items() if n > 1)
    missing = sorted(expected - counts.keys())
    strays = sorted(counts.keys() - expected - {f"E{n:07d}" for n in unknown})
    unacked_delivered = len(counts.keys() & {f"E{n:07d}" for n in unknown})
    reliability(
        "6. local AWS endpoint stopped and killed mid-stream",
        f"{len(faults)} faults: SIGKILL x{faults.count(signal.SIGKILL)}, SIGTERM x{faults.count(signal.SIGTERM)}, "
        "under a Kinesis producer",
        f"acked {len(acked)}, missing {len(missing)}, duplicated {len(duplicated)}, malformed answers "
        f"{len(malformed)}; "
        f"{unacked_delivered} of {len(unknown)} unacknowledged delivered",
        "missing 0, duplicated 0",
    )
    assert len(acked) > 1000, "the producer hardly ran: the fault loop is not exercising anything"
    assert not malformed, f"answers that acknowledged nothing readable: {malformed[:3]}"
    assert not missing, f"acknowledged events lost: {missing[:10]}"
    assert not duplicated, f"events delivered twice: {duplicated[:10]}"
    assert not strays, f"delivered events nobody sent: {strays[:10]}"


def test_s3_writes_survive_a_kill_without_a_stop(tmp_path, reliability):
    endpoint = Endpoint(tmp_path / "state", tmp_path / "endpoint.log")
    endpoint.start()
    s3 = endpoint.client("s3")
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="a/one", Body=b"1")
    s3.put_object(Bucket="lake", Key="a/two", Body=b"2")
    s3.copy_object(Bucket="lake", Key="b/copy", CopySource={"Bucket": "lake", "Key": "a/one"})
    upload = s3.create_multipart_upload(Bucket="lake", Key="big")
    part = s3.upload_part(Bucket="lake", Key="big", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 6_000_000)
    s3.complete_multipart_upload(
        Bucket="lake",
        Key="big",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    s3.delete_object(Bucket="lake", Key="a/two")
    s3.create_bucket(Bucket="gone")
    s3.delete_bucket(Bucket="gone")
    endpoint.stop(signal.SIGKILL)  # no chance to save anything

    endpoint.start()
    s3 = endpoint.client("s3")
    try:
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["lake"]
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"])
        assert keys == ["a/one", "b/copy", "big"]
        assert s3.get_object(Bucket="lake", Key="b/copy")["Body"].read() == b"1"
        assert len(s3.get_object(Bucket="lake", Key="big")["Body"].read()) == 6_000_000
        reliability(
            "6b. local S3 written through",
            "SIGKILL right after put, copy, multipart, delete, bucket create/delete",
            f"{len(keys)} of 3 objects and 1 of 1 bucket back, deleted ones gone",
            "every acknowledged change",
        )
    finally:
        endpoint.stop(signal.SIGTERM)


def test_kinesis_records_survive_a_kill_with_their_sequence_numbers(tmp_path):
    endpoint = Endpoint(tmp_path / "state", tmp_path / "endpoint.log")
    endpoint.start()
    kinesis = endpoint.client("kinesis")
    kinesis.create_stream(StreamName="activity", ShardCount=1)
    before = kinesis.describe_stream_summary(StreamName="activity")["StreamDescriptionSummary"]
    sequences = [
        kinesis.put_record(StreamName="activity", Data=f"r{n}".encode(), PartitionKey="k")["SequenceNumber"]
        for n in range(5)
    ]
    endpoint.stop(signal.SIGKILL)

    endpoint.start()
    kinesis = endpoint.client("kinesis")
    try:
        after = kinesis.describe_stream_summary(StreamName="activity")["StreamDescriptionSummary"]
        assert (after["StreamARN"], after["StreamCreationTimestamp"]) == (
            before["StreamARN"],
            before["StreamCreationTimestamp"],
        )  # the same incarnation: consumers' checkpoints stay valid
        shard = kinesis.list_shards(StreamName="activity")["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(
            StreamName="activity",
            ShardId=shard,
            ShardIteratorType="AFTER_SEQUENCE_NUMBER",
            StartingSequenceNumber=sequences[1],
        )["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator)["Records"]
        assert [(r["SequenceNumber"], r["Data"]) for r in records] == [
            (sequences[n], f"r{n}".encode()) for n in range(2, 5)
        ]
        more = kinesis.put_record(StreamName="activity", Data=b"r5", PartitionKey="k")["SequenceNumber"]
        assert int(more) > int(sequences[-1])
        kinesis.delete_stream(StreamName="activity")
    finally:
        endpoint.stop(signal.SIGTERM)
    assert not list((tmp_path / "state" / "kinesis").rglob("*.jsonl"))  # a deleted stream leaves no journal


def test_a_sigterm_taken_by_any_thread_stops_the_endpoint(tmp_path):
    """The kernel hands a process's SIGTERM to any thread that does not block it; Python runs the handler only in the
    main thread, so a main thread blocked in a bare ``Event.wait()`` never stopped (seen once: a stop ignored for
    90 s). Deliver the signal to a thread other than the main one (``tgkill``) and expect a clean stop."""
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.machine() != "x86_64":
        pytest.skip("tgkill's syscall number is x86_64 Linux's")
    endpoint = Endpoint(tmp_path / "state", tmp_path / "endpoint.log")
    endpoint.start()
    assert endpoint.process is not None
    pid = endpoint.process.pid
    others = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    assert others, "the endpoint runs no thread besides its main one"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(234, pid, others[-1], signal.SIGTERM) == 0, os.strerror(ctypes.get_errno())  # tgkill
    try:
        endpoint.process.wait(timeout=20)
    except subprocess.TimeoutExpired as exc:
        endpoint.stop(signal.SIGKILL)
        raise AssertionError("a SIGTERM taken by a thread other than the main one did not stop it") from exc
    assert endpoint.process.returncode == 0
    assert "stopped" in endpoint.log_path.read_text()
