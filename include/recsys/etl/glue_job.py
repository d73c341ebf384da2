"""Glue ETL job: classicmodels ratings -> the recommender's training dataset.

One script for AWS Glue 5.1 (Spark 3.5.6, Python 3.11; where ``awsglue`` exists) and plain PySpark 3.5.6 on the
local stack (``python glue_job.py --JOB_NAME ... --key value ...``). Only the context adapter differs:

* **read**: the source is MySQL over JDBC (``jdbc:mysql://`` URL: a ``jdbc:mariadb://`` URL makes Spark pick its
  generic dialect and break) to ``--source_host``, ``--source_port``, ``--source_database`` (Terraform's
  ``source_db_host/port/name``), user and password from the Secrets Manager secret ``--source_secret_id``
  (``username``, ``password``: an RDS-managed master secret holds no more; a secret's ``host``/``port``/``dbname`` are
  used only by a job defined without those arguments, :func:`source_endpoint`). The ratings table is read in parallel,
  split on ``customerNumber`` into ``--jdbc_partitions`` ranges. Always over TLS (the Glue connection's
  ``JDBC_ENFORCE_SSL`` applied to the script's own reads, :meth:`Context.jdbc_ssl_options`): in Glue, MySQL
  Connector/J with ``sslMode=REQUIRED`` (``VERIFY_CA`` with ``--source_ssl_ca``: a trust store Glue can read); locally
  MariaDB Connector/J with ``useSsl`` and the server certificate verified against ``--source_ssl_ca`` (the stack's
  CA).
* **transform** (:func:`transform_sql`, the same text everywhere): ratings joined to customers and products; rows
  with a NULL key, a rating outside 1..5, or a customer/product that does not exist are excluded and counted by
  reason.
* **write**: Parquet (snappy) into a staging location (S3 in Glue, a local folder locally), then published under
  ``--target_path`` (``s3://<datalake>/ratings-ml-training/``) in the lab's layout ``customerNumber=<N>/`` by
  :func:`publish`: (1) the run's files are uploaded under new, run-id-prefixed names, (2) the manifest
  ``_manifest.json`` is written in one PUT (the commit; then the run's copy at ``--manifest_path``), (3) files that
  neither this manifest nor the previous run's list are deleted. The manifest lists exactly the files of the
  committed run, so a reader that follows it never mixes two runs; the previous run's files stay until the next
  commit (the grace for readers that resolved the old manifest). Engines that list the prefix instead (Athena through
  the catalog table) see both runs: filter on ``"$path" LIKE '%/<run_id>-%'``.
  ``--partition_layout bucketed`` writes ``customerBucket=<k>/`` (``--buckets`` coarse partitions) instead: far
  fewer files (Spark pays ~13 ms per output file).
  Each phase's seconds are printed as it ends (``{"phase": ..., "seconds": ...}``) and in the run's summary.

Column types (stable, decimals stay decimals): see :data:`TRAINING_SCHEMA`. The Glue Data Catalog table over the
dataset (partition projection on ``customerNumber``) is Terraform's (``terraform/modules/etl``), not the job's.
Hive-partitioned files do not repeat the
partition column; readers get it from the path (:func:`recsys.etl.training_data.read_training_data` restores the
contract order).

Nothing in this module imports pyspark or boto3 at import time, so the DAGs and ``recsys.config`` can import its
constants cheaply.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: The data contract: column order and Spark SQL types of the training dataset.
TRAINING_SCHEMA: tuple[tuple[str, str], ...] = (
    ("customerNumber", "int"),
    ("city", "string"),
    ("state", "string"),
    ("postalCode", "string"),
    ("country", "string"),
    ("creditLimit", "decimal(10,2)"),
    ("productCode", "string"),
    ("productLine", "string"),
    ("productScale", "string"),
    ("quantityInStock", "int"),
    ("buyPrice", "decimal(10,2)"),
    ("MSRP", "decimal(10,2)"),
    ("productRating", "int"),
)
TRAINING_COLUMNS: tuple[str, ...] = tuple(name for name, _ in TRAINING_SCHEMA)
EXCLUSION_REASONS = ("null_key", "rating_out_of_range", "unknown_customer", "unknown_product")
MANIFEST_NAME = "_manifest.json"


def transform_sql() -> str:
    """The transformation as Spark SQL over the views ``ratings``, ``customers`` and ``products``."""
    return """
