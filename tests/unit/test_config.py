import pytest

from recsys.config import LOCAL_ACCOUNT_ID, NAME_TEMPLATES, TRAINING_COLUMNS, platform_names
from recsys_local.settings import stack_settings


def test_lab_names_follow_the_prefix():
    names = platform_names({"RECSYS_PREFIX": "de-c1w4", "AWS_ACCOUNT_ID": "111122223333"})
    assert names.glue_job == "de-c1w4-etl-job"
    assert names.vector_db == "de-c1w4-vector-db"
    assert names.kinesis_stream == "de-c1w4-kinesis-data-stream"
    assert names.delivery_stream == "de-c1w4-delivery-stream"
    assert names.transformation_lambda == "de-c1w4-transformation-lambda"
    assert names.model_inference_lambda == "de-c1w4-model-inference"
    assert names.datalake_bucket == "de-c1w4-111122223333-datalake"


def test_another_prefix_renames_every_resource():
    names = platform_names({"RECSYS_PREFIX": "acme-prod", "RECSYS_TARGET": "local"})
    assert all(value.startswith("acme") for value in names.as_env().values())
    assert set(names.as_env()) == {kind.upper() for kind in NAME_TEMPLATES}


def test_training_columns_are_the_contract():
    """config's name for the contract is the Glue script's definition (the script ships alone, so it holds it): every
    name, in order."""
    from recsys.etl.glue_job import TRAINING_COLUMNS as GLUE_COLUMNS

    assert TRAINING_COLUMNS is GLUE_COLUMNS
    assert TRAINING_COLUMNS == (
        "customerNumber", "city", "state", "postalCode", "country", "creditLimit", "productCode", "productLine",
        "productScale", "quantityInStock", "buyPrice", "MSRP", "productRating",
    )  # fmt: skip


def test_ports_come_from_the_environment():
    settings = stack_settings({"MYSQL_PORT": "4406", "VECTOR_DB_PORT": "6543", "AWS_PORT": "7000"})
    assert (settings.mysql_port, settings.vector_db_port, settings.aws_port) == (4406, 6543, 7000)
    assert settings.aws_endpoint_url == "http://127.0.0.1:7000"


def test_a_bad_port_names_the_variable():
    with pytest.raises(ValueError, match="MYSQL_PORT"):
        stack_settings({"MYSQL_PORT": "three"})


def test_names_on_aws_take_the_callers_account_and_never_default_to_the_local_one():
    on_aws = {"RECSYS_TARGET": "aws", "RECSYS_PREFIX": "de-c1w4"}
    unknown = platform_names(on_aws)
    with pytest.raises(ValueError, match="the datalake_bucket name holds the AWS account id and none is known"):
        unknown.datalake_bucket  # noqa: B018 - the property raises
    assert unknown.kinesis_stream == "de-c1w4-kinesis-data-stream"  # a name without the account is still known
    assert platform_names(on_aws, account="111122223333").datalake_bucket == "de-c1w4-111122223333-datalake"
    assert platform_names({**on_aws, "AWS_ACCOUNT_ID": "444455556666"}).account == "444455556666"
    assert platform_names({"RECSYS_TARGET": "local"}).account == LOCAL_ACCOUNT_ID  # the local stack (moto's account)
    assert platform_names({}).account is None  # unset target: no account is made up


def test_every_name_template_is_an_attribute_and_nothing_else_is():
    names = platform_names({"RECSYS_PREFIX": "acme", "AWS_ACCOUNT_ID": "111122223333"})
    for kind in NAME_TEMPLATES:
        assert getattr(names, kind) == names.name(kind)
    assert names.vector_db_loader == "acme-vector-db-loader"
    with pytest.raises(AttributeError, match="datalake_bucket"):
        _ = names.datalake  # a typo names the real ones
