"""The Lambda's event parser accepts and rejects exactly what the published JSON Schema does."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from recsys_serving.events import SCHEMA_PATH, EventError, browsed_item, parse_event

SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FormatChecker())

item = st.fixed_dictionaries(
    {
        "product_code": st.text(min_size=1, max_size=15),
        "product_line": st.text(min_size=1, max_size=20),
        "product_scale": st.sampled_from(["1:10", "1:18", "1:700"]),
        "quantity_in_stock": st.integers(0, 32_767),
        "buy_price": st.floats(0, 1000, allow_nan=False),
        "msrp": st.floats(0, 2000, allow_nan=False),
        "in_shopping_cart": st.booleans(),
    }
)
valid_event = st.fixed_dictionaries(
    {
        "session_id": st.text(min_size=1, max_size=40),
        "customer_number": st.integers(0, 10**9),
        "city": st.text(min_size=1, max_size=20),
        "country": st.text(min_size=1, max_size=20),
        "credit_limit": st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
        "event_time": st.sampled_from(
            ["2026-11-26T10:00:00Z", "2026-11-26T10:00:00.123+01:00", "2024-02-29t23:59:59z"]
        ),
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
    event = with_time("2026-11-26T10:00:00Z")
    event["browse_history"][0]["msrp"] = "cheap"
    with pytest.raises(EventError, match=r"browse_history\[0\]\.msrp: expected a number"):
        parse_event(event)


# --- RFC 3339 date-times: the whole grammar and its near misses -------------------------------------------------


def two(low: int, high: int):
    return st.integers(low, high).map(lambda n: f"{n:02d}")


fraction = st.one_of(
    st.just(""),
    st.text(alphabet="0123456789", min_size=1, max_size=12).map(lambda d: "." + d),
    st.sampled_from([".", ",5", ".5.5", ".\u0665"]),
)
offset = st.one_of(
    st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+0100", "+01", "UTC", "Z\n", "\nZ", " Z", "+01:00:00"]),
    st.builds(lambda sign, h, m: f"{sign}{h}:{m}", st.sampled_from(["+", "-", "\u2212"]), two(0, 25), two(0, 61)),
)
date_time = st.builds(
    lambda y, mo, d, sep, h, mi, sec, frac, off: f"{y}-{mo}-{d}{sep}{h}:{mi}{sec}{frac}{off}",
    st.one_of(st.integers(0, 9999).map(lambda n: f"{n:04d}"), st.sampled_from(["999", "10000", "+2026", "２０２６"])),
    two(0, 13),
    two(0, 32),
    st.sampled_from(["T", "t", " ", "_", ""]),
    two(0, 25),
    two(0, 61),
    st.one_of(two(0, 61).map(lambda x: ":" + x), st.just("")),
    fraction,
    offset,
)
near_misses = st.sampled_from(
    [
        "2026-11-26T10:00Z",  # no seconds
        "20261126T100000Z",  # basic format
        "2026-W48-4T10:00:00Z",  # week date
        "2026-330T10:00:00Z",  # ordinal date
        "2026-11-26",  # date only
        "10:00:00Z",  # time only
        "2026-11-26T10:00:00",  # no offset
        "2026-02-29T10:00:00Z",  # not a leap year
        "2024-02-29T10:00:00Z",  # a leap year
        "2026-06-30T23:59:60Z",  # a leap second
        "0000-01-01T00:00:00Z",  # year zero
        "2026-11-26T10:00:00Z\n",
        "\u0662026-11-26T10:00:00Z",
    ]
)


@st.composite
def mutated(draw, strategy):
    text = draw(strategy)
    if text and draw(st.booleans()):
        index = draw(st.integers(0, len(text) - 1))
        text = text[:index] + draw(st.sampled_from(["", "0", "T", ":", "-", "Z", "ß", "\u0131"])) + text[index + 1 :]
    return text


def with_time(event_time: str) -> dict:
    return {
        "session_id": "s",
        "customer_number": 1,
        "city": "Paris",
        "country": "France",
        "credit_limit": None,
        "event_time": event_time,
        "browse_history": [
            {
                "product_code": "S10_1",
                "product_line": "Ships",
                "product_scale": "1:10",
                "quantity_in_stock": 1,
                "buy_price": 1.0,
                "msrp": 2.0,
                "in_shopping_cart": False,
            }
        ],
    }


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(st.one_of(date_time, near_misses)))
def test_event_time_is_accepted_exactly_when_the_schema_accepts_it(event_time):
    event = with_time(event_time)
    assert parser_accepts(event) == schema_accepts(event), repr(event_time)


@pytest.mark.parametrize(
    ("event_time", "accepted"),
    [
        ("2026-11-26T10:00:00Z", True),
        ("2026-11-26t10:00:00.123456789+05:30", True),
        ("2024-02-29T23:59:59-00:00", True),
        ("2026-11-26T10:00Z", False),
        ("20261126T100000Z", False),
        ("2026-W48-4T10:00:00Z", False),
        ("2026-11-26T10:00:00", False),
        ("2026-02-29T10:00:00Z", False),
        ("2026-06-30T23:59:60Z", False),
    ],
)
def test_the_loose_iso_forms_are_rejected_with_the_field_named(event_time, accepted):
    assert schema_accepts(with_time(event_time)) is accepted  # the schema is the reference
    if accepted:
        parse_event(with_time(event_time))
    else:
        with pytest.raises(EventError, match="event_time: not an RFC 3339 date-time"):
            parse_event(with_time(event_time))


# --- numeric bounds -------------------------------------------------------------------------------------------------

NUMERIC = [
    ("customer_number", None, [-1, 0, 2147483647, 2147483648, 3.0, 3.5]),
    ("credit_limit", None, [0, 99999999.99, 99999999.991, 1e300, -0.01, None]),
    ("quantity_in_stock", 0, [0, 32767, 32768, -1, 7.0]),
    ("buy_price", 0, [0.0, 99999999.99, 1e9, -1e-9]),
    ("msrp", 0, [99999999.99, 100000000, float("inf")]),
]


@pytest.mark.parametrize(("field", "item", "value"), [(f, i, v) for f, i, values in NUMERIC for v in values])
def test_numeric_bounds_match_the_schema_and_name_the_field(field, item, value):
    event = with_time("2026-11-26T10:00:00Z")
    (event["browse_history"][item] if item is not None else event)[field] = value
    expected = schema_accepts(event) if value == value and value not in (float("inf"),) else False
    assert parser_accepts(event) == expected, (field, value)
    if not expected:
        with pytest.raises(EventError, match=field):
            parse_event(event)


@settings(max_examples=300)
@given(
    st.sampled_from(["customer_number", "credit_limit", "quantity_in_stock", "buy_price", "msrp"]),
    st.one_of(st.integers(-(2**40), 2**40), st.floats(-1e12, 1e12, allow_nan=False)),
)
def test_any_number_is_accepted_exactly_when_the_schema_accepts_it(field, value):
    event = with_time("2026-11-26T10:00:00Z")
    (event["browse_history"][0] if field in ("quantity_in_stock", "buy_price", "msrp") else event)[field] = value
    assert parser_accepts(event) == schema_accepts(event), (field, value)


# --- the browsed item built from a source product row ---------------------------------------------------------------

#: A row of the source's ``products`` table as the MySQL driver returns it (decimals as Decimal).
product_row = st.fixed_dictionaries(
    {
        "productCode": st.text(min_size=1, max_size=15),
        "productLine": st.text(min_size=1, max_size=50),
        "productScale": st.text(min_size=1, max_size=10),
        "quantityInStock": st.integers(0, 32_767),
        "buyPrice": st.decimals(0, Decimal("99999999.99"), places=2),
        "MSRP": st.decimals(0, Decimal("99999999.99"), places=2),
    }
)


def event_browsing(item: dict) -> dict:
    return {**with_time("2026-11-26T10:00:00Z"), "browse_history": [item]}


@settings(max_examples=200)
@given(product_row, st.booleans())
def test_a_browsed_item_from_a_product_row_is_a_schema_valid_entry_with_its_values(row, cart):
    item = browsed_item(row, in_shopping_cart=cart)
    event = json.loads(json.dumps(event_browsing(item)))  # what goes on the stream: plain JSON
    assert schema_accepts(event), event
    assert event["browse_history"][0] == {
        "product_code": row["productCode"],
        "product_line": row["productLine"],
        "product_scale": row["productScale"],
        "quantity_in_stock": row["quantityInStock"],
        "buy_price": float(row["buyPrice"]),
        "msrp": float(row["MSRP"]),
        "in_shopping_cart": cart,
    }
    # the way back, what the Lambda's item tower reads: the same columns as the row's
    assert parse_event(event).browse_history[0].features() == {
        "productLine": row["productLine"],
        "productScale": row["productScale"],
        "quantityInStock": row["quantityInStock"],
        "buyPrice": float(row["buyPrice"]),
        "MSRP": float(row["MSRP"]),
    }


def test_a_browsed_item_has_exactly_the_schemas_item_fields():
    row = {"productCode": "S10_1678", "productLine": "Motorcycles", "productScale": "1:10"}
    row |= {"quantityInStock": 7933, "buyPrice": Decimal("48.81"), "MSRP": Decimal("95.70")}
    assert list(browsed_item(row)) == SCHEMA["properties"]["browse_history"]["items"]["required"]
    assert browsed_item(row)["in_shopping_cart"] is False


def test_a_pandas_row_with_numpy_values_becomes_plain_json():
    """The benches and the served replay build items from DataFrame rows: numpy scalars must not reach json.dumps."""
    import numpy as np
    import pandas as pd

    products = pd.DataFrame(
        {
            "productCode": ["S10_1678"],
            "productLine": ["Motorcycles"],
            "productScale": ["1:10"],
            "quantityInStock": np.array([7933], dtype=np.int16),
            "buyPrice": [48.81],
            "MSRP": [95.7],
        }
    )
    item = browsed_item(products.iloc[0], in_shopping_cart=np.bool_(True))
    assert json.loads(json.dumps(item)) == {
        "product_code": "S10_1678",
        "product_line": "Motorcycles",
        "product_scale": "1:10",
        "quantity_in_stock": 7933,
        "buy_price": 48.81,
        "msrp": 95.7,
        "in_shopping_cart": True,
    }