SELECT
  CAST(r.customerNumber AS int) AS customerNumber,
  CAST(c.city AS string) AS city,
  CAST(c.state AS string) AS state,
  CAST(c.postalCode AS string) AS postalCode,
  CAST(c.country AS string) AS country,
  CAST(c.creditLimit AS decimal(10,2)) AS creditLimit,
  CAST(r.productCode AS string) AS productCode,
  CAST(p.productLine AS string) AS productLine,
  CAST(p.productScale AS string) AS productScale,
  CAST(p.quantityInStock AS int) AS quantityInStock,
  CAST(p.buyPrice AS decimal(10,2)) AS buyPrice,
  CAST(p.MSRP AS decimal(10,2)) AS MSRP,
  CAST(r.productRating AS int) AS productRating,
  CASE
    WHEN r.customerNumber IS NULL OR r.productCode IS NULL OR r.productRating IS NULL THEN 'null_key'
    WHEN r.productRating < 1 OR r.productRating > 5 THEN 'rating_out_of_range'
    WHEN c.customerNumber IS NULL THEN 'unknown_customer'
    WHEN p.productCode IS NULL THEN 'unknown_product'
  END AS exclusion
FROM ratings r
LEFT JOIN customers c ON c.customerNumber = r.customerNumber
LEFT JOIN products p ON p.productCode = r.productCode
"""


def build_training_data(spark: Any, customers: Any, products: Any, ratings: Any) -> tuple[Any, dict[str, int], int]:
    """Apply the transformation to three DataFrames: (valid rows in contract order, excluded counts, input rows)."""
    customers.createOrReplaceTempView("customers")
    products.createOrReplaceTempView("products")
    ratings.createOrReplaceTempView("ratings")
    labelled = spark.sql(transform_sql()).cache()
    counts = {row["exclusion"]: row["count"] for row in labelled.groupBy("exclusion").count().collect()}
    input_rows = sum(counts.values())
    excluded = {reason: int(counts.get(reason, 0)) for reason in EXCLUSION_REASONS}
    valid = labelled.filter("exclusion IS NULL").select(*TRAINING_COLUMNS)
    return valid, excluded, input_rows


# --- arguments ------------------------------------------------------------------------------------------------------

DEFAULT_ARGS = {
    "source_table_prefix": "",
    "jdbc_partitions": "4",
    "partition_layout": "customer",
    "buckets": "64",
    "run_id": "",
    "manifest_path": "",
    "source_ssl_ca": "",
    "source_host": "",
    "source_port": "",
    "source_database": "",
}


def parse_args(argv: list[str]) -> dict[str, str]:
    """Glue passes ``--key value`` pairs (plus its own); unknown keys are kept, never rejected."""
    parser = argparse.ArgumentParser(prog="glue_job.py", description=__doc__.splitlines()[0])
    parser.add_argument("--JOB_NAME", required=True)
    parser.add_argument("--source_secret_id", required=True, help="Secrets Manager id of the MySQL credentials")
    parser.add_argument("--target_path", required=True, help="s3://bucket/ratings-ml-training/")
    for key, default in DEFAULT_ARGS.items():
        parser.add_argument(f"--{key}", default=default)
    known, _unknown = parser.parse_known_args(argv)
    args = vars(known)
    if args["partition_layout"] not in ("customer", "bucketed"):
        raise SystemExit(f"--partition_layout must be 'customer' or 'bucketed', not {args['partition_layout']!r}")
    if not args["target_path"].startswith("s3://"):
        raise SystemExit(f"--target_path must be an s3:// URL, not {args['target_path']!r}")
    return args


def split_s3(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


# --- context adapters -----------------------------------------------------------------------------------------------


class Context:
    """Where the job runs: Glue (awsglue present) or local PySpark. Only I/O differs."""

    def __init__(self, job_name: str, args: dict[str, str]) -> None:
        self.job_name = job_name
        self.args = args
        self.in_glue = False
        self.job: Any = None
        try:
            from awsglue.context import GlueContext  # type: ignore[import-not-found]
            from awsglue.job import Job  # type: ignore[import-not-found]
            from pyspark.context import SparkContext

            glue_context = GlueContext(SparkContext.getOrCreate())
            self.spark = glue_context.spark_session
            self.job = Job(glue_context)
            self.job.init(job_name, {"JOB_NAME": job_name})
            self.in_glue = True
        except ImportError:
            from pyspark.sql import SparkSession

            jar = os.environ.get("MARIADB_JDBC_JAR", "/usr/share/java/mariadb-java-client.jar")
            self.spark = (
                SparkSession.builder.appName(job_name)
                .master(os.environ.get("SPARK_MASTER", "local[2]"))
                .config("spark.jars", jar)
                .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "2g"))
                .config("spark.sql.shuffle.partitions", "8")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                # the staging folder is local scratch, uploaded then deleted: no .crc file beside each Parquet file
                # (the checksummed local file system doubles the files; ~25% of a customer-layout run's write)
                .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
                .config("spark.hadoop.fs.file.impl.disable.cache", "true")
                .getOrCreate()
            )
            self.spark.sparkContext.setLogLevel("WARN")
        import boto3
        from botocore.config import Config

        self.s3 = boto3.client("s3", config=Config(max_pool_connections=UPLOAD_THREADS + 4))
        self.secrets = boto3.client("secretsmanager")

    def jdbc_driver(self) -> str:
        return "com.mysql.cj.jdbc.Driver" if self.in_glue else "org.mariadb.jdbc.Driver"

    def jdbc_ssl_options(self) -> dict[str, str]:
        """Driver properties for a TLS-only read; the server certificate verified when ``--source_ssl_ca`` names
        the CA: ``file:<name>``, a file ``--extra-files`` put in the job's working directory (Terraform's
        ``source_db_ssl_ca``; Connector/J opens it with ``java.net.URL``, which has no ``s3:`` handler), or a path.
        In Glue a JKS/PKCS12 trust store (``.p12``/``.pfx`` read as PKCS12); locally a PEM file."""
        ca = self.args.get("source_ssl_ca", "")
        if self.in_glue:  # MySQL Connector/J 8
            if ca:
                url = ca if ca.startswith("file:") or "://" in ca else Path(ca).resolve().as_uri()
                kind = "PKCS12" if ca.lower().endswith((".p12", ".pfx")) else "JKS"
                return {
                    "sslMode": "VERIFY_CA",
                    "trustCertificateKeyStoreUrl": url,
                    "trustCertificateKeyStoreType": kind,
                }
            return {"sslMode": "REQUIRED"}
        if ca:  # MariaDB Connector/J 2.7 (Debian's): verifies the chain and the host name against this CA
            # a relative file: name stays relative, as in Glue: each JVM reads it from its own working directory
            path = ca.removeprefix("file:") if ca.startswith("file:") else str(Path(ca).resolve())
            return {"useSsl": "true", "serverSslCert": path}
        return {"useSsl": "true", "trustServerCertificate": "true"}

    def staging_dir(self, run_id: str) -> str:
        """Where Spark writes before publishing: S3 in Glue, a local folder locally (no s3a here)."""
        if self.in_glue:
            bucket, key = split_s3(self.args["target_path"])
            return f"s3://{bucket}/_staging/{key}{run_id}/"
        return tempfile.mkdtemp(prefix=f"glue-{run_id}-")

    def commit(self) -> None:
        if self.job is not None:
            self.job.commit()


def source_endpoint(args: dict[str, str], secret: dict[str, Any]) -> tuple[str, int, str]:
    """(host, port, database) of the source: the job's ``--source_*`` arguments, else the secret's ``host``,
    ``port``, ``dbname`` (a job defined before those arguments existed); the port defaults to 3306, the database to
    ``classicmodels``."""
    host = args.get("source_host") or secret.get("host")
    if not host:
        raise ValueError(
            f"no source host: the job has no --source_host argument and the secret {args.get('source_secret_id')} "
            "holds no host (an RDS-managed secret holds only username and password): apply terraform/etl, which "
            "passes source_db_host"
        )
    port = args.get("source_port") or secret.get("port") or 3306
    database = args.get("source_database") or secret.get("dbname") or "classicmodels"
    return str(host), int(port), str(database)


def ship_trust_store(ctx: Context) -> None:
    """The executors open the JDBC connections of the partitioned read, each with ``--source_ssl_ca``'s relative
    ``file:`` name resolved in its own working directory, while Glue documents ``--extra-files`` as copied to the
    script's working directory (the driver's): Spark's ``addFile`` puts the trust store in every executor's working
    directory (SparkFiles' root there). A file of that name Spark already distributes is left as it is (adding it
    again from another path is an error in Spark)."""
    ca = ctx.args.get("source_ssl_ca", "")  # what jdbc_ssl_options hands the driver
    name = ca.removeprefix("file:")
    if not ca.startswith("file:") or "/" in name or not name:
        return  # a path (on every node) or a URL: nothing to ship
    path = Path(name).resolve()
    if not path.is_file():
        raise FileNotFoundError(
            f"--source_ssl_ca {ca}: no {name} in the job's working directory {Path.cwd()} (--extra-files puts it there)"
        )
    context = ctx.spark.sparkContext
    if any(Path(registered.split("?")[0]).name == name for registered in context.listFiles):
        return
    context.addFile(str(path))


def read_source(ctx: Context, args: dict[str, str]) -> tuple[Any, Any, Any]:
    ship_trust_store(ctx)
    secret = json.loads(ctx.secrets.get_secret_value(SecretId=args["source_secret_id"])["SecretString"])
    missing = [key for key in ("username", "password") if not secret.get(key)]
    if missing:
        raise ValueError(f"the source secret {args['source_secret_id']} holds no {' or '.join(missing)}")
    host, port, database = source_endpoint(args, secret)
    url = f"jdbc:mysql://{host}:{port}/{database}"
    options = {
        "url": url,
        "user": secret["username"],
        "password": secret["password"],
        "driver": ctx.jdbc_driver(),
        "fetchsize": "10000",
        **ctx.jdbc_ssl_options(),
    }
    prefix = args["source_table_prefix"]

    def reader() -> Any:  # a DataFrameReader accumulates options: one per read
        return ctx.spark.read.format("jdbc").options(**options)

    customers = reader().option("dbtable", f"{prefix}customers").load()
    products = reader().option("dbtable", f"{prefix}products").load()
    bounds = (
        reader()
        .option("query", f"SELECT MIN(customerNumber) AS lo, MAX(customerNumber) AS hi FROM {prefix}ratings")
        .load()
        .collect()[0]
    )
    ratings_reader = reader().option("dbtable", f"{prefix}ratings")
    partitions = max(1, int(args["jdbc_partitions"]))
    if bounds["lo"] is not None and partitions > 1 and bounds["hi"] > bounds["lo"]:
        ratings_reader = (
            ratings_reader.option("partitionColumn", "customerNumber")
            .option("lowerBound", str(bounds["lo"]))
            .option("upperBound", str(int(bounds["hi"]) + 1))
            .option("numPartitions", str(partitions))
        )
    return customers, products, ratings_reader.load()


def with_partition_column(valid: Any, args: dict[str, str]) -> tuple[Any, str]:
    """The valid rows with the layout's partition column; (frame, column)."""
    from pyspark.sql import functions as F

    if args["partition_layout"] == "customer":
        return valid, "customerNumber"
    column = F.pmod(F.col("customerNumber"), F.lit(int(args["buckets"])))
    return valid.withColumn("customerBucket", column), "customerBucket"


