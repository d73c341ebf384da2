"""The Firehose transformation against the real pgvector store and a trained model's bundle."""

from __future__ import annotations

import base64
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.config import TRAINING_COLUMNS
from recsys.model.artifacts import embeddings_csv
from recsys.model.train import TrainConfig, train
from recsys.vectordb.loader import load
from recsys_local.seed.generator import SeedSpec, generate
from recsys_serving import search
from recsys_serving.events import browsed_item
from recsys_serving.transformation_handler import transform

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(stack, tmp_path_factory):
    tables: dict[str, list[pd.DataFrame]] = {}
    for table, frame in generate(SeedSpec(customers=150, products=60, ratings=2500, seed=9)):
        tables.setdefault(table, []).append(frame)
    d = {t: pd.concat(v, ignore_index=True) for t, v in tables.items()}
    frame = d["ratings"].merge(d["customers"], on="customerNumber").merge(d["products"], on="productCode")
    result = train(frame[list(TRAINING_COLUMNS)], TrainConfig(epochs=15, seed=2))
    folder = tmp_path_factory.mktemp("emb")
    (folder / "items.csv").write_bytes(embeddings_csv(result.item_ids, result.item_embeddings))
    (folder / "users.csv").write_bytes(embeddings_csv(result.user_ids, result.user_embeddings))
    cfg = stack.vectordb()
    conn = search.connect(**cfg.conninfo())
    load(conn, folder / "items.csv", folder / "users.csv", "v-stream-test")
    products = d["products"][d["products"].productCode.isin(result.item_ids)].reset_index(drop=True)
    yield {"conn": conn, "bundle": result.bundle("v-stream-test"), "result": result, "products": products}
    conn.close()


def event_for(products: pd.DataFrame, picks: list[int], cart: list[bool], session: str = "s1") -> dict:
    return {
        "session_id": session,
        "customer_number": 424242,
        "city": "Nantes",
        "country": "France",
        "credit_limit": 21000.0,
        "event_time": "2026-11-26T10:00:00Z",
        "browse_history": [browsed_item(products.iloc[i], c) for i, c in zip(picks, cart, strict=True)],
    }


def record(record_id: str, payload: bytes | str) -> dict:
    data = payload if isinstance(payload, str) else base64.b64encode(payload).decode()
    return {"recordId": record_id, "approximateArrivalTimestamp": 0, "data": data}


def test_recommendations_equal_a_brute_force_search(world):
    products, result, bundle = world["products"], world["result"], world["bundle"]
    event = event_for(products, [0, 1, 2], [False, True, False])
    out = transform([record("r1", json.dumps(event).encode())], world["conn"], bundle)
    assert out[0]["result"] == "Ok"
    line = json.loads(base64.b64decode(out[0]["data"]))
    user = bundle.user_embeddings([{"city": "Nantes", "country": "France", "creditLimit": 21000.0}])[0]
    scores = result.item_embeddings @ user
    expected = [result.item_ids[i] for i in np.argsort(-scores)[:5]]
    assert [r["product_code"] for r in line["recommended_items"]] == expected
    anchor = products.productCode[1]
    anchor_vec = result.item_embeddings[result.item_ids.index(anchor)]
    similar = [
        result.item_ids[i] for i in np.argsort(-(result.item_embeddings @ anchor_vec)) if result.item_ids[i] != anchor
    ][:5]
    assert line["similar_items"] == [
        {
            "for_product_code": anchor,
            "cold_start": False,
            "items": [
                {"product_code": c, "score": pytest.approx(s["score"])}
                for c, s in zip(similar, line["similar_items"][0]["items"], strict=True)
            ],
        }
    ]
    assert line["session_id"] == "s1"
    assert line["model_version"] == "v-stream-test"
    # the line keeps the event it answers, field for field, so analysts can join a recommendation to its context
    assert {key: line[key] for key in event} == event


def test_without_a_cart_the_last_browsed_item_is_the_anchor(world):
    event = event_for(world["products"], [3, 4], [False, False])
    out = transform([record("r1", json.dumps(event).encode())], world["conn"], world["bundle"])
    line = json.loads(base64.b64decode(out[0]["data"]))
    assert [s["for_product_code"] for s in line["similar_items"]] == [world["products"].productCode[4]]


def test_a_product_new_since_training_gets_similar_items_from_its_features(world):
    """Cold start: the item tower embeds the product from the features the event carries."""
    products, result, bundle = world["products"], world["result"], world["bundle"]
    good = event_for(products, [0], [True], "good")
    new = event_for(products, [5], [True], "new")
    new["browse_history"][0]["product_code"] = "S99_NEW1"
    out = transform(
        [record("a", json.dumps(good).encode()), record("b", json.dumps(new).encode())], world["conn"], bundle
    )
    assert [(r["recordId"], r["result"]) for r in out] == [("a", "Ok"), ("b", "Ok")]
    line = json.loads(base64.b64decode(out[1]["data"]))
    [similar] = line["similar_items"]
    assert (similar["for_product_code"], similar["cold_start"]) == ("S99_NEW1", True)
    item = new["browse_history"][0]
    vector = bundle.item_embeddings(
        [
            {
                "productLine": item["product_line"],
                "productScale": item["product_scale"],
                "quantityInStock": item["quantity_in_stock"],
                "buyPrice": item["buy_price"],
                "MSRP": item["msrp"],
            }
        ]
    )[0]
    expected = [result.item_ids[i] for i in np.argsort(-(result.item_embeddings @ vector))[:5]]
    assert [i["product_code"] for i in similar["items"]] == expected
    assert json.loads(base64.b64decode(out[0]["data"]))["similar_items"][0]["cold_start"] is False


