"""Who the platform is on the local stack (recsys_local.identity): the workers' role with IAM enforced, the
emulator's administrator without; the bootstrap and the demo's producer stay the administrator."""

from __future__ import annotations

import json

import pytest

from recsys_local import identity
from recsys_local.settings import stack_settings
from recsys_local.stack import Stack
from recsys_local.target import LocalTarget


def stack_at(tmp_path, enforcement: str) -> Stack:
    return Stack(stack_settings({"LOCAL_STACK_HOME": str(tmp_path / "home"), "LOCAL_IAM_ENFORCEMENT": enforcement}))


def test_with_iam_enforced_the_platform_has_no_key_and_assumes_the_workers_role(tmp_path):
    stack = stack_at(tmp_path, "1")
    env = stack.environment()

    assert env["AWS_PROFILE"] == identity.PROFILE
    # empty, so a key in the caller's own environment cannot win over the profile when they are merged
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == env["AWS_SESSION_TOKEN"] == ""
    assert env["AWS_ENDPOINT_URL_STS"] == stack.settings.aws_endpoint_url
    connection = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    # the hooks take boto3's chain: the profile
    assert "login" not in connection
    assert "password" not in connection

    identity.write_profile(stack.settings)
    config = (tmp_path / "home" / "aws-identity" / "config").read_text()
    assert f"role_arn = arn:aws:iam::{stack.settings.names.account}:role/de-c1w4-airflow-workers" in config
    # assumed as MWAA assumes it (the role's default trust), not with the administrator's key
    credentials = (tmp_path / "home" / "aws-identity" / "credentials").read_text()
    assert "aws_access_key_id = service:airflow-env.amazonaws.com" in credentials
    assert "= test" not in credentials
    assert oct((tmp_path / "home" / "aws-identity" / "credentials").stat().st_mode)[-3:] == "600"


@pytest.mark.parametrize("enforcement", ["1", "audit"])
def test_the_administrator_environment_carries_the_key_and_no_profile(tmp_path, enforcement):
    env = stack_at(tmp_path, enforcement).admin_environment()

    assert env["AWS_ACCESS_KEY_ID"] == "test"
    assert not set(env) & {"AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_STS"}
    assert json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])["login"] == "test"  # the hooks too


def test_without_enforcement_the_platform_is_the_administrator(tmp_path):
    env = stack_at(tmp_path, "0").environment()

    assert env["AWS_ACCESS_KEY_ID"] == "test"
    assert "AWS_PROFILE" not in env
    assert json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])["login"] == "test"


def test_terraform_takes_the_profile_when_one_is_named_else_the_administrators_key(tmp_path):
    base = {"LOCAL_STACK_HOME": str(tmp_path / "home")}
    as_workers = LocalTarget({**base, "AWS_PROFILE": identity.PROFILE}).override_files("airflow_workers")
    as_admin = LocalTarget(base).override_files("airflow_workers")

    assert "access_key" not in as_workers["local_override.tf"]
    assert 'access_key                  = "test"' in as_admin["local_override.tf"]
    assert "skip_credentials_validation = false" in as_workers["local_override.tf"]  # STS says the account


def test_the_fingerprint_changes_with_the_variables_and_the_roots_files(tmp_path, monkeypatch):
    """`make up` applies the root again when either changed (an edited policy reaches the role)."""
    policy = tmp_path / "runtime.tf"
    policy.write_text('actions = ["s3:GetObject"]')
    monkeypatch.setattr(identity, "root_files", lambda: [policy])
    before = identity.fingerprint({"a": 1})

    assert identity.fingerprint({"a": 1}) == before
    assert identity.fingerprint({"a": 2}) != before
    policy.write_text('actions = ["s3:GetObject", "s3:PutObject"]')
    assert identity.fingerprint({"a": 1}) != before


def test_the_services_act_as_their_roles_only_when_the_endpoint_enforces(monkeypatch):
    """Glue's, Lambda's and Firehose's executors take a session of the resource's role (recsys_local.service_roles);
    a warm function keeps its session, so its worker is not restarted on every call."""
    import boto3
    from moto import mock_aws

    from recsys_local import service_roles

    monkeypatch.setattr(service_roles, "ENFORCING", False)
    assert service_roles.credentials("http://unused", "any", "GlueJobRunnerSession", service_roles.GLUE) is None
    monkeypatch.setattr(service_roles, "ENFORCING", True)
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
        iam.create_role(RoleName="job", AssumeRolePolicyDocument="{}")
        monkeypatch.setattr(
            service_roles,
            "local_client",
            lambda service, endpoint_url, credentials: boto3.client(
                service,
                region_name="us-east-1",
                aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
            ),
        )
        keys = service_roles.credentials("http://unused", "job", "GlueJobRunnerSession", service_roles.GLUE)
        sts = boto3.client(
            "sts",
            region_name="us-east-1",
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=keys["AWS_SESSION_TOKEN"],
        )
        assert sts.get_caller_identity()["Arn"].endswith(":assumed-role/job/GlueJobRunnerSession")
        sessions = service_roles.Sessions(service_roles.LAMBDA)
        first = sessions.get("http://unused", "arn:aws:iam::123456789012:role/job", "fn")
        assert sessions.get("http://unused", "job", "fn") == first  # a name and its ARN are one role
        assert first != keys