def dataset_counts(frame: Any, partition_column: str) -> dict[str, int]:
    """Rows, partitions and customers of the rows to write, in one aggregation (over the cached transformation:
    counting the written frame afterwards would run its shuffle again, once per count)."""
    from pyspark.sql import functions as F

    row = frame.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct(partition_column).alias("partitions"),
        F.countDistinct("customerNumber").alias("customers"),
    ).collect()[0]
    return {
        "output_rows": int(row["rows"]),
        "partition_count": int(row["partitions"]),
        "customers": int(row["customers"]),
    }


def write_staging(frame: Any, partition_column: str, staging: str) -> None:
    """Write the rows as Parquet, one folder per partition value, one file per folder (rows of a partition value
    are brought together first)."""
    (
        frame.repartition(partition_column)
        .write.mode("overwrite")
        .option("compression", "snappy")
        .partitionBy(partition_column)
        .parquet(staging)
    )


def staged_files(ctx: Context, staging: str) -> list[tuple[str, str]]:
    """(relative key, source) of every Parquet file Spark wrote into staging."""
    if staging.startswith("s3://"):
        bucket, prefix = split_s3(staging)
        files = []
        for page in ctx.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".parquet"):
                    files.append((obj["Key"][len(prefix) :], f"s3://{bucket}/{obj['Key']}"))
        return files
    root = Path(staging)
    return [(str(p.relative_to(root)), str(p)) for p in sorted(root.rglob("*.parquet"))]


