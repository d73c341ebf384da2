"""The Lambda's event parser accepts and rejects exactly what the published JSON Schema does."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from recsys.streaming.events import SCHEMA_PATH, EventError, parse_event

SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FormatChecker())

item = st.fixed_dictionaries(
    {
        "product_code": st.text(min_size=1, max_size=15),
        "product_line": st.text(min_size=1, max_size=20),
        "product_scale": st.sampled_from(["1:10", "1:18", "1:700"]),
        "quantity_in_stock": st.integers(0, 10_000),
        "buy_price": st.floats(0, 1000, allow_nan=False),
        "msrp": st.floats(0, 2000, allow_nan=False),
        "in_shopping_cart": st.booleans(),
    }
)
valid_event = st.fixed_dictionaries(
    {
        "session_id": st.text(min_size=1, max_size=40),
        "customer_number": st.integers(-10, 10**9),
        "city": st.text(min_size=1, max_size=20),
        "country": st.text(min_size=1, max_size=20),
        "credit_limit": st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
        "event_time": st.sampled_from(["2026-11-26T10:00:00Z", "2026-11-26T10:00:00.123+01:00"]),
        "browse_history": st.lists(item, min_size=1, max_size=5),
    }
)
bad_values = st.sampled_from([None, "", "x", -1, 1.5, True, [], {}, "2026-11-26 10:00"])


@st.composite
def mutated_event(draw):
    event = draw(valid_event)
    target = draw(st.sampled_from(["top", "item", "none"]))
    if target == "top":
        key = draw(st.sampled_from(sorted(SCHEMA["required"])))
        if draw(st.booleans()):
            event.pop(key)
        else:
            event[key] = draw(bad_values)
    elif target == "item":
        entry = event["browse_history"][0]
        key = draw(st.sampled_from(sorted(entry)))
        if draw(st.booleans()):
            entry.pop(key)
        else:
            entry[key] = draw(bad_values)
    return event


def schema_accepts(event) -> bool:
    return VALIDATOR.is_valid(event)


def parser_accepts(event) -> bool:
    try:
        parse_event(event)
        return True
    except EventError:
        return False


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_event())
def test_parser_agrees_with_the_schema(event):
    assert parser_accepts(event) == schema_accepts(event), json.dumps(event)[:500]


@given(valid_event)
def test_valid_events_parse_with_their_values(event):
    parsed = parse_event(event)
    assert parsed.session_id == event["session_id"]
    assert len(parsed.browse_history) == len(event["browse_history"])
    cart = [i["product_code"] for i in event["browse_history"] if i["in_shopping_cart"]]
    assert parsed.anchor_items() == (list(dict.fromkeys(cart)) or [event["browse_history"][-1]["product_code"]])


def test_errors_name_the_field():
    event = {
        "session_id": "s",
        "customer_number": 1,
        "city": "Paris",
        "country": "France",
        "credit_limit": None,
        "event_time": "2026-11-26T10:00:00Z",
        "browse_history": [
            {
                "product_code": "S10_1",
                "product_line": "Ships",
                "product_scale": "1:10",
                "quantity_in_stock": 1,
                "buy_price": 1.0,
                "msrp": "cheap",
                "in_shopping_cart": False,
            }
        ],
    }
    with pytest.raises(EventError, match=r"browse_history\[0\]\.msrp: expected a number"):
        parse_event(event)
