"""The served path measured: held-out customers' events replayed through the deployed transformation Lambda, the
lists it returns scored with the model's own ranking metrics and compared with the model's exact ranking of the same
events (``make bench`` and ``tests/e2e/test_streaming_dag.py``).

What this measures: the served list (the Lambda's ``recommended_items``: a known customer's vector stored at
training, a newcomer's from the event's attributes through the bundle's user tower, then the search index over the
served version's item table) against the exact top k of the same user vector (the search's and the Lambda's own
share of any gap). Cold-start rules concern the similar-items answers, not this list. Both are scored against the
same held-out positives (rating >= 4 in the version's test split, the split training used), over every item (the
Lambda does not filter what a customer bought before), at the Lambda's k.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from recsys.model.train import ITEM_KEY, TARGET, USER_KEY, TrainConfig, rank_scores, split
from recsys.streaming.pipeline import firehose_transformation_event
from recsys.vectordb.loader import parse_embedding
from recsys_serving.bundle import InferenceBundle
from recsys_serving.events import browsed_item, parse_event
from recsys_serving.recommender import DEFAULT_K


@dataclass(frozen=True)
class HeldOut:
    customer: int
    relevant: frozenset[str]
    event: dict[str, Any]


def held_out_events(frame: pd.DataFrame, seed: int) -> list[HeldOut]:
    """One event per customer with a held-out positive, in the test split training made with ``seed``: the
    customer's features as the source has them, browsing one product they bought in training."""
    parts = split(frame, TrainConfig(seed=seed))
    train_df, test_df = parts["train"], parts["test"]
    positives = test_df[test_df[TARGET] >= 4].groupby(USER_KEY)[ITEM_KEY].agg(set)
    bought = train_df.drop_duplicates(USER_KEY).set_index(USER_KEY)
    rows = test_df.drop_duplicates(USER_KEY).set_index(USER_KEY)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for customer, relevant in positives.items():
        if customer not in bought.index:
            continue
        user, product = rows.loc[customer], bought.loc[customer]
        credit = user["creditLimit"]
        event = {
            "session_id": f"held-out-{customer}",
            "customer_number": int(customer),
            "city": str(user["city"]),
            "country": str(user["country"]),
            "credit_limit": None if pd.isna(credit) else float(credit),
            "event_time": now,
            "browse_history": [browsed_item(product)],
        }
        out.append(HeldOut(int(customer), frozenset(map(str, relevant)), event))
    return out


