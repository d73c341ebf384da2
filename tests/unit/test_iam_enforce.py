"""The local endpoint refuses what the caller's policies do not allow, on the real resource ARN, with AWS's error:
requests signed by botocore with an assumed role's credentials (moto's STS, in process), offered to the extension."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from signed_requests import signed_request

from recsys_local import iam_enforce
from recsys_local.aws_operations import operation
from recsys_local.aws_server import AwsCall
from recsys_local.iam_enforce import IamEnforcement, checks

ACCOUNT, REGION = "123456789012", "us-east-1"
BUCKET = "de-c1w4-123456789012-datalake"


def signed(credentials: dict[str, str], service: str, method: str, **params: Any) -> AwsCall:
    """The request botocore signs for ``service.method(**params)`` with these credentials, as the endpoint sees it."""
    environ, body = signed_request(service, method, params, credentials)
    return AwsCall(environ=environ, body=body)


@pytest.fixture
def role():
    """A role with one policy; ``role(statements)`` returns the credentials of a session of it."""
    with mock_aws():
        admin = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        iam = boto3.client("iam", region_name=REGION, **admin)
        sts = boto3.client("sts", region_name=REGION, **admin)
        trust = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}]}

        def make(statements: list[dict[str, Any]]) -> dict[str, str]:
            name = f"workers-{len(iam.list_roles()['Roles'])}"
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
            arn = iam.create_policy(
                PolicyName=f"{name}-p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements})
            )["Policy"]["Arn"]
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            creds = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}", RoleSessionName="task")[
                "Credentials"
            ]
            return {
                "aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"],
            }

        yield make


def decide(call: AwsCall):
    return IamEnforcement(state_dir=None).intercept(call, forward=lambda _c: None)  # type: ignore[arg-type]


def test_an_allowed_object_passes_and_another_bucket_is_refused_with_s3s_access_denied(role):
    credentials = role([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}])
    assert decide(signed(credentials, "s3", "get_object", Bucket=BUCKET, Key="ratings-ml-training/a.parquet")) is None
    refused = decide(signed(credentials, "s3", "get_object", Bucket="other-bucket", Key="a"))
    assert refused.status_code == 403
    body = refused.get_data(as_text=True)
    assert "<Code>AccessDenied</Code>" in body
    assert "assumed-role/workers-0/task is not authorized to perform: s3:GetObject" in body
    assert "on resource: arn:aws:s3:::other-bucket/a because no identity-based policy allows" in body
    head = decide(signed(credentials, "s3", "head_object", Bucket=BUCKET, Key="k"))  # HEAD is s3:GetObject
    assert head is None


def test_an_explicit_deny_wins_and_says_so(role):
    credentials = role(
        [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"},
        ]
    )
    refused = decide(signed(credentials, "s3", "delete_object", Bucket=BUCKET, Key="k"))
    assert "with an explicit deny in an identity-based policy" in refused.get_data(as_text=True)


def test_json_protocol_refusal_is_an_access_denied_exception_naming_the_stream(role):
    stream = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/de-c1w4-kinesis-data-stream"
    credentials = role([{"Effect": "Allow", "Action": "kinesis:PutRecords", "Resource": stream}])
    records = [{"Data": b"x", "PartitionKey": "k"}]
    assert (
        decide(signed(credentials, "kinesis", "put_records", StreamName="de-c1w4-kinesis-data-stream", Records=records))
        is None
    )
    refused = decide(signed(credentials, "kinesis", "put_records", StreamName="other", Records=records))
    assert refused.status_code == 400
    assert refused.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    error = json.loads(refused.get_data())
    assert error["__type"] == "AccessDeniedException"
    assert f"kinesis:PutRecords on resource: arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/other" in error["message"]


def test_get_records_is_authorized_on_the_stream_its_shard_iterator_reads(role):
    """GetRecords names no stream: AWS authorizes the iterator's (a delivery role granted the stream reads it)."""
    from moto.kinesis.utils import compose_shard_iterator

    class Shard:
        shard_id = "shardId-000000000000"

    stream = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/de-c1w4-kinesis-data-stream"
    credentials = role([{"Effect": "Allow", "Action": "kinesis:GetRecords", "Resource": stream}])
    ours = compose_shard_iterator("de-c1w4-kinesis-data-stream", Shard(), 0)
    other = compose_shard_iterator("other", Shard(), 0)
    assert decide(signed(credentials, "kinesis", "get_records", ShardIterator=ours)) is None
    refused = decide(signed(credentials, "kinesis", "get_records", ShardIterator=other))
    assert (
        f"kinesis:GetRecords on resource: arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/other"
        in json.loads(refused.get_data())["message"]
    )


