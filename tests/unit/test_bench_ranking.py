"""The ranking benchmark's pieces: the public dump read as data (never run), peers ranking the model's own candidates,
and one dataset/seed measured end to end with implicit's peers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_model import training_frame

from recsys_local.bench.ranking import PublicDumpError, _peer_orders, measure, public_sample_frame, table
from recsys_local.seed.generator import SeedSpec, derive_ratings

pytest.importorskip("implicit")


def insert(table: str, columns: str) -> str:
    """The published dump's INSERT head: two spaces, back-quoted names, rows on the following lines."""
    return f"insert  into `{table}`(" + ",".join(f"`{c}`" for c in columns.split()) + ") values "


DUMP = "\n".join(
    [
        "/* classicmodels, as published */",
        "CREATE DATABASE /*!32312 IF NOT EXISTS*/`classicmodels` /*!40100 DEFAULT CHARACTER SET latin1 */;",
        "USE `classicmodels`;",
        insert(
            "customers",
            "customerNumber customerName contactLastName contactFirstName phone addressLine1 addressLine2 city state "
            "postalCode country salesRepEmployeeNumber creditLimit",
        ),
        r"(103,'Atelier graphique','Schmitt','Carine ','40.32.2555','54, rue Royale',NULL,'Nantes',NULL,'44000',"
        r"'France',1370,'21000.00'),",
        r"(112,'O\'Reilly; Sons','King','Jean','7025551838','8489 Strong St.',NULL,'Las Vegas','NV','83030','USA',"
        r"1166,'71800.00');",
        insert(
            "products",
            "productCode productName productLine productScale productVendor productDescription quantityInStock "
            "buyPrice MSRP",
        ),
        r"('S10_1678','1969 Harley Davidson Ultimate Chopper','Motorcycles','1:10','Min Lin Diecast',"
        r"'A replica; $(touch pwned)',7933,'48.81','95.70'),",
        r"('S10_1949','1952 Alpine Renault 1300','Classic Cars','1:10','Classic Metal Creations',"
        r"'Turnable front wheels',7305,'98.58','214.30');",
        insert("orders", "orderNumber orderDate requiredDate shippedDate status comments customerNumber"),
        "(10100,'2003-01-06','2003-01-13','2003-01-10','Shipped',NULL,103),",
        "(10101,'2003-01-09','2003-01-18','2003-01-11','Shipped','Check on availability.',112);",
        insert("orderdetails", "orderNumber productCode quantityOrdered priceEach orderLineNumber"),
        "(10100,'S10_1678',30,'136.00',3),",
        "(10100,'S10_1949',50,'55.09',2),",
        "(10101,'S10_1949',25,'108.06',4),",
        "(10101,'S10_1949',26,'108.06',5);",
    ]
)


def test_the_public_dump_is_read_as_data(tmp_path):
    dump = tmp_path / "mysqlsampledatabase.sql"
    dump.write_text(DUMP)
    frame = public_sample_frame(dump, rating_seed=42)
    # three distinct purchased pairs (10101 orders S10_1949 twice), each with the sample's features
    assert sorted(zip(frame.customerNumber, frame.productCode, strict=True)) == [
        (103, "S10_1678"),
        (103, "S10_1949"),
        (112, "S10_1949"),
    ]
    row = frame[frame.customerNumber == 112].iloc[0]
    assert (row.city, row.state, row.country, row.creditLimit) == ("Las Vegas", "NV", "USA", 71800.0)
    assert pd.isna(frame[frame.customerNumber == 103].iloc[0].state)
    assert set(frame.MSRP) == {95.70, 214.30}
    customers = pd.DataFrame(
        {"customerNumber": [103, 112], "country": ["France", "USA"], "creditLimit": [21000.0, 71800.0]}
    )
    products = pd.DataFrame(
        {
            "productCode": ["S10_1678", "S10_1949"],
            "productLine": ["Motorcycles", "Classic Cars"],
            "productScale": ["1:10", "1:10"],
            "buyPrice": [48.81, 98.58],
            "MSRP": [95.70, 214.30],
        }
    )
    pairs = pd.DataFrame({"customerNumber": [103, 103, 112], "productCode": ["S10_1678", "S10_1949", "S10_1949"]})
    expected = derive_ratings(pairs, customers, products, 42)
    merged = frame.merge(expected, on=["customerNumber", "productCode"], suffixes=("", "_expected"))
    assert (merged.productRating == merged.productRating_expected).all()
    assert not (tmp_path / "pwned").exists()


def test_a_file_that_is_not_the_dump_is_refused_naming_what_is_missing(tmp_path):
    dump = tmp_path / "other.sql"
    dump.write_text(DUMP.split("insert  into `orders`")[0])
    with pytest.raises(PublicDumpError, match=r"other\.sql: no INSERT rows for orderdetails, orders"):
        public_sample_frame(dump)


def test_a_binary_file_or_a_missing_column_is_refused_naming_the_file(tmp_path):
    binary = tmp_path / "dump.sql.gz"
    binary.write_bytes(b"\x1f\x8b\x08\x00\xff\xfe")
    with pytest.raises(PublicDumpError, match=r"dump\.sql\.gz: not UTF-8 text \(byte 1\)"):
        public_sample_frame(binary)
    renamed = tmp_path / "renamed.sql"
    renamed.write_text(DUMP.replace("`creditLimit`", "`credit`"))
    with pytest.raises(PublicDumpError, match=r"renamed\.sql: table customers has no column creditLimit"):
        public_sample_frame(renamed)


def test_a_peer_orders_the_models_candidates_unknown_items_last_by_code():
    orders = _peer_orders(
        lambda customer: {"b": 0.5, "c": 0.9} if customer == 1 else {},
        [1, 2],
        [{"model": ["d", "c", "a", "b"]}, {"model": ["b", "a"]}],
    )
    assert orders == [["c", "b", "a", "d"], ["a", "b"]]


def test_one_dataset_and_seed_measured_beside_the_peers():
    frame = training_frame(SeedSpec(customers=150, products=80, ratings=3500, seed=5))
    r = measure(frame, seed=3)
    warm, cold = r["test"], r["cold_start"]
    assert warm["users"] > 20
    assert cold["users"] > 0
    for name in ("model", "als", "bpr", "item_knn", "most_popular", "random"):
        assert 0 <= warm[name].ndcg <= 1
        assert len(warm[name].per_user) == warm["users"]
    assert warm["als"].params in __import__("recsys_local.bench.ranking", fromlist=["GRIDS"]).GRIDS["als"]
    best = max(("als", "bpr"), key=lambda name: warm[name].ndcg)
    versus = r["versus_best_peer"]
    assert versus["peer"] == best
    assert versus["difference"] == pytest.approx(np.mean(warm["model"].per_user) - np.mean(warm[best].per_user))
    assert versus["interval_95"][0] <= versus["difference"] <= versus["interval_95"][1]
    assert "als" not in cold  # the peers cannot embed a customer they never saw
    rendered = table({"generated": {3: r}})
    assert "| generated | 3 |" in rendered
    assert "n/a" in rendered
