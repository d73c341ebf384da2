"""The hybrid two-tower ranker on seeded data: beats the baselines, round-trips its artifacts, gates bad models."""

from __future__ import annotations

import csv
import io
import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest

from recsys.config import TRAINING_COLUMNS
from recsys.model.artifacts import LAYOUT, VERSION_METRICS, artifact_files
from recsys.model.train import (
    CANDIDATES,
    RANKERS,
    RANKING_MARGIN,
    Candidate,
    QualityGateError,
    TrainConfig,
    gate_figures,
    paired_bootstrap,
    quality_gate,
    rank_scores,
    ranked_candidates,
    ranking_metrics,
    split,
    train,
)
from recsys_local.seed.generator import SeedSpec, generate
from recsys_serving import EMBEDDING_DIM
from recsys_serving.bundle import InferenceBundle


def training_frame(spec: SeedSpec) -> pd.DataFrame:
    tables: dict[str, list[pd.DataFrame]] = {}
    for table, frame in generate(spec):
        tables.setdefault(table, []).append(frame)
    d = {t: pd.concat(v, ignore_index=True) for t, v in tables.items()}
    frame = d["ratings"].merge(d["customers"], on="customerNumber").merge(d["products"], on="productCode")
    return frame[list(TRAINING_COLUMNS)]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return training_frame(SeedSpec(customers=300, products=110, ratings=7000))


@pytest.fixture(scope="module")
def result(frame):
    return train(frame, TrainConfig(epochs=40, seed=1))


def test_ranks_better_than_both_baselines_and_passes_the_gate(result):
    ranking = result.metrics["ranking"]
    for baseline in ("most_popular", "random"):
        assert ranking["model"]["ndcg@10"] >= RANKING_MARGIN * ranking[baseline]["ndcg@10"], ranking
        assert ranking["model"]["recall@10"] > ranking[baseline]["recall@10"], ranking
    figures = gate_figures(result.metrics)
    assert figures["users"] == ranking["users"] > 20
    assert figures["interval_95"][0] > 0
    assert quality_gate(result.metrics).startswith("passed")
    # customers whose ratings are all held out are ranked by the towers alone, and still beat popularity here
    cold = result.metrics["cold_start_ranking"]
    assert cold["users"] > 0
    assert cold["model"]["ndcg@10"] > cold["most_popular"]["ndcg@10"], cold


def test_the_candidate_kept_is_the_better_one_on_validation(result):
    tried = result.metrics["candidates"]
    assert set(tried) == {candidate.name for candidate in CANDIDATES}
    assert result.metrics["candidate"] == max(tried, key=lambda name: tried[name]["validation_ndcg@10"])
    assert result.candidate.name == result.metrics["candidate"]


@pytest.mark.parametrize(
    "candidate", [*(c for c in CANDIDATES if c.ids), Candidate("with-towers", 1.0, 1.0)], ids=lambda c: c.name
)
def test_known_customers_use_their_id_embedding_and_newcomers_the_tower(frame, candidate):
    """A customer known in training is stored as tower_weight x tower + their id embedding; a customer unknown in
    training is their tower's vector."""
    result = train(frame, TrainConfig(epochs=5, seed=1), candidates=(candidate,))
    users = frame.drop_duplicates("customerNumber").sort_values("customerNumber")
    towers = result.bundle("v").user_embeddings(users.to_dict("records"))
    known = users.customerNumber.map(lambda c: int(c) in result.user_index).to_numpy()
    assert known.any()
    assert (~known).any()
    np.testing.assert_allclose(result.user_embeddings[~known], towers[~known], atol=1e-5)
    weight = result.candidate.tower_weight
    ids = result.model.user_id.weight.detach().numpy()[[result.user_index[int(c)] for c in users.customerNumber[known]]]
    np.testing.assert_allclose(result.user_embeddings[known], weight * towers[known] + ids, atol=1e-5)


def test_the_paired_bootstrap_interval():
    assert paired_bootstrap([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]) == pytest.approx((1.0, 1.0, 1.0))
    mean, low, high = paired_bootstrap([0.5, 0.0, 1.0, 0.2], [0.1, 0.3, 0.0, 0.2])
    assert mean == pytest.approx(0.275)
    assert low < mean < high
    # one large win among ties: the mean is positive, the interval reaches zero (few customers carry the result)
    mean, low, _ = paired_bootstrap([1.0] + [0.0] * 9, [0.0] * 10)
    assert mean == pytest.approx(0.1)
    assert low == 0.0


