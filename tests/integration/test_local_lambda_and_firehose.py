"""The local stack's Lambda and Firehose executors, in-process on a free port: they behave like the services."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from datetime import UTC, datetime

import pytest

from recsys_local.firehose_runner import Buffered, FirehoseRunner, invocation_batches, render_prefix

pytestmark = pytest.mark.integration

HANDLER = """
import base64, json, os
CALLS = {"n": 0}

def handler(event, context):
    CALLS["n"] += 1
    if os.environ.get("FAIL_FIREHOSE") and "records" in event:
        raise RuntimeError("processor is down")
    mode = os.environ.get("FIREHOSE_MODE")
    if mode and "records" in event:
        ids = [r["recordId"] for r in event["records"]]
        if mode == "bad-base64":
            return {"records": [{"recordId": i, "result": "Ok", "data": "not base64!"} for i in ids]}
        if mode == "missing-id":
            return {"records": [{"recordId": i, "result": "Ok", "data": ""} for i in ids[1:]]}
        if mode == "duplicate-id":
            return {"records": [{"recordId": ids[0], "result": "Ok", "data": ""} for i in ids]}
        if mode == "not-json":
            return "records"
    if "records" in event:
        out = []
        for r in event["records"]:
            data = base64.b64decode(r["data"])
            if data.startswith(b"bad"):
                out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
            elif data.startswith(b"drop"):
                out.append({"recordId": r["recordId"], "result": "Dropped", "data": r["data"]})
            else:
                out.append({"recordId": r["recordId"], "result": "Ok",
                            "data": base64.b64encode(data.upper() + b"\\n").decode()})
        return {"records": out}
    if event.get("boom"):
        raise ValueError("boom")
    if event.get("context"):
        import secrets  # the standard library's, not a module that happens to sit next to the worker
        return {
            "request_id": context.aws_request_id,
            "function_name": context.function_name,
            "arn": context.invoked_function_arn,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "memory": context.memory_limit_in_mb,
            "secrets_is_stdlib": hasattr(secrets, "token_hex") and "site-packages" not in secrets.__file__
            and "recsys" not in secrets.__file__,
        }
    if event.get("big"):
        return "x" * (7 * 1024 * 1024)
    endpoint = bool(os.environ.get("AWS_ENDPOINT_URL"))
    return {"calls": CALLS["n"], "greeting": os.environ.get("GREETING"), "endpoint": endpoint}
