"""Scenarios 1 and 2 of the reliability suite, through the whole ``batch_training_data`` DAG.

1. The MySQL source is down when the nightly ETL starts, or killed (SIGKILL) while the job's JDBC reads of
   ``ratings`` are in flight: the Glue run fails with the reason in the task log, nothing is published (the live
   manifest and its files stay), and the training-data Asset is not emitted.
2. The Glue script fails (the source's schema drifted) or the job hits its ``Timeout``: the DAG fails at
   ``run_glue_job`` with Glue's own message; every retry starts exactly one new run, never two at once.

The slow and drifted sources are views over the real rows (``tests/source_faults.py``); the faults are real (a
killed server, a failing Spark job, a driver stopped at its timeout)."""

from __future__ import annotations

import itertools
import os
import re
import signal
import threading
import time
from datetime import UTC, datetime

import pytest
import source_faults

from recsys.config import TRAINING_DATA_PREFIX
from recsys.etl.glue_job import read_manifest
from recsys_local import airflow_db, mariadb
from recsys_local.process import stop_process
from recsys_local.seed.generator import SeedSpec
from recsys_local.seed.loader import seed

# the budget of each test here: a fresh stack's first ETL apply and run, then one batch run (~60 s) or 2a's three tries
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.reliability, pytest.mark.timeout(900)]


def asset_events(stack) -> int:
    with airflow_db.connect(stack.airflow_db()) as db:
        return db.execute("SELECT count(*) FROM asset_event").fetchone()[0]


def live_dataset(stack, run_dag) -> dict:
    """The live manifest; on a fresh test stack, one good run first (there is no previous dataset yet)."""
    s3 = stack.client("s3")
    target = f"s3://{stack.settings.names.datalake_bucket}/{TRAINING_DATA_PREFIX}"
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    before = read_manifest(s3, target) if stack.settings.names.datalake_bucket in existing else None
    if before is None:
        seed(stack.mariadb(), SeedSpec())
        ok, output = run_dag("batch_training_data")
        assert ok, output[-5000:]
        before = read_manifest(s3, target)
    return before


def dataset_keys(stack) -> set[str]:
    s3, bucket = stack.client("s3"), stack.settings.names.datalake_bucket
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=TRAINING_DATA_PREFIX)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def glue_runs_since(stack, started: datetime) -> list[dict]:
    """This job's runs started after ``started``, oldest first."""
    glue, job = stack.client("glue"), stack.settings.names.glue_job
    pages = glue.get_paginator("get_job_runs").paginate(JobName=job)
    runs = [r for page in pages for r in page["JobRuns"] if r["StartedOn"] >= started]
    return sorted(runs, key=lambda r: r["StartedOn"])


def overlapping(runs: list[dict]) -> int:
    """How many runs started before the previous one completed (two at once)."""
    return sum(
        1
        for earlier, later in itertools.pairwise(runs)
        if "CompletedOn" not in earlier or later["StartedOn"] < earlier["CompletedOn"]
    )


def failure_lines(output: str, *needles: str) -> list[str]:
    return [line.strip()[-200:] for line in output.splitlines() if any(n in line for n in needles)]


def test_source_down_at_etl_start_fails_the_job_and_publishes_nothing(stack, run_dag, monkeypatch, reliability):
    s3 = stack.client("s3")
    target = f"s3://{stack.settings.names.datalake_bucket}/{TRAINING_DATA_PREFIX}"
    bucket = stack.settings.names.datalake_bucket
    before = live_dataset(stack, run_dag)
    events_before = asset_events(stack)

    record = stack.state.running(mariadb.SERVICE)
    assert record is not None
    stop_process(record)
    monkeypatch.setenv("RECSYS_TASK_RETRIES", "0")  # 2a covers the retries; each would fail the same way
    try:
        ok, output = run_dag("batch_training_data", timeout=900, provision=False)
    finally:
        stack.up(lambda _m: None, migrate_airflow=False)

    after = read_manifest(s3, target)
    readable = sum(1 for key in before["files"] if s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0)
    markers = ("AWS Glue job failed", "Run State: FAILED", "Error in glue job")
    glue_lines = [line for line in output.splitlines() if any(m in line for m in markers)]
    reason = next(
        (
            line.strip()[-160:]
            for line in output.splitlines()
            if "Communications link failure" in line or "Connection refused" in line
        ),
        "",
    )
    reliability(
        "1. MySQL source down at ETL start",
        "MariaDB stopped before batch_training_data runs (no retries: 2a covers them)",
        f"run failed: {not ok}; reason in the log: {bool(reason)}; live manifest run "
        f"{before['run_id']} -> {after['run_id']}; {readable} of {len(before['files'])} previous files readable; "
        f"Asset events {events_before} -> {asset_events(stack)}",
        "fails with the reason; nothing published; previous dataset readable; no Asset event",
    )
    assert not ok
    assert glue_lines, output[-4000:]
    assert reason, output[-4000:]
    assert after["run_id"] == before["run_id"]
    assert readable == len(before["files"])
    assert asset_events(stack) == events_before


