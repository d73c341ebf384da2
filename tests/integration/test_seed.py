"""Seeding the real MariaDB source: schema, counts, data contract, and loading a classicmodels dump."""

from __future__ import annotations

import subprocess

import pytest

from recsys.localstack import mariadb
from recsys.localstack.process import StackError
from recsys.seed.generator import SeedSpec
from recsys.seed.loader import load_sql_dump, seed

pytestmark = pytest.mark.integration

EXPECTED_TYPES = {
    ("customers", "city"): ("varchar(50)", "NO"),
    ("customers", "state"): ("varchar(50)", "YES"),
    ("customers", "postalCode"): ("varchar(15)", "YES"),
    ("customers", "creditLimit"): ("decimal(10,2)", "YES"),
    ("products", "productScale"): ("varchar(10)", "NO"),
    ("products", "quantityInStock"): ("smallint(6)", "NO"),
    ("products", "buyPrice"): ("decimal(10,2)", "NO"),
    ("products", "MSRP"): ("decimal(10,2)", "NO"),
    ("ratings", "productRating"): ("int(11)", "NO"),
}


def query(cfg, sql):
    with mariadb.connect(cfg) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


@pytest.fixture(scope="module")
def seeded(stack):
    cfg = stack.mariadb()
    counts = seed(cfg, SeedSpec())
    return cfg, counts


def test_tables_and_column_types_match_the_sample(seeded):
    cfg, counts = seeded
    assert set(counts) == {
        "productlines",
        "products",
        "offices",
        "employees",
        "customers",
        "orders",
        "orderdetails",
        "payments",
        "ratings",
    }
    rows = query(
        cfg,
        "SELECT table_name, column_name, column_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = DATABASE()",
    )
    types = {(t, c): (ty, n) for t, c, ty, n in rows}
    for key, expected in EXPECTED_TYPES.items():
        assert types[key] == expected, key


def test_ratings_are_valid_and_on_purchased_pairs(seeded):
    cfg, counts = seeded
    assert counts["ratings"] >= 2000
    assert query(cfg, "SELECT MIN(productRating), MAX(productRating) FROM ratings")[0] == (1, 5)
    (orphans,) = query(
        cfg,
        "SELECT COUNT(*) FROM ratings r WHERE NOT EXISTS (SELECT 1 FROM orders o JOIN orderdetails d "
        "ON d.orderNumber = o.orderNumber WHERE o.customerNumber = r.customerNumber AND d.productCode = r.productCode)",
    )[0]
    assert orphans == 0


def test_reseeding_replaces_rather_than_appends(seeded):
    cfg, counts = seeded
    again = seed(cfg, SeedSpec())
    assert again == counts


def test_a_dump_without_ratings_loads_and_gets_derived_ratings(stack, seeded, tmp_path):
    cfg, counts = seeded
    dump = tmp_path / "classicmodels.sql"
    tables = ["productlines", "products", "offices", "employees", "customers", "payments", "orders", "orderdetails"]
    with open(dump, "w") as out:
        subprocess.run(
            ["mariadb-dump", *mariadb.client_args(cfg), "--databases", cfg.database, "--tables", *tables],
            stdout=out,
            env=mariadb.client_env(),
            check=True,
        )
    mariadb.root_sql(cfg, f"DROP DATABASE `{cfg.database}`; CREATE DATABASE `{cfg.database}`;")
    loaded = load_sql_dump(cfg, dump)
    assert loaded["customers"] == counts["customers"]
    pairs = query(
        cfg,
        "SELECT COUNT(DISTINCT o.customerNumber, d.productCode) FROM orders o "
        "JOIN orderdetails d ON d.orderNumber = o.orderNumber",
    )[0][0]
    assert loaded["ratings"] == pairs
    assert query(cfg, "SELECT MIN(productRating) >= 1 AND MAX(productRating) <= 5 FROM ratings")[0][0] == 1


def test_a_broken_dump_names_the_file_and_line(stack, tmp_path):
    dump = tmp_path / "broken.sql"
    dump.write_text("CREATE TABLE ok_table (id int);\nTHIS IS NOT SQL;\n")
    with pytest.raises(StackError, match=r"broken\.sql: .*at line 2"):
        load_sql_dump(stack.mariadb(), dump)
    mariadb.root_sql(stack.mariadb(), f"DROP TABLE IF EXISTS `{stack.mariadb().database}`.ok_table;")
