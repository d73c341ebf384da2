"""The quality gate reads only Parquet footers and the run's own manifest, and catches each kind of broken data."""

from __future__ import annotations

from decimal import Decimal

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from recsys.etl.glue_job import TRAINING_SCHEMA
from recsys.etl.training_data import DataQualityError, FileSummary, _arrow_type, check_dataset, read_footer

PREFIX = "ratings-ml-training/"
FILE_SCHEMA = pa.schema([(n, _arrow_type(t)) for n, t in TRAINING_SCHEMA if n != "customerNumber"])


def row(customer=1, product="S10_1", rating=4, credit=Decimal("1.00")):
    return {
        "customerNumber": customer,
        "city": "Nantes",
        "state": None,
        "postalCode": "44000",
        "country": "France",
        "creditLimit": credit,
        "productCode": product,
        "productLine": "Ships",
        "productScale": "1:700",
        "quantityInStock": 5,
        "buyPrice": Decimal("2.00"),
        "MSRP": Decimal("3.00"),
        "productRating": rating,
    }


def write_dataset(tmp_path, rows, schema=FILE_SCHEMA):
    """The lab's layout, one file per customer folder, as the Glue job writes it; returns the files' summaries."""
    summaries = []
    for customer in sorted({r["customerNumber"] for r in rows}, key=str):
        folder = f"customerNumber={customer if customer is not None else '__HIVE_DEFAULT_PARTITION__'}"
        mine = [r for r in rows if r["customerNumber"] == customer]
        table = pa.table({f.name: pa.array([r[f.name] for r in mine], f.type) for f in schema})
        key = f"{PREFIX}{folder}/run-1-part-0.parquet"
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        summaries.append(FileSummary.from_metadata(key, pq.read_metadata(path)))
    return summaries


def manifest(rows, partitions, customers=None, excluded=None, input_rows=None):
    excluded = excluded or {"null_key": 0}
    return {
        "schema": [{"name": n, "type": t} for n, t in TRAINING_SCHEMA],
        "output_rows": rows,
        "partition_column": "customerNumber",
        "partition_count": partitions,
        "customers": partitions if customers is None else customers,
        "excluded": excluded,
        "input_rows": input_rows if input_rows is not None else rows + sum(excluded.values()),
    }


def test_a_good_dataset_passes_and_reports_drift_within_tolerance(tmp_path):
    files = write_dataset(tmp_path, [row(1), row(2, "S10_2"), row(2, "S10_3")])
    report = check_dataset(manifest(3, 2), files, source_rows=3)
    assert (report.rows, report.customers, report.files, report.source_drift) == (3, 2, 2, 0.0)
    # the source took ratings since the job read it: reported, not a failure
    report = check_dataset(manifest(3, 2), files, source_rows=4, max_source_drift=0.5)
    assert report.source_drift == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("rows", "meta", "message"),
    [
        ([row(1)], manifest(2, 1), "manifest says 2 rows, its files hold 1"),
        ([row(1)], manifest(1, 1, excluded={"null_key": 1}, input_rows=5), "do not add up"),
        ([row(1, rating=7)], manifest(1, 1), r"ratings outside 1\.\.5: min 7, max 7"),
        ([row(1, rating=0), row(1)], manifest(2, 1), "ratings outside 1..5: min 0"),
        ([row(1, product=None)], manifest(1, 1), "1 NULL productCode"),
        ([row(1, rating=None)], manifest(1, 1), "1 NULL productRating"),
        ([row(None)], manifest(1, 1), "NULL customerNumber"),
        ([row(1), row(2)], manifest(2, 1), "manifest says 1 partitions, its files are in 2 folders"),
        ([row(1), row(2)], manifest(2, 2, customers=3), "2 partitions for 3 customers"),
        ([row(1)], manifest(1, 1, excluded={"rating_out_of_range": 5}), "source looks corrupted"),
    ],
)
def test_each_broken_property_is_reported(tmp_path, rows, meta, message):
    with pytest.raises(DataQualityError, match=message):
        check_dataset(meta, write_dataset(tmp_path, rows))


def test_drift_beyond_the_tolerance_fails_with_both_counts(tmp_path):
    files = write_dataset(tmp_path, [row(1), row(2)])
    with pytest.raises(DataQualityError, match=r"source drift \+50\.00%: the source now has 3 .* the run wrote 2"):
        check_dataset(manifest(2, 2), files, source_rows=3, max_source_drift=0.1)


def test_a_wrong_schema_is_reported_with_the_file(tmp_path):
    schema = FILE_SCHEMA.set(4, pa.field("creditLimit", pa.float64()))
    rows = [row(1, credit=1.0)]
    with pytest.raises(DataQualityError, match=r"customerNumber=1/run-1-part-0\.parquet: schema"):
        check_dataset(manifest(1, 1), write_dataset(tmp_path, rows, schema))


@mock_aws
@pytest.mark.parametrize("tail_bytes", [64 * 1024, 16])
def test_footers_come_from_ranged_reads_of_the_files_end(tmp_path, tail_bytes):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="lake")
    files = write_dataset(tmp_path, [row(1), row(1, "S10_2", 5)])
    s3.upload_file(str(tmp_path / files[0].key), "lake", files[0].key)
    metadata = read_footer(s3, "lake", files[0].key, tail_bytes=tail_bytes)
    summary = FileSummary.from_metadata(files[0].key, metadata)
    assert summary == files[0]
    assert (summary.rows, summary.rating_range, summary.nulls["productCode"]) == (2, (4, 5), 0)
    s3.put_object(Bucket="lake", Key="not-parquet.csv", Body=b"id,embedding\n" * 10)
    with pytest.raises(DataQualityError, match="not a Parquet file"):
        read_footer(s3, "lake", "not-parquet.csv")
