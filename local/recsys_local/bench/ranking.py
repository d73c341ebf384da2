"""Ranking quality against open recommenders (`make bench ARGS=ranking`): the served model beside implicit's ALS and
BPR and an item-kNN (implicit's BM25 item-item), most-popular and random, on the project's own split, candidates and
metrics, for the generated seed data (`make demo`'s) and, given its file, the public classicmodels sample.

Per dataset and seed (42, 1, 7): :func:`recsys.model.train.split` makes train / validation / test / cold-start; each
peer is trained on train with hyperparameters chosen by validation NDCG@10 over a small grid (the model chooses its
candidate and epoch on validation too); everything is scored on the test customers' positives (rating >= 4) over the
same candidates (every item the customer did not rate in training: :func:`recsys.model.train.ranked_candidates`), and
on the cold-start customers (none of their ratings in training: ALS, BPR and item-kNN cannot embed them, "n/a").

The targets (issue 36): on known customers the model's NDCG@10 is within the paired bootstrap interval of the best
of ALS and BPR or above it (the interval's upper end >= 0); on cold-start customers it beats popularity (pooled over
the three seeds: nine customers per seed are too few to read one seed alone).

The peers are dev dependencies (``implicit``): never in the Lambda zips or the Airflow requirements.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys_local.bench import Entry, say

SEEDS = (42, 1, 7)
K = 10
#: Validation grids of the peers (implicit 0.7's parameters).
GRIDS: dict[str, list[dict[str, Any]]] = {
    "als": [
        {"factors": f, "regularization": r, "iterations": i, "alpha": a}
        for f in (16, 32, 64)
        for r in (0.01, 0.1, 1.0)
        for i in (15, 50)
        for a in (1.0, 10.0)
    ],
    "bpr": [
        {"factors": f, "learning_rate": lr, "regularization": r, "iterations": i}
        for f in (16, 32, 64)
        for lr in (0.01, 0.05)
        for r in (0.001, 0.01)
        for i in (100, 400)
    ],
    "item_knn": [{"K": k, "K1": k1, "B": b} for k in (10, 20, 50, 200) for k1 in (0.6, 1.2) for b in (0.25, 0.75)],
}
PEERS = tuple(GRIDS)
ROWS = ("model", "als", "bpr", "item_knn", "most_popular", "random")


class PublicDumpError(ValueError):
    """The public sample's file cannot be read as the classicmodels dump."""


