"""Scenario 1: the MySQL source is down when the nightly ETL starts. The Glue run fails with the reason in the task
log, nothing is published (the live manifest and its files stay), and the training-data Asset is not emitted."""

from __future__ import annotations

import sqlite3

import pytest

from recsys.config import TRAINING_DATA_PREFIX
from recsys.etl.glue_job import read_manifest
from recsys.localstack import mariadb
from recsys.localstack.process import stop_process
from recsys.seed.generator import SeedSpec
from recsys.seed.loader import seed

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.reliability]


def asset_events(stack) -> int:
    database = stack.environment()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        return db.execute("SELECT count(*) FROM asset_event").fetchone()[0]


def test_source_down_at_etl_start_fails_the_job_and_publishes_nothing(stack, run_dag, reliability):
    s3 = stack.client("s3")
    target = f"s3://{stack.settings.names.datalake_bucket}/{TRAINING_DATA_PREFIX}"
    bucket = stack.settings.names.datalake_bucket
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    before = read_manifest(s3, target) if bucket in existing else None
    if before is None:  # a fresh test stack: one good run first
        seed(stack.mariadb(), SeedSpec())
        ok, output = run_dag("batch_training_data")
        assert ok, output[-5000:]
        before = read_manifest(s3, target)
    events_before = asset_events(stack)

    record = stack.state.running(mariadb.SERVICE)
    assert record is not None
    stop_process(record)
    try:
        ok, output = run_dag("batch_training_data", timeout=900)
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
        "MariaDB stopped before batch_training_data runs",
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
