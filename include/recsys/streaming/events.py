"""The user-activity event (schema: ``user_activity_event.schema.json``) and its strict parser.

The parser runs in the Lambda, where jsonschema is not packaged; tests check that it accepts and rejects exactly
what the JSON Schema does. Errors name the field (``browse_history[2].msrp``) and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("user_activity_event.schema.json")


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

    def to_json(self) -> dict[str, Any]:
        return {
            "product_code": self.product_code,
            "product_line": self.product_line,
            "product_scale": self.product_scale,
            "quantity_in_stock": self.quantity_in_stock,
            "buy_price": self.buy_price,
            "msrp": self.msrp,
            "in_shopping_cart": self.in_shopping_cart,
        }

    def features(self) -> dict[str, Any]:
        """The item tower's raw features, keyed like the training data."""
        return {
            "productLine": self.product_line,
            "productScale": self.product_scale,
            "quantityInStock": self.quantity_in_stock,
            "buyPrice": self.buy_price,
            "MSRP": self.msrp,
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
        """The event in its schema's shape (what the output line keeps next to the recommendations)."""
        return {
            "session_id": self.session_id,
            "customer_number": self.customer_number,
            "city": self.city,
            "country": self.country,
            "credit_limit": self.credit_limit,
            "event_time": self.event_time,
            "browse_history": [item.to_json() for item in self.browse_history],
        }

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


def _integer(data: dict[str, Any], key: str, where: str, minimum: int | None = None) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError(f"{where}{key}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise EventError(f"{where}{key}: must be >= {minimum}, got {value}")
    return value


def _number(data: dict[str, Any], key: str, where: str, nullable: bool = False) -> float | None:
    value = data.get(key)
    if value is None and nullable and key in data:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError(f"{where}{key}: expected a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise EventError(f"{where}{key}: must be finite")
    if value < 0:
        raise EventError(f"{where}{key}: must be >= 0, got {value}")
    return float(value)


def parse_event(data: Any) -> UserActivityEvent:
    """Validate a decoded JSON event; raise :class:`EventError` naming the first bad field."""
    if not isinstance(data, dict):
        raise EventError(f"event: expected a JSON object, got {type(data).__name__}")
    event_time = _string(data, "event_time", "")
    try:
        parsed_time = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    except ValueError:
        raise EventError(f"event_time: not an ISO 8601 date-time: {event_time!r}") from None
    if parsed_time.tzinfo is None:
        raise EventError(f"event_time: needs a time zone: {event_time!r}")
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
                quantity_in_stock=_integer(raw, "quantity_in_stock", where, 0),
                buy_price=_number(raw, "buy_price", where) or 0.0,
                msrp=_number(raw, "msrp", where) or 0.0,
                in_shopping_cart=cart,
            )
        )
    if "credit_limit" not in data:
        raise EventError("credit_limit: missing (use null when unknown)")
    return UserActivityEvent(
        session_id=_string(data, "session_id", "", 128),
        customer_number=_integer(data, "customer_number", ""),
        city=_string(data, "city", ""),
        country=_string(data, "country", ""),
        credit_limit=_number(data, "credit_limit", "", nullable=True),
        event_time=event_time,
        browse_history=tuple(items),
    )