def firehose_event(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A Firehose transformation event carrying ``events`` (recordId = session id)."""
    records = [(e["session_id"], json.dumps(e).encode()) for e in events]
    return firehose_transformation_event(records, f"served-ranking-{int(time.time() * 1000)}", "served-ranking")


def served_lists(lambda_client: Any, function: str, qualifier: str, held: list[HeldOut]) -> dict[str, Any]:
    """session id -> the decoded answer of the deployed function (``recommended_items``, ``model_version``)."""
    response = lambda_client.invoke(
        FunctionName=function, Qualifier=qualifier, Payload=json.dumps(firehose_event([h.event for h in held]))
    )
    payload = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        raise RuntimeError(f"{function}:{qualifier} failed: {json.dumps(payload)[:500]}")
    answers = {}
    for record in payload["records"]:
        if record["result"] != "Ok":
            raise RuntimeError(f"{function}:{qualifier}: record {record['recordId']} is {record['result']}")
        answers[record["recordId"]] = json.loads(base64.b64decode(record["data"]))
    return answers


def item_vectors(csv_bytes: bytes) -> tuple[list[str], np.ndarray]:
    """(ids, vectors) of an embeddings CSV as the model publishes it (``id,embedding``, pgvector literals)."""
    rows = list(csv.reader(io.StringIO(csv_bytes.decode())))[1:]
    vectors = [parse_embedding(r[1], f"line {line}") for line, r in enumerate(rows, start=2)]
    return [r[0] for r in rows], np.array(vectors)


def compare(
    held: list[HeldOut],
    answers: dict[str, Any],
    bundle: InferenceBundle,
    ids: list[str],
    vectors: np.ndarray,
    stored_users: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The served lists against the model's exact top k, scored against the held-out positives with the model's
    metrics (recall, NDCG, MAP at the Lambda's k, catalog coverage).

    ``exact`` ranks every item of the version (numpy) with the vector the Lambda uses: the customer's stored vector
    (``stored_users``, the version's user embeddings) when it has one, else the bundle's user tower over the event's
    attributes; the gap to it is the search index's and the Lambda's rules'."""
    k = len(next(iter(answers.values()))["recommended_items"]) if answers else DEFAULT_K
    towers = bundle.user_embeddings([parse_event(h.event).user_features() for h in held])
    lists: dict[str, list[list[str]]] = {"served": [], "exact": []}
    for h, tower in zip(held, towers, strict=True):
        user = (stored_users or {}).get(str(h.customer), tower)
        lists["served"].append([item["product_code"] for item in answers[h.event["session_id"]]["recommended_items"]])
        lists["exact"].append([ids[i] for i in np.argsort(-(vectors @ user), kind="stable")[:k]])
    out: dict[str, Any] = {"k": k, "users": len(held)}
    for name, ranked in lists.items():
        scores = np.array([rank_scores(r, set(h.relevant), k) for r, h in zip(ranked, held, strict=True)])
        out[name] = {
            f"recall@{k}": float(scores[:, 0].mean()),
            f"ndcg@{k}": float(scores[:, 1].mean()),
            f"map@{k}": float(scores[:, 2].mean()),
            "coverage": len({item for r in ranked for item in r}) / len(ids),
        }
    pairs = zip(lists["served"], lists["exact"], strict=True)
    out["overlap"] = float(np.mean([len(set(s) & set(e)) / k for s, e in pairs]))
    out["ndcg_gap"] = out["exact"][f"ndcg@{k}"] - out["served"][f"ndcg@{k}"]
    return out


class BotoS3Hook:
    """The S3Hook methods the training pipeline's reader uses, over a plain boto3 client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get_conn(self) -> Any:
        return self.client

    def check_for_key(self, key: str, bucket_name: str) -> bool:
        return "Contents" in self.client.list_objects_v2(Bucket=bucket_name, Prefix=key)

    def read_key(self, key: str, bucket_name: str) -> str:
        return str(self.client.get_object(Bucket=bucket_name, Key=key)["Body"].read().decode())


def _read(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def version_held_out(s3: Any, bucket: str, version: str) -> list[HeldOut]:
    """The held-out events of ``version``'s own test split: its ``model/metrics.json`` names the dataset's manifest
    and the training seed (refused if the manifest now names another dataset)."""
    from recsys.model.pipeline import load_training_frame

    metrics = json.loads(_read(s3, bucket, f"versions/{version}/model/metrics.json"))
    frame, manifest = load_training_frame(BotoS3Hook(s3), metrics["data_manifest_url"])
    if manifest.get("run_id") != (metrics.get("data_manifest") or {}).get("run_id"):
        raise RuntimeError(f"{metrics['data_manifest_url']} is not the dataset {version} was trained on")
    return held_out_events(frame, int(metrics["config"]["seed"]))


def version_embeddings(s3: Any, bucket: str, version: str) -> tuple[bytes, bytes]:
    """The item and user embeddings CSVs of ``version``, as published."""
    from recsys.model.artifacts import ITEM_EMBEDDINGS, USER_EMBEDDINGS

    prefix = f"versions/{version}/"
    return _read(s3, bucket, prefix + ITEM_EMBEDDINGS), _read(s3, bucket, prefix + USER_EMBEDDINGS)


def _compare_with_version(
    held: list[HeldOut], answers: dict[str, Any], bundle: InferenceBundle, items_csv: bytes, users_csv: bytes
) -> dict[str, Any]:
    ids, vectors = item_vectors(items_csv)
    users, stored = item_vectors(users_csv)
    return compare(held, answers, bundle, ids, vectors, dict(zip(users, stored, strict=True)))


def measure(s3: Any, lambda_client: Any, bucket: str, function: str, qualifier: str = "live") -> dict[str, Any]:
    """Replay the live version's held-out customers through ``function:qualifier`` and compare (:func:`compare`).

    The version and its split come from the ml-artifacts bucket: the live pointer, its ``model/metrics.json`` (the
    dataset's manifest and the training seed), its inference bundle and embeddings."""
    from recsys.model.artifacts import load_bundle, read_pointer

    version = read_pointer(s3, bucket)["model_version"]
    for _ in range(2):  # the function may serve another version than the pointer's (pinned): then measure that one
        held = version_held_out(s3, bucket, version)
        answers = served_lists(lambda_client, function, qualifier, held)
        served = {a["model_version"] for a in answers.values()}
        if len(served) != 1:
            raise RuntimeError(f"the answers come from several model versions: {sorted(served)}")
        if served == {version}:
            break
        version = served.pop()
    else:
        raise RuntimeError(f"{function}:{qualifier} kept changing its model version")
    result = _compare_with_version(
        held, answers, load_bundle(s3, bucket, version), *version_embeddings(s3, bucket, version)
    )
    return {"model_version": version, **result}


def rebuild_item_index(conn: Any, items_table: str, lists: int) -> None:
    """Replace a version's item index by one of ``lists`` IVFFlat lists over the same search keys, and make the
    session use it even on a small table (the planner would scan a few hundred rows exactly)."""
    from psycopg import sql

    from recsys.vectordb.loader import create_ivfflat_index

    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(f"{items_table}_ivf")))
    create_ivfflat_index(conn, items_table, lists)
    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(items_table)))
    conn.execute("SET enable_seqscan = off")


