"""Train the two-tower recommender (torch) on the training dataset; evaluate against baselines.

Prediction = global mean + <user embedding, item embedding>: the items a user would rate highest are exactly the
nearest items by inner product, which is what the vector DB's index searches (pgvector ``vector_ip_ops``).

Splits (deterministic for a seed): 10% of customers are held out entirely (cold-start report); of the rest, ratings
are split 80/10/10 into train / validation (early stopping and checkpoint choice) / test (the quality gate: a split
the checkpoint was not chosen on, so the gate sees an honest estimate).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from recsys.model.features import TowerFeatures, fit_item_features, fit_user_features
from recsys_serving import EMBEDDING_DIM
from recsys_serving.bundle import InferenceBundle

log = logging.getLogger(__name__)

USER_KEY, ITEM_KEY, TARGET = "customerNumber", "productCode", "productRating"


@dataclass(frozen=True)
class TrainConfig:
    embedding_dim: int = EMBEDDING_DIM
    hidden: int = 64
    epochs: int = 60
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 8
    seed: int = 42
    cold_start_fraction: float = 0.1


class Tower(nn.Module):
    def __init__(self, width: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TwoTower(nn.Module):
    def __init__(self, user_width: int, item_width: int, hidden: int, dim: int, global_mean: float) -> None:
        super().__init__()
        self.user = Tower(user_width, hidden, dim)
        self.item = Tower(item_width, hidden, dim)
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.global_mean + (self.user(users) * self.item(items)).sum(dim=1)


@dataclass
class TrainResult:
    model: TwoTower
    user_features: TowerFeatures
    item_features: TowerFeatures
    config: TrainConfig
    metrics: dict[str, Any] = field(default_factory=dict)
    user_ids: list[int] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    user_embeddings: np.ndarray | None = None
    item_embeddings: np.ndarray | None = None

    def architecture(self) -> dict[str, Any]:
        return {
            "user_width": self.model.user.net[0].in_features,
            "item_width": self.model.item.net[0].in_features,
            "hidden": self.config.hidden,
            "dim": self.config.embedding_dim,
            "global_mean": float(self.model.global_mean),
        }

    def bundle(self, model_version: str) -> InferenceBundle:
        layers = {}
        for name, tower in (("user", self.model.user), ("item", self.model.item)):
            linears = [m for m in tower.net if isinstance(m, nn.Linear)]
            layers[name] = [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linears]
        return InferenceBundle(
            model_version=model_version,
            global_mean=float(self.model.global_mean),
            user_encoder=self.user_features.to_encoder(),
            item_encoder=self.item_features.to_encoder(),
            layers=layers,
        )


def _rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2))) if len(truth) else float("nan")


def _mae(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - truth))) if len(truth) else float("nan")


def split(frame: pd.DataFrame, config: TrainConfig) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(config.seed)
    customers = np.sort(frame[USER_KEY].unique())
    cold = set(rng.choice(customers, size=int(len(customers) * config.cold_start_fraction), replace=False).tolist())
    warm = frame[~frame[USER_KEY].isin(cold)].reset_index(drop=True)
    draw = rng.random(len(warm))
    return {
        "train": warm[draw < 0.8].reset_index(drop=True),
        "validation": warm[(draw >= 0.8) & (draw < 0.9)].reset_index(drop=True),
        "test": warm[draw >= 0.9].reset_index(drop=True),
        "cold_start": frame[frame[USER_KEY].isin(cold)].reset_index(drop=True),
    }


def train(frame: pd.DataFrame, config: TrainConfig = TrainConfig(), log_every: int = 5) -> TrainResult:
    """Fit preprocessing and the two towers; keep the best validation checkpoint; compute metrics."""
    if len(frame) < 50:
        raise ValueError(f"only {len(frame)} training rows: too few to train and validate a model")
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    parts = split(frame, config)
    train_df = parts["train"]
    user_features = fit_user_features(train_df)
    item_features = fit_item_features(train_df)
    global_mean = float(train_df[TARGET].mean())

    def tensors(df: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            torch.from_numpy(user_features.transform(df)),
            torch.from_numpy(item_features.transform(df)),
            torch.from_numpy(df[TARGET].to_numpy(dtype=np.float32)),
        )

    xu, xi, y = tensors(train_df)
    vu, vi, vy = tensors(parts["validation"])
    model = TwoTower(xu.shape[1], xi.shape[1], config.hidden, config.embedding_dim, global_mean)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    best_rmse, best_state, best_epoch, stale = math.inf, None, 0, 0
    started = time.monotonic()
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimiser.zero_grad()
            loss = nn.functional.mse_loss(model(xu[batch], xi[batch]), y[batch])
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            val_rmse = float(torch.sqrt(nn.functional.mse_loss(model(vu, vi), vy)))
        if val_rmse < best_rmse - 1e-5:
            best_rmse, best_epoch, stale = val_rmse, epoch, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if epoch % log_every == 0 or stale == 0:
            log.info("epoch %d: validation RMSE %.4f (best %.4f at %d)", epoch, val_rmse, best_rmse, best_epoch)
        if stale >= config.patience:
            log.info("early stop at epoch %d", epoch)
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    result = TrainResult(model, user_features, item_features, config)
    result.metrics = evaluate(result, parts, global_mean)
    result.metrics.update(
        best_epoch=best_epoch,
        training_rows=len(train_df),
        seconds=round(time.monotonic() - started, 1),
        config=asdict(config),
    )
    embed_all(result, frame)
    return result


def predict(result: TrainResult, df: pd.DataFrame) -> np.ndarray:
    with torch.no_grad():
        users = torch.from_numpy(result.user_features.transform(df))
        items = torch.from_numpy(result.item_features.transform(df))
        return result.model(users, items).numpy()


def evaluate(result: TrainResult, parts: dict[str, pd.DataFrame], global_mean: float) -> dict[str, Any]:
    train_df = parts["train"]
    item_means = train_df.groupby(ITEM_KEY)[TARGET].mean()
    metrics: dict[str, Any] = {}
    for name in ("validation", "test", "cold_start"):
        df = parts[name]
        truth = df[TARGET].to_numpy(dtype=float)
        model_pred = predict(result, df) if len(df) else np.array([])
        item_pred = df[ITEM_KEY].map(item_means).fillna(global_mean).to_numpy(dtype=float)
        metrics[name] = {
            "rows": len(df),
            "rmse": _rmse(model_pred, truth),
            "mae": _mae(model_pred, truth),
            "baseline_global_mean": {
                "rmse": _rmse(np.full_like(truth, global_mean), truth),
                "mae": _mae(np.full_like(truth, global_mean), truth),
            },
            "baseline_item_mean": {"rmse": _rmse(item_pred, truth), "mae": _mae(item_pred, truth)},
        }
    metrics["ranking"] = ranking_metrics(result, parts)
    return metrics


#: The rankings compared on the held-out split: the model's, and two baselines on the same candidates.
RANKERS = ("model", "most_popular", "random")


def rank_scores(ranked: list[Any], relevant: set[Any], k: int) -> tuple[float, float, float]:
    """recall@k, NDCG@k and AP@k of one user's top-k list (``ranked``) against their held-out positives."""
    hits = [1.0 if item in relevant else 0.0 for item in ranked[:k]]
    possible = min(k, len(relevant))
    ideal = sum(1.0 / math.log2(i + 2) for i in range(possible))
    ndcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits)) / ideal
    precision_at_hits = [sum(hits[: i + 1]) / (i + 1) for i, h in enumerate(hits) if h]
    return sum(hits) / possible, ndcg, sum(precision_at_hits) / possible


