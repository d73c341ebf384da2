"""Publish a trained model to the ml-artifacts bucket in the lab's layout, atomically; and read it back.

Layout (relative keys, the lab's)::

    embeddings/item_embeddings.csv    id,embedding   (product code, pgvector literal [v1,...,v32])
    embeddings/user_embeddings.csv    id,embedding   (customer number, ...)
    model/best_model.pth              torch: {"state_dict", "architecture", "model_version", "config"}
    model/metrics.json                the ranking comparisons, the candidates, rows, version, data manifest
    model/inference_bundle.npz/.json  numpy weights + encoders/scalers as JSON (no torch, no pickle)
    scalers/{item,user}_ohe.pkl, scalers/{item,user}_std_scaler.pkl   scikit-learn objects (pickles)

and, per version only (not a lab file, never copied to the canonical keys)::

    versions/<model_version>/metrics.json   the held-out rankings of the model against the most-popular and random
                                            baselines (recall@10, NDCG@10, MAP@10, coverage; known and cold-start
                                            customers) and the gate's paired interval

Publishing: :func:`stage` puts every file under ``versions/<model_version>/<key>``; after the quality gate,
:func:`promote` overwrites the canonical keys above (lab compatibility) and writes the pointer ``latest.json``
(``{"model_version", "prefix", "files"}``) last. Readers that need consistency (the vector-DB DAG, the Lambdas)
follow the pointer into the versioned prefix, so they never mix files of two versions.

The ``.pkl`` files are pickles: loading them runs code from the bucket. Only load them from a bucket you trust;
the Lambdas never do (they use the inference bundle).
"""

from __future__ import annotations

import csv
import io
import json
import pickle
from datetime import UTC, datetime
from typing import Any

import numpy as np

from recsys_serving.bundle import InferenceBundle, vector_literal

POINTER_KEY = "latest.json"
#: The version's metrics summary, beside its files (``versions/<version>/metrics.json``).
VERSION_METRICS = "metrics.json"
ITEM_EMBEDDINGS = "embeddings/item_embeddings.csv"
USER_EMBEDDINGS = "embeddings/user_embeddings.csv"
LAYOUT = (
    ITEM_EMBEDDINGS,
    USER_EMBEDDINGS,
    "model/best_model.pth",
    "model/metrics.json",
    "model/inference_bundle.npz",
    "model/inference_bundle.json",
    "scalers/item_ohe.pkl",
    "scalers/item_std_scaler.pkl",
    "scalers/user_ohe.pkl",
    "scalers/user_std_scaler.pkl",
)


def model_version(data_run_id: str, seed: int, now: datetime | None = None) -> str:
    import hashlib

    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"v{stamp}-{hashlib.sha256(f'{data_run_id}:{seed}'.encode()).hexdigest()[:8]}"


def embeddings_csv(ids: list[Any], vectors: np.ndarray) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "embedding"])
    for identifier, vector in zip(ids, vectors, strict=True):
        writer.writerow([identifier, vector_literal(vector)])
    return buffer.getvalue().encode()


def version_metrics(metrics: dict[str, Any], version: str) -> dict[str, Any]:
    """What a version is judged by: the held-out rankings (known and cold-start customers) against the baselines,
    the gate's figures (paired difference with the stronger baseline, its 95% interval, customers) and the candidate
    validation chose."""
    from recsys.model.train import gate_figures

    return {
        "model_version": version,
        "ranking": metrics.get("ranking", {}),
        "cold_start_ranking": metrics.get("cold_start_ranking", {}),
        "gate": gate_figures(metrics),
        "candidate": metrics.get("candidate"),
        "candidates": metrics.get("candidates", {}),
    }


def artifact_files(result: Any, version: str, data_manifest: dict[str, Any] | None) -> dict[str, bytes]:
    """Every file of the layout, as bytes, from a :class:`recsys.model.train.TrainResult`, and the version's
    :data:`VERSION_METRICS`."""
    import torch

    checkpoint = io.BytesIO()
    torch.save(
        {
            "state_dict": result.model.state_dict(),
            "architecture": result.architecture(),
            "model_version": version,
            "config": result.metrics.get("config", {}),
        },
        checkpoint,
    )
    npz, bundle_json = result.bundle(version).to_files()
    metrics = {
        **result.metrics,
        "model_version": version,
        "data_manifest": {k: data_manifest.get(k) for k in ("run_id", "output_rows", "finished_at", "target_path")}
        if data_manifest
        else None,
        "published_at": datetime.now(UTC).isoformat(),
        "items": len(result.item_ids),
        "users": len(result.user_ids),
    }
    return {
        ITEM_EMBEDDINGS: embeddings_csv(result.item_ids, result.item_embeddings),
        USER_EMBEDDINGS: embeddings_csv(result.user_ids, result.user_embeddings),
        "model/best_model.pth": checkpoint.getvalue(),
        "model/metrics.json": json.dumps(metrics, indent=2, default=float).encode(),
        "model/inference_bundle.npz": npz,
        "model/inference_bundle.json": bundle_json,
        "scalers/item_ohe.pkl": pickle.dumps(result.item_features.ohe),
        "scalers/item_std_scaler.pkl": pickle.dumps(result.item_features.scaler),
        "scalers/user_ohe.pkl": pickle.dumps(result.user_features.ohe),
        "scalers/user_std_scaler.pkl": pickle.dumps(result.user_features.scaler),
        VERSION_METRICS: json.dumps(version_metrics(result.metrics, version), indent=2, default=float).encode(),
    }


def stage(s3_client: Any, bucket: str, version: str, files: dict[str, bytes]) -> str:
    """Upload a complete candidate under ``versions/<version>/``; nothing a reader follows changes yet."""
    missing = set(LAYOUT) - set(files)
    if missing:
        raise ValueError(f"refusing to stage an incomplete model: missing {sorted(missing)}")
    prefix = f"versions/{version}/"
    for key, body in files.items():
        s3_client.put_object(Bucket=bucket, Key=prefix + key, Body=body)
    return prefix


def promote(s3_client: Any, bucket: str, version: str) -> dict[str, Any]:
    """Make a staged version current: canonical keys next, the pointer last."""
    prefix = f"versions/{version}/"
    for key in LAYOUT:
        try:
            s3_client.head_object(Bucket=bucket, Key=prefix + key)
        except s3_client.exceptions.ClientError:
            raise ValueError(f"version {version} is incomplete: s3://{bucket}/{prefix}{key} is missing") from None
    for key in LAYOUT:
        s3_client.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": prefix + key})
    pointer = {"model_version": version, "prefix": prefix, "files": list(LAYOUT)}
    s3_client.put_object(Bucket=bucket, Key=POINTER_KEY, Body=json.dumps(pointer).encode())
    return pointer


def read_pointer(s3_client: Any, bucket: str) -> dict[str, Any]:
    body = s3_client.get_object(Bucket=bucket, Key=POINTER_KEY)["Body"].read()
    return json.loads(body)


def load_bundle(s3_client: Any, bucket: str, version: str | None = None) -> InferenceBundle:
    """The inference bundle of a version (default: the pointer's), without torch or pickle."""
    prefix = f"versions/{version}/" if version else read_pointer(s3_client, bucket)["prefix"]
    npz = s3_client.get_object(Bucket=bucket, Key=prefix + "model/inference_bundle.npz")["Body"].read()
    meta = s3_client.get_object(Bucket=bucket, Key=prefix + "model/inference_bundle.json")["Body"].read()
    return InferenceBundle.from_files(npz, meta)
