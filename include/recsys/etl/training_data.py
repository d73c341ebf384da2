"""Read the published training dataset and check it against the data contract and the source."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.etl.glue_job import MANIFEST_NAME, TRAINING_COLUMNS, TRAINING_SCHEMA

log = logging.getLogger(__name__)

#: The valid join, counted in the source: what the dataset must hold exactly.
SOURCE_VALID_COUNTS_SQL = """
SELECT COUNT(*), COUNT(DISTINCT r.customerNumber)
FROM ratings r
JOIN customers c ON c.customerNumber = r.customerNumber
JOIN products p ON p.productCode = r.productCode
WHERE r.productRating BETWEEN 1 AND 5
"""

ARROW_TYPES = {"int": "int32", "string": "string", "decimal(10,2)": "decimal128(10, 2)"}


class DataQualityError(ValueError):
    """The dataset breaks the contract; the message lists every failed check."""


def read_training_data(folder: Path, manifest: dict[str, Any]) -> Any:
    """A pyarrow Table of the manifest's files under ``folder``, with the 13 contract columns in order.

    Hive-partitioned files do not repeat the partition column; it is restored from each file's path.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    prefix = manifest["target_path"].removeprefix("s3://").partition("/")[2]
    tables = []
    for key in manifest["files"]:
        relative = key[len(prefix) :]
        table = pq.read_table(folder / relative)
        if "customerNumber" not in table.column_names:
            part = next(p for p in relative.split("/") if p.startswith("customerNumber="))
            value = int(part.split("=", 1)[1])
            table = table.append_column("customerNumber", pa.array([value] * table.num_rows, pa.int32()))
        tables.append(table.select(list(TRAINING_COLUMNS)))
    if not tables:
        return pa.table({name: pa.array([], type=_arrow_type(t)) for name, t in TRAINING_SCHEMA})
    return pa.concat_tables(tables)


def _arrow_type(spark_type: str) -> Any:
    import pyarrow as pa

    return {"int": pa.int32(), "string": pa.string(), "decimal(10,2)": pa.decimal128(10, 2)}[spark_type]


def download_dataset(s3_hook: Any, manifest: dict[str, Any], folder: Path) -> None:
    """Download exactly the manifest's files (never a half-written run) into ``folder``."""
    bucket, _, prefix = manifest["target_path"].removeprefix("s3://").partition("/")
    client = s3_hook.get_conn()
    for key in manifest["files"]:
        path = folder / key[len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(path))


@dataclass(frozen=True)
class QualityReport:
    rows: int
    customers: int
    partitions: int
    source_rows: int
    source_customers: int


def check_dataset(
    table: Any,
    manifest: dict[str, Any],
    source_rows: int,
    source_customers: int,
    max_excluded_fraction: float = 0.01,
) -> QualityReport:
    """Every check of the contract; raises :class:`DataQualityError` listing all failures.

    Besides the dataset itself, the share of source ratings the job had to exclude (NULL keys, ratings outside 1..5,
    unknown customers or products) must stay under ``max_excluded_fraction``: more means a corrupted source.
    """
    import pyarrow.compute as pc

    failures: list[str] = []
    expected_types = [(n, str(_arrow_type(t))) for n, t in TRAINING_SCHEMA]
    actual_types = [(f.name, str(f.type)) for f in table.schema]
    if actual_types != expected_types:
        failures.append(f"schema {actual_types} != contract {expected_types}")
    if manifest.get("schema") != [{"name": n, "type": t} for n, t in TRAINING_SCHEMA]:
        failures.append("manifest schema differs from the contract")
    if table.num_rows != source_rows:
        failures.append(f"{table.num_rows} rows, but the source has {source_rows} valid ratings")
    if manifest.get("output_rows") != table.num_rows:
        failures.append(f"manifest says {manifest.get('output_rows')} rows, files hold {table.num_rows}")
    for key in ("customerNumber", "productCode", "productRating"):
        nulls = table.column(key).null_count
        if nulls:
            failures.append(f"{nulls} NULL {key}")
    ratings = table.column("productRating")
    if table.num_rows and (pc.min(ratings).as_py() < 1 or pc.max(ratings).as_py() > 5):
        failures.append(f"ratings outside 1..5: min {pc.min(ratings).as_py()}, max {pc.max(ratings).as_py()}")
    customers = len(pc.unique(table.column("customerNumber")))
    partitions = int(manifest.get("partition_count", -1))
    if manifest.get("partition_column") == "customerNumber" and partitions != customers:
        failures.append(f"{partitions} partitions for {customers} customers (expected one partition per customer)")
    if customers != source_customers:
        failures.append(f"{customers} customers, but the source has {source_customers} with a valid rating")
    excluded = manifest.get("excluded", {})
    input_rows = int(manifest.get("input_rows", 0))
    if input_rows and sum(excluded.values()) / input_rows > max_excluded_fraction:
        failures.append(
            f"{sum(excluded.values())} of {input_rows} source ratings excluded ({excluded}), more than "
            f"{max_excluded_fraction:.1%}: the source looks corrupted"
        )
    if failures:
        raise DataQualityError("training data failed quality checks: " + "; ".join(failures))
    return QualityReport(table.num_rows, customers, partitions, source_rows, source_customers)


def check_published_dataset(
    s3_hook: Any, mysql_hook: Any, manifest_url: str, max_excluded_fraction: float = 0.01
) -> dict[str, Any]:
    """Download the run's manifest and files from S3, count the source, run every check."""
    bucket, _, key = manifest_url.removeprefix("s3://").partition("/")
    manifest = json.loads(s3_hook.read_key(key=key, bucket_name=bucket))
    source_rows, source_customers = mysql_hook.get_first(SOURCE_VALID_COUNTS_SQL)
    with tempfile.TemporaryDirectory(prefix="training-data-") as tmp:
        download_dataset(s3_hook, manifest, Path(tmp))
        table = read_training_data(Path(tmp), manifest)
    report = check_dataset(table, manifest, int(source_rows), int(source_customers), max_excluded_fraction)
    log.info("training data OK: %s; excluded at the source: %s", report, manifest.get("excluded"))
    return {
        "manifest": manifest_url,
        "rows": report.rows,
        "customers": report.customers,
        "excluded": manifest["excluded"],
    }


__all__ = ["MANIFEST_NAME", "DataQualityError", "check_dataset", "check_published_dataset", "read_training_data"]
