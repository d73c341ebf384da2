"""Read the published training dataset and check it against the data contract, from its footers only."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.etl.glue_job import MANIFEST_NAME, TRAINING_COLUMNS, TRAINING_SCHEMA

log = logging.getLogger(__name__)

#: The valid join, counted in the live source: compared with the dataset only as drift (the source moves on).
SOURCE_VALID_COUNTS_SQL = """
SELECT COUNT(*), COUNT(DISTINCT r.customerNumber)
FROM ratings r
JOIN customers c ON c.customerNumber = r.customerNumber
JOIN products p ON p.productCode = r.productCode
WHERE r.productRating BETWEEN 1 AND 5
"""


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


#: Bytes fetched from the end of each file: the Parquet footer (schema, row counts, statistics) usually fits.
FOOTER_TAIL_BYTES = 64 * 1024
KEY_COLUMNS = ("customerNumber", "productCode", "productRating")


def read_footer(s3_client: Any, bucket: str, key: str, tail_bytes: int = FOOTER_TAIL_BYTES) -> Any:
    """A Parquet file's metadata from S3 by ranged GETs of its end (one GET when the footer fits ``tail_bytes``)."""
    import struct

    import pyarrow as pa
    import pyarrow.parquet as pq

    tail = s3_client.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{tail_bytes}")["Body"].read()
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        raise DataQualityError(f"s3://{bucket}/{key} is not a Parquet file (no PAR1 trailer)")
    length = struct.unpack("<I", tail[-8:-4])[0]
    if length + 8 > len(tail):
        tail = s3_client.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{length + 8}")["Body"].read()
    return pq.read_metadata(pa.BufferReader(b"PAR1" + tail[-(length + 8) :]))


@dataclass(frozen=True)
class FileSummary:
    """What the quality gate needs from one file, all from its footer."""

    key: str
    columns: tuple[tuple[str, str], ...]
    rows: int
    nulls: dict[str, int | None]  # None: the writer recorded no statistics
    rating_range: tuple[int, int] | None

    @classmethod
    def from_metadata(cls, key: str, metadata: Any) -> FileSummary:
        schema = metadata.schema.to_arrow_schema()
        columns = tuple((f.name, str(f.type)) for f in schema)
        names = [f.name for f in schema]
        nulls: dict[str, int | None] = {}
        lows, highs = [], []
        for name in KEY_COLUMNS:
            if name not in names:
                continue
            index, total = names.index(name), 0
            for group in range(metadata.num_row_groups):
                stats = metadata.row_group(group).column(index).statistics
                if stats is None or not stats.has_null_count:
                    total = None
                    break
                total += stats.null_count
                if name == "productRating" and stats.has_min_max:
                    lows.append(stats.min)
                    highs.append(stats.max)
            nulls[name] = total
        rating_range = (min(lows), max(highs)) if lows else None
        return cls(key, columns, metadata.num_rows, nulls, rating_range)


def summarize(s3_client: Any, manifest: dict[str, Any], threads: int = 16) -> list[FileSummary]:
    """The footers of exactly the manifest's files, fetched concurrently (never the data itself)."""
    from concurrent.futures import ThreadPoolExecutor

    bucket = manifest["target_path"].removeprefix("s3://").partition("/")[0]

    def one(key: str) -> FileSummary:
        return FileSummary.from_metadata(key, read_footer(s3_client, bucket, key))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, manifest["files"]))


@dataclass(frozen=True)
class QualityReport:
    rows: int
    customers: int
    partitions: int
    files: int
    source_rows: int | None
    source_drift: float | None  # (source - dataset) / dataset, when the source was counted


