"""Whole runs of batch_training_data against the test stack: real Spark, real MariaDB, the local S3."""

from __future__ import annotations

import json

import pyarrow.dataset as ds
import pytest

from recsys.config import TRAINING_COLUMNS, TRAINING_DATA_PREFIX
from recsys.localstack import mariadb
from recsys.seed.generator import SeedSpec
from recsys.seed.loader import seed

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def s3_client(stack):
    return stack.client("s3")


def download_dataset(stack, tmp_path):
    s3, bucket = s3_client(stack), stack.settings.names.datalake_bucket
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=TRAINING_DATA_PREFIX)
        for o in page.get("Contents", [])
    ]
    for key in keys:
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(path))
    manifest = json.loads((tmp_path / TRAINING_DATA_PREFIX / "_manifest.json").read_text())
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
    assert "driver" in output or "Glue Job Run /aws-glue/jobs/output Logs" in output

    ok, output = run_dag("batch_training_data")
    assert ok, output[-5000:]
    keys_again, manifest_again, table_again = download_dataset(stack, tmp_path / "second")
    assert table_again.num_rows == rows
    assert manifest_again["run_id"] != manifest["run_id"]
    assert len(keys_again) == len(keys)  # files of the first run are gone, not added to
    assert set(keys_again) == {*manifest_again["files"], f"{TRAINING_DATA_PREFIX}_manifest.json"}
    assert not set(keys_again) & set(manifest["files"])


def test_a_corrupted_source_fails_the_quality_check_with_counts(stack, run_dag):
    seed(stack.mariadb(), SeedSpec())
    cfg = stack.mariadb()
    mariadb.root_sql(
        cfg,
        f"USE `{cfg.database}`; SET FOREIGN_KEY_CHECKS = 0;"
        "UPDATE ratings SET productRating = 9 WHERE MOD(customerNumber, 7) = 0;"
        "INSERT INTO ratings VALUES (1, 'NO_SUCH', 3), (2, 'NO_SUCH', 4);",
    )
    ok, output = run_dag("batch_training_data")
    assert not ok
    assert "source looks corrupted" in output
    assert "rating_out_of_range" in output
    seed(stack.mariadb(), SeedSpec())
