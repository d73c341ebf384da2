"""The served-path comparison's pieces without a stack: held-out events from the training split, and the scoring of
served lists against the model's exact ranking (the e2e test and `make bench served` run them on the stack)."""

from __future__ import annotations

import numpy as np
import pytest
from test_model import training_frame

from recsys.model.train import TrainConfig, split, train
from recsys_local.seed.generator import SeedSpec
from recsys_local.served import compare, firehose_event, held_out_events
from recsys_serving.bundle import InferenceBundle
from recsys_serving.events import parse_event


@pytest.fixture(scope="module")
def trained():
    frame = training_frame(SeedSpec(customers=200, products=110, ratings=4000, seed=3))
    result = train(frame, TrainConfig(epochs=5, seed=1))
    return frame, result, InferenceBundle.from_files(*result.bundle("v-served").to_files())


def test_held_out_events_are_the_test_splits_positives_and_valid_events(trained):
    frame, _, _ = trained
    held = held_out_events(frame, seed=1)
    test = split(frame, TrainConfig(seed=1))["test"]
    assert len(held) > 20
    for h in held:
        event = parse_event(h.event)  # the schema the Lambda enforces
        assert event.customer_number == h.customer
        mine = test[test.customerNumber == h.customer]
        assert h.relevant == set(mine[mine.productRating >= 4].productCode)
    records = firehose_event([h.event for h in held])["records"]
    assert [r["recordId"] for r in records] == [h.event["session_id"] for h in held]


def test_compare_scores_served_lists_against_the_exact_ranking(trained):
    frame, result, bundle = trained
    held = held_out_events(frame, seed=1)
    ids, vectors = result.item_ids, np.asarray(result.item_embeddings)
    users = bundle.user_embeddings([parse_event(h.event).user_features() for h in held])

    def answers(order):
        return {
            h.event["session_id"]: {"recommended_items": [{"product_code": ids[i]} for i in order(vectors @ u)[:5]]}
            for h, u in zip(held, users, strict=True)
        }

    stored = {str(u): v for u, v in zip(result.user_ids, result.user_embeddings, strict=True)}
    same = compare(held, answers(lambda s: np.argsort(-s, kind="stable")), bundle, ids, vectors, stored)
    assert same["k"] == 5
    assert same["overlap"] == 1.0
    assert same["ndcg_gap"] == 0.0
    assert same["served"] == same["exact"]
    # the stored embeddings come from the same table features the events carry: the same lists (up to float noise)
    assert same["exact_stored"]["ndcg@5"] == pytest.approx(same["exact"]["ndcg@5"], abs=1e-9)
    assert 0 < same["served"]["coverage"] <= 1
    worst = compare(held, answers(lambda s: np.argsort(s, kind="stable")), bundle, ids, vectors)
    assert worst["overlap"] == 0.0
    assert worst["served"]["ndcg@5"] < worst["exact"]["ndcg@5"]


def test_the_split_is_rebuilt_from_the_runs_own_manifest_not_the_live_one():
    from recsys.model.pipeline import run_manifest_url

    live = "s3://lake/ratings-ml-training/_manifest.json"
    assert run_manifest_url(live, {"run_id": "manual__2026-12-06T20:35:36+00:00"}) == (
        "s3://lake/manifests/ratings-ml-training/manual__2026-12-06T20_35_36_00_00.json"
    )
    own = "s3://lake/manifests/ratings-ml-training/scheduled__x.json"
    assert run_manifest_url(own, {"run_id": "scheduled__x"}) == own