def test_source_killed_during_the_jdbc_read_fails_the_job_and_publishes_nothing(
    stack, run_dag, monkeypatch, reliability
):
    s3, bucket = stack.client("s3"), stack.settings.names.datalake_bucket
    target = f"s3://{bucket}/{TRAINING_DATA_PREFIX}"
    before, keys_before = live_dataset(stack, run_dag), dataset_keys(stack)
    monkeypatch.setenv("RECSYS_TASK_RETRIES", "0")  # 2a covers the retries; each would find the source down
    events_before = asset_events(stack)
    result: dict = {}

    def partition_read(query: str) -> bool:  # one of the parallel reads of ratings (not the schema or bounds query)
        return "ratings" in query and "customerNumber" in query and "WHERE" in query and "MIN(" not in query

    # 2 ms per row: the bounds query takes ~5 s and each partition read ~1 s, room for the kill to land inside
    with source_faults.slow_ratings(stack, 0.002):
        runner = threading.Thread(
            target=lambda: result.update(
                zip(("ok", "output"), run_dag("batch_training_data", provision=False), strict=True)
            )
        )
        runner.start()
        try:
            killed_during = source_faults.wait_for_query(stack, partition_read, timeout=600)
            record = stack.state.running(mariadb.SERVICE)
            assert record is not None
            stop_process(record, signal.SIGKILL)
            runner.join(timeout=900)
        finally:
            runner.join(timeout=900)
            stack.up(lambda _m: None, migrate_airflow=False)  # the killed server restarts (crash recovery)
    ok, output = result["ok"], result["output"]
    after = read_manifest(s3, target)
    reasons = failure_lines(output, "Communications link failure", "Connection refused", "SQLNonTransientConnection")
    glue_failed = failure_lines(output, "AWS Glue job failed", "Run State: FAILED", "Error in glue job")
    new_keys = dataset_keys(stack) - keys_before
    readable = sum(1 for key in before["files"] if s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0)
    reliability(
        "1b. MySQL source killed during the JDBC read",
        "SIGKILL of MariaDB while the job's partitioned reads of ratings run (source slowed to 2 ms per row; no "
        "retries: 2a covers them)",
        f"killed during: {(killed_during or 'nothing')[:90]!r}; run failed: {not ok}; reason in the log: "
        f"{bool(reasons)}; live manifest run {before['run_id']} -> {after['run_id']}; new objects in the dataset: "
        f"{len(new_keys)}; {readable} of {len(before['files'])} previous files readable; Asset events "
        f"{events_before} -> {asset_events(stack)}",
        "fails with the reason; nothing published; previous dataset readable; no Asset event",
    )
    assert killed_during, "the job never read ratings"
    assert not ok
    assert glue_failed, output[-4000:]
    assert reasons, output[-4000:]
    assert after["run_id"] == before["run_id"]
    assert not new_keys, sorted(new_keys)[:10]
    assert readable == len(before["files"])
    assert asset_events(stack) == events_before


