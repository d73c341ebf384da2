"""Scenario 3: a model version that is missing or half-published in ml-artifacts. The loader waits for it, then the run
fails naming the missing file(s), and the live embedding tables are untouched."""

from __future__ import annotations

import uuid

import pytest

from recsys.model.artifacts import ITEM_EMBEDDINGS, USER_EMBEDDINGS
from recsys.vectordb import search
from recsys.vectordb.loader import current_state

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.reliability]


def live_state(stack) -> dict:
    cfg = stack.vectordb()
    with search.connect(host=cfg.host, port=cfg.port, user=cfg.user, password=cfg.password, dbname=cfg.database) as c:
        return current_state(c)


def test_a_half_published_version_fails_by_name_and_leaves_the_live_tables(stack, run_dag, monkeypatch, reliability):
    monkeypatch.setenv("RECSYS_ARTIFACT_WAIT_SECONDS", "20")
    s3 = stack.client("s3")
    bucket = stack.settings.names.ml_artifacts_bucket
    before = live_state(stack)
    if before["model_version"] is None:  # a fresh test stack: publish and load one version first
        for dag_id in ("batch_training_data", "recommender_model", "vector_db_embeddings"):
            ok, output = run_dag(dag_id)
            assert ok, f"{dag_id}:\n{output[-5000:]}"
        before = live_state(stack)
    half = f"half-{uuid.uuid4().hex[:8]}"
    source = f"versions/{before['model_version']}/{ITEM_EMBEDDINGS}"
    copy_source = {"Bucket": bucket, "Key": source}
    s3.copy_object(Bucket=bucket, Key=f"versions/{half}/{ITEM_EMBEDDINGS}", CopySource=copy_source)
    absent = f"absent-{uuid.uuid4().hex[:8]}"

    results = {}
    for version in (half, absent):
        ok, output = run_dag(
            "vector_db_embeddings", conf={"model_version": version, "provision_infrastructure": False}, timeout=600
        )
        results[version] = (ok, output)
    after = live_state(stack)

    half_ok, half_output = results[half]
    absent_ok, absent_output = results[absent]
    named_half = f"missing s3://{bucket}/versions/{half}/{USER_EMBEDDINGS}" in half_output
    named_absent = (
        f"s3://{bucket}/versions/{absent}/{ITEM_EMBEDDINGS}" in absent_output
        and f"s3://{bucket}/versions/{absent}/{USER_EMBEDDINGS}" in absent_output
    )
    reliability(
        "3. ml-artifacts half-published / missing",
        "a version with only item_embeddings.csv, and a version with no files (20 s wait)",
        f"runs failed: {not half_ok}/{not absent_ok}; missing files named: {named_half}/{named_absent}; live version "
        f"{before['model_version']} -> {after['model_version']}, items {before['items']} -> {after['items']}",
        "both fail naming the file(s); live tables untouched",
    )
    assert not half_ok
    assert not absent_ok
    assert named_half, half_output[-3000:]
    assert f"versions/{half}/{ITEM_EMBEDDINGS}," not in half_output  # the file that is there is not reported
    assert named_absent, absent_output[-3000:]
    assert (after["model_version"], after["items"], after["users"]) == (
        before["model_version"],
        before["items"],
        before["users"],
    )