def public_sample_frame(dump: Path, rating_seed: int = 42) -> pd.DataFrame:
    """The training data of the public classicmodels dump (``mysqlsampledatabase.sql``), with one rating per
    purchased customer/product pair derived as ``python -m recsys_local.seed --from-sql`` derives them. The dump is
    read as data by sqlparse's lexer (its INSERT rows only), never executed."""
    from sqlparse import lexer, tokens

    from recsys.config import TRAINING_COLUMNS
    from recsys_local.seed.generator import derive_ratings

    wanted = {"customers", "products", "orders", "orderdetails"}
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
    table: str | None = None
    columns: list[str] = []
    row: list[Any] | None = None
    depth = 0
    try:
        text = dump.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise PublicDumpError(f"{dump}: not UTF-8 text (byte {error.start}): not the classicmodels dump") from None
    stream = [(t, v) for t, v in lexer.tokenize(text) if t not in tokens.Whitespace and t not in tokens.Newline]
    for n, (ttype, value) in enumerate(stream):
        if ttype in tokens.Keyword.DML and value.lower() == "insert":
            name = stream[n + 2][1].strip("`") if n + 2 < len(stream) else ""
            table, columns, row, depth = (name, [], None, 0) if name in wanted else (None, [], None, 0)
            continue
        if table is None:
            continue
        if value == "(":
            depth += 1
            if depth == 1 and columns:
                row = []
        elif value == ")":
            depth -= 1
            if row is not None and depth == 0:
                if len(row) != len(columns):
                    raise PublicDumpError(f"{dump}: a row of {table} has {len(row)} values for {len(columns)} columns")
                tables.setdefault(table, (columns, []))[1].append(row)
                row = None
        elif value == ";":
            table = None
        elif depth == 1 and row is None and ttype in tokens.Name:
            columns.append(value.strip("`"))
        elif row is not None and depth == 1 and value != ",":
            row.append(_literal(ttype, value, tokens))
    missing = wanted - set(tables)
    if missing:
        raise PublicDumpError(f"{dump}: no INSERT rows for {', '.join(sorted(missing))}: not the classicmodels dump")
    frames = {name: pd.DataFrame(rows, columns=cols) for name, (cols, rows) in tables.items()}
    needed = {
        "customers": ("customerNumber", "city", "state", "postalCode", "country", "creditLimit"),
        "products": ("productCode", "productLine", "productScale", "quantityInStock", "buyPrice", "MSRP"),
        "orders": ("orderNumber", "customerNumber"),
        "orderdetails": ("orderNumber", "productCode"),
    }
    for name, columns_needed in needed.items():
        absent = [c for c in columns_needed if c not in frames[name].columns]
        if absent:
            raise PublicDumpError(f"{dump}: table {name} has no column {', '.join(absent)}")
    customers, products = frames["customers"], frames["products"]
    for table, columns_numeric in ((customers, ("creditLimit",)), (products, ("buyPrice", "MSRP", "quantityInStock"))):
        for column in columns_numeric:
            try:
                table[column] = pd.to_numeric(table[column])
            except (TypeError, ValueError) as error:
                raise PublicDumpError(f"{dump}: column {column}: {error}") from None
    pairs = frames["orders"][["orderNumber", "customerNumber"]].merge(
        frames["orderdetails"][["orderNumber", "productCode"]]
    )[["customerNumber", "productCode"]]
    ratings = derive_ratings(pairs, customers, products, rating_seed)
    frame = ratings.merge(customers, on="customerNumber").merge(products, on="productCode")
    return frame[list(TRAINING_COLUMNS)]


def _literal(ttype: Any, value: str, tokens: Any) -> Any:
    if ttype in tokens.Keyword and value.upper() == "NULL":
        return None
    if ttype in tokens.Literal.String:
        body = value[1:-1]
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "0": "\0"}.get(m.group(1), m.group(1)), body).replace(
            "''", "'"
        )
    if ttype in tokens.Literal.Number:
        return float(value) if any(c in value for c in ".eE") else int(value)
    return value


@dataclass
class Scored:
    """One ranking's figures on one held-out set: mean metrics and each customer's NDCG@10 (customer order)."""

    ndcg: float
    recall: float
    map: float
    coverage: float
    per_user: list[float]
    params: dict[str, Any] | None = None


def _score(orders: list[list[Any]], relevant: list[set[Any]], catalog: int) -> Scored:
    from recsys.model.train import rank_scores

    rows = np.array([rank_scores(o[:K], r, K) for o, r in zip(orders, relevant, strict=True)])
    shown = {item for o in orders for item in o[:K]}
    return Scored(
        float(rows[:, 1].mean()),
        float(rows[:, 0].mean()),
        float(rows[:, 2].mean()),
        len(shown) / catalog,
        list(rows[:, 1]),
    )


