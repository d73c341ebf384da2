"""The user-activity event (schema: ``user_activity_event.schema.json``) and its strict parser.

The parser runs in the Lambda, where jsonschema is not packaged; tests check that it accepts and rejects exactly
what the JSON Schema does (jsonschema's ``date-time`` format: RFC 3339 as ``rfc3339-validator`` reads it, case
insensitive, no leap seconds), property tests drawing from the whole RFC 3339 grammar and its near misses. Errors
name the field (``browse_history[2].msrp``) and what is wrong. Numeric bounds are the source columns' ranges.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("user_activity_event.schema.json")

MAX_INT = 2_147_483_647
MAX_SMALLINT = 32_767
MAX_DECIMAL_10_2 = 99_999_999.99

#: RFC 3339 ``date-time`` (section 5.6) as the schema's format checker reads it (on the upper-cased text).
RFC3339 = re.compile(
    r"^(\d{4})-(0[1-9]|1[0-2])-(\d{2})T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$",
    re.ASCII,
)


def is_rfc3339(value: str) -> bool:
    """A full date (real day of month, year 1-9999), ``T``, a time with seconds, then ``Z`` or ``+hh:mm``."""
    match = RFC3339.match(value.upper())
    if match is None:
        return False
    year, month, day = (int(g) for g in match.groups())
    return year > 0 and 1 <= day <= calendar.monthrange(year, month)[1]


#: A browsed item's product fields, each with the source ``products`` column it carries (the training data's name too,
#: so the item tower's feature names) and its JSON type. The one mapping between the two namings.
PRODUCT_FIELDS: dict[str, tuple[str, type]] = {
    "product_code": ("productCode", str),
    "product_line": ("productLine", str),
    "product_scale": ("productScale", str),
    "quantity_in_stock": ("quantityInStock", int),
    "buy_price": ("buyPrice", float),
    "msrp": ("MSRP", float),
}
#: The source ``products`` columns a browsed item is built from, in the schema's order.
PRODUCT_COLUMNS: tuple[str, ...] = tuple(column for column, _ in PRODUCT_FIELDS.values())


def browsed_item(product: Mapping[str, Any], in_shopping_cart: bool = False) -> dict[str, Any]:
    """One ``browse_history`` entry of the event from a row of the source's ``products`` table, keyed by its column
    names (:data:`PRODUCT_COLUMNS`; a dict, a pandas row): the values in their JSON types (a database ``Decimal`` or
    a numpy integer becomes a number JSON can hold), then ``in_shopping_cart``."""
    item = {field: kind(product[column]) for field, (column, kind) in PRODUCT_FIELDS.items()}
    item["in_shopping_cart"] = bool(in_shopping_cart)
    return item


class EventError(ValueError):
    """The event breaks the schema; the message names the field."""


@dataclass(frozen=True)
class BrowsedItem:
    product_code: str
    product_line: str
    product_scale: str
    quantity_in_stock: int
    buy_price: float
    msrp: float
    in_shopping_cart: bool

    def features(self) -> dict[str, Any]:
        """The item tower's raw features (every product field but the code), keyed like the training data."""
        return {
            column: getattr(self, field) for field, (column, _) in PRODUCT_FIELDS.items() if field != "product_code"
        }


@dataclass(frozen=True)
class UserActivityEvent:
    session_id: str
    customer_number: int
    city: str
    country: str
    credit_limit: float | None
    event_time: str
    browse_history: tuple[BrowsedItem, ...]

    def to_json(self) -> dict[str, Any]:
        """The event in its schema's shape (what the output line keeps next to the recommendations): the fields are
        named as the schema's properties."""
        data = asdict(self)
        data["browse_history"] = list(data["browse_history"])
        return data

    def user_features(self) -> dict[str, Any]:
        return {"city": self.city, "country": self.country, "creditLimit": self.credit_limit}

    def anchor_items(self) -> list[str]:
        """Items to find similar ones for: those in the cart, else the most recently browsed one."""
        cart = [item.product_code for item in self.browse_history if item.in_shopping_cart]
        return list(dict.fromkeys(cart)) or [self.browse_history[-1].product_code]


def _string(data: dict[str, Any], key: str, where: str, max_length: int | None = None) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise EventError(f"{where}{key}: expected a non-empty string, got {value!r}")
    if max_length is not None and len(value) > max_length:
        raise EventError(f"{where}{key}: longer than {max_length} characters")
    return value


def _integer(data: dict[str, Any], key: str, where: str, minimum: int, maximum: int) -> int:
    value = data.get(key)
    if isinstance(value, float) and value.is_integer():  # JSON Schema: 3.0 is an integer
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError(f"{where}{key}: expected an integer, got {value!r}")
    if not minimum <= value <= maximum:
        raise EventError(f"{where}{key}: must be between {minimum} and {maximum}, got {value}")
    return value


def _number(data: dict[str, Any], key: str, where: str, maximum: float, nullable: bool = False) -> float | None:
    value = data.get(key)
    if value is None and nullable and key in data:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError(f"{where}{key}: expected a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise EventError(f"{where}{key}: must be finite")
    if not 0 <= value <= maximum:
        raise EventError(f"{where}{key}: must be between 0 and {maximum}, got {value}")
    return float(value)


def parse_event(data: Any) -> UserActivityEvent:
    """Validate a decoded JSON event; raise :class:`EventError` naming the first bad field."""
    if not isinstance(data, dict):
        raise EventError(f"event: expected a JSON object, got {type(data).__name__}")
    event_time = data.get("event_time")
    if not isinstance(event_time, str):
        raise EventError(f"event_time: expected a string, got {event_time!r}")
    if not is_rfc3339(event_time):
        raise EventError(
            f"event_time: not an RFC 3339 date-time (like 2026-11-27T10:00:00Z or ...+01:00): {event_time[:40]!r}"
        )
    history = data.get("browse_history")
    if not isinstance(history, list) or not 1 <= len(history) <= 100:
        raise EventError("browse_history: expected a list of 1 to 100 items")
    items = []
    for index, raw in enumerate(history):
        where = f"browse_history[{index}]."
        if not isinstance(raw, dict):
            raise EventError(f"browse_history[{index}]: expected an object")
        cart = raw.get("in_shopping_cart")
        if not isinstance(cart, bool):
            raise EventError(f"{where}in_shopping_cart: expected true or false, got {cart!r}")
        items.append(
            BrowsedItem(
                product_code=_string(raw, "product_code", where, 15),
                product_line=_string(raw, "product_line", where),
                product_scale=_string(raw, "product_scale", where),
                quantity_in_stock=_integer(raw, "quantity_in_stock", where, 0, MAX_SMALLINT),
                buy_price=_number(raw, "buy_price", where, MAX_DECIMAL_10_2) or 0.0,
                msrp=_number(raw, "msrp", where, MAX_DECIMAL_10_2) or 0.0,
                in_shopping_cart=cart,
            )
        )
    if "credit_limit" not in data:
        raise EventError("credit_limit: missing (use null when unknown)")
    return UserActivityEvent(
        session_id=_string(data, "session_id", "", 128),
        customer_number=_integer(data, "customer_number", "", 0, MAX_INT),
        city=_string(data, "city", ""),
        country=_string(data, "country", ""),
        credit_limit=_number(data, "credit_limit", "", MAX_DECIMAL_10_2, nullable=True),
        event_time=event_time,
        browse_history=tuple(items),
    )