def ranked_candidates(
    result: TrainResult, parts: dict[str, pd.DataFrame]
) -> Iterator[tuple[Any, set[Any], dict[str, list[Any]]]]:
    """Per held-out user (a positive, rating >= 4, in ``test``): the user, their positives, and each of
    :data:`RANKERS`' order of the same candidates: every item of train and test the user has not rated in training
    (what a recommender would show). Most popular: items by their number of ratings in training (a purchase each, in
    the lab's data), ties by product code; random: a seeded shuffle."""
    train_df, test_df = parts["train"], parts["test"]
    items = _catalog(parts)
    with torch.no_grad():
        item_vecs = result.model.item(torch.from_numpy(result.item_features.transform(items))).numpy()
    item_ids = items[ITEM_KEY].tolist()
    counts = train_df[ITEM_KEY].value_counts()
    by_popularity = sorted(item_ids, key=lambda item: (-int(counts.get(item, 0)), str(item)))
    rng = np.random.default_rng(result.config.seed)
    seen = train_df.groupby(USER_KEY)[ITEM_KEY].agg(set)
    positives = test_df[test_df[TARGET] >= 4].groupby(USER_KEY)[ITEM_KEY].agg(set)
    first_rows = test_df.drop_duplicates(USER_KEY).set_index(USER_KEY)
    for customer, relevant in positives.items():
        excluded = seen.get(customer, set())
        row = first_rows.loc[[customer]].reset_index()
        with torch.no_grad():
            user_vec = result.model.user(torch.from_numpy(result.user_features.transform(row))).numpy()[0]
        orders = {
            "model": [item_ids[i] for i in np.argsort(-(item_vecs @ user_vec), kind="stable")],
            "most_popular": by_popularity,
            "random": [item_ids[i] for i in rng.permutation(len(item_ids))],
        }
        yield (
            customer,
            relevant,
            {name: [item for item in order if item not in excluded] for name, order in orders.items()},
        )


