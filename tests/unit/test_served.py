"""The served-path comparison's pieces without a stack: held-out events from the training split, the scoring of lists
served by an IVF index (the vector DB's kind) against the model's exact ranking, and ``measure`` over moto's S3 and a
fake of the deployed function (the e2e test and `make bench served` run them on the stack)."""

from __future__ import annotations

import base64
import io
import json

import boto3
import numpy as np
import pytest
from moto import mock_aws
from test_model import training_frame

from recsys.model.artifacts import ITEM_EMBEDDINGS, USER_EMBEDDINGS, artifact_files, load_bundle, promote, stage
from recsys.model.train import CANDIDATES, TrainConfig, split, train
from recsys_local.seed.generator import SeedSpec
from recsys_local.served import compare, firehose_event, held_out_events, item_vectors, measure
from recsys_serving.bundle import InferenceBundle
from recsys_serving.events import parse_event

IDS = tuple(c for c in CANDIDATES if c.ids)


@pytest.fixture(scope="module")
def trained():
    frame = training_frame(SeedSpec(customers=200, products=110, ratings=4000, seed=3))
    # the candidate with id embeddings: a known customer's stored vector is not their tower's, as the Lambda must know
    result = train(frame, TrainConfig(epochs=5, seed=1), candidates=IDS)
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


class IVFIndex:
    """An IVF index over inner-product search keys, as the vector DB builds it (``recsys.vectordb.loader.
    create_search_index``): each item's key is ``[x, sqrt(M^2 - |x|^2)]``, the keys are clustered into ``lists`` by
    k-means, and a query ``[q, 0]`` scans only the ``probes`` lists whose centroids are nearest, so with fewer probes
    than lists a true neighbour in an unscanned list is lost."""

    def __init__(self, vectors: np.ndarray, lists: int, seed: int = 0) -> None:
        norms = np.linalg.norm(vectors, axis=1)
        self.keys = np.column_stack([vectors, np.sqrt(np.maximum(norms.max() ** 2 - norms**2, 0))])
        rng = np.random.default_rng(seed)
        centroids = self.keys[rng.choice(len(self.keys), lists, replace=False)]
        for _ in range(25):
            assigned = self._nearest(self.keys, centroids)
            for c in range(lists):
                if (assigned == c).any():
                    centroids[c] = self.keys[assigned == c].mean(axis=0)
        self.centroids = centroids
        self.members = [np.flatnonzero(self._nearest(self.keys, centroids) == c) for c in range(lists)]

    @staticmethod
    def _nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        return ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)

    def search(self, query: np.ndarray, k: int, probes: int) -> list[int]:
        key = np.append(query, 0.0)
        scanned = np.argsort(((self.centroids - key) ** 2).sum(axis=1))[:probes]
        candidates = np.concatenate([self.members[c] for c in scanned])
        distances = ((self.keys[candidates] - key) ** 2).sum(axis=1)
        return [int(i) for i in candidates[np.argsort(distances)[:k]]]


