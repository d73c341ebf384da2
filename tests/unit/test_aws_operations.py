"""A request as the SDK sends it is resolved to its operation and the IAM actions AWS authorizes it as: the requests
are built and signed by botocore itself (captured before they are sent), for each protocol the platform uses."""

from __future__ import annotations

from typing import Any

import pytest
from signed_requests import ENDPOINT, signed_request

from recsys_local.aws_operations import operation


def environ_of(service: str, method: str, params: dict[str, Any], endpoint: str = ENDPOINT) -> tuple:
    return signed_request(service, method, params, endpoint=endpoint)


@pytest.mark.parametrize(
    ("service", "method", "params", "actions"),
    [
        ("s3", "head_object", {"Bucket": "b", "Key": "k/x.csv"}, ("s3:GetObject",)),
        ("s3", "get_object", {"Bucket": "b", "Key": "k"}, ("s3:GetObject",)),
        ("s3", "put_object", {"Bucket": "b", "Key": "k", "Body": b"x"}, ("s3:PutObject",)),
        ("s3", "list_objects_v2", {"Bucket": "b", "Prefix": "p/"}, ("s3:ListBucket",)),
        ("s3", "head_bucket", {"Bucket": "b"}, ("s3:ListBucket",)),
        ("s3", "get_bucket_versioning", {"Bucket": "b"}, ("s3:GetBucketVersioning",)),
        ("s3", "get_bucket_lifecycle_configuration", {"Bucket": "b"}, ("s3:GetLifecycleConfiguration",)),
        ("s3", "put_bucket_policy", {"Bucket": "b", "Policy": "{}"}, ("s3:PutBucketPolicy",)),
        ("s3", "delete_bucket", {"Bucket": "b"}, ("s3:DeleteBucket",)),
        ("s3", "create_bucket", {"Bucket": "b"}, ("s3:CreateBucket",)),
        ("s3", "list_buckets", {}, ("s3:ListAllMyBuckets",)),
        ("s3", "copy_object", {"Bucket": "b", "Key": "k", "CopySource": "b/s"}, ("s3:GetObject", "s3:PutObject")),
        ("lambda", "invoke", {"FunctionName": "f", "Qualifier": "live"}, ("lambda:InvokeFunction",)),
        ("lambda", "publish_version", {"FunctionName": "f"}, ("lambda:PublishVersion",)),
        ("lambda", "list_versions_by_function", {"FunctionName": "f"}, ("lambda:ListVersionsByFunction",)),
        ("lambda", "update_alias", {"FunctionName": "f", "Name": "live"}, ("lambda:UpdateAlias",)),
        ("lambda", "get_function", {"FunctionName": "f"}, ("lambda:GetFunction",)),
        ("lambda", "get_function_configuration", {"FunctionName": "f"}, ("lambda:GetFunctionConfiguration",)),
        ("glue", "start_job_run", {"JobName": "j"}, ("glue:StartJobRun",)),
        (
            "kinesis",
            "put_records",
            {"StreamName": "s", "Records": [{"Data": b"x", "PartitionKey": "k"}]},
            ("kinesis:PutRecords",),
        ),
        ("firehose", "put_record", {"DeliveryStreamName": "d", "Record": {"Data": b"x"}}, ("firehose:PutRecord",)),
        ("logs", "get_log_events", {"logGroupName": "g", "logStreamName": "s"}, ("logs:GetLogEvents",)),
        ("kms", "describe_key", {"KeyId": "alias/x"}, ("kms:DescribeKey",)),
        ("secretsmanager", "get_secret_value", {"SecretId": "s"}, ("secretsmanager:GetSecretValue",)),
        ("iam", "get_role", {"RoleName": "r"}, ("iam:GetRole",)),
        ("sts", "get_caller_identity", {}, ("sts:GetCallerIdentity",)),
        ("ec2", "describe_security_groups", {}, ("ec2:DescribeSecurityGroups",)),
        ("rds", "describe_db_instances", {}, ("rds:DescribeDBInstances",)),
        ("cloudwatch", "put_metric_data", {"Namespace": "n", "MetricData": []}, ("cloudwatch:PutMetricData",)),
    ],
)
def test_each_protocol_resolves_to_the_iam_action(service, method, params, actions):
    environ, body = environ_of(service, method, params)
    found = operation(environ, body)
    assert found is not None
    assert found.access_key == "AKIDEXAMPLE"
    assert found.actions == actions


def test_a_virtual_hosted_s3_request_names_its_bucket_in_the_host():
    environ, body = environ_of("s3", "get_object", {"Bucket": "b", "Key": "k"}, endpoint="https://s3.amazonaws.com")
    environ["HTTP_HOST"] = "b.s3.amazonaws.com"
    environ["PATH_INFO"] = "/k"
    assert operation(environ, body).actions == ("s3:GetObject",)


def test_an_unsigned_request_is_not_an_aws_operation():
    assert operation({"REQUEST_METHOD": "POST", "PATH_INFO": "/moto-api/reset"}, b"") is None


def test_parameters_come_from_the_path_the_query_the_body_and_the_headers():
    copy = operation(*environ_of("s3", "copy_object", {"Bucket": "dst", "Key": "a/b", "CopySource": "src/x y"}))
    assert (copy.params["Bucket"], copy.params["Key"], copy.params["CopySource"]) == ("dst", "a/b", "src/x y")
    invoke = operation(*environ_of("lambda", "invoke", {"FunctionName": "f", "Qualifier": "live"}))
    assert (invoke.params["FunctionName"], invoke.params["Qualifier"]) == ("f", "live")
    glue = operation(*environ_of("glue", "get_table", {"DatabaseName": "d", "Name": "t"}))
    assert (glue.params["DatabaseName"], glue.params["Name"]) == ("d", "t")
    groups = operation(*environ_of("ec2", "describe_security_groups", {"GroupIds": ["sg-1"]}))
    assert groups.params["GroupId.1"] == "sg-1"
