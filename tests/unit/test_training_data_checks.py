"""The quality checks on a published dataset catch each kind of broken data."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from recsys.etl.glue_job import TRAINING_SCHEMA
from recsys.etl.training_data import DataQualityError, _arrow_type, check_dataset

SCHEMA = pa.schema([(n, _arrow_type(t)) for n, t in TRAINING_SCHEMA])


def table(rows):
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in TRAINING_SCHEMA]
    return pa.table({f.name: pa.array(list(col), f.type) for f, col in zip(SCHEMA, columns, strict=True)})


def row(customer=1, product="S10_1", rating=4):
    return (
        customer,
        "Nantes",
        None,
        "44000",
        "France",
        Decimal("1.00"),
        product,
        "Ships",
        "1:700",
        5,
        Decimal("2.00"),
        Decimal("3.00"),
        rating,
    )


def manifest(rows, partitions, excluded=None, input_rows=None):
    return {
        "schema": [{"name": n, "type": t} for n, t in TRAINING_SCHEMA],
        "output_rows": rows,
        "partition_column": "customerNumber",
        "partition_count": partitions,
        "excluded": excluded or {"null_key": 0},
        "input_rows": input_rows if input_rows is not None else rows,
    }


def test_a_good_dataset_passes():
    data = table([row(1), row(2, "S10_2")])
    report = check_dataset(data, manifest(2, 2), source_rows=2, source_customers=2)
    assert (report.rows, report.customers) == (2, 2)


@pytest.mark.parametrize(
    ("data", "meta", "source", "message"),
    [
        (table([row(1)]), manifest(1, 1), (2, 1), "1 rows, but the source has 2"),
        (table([row(1, rating=7)]), manifest(1, 1), (1, 1), "ratings outside 1..5"),
        (table([row(None)]), manifest(1, 1), (1, 1), "NULL customerNumber"),
        (table([row(1), row(2)]), manifest(2, 1), (2, 2), "1 partitions for 2 customers"),
        (table([row(1)]), manifest(1, 1, {"rating_out_of_range": 5}, 6), (1, 1), "source looks corrupted"),
    ],
)
def test_each_broken_property_is_reported(data, meta, source, message):
    with pytest.raises(DataQualityError, match=message):
        check_dataset(data, meta, *source)


def test_a_wrong_schema_is_reported():
    data = table([row(1)]).cast(SCHEMA.set(5, pa.field("creditLimit", pa.float64())))
    with pytest.raises(DataQualityError, match="schema"):
        check_dataset(data, manifest(1, 1), 1, 1)