def test_compare_scores_lists_served_by_an_index_that_loses_neighbours(trained):
    frame, result, bundle = trained
    held = held_out_events(frame, seed=1)
    ids, vectors = result.item_ids, np.asarray(result.item_embeddings, dtype=np.float64)
    stored = {str(u): v for u, v in zip(result.user_ids, result.user_embeddings, strict=True)}
    towers = bundle.user_embeddings([parse_event(h.event).user_features() for h in held])
    # what the Lambda searches with: a known customer's stored vector (every held-out customer here), else the tower
    users = [stored.get(str(h.customer), tower) for h, tower in zip(held, towers, strict=True)]
    assert all(str(h.customer) in stored for h in held)
    index = IVFIndex(vectors, lists=8)

    def answers(probes):
        return {
            h.event["session_id"]: {
                "recommended_items": [{"product_code": ids[i]} for i in index.search(u, k=5, probes=probes)]
            }
            for h, u in zip(held, users, strict=True)
        }

    # the exact top 5 and the scores, computed here without the code under test
    exact = [sorted(range(len(ids)), key=lambda i, u=u: -float(vectors[i] @ u))[:5] for u in users]

    def by_hand(lists):
        overlap = np.mean([len(set(s) & {ids[i] for i in e}) / 5 for s, e in zip(lists, exact, strict=True)])
        hits = [len(set(s) & h.relevant) / min(5, len(h.relevant)) for s, h in zip(lists, held, strict=True)]
        return overlap, np.mean(hits)

    every_list = answers(probes=8)  # every list scanned: the index is exact
    full = compare(held, every_list, bundle, ids, vectors, stored)
    assert full["k"] == 5
    assert full["overlap"] == 1.0
    assert full["ndcg_gap"] == pytest.approx(0.0, abs=1e-12)
    # the towers alone (a newcomer's path) would rank otherwise: the stored vectors are what is compared
    assert compare(held, every_list, bundle, ids, vectors, {})["overlap"] < 1

    two_lists = answers(probes=2)
    served = [[item["product_code"] for item in two_lists[h.event["session_id"]]["recommended_items"]] for h in held]
    overlap, recall = by_hand(served)
    assert overlap < 1  # the index lost neighbours: the measurement must see it
    lossy = compare(held, two_lists, bundle, ids, vectors, stored)
    assert lossy["overlap"] == pytest.approx(overlap)
    assert lossy["served"]["recall@5"] == pytest.approx(recall)
    assert lossy["exact"]["recall@5"] == pytest.approx(by_hand([[ids[i] for i in e] for e in exact])[1])
    assert lossy["exact"] == full["exact"]
    assert lossy["served"] != lossy["exact"]  # the lost neighbours change the served list's scores
    assert 0 < lossy["served"]["coverage"] <= 1


def test_the_split_is_rebuilt_from_the_runs_own_manifest_not_the_live_one():
    from recsys.model.pipeline import run_manifest_url

    live = "s3://lake/ratings-ml-training/_manifest.json"
    assert run_manifest_url(live, {"run_id": "manual__2026-12-06T20:35:36+00:00"}) == (
        "s3://lake/manifests/ratings-ml-training/manual__2026-12-06T20_35_36_00_00.json"
    )
    own = "s3://lake/manifests/ratings-ml-training/scheduled__x.json"
    assert run_manifest_url(own, {"run_id": "scheduled__x"}) == own


MANIFEST_URL = "s3://lake/manifests/ratings-ml-training/run-1.json"


@pytest.fixture(scope="module")
def retrained(trained):
    """Another version of the model: another seed, so another split and other embeddings."""
    frame, _, _ = trained
    return train(frame, TrainConfig(epochs=5, seed=2))


@pytest.fixture
def published(trained, retrained):
    """The lake holding run-1's dataset; the artifacts bucket holding versions v1 (live) and v2, both trained on it."""
    frame, result, _ = trained
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("lake", "artifacts"):
            s3.create_bucket(Bucket=bucket)
        parquet = io.BytesIO()
        frame.to_parquet(parquet, index=False)
        s3.put_object(Bucket="lake", Key="ratings-ml-training/part-0.parquet", Body=parquet.getvalue())
        manifest = {
            "run_id": "run-1",
            "target_path": "s3://lake/ratings-ml-training/",
            "files": ["ratings-ml-training/part-0.parquet"],
        }
        s3.put_object(Bucket="lake", Key=MANIFEST_URL.removeprefix("s3://lake/"), Body=json.dumps(manifest).encode())
        for version, version_result in (("v1", result), ("v2", retrained)):
            files = artifact_files(version_result, version, manifest)
            metrics = {**json.loads(files["model/metrics.json"]), "data_manifest_url": MANIFEST_URL}
            files["model/metrics.json"] = json.dumps(metrics).encode()
            stage(s3, "artifacts", version, files)
        promote(s3, "artifacts", "v1")
        yield s3


