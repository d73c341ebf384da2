"""Publishing is atomic: readers following the pointer never see files of two versions mixed."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from recsys.model.artifacts import LAYOUT, POINTER_KEY, promote, read_pointer, stage


def files_of(version: str) -> dict[str, bytes]:
    return {key: f"{version}:{key}".encode() for key in LAYOUT}


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="artifacts")
        yield client


def read(s3, key):
    return s3.get_object(Bucket="artifacts", Key=key)["Body"].read().decode()


def test_stage_then_promote_moves_the_pointer_last(s3):
    stage(s3, "artifacts", "v1", files_of("v1"))
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="artifacts", Key=POINTER_KEY)
    pointer = promote(s3, "artifacts", "v1")
    assert read_pointer(s3, "artifacts") == pointer
    assert all(read(s3, key) == f"v1:{key}" for key in LAYOUT)


def test_a_failed_upload_leaves_the_current_version_whole(s3):
    stage(s3, "artifacts", "v1", files_of("v1"))
    promote(s3, "artifacts", "v1")
    partial = dict(list(files_of("v2").items())[:3])
    with pytest.raises(ValueError, match="incomplete"):
        stage(s3, "artifacts", "v2", partial)
    for key, body in partial.items():  # as if an upload died halfway
        s3.put_object(Bucket="artifacts", Key=f"versions/v2/{key}", Body=body)
    with pytest.raises(ValueError, match="incomplete"):
        promote(s3, "artifacts", "v2")
    pointer = read_pointer(s3, "artifacts")
    assert pointer["model_version"] == "v1"
    assert {read(s3, pointer["prefix"] + key).split(":")[0] for key in LAYOUT} == {"v1"}
    assert json.loads(read(s3, POINTER_KEY))["prefix"] == "versions/v1/"


class _Hook:
    """The two calls ``load_training_frame`` makes on an Airflow ``S3Hook``, over a boto3 client."""

    def __init__(self, client) -> None:
        self.client = client

    def check_for_key(self, key: str, bucket_name: str) -> bool:
        try:
            self.client.head_object(Bucket=bucket_name, Key=key)
        except self.client.exceptions.ClientError:
            return False
        return True

    def read_key(self, key: str, bucket_name: str) -> str:
        return self.client.get_object(Bucket=bucket_name, Key=key)["Body"].read().decode()


def test_a_manual_training_run_reads_the_live_manifest_of_the_etl_roots_bucket_not_a_default_name(s3):
    from recsys.model.pipeline import load_training_frame

    lake = "de-c1w4-111122223333-datalake"  # an AWS account's bucket: no default account may stand in for it
    s3.create_bucket(Bucket=lake)
    with pytest.raises(FileNotFoundError, match=rf"^s3://{lake}/ratings-ml-training/_manifest\.json not found"):
        load_training_frame(_Hook(s3), datalake_bucket=lake)
    with pytest.raises(ValueError, match="datalake_bucket output"):
        load_training_frame(_Hook(s3))
