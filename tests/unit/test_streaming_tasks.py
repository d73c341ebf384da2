"""What the streaming_recommendations tasks run (recsys.streaming.tasks): the root's arguments, the rollback that
builds nothing, the smoke events about a source product (schema-valid, in the cart) and the sensor's check."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from jsonschema import Draft202012Validator, FormatChecker

import recsys.streaming.generator as generator
from recsys.streaming import tasks
from recsys_serving.events import SCHEMA_PATH, EventError, browsed_item, parse_event

SCHEMA = Draft202012Validator(json.loads(SCHEMA_PATH.read_text()), format_checker=FormatChecker())
PRODUCT = browsed_item(
    {
        "productCode": "S10_1678",
        "productLine": "Motorcycles",
        "productScale": "1:10",
        "quantityInStock": 7933,
        "buyPrice": Decimal("48.81"),
        "MSRP": Decimal("95.70"),
    }
)
PACKAGES = {"transformation": {"key": "lambda/t-1.zip"}, "model_inference": {"key": "lambda/m-1.zip"}}
PARAMS = {"provision_infrastructure": True, "rollback_to_versions": "", "allow_destroy": False}


@pytest.fixture
def catalog(monkeypatch):
    """The source as load_catalog reads it: one customer, one product."""
    customers = [{"customer_number": 103, "city": "Nantes", "country": "France", "credit_limit": 21000.0}]
    monkeypatch.setattr(generator, "load_catalog", lambda conn_id: (customers, [PRODUCT]))


def test_the_streaming_root_is_applied_with_the_runs_packages_and_model_version():
    assert tasks.streaming_root_arguments(PACKAGES, "v7", PARAMS) == {
        "apply": True,
        "variables": {
            "transformation_package_key": "lambda/t-1.zip",
            "model_inference_package_key": "lambda/m-1.zip",
            "model_version": "v7",
        },
        "allow_destroy": False,
    }


@pytest.mark.parametrize(
    "change",
    [{"provision_infrastructure": False}, {"rollback_to_versions": "3,2"}],
    ids=["outputs only", "rollback"],
)
def test_a_run_that_only_reads_or_rolls_back_applies_nothing(change):
    # a rollback builds no packages: nothing to apply them with
    arguments = tasks.streaming_root_arguments({}, "v7", {**PARAMS, **change, "allow_destroy": True})
    assert arguments == {"apply": False, "variables": {}, "allow_destroy": True}


def test_a_rollback_builds_and_uploads_nothing(monkeypatch):
    import airflow.providers.amazon.aws.hooks.s3 as s3_hooks

    def no_s3(**_kwargs):
        raise AssertionError("a rollback opened S3")

    monkeypatch.setattr(s3_hooks, "S3Hook", no_s3)
    assert tasks.build_and_upload_packages("scripts", {"rollback_to_versions": "3", "prebuilt_packages": ""}) == {}


def test_the_run_tag_is_the_run_ids_end_without_separators():
    assert tasks.run_tag("manual__2026-12-07T10:11:12.345678+00:00") == "3456780000"


def test_the_lambda_test_event_carries_one_valid_event_about_a_source_product_and_one_malformed(catalog):
    test = tasks.build_lambda_test_event({"transformation_lambda_name": "recsys-transformation-lambda"}, "run:1+0")
    assert test["function_name"] == "recsys-transformation-lambda"
    payload = json.loads(test["payload"])
    assert "session_id" not in payload  # a Firehose event, nothing else
    records = {r["recordId"]: json.loads(base64.b64decode(r["data"])) for r in payload["records"]}
    assert set(records) == {"smoke-valid", "smoke-malformed"}
    valid = records["smoke-valid"]
    assert SCHEMA.is_valid(valid), list(SCHEMA.iter_errors(valid))
    assert valid["session_id"] == test["session_id"]
    assert test["session_id"].startswith("smoke-run10-")
    assert valid["browse_history"] == [{**PRODUCT, "in_shopping_cart": True}]
    with pytest.raises(EventError):
        parse_event(records["smoke-malformed"])


class FakeFirehose:
    """The provider hook's client: records each put, answers with ``answer``."""

    def __init__(self, answer: dict) -> None:
        self.answer, self.puts = answer, []

    def put_record(self, **kwargs) -> dict:
        self.puts.append(kwargs)
        return self.answer


@pytest.fixture
def firehose(monkeypatch):
    import airflow.providers.amazon.aws.hooks.firehose as firehose_hooks

    client = FakeFirehose({"RecordId": "r-1"})
    monkeypatch.setattr(firehose_hooks, "FirehoseHook", lambda **_kw: type("Hook", (), {"conn": client})())
    return client


STREAMING = {"smoke_delivery_stream_name": "recsys-delivery-stream-smoke", "recommendations_bucket": "recs"}


def test_the_smoke_event_goes_to_the_smoke_stream_and_says_where_to_find_it(catalog, firehose):
    before = datetime.now(UTC)
    smoke = tasks.put_smoke_delivery_event(STREAMING, "scheduled__2026-12-07T02:00:00+00:00")
    [put] = firehose.puts
    assert put["DeliveryStreamName"] == "recsys-delivery-stream-smoke"
    event = json.loads(put["Record"]["Data"])
    assert SCHEMA.is_valid(event), list(SCHEMA.iter_errors(event))
    assert event["browse_history"] == [{**PRODUCT, "in_shopping_cart": True}]
    put_at = datetime.fromisoformat(smoke["put_at"])
    assert smoke == {
        "session_id": event["session_id"],
        "hour_prefix": "smoke-tests/" + put_at.strftime("%Y/%m/%d/%H/"),
        "put_at": smoke["put_at"],
        "bucket": "recs",
    }
    assert before <= put_at <= datetime.now(UTC)


def test_a_smoke_event_the_stream_does_not_accept_fails_naming_the_stream(catalog, firehose):
    firehose.answer = {}
    with pytest.raises(RuntimeError, match="recsys-delivery-stream-smoke did not accept the record"):
        tasks.put_smoke_delivery_event(STREAMING, "run")


def test_the_smoke_sensor_passes_only_on_an_object_written_after_the_put():
    put_at = datetime(2026, 12, 7, 2, 0, 10, tzinfo=UTC)
    ti = type("TI", (), {"xcom_pull": lambda self, task_ids: {"put_at": put_at.isoformat()}})()
    earlier = {"Key": "smoke-tests/a", "LastModified": put_at - timedelta(minutes=5)}
    later = {"Key": "smoke-tests/b", "LastModified": put_at + timedelta(seconds=30)}
    assert tasks.delivered_after_put([earlier], ti=ti) is False
    assert tasks.delivered_after_put([earlier, later], ti=ti) is True