class FakeLambda:
    """The deployed transformation function at the boundary: each invocation serves the next version of ``serves``
    (the last one from then on) and answers every record with that version's exact top 5."""

    def __init__(self, s3, serves: list[str]) -> None:
        self.s3, self.serves = s3, serves
        self.calls: list[tuple[str, str, str, set[int]]] = []  # function, qualifier, version served, customers

    def invoke(self, FunctionName: str, Qualifier: str, Payload: str) -> dict:
        version = self.serves[min(len(self.calls), len(self.serves) - 1)]
        bundle = load_bundle(self.s3, "artifacts", version)
        body = self.s3.get_object(Bucket="artifacts", Key=f"versions/{version}/{ITEM_EMBEDDINGS}")["Body"].read()
        ids, vectors = item_vectors(body)
        body = self.s3.get_object(Bucket="artifacts", Key=f"versions/{version}/{USER_EMBEDDINGS}")["Body"].read()
        stored = dict(zip(*item_vectors(body), strict=True))
        events = [json.loads(base64.b64decode(r["data"])) for r in json.loads(Payload)["records"]]
        towers = bundle.user_embeddings([parse_event(e).user_features() for e in events])
        users = [stored.get(str(e["customer_number"]), t) for e, t in zip(events, towers, strict=True)]
        records = []
        for event, user in zip(events, users, strict=True):
            top = [{"product_code": ids[i]} for i in np.argsort(-(vectors @ user))[:5]]
            line = {"session_id": event["session_id"], "model_version": version, "recommended_items": top}
            data = base64.b64encode(json.dumps(line).encode()).decode()
            records.append({"recordId": event["session_id"], "result": "Ok", "data": data})
        self.calls.append((FunctionName, Qualifier, version, {e["customer_number"] for e in events}))
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps({"records": records}).encode())}


def test_measure_follows_the_version_the_function_serves_not_the_pointer(trained, published):
    frame, _, _ = trained
    function = FakeLambda(published, serves=["v2"])  # pinned to v2 while the pointer says v1
    measured = measure(published, function, "artifacts", "transform")
    assert measured["model_version"] == "v2"
    assert [call[:3] for call in function.calls] == [("transform", "live", "v2")] * 2
    # replayed again with v2's own split (its seed), and scored with v2's files: its exact lists are the served ones
    assert function.calls[1][3] == {h.customer for h in held_out_events(frame, seed=2)} != function.calls[0][3]
    assert measured["overlap"] == 1.0
    assert measured["ndcg_gap"] == 0.0


def test_measure_refuses_a_function_that_keeps_changing_its_version(published):
    function = FakeLambda(published, serves=["v2", "v1"])
    with pytest.raises(RuntimeError, match=r"^transform:live kept changing its model version$"):
        measure(published, function, "artifacts", "transform")
    assert [call[2] for call in function.calls] == ["v2", "v1"]


def test_measure_refuses_a_dataset_that_is_not_the_one_the_version_was_trained_on(published):
    key = MANIFEST_URL.removeprefix("s3://lake/")
    manifest = json.loads(published.get_object(Bucket="lake", Key=key)["Body"].read())
    published.put_object(Bucket="lake", Key=key, Body=json.dumps({**manifest, "run_id": "run-2"}).encode())
    function = FakeLambda(published, serves=["v1"])
    with pytest.raises(RuntimeError, match=rf"^{MANIFEST_URL} is not the dataset v1 was trained on$"):
        measure(published, function, "artifacts", "transform")
    assert function.calls == []  # nothing replayed against the wrong split


def test_the_training_task_stages_a_complete_version_from_a_runs_manifest(published):
    """What `train_model` runs, over moto's S3: the run's dataset in, every file of the layout staged beside the
    version's metrics, the gate's figures in them."""
    from recsys.model.artifacts import LAYOUT, VERSION_METRICS
    from recsys.model.pipeline import train_and_stage
    from recsys_local.served import BotoS3Hook

    staged = train_and_stage(
        BotoS3Hook(published), {"ml_artifacts_bucket": "artifacts", "datalake_bucket": "lake"}, 5, 4, MANIFEST_URL
    )
    prefix = staged["prefix"]
    keys = {o["Key"] for o in published.list_objects_v2(Bucket="artifacts", Prefix=prefix)["Contents"]}
    assert keys == {prefix + key for key in (*LAYOUT, VERSION_METRICS)}
    summary = json.loads(published.get_object(Bucket="artifacts", Key=prefix + VERSION_METRICS)["Body"].read())
    assert summary["gate"]["users"] == staged["metrics"]["ranking"]["users"] > 0
    assert staged["metrics"]["data_manifest_url"] == MANIFEST_URL