def _peer_scores(parts: dict[str, pd.DataFrame], kind: str, params: dict[str, Any], seed: int) -> Callable[..., Any]:
    """A function customer -> {item: score} of a peer trained on ``parts['train']`` (purchases as interactions)."""
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import BM25Recommender
    from scipy.sparse import csr_matrix

    from recsys.model.train import ITEM_KEY, USER_KEY

    train = parts["train"]
    users = sorted(train[USER_KEY].unique())
    items = sorted(train[ITEM_KEY].unique())
    row, column = {u: n for n, u in enumerate(users)}, {i: n for n, i in enumerate(items)}
    matrix = csr_matrix(
        (np.ones(len(train), dtype=np.float32), (train[USER_KEY].map(row), train[ITEM_KEY].map(column))),
        shape=(len(users), len(items)),
    )
    if kind == "als":
        model = AlternatingLeastSquares(random_state=seed, num_threads=1, **params)
    elif kind == "bpr":
        model = BayesianPersonalizedRanking(random_state=seed, num_threads=1, **params)
    else:
        model = BM25Recommender(num_threads=1, **params)
    model.fit(matrix, show_progress=False)

    def scores(customer: Any) -> dict[Any, float]:
        if customer not in row:
            return {}
        if kind == "item_knn":
            ids, values = model.recommend(
                row[customer], matrix[row[customer]], N=len(items), filter_already_liked_items=False
            )
            return {items[i]: float(v) for i, v in zip(ids, values, strict=True)}
        vector = np.asarray(model.user_factors)[row[customer]]
        return dict(zip(items, (np.asarray(model.item_factors) @ vector).tolist(), strict=True))

    return scores


def _held_out(result: Any, parts: dict[str, pd.DataFrame], held_out: str) -> tuple[list[Any], list[set[Any]], list]:
    from recsys.model.train import ranked_candidates

    customers, relevant, candidates = [], [], []
    for customer, positives, orders in ranked_candidates(result, parts, held_out):
        customers.append(customer)
        relevant.append(positives)
        candidates.append(orders)
    return customers, relevant, candidates


def _peer_orders(scores: Callable[..., Any], customers: list[Any], candidates: list[dict[str, list[Any]]]) -> list:
    """Each customer's candidates (the model's own candidate set) ordered by the peer's scores (items it does not know
    last, by code: it cannot score what it never saw in training)."""
    out = []
    for customer, orders in zip(customers, candidates, strict=True):
        by_item = scores(customer)
        out.append(sorted(sorted(orders["model"]), key=lambda item: -by_item.get(item, -np.inf)))
    return out


def _tuned(parts: dict[str, pd.DataFrame], held: dict[str, tuple], kind: str, seed: int, catalog: int) -> Scored:
    """The peer with the grid point of the best validation NDCG@10, scored on test (``held``: :func:`_held_out` of
    each split)."""
    validation, test = held["validation"], held["test"]
    best: tuple[float, dict[str, Any]] | None = None
    for params in GRIDS[kind]:
        scorer = _peer_scores(parts, kind, params, seed)
        value = _score(_peer_orders(scorer, validation[0], validation[2]), validation[1], catalog).ndcg
        if best is None or value > best[0]:
            best = (value, params)
    assert best is not None
    scored = _score(_peer_orders(_peer_scores(parts, kind, best[1], seed), test[0], test[2]), test[1], catalog)
    scored.params = best[1]
    return scored


def measure(frame: pd.DataFrame, seed: int) -> dict[str, Any]:
    """Every ranking of one dataset and seed, warm (test) and cold-start customers."""
    from threadpoolctl import threadpool_limits

    from recsys.model.train import TrainConfig, candidate_catalog, gate_figures, paired_bootstrap, split, train

    result = train(frame, TrainConfig(seed=seed))
    parts = split(frame, result.config)
    catalog = len(candidate_catalog(parts))
    gate = gate_figures(result.metrics)
    held = {name: _held_out(result, parts, name) for name in ("validation", "test", "cold_start")}
    out: dict[str, Any] = {
        "candidate": result.candidate.name,
        "training_seconds": result.metrics["seconds"],
        "gate": "pass" if gate["interval_above_zero"] and gate["reaches_margin"] else "refused",
    }
    for held_out in ("test", "cold_start"):
        customers, relevant, candidates = held[held_out]
        figures: dict[str, Any] = {"users": len(customers)}
        for name in ("model", "most_popular", "random"):
            figures[name] = _score([c[name] for c in candidates], relevant, catalog)
        out[held_out] = figures
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        # implicit's BM25 weighting hands its own fit a COO matrix and then warns about it
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        for kind in PEERS:
            out["test"][kind] = _tuned(parts, held, kind, seed, catalog)
    warm = out["test"]
    best = max(("als", "bpr"), key=lambda name: warm[name].ndcg)
    mean, low, high = paired_bootstrap(warm["model"].per_user, warm[best].per_user)
    out["versus_best_peer"] = {"peer": best, "difference": mean, "interval_95": [low, high]}
    return out


