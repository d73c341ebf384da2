"""The training task: read the published training data, train, stage the candidate version in ml-artifacts."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from recsys.config import TRAINING_DATA_PREFIX
from recsys.etl.glue_job import MANIFEST_NAME
from recsys.etl.training_data import download_dataset, read_training_data
from recsys.model.artifacts import artifact_files, model_version, stage
from recsys.model.train import TrainConfig, train

log = logging.getLogger(__name__)


def triggering_manifest_url(events: Any) -> str | None:
    """The manifest URL of the newest ``ratings_ml_training`` event that carries one (several may be queued when
    batch runs finished faster than training); None for a manual run."""
    carrying = [e for e in events or [] if (e.extra or {}).get("manifest_url")]
    return max(carrying, key=lambda e: e.timestamp).extra["manifest_url"] if carrying else None


def live_manifest_url(datalake_bucket: str) -> str:
    """The training dataset's live ``_manifest.json`` in the datalake bucket (the etl root's ``datalake_bucket``
    output: on AWS the name holds the account id, which no default may stand in for)."""
    return f"s3://{datalake_bucket}/{TRAINING_DATA_PREFIX}{MANIFEST_NAME}"


def run_manifest_url(manifest_url: str, manifest: dict[str, Any]) -> str:
    """The batch run's own copy of the manifest a dataset was read through (the live ``_manifest.json`` is the
    latest run's and changes; ``manifests/ratings-ml-training/<run id>.json`` never does)."""
    from recsys.etl.publish import manifest_url as run_copy

    if not manifest_url.endswith(f"/{TRAINING_DATA_PREFIX}{MANIFEST_NAME}") or not manifest.get("run_id"):
        return manifest_url
    bucket = manifest_url.removeprefix("s3://").partition("/")[0]
    return run_copy(bucket, str(manifest["run_id"]))


def load_training_frame(
    s3_hook: Any, manifest_url: str | None = None, datalake_bucket: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """The training dataset a manifest lists, as a pandas DataFrame in contract column order.

    ``manifest_url``: a run's own manifest (what the triggering Asset event carries); without it the dataset's live
    ``_manifest.json`` in ``datalake_bucket`` (a manual run).
    """
    if not manifest_url:
        if not datalake_bucket:
            raise ValueError("no manifest URL and no datalake bucket: pass the etl root's datalake_bucket output")
        manifest_url = live_manifest_url(datalake_bucket)
    bucket, _, key = manifest_url.removeprefix("s3://").partition("/")
    if not s3_hook.check_for_key(key, bucket_name=bucket):
        raise FileNotFoundError(f"s3://{bucket}/{key} not found: run batch_training_data first")
    manifest = json.loads(s3_hook.read_key(key=key, bucket_name=bucket))
    with tempfile.TemporaryDirectory(prefix="training-") as tmp:
        download_dataset(s3_hook, manifest, Path(tmp))
        table = read_training_data(Path(tmp), manifest)
    return table.to_pandas(), manifest


def train_and_stage(
    s3_hook: Any,
    infra: dict[str, Any],
    epochs: int,
    seed: int,
    manifest_url: str | None = None,
) -> dict[str, Any]:
    """Train on the triggering run's dataset (else the live one) and stage the version in ``infra``'s
    ``ml_artifacts_bucket`` (``infra``: the etl root's outputs)."""
    artifacts_bucket = infra["ml_artifacts_bucket"]
    manifest_url = manifest_url or live_manifest_url(infra["datalake_bucket"])
    frame, manifest = load_training_frame(s3_hook, manifest_url)
    log.info("training on %d rows from data run %s", len(frame), manifest.get("run_id"))
    result = train(frame, TrainConfig(epochs=epochs, seed=seed))
    # the run's own manifest (never the live one, which the next batch run replaces): the split can be rebuilt
    result.metrics["data_manifest_url"] = run_manifest_url(manifest_url, manifest)
    version = model_version(str(manifest.get("run_id")), seed)
    prefix = stage(s3_hook.get_conn(), artifacts_bucket, version, artifact_files(result, version, manifest))
    metrics = json.loads(json.dumps(result.metrics, default=float))
    log.info(
        "staged %s at s3://%s/%s: candidate %s (validation %s), test NDCG@10 %.4f",
        version,
        artifacts_bucket,
        prefix,
        metrics["candidate"],
        metrics["candidates"],
        metrics["ranking"]["model"]["ndcg@10"],
    )
    return {
        "model_version": version,
        "bucket": artifacts_bucket,
        "prefix": prefix,
        "metrics": metrics,
        "data_run_id": manifest.get("run_id"),
        "data_manifest": manifest_url,
    }
