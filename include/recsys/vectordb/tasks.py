"""What each task of the ``vector_db_embeddings`` DAG runs, one function per task id: it opens the Airflow hooks and
the database credentials the task needs and calls the logic in :mod:`recsys.vectordb.pipeline` and
:mod:`recsys.vectordb.roles`.

The DAG file imports this module when it is parsed: everything heavy (numpy, psycopg, boto3 with the hooks) is
imported inside the functions, when a task runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recsys.config import AWS_CONN_ID


def _s3() -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()


def ensure_database_roles(infra: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """As the master user of the database ``terraform/vector_db`` reports: the loader and reader roles made or
    repaired, their secrets filled (:func:`~recsys.vectordb.roles.ensure_roles`); new passwords with
    ``rotate_role_passwords``."""
    from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook

    from recsys.vectordb.credentials import from_airflow
    from recsys.vectordb.roles import ensure_roles

    arns = {"loader": infra["vector_db_loader_secret_arn"], "reader": infra["vector_db_reader_secret_arn"]}
    client = SecretsManagerHook(aws_conn_id=AWS_CONN_ID).get_conn()
    return ensure_roles(from_airflow(outputs=infra), client, arns, rotate=bool(params["rotate_role_passwords"]))


def resolve_model_version(etl: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The version to load from the ml-artifacts bucket and its files
    (:func:`~recsys.vectordb.pipeline.resolve_version`)."""
    from recsys.vectordb.pipeline import resolve_version

    return resolve_version(_s3(), etl["ml_artifacts_bucket"], str(params["model_version"]))


def report_missing_embeddings(target: dict[str, Any] | None, waited_seconds: int) -> None:
    """Fail naming what the wait for the version's files ended without
    (:func:`~recsys.vectordb.pipeline.report_missing`); ``target`` is ``resolve_model_version``'s answer."""
    from recsys.vectordb.pipeline import report_missing

    if not target:  # the wait never started: the failure to read is resolve_model_version's own
        raise RuntimeError("no model version was resolved: see resolve_model_version's log")
    report_missing(_s3(), target, waited_seconds)


def validate_embeddings(target: dict[str, Any]) -> dict[str, int]:
    """Both CSVs of the version checked, nothing live touched (:func:`~recsys.vectordb.pipeline.validate_version`)."""
    from recsys.vectordb.pipeline import validate_version

    return validate_version(_s3(), target)


def load_embeddings(target: dict[str, Any], infra: dict[str, Any]) -> dict[str, Any]:
    """The version loaded and swapped live as the loader role (:func:`~recsys.vectordb.pipeline.load_version`)."""
    from recsys.vectordb.credentials import from_airflow
    from recsys.vectordb.pipeline import load_version

    loader = from_airflow(secret_arn=infra["vector_db_loader_secret_arn"], outputs=infra)
    return load_version(_s3(), target, loader)


def verify_vector_db(counts: dict[str, Any], target: dict[str, Any], infra: dict[str, Any]) -> dict[str, Any]:
    """What the Lambdas' reader role sees checked against the CSVs (:func:`~recsys.vectordb.pipeline.verify`)."""
    from recsys.vectordb.credentials import from_airflow
    from recsys.vectordb.pipeline import verify

    reader = from_airflow(secret_arn=infra["vector_db_reader_secret_arn"], outputs=infra)
    return verify(reader, counts, target["model_version"])