def table(results: dict[str, dict[int, dict[str, Any]]]) -> str:
    """The Markdown table of NDCG@10 (warm / cold-start) per ranking, dataset and seed."""
    header = (
        "| data | seed | customers (warm / cold) | "
        + " | ".join(ROWS)
        + " | model - best of ALS, BPR (95% interval) | the model's gate |"
    )
    lines = [header, "|" + "---|" * (len(ROWS) + 5)]
    for dataset, by_seed in results.items():
        for seed, r in by_seed.items():
            cells = []
            for name in ROWS:
                warm = r["test"][name].ndcg
                cold = r["cold_start"][name].ndcg if name in r["cold_start"] else None
                cells.append(f"{warm:.3f} / " + (f"{cold:.3f}" if cold is not None else "n/a"))
            versus = r["versus_best_peer"]
            low, high = versus["interval_95"]
            lines.append(
                f"| {dataset} | {seed} | {r['test']['users']} / {r['cold_start']['users']} | "
                + " | ".join(cells)
                + f" | {versus['difference']:+.3f} ({versus['peer']}) [{low:+.3f}, {high:+.3f}] | {r['gate']} |"
            )
    return "\n".join(lines)


def run(quick: bool, public_dump: Path | None = None) -> list[Entry]:
    from recsys_local.bench import generated_frame
    from recsys_local.seed.generator import SeedSpec

    datasets: dict[str, pd.DataFrame] = {"seed data": generated_frame(SeedSpec())[0]}
    if public_dump is None:
        say("ranking: the public classicmodels sample is not measured (give --public-dump mysqlsampledatabase.sql)")
    else:
        datasets["public sample"] = public_sample_frame(public_dump)
    seeds = SEEDS[:1] if quick else SEEDS
    results: dict[str, dict[int, dict[str, Any]]] = {}
    entries: list[Entry] = []
    for dataset, frame in datasets.items():
        results[dataset] = {}
        for seed in seeds:
            say(f"ranking: {dataset}, seed {seed}: training the model and tuning ALS, BPR, item-kNN on validation")
            r = results[dataset][seed] = measure(frame, seed)
            versus = r["versus_best_peer"]
            entries.append(
                Entry(
                    name=f"NDCG@10 of known customers, {dataset}, seed {seed}: model minus the best of ALS and BPR, "
                    "upper end of the 95% paired interval",
                    value=round(versus["interval_95"][1], 4),
                    unit="",
                    reference_name="",
                    reference=None,
                    target=0.0,
                    better="higher",
                    absolute=True,
                    detail={"model": r["test"]["model"].ndcg, versus["peer"]: r["test"][versus["peer"]].ndcg, **versus},
                )
            )
        cold_model = float(np.mean([r["cold_start"]["model"].ndcg for r in results[dataset].values()]))
        cold_popular = float(np.mean([r["cold_start"]["most_popular"].ndcg for r in results[dataset].values()]))
        entries.append(
            Entry(
                name=f"NDCG@10 of cold-start customers, {dataset}, mean over seeds {', '.join(map(str, seeds))}",
                value=round(cold_model, 4),
                unit="",
                reference_name="the most-popular list, same customers",
                reference=round(cold_popular, 4),
                target=1.0,
                better="higher",
                detail={"users": sum(r["cold_start"]["users"] for r in results[dataset].values())},
            )
        )
    rendered = table(results)
    print(rendered, flush=True)
    entries[-1].detail["table"] = rendered
    return entries