def read_manifest(s3: Any, target: str) -> dict[str, Any] | None:
    """The dataset's live manifest (``<target>_manifest.json``), or None before the first committed run."""
    from botocore.exceptions import ClientError

    bucket, prefix = split_s3(target)
    try:
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}{MANIFEST_NAME}")["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return json.loads(body)


#: Concurrent S3 requests when publishing a run's files (the S3 client's connection pool is sized to match).
UPLOAD_THREADS = 16


def upload_run(s3: Any, files: list[tuple[str, str]], target: str, run_id: str) -> list[str]:
    """Step 1: copy the run's files under the target prefix with run-id-prefixed names; nothing a reader follows
    changes (no live manifest names them yet). Returns the keys, as the manifest will list them."""
    from concurrent.futures import ThreadPoolExecutor

    bucket, prefix = split_s3(target)

    def one(item: tuple[str, str]) -> str:
        relative, source = item
        folder, _, name = relative.rpartition("/")
        key = f"{prefix}{folder}/{run_id}-{name}" if folder else f"{prefix}{run_id}-{name}"
        if source.startswith("s3://"):
            src_bucket, src_key = split_s3(source)
            s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": src_bucket, "Key": src_key})
        else:
            s3.upload_file(source, bucket, key)
        return key

    # one request per file (a customer layout has thousands): concurrent, as S3 serves them; any failure raises
    # here, before the commit, so a reader never follows a manifest naming a missing file
    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
        return list(pool.map(one, files))


