"""The ETL benchmark's DuckDB reference runs the job's own transformation SQL and keeps only the valid rows."""

from __future__ import annotations

import time

import pytest

from recsys.config import TRAINING_COLUMNS

duckdb = pytest.importorskip("duckdb")


def test_the_reference_writes_the_valid_rows_partitioned_like_the_job(tmp_path):
    from recsys_local.bench.etl import duckdb_reference

    (tmp_path / "ratings.tsv").write_text(
        "customerNumber\tproductCode\tproductRating\n103\tS10_1\t5\n103\tS10_2\t9\n999\tS10_1\t4\n112\tS10_1\tNULL\n"
    )
    (tmp_path / "customers.tsv").write_text(
        "customerNumber\tcity\tstate\tpostalCode\tcountry\tcreditLimit\n"
        "103\tNantes\tNULL\t04000\tFrance\t21000.00\n112\tNYC\tNY\t10022\tUSA\t0.00\n"
    )
    (tmp_path / "products.tsv").write_text(
        "productCode\tproductLine\tproductScale\tquantityInStock\tbuyPrice\tMSRP\n"
        "S10_1\tClassic Cars\t1:10\t7933\t48.81\t95.70\nS10_2\tMotorcycles\t1:10\t10\t1.00\t2.00\n"
    )
    started = time.perf_counter()
    seconds, out, files = duckdb_reference(tmp_path, "customer", 64)
    elapsed = time.perf_counter() - started
    assert files == 1
    assert 0 < seconds <= elapsed  # the time of the work done in this call, not a figure from elsewhere
    [path] = out.rglob("*.parquet")
    assert path.parent.name == "customerNumber=103"
    rows = duckdb.sql(f"SELECT * FROM read_parquet('{out}/**/*.parquet', hive_partitioning=true)").fetchall()
    columns = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{out}/**/*.parquet', hive_partitioning=true)")
    names = [c[0] for c in columns.fetchall()]
    assert sorted(names) == sorted(TRAINING_COLUMNS)
    record = dict(zip(names, rows[0], strict=True))
    assert len(rows) == 1  # the out-of-range rating, the unknown customer and the NULL rating are excluded
    assert (record["customerNumber"], record["productCode"], record["productRating"]) == (103, "S10_1", 5)
    assert record["postalCode"] == "04000"  # text stays text
    assert str(record["MSRP"]) == "95.70"
