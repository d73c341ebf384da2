"""The Glue job's transformation on small frames in local Spark."""

from __future__ import annotations

from decimal import Decimal

import pytest

from recsys.etl.glue_job import TRAINING_COLUMNS, build_training_data

pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def spark():
    import os

    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("glue-transform-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    yield session
    session.stop()
    # and its JVM: a JVM's classpath is the first session's, so a later session in this process (the Glue job's, in
    # tests/integration, with the MariaDB driver in spark.jars) must start its own
    from pyspark import SparkContext

    if SparkContext._gateway is not None:
        SparkContext._gateway.shutdown()
        SparkContext._gateway = None
        SparkContext._jvm = None
    # py4j logs "Closing down clientserver connection" at interpreter exit, after pytest closed its streams
    import logging

    logging.getLogger("py4j").setLevel(logging.CRITICAL)


def frames(spark, ratings_rows):
    customers = spark.createDataFrame(
        [(1, "Nantes", None, "44000", "France", Decimal("21000.00")), (2, "NYC", "NY", None, "USA", Decimal("0.00"))],
        "customerNumber int, city string, state string, postalCode string, country string, creditLimit decimal(10,2)",
    )
    products = spark.createDataFrame(
        [("S10_1", "Classic Cars", "1:10", 7933, Decimal("48.81"), Decimal("95.70"))],
        "productCode string, productLine string, productScale string, quantityInStock smallint, "
        "buyPrice decimal(10,2), MSRP decimal(10,2)",
    )
    ratings = spark.createDataFrame(ratings_rows, "customerNumber int, productCode string, productRating int")
    return customers, products, ratings


def test_valid_rows_keep_contract_order_and_types(spark):
    valid, excluded, input_rows = build_training_data(spark, *frames(spark, [(1, "S10_1", 4), (2, "S10_1", 5)]))
    assert tuple(valid.columns) == TRAINING_COLUMNS
    types = dict(valid.dtypes)
    assert types["creditLimit"] == types["buyPrice"] == types["MSRP"] == "decimal(10,2)"
    assert types["customerNumber"] == types["quantityInStock"] == types["productRating"] == "int"
    rows = {r["customerNumber"]: r for r in valid.collect()}
    assert rows[1]["state"] is None
    assert rows[2]["postalCode"] is None
    assert rows[1]["creditLimit"] == Decimal("21000.00")
    assert input_rows == 2
    assert excluded == {"null_key": 0, "rating_out_of_range": 0, "unknown_customer": 0, "unknown_product": 0}


def test_invalid_rows_are_excluded_and_counted_by_reason(spark):
    rows = [
        (1, "S10_1", 3),  # valid
        (None, "S10_1", 3),  # NULL customer
        (1, None, 3),  # NULL product
        (2, "S10_1", None),  # NULL rating
        (1, "S10_1", 0),  # out of range
        (2, "S10_1", 6),  # out of range
        (99, "S10_1", 2),  # unknown customer
        (1, "S99_9", 2),  # unknown product
    ]
    valid, excluded, input_rows = build_training_data(spark, *frames(spark, rows))
    assert valid.count() == 1
    assert excluded == {"null_key": 3, "rating_out_of_range": 2, "unknown_customer": 1, "unknown_product": 1}
    assert input_rows == len(rows)


def test_the_source_endpoint_comes_from_the_jobs_arguments_and_an_rds_managed_secret_is_enough():
    from recsys.etl.glue_job import source_endpoint

    managed = {"username": "etl", "password": "pw"}  # what RDS keeps in a managed master secret
    args = {"source_secret_id": "arn:s", "source_host": "db.rds", "source_port": "3306", "source_database": "cm"}
    assert source_endpoint(args, managed) == ("db.rds", 3306, "cm")
    # the job's arguments win over a self-managed secret's endpoint (the Glue connection and rules are for them)
    assert source_endpoint(args, {**managed, "host": "other", "port": 3310, "dbname": "x"}) == ("db.rds", 3306, "cm")
    # a job defined before the arguments existed: the secret's endpoint, MySQL's port and the lab's database
    assert source_endpoint({"source_secret_id": "arn:s"}, {**managed, "host": "old"}) == ("old", 3306, "classicmodels")
    with pytest.raises(ValueError, match=r"no source host: .* arn:s holds no host .*source_db_host"):
        source_endpoint({"source_secret_id": "arn:s", "source_host": ""}, managed)


def test_a_file_url_for_the_local_driver_is_the_file_in_each_jvms_working_directory(tmp_path, monkeypatch):
    """Relative, as Glue's: the driver reads it where --extra-files put it, each executor where addFile put it."""
    from types import SimpleNamespace

    from recsys.etl.glue_job import Context

    monkeypatch.chdir(tmp_path)  # where --extra-files put the CA (the local Glue runner runs the script here)
    local = SimpleNamespace(in_glue=False, args={"source_ssl_ca": "file:ca.pem"})
    assert Context.jdbc_ssl_options(local) == {"useSsl": "true", "serverSslCert": "ca.pem"}


def test_the_trust_store_is_shipped_to_the_executors_and_a_missing_one_is_named(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from recsys.etl.glue_job import ship_trust_store

    monkeypatch.chdir(tmp_path)
    shipped: list[str] = []
    spark = SimpleNamespace(sparkContext=SimpleNamespace(addFile=shipped.append, listFiles=shipped))
    ctx = SimpleNamespace(spark=spark, args={"source_ssl_ca": "file:rds-ca.jks"})
    with pytest.raises(FileNotFoundError, match=r"--source_ssl_ca file:rds-ca.jks: no rds-ca.jks in the job's"):
        ship_trust_store(ctx)
    (tmp_path / "rds-ca.jks").write_bytes(b"store")
    ship_trust_store(ctx)
    for elsewhere in ("", "/etc/ssl/ca.pem", "file:/abs/ca.pem", "s3://b/ca.jks"):
        ship_trust_store(SimpleNamespace(spark=spark, args={"source_ssl_ca": elsewhere}))
    assert shipped == [str(tmp_path / "rds-ca.jks")]
    # a file of that name Spark already distributes (e.g. from --files) is not added again from another path
    spark.sparkContext.listFiles = ["spark://driver:4040/files/rds-ca.jks"]
    ship_trust_store(ctx)
    assert shipped == [str(tmp_path / "rds-ca.jks")]