def test_an_event_whose_new_product_cannot_be_embedded_fails_alone(world):
    """Bypassing the parser's bounds: a new product whose features overflow the item tower fails only its event."""
    from recsys_serving.events import parse_event
    from recsys_serving.recommender import UnknownProductsError, recommend

    good = parse_event(event_for(world["products"], [0], [True], "good"))
    raw = event_for(world["products"], [1], [True], "overflow")
    raw["browse_history"][0]["product_code"] = "S99_NEW2"
    raw["browse_history"][0]["buy_price"] = 100.0
    parsed = parse_event(raw)
    item = dataclasses.replace(parsed.browse_history[0], buy_price=1e300, msrp=1e300)
    overflow = dataclasses.replace(parsed, browse_history=(item,))
    ok, failed = recommend(world["conn"], world["bundle"], [good, overflow])
    assert ok.similar
    assert isinstance(failed, UnknownProductsError)
    assert "S99_NEW2" in str(failed)


def test_an_event_the_model_cannot_embed_fails_only_its_record(world):
    from recsys_serving.events import parse_event
    from recsys_serving.recommender import NonFiniteEmbeddingError, recommend

    good = event_for(world["products"], [0], [True], "good")
    huge = event_for(world["products"], [1], [True], "huge")
    huge["credit_limit"] = 1e300  # beyond the schema's bound: the parser rejects it, naming the field
    other = event_for(world["products"], [2], [False], "other")
    out = transform(
        [record(rid, json.dumps(e).encode()) for rid, e in (("a", good), ("b", huge), ("c", other))],
        world["conn"],
        world["bundle"],
    )
    assert [(r["recordId"], r["result"]) for r in out] == [("a", "Ok"), ("b", "ProcessingFailed"), ("c", "Ok")]
    lines = [json.loads(base64.b64decode(out[i]["data"])) for i in (0, 2)]
    assert [line["session_id"] for line in lines] == ["good", "other"]
    assert all(line["recommended_items"] for line in lines)
    # and behind the parser, the recommender isolates a non-finite user vector itself
    events = [parse_event(e) for e in (good, other)]
    events.insert(1, dataclasses.replace(events[0], session_id="huge", credit_limit=1e300))
    outcomes = recommend(world["conn"], world["bundle"], events)
    assert isinstance(outcomes[1], NonFiniteEmbeddingError)
    assert "credit_limit" in str(outcomes[1])
    assert [o.event.session_id for o in (outcomes[0], outcomes[2])] == ["good", "other"]


payloads = st.one_of(
    st.tuples(st.just("valid"), st.integers(0, 9), st.booleans()),
    st.tuples(st.just("bytes"), st.binary(max_size=40)),
    st.tuples(st.just("not-base64"), st.text(alphabet="!@#$%^&*", min_size=1, max_size=10)),
    st.tuples(st.just("not-utf8"), st.just(b"\xff\xfe\xfa")),
    st.tuples(st.just("not-json"), st.text(max_size=30).map(lambda t: ("{" + t).encode())),
    st.tuples(st.just("bad-schema"), st.sampled_from(["customer_number", "browse_history", "event_time"])),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(st.lists(payloads, min_size=1, max_size=25))
def test_every_record_id_comes_back_once_with_a_valid_result(world, drawn):
    products, records, expect_ok = world["products"], [], []
    for index, item in enumerate(drawn):
        kind, record_id = item[0], f"id-{index:04d}"
        if kind == "valid":
            payload = json.dumps(event_for(products, [item[1]], [item[2]], record_id)).encode()
        elif kind == "bad-schema":
            event = event_for(products, [0], [True], record_id)
            event[item[1]] = "wrong"
            payload = json.dumps(event).encode()
        elif kind == "not-base64":
            records.append(record(record_id, item[1]))
            expect_ok.append(False)
            continue
        else:
            payload = item[1]
        records.append(record(record_id, payload))
        expect_ok.append(kind == "valid")
    out = transform(records, world["conn"], world["bundle"])
    assert [r["recordId"] for r in out] == [r["recordId"] for r in records]
    assert all(r["result"] in ("Ok", "Dropped", "ProcessingFailed") for r in out)
    assert [r["result"] == "Ok" for r in out] == expect_ok
    for result, original in zip(out, records, strict=True):
        if result["result"] == "Ok":
            assert json.loads(base64.b64decode(result["data"]))["session_id"] == original["recordId"]


def test_the_response_stays_under_the_lambda_limit_and_overflow_records_fail_alone(world, monkeypatch):
    """Output lines carry their event (up to 100 browsed items each): records beyond the response bound fail alone
    (Firehose puts their original data under the error prefix), every recordId comes back once, and the serialized
    response stays within the bound."""
    from recsys_serving import transformation_handler

    limit = 120_000
    monkeypatch.setattr(transformation_handler, "MAX_RESPONSE_BYTES", limit)
    picks = list(range(len(world["products"])))[:50] * 2
    records = [
        record(
            f"shardId-000000000000-{i:040d}", json.dumps(event_for(world["products"], picks, [False] * 100)).encode()
        )
        for i in range(12)
    ]
    out = transform(records, world["conn"], world["bundle"])
    assert [r["recordId"] for r in out] == [r["recordId"] for r in records]
    results = [r["result"] for r in out]
    assert "Ok" in results
    assert "ProcessingFailed" in results
    assert results == sorted(results, key=lambda r: r != "Ok")  # the first ones fit, the rest overflow
    assert len(json.dumps({"records": out})) <= limit
    for result in out:
        if result["result"] == "ProcessingFailed":
            assert result["data"] == ""  # Firehose keeps the original (rawData) for the error prefix itself
        else:
            assert len(json.loads(base64.b64decode(result["data"]))["browse_history"]) == 100