def test_rankings_are_scored_on_the_same_users_and_candidates(frame, result):
    parts = split(frame, result.config)
    train_df, test = parts["train"], parts["test"]
    catalog = set(train_df.productCode) | set(test.productCode)
    rated = train_df.groupby("customerNumber").productCode.agg(set)
    positives = test[test.productRating >= 4].groupby("customerNumber").productCode.agg(set)
    users = list(ranked_candidates(result, parts))
    assert sorted(customer for customer, _, _ in users) == sorted(positives.index)
    assert len(users) > 20
    for customer, relevant, candidates in users:
        assert relevant == positives[customer]
        mine = catalog - rated.get(customer, set())  # every item the user has not rated in training, once
        for name in RANKERS:
            assert sorted(candidates[name]) == sorted(mine), (customer, name)
    # the reported figures are those of the candidates' top 10, each ranker's own
    ranking = result.metrics["ranking"]
    assert (ranking["users"], ranking["candidate_items"]) == (len(positives), len(catalog))
    for name in RANKERS:
        tops = [candidates[name][:10] for _, _, candidates in users]
        scores = np.array([rank_scores(top, relevant, 10) for top, (_, relevant, _) in zip(tops, users, strict=True)])
        assert [ranking[name][f"{metric}@10"] for metric in ("recall", "ndcg", "map")] == pytest.approx(
            scores.mean(axis=0).tolist()
        ), name
        assert ranking[name]["coverage"] == len(set().union(*tops)) / len(catalog)
    # the most-popular list is one list for everyone (minus what each user rated): it covers little of the catalog
    assert ranking["most_popular"]["coverage"] < ranking["model"]["coverage"] < ranking["random"]["coverage"] + 1e-9


def test_the_metrics_of_one_ranking_by_hand():
    recall, ndcg, average_precision = rank_scores(["a", "x", "b", "y"], {"a", "b", "c"}, k=4)
    assert recall == pytest.approx(2 / 3)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert average_precision == pytest.approx((1 / 1 + 2 / 3) / 3)


def test_a_user_with_more_positives_than_k_is_judged_on_k():
    """Five positives, k = 3: the best list holds three of them and scores 1; the ideal is three hits long."""
    relevant = {"a", "b", "c", "d", "e"}
    assert rank_scores(["a", "b", "c", "x"], relevant, k=3) == pytest.approx((1.0, 1.0, 1.0))
    recall, ndcg, average_precision = rank_scores(["x", "a", "b"], relevant, k=3)
    assert recall == pytest.approx(2 / 3)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / ideal)
    assert average_precision == pytest.approx((1 / 2 + 2 / 3) / 3)


def test_a_model_that_ranks_worse_than_popularity_is_not_published(frame, result):
    """The same trained model with its item vectors negated ranks the items it likes least first: the gate must
    stop it (its interval is below zero)."""
    import copy

    import torch

    class Negated(torch.nn.Module):
        def __init__(self, tower: torch.nn.Module) -> None:
            super().__init__()
            self.tower = tower

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return -self.tower(x)

    reversed_result = copy.copy(result)
    reversed_result.model = copy.deepcopy(result.model)
    reversed_result.model.item = Negated(reversed_result.model.item)
    with torch.no_grad():
        reversed_result.model.item_id.weight.neg_()
    parts = split(frame, result.config)
    metrics = {**json.loads(json.dumps(result.metrics)), "ranking": ranking_metrics(reversed_result, parts)}
    assert metrics["ranking"]["model"]["ndcg@10"] < metrics["ranking"]["most_popular"]["ndcg@10"]
    with pytest.raises(QualityGateError, match=r"\(interval and margin gate\).*test NDCG@10 .* vs most popular"):
        quality_gate(metrics)
    assert quality_gate(metrics, force=True).startswith("forced")
    metrics["ranking"] = {"k": 10, "users": 0}
    with pytest.raises(QualityGateError, match="no held-out ranking"):
        quality_gate(metrics)


def test_a_lead_too_small_for_the_customers_is_not_published(result):
    """The mean beats the margin, but one customer carries it: the interval reaches zero and the gate refuses."""
    metrics = json.loads(json.dumps(result.metrics))
    ranking = metrics["ranking"]
    users = ranking["users"]
    ranking["model"]["per_user_ndcg@10"] = [1.0] + [0.0] * (users - 1)
    ranking["model"]["ndcg@10"] = 1.0 / users
    for name in ("most_popular", "random"):
        ranking[name]["per_user_ndcg@10"] = [0.0] * users
        ranking[name]["ndcg@10"] = 0.0
    with pytest.raises(QualityGateError, match=r"\(interval gate\)"):
        quality_gate(metrics)


