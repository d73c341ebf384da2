"""Train the recommender (torch) on the training dataset; rank against baselines; gate.

The model is a hybrid two-tower ranker. Each customer known in training has a learned embedding, each product too;
the towers turn attributes into vectors (customer: city, country, credit limit; product: line, scale, stock,
prices). A known customer's vector is ``tower_weight * user_tower(attributes) + user_id[customer]``, a known
product's likewise; a customer or product not in training (new since) is its tower alone. Scores are inner
products, which is what the vector DB's index searches (pgvector ``vector_ip_ops``), so the stored vectors are all a
reader needs: the Lambdas use a known customer's stored vector and the bundle's towers only for newcomers.

Objective: the top-N task, not rating prediction. A softmax over the catalog for each purchase (ratings >= 4 weigh
1, lower ones :attr:`TrainConfig.low_rating_weight`: a purchase is still a signal of interest), plus the same loss
for the towers alone (the path of customers and products the ids do not know: DropoutNet's idea), plus optionally a
rating regression on the same vectors (an auxiliary task that helps where attributes drive ratings). Two
candidates are trained (:data:`CANDIDATES`: towers only with the rating task, or ids for known customers and
products with the towers for newcomers) and the one with the better validation NDCG@10 is kept, as any
hyperparameter: on the public sample, where purchases follow co-purchase patterns, the ids win; on the generated
data, where attributes drive ratings and purchases, the towers do. Measured beside ALS, BPR and item-kNN:
``make bench ARGS=ranking``.

Splits (deterministic for a seed): 10% of customers are held out entirely (cold-start report); of the rest, ratings
are split 80/10/10 into train / validation (early stopping, the candidate's choice) / test (the quality gate: a
split nothing was chosen on, so the gate sees an honest estimate).
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
#: A held-out rating this high is a positive: an item the customer should have been shown.
POSITIVE_RATING = 4


@dataclass(frozen=True)
class Candidate:
    """One architecture choice: whether customers and products get id embeddings, how much the towers add to a known
    id's vector, and the rating task's weight."""

    name: str
    tower_weight: float
    rating_loss_weight: float
    ids: bool = True


#: Trained in turn; the best validation NDCG@10 is kept (measured on both datasets and three seeds each,
#: docs/pipelines.md). A candidate without ids uses the towers for everyone. A third, ids plus towers for known
#: customers (tower_weight 1), never won validation on either dataset and cost a third of the training time.
CANDIDATES = (
    Candidate("towers", 1.0, 1.0, ids=False),
    Candidate("ids", 0.0, 0.0),
)


@dataclass(frozen=True)
class TrainConfig:
    embedding_dim: int = EMBEDDING_DIM
    hidden: int = 64
    epochs: int = 300
    batch_size: int = 512
    learning_rate: float = 2e-2
    weight_decay: float = 1e-3
    dropout: float = 0.0
    low_rating_weight: float = 0.3
    patience: int = 15
    seed: int = 42
    cold_start_fraction: float = 0.1


class Tower(nn.Module):
    def __init__(self, width: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class HybridTwoTower(nn.Module):
    """Towers over attributes plus learned id embeddings (index 0: unknown, the tower alone)."""

    def __init__(
        self, user_width: int, item_width: int, users: int, items: int, hidden: int, dim: int, tower_weight: float
    ) -> None:
        super().__init__()
        self.user = Tower(user_width, hidden, dim)
        self.item = Tower(item_width, hidden, dim)
        self.user_id = nn.Embedding(users + 1, dim, padding_idx=0)
        self.item_id = nn.Embedding(items + 1, dim, padding_idx=0)
        for table in (self.user_id, self.item_id):
            nn.init.normal_(table.weight, 0.0, 0.01)
            with torch.no_grad():
                table.weight[0].zero_()
        self.register_buffer("tower_weight", torch.tensor(float(tower_weight)))
        # the auxiliary rating task reads the same inner product through an affine map
        self.rating_scale = nn.Parameter(torch.tensor(0.1))
        self.rating_bias = nn.Parameter(torch.tensor(0.0))

    @staticmethod
    def combine(tower: torch.Tensor, ids: torch.Tensor, table: nn.Embedding, weight: torch.Tensor) -> torch.Tensor:
        return torch.where((ids > 0).unsqueeze(1), weight * tower + table(ids), tower)

    def users(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.combine(self.user(x), ids, self.user_id, self.tower_weight)

    def items(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.combine(self.item(x), ids, self.item_id, self.tower_weight)


@dataclass
class TrainResult:
    model: HybridTwoTower
    user_features: TowerFeatures
    item_features: TowerFeatures
    config: TrainConfig
    candidate: Candidate = CANDIDATES[0]
    #: customer number / product code -> row of the id embedding (1-based; absent: not in training)
    user_index: dict[int, int] = field(default_factory=dict)
    item_index: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    user_ids: list[int] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    user_embeddings: np.ndarray | None = None
    item_embeddings: np.ndarray | None = None

    def architecture(self) -> dict[str, Any]:
        return {
            "user_width": self.model.user.net[0].in_features,
            "item_width": self.model.item.net[0].in_features,
            "users": self.model.user_id.num_embeddings - 1,
            "items": self.model.item_id.num_embeddings - 1,
            "hidden": self.config.hidden,
            "dim": self.config.embedding_dim,
            "candidate": asdict(self.candidate),
        }

    def embed_users(self, rows: pd.DataFrame) -> np.ndarray:
        """Vectors of customers (one row each, with their attributes): known ones with their id embedding."""
        ids = torch.tensor([self.user_index.get(int(u), 0) for u in rows[USER_KEY]], dtype=torch.long)
        with torch.no_grad():
            return self.model.users(torch.from_numpy(self.user_features.transform(rows)), ids).numpy()

    def embed_items(self, rows: pd.DataFrame) -> np.ndarray:
        ids = torch.tensor([self.item_index.get(str(i), 0) for i in rows[ITEM_KEY]], dtype=torch.long)
        with torch.no_grad():
            return self.model.items(torch.from_numpy(self.item_features.transform(rows)), ids).numpy()

    def bundle(self, model_version: str) -> InferenceBundle:
        """The towers (for customers and products the version's tables do not hold), without torch or pickle."""
        layers = {}
        for name, tower in (("user", self.model.user), ("item", self.model.item)):
            linears = [m for m in tower.net if isinstance(m, nn.Linear)]
            layers[name] = [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linears]
        return InferenceBundle(
            model_version=model_version,
            global_mean=0.0,
            user_encoder=self.user_features.to_encoder(),
            item_encoder=self.item_features.to_encoder(),
            layers=layers,
        )


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


def train(
    frame: pd.DataFrame, config: TrainConfig = TrainConfig(), candidates: tuple[Candidate, ...] = CANDIDATES
) -> TrainResult:
    """Fit preprocessing and each of ``candidates``; keep the one with the best validation NDCG@10 (at its best
    epoch); compute the held-out metrics and every customer's and product's vector. Hyperparameters (the defaults of
    :class:`TrainConfig`) were chosen by validation NDCG@10 summed over both datasets and three seeds, with the
    training time held near twice the rating model's (docs/pipelines.md)."""
    if len(frame) < 50:
        raise ValueError(f"only {len(frame)} training rows: too few to train and validate a model")
    torch.use_deterministic_algorithms(True)
    started = time.monotonic()
    parts = split(frame, config)
    train_df = parts["train"]
    user_index = {int(u): n + 1 for n, u in enumerate(sorted(train_df[USER_KEY].unique()))}
    item_index = {str(i): n + 1 for n, i in enumerate(sorted(train_df[ITEM_KEY].unique()))}
    fitted, best, tried = None, -math.inf, {}
    for candidate in candidates:
        result = TrainResult(
            None,  # type: ignore[arg-type]  # set by _fit
            fit_user_features(train_df),
            fit_item_features(train_df),
            config,
            candidate,
            user_index if candidate.ids else {},
            item_index if candidate.ids else {},
        )
        validation_ndcg, best_epoch = _fit(result, parts)
        tried[candidate.name] = {"validation_ndcg@10": round(validation_ndcg, 6), "best_epoch": best_epoch}
        log.info("candidate %s: validation NDCG@10 %.4f (epoch %d)", candidate.name, validation_ndcg, best_epoch)
        if fitted is None or validation_ndcg > best:
            fitted, best = result, validation_ndcg
    assert fitted is not None
    fitted.metrics = evaluate(fitted, parts)
    fitted.metrics.update(
        candidate=fitted.candidate.name,
        candidates=tried,
        best_epoch=tried[fitted.candidate.name]["best_epoch"],
        training_rows=len(train_df),
        seconds=round(time.monotonic() - started, 1),
        config=asdict(config),
    )
    embed_all(fitted, frame)
    return fitted


class _ValidationRanking:
    """NDCG@k of every validation customer's ranking of the catalog (what they rated in training excluded), vectorised:
    the early-stopping signal, the same figure :func:`ranking_metrics` computes for the test split."""

    def __init__(self, result: TrainResult, parts: dict[str, pd.DataFrame], items: list[str], k: int = 10) -> None:
        held = parts["validation"]
        positives = held[held[TARGET] >= POSITIVE_RATING].groupby(USER_KEY)[ITEM_KEY].agg(set)
        seen = parts["train"].groupby(USER_KEY)[ITEM_KEY].agg(set)
        column = {item: n for n, item in enumerate(items)}
        self.excluded = np.zeros((len(positives), len(items)), dtype=bool)
        self.relevant = np.zeros((len(positives), len(items)))
        for row, (customer, relevant) in enumerate(positives.items()):
            self.excluded[row, [column[i] for i in seen.get(customer, ())]] = True
            self.relevant[row, [column[i] for i in relevant if i in column]] = 1.0
        self.discount = 1.0 / np.log2(np.arange(2, k + 2))
        # as rank_scores: the ideal counts every positive, also one outside the candidates (never 0/0)
        self.ideal = np.array([self.discount[: min(k, len(relevant))].sum() for relevant in positives])
        self.k = k
        users = held.drop_duplicates(USER_KEY).set_index(USER_KEY).loc[list(positives.index)].reset_index()
        self.user_x = torch.from_numpy(result.user_features.transform(users))
        self.user_ids = torch.tensor([result.user_index.get(int(u), 0) for u in users[USER_KEY]], dtype=torch.long)

    def ndcg(self, model: HybridTwoTower, item_x: torch.Tensor, item_ids: torch.Tensor) -> float:
        if not len(self.ideal):
            return float("nan")
        with torch.no_grad():
            scores = (model.users(self.user_x, self.user_ids) @ model.items(item_x, item_ids).T).numpy()
        scores[self.excluded] = -np.inf
        top = np.argsort(-scores, axis=1, kind="stable")[:, : self.k]
        gains = np.take_along_axis(self.relevant, top, axis=1) @ self.discount
        return float(np.mean(gains / self.ideal))


def _fit(result: TrainResult, parts: dict[str, pd.DataFrame]) -> tuple[float, int]:
    """Train ``result``'s candidate; keep its best validation checkpoint. Returns (validation NDCG@10, epoch)."""
    config, candidate, train_df = result.config, result.candidate, parts["train"]
    torch.manual_seed(config.seed)
    catalog = candidate_catalog(parts)
    items = catalog[ITEM_KEY].tolist()
    item_x = torch.from_numpy(result.item_features.transform(catalog))
    item_ids = torch.tensor([result.item_index.get(str(i), 0) for i in items], dtype=torch.long)
    column = {item: n for n, item in enumerate(items)}
    model = HybridTwoTower(
        result.user_features.transform(train_df.head(1)).shape[1],
        item_x.shape[1],
        len(result.user_index),
        len(result.item_index),
        config.hidden,
        config.embedding_dim,
        candidate.tower_weight,
    )
    result.model = model
    users_x = torch.from_numpy(result.user_features.transform(train_df))
    users_ids = torch.tensor([result.user_index.get(int(u), 0) for u in train_df[USER_KEY]], dtype=torch.long)
    targets = torch.tensor([column[i] for i in train_df[ITEM_KEY]], dtype=torch.long)
    ratings = torch.from_numpy(train_df[TARGET].to_numpy(dtype=np.float32))
    weights = torch.where(ratings >= POSITIVE_RATING, 1.0, config.low_rating_weight)
    mean_rating = float(ratings.mean())
    optimiser = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, foreach=True
    )
    validation = _ValidationRanking(result, parts, items)
    generator = torch.Generator().manual_seed(config.seed)

    def softmax_loss(users: torch.Tensor, catalog_vectors: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        losses = nn.functional.cross_entropy(users @ catalog_vectors.T, targets[batch], reduction="none")
        return (losses * weights[batch]).mean()

    best_ndcg, best_state, best_epoch, stale = -math.inf, None, 0, 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(targets), generator=generator)
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            user_towers, item_towers = model.user(users_x[batch]), model.item(item_x)
            users = model.combine(user_towers, users_ids[batch], model.user_id, model.tower_weight)
            users = nn.functional.dropout(users, config.dropout)
            catalog_vectors = model.combine(item_towers, item_ids, model.item_id, model.tower_weight)
            loss = softmax_loss(users, catalog_vectors, batch)
            if candidate.ids:  # the towers alone must rank too: the path for customers and products new since training
                loss = loss + softmax_loss(user_towers, catalog_vectors, batch)
                loss = loss + softmax_loss(users, item_towers, batch)
            if candidate.rating_loss_weight:
                inner = (users * catalog_vectors[targets[batch]]).sum(dim=1)
                predicted = mean_rating + model.rating_bias + model.rating_scale * inner
                loss = loss + candidate.rating_loss_weight * nn.functional.mse_loss(predicted, ratings[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        ndcg = validation.ndcg(model, item_x, item_ids)
        if ndcg > best_ndcg + 1e-6:
            best_ndcg, best_epoch, stale = ndcg, epoch, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if epoch % LOG_EVERY == 0:
            log.info(
                "%s epoch %d: validation NDCG@10 %.4f (best %.4f at %d)",
                candidate.name,
                epoch,
                ndcg,
                best_ndcg,
                best_epoch,
            )
        if stale >= config.patience:
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    return best_ndcg, best_epoch


#: Epochs between progress lines of a candidate's training.
LOG_EVERY = 10


def evaluate(result: TrainResult, parts: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Held-out rankings: the test split (known customers: the gate's) and the cold-start customers (none of their
    ratings in training: the towers' path), each against the most-popular and a random list."""
    return {
        "rows": {name: len(part) for name, part in parts.items()},
        "ranking": ranking_metrics(result, parts),
        "cold_start_ranking": ranking_metrics(result, parts, held_out="cold_start"),
    }


#: The rankings compared on the held-out split: the model's, and two baselines on the same candidates.
RANKERS = ("model", "most_popular", "random")
#: The non-learned lists the gate pairs the model with (the stronger of them on the day).
BASELINES = ("most_popular", "random")


def rank_scores(ranked: list[Any], relevant: set[Any], k: int) -> tuple[float, float, float]:
    """recall@k, NDCG@k and AP@k of one user's top-k list (``ranked``) against their held-out positives."""
    hits = [1.0 if item in relevant else 0.0 for item in ranked[:k]]
    possible = min(k, len(relevant))
    ideal = sum(1.0 / math.log2(i + 2) for i in range(possible))
    ndcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits)) / ideal
    precision_at_hits = [sum(hits[: i + 1]) / (i + 1) for i, h in enumerate(hits) if h]
    return sum(hits) / possible, ndcg, sum(precision_at_hits) / possible


def ranked_candidates(
    result: TrainResult, parts: dict[str, pd.DataFrame], held_out: str = "test"
) -> Iterator[tuple[Any, set[Any], dict[str, list[Any]]]]:
    """Per held-out customer (a positive, rating >= 4, in ``held_out``): the customer, their positives, and each of
    :data:`RANKERS`' order of the same candidates: every item of train and test the customer has not rated in
    training (what a recommender would show; a cold-start customer rated nothing there). The model ranks with the
    customer's vector as served (a known customer's id embedding, else the tower); most popular: items by their
    number of ratings in training (a purchase each, in the lab's data), ties by product code; random: a seeded
    shuffle."""
    train_df, held = parts["train"], parts[held_out]
    items = candidate_catalog(parts)
    item_vecs = result.embed_items(items)
    item_ids = items[ITEM_KEY].tolist()
    counts = train_df[ITEM_KEY].value_counts()
    by_popularity = sorted(item_ids, key=lambda item: (-int(counts.get(item, 0)), str(item)))
    rng = np.random.default_rng(result.config.seed)
    seen = train_df.groupby(USER_KEY)[ITEM_KEY].agg(set)
    positives = held[held[TARGET] >= POSITIVE_RATING].groupby(USER_KEY)[ITEM_KEY].agg(set)
    first_rows = held.drop_duplicates(USER_KEY).set_index(USER_KEY).loc[list(positives.index)].reset_index()
    user_vecs = result.embed_users(first_rows) if len(first_rows) else np.zeros((0, item_vecs.shape[1]))
    for (customer, relevant), user_vec in zip(positives.items(), user_vecs, strict=True):
        excluded = seen.get(customer, set())
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


def candidate_catalog(parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every item of train and test once (its first row), by item key."""
    return pd.concat([parts["train"], parts["test"]]).drop_duplicates(ITEM_KEY).sort_values(ITEM_KEY)


def ranking_metrics(
    result: TrainResult, parts: dict[str, pd.DataFrame], k: int = 10, held_out: str = "test"
) -> dict[str, Any]:
    """The model's top-k against the most popular items and a random list, on the same held-out customers and
    candidates (:func:`ranked_candidates`). Per ranking: recall@k, NDCG@k, MAP@k (mean over customers), catalog
    coverage (share of the candidate items that appear in anyone's top k), and each customer's NDCG@k in customer
    order (``per_user_ndcg@k``, what the gate pairs)."""
    per_ranker: dict[str, list[tuple[float, float, float]]] = {name: [] for name in RANKERS}
    shown: dict[str, set[Any]] = {name: set() for name in RANKERS}
    users = 0
    for _, relevant, candidates in ranked_candidates(result, parts, held_out):
        users += 1
        for name, ranking in candidates.items():
            top = ranking[:k]
            per_ranker[name].append(rank_scores(top, relevant, k))
            shown[name].update(top)
    catalog = len(candidate_catalog(parts))
    out: dict[str, Any] = {"k": k, "users": users, "candidate_items": catalog}
    for name in RANKERS:
        rows = np.array(per_ranker[name]) if per_ranker[name] else np.full((1, 3), np.nan)
        out[name] = {
            f"recall@{k}": float(np.mean(rows[:, 0])),
            f"ndcg@{k}": float(np.mean(rows[:, 1])),
            f"map@{k}": float(np.mean(rows[:, 2])),
            "coverage": len(shown[name]) / catalog if catalog else float("nan"),
            f"per_user_ndcg@{k}": [round(float(r[1]), 6) for r in per_ranker[name]],
        }
    return out


def ranking_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The held-out ranking in a few numbers (rounded), e.g. for an Asset event: per ranking, each metric at k (the
    per-customer lists left out) for known and cold-start customers, the gate's comparison (``gate_figures``) and
    the candidate kept."""
    summary: dict[str, Any] = {}
    for part in ("ranking", "cold_start_ranking"):
        ranking = metrics.get(part) or {}
        figures: dict[str, Any] = {"k": ranking.get("k"), "users": ranking.get("users")}
        for name in RANKERS:
            figures[name] = {
                key: round(float(value), 4)
                for key, value in (ranking.get(name) or {}).items()
                if not key.startswith("per_user")
            }
        summary[part] = figures
    summary["gate_figures"] = gate_figures(metrics)
    summary["candidate"] = metrics.get("candidate")
    return summary


def embed_all(result: TrainResult, frame: pd.DataFrame) -> None:
    """Vectors of every customer and product in the dataset (one row per id, features as in the data): known ones
    with their id embeddings, the others by the towers."""
    users = frame.drop_duplicates(USER_KEY).sort_values(USER_KEY)
    items = frame.drop_duplicates(ITEM_KEY).sort_values(ITEM_KEY)
    result.user_embeddings = result.embed_users(users)
    result.item_embeddings = result.embed_items(items)
    result.user_ids = [int(u) for u in users[USER_KEY]]
    result.item_ids = [str(i) for i in items[ITEM_KEY]]


class QualityGateError(RuntimeError):
    """The model does not beat its baselines; the message carries the metrics."""


#: The gate's margin on the point estimate: the model's mean NDCG@10 must reach this multiple of the stronger
#: baseline's (besides the interval's lower bound above zero). Chosen on the validation splits, which the gate does
#: not decide on: the smallest validation ratio over both datasets and three seeds was 1.72 (generated data, seed
#: 1), and validation flatters (the epoch and the candidate are picked there), so a quarter better it is
#: (docs/pipelines.md, "The gate").
RANKING_MARGIN = 1.25
#: Resamples of the paired bootstrap over customers, and its fixed seed (the verdict is reproducible).
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 20261207


def paired_bootstrap(
    a: list[float], b: list[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float, float]:
    """Mean of ``a - b`` (paired per customer) and its 95% percentile-bootstrap interval over customers."""
    from scipy.stats import bootstrap

    difference = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean = float(difference.mean()) if len(difference) else float("nan")
    if len(difference) < 2:  # nothing to resample
        return mean, mean, mean
    interval = bootstrap(
        (difference,),
        np.mean,
        n_resamples=resamples,
        batch=max(1, 2_000_000 // len(difference)),  # memory: 10,000 resamples x 100k customers at once would not fit
        vectorized=True,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return mean, float(interval.low), float(interval.high)


def gate_figures(metrics: dict[str, Any], held_out: str = "ranking") -> dict[str, Any]:
    """The model against the stronger non-learned list on the held-out customers: NDCG@k of both, the paired
    difference and its 95% bootstrap interval, the number of customers, and the gate's two tests (on the unrounded
    figures)."""
    ranking = metrics.get(held_out) or {}
    k = ranking.get("k", 10)
    key = f"ndcg@{k}"
    if not ranking.get("users") or any(f"per_user_{key}" not in (ranking.get(n) or {}) for n in RANKERS):
        return {"users": ranking.get("users", 0)}
    baseline = max(BASELINES, key=lambda name: ranking[name][key])
    mean, low, high = paired_bootstrap(ranking["model"][f"per_user_{key}"], ranking[baseline][f"per_user_{key}"])
    model, reference = float(ranking["model"][key]), float(ranking[baseline][key])
    return {
        "k": k,
        "users": ranking["users"],
        "model": round(ranking["model"][key], 4),
        "baseline": baseline,
        "baseline_ndcg": round(ranking[baseline][key], 4),
        "difference": round(mean, 4),
        "interval_95": [round(low, 4), round(high, 4)],
        "margin": RANKING_MARGIN,
        "interval_above_zero": bool(low > 0),
        "reaches_margin": bool(model >= reference * RANKING_MARGIN),
    }


def quality_gate(metrics: dict[str, Any], force: bool = False) -> str:
    """Pass when, on the held-out test customers, the model's NDCG@10 beats the stronger of the most-popular and
    random lists: the 95% lower bound of the paired bootstrap difference above zero, and the mean at least
    :data:`RANKING_MARGIN` times the baseline's. Raise :class:`QualityGateError` otherwise (unless forced), so the
    version is not promoted and the live one keeps serving. Nothing was chosen on the test split (the checkpoint
    and the candidate were chosen on validation), so the gate sees an honest estimate."""
    figures = gate_figures(metrics)
    if "difference" not in figures:
        message = f"no held-out ranking to compare with the baselines ({figures['users']} customers)"
        failures = ["no ranking"]
    else:
        k, low, high = figures["k"], *figures["interval_95"]
        message = (
            f"test NDCG@{k} {figures['model']:.4f} vs {figures['baseline'].replace('_', ' ')} "
            f"{figures['baseline_ndcg']:.4f} (the stronger baseline); paired difference {figures['difference']:+.4f}, "
            f"95% interval [{low:+.4f}, {high:+.4f}] over {figures['users']} customers; margin {RANKING_MARGIN}x = "
            f"{figures['baseline_ndcg'] * RANKING_MARGIN:.4f}"
        )
        failures = []
        if not figures["interval_above_zero"]:
            failures.append("interval")
        if not figures["reaches_margin"]:
            failures.append("margin")
    if not failures:
        return "passed: " + message
    if force:
        log.warning("quality gate failed (%s) but publishing is forced: %s", ", ".join(failures), message)
        return "forced: " + message
    raise QualityGateError(f"model not published ({' and '.join(failures)} gate): " + message)