def replay_through_a_coarse_index(
    s3: Any, bucket: str, version: str, conninfo: dict[str, Any], lists: int, probes: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """The same held-out events through the Lambdas' own search code (:func:`recsys_serving.recommender.recommend`)
    over ``version`` loaded once into a scratch database (``conninfo``) whose item index has ``lists`` IVFFlat lists,
    scanned at each of ``probes`` in turn: with the catalog's few hundred items the shipped index is one list and
    every query is exact, so this shows what an index that cannot reach every list loses (served < exact)."""
    import tempfile
    from pathlib import Path

    from recsys.model.artifacts import load_bundle
    from recsys.vectordb.loader import load
    from recsys_serving.recommender import recommend
    from recsys_serving.search import connect, version_tables

    held = version_held_out(s3, bucket, version)
    bundle = load_bundle(s3, bucket, version)
    items_csv, users_csv = version_embeddings(s3, bucket, version)
    events = [parse_event(h.event) for h in held]
    out: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="served-index-") as tmp, connect(**conninfo) as conn:
        paths = [Path(tmp) / "items.csv", Path(tmp) / "users.csv"]
        for path, body in zip(paths, (items_csv, users_csv), strict=True):
            path.write_bytes(body)
        load(conn, *paths, version)
        rebuild_item_index(conn, version_tables(version)[0], lists)
        for probe in probes:
            conn.execute("SELECT set_config('ivfflat.probes', %s, false)", (str(int(probe)),))
            answers = {}
            for h, answer in zip(held, recommend(conn, bundle, events), strict=True):
                if isinstance(answer, Exception):
                    raise RuntimeError(f"session {h.event['session_id']}: {answer}")
                answers[h.event["session_id"]] = {
                    "recommended_items": [{"product_code": c} for c, _ in answer.recommended]
                }
            result = _compare_with_version(held, answers, bundle, items_csv, users_csv)
            out[probe] = {"model_version": version, "lists": lists, "probes": probe, **result}
    return out