def test_lambda_alias_and_qualified_invoke_resolve_to_the_function_arns(role):
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:de-c1w4-transformation-lambda"
    credentials = role(
        [
            {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": f"{function}:live"},
            {"Effect": "Allow", "Action": "lambda:UpdateAlias", "Resource": function},
        ]
    )
    name = "de-c1w4-transformation-lambda"
    assert decide(signed(credentials, "lambda", "invoke", FunctionName=name, Qualifier="live")) is None
    refused = decide(signed(credentials, "lambda", "invoke", FunctionName=name))  # $LATEST: not the alias
    assert refused.status_code == 403
    assert (
        decide(signed(credentials, "lambda", "update_alias", FunctionName=name, Name="live", FunctionVersion="2"))
        is None
    )


def test_passing_a_role_needs_pass_role_to_that_service(role):
    glue_role = f"arn:aws:iam::{ACCOUNT}:role/de-c1w4-glue-role"
    job = {
        "Effect": "Allow",
        "Action": "glue:CreateJob",
        "Resource": f"arn:aws:glue:{REGION}:{ACCOUNT}:job/de-c1w4-etl-job",
    }
    pass_to_lambda = {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": glue_role,
        "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
    }
    create = {
        "Name": "de-c1w4-etl-job",
        "Role": glue_role,
        "Command": {"Name": "glueetl", "ScriptLocation": "s3://b/s.py"},
    }
    refused = decide(signed(role([job, pass_to_lambda]), "glue", "create_job", **create))
    assert "iam:PassRole on resource: " + glue_role in json.loads(refused.get_data())["message"]
    pass_to_glue = {**pass_to_lambda, "Condition": {"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}}}
    assert decide(signed(role([job, pass_to_glue]), "glue", "create_job", **create)) is None


def test_create_security_group_needs_the_vpc_and_a_tagged_group_and_tag_on_create(role):
    vpc = boto3.client("ec2", region_name=REGION).create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    statements = [
        {"Effect": "Allow", "Action": "ec2:CreateSecurityGroup", "Resource": f"{ec2}:vpc/{vpc}"},
        {
            "Effect": "Allow",
            "Action": "ec2:CreateSecurityGroup",
            "Resource": f"{ec2}:security-group/*",
            "Condition": {"StringEquals": {"aws:RequestTag/Project": "de-c1w4"}},
        },
        {
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": f"{ec2}:security-group/*",
            "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}},
        },
    ]
    credentials = role(statements)

    def create(project: str) -> Any:
        tags = [{"ResourceType": "security-group", "Tags": [{"Key": "Project", "Value": project}]}]
        call = signed(
            credentials,
            "ec2",
            "create_security_group",
            GroupName="g",
            Description="d",
            VpcId=vpc,
            TagSpecifications=tags,
        )
        return decide(call)

    assert create("de-c1w4") is None
    refused = create("someone-else")
    assert refused.status_code == 403
    assert "<Code>UnauthorizedOperation</Code>" in refused.get_data(as_text=True)


def test_a_kms_alias_resolves_to_its_key_and_the_key_carries_its_aliases(role):
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key(Tags=[{"TagKey": "Project", "TagValue": "de-c1w4"}])["KeyMetadata"]
    kms.create_alias(AliasName="alias/de-c1w4-vector-db", TargetKeyId=key["KeyId"])
    statement = {
        "Effect": "Allow",
        "Action": "kms:DescribeKey",
        "Resource": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*",
        "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/de-c1w4-vector-db"]}},
    }
    credentials = role([statement])
    found = checks(operation(*_environ(signed(credentials, "kms", "describe_key", KeyId="alias/de-c1w4-vector-db"))))
    assert [c.resource for c in found] == [key["Arn"]]
    assert decide(signed(credentials, "kms", "describe_key", KeyId="alias/de-c1w4-vector-db")) is None
    other = kms.create_key()["KeyMetadata"]
    assert decide(signed(credentials, "kms", "describe_key", KeyId=other["KeyId"])).status_code == 400


def _environ(call: AwsCall) -> tuple[dict[str, Any], bytes]:
    return call.environ, call.body


def test_the_emulators_own_credentials_are_the_accounts_administrator(role):
    admin = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    assert decide(signed(admin, "iam", "create_role", RoleName="r", AssumeRolePolicyDocument="{}")) is None


@pytest.mark.parametrize(
    ("service", "method", "params", "status", "code"),
    [
        ("s3", "get_object", {"Bucket": BUCKET, "Key": "k"}, 403, "<Code>InvalidAccessKeyId</Code>"),
        ("sts", "get_caller_identity", {}, 403, "<Code>InvalidClientTokenId</Code>"),
        ("ec2", "describe_vpcs", {}, 401, "<Code>AuthFailure</Code>"),
        ("kinesis", "list_streams", {}, 403, '"__type": "UnrecognizedClientException"'),
    ],
)
def test_a_key_nobody_owns_is_refused_as_aws_refuses_it(role, service, method, params, status, code):
    """Not the administrator's, no user's, no session's (an expired or made-up key): refused before any policy."""
    made_up = {"aws_access_key_id": "ASIAMADEUP0000000000", "aws_secret_access_key": "x", "aws_session_token": "t"}
    refused = decide(signed(made_up, service, method, **params))
    assert refused is not None
    assert refused.status_code == status
    assert code in refused.get_data(as_text=True)


def test_nobody_assumes_a_role_that_does_not_exist_not_even_the_administrator(role):
    """moto hands out a session of any ARN; AWS refuses (no trust policy to allow it)."""
    role([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])  # one role exists: workers-0
    admin = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    arn = f"arn:aws:iam::{ACCOUNT}:role/"
    assert decide(signed(admin, "sts", "assume_role", RoleArn=arn + "workers-0", RoleSessionName="session")) is None
    refused = decide(signed(admin, "sts", "assume_role", RoleArn=arn + "no-such-role", RoleSessionName="session"))
    assert refused is not None
    assert refused.status_code == 403
    assert f"not authorized to perform: sts:AssumeRole on resource: {arn}no-such-role" in refused.get_data(as_text=True)


def _role_trusting(name: str, statement: dict[str, Any]) -> str:
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", **statement}]}
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def test_a_service_assumes_only_a_role_whose_trust_policy_names_it(role):
    """Glue cannot run a job under a role only Lambda may assume: the trust policy, not the caller's key, decides."""
    role([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])  # moto's IAM in place
    glue_role = _role_trusting("job", {"Principal": {"Service": "glue.amazonaws.com"}})
    as_glue = {"aws_access_key_id": "service:glue.amazonaws.com", "aws_secret_access_key": "x"}
    as_lambda = {"aws_access_key_id": "service:lambda.amazonaws.com", "aws_secret_access_key": "x"}

    assert (
        decide(signed(as_glue, "sts", "assume_role", RoleArn=glue_role, RoleSessionName="GlueJobRunnerSession")) is None
    )
    refused = decide(signed(as_lambda, "sts", "assume_role", RoleArn=glue_role, RoleSessionName="fn"))
    assert refused is not None
    assert refused.status_code == 403
    text = refused.get_data(as_text=True)
    assert "<Code>AccessDenied</Code>" in text
    assert f"User: lambda.amazonaws.com is not authorized to perform: sts:AssumeRole on resource: {glue_role}" in text
    assert "because no resource-based policy allows the sts:AssumeRole action" in text
    # nor does the account's administrator: the trust policy names a service only
    admin = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    assert decide(signed(admin, "sts", "assume_role", RoleArn=glue_role, RoleSessionName="session")) is not None


def test_a_trust_condition_and_an_explicit_deny_are_honoured(role):
    role([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])
    workers = _role_trusting(
        "workers",
        {
            "Principal": {"Service": ["airflow-env.amazonaws.com"]},
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        },
    )
    elsewhere = _role_trusting(
        "elsewhere",
        {
            "Principal": {"Service": "airflow-env.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": "999999999999"}},
        },
    )
    mwaa = {"aws_access_key_id": "service:airflow-env.amazonaws.com", "aws_secret_access_key": "x"}
    assert decide(signed(mwaa, "sts", "assume_role", RoleArn=workers, RoleSessionName="workers")) is None
    assert decide(signed(mwaa, "sts", "assume_role", RoleArn=elsewhere, RoleSessionName="workers")) is not None

    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:*", "Sid": "NoSessions"},
        ],
    }
    denied_arn = iam.create_role(RoleName="denied", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    admin = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    refused = decide(signed(admin, "sts", "assume_role", RoleArn=denied_arn, RoleSessionName="session"))
    assert refused is not None
    assert "with an explicit deny in a resource-based policy" in refused.get_data(as_text=True)


def test_a_role_trusting_the_account_admits_its_sessions_and_a_service_key_does_nothing_else(role):
    """A trust policy naming the account admits the account's principals (here a role session); a service's key
    only assumes roles: any other call with it is refused."""
    session = role([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}])
    target = _role_trusting("chained", {"Principal": {"AWS": ACCOUNT}})
    assert decide(signed(session, "sts", "assume_role", RoleArn=target, RoleSessionName="next")) is None
    named = _role_trusting("named", {"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/somebody-else"}})
    assert decide(signed(session, "sts", "assume_role", RoleArn=named, RoleSessionName="next")) is not None

    as_glue = {"aws_access_key_id": "service:glue.amazonaws.com", "aws_secret_access_key": "x"}
    refused = decide(signed(as_glue, "s3", "get_object", Bucket=BUCKET, Key="k"))
    assert refused is not None
    assert refused.status_code == 403
    assert "User: glue.amazonaws.com is not authorized to perform: s3:GetObject" in refused.get_data(as_text=True)


def test_a_bucket_policys_deny_refuses_what_the_role_allows_and_tls_only_holds_locally(role):
    """Explicit deny wins across policies: the bucket's policy refuses the role's allowed read; the platform's
    TLS-only deny does not (the local endpoint stands for AWS's HTTPS endpoint)."""
    credentials = role([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}])
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket=BUCKET)
    for key in ("ratings-ml-training/a", "secret/a"):  # present: a missing key would need s3:ListBucket too
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"1")
    tls_only = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [tls_only]}))
    assert decide(signed(credentials, "s3", "get_object", Bucket=BUCKET, Key="ratings-ml-training/a")) is None

    secret_prefix = {
        "Sid": "NoSecrets",
        "Effect": "Deny",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/workers-0"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/secret/*",
    }
    policy = {"Version": "2012-10-17", "Statement": [tls_only, secret_prefix]}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    assert decide(signed(credentials, "s3", "get_object", Bucket=BUCKET, Key="ratings-ml-training/a")) is None
    refused = decide(signed(credentials, "s3", "get_object", Bucket=BUCKET, Key="secret/a"))
    assert refused is not None
    text = refused.get_data(as_text=True)
    assert f"s3:GetObject on resource: arn:aws:s3:::{BUCKET}/secret/a with an explicit deny in a resource-based" in text


def test_a_key_policy_must_let_the_account_or_the_caller_use_the_key(role):
    """In AWS a KMS key's policy decides first: the default one (the account's root) lets IAM policies decide; one
    that names somebody else refuses the role its own policy allows."""
    credentials = role([{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}])
    kms = boto3.client("kms", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    open_key = kms.create_key()["KeyMetadata"]["KeyId"]  # moto's default policy: the account's root, kms:*
    somebody = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/somebody-else"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    locked_key = kms.create_key(Policy=json.dumps(somebody), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    blob = b"x" * 16
    assert decide(signed(credentials, "kms", "decrypt", KeyId=open_key, CiphertextBlob=blob)) is None
    refused = decide(signed(credentials, "kms", "decrypt", KeyId=locked_key["KeyId"], CiphertextBlob=blob))
    assert refused is not None
    text = refused.get_data(as_text=True)
    assert f"kms:Decrypt on resource: {locked_key['Arn']} because no resource-based policy allows" in text


def test_a_trust_policy_the_endpoint_cannot_read_refuses_by_name_and_audit_mode_still_allows(role, monkeypatch):
    """An operator the evaluator does not know is a refusal naming the request, never a 500 (and no refusal in
    audit mode)."""
    role([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])
    arn = _role_trusting(
        "by-ip",
        {"Principal": {"Service": "glue.amazonaws.com"}, "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
    )
    as_glue = {"aws_access_key_id": "service:glue.amazonaws.com", "aws_secret_access_key": "x"}
    call = signed(as_glue, "sts", "assume_role", RoleArn=arn, RoleSessionName="GlueJobRunnerSession")
    refused = decide(call)
    assert refused is not None
    assert refused.status_code == 403
    assert "glue.amazonaws.com is not authorized to perform: sts:AssumeRole" in refused.get_data(as_text=True)
    monkeypatch.setattr(iam_enforce, "AUDIT_ONLY", True)
    assert decide(call) is None


def test_audit_mode_refuses_nothing_and_logs_what_it_would_refuse(role, monkeypatch, caplog, tmp_path):
    credentials = role([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}])
    monkeypatch.setattr(iam_enforce, "AUDIT_ONLY", True)
    audit = IamEnforcement(state_dir=tmp_path)
    assert audit.intercept(signed(credentials, "s3", "get_object", Bucket="other", Key="a"), lambda _c: None) is None
    assert "would deny arn:aws:sts::123456789012:assumed-role/workers-0/task s3:GetObject on arn:aws:s3:::other/a" in (
        caplog.text
    )
    decisions = [json.loads(line) for line in (tmp_path / "iam-decisions.jsonl").read_text().splitlines()]
    assert [(d["action"], d["resource"], d["effect"]) for d in decisions] == [
        ("s3:GetObject", "arn:aws:s3:::other/a", "implicit deny")
    ]


def test_the_enforcement_setting_takes_on_off_and_audit_only():
    from recsys_local.settings import stack_settings

    assert stack_settings({"LOCAL_IAM_ENFORCEMENT": "1"}).iam_enforcement == "on"
    assert stack_settings({"LOCAL_IAM_ENFORCEMENT": "audit"}).iam_enforcement == "audit"
    assert stack_settings({}).iam_enforcement == "on"  # the default: the platform acts as the workers' role, as in AWS
    with pytest.raises(ValueError, match="LOCAL_IAM_ENFORCEMENT='yes please': expected 1"):
        stack_settings({"LOCAL_IAM_ENFORCEMENT": "yes please"})


def test_a_missing_key_is_refused_to_a_caller_who_may_not_list_the_bucket(role):
    """AWS answers a GET or HEAD of a missing key with 404 only when the caller may list the bucket, else 403: a
    sensor waiting for a key needs s3:ListBucket."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="there", Body=b"x")
    read = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    credentials = role([read])
    assert decide(signed(credentials, "s3", "head_object", Bucket=BUCKET, Key="there")) is None
    refused = decide(signed(credentials, "s3", "head_object", Bucket=BUCKET, Key="not-yet"))
    assert "s3:ListBucket on resource: arn:aws:s3:::" + BUCKET in refused.get_data(as_text=True)
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"}
    assert decide(signed(role([read, listing]), "s3", "head_object", Bucket=BUCKET, Key="not-yet")) is None


def test_a_create_with_tags_also_needs_the_services_tag_action(role):
    """AWS's tag on create: CreateFunction with tags is authorized for lambda:TagResource too."""
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:de-c1w4-model-inference"
    create = {"Effect": "Allow", "Action": "lambda:CreateFunction", "Resource": function}
    pass_role = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}
    params = {
        "FunctionName": "de-c1w4-model-inference",
        "Role": f"arn:aws:iam::{ACCOUNT}:role/r",
        "Code": {"S3Bucket": "scripts", "S3Key": "k.zip"},
        "Tags": {"Project": "de-c1w4"},
    }
    refused = decide(signed(role([create, pass_role]), "lambda", "create_function", **params))
    assert f"lambda:TagResource on resource: {function}" in json.loads(refused.get_data())["Message"]
    tag = {"Effect": "Allow", "Action": "lambda:TagResource", "Resource": function}
    assert decide(signed(role([create, pass_role, tag]), "lambda", "create_function", **params)) is None


@pytest.mark.parametrize(
    ("service", "method", "params"),
    [
        (
            "rds",
            "create_db_subnet_group",
            {"DBSubnetGroupName": "g", "DBSubnetGroupDescription": "d", "SubnetIds": ["s"]},
        ),
        ("iam", "create_role", {"RoleName": "r", "AssumeRolePolicyDocument": "{}"}),
        ("kms", "create_key", {}),
        ("logs", "create_log_group", {"logGroupName": "g"}),
        ("secretsmanager", "create_secret", {"Name": "s"}),
        ("kinesis", "create_stream", {"StreamName": "s"}),
    ],
)
def test_the_tags_of_a_create_request_are_read_in_each_protocols_shape(service, method, params):
    from recsys_local.iam_enforce import request_tags

    tags = {"Project": "de-c1w4", "ManagedBy": "terraform"}
    shaped: dict[str, Any] = {
        "rds": {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]},
        "iam": {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]},
        "kms": {"Tags": [{"TagKey": k, "TagValue": v} for k, v in tags.items()]},
        "logs": {"tags": tags},
        "secretsmanager": {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]},
        "kinesis": {"Tags": tags},
    }[service]
    environ, body = signed_request(service, method, {**params, **shaped})
    assert request_tags(operation(environ, body)) == tags


def test_lambda_refuses_a_vpc_function_whose_execution_role_cannot_manage_its_network_interfaces(role):
    """As AWS's Lambda does on CreateFunction: the execution role (not the caller) must be able to create the ENI in
    each subnet with each security group, describe and delete ENIs; the answer is Lambda's, not an AccessDenied."""
    ec2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:de-c1w4-model-inference"
    caller = role(
        [
            {"Effect": "Allow", "Action": "lambda:CreateFunction", "Resource": function},
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
        ]
    )
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }

    def execution_role(name: str, subnet: str, delete: bool) -> str:
        statements = [
            {
                "Effect": "Allow",
                "Action": "ec2:CreateNetworkInterface",
                "Resource": [f"{ec2}:network-interface/*", f"{ec2}:subnet/{subnet}", f"{ec2}:security-group/sg-1"],
            },
            {"Effect": "Allow", "Action": "ec2:DescribeNetworkInterfaces", "Resource": "*"},
        ]
        if delete:
            statements.append(
                {"Effect": "Allow", "Action": "ec2:DeleteNetworkInterface", "Resource": f"{ec2}:network-interface/*"}
            )
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(
            RoleName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements})
        )
        return arn

    def create(execution: str) -> Any:
        params = {
            "FunctionName": "de-c1w4-model-inference",
            "Role": execution,
            "Code": {"S3Bucket": "scripts", "S3Key": "k.zip"},
            "VpcConfig": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
        }
        return decide(signed(caller, "lambda", "create_function", **params))

    one_subnet = create(execution_role("one-subnet", "subnet-a", delete=True))
    assert one_subnet.status_code == 400
    assert one_subnet.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    expected = "The provided execution role does not have permissions to call CreateNetworkInterface on EC2"
    assert json.loads(one_subnet.get_data())["Message"] == expected
    no_delete = create(execution_role("no-delete", "*", delete=False))
    assert "call DeleteNetworkInterface on EC2" in json.loads(no_delete.get_data())["Message"]
    assert create(execution_role("enough", "*", delete=True)) is None


def test_the_endpoint_counts_what_enforcement_costs_and_answers_it_on_its_timing_path(role):
    """make bench's iam suite reads these counters: each signed request decided adds one, and its deciding time."""
    from recsys_local.iam_enforce import TIMING_PATH

    enforcement = IamEnforcement(state_dir=None)
    credentials = role([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}])
    for key in ("a", "b", "c"):
        enforcement.intercept(signed(credentials, "s3", "get_object", Bucket=BUCKET, Key=key), lambda _c: None)
    answer = enforcement.intercept(
        AwsCall(environ={"PATH_INFO": TIMING_PATH, "REQUEST_METHOD": "GET"}, body=b""), lambda _c: None
    )
    counters = json.loads(answer.get_data())
    assert counters["authorized"] == 3
    assert counters["seconds"] > 0


def test_lambda_checks_a_vpc_functions_new_role_and_names_a_role_it_cannot_assume(role):
    """An update that names only a new role keeps the function's subnets: the new role is checked; a role that does
    not exist gets Lambda's own answer."""
    import io
    import zipfile

    admin = {"region_name": REGION, "aws_access_key_id": "test", "aws_secret_access_key": "test"}
    iam, lam = boto3.client("iam", **admin), boto3.client("lambda", **admin)
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    eni = {"Effect": "Allow", "Action": ["ec2:*NetworkInterface*"], "Resource": "*"}
    roles = {}
    for name, statements in (("with-enis", [eni]), ("without-enis", [])):
        roles[name] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        document = {
            "Version": "2012-10-17",
            "Statement": statements or [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
        }
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    lam.create_function(
        FunctionName="fn", Runtime="python3.11", Role=roles["with-enis"], Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()}, VpcConfig={"SubnetIds": ["subnet-a"], "SecurityGroupIds": ["sg-1"]},
    )  # fmt: skip
    caller = role(
        [{"Effect": "Allow", "Action": ["lambda:UpdateFunctionConfiguration", "iam:PassRole"], "Resource": "*"}]
    )
    refused = decide(
        signed(caller, "lambda", "update_function_configuration", FunctionName="fn", Role=roles["without-enis"])
    )
    assert "call CreateNetworkInterface on EC2" in json.loads(refused.get_data())["Message"]
    assert (
        decide(signed(caller, "lambda", "update_function_configuration", FunctionName="fn", Role=roles["with-enis"]))
        is None
    )
    missing = f"arn:aws:iam::{ACCOUNT}:role/nobody"
    refused = decide(signed(caller, "lambda", "update_function_configuration", FunctionName="fn", Role=missing))
    assert json.loads(refused.get_data())["Message"] == "The role defined for the function cannot be assumed by Lambda."
