"""Scenario 3: a model version that is missing or half-published in ml-artifacts. The loader waits for it, then the run
fails naming the missing file(s), and the live embedding tables are untouched.

Under the real scheduler: a deferred sensor's timeout is enforced by the scheduler (``airflow dags test`` runs
triggers inline and never times them out)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from airflow_api import AirflowApi

from recsys.model.artifacts import ITEM_EMBEDDINGS, USER_EMBEDDINGS, read_pointer
from recsys.vectordb.loader import current_state
from recsys_serving import search

# the budget of each test here: may run three DAGs first; two runs that wait SharedAirflow.ARTIFACT_WAIT (~60 s)
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.reliability, pytest.mark.timeout(1500)]

DAG = "vector_db_embeddings"


def live_state(stack) -> dict:
    cfg = stack.vectordb()
    with search.connect(**cfg.conninfo()) as c:
        return current_state(c)


def wait_for_runs(api: AirflowApi, run_ids: list[str], seconds: float) -> dict[str, dict]:
    deadline = time.monotonic() + seconds
    while True:
        runs = {r: api.call("GET", f"/api/v2/dags/{DAG}/dagRuns/{r}") for r in run_ids}
        if all(run["state"] in ("success", "failed") for run in runs.values()) or time.monotonic() > deadline:
            return runs
        time.sleep(3)


def task_log(api: AirflowApi, run_id: str, task_id: str) -> tuple[str, str]:
    """(state, log text of its last try) of one task instance."""
    ti = api.call("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task_id}")
    if not ti.get("try_number"):
        return ti["state"], ""
    content = api.call("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{ti['try_number']}")
    return ti["state"], json.dumps(content)


def test_a_half_published_version_fails_by_name_and_leaves_the_live_tables(stack, run_chain, airflow, reliability):
    s3 = stack.client("s3")
    bucket = stack.settings.names.ml_artifacts_bucket
    try:
        published = read_pointer(s3, bucket)["model_version"]
    except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket):  # a fresh test stack: publish and load one first
        run_chain(("batch_training_data", "recommender_model", DAG))
        published = read_pointer(s3, bucket)["model_version"]
    before = live_state(stack)
    half, absent = f"half-{uuid.uuid4().hex[:8]}", f"absent-{uuid.uuid4().hex[:8]}"
    copy_source = {"Bucket": bucket, "Key": f"versions/{published}/{ITEM_EMBEDDINGS}"}
    s3.copy_object(Bucket=bucket, Key=f"versions/{half}/{ITEM_EMBEDDINGS}", CopySource=copy_source)

    api = airflow.api()  # its vector DB DAG waits SharedAirflow.ARTIFACT_WAIT s for a version's files
    try:
        api.end_unfinished_runs(DAG)
        api.call("PATCH", f"/api/v2/dags/{DAG}", {"is_paused": False})
        run_ids = [
            api.call(
                "POST",
                f"/api/v2/dags/{DAG}/dagRuns",
                {"logical_date": None, "conf": {"model_version": version, "provision_infrastructure": False}},
            )["dag_run_id"]
            for version in (half, absent)
        ]
        runs = wait_for_runs(api, run_ids, 900)
        reports = {r: task_log(api, r, "report_missing_embeddings") for r in run_ids}
        loads = {r: task_log(api, r, "load_embeddings")[0] for r in run_ids}
    finally:
        api.call("PATCH", f"/api/v2/dags/{DAG}", {"is_paused": True})
    after = live_state(stack)

    half_log, absent_log = reports[run_ids[0]][1], reports[run_ids[1]][1]
    named_half = f"missing s3://{bucket}/versions/{half}/{USER_EMBEDDINGS}" in half_log
    named_absent = all(f"s3://{bucket}/versions/{absent}/{f}" in absent_log for f in (ITEM_EMBEDDINGS, USER_EMBEDDINGS))
    reliability(
        "3. ml-artifacts half-published / missing",
        f"a version with only item_embeddings.csv, and a version with no files ({airflow.ARTIFACT_WAIT} s wait, real "
        "scheduler)",
        f"runs {runs[run_ids[0]]['state']}/{runs[run_ids[1]]['state']}; missing files named: {named_half}/"
        f"{named_absent}; load_embeddings {loads[run_ids[0]]}/{loads[run_ids[1]]}; live version "
        f"{before['model_version']} -> {after['model_version']}, items {before['items']} -> {after['items']}",
        "both fail naming the file(s); nothing loaded; live tables untouched",
    )
    assert [runs[r]["state"] for r in run_ids] == ["failed", "failed"]
    assert [reports[r][0] for r in run_ids] == ["failed", "failed"]
    assert named_half, half_log[-3000:]
    assert f"versions/{half}/{ITEM_EMBEDDINGS}" not in half_log.split("missing", 1)[-1]  # present: not reported
    assert named_absent, absent_log[-3000:]
    assert set(loads.values()) == {"upstream_failed"}
    assert (after["model_version"], after["items"], after["users"]) == (
        before["model_version"],
        before["items"],
        before["users"],
    )
