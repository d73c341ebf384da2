"""batch_training_data then recommender_model against the test stack: the ml-artifacts bucket in the lab's layout."""

from __future__ import annotations

import csv
import io
import json

import pytest

from recsys.localstack import mariadb
from recsys.model.artifacts import LAYOUT, POINTER_KEY
from recsys.seed.generator import SeedSpec
from recsys.seed.loader import seed

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_model_dag_publishes_the_layout_with_one_embedding_per_id(stack, run_dag):
    seed(stack.mariadb(), SeedSpec())
    ok, output = run_dag("batch_training_data")
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
    val = metrics["validation"]
    assert val["rmse"] < val["baseline_global_mean"]["rmse"]
    assert val["rmse"] < val["baseline_item_mean"]["rmse"]

    with mariadb.connect(stack.mariadb()) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(DISTINCT productCode), COUNT(DISTINCT customerNumber) FROM ratings")
        products, customers = cur.fetchone()
    items = list(csv.reader(io.StringIO(read("embeddings/item_embeddings.csv").decode())))[1:]
    users = list(csv.reader(io.StringIO(read("embeddings/user_embeddings.csv").decode())))[1:]
    assert len(items) == products
    assert len(users) == customers
    assert all(len(row[1].strip("[]").split(",")) == 32 for row in items + users)