"""


def zip_bytes(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # a fixed timestamp: the same source gives the same bytes (and CodeSha256) whenever it is zipped
        archive.writestr(zipfile.ZipInfo("app.py", date_time=(1980, 1, 1, 0, 0, 0)), source)
    return buffer.getvalue()


@pytest.fixture
def manual_firehose_polling(monkeypatch):
    """Set before the endpoint starts: its Firehose executor then waits an hour; the tests drive polling themselves."""
    monkeypatch.setenv("FIREHOSE_POLL_SECONDS", "3600")


def create_fn(client, timeout: int, **extra) -> None:
    """Function ``fn`` running HANDLER (``client``: service name -> boto3 client)."""
    role = client("iam").create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client("lambda").create_function(
        FunctionName="fn",
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Timeout=timeout,
        Code={"ZipFile": zip_bytes(HANDLER)},
        **extra,
    )


@pytest.fixture
def aws(manual_firehose_polling, in_process_aws):
    server, client = in_process_aws
    create_fn(client, 5, Environment={"Variables": {"GREETING": "hello"}})
    return server, client


def invoke(client, payload):
    response = client("lambda").invoke(FunctionName="fn", Payload=json.dumps(payload).encode())
    return response, json.loads(response["Payload"].read())


def test_invoke_runs_the_deployed_code_warm_with_its_environment(aws):
    _, client = aws
    first = invoke(client, {})[1]
    second = invoke(client, {})[1]
    assert first == {"calls": 1, "greeting": "hello", "endpoint": True}
    assert second["calls"] == 2  # the same warm environment
    client("lambda").update_function_configuration(FunctionName="fn", Environment={"Variables": {"GREETING": "hi"}})
    third = invoke(client, {})[1]
    assert third == {"calls": 1, "greeting": "hi", "endpoint": True}  # new configuration, new environment


def test_an_alias_runs_the_version_it_points_at_and_logs_go_to_cloudwatch(aws):
    _, client = aws
    lam = client("lambda")
    version = lam.publish_version(FunctionName="fn")["Version"]
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion=version)
    lam.update_function_configuration(FunctionName="fn", Environment={"Variables": {"GREETING": "next"}})

    live = lam.invoke(FunctionName="fn:live", Payload=b"{}")
    latest = lam.invoke(FunctionName="fn", Payload=b"{}")
    by_arn = lam.invoke(
        FunctionName="arn:aws:lambda:us-east-1:123456789012:function:fn", Qualifier="live", Payload=b"{}"
    )

    assert json.loads(live["Payload"].read())["greeting"] == "hello"  # the published version's configuration
    assert live["ExecutedVersion"] == version
    assert json.loads(latest["Payload"].read())["greeting"] == "next"
    assert latest["ExecutedVersion"] == "$LATEST"
    assert json.loads(by_arn["Payload"].read())["greeting"] == "hello"
    streams = client("logs").describe_log_streams(logGroupName="/aws/lambda/fn")["logStreams"]
    assert any(f"[{version}]" in s["logStreamName"] for s in streams)
    messages = [
        event["message"]
        for stream in streams
        for event in client("logs").get_log_events(
            logGroupName="/aws/lambda/fn", logStreamName=stream["logStreamName"]
        )["events"]
    ]
    assert sum(m.startswith("START RequestId:") for m in messages) == 3
    assert sum(m.startswith("REPORT RequestId:") for m in messages) == 3


def test_the_handler_gets_a_context_and_the_standard_library_unshadowed(aws):
    _, client = aws
    client("lambda").publish_version(FunctionName="fn")
    client("lambda").create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    first = json.loads(client("lambda").invoke(FunctionName="fn:live", Payload=b'{"context": 1}')["Payload"].read())
    second = invoke(client, {"context": 1})[1]
    assert first["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn:live"
    assert second["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert first["request_id"] != second["request_id"]
    assert first["function_name"] == "fn"
    assert 0 < first["remaining_ms"] <= 5000  # the function's Timeout is 5 s
    assert first["memory"] == "128"
    assert first["secrets_is_stdlib"] is True


def test_a_response_over_6_mb_is_a_function_error(aws):
    _, client = aws
    response, payload = invoke(client, {"big": True})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Function.ResponseSizeTooLarge"


def test_concurrent_first_invocations_unzip_once_without_colliding(aws, tmp_path):
    server, client = aws
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: invoke(client, {})[1], range(8)))
    assert all(r["greeting"] == "hello" for r in results)
    unzipped = [p for p in (server.state_dir / "lambda" / "fn").iterdir() if p.is_dir()]
    assert len(unzipped) == 1
    assert not unzipped[0].name.startswith(".")


def test_a_handler_exception_is_a_function_error(aws):
    _, client = aws
    response, payload = invoke(client, {"boom": True})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "boom"


def s3_destination(prefix: str, lambda_arn: str, **extra) -> dict:
    """An ExtendedS3DestinationConfiguration to bucket ``out`` with an errors/ prefix and a Lambda processor."""
    return {
        "RoleARN": "arn:aws:iam::123456789012:role/fh",
        "BucketARN": "arn:aws:s3:::out",
        "Prefix": prefix,
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/",
        "ProcessingConfiguration": {
            "Enabled": True,
            "Processors": [
                {"Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn", "ParameterValue": lambda_arn}]}
            ],
        },
        **extra,
    }


def firehose_setup(client, runner_state):
    client("s3").create_bucket(Bucket="out")
    kinesis = client("kinesis")
    kinesis.create_stream(StreamName="activity", ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName="activity")["StreamDescriptionSummary"]["StreamARN"]
    client("firehose").create_delivery_stream(
        DeliveryStreamName="delivery",
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": "arn:aws:iam::123456789012:role/fh"},
        ExtendedS3DestinationConfiguration=s3_destination(
            "!{timestamp:yyyy/MM/dd/HH}/", "arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST"
        ),
    )


def put(client, *payloads):
    for payload in payloads:
        client("kinesis").put_record(StreamName="activity", Data=payload, PartitionKey="k")


def objects(client, prefix=""):
    s3 = client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="out", Prefix=prefix).get("Contents", [])]
    return {k: s3.get_object(Bucket="out", Key=k)["Body"].read().decode() for k in keys}


def test_firehose_delivers_ok_records_and_routes_failures_to_the_error_prefix(aws, tmp_path):
    server, client = aws
    firehose_setup(client, tmp_path)
    put(client, b"a1", b"a2", b"bad1", b"drop1", b"a3")
    runner = FirehoseRunner(tmp_path / "fh")
    runner.endpoint_url = server.endpoint_url
    runner.poll_once(flush=True)
    hour = datetime.now(UTC).strftime("%Y/%m/%d/%H/")
    delivered = {k: v for k, v in objects(client).items() if not k.startswith("errors/")}
    assert len(delivered) == 1
    key, body = next(iter(delivered.items()))
    assert key.startswith(hour)
    assert "/delivery-1-" in key
    assert body.splitlines() == ["A1", "A2", "A3"]
    errors = objects(client, "errors/processing-failed/")
    assert len(errors) == 1
    lines = [json.loads(line) for body in errors.values() for line in body.splitlines()]
    assert [base64.b64decode(line["rawData"]) for line in lines] == [b"bad1"]
    assert set(lines[0]) >= {
        "attemptsMade",
        "arrivalTimestamp",
        "errorCode",
        "errorMessage",
        "attemptEndingTimestamp",
        "rawData",
        "lambdaArn",
    }

    # a restart (a new runner on the same state) neither repeats nor loses records
    put(client, b"b1", b"b2")
    restarted = FirehoseRunner(tmp_path / "fh")
    restarted.endpoint_url = server.endpoint_url
    restarted.poll_once(flush=True)
    all_lines = [line for k, v in objects(client).items() if not k.startswith("errors/") for line in v.splitlines()]
    assert sorted(all_lines) == ["A1", "A2", "A3", "B1", "B2"]


def test_firehose_buffers_until_size_or_time(aws, tmp_path):
    server, client = aws
    firehose_setup(client, tmp_path)
    runner = FirehoseRunner(tmp_path / "fh")
    runner.endpoint_url = server.endpoint_url
    runner.buffer_seconds, runner.buffer_bytes = 3600, 10
    put(client, b"x1")
    runner.poll_once()
    assert objects(client) == {}  # 2 bytes buffered, under both thresholds
    put(client, b"x2-longer-record")
    runner.poll_once()
    assert sorted(line for v in objects(client).values() for line in v.splitlines()) == ["X1", "X2-LONGER-RECORD"]


def test_a_failing_processor_is_retried_then_records_go_to_the_error_prefix(aws, tmp_path):
    server, client = aws
    firehose_setup(client, tmp_path)
    client("lambda").update_function_configuration(FunctionName="fn", Environment={"Variables": {"FAIL_FIREHOSE": "1"}})
    put(client, b"c1", b"c2")
    runner = FirehoseRunner(tmp_path / "fh")
    runner.endpoint_url = server.endpoint_url
    runner.poll_once(flush=True)
    errors = objects(client, "errors/")
    lines = [json.loads(line) for body in errors.values() for line in body.splitlines()]
    assert len(lines) == 2
    assert {line["errorCode"] for line in lines} == {"Lambda.FunctionError"}
    assert {line["attemptsMade"] for line in lines} == {4}
    assert "processor is down" in lines[0]["errorMessage"]


def test_prefix_expressions():
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert render_prefix("!{timestamp:yyyy/MM/dd/HH}/", when) == "2026/01/02/03/"
    assert render_prefix("", when) == "2026/01/02/03/"
    assert render_prefix("recs/", when) == "recs/2026/01/02/03/"
    assert render_prefix("e/!{firehose:error-output-type}/", when, "processing-failed") == "e/processing-failed/"


def test_a_recreated_stream_is_read_from_its_start_despite_old_checkpoints(aws, tmp_path):
    server, client = aws
    firehose_setup(client, tmp_path)
    put(client, b"old1", b"old2", b"old3")
    runner = FirehoseRunner(tmp_path / "fh")
    runner.endpoint_url = server.endpoint_url
    runner.poll_once(flush=True)
    # the stack restarts: moto forgets the stream, the checkpoint file stays
    client("kinesis").delete_stream(StreamName="activity")
    client("firehose").delete_delivery_stream(DeliveryStreamName="delivery")
    client("s3").delete_objects(Bucket="out", Delete={"Objects": [{"Key": k} for k in objects(client)]})
    client("s3").delete_bucket(Bucket="out")
    import time

    time.sleep(1.1)  # a new creation timestamp
    firehose_setup(client, tmp_path)
    put(client, b"new1")
    restarted = FirehoseRunner(tmp_path / "fh")
    restarted.endpoint_url = server.endpoint_url
    restarted.poll_once(flush=True)
    assert [line for v in objects(client).values() for line in v.splitlines()] == ["NEW1"]


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("bad-base64", "Lambda.JsonProcessingException"),
        ("missing-id", "Lambda.MissingRecordId"),
        ("duplicate-id", "Lambda.DuplicatedRecordId"),
        ("not-json", "Lambda.JsonProcessingException"),
    ],
)
def test_a_malformed_response_fails_the_invocation_then_the_batch_goes_to_the_error_prefix(aws, tmp_path, mode, code):
    server, client = aws
    firehose_setup(client, tmp_path)
    lam = client("lambda")
    lam.update_function_configuration(FunctionName="fn", Environment={"Variables": {"FIREHOSE_MODE": mode}})
    put(client, b"m1", b"m2", b"m3")
    runner = FirehoseRunner(tmp_path / "fh")
    runner.endpoint_url, runner.retry_backoff = server.endpoint_url, 0.01
    runner.poll_once(flush=True)
    lines = [json.loads(line) for body in objects(client, "errors/").values() for line in body.splitlines()]
    assert sorted(base64.b64decode(line["rawData"]) for line in lines) == [b"m1", b"m2", b"m3"]
    assert {line["errorCode"] for line in lines} == {code}
    assert {line["attemptsMade"] for line in lines} == {4}
    # the stream is not stalled: once the processor answers properly, new records flow and nothing is repeated
    client("lambda").update_function_configuration(FunctionName="fn", Environment={"Variables": {}})
    put(client, b"m4")
    runner.poll_once(flush=True)
    assert [line for k, v in objects(client).items() if not k.startswith("errors/") for line in v.splitlines()] == [
        "M4"
    ]


def test_a_backlog_is_read_and_delivered_in_buffer_sized_batches(aws, tmp_path):
    server, client = aws
    firehose_setup(client, tmp_path)
    records = [b"r%04d-" % n + b"x" * 994 for n in range(1200)]  # 1,000 bytes each
    kinesis = client("kinesis")
    for start in range(0, len(records), 500):
        kinesis.put_records(
            StreamName="activity", Records=[{"Data": r, "PartitionKey": "k"} for r in records[start : start + 500]]
        )
    runner = FirehoseRunner(tmp_path / "fh")
    runner.endpoint_url, runner.buffer_bytes, runner.buffer_seconds = server.endpoint_url, 100_000, 3600
    state = runner._state("delivery")
    runner._read(state, "activity", 100_000)
    assert 100 <= len(state.buffer) <= 100 + 500  # the threshold plus at most one page, not the whole backlog
    runner.streams.clear()
    runner.poll_once()
    delivered = objects(client)
    assert len(delivered) == 12  # 1,200 records of 1 kB at 100 kB per object
    assert all(len(body) <= 100_000 + 1200 for body in delivered.values())
    lines = sorted(line for body in delivered.values() for line in body.splitlines())
    assert lines == sorted(r.upper().decode() for r in records)


def test_invocations_are_split_at_the_processor_buffer_and_lambdas_payload_limit():
    now = datetime.now(UTC)
    small = [Buffered(b"x" * 300_000, now, "s", str(n)) for n in range(10)]
    batches = invocation_batches(small, 1024 * 1024)
    assert [len(b) for b in batches] == [3, 3, 3, 1]  # 900 kB per invocation under a 1 MB processor buffer
    big = [Buffered(b"x" * 1_000_000, now, "s", str(n)) for n in range(10)]
    batches = invocation_batches(big, 3 * 1024 * 1024 * 10)
    # a large processor buffer is still bound by Lambda's 6 MB request: 1 MB of data is ~1.33 MB of base64
    assert [len(b) for b in batches] == [4, 4, 2]
    assert invocation_batches([], 1024) == []


def test_an_unsupported_prefix_expression_is_refused_at_creation(aws):
    _, client = aws
    client("s3").create_bucket(Bucket="out")
    with pytest.raises(client("firehose").exceptions.InvalidArgumentException, match="unsupported prefix expression"):
        client("firehose").create_delivery_stream(
            DeliveryStreamName="bad",
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/fh",
                "BucketARN": "arn:aws:s3:::out",
                "Prefix": "!{partitionKeyFromQuery:customer}/",
                "ErrorOutputPrefix": "errors/",
            },
        )
    assert client("firehose").list_delivery_streams()["DeliveryStreamNames"] == []
