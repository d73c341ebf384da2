"""What each task of the ``streaming_recommendations`` DAG runs, one function per task id: it opens the Airflow hooks
the task needs and calls the logic in :mod:`recsys.streaming.pipeline`.

The DAG file imports this module when it is parsed: nothing here imports boto3, a database driver or a connection
at the top; the hooks, and :mod:`recsys.streaming.pipeline` with the packaging it brings (what every parse would pay
for, ~5 ms), are imported inside the functions, when a task runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from recsys.config import AWS_CONN_ID, MYSQL_CONN_ID


def run_tag(run_id: str) -> str:
    """A short tag of the run for the smoke events' ids: the run id's last 12 characters, without ``:`` or ``+``."""
    return run_id[-12:].replace(":", "").replace("+", "")


def build_and_upload_packages(scripts_bucket: str, params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The Lambda packages the run deploys: none when it rolls back (``rollback_to_versions``), the prebuilt ones the
    run or the workers name (:func:`~recsys.streaming.pipeline.chosen_prebuilt_packages`), else both built now."""
    from recsys.streaming import pipeline

    if params["rollback_to_versions"]:
        return {}
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client = S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()
    if prebuilt := pipeline.chosen_prebuilt_packages(params["prebuilt_packages"]):
        return pipeline.prebuilt_packages(client, scripts_bucket, prebuilt)
    return pipeline.build_and_upload(client, scripts_bucket)


def resolve_model_version(vector_db_outputs: dict[str, Any], params: Mapping[str, Any]) -> str:
    """The version the Lambdas serve (:func:`~recsys.streaming.pipeline.serving_version`), read as the master user of
    the vector DB ``terraform/vector_db`` reports."""
    from recsys.streaming import pipeline
    from recsys.vectordb.credentials import from_airflow

    return pipeline.serving_version(from_airflow(outputs=vector_db_outputs), str(params["model_version"]))


def streaming_root_arguments(
    packages: dict[str, dict[str, Any]], model_version: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """``provision_in_task``'s arguments for ``terraform/streaming_inference``: applied with this run's package keys
    and model version, unless the run only reads the root's outputs (``provision_infrastructure`` false) or rolls
    back (the functions' code stays what the last apply set)."""
    apply = bool(params["provision_infrastructure"]) and not params["rollback_to_versions"]
    variables = (
        {
            "transformation_package_key": packages["transformation"]["key"],
            "model_inference_package_key": packages["model_inference"]["key"],
            "model_version": model_version,
        }
        if apply
        else {}
    )
    return {"apply": apply, "variables": variables, "allow_destroy": bool(params["allow_destroy"])}


def promote_lambda_versions(
    streaming: dict[str, Any], packages: dict[str, dict[str, Any]], params: Mapping[str, Any]
) -> dict[str, Any]:
    """Both functions' ``live`` alias moved (:func:`~recsys.streaming.pipeline.deploy_all`)."""
    from airflow.providers.amazon.aws.hooks.lambda_function import LambdaHook

    from recsys.streaming import pipeline

    client = LambdaHook(aws_conn_id=AWS_CONN_ID).conn
    return pipeline.deploy_all(client, streaming, packages, str(params["rollback_to_versions"]))


def _first_product() -> dict[str, Any]:
    from recsys.streaming.generator import load_catalog

    _, products = load_catalog(MYSQL_CONN_ID)
    return products[0]


def build_lambda_test_event(streaming: dict[str, Any], run_id: str) -> dict[str, Any]:
    """What ``check_transformation_lambda`` invokes: the transformation function, a Firehose test event about a
    product of the source (:func:`~recsys.streaming.pipeline.firehose_test_event`) and its valid record's session."""
    from recsys.streaming import pipeline

    event = pipeline.firehose_test_event([_first_product()], run_tag(run_id))
    session_id = event.pop("session_id")
    return {
        "function_name": streaming["transformation_lambda_name"],
        "payload": json.dumps(event),
        "session_id": session_id,
    }


def verify_transformation_response(response: str, test: dict[str, Any], model_version: str) -> dict[str, Any]:
    """The Lambda's answer to :func:`build_lambda_test_event`'s event checked
    (:func:`~recsys.streaming.pipeline.check_transformation_response`)."""
    from recsys.streaming import pipeline

    return pipeline.check_transformation_response(response, test["session_id"], model_version)


def put_smoke_delivery_event(streaming: dict[str, Any], run_id: str) -> dict[str, Any]:
    """A fresh event about a product of the source put on the smoke-test delivery stream
    (:func:`~recsys.streaming.pipeline.put_smoke_event`), with the bucket it is delivered to."""
    from airflow.providers.amazon.aws.hooks.firehose import FirehoseHook

    from recsys.streaming import pipeline

    product, stream = _first_product(), streaming["smoke_delivery_stream_name"]
    client = FirehoseHook(aws_conn_id=AWS_CONN_ID, delivery_stream=stream).conn
    put = pipeline.put_smoke_event(client, stream, product, run_tag(run_id))
    return {**put, "bucket": streaming["recommendations_bucket"]}


def delivered_after_put(files: list[dict[str, Any]], **context: Any) -> bool:
    """``wait_for_smoke_delivery``'s check: an object written after this run's put (not an earlier run's)."""
    from recsys.streaming import pipeline

    smoke = context["ti"].xcom_pull(task_ids="put_smoke_delivery_event")
    return pipeline.newer_than_put(files, smoke["put_at"])


def verify_smoke_delivery(smoke: dict[str, Any]) -> dict[str, Any]:
    """The smoke event's delivered line, with its recommendations
    (:func:`~recsys.streaming.pipeline.find_recommendation`)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from recsys.streaming import pipeline

    client = S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()
    return pipeline.find_recommendation(
        client, smoke["bucket"], smoke["hour_prefix"], smoke["session_id"], smoke["put_at"]
    )