def check_dataset(
    manifest: dict[str, Any],
    files: list[FileSummary],
    source_rows: int | None = None,
    max_excluded_fraction: float = 0.01,
    max_source_drift: float = 0.05,
) -> QualityReport:
    """Every check of the contract against the run's own counts; raises :class:`DataQualityError` listing all failures.

    The dataset must hold exactly what the job says it read minus what it excluded (by reason), in files whose footers
    match the contract (schema, no NULL keys, ratings 1..5), one partition per customer in the lab's layout. The share
    of excluded source ratings must stay under ``max_excluded_fraction`` (more means a corrupted source). The live
    source, counted after the job, may have moved on since the job read it: that difference is *drift*, reported, and
    fails only beyond ``max_source_drift``.
    """
    failures: list[str] = []
    if manifest.get("schema") != [{"name": n, "type": t} for n, t in TRAINING_SCHEMA]:
        failures.append("manifest schema differs from the contract")
    partition_column = manifest.get("partition_column")
    expected = [(n, str(_arrow_type(t))) for n, t in TRAINING_SCHEMA if n != partition_column]
    for summary in files:
        if list(summary.columns) != expected:
            failures.append(f"{summary.key}: schema {list(summary.columns)} != contract {expected}")
            break
    rows = sum(f.rows for f in files)
    output_rows = manifest.get("output_rows")
    if output_rows != rows:
        failures.append(f"manifest says {output_rows} rows, its files hold {rows}")
    excluded = manifest.get("excluded", {})
    input_rows = int(manifest.get("input_rows", 0))
    if input_rows != rows + sum(excluded.values()):
        failures.append(
            f"the job read {input_rows} source rows: {rows} written + {sum(excluded.values())} excluded "
            f"({excluded}) do not add up"
        )
    for key in KEY_COLUMNS:
        counts = [f.nulls.get(key) for f in files if key in f.nulls]
        if any(c is None for c in counts):
            failures.append(f"{key}: files without NULL statistics")
        elif sum(counts):
            failures.append(f"{sum(counts)} NULL {key}")
    ranges = [f.rating_range for f in files if f.rows]
    if any(r is None for r in ranges):
        failures.append("productRating: files without min/max statistics")
    elif ranges and (min(r[0] for r in ranges) < 1 or max(r[1] for r in ranges) > 5):
        failures.append(f"ratings outside 1..5: min {min(r[0] for r in ranges)}, max {max(r[1] for r in ranges)}")
    customers = int(manifest.get("customers", -1))
    partitions = int(manifest.get("partition_count", -1))
    folders = {f.key.rsplit("/", 2)[-2] for f in files if "/" in f.key}
    if len(folders) != partitions:
        failures.append(f"manifest says {partitions} partitions, its files are in {len(folders)} folders")
    if any(folder.endswith("=__HIVE_DEFAULT_PARTITION__") for folder in folders):
        failures.append(f"NULL {partition_column}: a __HIVE_DEFAULT_PARTITION__ folder")
    if partition_column == "customerNumber" and partitions != customers:
        failures.append(f"{partitions} partitions for {customers} customers (expected one partition per customer)")
    if input_rows and sum(excluded.values()) / input_rows > max_excluded_fraction:
        failures.append(
            f"{sum(excluded.values())} of {input_rows} source ratings excluded ({excluded}), more than "
            f"{max_excluded_fraction:.1%}: the source looks corrupted"
        )
    drift = None
    if source_rows is not None:
        drift = (source_rows - rows) / max(rows, 1)
        if abs(drift) > max_source_drift:
            failures.append(
                f"source drift {drift:+.2%}: the source now has {source_rows} valid ratings, the run wrote {rows} "
                f"(tolerance {max_source_drift:.1%})"
            )
    if failures:
        raise DataQualityError("training data failed quality checks: " + "; ".join(failures))
    return QualityReport(rows, customers, partitions, len(files), source_rows, drift)


def read_manifest_url(s3_client: Any, manifest_url: str) -> dict[str, Any]:
    bucket, _, key = manifest_url.removeprefix("s3://").partition("/")
    return json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())


def check_published_dataset(
    s3_hook: Any,
    mysql_hook: Any,
    manifest_url: str,
    max_excluded_fraction: float = 0.01,
    max_source_drift: float = 0.05,
) -> dict[str, Any]:
    """The run's manifest and its files' footers from S3 (no data downloaded), the source's count for drift."""
    client = s3_hook.get_conn()
    manifest = read_manifest_url(client, manifest_url)
    files = summarize(client, manifest)
    source_rows = int(mysql_hook.get_first(SOURCE_VALID_COUNTS_SQL)[0])
    report = check_dataset(manifest, files, source_rows, max_excluded_fraction, max_source_drift)
    if report.source_drift:
        log.warning(
            "source drift %+.3f%%: the source now has %d valid ratings, run %s wrote %d (it read the source at %s)",
            100 * report.source_drift,
            source_rows,
            manifest.get("run_id"),
            report.rows,
            manifest.get("started_at"),
        )
    log.info("training data OK: %s; excluded at the source: %s", report, manifest.get("excluded"))
    return {
        "manifest": manifest_url,
        "run_id": manifest.get("run_id"),
        "rows": report.rows,
        "customers": report.customers,
        "files": report.files,
        "excluded": manifest["excluded"],
        "source_drift": report.source_drift,
    }


__all__ = [
    "MANIFEST_NAME",
    "DataQualityError",
    "FileSummary",
    "check_dataset",
    "check_published_dataset",
    "read_footer",
    "read_training_data",
    "summarize",
]
