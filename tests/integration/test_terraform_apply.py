"""The real Terraform roots applied against the test stack's endpoint, in the nightly chain's order, then planned
again: a root that plans changes right after its own apply is not idempotent (drift on every run)."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile

import pytest

from recsys.provisioning import OUTPUTS, PIPELINES
from recsys.provisioning.terraform import TerraformProvisioner

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed"),
]


@pytest.fixture(scope="module")
def provisioner(stack, tmp_path_factory):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "VECTOR_DB_", "AWS_"))},
        **stack.environment(),
        "TERRAFORM_WORK_DIR": str(tmp_path_factory.mktemp("terraform-work")),
    }
    return TerraformProvisioner(env)


def package_keys(stack) -> dict[str, str]:
    """Stand-in packages (the deploy DAG uploads real ones): Terraform only needs the keys to exist."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    s3 = stack.client("s3")
    keys = {
        "transformation_package_key": "lambda/apply-test-t.zip",
        "model_inference_package_key": "lambda/apply-test-m.zip",
    }
    for key in keys.values():
        s3.put_object(Bucket=stack.settings.names.scripts_bucket, Key=key, Body=buffer.getvalue())
    return {**keys, "model_version": "apply-test"}


def test_every_root_applies_locally_and_plans_no_changes_after(provisioner, stack):
    variables: dict[str, dict[str, str]] = {}
    for pipeline in PIPELINES:  # the chain's order: streaming reads what etl and vector_db created
        if pipeline == "streaming_inference":
            variables[pipeline] = package_keys(stack)
        outputs = provisioner.provision(pipeline, variables=variables.get(pipeline))
        assert set(outputs) == set(OUTPUTS[pipeline])
        assert provisioner.pending_changes(pipeline, variables.get(pipeline)) == [], f"{pipeline} is not idempotent"

    names = stack.settings.names
    glue = stack.client("glue")
    job = glue.get_job(JobName=names.glue_job)["Job"]
    assert job["GlueVersion"] == "5.1"
    assert job["DefaultArguments"]["--TempDir"].startswith(f"s3://{names.datalake_bucket}/")
    assert job["Connections"]["Connections"] == [f"{names.glue_job}-source"]
    table = glue.get_table(DatabaseName=names.glue_database, Name="ratings_ml_training")["Table"]
    assert table["Parameters"]["projection.enabled"] == "true"

    vector_db = provisioner.provision("vector_db", apply=False)
    assert (vector_db["vector_db_host"], vector_db["vector_db_port"]) == (
        stack.settings.host,
        stack.settings.vector_db_port,
    )
    secret = json.loads(
        stack.client("secretsmanager").get_secret_value(SecretId=vector_db["vector_db_secret_arn"])["SecretString"]
    )
    assert secret == {"username": stack.settings.vector_db_user, "password": stack.vectordb().password}

    firehose = stack.client("firehose").describe_delivery_stream(DeliveryStreamName=names.delivery_stream)
    destination = firehose["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
    processor = destination["ProcessingConfiguration"]["Processors"][0]["Parameters"]
    assert {
        "ParameterName": "LambdaArn",
        "ParameterValue": f"arn:aws:lambda:{names.region}:{names.account}:function:{names.transformation_lambda}:live",
    } in processor
    assert destination["BufferingHints"]["SizeInMBs"] == 5
