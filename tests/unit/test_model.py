"""The two-tower model on seeded data: beats the baselines, round-trips its artifacts, gates bad models."""

from __future__ import annotations

import csv
import io
import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest

from recsys.config import EMBEDDING_DIM, TRAINING_COLUMNS
from recsys.model.artifacts import LAYOUT, artifact_files
from recsys.model.train import QualityGateError, TrainConfig, predict, quality_gate, train
from recsys_local.seed.generator import SeedSpec, generate
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


def test_beats_both_baselines_by_a_clear_margin(result):
    for split in ("validation", "test"):
        m = result.metrics[split]
        best = min(m["baseline_global_mean"]["rmse"], m["baseline_item_mean"]["rmse"])
        assert m["rmse"] < 0.9 * best, (split, m)
    assert result.metrics["ranking"]["recall@10"] > 0
    assert quality_gate(result.metrics).startswith("passed")


def test_same_seed_same_model(frame, result):
    again = train(frame, TrainConfig(epochs=40, seed=1))
    np.testing.assert_array_equal(again.item_embeddings, result.item_embeddings)


def test_shuffled_labels_are_blocked_by_the_gate(frame):
    shuffled = frame.assign(productRating=np.random.default_rng(0).permutation(frame.productRating.to_numpy()))
    bad = train(shuffled, TrainConfig(epochs=40, seed=1))
    with pytest.raises(QualityGateError, match="test RMSE"):
        quality_gate(bad.metrics)
    assert quality_gate(bad.metrics, force=True).startswith("forced")


def test_the_gate_judges_the_test_split_not_the_one_the_checkpoint_was_chosen_on(result):
    """A model that looks good only on validation (where the best epoch was picked) is not published."""
    metrics = json.loads(json.dumps(result.metrics))
    test = metrics["test"]
    test["rmse"] = min(test["baseline_global_mean"]["rmse"], test["baseline_item_mean"]["rmse"]) + 0.01
    assert metrics["validation"]["rmse"] < metrics["validation"]["baseline_item_mean"]["rmse"]
    with pytest.raises(QualityGateError, match=r"test RMSE .* checkpoint chosen on validation"):
        quality_gate(metrics)
    metrics["test"]["rows"] = 0
    with pytest.raises(QualityGateError, match="test split is empty"):
        quality_gate(metrics)


def test_artifacts_parse_back(frame, result):
    files = artifact_files(result, "v-test", {"run_id": "r1", "output_rows": len(frame)})
    assert set(files) == set(LAYOUT)
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
    npz, meta = result.bundle("v-test").to_files()
    bundle = InferenceBundle.from_files(npz, meta)
    sample = frame.sample(200, random_state=3)
    rows = sample.to_dict("records")
    np.testing.assert_allclose(bundle.predict(rows, rows), predict(result, sample), atol=1e-5)
    unseen = [{**rows[0], "city": "Atlantis", "country": None, "creditLimit": None}]
    assert np.isfinite(bundle.user_embeddings(unseen)).all()
