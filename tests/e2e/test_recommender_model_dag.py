"""batch_training_data then recommender_model against the test stack: the ml-artifacts bucket in the lab's layout."""

from __future__ import annotations

import csv
import io
import json

import pytest

from recsys.assets import ML_ARTIFACTS
from recsys.model.artifacts import LAYOUT, POINTER_KEY, VERSION_METRICS
from recsys.model.train import RANKING_MARGIN
from recsys_local import airflow_db, mariadb
from recsys_local.seed.generator import SeedSpec
from recsys_local.seed.loader import seed
from recsys_local.served import BotoS3Hook

# the budget of each test here: a batch and a model run (~65 s)
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(600)]


def test_model_dag_publishes_the_layout_with_one_embedding_per_id(stack, run_dag):
    seed(stack.mariadb(), SeedSpec())
    ok, output = run_dag("batch_training_data", provision=False)
    assert ok, output[-5000:]
    ok, output = run_dag("recommender_model")
    assert ok, output[-5000:]

    s3 = stack.client("s3")
    bucket = stack.settings.names.ml_artifacts_bucket

    def read(key: str) -> bytes:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    for key in LAYOUT:
        assert read(key), key
    pointer = json.loads(read(POINTER_KEY))
    metrics = json.loads(read("model/metrics.json"))
    assert metrics["model_version"] == pointer["model_version"]
    assert metrics["candidate"] in metrics["candidates"]
    # the version's held-out ranking against its baselines, beside its files, and on the Asset event
    summary = json.loads(read(f"{pointer['prefix']}{VERSION_METRICS}"))
    assert summary["model_version"] == pointer["model_version"]
    ranking = summary["ranking"]
    assert ranking["model"]["ndcg@10"] >= RANKING_MARGIN * ranking["most_popular"]["ndcg@10"], ranking
    assert summary["gate"]["interval_95"][0] > 0, summary["gate"]
    with airflow_db.connect(stack.airflow_db()) as db:
        (extra,) = db.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = %s "
            "ORDER BY e.id DESC LIMIT 1",
            (ML_ARTIFACTS.name,),
        ).fetchone()
    event = extra  # a JSON column: psycopg gives the object
    assert event["model_version"] == pointer["model_version"]
    assert event["ranking"]["most_popular"]["ndcg@10"] == round(ranking["most_popular"]["ndcg@10"], 4)
    assert event["gate"].startswith("passed: ")
    assert event["gate_figures"] == summary["gate"]
    assert event["cold_start_ranking"]["users"] == summary["cold_start_ranking"]["users"]

    with mariadb.connect(stack.mariadb()) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(DISTINCT productCode), COUNT(DISTINCT customerNumber) FROM ratings")
        products, customers = cur.fetchone()
    items = list(csv.reader(io.StringIO(read("embeddings/item_embeddings.csv").decode())))[1:]
    users = list(csv.reader(io.StringIO(read("embeddings/user_embeddings.csv").decode())))[1:]
    assert len(items) == products
    assert len(users) == customers
    assert all(len(row[1].strip("[]").split(",")) == 32 for row in items + users)


def test_training_reads_the_dataset_of_the_triggering_event_not_the_live_one(stack, run_dag):
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from recsys.model.pipeline import load_training_frame, triggering_manifest_url

    s3, lake = stack.client("s3"), stack.settings.names.datalake_bucket
    try:  # any live dataset will do: the test reads an older run's manifest beside it
        live = json.loads(s3.get_object(Bucket=lake, Key="ratings-ml-training/_manifest.json")["Body"].read())
    except (s3.exceptions.NoSuchKey, s3.exceptions.NoSuchBucket):  # a fresh test stack: publish one first
        ok, output = run_dag("batch_training_data", provision=False)
        assert ok, output[-5000:]
        live = json.loads(s3.get_object(Bucket=lake, Key="ratings-ml-training/_manifest.json")["Body"].read())
    # an older run's manifest: half of the files, its own run id (what the triggering event points at)
    older = {**live, "run_id": "older-run", "files": live["files"][: len(live["files"]) // 2]}
    s3.put_object(Bucket=lake, Key="manifests/ratings-ml-training/older-run.json", Body=json.dumps(older).encode())
    now = datetime.now(UTC)
    events = [
        SimpleNamespace(extra={"manifest_url": "s3://x/stale.json"}, timestamp=now - timedelta(hours=1)),
        SimpleNamespace(
            extra={"manifest_url": f"s3://{lake}/manifests/ratings-ml-training/older-run.json"}, timestamp=now
        ),
        SimpleNamespace(extra={}, timestamp=now + timedelta(hours=1)),
    ]
    url = triggering_manifest_url(events)
    assert url.endswith("/older-run.json")
    frame, manifest = load_training_frame(BotoS3Hook(s3), url)
    whole, live_again = load_training_frame(BotoS3Hook(s3), datalake_bucket=lake)  # a manual run
    assert manifest["run_id"] == "older-run"
    assert live_again["run_id"] == live["run_id"]
    assert 0 < len(frame) < len(whole) == live["output_rows"]
    assert triggering_manifest_url([]) is None