def commit_manifest(s3: Any, target: str, manifest: dict[str, Any], manifest_path: str = "") -> bytes:
    """Step 2, the commit: the live manifest in one PUT (S3 PUTs are atomic: readers see the old or the new one),
    then the run's own copy at ``manifest_path``, which the DAG's sensor waits for: it appears only for a committed
    run."""
    body = json.dumps(manifest, indent=2).encode()
    bucket, prefix = split_s3(target)
    s3.put_object(Bucket=bucket, Key=f"{prefix}{MANIFEST_NAME}", Body=body, ContentType="application/json")
    if manifest_path:
        m_bucket, m_key = split_s3(manifest_path)
        s3.put_object(Bucket=m_bucket, Key=m_key, Body=body, ContentType="application/json")
    return body


def clean_up(s3: Any, target: str, keep: set[str]) -> list[str]:
    """Step 3, after the commit: delete every object under the prefix that neither the live manifest nor the
    previous one lists (older runs, and files of runs that died before their commit). Returns the deleted keys."""
    bucket, prefix = split_s3(target)
    return delete_under(s3, bucket, prefix, keep | {f"{prefix}{MANIFEST_NAME}"})


def delete_under(s3: Any, bucket: str, prefix: str, keep: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Delete every object under ``prefix`` but ``keep`` (1,000 keys per request); return the deleted keys."""
    stale = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
        if obj["Key"] not in keep
    ]
    for start in range(0, len(stale), 1000):
        s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[start : start + 1000]], "Quiet": True}
        )
    return stale


def publish(
    s3: Any, files: list[tuple[str, str]], target: str, run_id: str, manifest: dict[str, Any], manifest_path: str = ""
) -> dict[str, Any]:
    """Publish a run atomically; return its manifest (``files`` filled in).

    1. upload the run's files (new names: nothing live changes); 2. commit: write the manifest in one PUT;
    3. delete what neither this run's manifest nor the previous run's lists. **Grace:** the previous run's files stay
    until the next run commits, so a reader that resolved the old manifest just before this commit can finish.
    A run that dies in step 1 leaves the previous dataset live and complete (its orphans go at the next commit);
    one that dies in step 3 has committed, and the previous run's files are still all there.
    """
    previous = read_manifest(s3, target)
    published = upload_run(s3, files, target, run_id)
    manifest = {
        **manifest,
        "files": published,
        "previous_run_id": previous.get("run_id") if previous else None,
        "committed_at": datetime.now(UTC).isoformat(),
    }
    commit_manifest(s3, target, manifest, manifest_path)
    retained = set(previous.get("files", [])) if previous else set()
    deleted = clean_up(s3, target, set(published) | retained)
    print(
        json.dumps({"published": len(published), "retained_of_previous_run": len(retained), "deleted": len(deleted)}),
        flush=True,
    )
    return manifest


def remove_staging(ctx: Context, staging: str) -> None:
    if not staging.startswith("s3://"):
        shutil.rmtree(staging, ignore_errors=True)
        return
    delete_under(ctx.s3, *split_s3(staging))


def run(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    started = datetime.now(UTC)
    run_id = args["run_id"] or f"run-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    safe_run_id = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in run_id)
    target = args["target_path"] if args["target_path"].endswith("/") else args["target_path"] + "/"
    ctx = Context(args["JOB_NAME"], args)
    t0 = time.monotonic()
    phases: dict[str, float] = {}

    def phase(name: str, since: float) -> float:
        now = time.monotonic()
        phases[name] = round(now - since, 1)
        print(json.dumps({"phase": name, "seconds": phases[name]}), flush=True)
        return now

    customers, products, ratings = read_source(ctx, args)
    valid, excluded, input_rows = build_training_data(ctx.spark, customers, products, ratings)
    mark = phase("read_and_transform", t0)
    frame, partition_column = with_partition_column(valid, args)
    counts = dataset_counts(frame, partition_column)
    mark = phase("count", mark)
    staging = ctx.staging_dir(safe_run_id)
    write_staging(frame, partition_column, staging)
    mark = phase("write", mark)
    files = staged_files(ctx, staging)
    manifest = {
        "run_id": run_id,
        "job_name": args["JOB_NAME"],
        "target_path": target,
        "partition_layout": args["partition_layout"],
        "partition_column": partition_column,
        "partition_count": counts["partition_count"],
        "customers": counts["customers"],
        "input_rows": input_rows,
        "output_rows": counts["output_rows"],
        "excluded": excluded,
        "schema": [{"name": n, "type": t} for n, t in TRAINING_SCHEMA],
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "seconds": round(time.monotonic() - t0, 1),
    }
    manifest = publish(ctx.s3, files, target, safe_run_id, manifest, args["manifest_path"])
    mark = phase("publish", mark)
    remove_staging(ctx, staging)
    summary = {k: v for k, v in manifest.items() if k not in ("files", "schema")}
    print(json.dumps({**summary, "phase_seconds": phases}), flush=True)
    ctx.commit()
    return manifest


if __name__ == "__main__":
    run(sys.argv[1:])