def _catalog(parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every item of train and test once (its first row), by item key."""
    return pd.concat([parts["train"], parts["test"]]).drop_duplicates(ITEM_KEY).sort_values(ITEM_KEY)


def ranking_metrics(result: TrainResult, parts: dict[str, pd.DataFrame], k: int = 10) -> dict[str, Any]:
    """The model's top-k against the most popular items and a random list, on the same held-out users and candidates
    (:func:`ranked_candidates`). Per ranking: recall@k, NDCG@k, MAP@k (mean over users) and catalog coverage (share
    of the candidate items that appear in anyone's top k)."""
    per_ranker: dict[str, list[tuple[float, float, float]]] = {name: [] for name in RANKERS}
    shown: dict[str, set[Any]] = {name: set() for name in RANKERS}
    users = 0
    for _, relevant, candidates in ranked_candidates(result, parts):
        users += 1
        for name, ranking in candidates.items():
            top = ranking[:k]
            per_ranker[name].append(rank_scores(top, relevant, k))
            shown[name].update(top)
    catalog = len(_catalog(parts))
    out: dict[str, Any] = {"k": k, "users": users, "candidate_items": catalog}
    for name in RANKERS:
        rows = np.array(per_ranker[name]) if per_ranker[name] else np.full((1, 3), np.nan)
        out[name] = {
            f"recall@{k}": float(np.mean(rows[:, 0])),
            f"ndcg@{k}": float(np.mean(rows[:, 1])),
            f"map@{k}": float(np.mean(rows[:, 2])),
            "coverage": len(shown[name]) / catalog if catalog else float("nan"),
        }
    return out


def ranking_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The held-out ranking in a few numbers (rounded), e.g. for an Asset event: per ranking, each metric at k."""
    ranking = metrics.get("ranking") or {}
    summary: dict[str, Any] = {"k": ranking.get("k"), "users": ranking.get("users")}
    for name in RANKERS:
        summary[name] = {key: round(float(value), 4) for key, value in (ranking.get(name) or {}).items()}
    return summary


def embed_all(result: TrainResult, frame: pd.DataFrame) -> None:
    """Embeddings of every customer and product in the dataset (one row per id, features as in the data)."""
    users = frame.drop_duplicates(USER_KEY).sort_values(USER_KEY)
    items = frame.drop_duplicates(ITEM_KEY).sort_values(ITEM_KEY)
    with torch.no_grad():
        result.user_embeddings = result.model.user(torch.from_numpy(result.user_features.transform(users))).numpy()
        result.item_embeddings = result.model.item(torch.from_numpy(result.item_features.transform(items))).numpy()
    result.user_ids = [int(u) for u in users[USER_KEY]]
    result.item_ids = [str(i) for i in items[ITEM_KEY]]


class QualityGateError(RuntimeError):
    """The model does not beat its baselines; the message carries the metrics."""


#: The ranking gate: the model's NDCG@10 on the held-out split must reach this multiple of the most-popular
#: baseline's. Measured (2026-12-06, 60 epochs): seed data 2.5x and 1.6x (seeds 42, 1); the public classicmodels
#: sample with lab-style ratings 1.5x, 3.5x and 1.4x (seeds 42, 1, 7). 1.1 leaves room for the small held-out sets
#: (49-70 users) and still refuses a model no better than "the ten most popular products".
RANKING_MARGIN = 1.1


def quality_gate(metrics: dict[str, Any], force: bool = False, split_name: str = "test") -> str:
    """Pass when, on the held-out ``test`` split, the model's RMSE beats the global-mean and item-mean baselines
    and its ranking (NDCG@k) reaches :data:`RANKING_MARGIN` times the most-popular baseline's; raise
    :class:`QualityGateError` otherwise (unless forced), so the version is not promoted and the live one keeps
    serving. The checkpoint was chosen on validation, so gating on validation would flatter the model."""
    held_out = metrics[split_name]
    if not held_out.get("rows"):
        raise QualityGateError(f"model not published: the {split_name} split is empty")
    best_baseline = min(held_out["baseline_global_mean"]["rmse"], held_out["baseline_item_mean"]["rmse"])
    message = (
        f"{split_name} RMSE {held_out['rmse']:.4f} vs best baseline {best_baseline:.4f} "
        f"(global mean {held_out['baseline_global_mean']['rmse']:.4f}, "
        f"item mean {held_out['baseline_item_mean']['rmse']:.4f}; {held_out['rows']} held-out ratings, "
        f"checkpoint chosen on validation RMSE {metrics['validation']['rmse']:.4f})"
    )
    failures = [] if held_out["rmse"] < best_baseline else ["RMSE"]
    ranking = metrics.get("ranking") or {}
    k = ranking.get("k", 10)
    model, popular = (ranking.get(name, {}).get(f"ndcg@{k}") for name in ("model", "most_popular"))
    if model is None or popular is None or not ranking.get("users"):
        failures.append("ranking")
        message += f"; no held-out ranking to compare with popularity ({ranking.get('users', 0)} users)"
    else:
        message += (
            f"; {split_name} NDCG@{k} {model:.4f} vs most popular {popular:.4f} x {RANKING_MARGIN} = "
            f"{popular * RANKING_MARGIN:.4f} (random {ranking['random'][f'ndcg@{k}']:.4f}; {ranking['users']} users)"
        )
        if not model >= popular * RANKING_MARGIN:
            failures.append("ranking")
    if not failures:
        return "passed: " + message
    if force:
        log.warning("quality gate failed (%s) but publishing is forced: %s", ", ".join(failures), message)
        return "forced: " + message
    raise QualityGateError(f"model not published ({' and '.join(failures)} gate): " + message)