def test_same_seed_same_model(frame, result):
    again = train(frame, TrainConfig(epochs=40, seed=1))
    np.testing.assert_array_equal(again.item_embeddings, result.item_embeddings)


def test_shuffled_purchases_are_blocked_by_the_gate(frame):
    """Each customer's purchases replaced by random products (ratings kept): nothing left to learn."""
    rng = np.random.default_rng(0)
    products = frame.drop_duplicates("productCode").set_index("productCode")
    codes = rng.choice(products.index.to_numpy(), size=len(frame))
    shuffled = frame.assign(productCode=codes).drop_duplicates(["customerNumber", "productCode"])
    for column in ("productLine", "productScale", "quantityInStock", "buyPrice", "MSRP"):
        shuffled[column] = shuffled.productCode.map(products[column]).to_numpy()
    bad = train(shuffled, TrainConfig(epochs=40, seed=1))
    with pytest.raises(QualityGateError, match="test NDCG@10"):
        quality_gate(bad.metrics)
    assert quality_gate(bad.metrics, force=True).startswith("forced")


def test_the_gate_judges_the_test_split_not_the_one_the_checkpoint_was_chosen_on(result):
    """A model that looks good only on validation (where the epoch and the candidate were picked) is not published:
    the gate reads the test ranking only."""
    metrics = json.loads(json.dumps(result.metrics))
    assert max(c["validation_ndcg@10"] for c in metrics["candidates"].values()) > 0.1
    ranking = metrics["ranking"]
    ranking["model"] = {**ranking["most_popular"]}
    with pytest.raises(QualityGateError, match=r"test NDCG@10 .* paired difference \+0\.0000"):
        quality_gate(metrics)


def test_artifacts_parse_back(frame, result):
    files = artifact_files(result, "v-test", {"run_id": "r1", "output_rows": len(frame)})
    assert set(files) == {*LAYOUT, VERSION_METRICS}
    summary = json.loads(files[VERSION_METRICS])
    assert summary["model_version"] == "v-test"
    assert set(summary["ranking"]) >= {"model", "most_popular", "random", "users", "k"}
    assert summary["cold_start_ranking"]["users"] == result.metrics["cold_start_ranking"]["users"]
    assert summary["gate"] == gate_figures(result.metrics)
    assert summary["candidate"] == result.candidate.name
    for key, id_type, expected in (
        ("embeddings/item_embeddings.csv", str, frame.productCode.nunique()),
        ("embeddings/user_embeddings.csv", int, frame.customerNumber.nunique()),
    ):
        rows = list(csv.reader(io.StringIO(files[key].decode())))
        assert rows[0] == ["id", "embedding"]
        ids = [id_type(r[0]) for r in rows[1:]]
        assert len(ids) == len(set(ids)) == expected
        for _, literal in rows[1:]:
            values = [float(v) for v in literal.strip("[]").split(",")]
            assert len(values) == EMBEDDING_DIM
            assert all(math.isfinite(v) for v in values)
    ohe = pickle.loads(files["scalers/item_ohe.pkl"])  # noqa: S301 - our own freshly made bytes
    assert "Classic Cars" in list(ohe.categories_[0])
    scaler = pickle.loads(files["scalers/user_std_scaler.pkl"])  # noqa: S301
    assert scaler.mean_.shape == (1,)
    metrics = json.loads(files["model/metrics.json"])
    assert metrics["model_version"] == "v-test"
    assert metrics["data_manifest"]["run_id"] == "r1"

    import torch

    checkpoint = torch.load(io.BytesIO(files["model/best_model.pth"]), weights_only=True)
    assert checkpoint["architecture"]["dim"] == EMBEDDING_DIM


def test_bundle_inference_equals_torch(frame, result):
    import torch

    npz, meta = result.bundle("v-test").to_files()
    bundle = InferenceBundle.from_files(npz, meta)
    sample = frame.sample(200, random_state=3)
    rows = sample.to_dict("records")
    with torch.no_grad():
        users = result.model.user(torch.from_numpy(result.user_features.transform(sample))).numpy()
        items = result.model.item(torch.from_numpy(result.item_features.transform(sample))).numpy()
    np.testing.assert_allclose(bundle.user_embeddings(rows), users, atol=1e-5)
    np.testing.assert_allclose(bundle.item_embeddings(rows), items, atol=1e-5)
    unseen = [{**rows[0], "city": "Atlantis", "country": None, "creditLimit": None}]
    assert np.isfinite(bundle.user_embeddings(unseen)).all()
