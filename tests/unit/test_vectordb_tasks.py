"""What the vector_db_embeddings tasks run (recsys.vectordb.tasks): the version and its files, the report of a wait
that ended without them, the roles made with their own secrets."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from recsys.vectordb import tasks

BUCKET = "recsys-111122223333-ml-artifacts"


@pytest.fixture
def s3(monkeypatch):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="latest.json", Body=json.dumps({"model_version": "v2"}).encode())
        monkeypatch.setattr(tasks, "_s3", lambda: client)
        yield client


@pytest.mark.parametrize(("requested", "version"), [("", "v2"), ("v1", "v1")], ids=["latest.json", "the Param"])
def test_the_version_is_the_param_else_the_pointer_with_both_files(s3, requested, version):
    target = tasks.resolve_model_version({"ml_artifacts_bucket": BUCKET}, {"model_version": requested})
    prefix = f"s3://{BUCKET}/versions/{version}/embeddings/"
    assert target["model_version"] == version
    assert target["keys"] == [prefix + "item_embeddings.csv", prefix + "user_embeddings.csv"]


def test_a_wait_that_ended_without_a_file_fails_naming_it(s3):
    target = tasks.resolve_model_version({"ml_artifacts_bucket": BUCKET}, {"model_version": ""})
    s3.put_object(Bucket=BUCKET, Key=target["items_key"], Body=b"id,embedding\n")
    with pytest.raises(FileNotFoundError, match=rf"missing s3://{BUCKET}/{target['users_key']}\. The live"):
        tasks.report_missing_embeddings(target, 1800)


def test_a_wait_that_never_started_sends_the_reader_to_resolve_model_version():
    with pytest.raises(RuntimeError, match="no model version was resolved: see resolve_model_version's log"):
        tasks.report_missing_embeddings(None, 1800)


def test_the_roles_are_ensured_as_the_master_with_each_roles_own_secret(monkeypatch):
    import airflow.providers.amazon.aws.hooks.secrets_manager as secrets_hooks

    import recsys.vectordb.credentials as credentials
    import recsys.vectordb.roles as roles

    infra = {"vector_db_loader_secret_arn": "arn:loader", "vector_db_reader_secret_arn": "arn:reader"}
    calls = []
    hook = type("Hook", (), {"get_conn": lambda self: "sm"})
    monkeypatch.setattr(secrets_hooks, "SecretsManagerHook", lambda **_kw: hook())
    monkeypatch.setattr(credentials, "from_airflow", lambda **kw: {"master_of": kw["outputs"]})
    monkeypatch.setattr(roles, "ensure_roles", lambda *args, **kw: calls.append((args, kw)) or {"ok": True})
    assert tasks.ensure_database_roles(infra, {"rotate_role_passwords": True}) == {"ok": True}
    assert calls == [(({"master_of": infra}, "sm", {"loader": "arn:loader", "reader": "arn:reader"}), {"rotate": True})]
