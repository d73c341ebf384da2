"""The Glue script's JDBC read of the MySQL source runs over TLS and verifies the server's certificate.

The stack's MariaDB refuses TCP clients without TLS (``require_secure_transport``), so a read that returns rows used
TLS; a read told to trust another CA must fail on the certificate."""

from __future__ import annotations

import json
import uuid

import pytest

from recsys.etl.glue_job import Context, read_source
from recsys_local.seed.loader import seed_if_empty

pytestmark = pytest.mark.integration
pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def source(stack):
    cfg = stack.mariadb()
    seed_if_empty(cfg)
    client = stack.client("secretsmanager")
    body = {
        "engine": "mysql",
        "host": cfg.host,
        "port": cfg.port,
        "username": cfg.etl_user,
        "password": cfg.etl_password,
        "dbname": cfg.database,
    }
    arn = client.create_secret(Name=f"test-source-{uuid.uuid4().hex[:8]}", SecretString=json.dumps(body))["ARN"]
    yield arn, cfg
    client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


@pytest.fixture(scope="module")
def context(stack):
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {
            "AWS_ENDPOINT_URL": stack.settings.aws_endpoint_url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": stack.settings.names.region,
            "SPARK_LOCAL_IP": "127.0.0.1",
        }.items():
            patch.setenv(key, value)
        ctx = Context("tls-test", {})
        yield ctx
        ctx.spark.stop()


def args(secret_arn: str, ca: str) -> dict[str, str]:
    return {"source_secret_id": secret_arn, "source_table_prefix": "", "jdbc_partitions": "2", "source_ssl_ca": ca}


def test_the_read_verifies_the_sources_certificate_against_the_given_ca(source, context):
    secret_arn, cfg = source
    context.args = args(secret_arn, str(cfg.ca_file))
    assert context.jdbc_ssl_options() == {"useSsl": "true", "serverSslCert": str(cfg.ca_file)}
    customers, products, ratings = read_source(context, context.args)
    assert products.count() > 0
    assert customers.count() > 0
    assert ratings.count() > 0

    context.args = args(secret_arn, "/etc/ssl/certs/ca-certificates.crt")  # trusts the public CAs, not the stack's
    from py4j.protocol import Py4JJavaError  # Spark raises the driver's SQLException as it is

    with pytest.raises(Py4JJavaError, match=r"PKIX path building failed"):  # the JDBC schema lookup already fails
        read_source(context, context.args)[0].count()
