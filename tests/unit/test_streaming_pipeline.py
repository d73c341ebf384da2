"""The deploy DAG's smoke checks fail with :class:`SmokeTestError` naming what came back, never a bare assert."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from recsys.streaming.pipeline import SmokeTestError, check_transformation_response, find_recommendation


def response(valid: dict | None = None, malformed: str = "ProcessingFailed", version: str = "v1") -> str:
    line = {"session_id": "s-1", "model_version": version, "recommended_items": [1], "similar_items": [2]}
    records = [
        {"recordId": "smoke-valid", "result": "Ok", "data": base64.b64encode(json.dumps(line).encode()).decode()},
        {"recordId": "smoke-malformed", "result": malformed},
    ]
    if valid is not None:
        records[0] = {"recordId": "smoke-valid", **valid}
    return json.dumps({"records": records})


def test_a_good_answer_passes_with_what_was_served():
    checked = check_transformation_response(response(), "s-1", "v1")
    assert checked == {"session_id": "s-1", "model_version": "v1", "recommended": [1]}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("<html>bad gateway</html>", r"^not a Firehose transformation response \(.*\): <html>bad gateway</html>$"),
        (response(version="v0"), r"served model v0, expected v1$"),
        (response(malformed="Ok"), r"the malformed record came back 'Ok', not ProcessingFailed$"),
        (response(valid={"result": "ProcessingFailed"}), r"the valid record came back 'ProcessingFailed'"),
    ],
)
def test_a_wrong_answer_is_a_smoke_test_error_naming_it(payload, message):
    with pytest.raises(SmokeTestError, match=message):
        check_transformation_response(payload, "s-1", "v1")


@mock_aws
def test_a_delivered_line_without_recommendations_is_a_smoke_test_error_naming_the_object():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="recs")
    put_at = datetime.now(UTC) - timedelta(seconds=5)
    hour_prefix = "smoke-tests/" + put_at.strftime("%Y/%m/%d/%H/")
    line = json.dumps({"session_id": "s-1", "recommended_items": [], "similar_items": [2]})
    s3.put_object(Bucket="recs", Key=hour_prefix + "smoke-1", Body=line.encode())
    with pytest.raises(SmokeTestError, match=rf"^{hour_prefix}smoke-1: the smoke event got no recommendations"):
        find_recommendation(s3, "recs", hour_prefix, "s-1", put_at.isoformat(), timeout=5)
