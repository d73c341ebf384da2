"""Streaming under faults and load on the test stack, through the deployed transformation Lambda:

* scenario 5: the vector DB is unreachable from the Lambda: invocations fail, Firehose retries them, then routes the
  records to the error prefix; once the DB is back the next records are recommended again (the warm Lambda
  reconnects);
* scenario 6c: the endpoint SIGKILLed with events waiting in Kinesis, then `make up` alone: the Terraform roots are
  re-applied and every event is delivered once, with no DAG run;
* scenario 8: a burst of events (``RELIABILITY_LOAD_EVENTS``, 3,000 in `make test`, 50,000 in `make reliability`)
  through Kinesis -> local Firehose -> Lambda -> S3: events/s, event-to-object latency, the endpoint's peak memory,
  and loss (must be 0).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from datetime import UTC, datetime

import numpy as np
import psutil
import pytest

from recsys_local import postgres as local_postgres
from recsys_local.outputs import Deliveries, scan
from recsys_local.process import stop_process
from recsys_local.seed.generator import SeedSpec
from recsys_local.seed.loader import seed
from recsys_local.stack import AWS_SERVICE

# the budget of each test here: may run the chain (~300 s on a fresh stack); 6c ~190 s (the burst: its own)
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.reliability, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def streaming(stack, run_chain):
    """The streaming pipeline deployed on the test stack (the DAGs run once when it is not there yet)."""
    names = stack.settings.names
    lam = stack.client("lambda")
    try:
        lam.get_alias(FunctionName=names.transformation_lambda, Name="live")
        stack.client("firehose").describe_delivery_stream(DeliveryStreamName=names.delivery_stream)
    except Exception:
        seed(stack.mariadb(), SeedSpec())
        run_chain()
    env = stack.admin_environment()  # the producer stands for the web servers, not the platform
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AIRFLOW_CONN_", "AWS_", "RECSYS_"))})
    from recsys.streaming.generator import load_catalog

    customers, products = load_catalog()
    yield {"customers": customers, "products": products, "bucket": names.recommendations_bucket}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def make_events(streaming, count: int, seed_value: int) -> list[dict]:
    from recsys.streaming.generator import make_event

    rng = random.Random(seed_value)
    events = [make_event(rng, streaming["customers"], streaming["products"]) for _ in range(count)]
    for event in events:
        event["session_id"] = str(uuid.uuid4())
    return events


def wait_for(stack, bucket, sessions, since, seconds) -> Deliveries:
    found = Deliveries()
    deadline = time.monotonic() + seconds
    while found.arrived() < len(sessions) and time.monotonic() < deadline:
        time.sleep(2)
        scan(stack.client("s3"), bucket, sessions, since, into=found)
    return found


def test_an_unreachable_vector_db_fails_invocations_to_the_error_prefix_then_recovers(stack, streaming, reliability):
    from recsys.streaming.generator import put_events

    names = stack.settings.names
    since = datetime.now(UTC).replace(microsecond=0)
    cfg = stack.vectordb()
    local_postgres.stop(cfg)
    try:
        down = make_events(streaming, 10, 51)
        assert put_events(down, names.kinesis_stream) == 0
        outcome = wait_for(stack, streaming["bucket"], {e["session_id"] for e in down}, since, 120)
        delivered, failed = outcome.delivered, outcome.failed
    finally:
        stack.up(lambda _m: None, migrate_airflow=False)
    back = make_events(streaming, 10, 52)
    assert put_events(back, names.kinesis_stream) == 0
    outcome = wait_for(stack, streaming["bucket"], {e["session_id"] for e in back}, since, 120)
    recovered, still_failing = outcome.delivered, outcome.failed

    codes = sorted({f["errorCode"] for f in failed.values()})
    attempts = sorted({f["attemptsMade"] for f in failed.values()})
    reliability(
        "5. vector DB unreachable from the transformation Lambda",
        "PostgreSQL stopped while 10 events arrive, started again, 10 more",
        f"while down: {len(failed)} to the error prefix ({'/'.join(codes)}, attempts {attempts}), {len(delivered)} "
        f"delivered; after: {len(recovered)} delivered, {len(still_failing)} failed",
        "10 to errors after retries, then 10 of 10 delivered",
    )
    assert not delivered
    assert len(failed) == 10
    assert codes == ["Lambda.FunctionError"]
    assert attempts == [4]  # the first try and Firehose's 3 retries
    assert len(recovered) == 10
    assert not still_failing


@pytest.mark.timeout(600 + int(os.environ.get("RELIABILITY_LOAD_EVENTS", 3000)) // 50)  # ~450 events/s
def test_a_burst_of_events_is_delivered_without_loss(stack, streaming, reliability):
    from recsys.streaming.generator import put_events

    count = int(os.environ.get("RELIABILITY_LOAD_EVENTS", 3000))
    names = stack.settings.names
    events = make_events(streaming, count, 81)
    record = stack.state.running(AWS_SERVICE)
    assert record is not None
    endpoint = psutil.Process(record.pid)
    peak = {"endpoint": 0, "workers": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            try:
                peak["endpoint"] = max(peak["endpoint"], endpoint.memory_info().rss)
                workers = sum(c.memory_info().rss for c in endpoint.children(recursive=True))
                peak["workers"] = max(peak["workers"], workers)
            except psutil.Error:
                pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    since = datetime.now(UTC).replace(microsecond=0)
    put_at: dict[str, float] = {}
    started = time.time()
    for start in range(0, count, 500):
        chunk = events[start : start + 500]
        assert put_events(chunk, names.kinesis_stream) == 0
        now = time.time()
        put_at.update({e["session_id"]: now for e in chunk})
    put_seconds = time.time() - started
    outcome = wait_for(stack, streaming["bucket"], set(put_at), since, 120 + count / 50)
    delivered, failed = outcome.delivered, outcome.failed
    finished = max((m.timestamp() for places in delivered.values() for _k, m in places), default=time.time())
    stop.set()
    sampler.join(timeout=5)

    hints = stack.client("firehose").describe_delivery_stream(DeliveryStreamName=names.delivery_stream)[
        "DeliveryStreamDescription"
    ]["Destinations"][0]["ExtendedS3DestinationDescription"]["BufferingHints"]
    latencies = [places[0][1].timestamp() - put_at[s] for s, places in delivered.items()]
    duplicated = sum(1 for places in delivered.values() if len(places) > 1)
    lost = count - len(delivered) - len(failed)
    reliability(
        "8. burst through Kinesis -> Firehose -> Lambda -> S3",
        f"{count} events put as fast as PutRecords takes them ({put_seconds:.1f} s); Firehose buffer "
        f"{hints['SizeInMBs']} MB / {hints['IntervalInSeconds']} s",
        f"{count / max(finished - started, 1e-9):.0f} events/s end to end; event-to-object p50 "
        f"{np.percentile(latencies, 50):.1f} s, p99 {np.percentile(latencies, 99):.1f} s; endpoint peak RSS "
        f"{peak['endpoint'] / 2**20:.0f} MiB, Lambda workers {peak['workers'] / 2**20:.0f} MiB; lost {lost}, "
        f"failed {len(failed)}, duplicated {duplicated}",
        "lost 0, failed 0, duplicated 0",
    )
    assert lost == 0
    assert not failed
    assert duplicated == 0


def test_a_killed_endpoint_comes_back_with_make_up_and_delivers_without_a_dag_run(
    stack, streaming, run_dag, reliability
):
    from recsys.provisioning import provisioner
    from recsys.streaming.generator import put_events
    from recsys_local.restore import ORDER

    names = stack.settings.names
    remembered = provisioner({**os.environ, **stack.environment()}).target.applied_variables_path("streaming_inference")
    if not remembered.exists():  # deployed before the variables were remembered: deploy once more
        ok, output = run_dag("streaming_recommendations")
        assert ok, output[-5000:]
    since = datetime.now(UTC).replace(microsecond=0)
    events = make_events(streaming, 200, 61)
    sessions = {e["session_id"] for e in events}
    assert put_events(events, names.kinesis_stream) == 0  # every put acknowledged
    record = stack.state.running(AWS_SERVICE)
    assert record is not None
    stop_process(record, signal.SIGKILL)  # some may be delivered already (5 s buffer): exactly once either way
    messages: list[str] = []
    started = time.monotonic()
    stack.up(messages.append, migrate_airflow=False)  # what `make up` does
    up_seconds = time.monotonic() - started
    restored = [m for m in messages if m.startswith("terraform/") and " restored in " in m]
    outcome = wait_for(stack, streaming["bucket"], sessions, since, 240)
    duplicated = [s for s, lines in outcome.delivered.items() if len(lines) > 1]
    reliability(
        "6c. endpoint SIGKILLed, then `make up` alone",
        "200 acknowledged events in Kinesis, SIGKILL of the endpoint, `make up` (no DAG run)",
        f"make up {up_seconds:.0f} s, roots re-applied: {len(restored)} of {len(ORDER)}; delivered "
        f"{len(outcome.delivered)} of 200, to errors {len(outcome.failed)}, duplicated {len(duplicated)}",
        "every root back; 200 of 200 delivered exactly once, with no DAG run",
    )
    assert len(restored) == len(ORDER), messages
    assert len(outcome.delivered) == 200
    assert not outcome.failed
    assert not duplicated
