"""The model-inference function's answers to what is not the caller's fault: an invalid environment is a 500 for the
operator (the detail in the function's log), never a 400 that blames the request or echoes the configuration."""

from __future__ import annotations

import json
import logging

import pytest

from recsys_serving import inference_api, runtime


@pytest.mark.parametrize(
    ("variable", "value"), [("MODEL_REFRESH_SECONDS", "-1"), ("VECTOR_DB_PROBES", "0"), ("VECTOR_DB_PORT", "x")]
)
def test_an_invalid_environment_is_a_500_named_in_the_log_not_in_the_answer(monkeypatch, caplog, variable, value):
    monkeypatch.setattr(runtime, "_state", {})
    monkeypatch.setenv("ML_ARTIFACTS_BUCKET", "artifacts")
    monkeypatch.setenv(variable, value)
    event = {"requestContext": {"http": {"method": "POST"}}, "rawPath": "/user_embeddings", "body": json.dumps({})}
    with caplog.at_level(logging.ERROR):
        answer = inference_api.handler(event)
    assert answer["statusCode"] == 500
    assert value not in answer["body"]
    assert f"{variable}={value!r}" in caplog.text


def test_a_bad_request_is_still_a_400(monkeypatch):
    event = {"requestContext": {"http": {"method": "POST"}}, "rawPath": "/user_embeddings", "body": "[]"}
    answer = inference_api.handler(event)
    assert answer["statusCode"] == 400
    assert "send {'users'" in json.loads(answer["body"])["message"]
