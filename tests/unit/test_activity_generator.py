"""The activity generator (recsys.streaming.generator): the source's rows as the driver returns them become events the
published JSON Schema accepts."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from recsys.streaming.generator import load_catalog, make_event
from recsys_serving.events import SCHEMA_PATH

SCHEMA = Draft202012Validator(json.loads(SCHEMA_PATH.read_text()), format_checker=FormatChecker())
CUSTOMERS = [(103, "Nantes", "France", Decimal("21000.00")), (125, "Warszawa", "Poland", None)]
PRODUCTS = [
    ("S10_1678", "Motorcycles", "1:10", 7933, Decimal("48.81"), Decimal("95.70")),
    ("S24_2000", "Motorcycles", "1:24", 15, Decimal("34.21"), Decimal("76.17")),
]


@pytest.fixture
def source(monkeypatch):
    """MySqlHook answering the generator's two queries with rows typed as pymysql returns them."""
    import airflow.providers.mysql.hooks.mysql as mysql_hooks

    class Hook:
        def __init__(self, mysql_conn_id: str) -> None:
            self.conn_id = mysql_conn_id

        def get_records(self, sql: str) -> list[tuple]:
            return CUSTOMERS if "FROM customers" in sql else PRODUCTS

    monkeypatch.setattr(mysql_hooks, "MySqlHook", Hook)


def test_the_catalogs_products_are_browsed_items_in_plain_json_types(source):
    customers, products = load_catalog("mysql_source")
    assert customers[1] == {"customer_number": 125, "city": "Warszawa", "country": "Poland", "credit_limit": None}
    assert products[0] == {
        "product_code": "S10_1678",
        "product_line": "Motorcycles",
        "product_scale": "1:10",
        "quantity_in_stock": 7933,
        "buy_price": 48.81,
        "msrp": 95.7,
        "in_shopping_cart": False,
    }


def test_generated_events_are_what_the_schema_accepts(source):
    customers, products = load_catalog("mysql_source")
    rng = random.Random(3)
    for _ in range(50):
        event = json.loads(json.dumps(make_event(rng, customers, products)))
        assert SCHEMA.is_valid(event), list(SCHEMA.iter_errors(event))
        assert {item["product_code"] for item in event["browse_history"]} <= {"S10_1678", "S24_2000"}
