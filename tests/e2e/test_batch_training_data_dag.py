"""Whole runs of batch_training_data against the test stack: real Spark, real MariaDB, the local S3."""

from __future__ import annotations

import json
import random
import threading

import pyarrow.dataset as ds
import pytest

from recsys.config import TRAINING_COLUMNS, TRAINING_DATA_PREFIX
from recsys_local import mariadb
from recsys_local.seed.generator import SeedSpec
from recsys_local.seed.loader import seed

# the budget of each test here: two batch runs at most (~45 s each alone; setup and call 318 s with the three lanes
# and a CPU hog beside them, so 900 s keeps more than twice that)
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(900)]


def s3_client(stack):
    return stack.client("s3")


def download_dataset(stack, tmp_path):
    """Every key under the prefix, the live manifest, and the dataset it names (what a reader sees)."""
    s3, bucket = s3_client(stack), stack.settings.names.datalake_bucket
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=TRAINING_DATA_PREFIX)
        for o in page.get("Contents", [])
    ]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{TRAINING_DATA_PREFIX}_manifest.json")["Body"].read())
    for key in manifest["files"]:
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(path))
    table = ds.dataset(tmp_path / TRAINING_DATA_PREFIX, format="parquet", partitioning="hive").to_table()
    return keys, manifest, table


def valid_counts(stack):
    with mariadb.connect(stack.mariadb()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*), COUNT(DISTINCT r.customerNumber) FROM ratings r JOIN customers c USING (customerNumber) "
            "JOIN products p USING (productCode) WHERE r.productRating BETWEEN 1 AND 5"
        )
        return cur.fetchone()


def test_dag_writes_the_contract_and_a_rerun_leaves_the_same_result(stack, run_dag, tmp_path):
    seed(stack.mariadb(), SeedSpec())
    rows, customers = valid_counts(stack)

    ok, output = run_dag("batch_training_data")
    assert ok, output[-5000:]
    keys, manifest, table = download_dataset(stack, tmp_path / "first")
    assert set(table.column_names) == set(TRAINING_COLUMNS)
    assert table.select(list(TRAINING_COLUMNS)).column_names == list(TRAINING_COLUMNS)
    assert table.num_rows == rows == manifest["output_rows"]
    partitions = {k.split("/")[1] for k in keys if "customerNumber=" in k}
    assert len(partitions) == customers == manifest["partition_count"]
    assert str(table.schema.field("buyPrice").type) == "decimal128(10, 2)"
    assert manifest["excluded"] == {
        "null_key": 0,
        "rating_out_of_range": 0,
        "unknown_customer": 0,
        "unknown_product": 0,
    }
    # the provider's verbose mode printed the job's own output into the task log, down to its last line (the summary)
    assert "Glue Job Run /aws-glue/jobs/output Logs" in output
    assert '{"run_id": ' + json.dumps(manifest["run_id"]) + ', "job_name": ' in output

    ok, output = run_dag("batch_training_data", provision=False)
    assert ok, output[-5000:]
    keys_again, manifest_again, table_again = download_dataset(stack, tmp_path / "second")
    assert table_again.num_rows == rows
    assert manifest_again["run_id"] != manifest["run_id"]
    assert manifest_again["previous_run_id"] == manifest["run_id"]
    assert not set(manifest_again["files"]) & set(manifest["files"])
    # the previous run's files stay (the grace for its readers) and nothing else does
    assert set(keys_again) == {*manifest_again["files"], *manifest["files"], f"{TRAINING_DATA_PREFIX}_manifest.json"}


def test_ratings_inserted_while_the_job_runs_are_reported_as_drift_not_a_failure(stack, run_dag):
    seed(stack.mariadb(), SeedSpec())
    before, _ = valid_counts(stack)
    done, inserted = threading.Event(), []
    rng = random.Random(7)

    def keep_inserting() -> None:  # a rating every 2 s until the run ends: at most 120 (< 5% of 2600)
        with mariadb.connect(stack.mariadb(), admin=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT customerNumber FROM customers")
            customers = [r[0] for r in cur.fetchall()]
            cur.execute("SELECT productCode FROM products")
            products = [r[0] for r in cur.fetchall()]
            while not done.wait(2) and len(inserted) < 120:
                cur.execute(
                    "INSERT IGNORE INTO ratings VALUES (%s, %s, %s)",
                    (rng.choice(customers), rng.choice(products), rng.randint(1, 5)),
                )
                conn.commit()
                inserted.append(cur.rowcount)

    writer = threading.Thread(target=keep_inserting)
    writer.start()
    try:
        ok, output = run_dag("batch_training_data", provision=False)
    finally:
        done.set()
        writer.join()
    after, _ = valid_counts(stack)
    assert after > before, "the writer inserted nothing: the test proves nothing"
    assert ok, output[-5000:]
    assert "source drift" in output
    seed(stack.mariadb(), SeedSpec())


def test_a_corrupted_source_fails_the_quality_check_with_counts(stack, run_dag):
    seed(stack.mariadb(), SeedSpec())
    cfg = stack.mariadb()
    mariadb.root_sql(
        cfg,
        f"USE `{cfg.database}`; SET FOREIGN_KEY_CHECKS = 0;"
        "UPDATE ratings SET productRating = 9 WHERE MOD(customerNumber, 7) = 0;"
        "INSERT INTO ratings VALUES (1, 'NO_SUCH', 3), (2, 'NO_SUCH', 4);",
    )
    ok, output = run_dag("batch_training_data", provision=False)
    assert not ok
    assert "source looks corrupted" in output
    assert "rating_out_of_range" in output
    seed(stack.mariadb(), SeedSpec())