def test_a_failing_glue_script_fails_the_task_with_glues_message_and_retries_one_run_at_a_time(
    stack, run_dag, reliability
):
    s3, bucket = stack.client("s3"), stack.settings.names.datalake_bucket
    target = f"s3://{bucket}/{TRAINING_DATA_PREFIX}"
    before = live_dataset(stack, run_dag)
    started = datetime.now(UTC)
    # the source drifted: productRating is gone, so the script's transform cannot resolve it
    with source_faults.ratings_view(stack, f"SELECT customerNumber, productCode FROM {source_faults.BASE}"):
        ok, output = run_dag("batch_training_data", provision=False)
    runs = glue_runs_since(stack, started)
    messages = [r.get("ErrorMessage", "") for r in runs]
    in_log = [m for m in set(messages) if m and m[:80] in output]
    after = read_manifest(s3, target)
    reliability(
        "2a. Glue script failure",
        "source schema drift (ratings without productRating) on every try; retries 2",
        f"run failed: {not ok}; Glue runs {len(runs)} ({', '.join(r['JobRunState'] for r in runs)}), overlapping "
        f"{overlapping(runs)}; Glue's message in the task log: {bool(in_log)} ({(messages or [''])[0][:80]!r}); "
        f"live manifest run {before['run_id']} -> {after['run_id']}",
        "fails at run_glue_job with Glue's message; one new run per try (3), never two at once; nothing published",
    )
    assert not ok
    assert [r["JobRunState"] for r in runs] == ["FAILED"] * 3, runs
    assert len({r["Arguments"]["--airflow_task_uuid"] for r in runs}) == 1  # the same task's three tries
    assert overlapping(runs) == 0
    assert all("productRating" in m for m in messages), messages
    assert in_log, output[-4000:]
    assert set(re.findall(r"task failed: dag=batch_training_data task=(\w+)", output)) == {"run_glue_job"}
    assert after["run_id"] == before["run_id"]


def test_a_glue_run_past_its_timeout_is_stopped_and_fails_the_task(stack, run_dag, tmp_path, monkeypatch, reliability):
    s3, bucket = stack.client("s3"), stack.settings.names.datalake_bucket
    target = f"s3://{bucket}/{TRAINING_DATA_PREFIX}"
    before = live_dataset(stack, run_dag)
    tfvars = tmp_path / "local.tfvars"
    tfvars.write_text("glue_timeout_minutes = 1\n")
    monkeypatch.setenv("LOCAL_TF_VAR_FILE", str(tfvars))  # the DAG's apply sets the job's Timeout to 1 minute
    monkeypatch.setenv("RECSYS_TASK_RETRIES", "0")  # 2a covers the retries; one timed-out try is enough here
    minute = float(os.environ.get("GLUE_TIMEOUT_UNIT_SECONDS", "60"))  # what the endpoint started with
    started = datetime.now(UTC)
    t0 = time.monotonic()
    with source_faults.slow_ratings(stack, 0.05):  # the bounds query alone would take ~2 minutes
        ok, output = run_dag("batch_training_data")
    elapsed = time.monotonic() - t0
    runs = glue_runs_since(stack, started)
    job = stack.client("glue").get_job(JobName=stack.settings.names.glue_job)["Job"]
    after = read_manifest(s3, target)
    monkeypatch.delenv("LOCAL_TF_VAR_FILE")
    from recsys.provisioning import provisioner  # the job's own Timeout again, for the runs that skip their apply

    provisioner({**os.environ, **stack.environment()}).provision("etl", apply=True)
    reliability(
        "2b. Glue job timeout",
        f"job Timeout 1 minute (applied by the DAG from LOCAL_TF_VAR_FILE; a minute is {minute:g} s on the test "
        "stack), source slowed to 50 ms per row",
        f"run failed: {not ok} after {elapsed:.0f} s; Glue runs {[r['JobRunState'] for r in runs]}; message "
        f"{(runs[0].get('ErrorMessage', '') if runs else '')[:70]!r} in the task log: "
        f"{bool(runs) and runs[0].get('ErrorMessage', '')[:40] in output}; live manifest run {before['run_id']} -> "
        f"{after['run_id']}",
        "the run ends in TIMEOUT, the task fails with Glue's message; nothing published",
    )
    assert job["Timeout"] == 1
    assert not ok
    assert [r["JobRunState"] for r in runs] == ["TIMEOUT"], runs
    assert "timed out" in runs[0]["ErrorMessage"]
    assert runs[0]["ExecutionTime"] >= int(minute) - 1, runs  # stopped at its Timeout, not before
    assert runs[0]["ErrorMessage"][:40] in output, output[-4000:]
    assert after["run_id"] == before["run_id"]
