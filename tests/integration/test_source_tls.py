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


READ_ON_EXECUTORS = """
import sys
from recsys.etl.glue_job import Context, read_source
if sys.argv[2] == "unshipped":  # what the job did before: the trust store only in the driver's directory
    from pyspark import SparkContext
    SparkContext.addFile = lambda self, path, recursive=False: None
args = {"source_secret_id": sys.argv[1], "source_table_prefix": "", "jdbc_partitions": "2",
        "source_ssl_ca": "file:source-ca.pem"}
ctx = Context("tls-executors", args)
print("app", ctx.spark.sparkContext.applicationId, flush=True)
customers, products, ratings = read_source(ctx, args)
print("rows", customers.count(), ratings.count())
ctx.spark.stop()
"""


@pytest.mark.parametrize("shipped", [True, False], ids=["shipped", "unshipped"])
def test_the_executors_verify_the_source_with_the_trust_store_the_job_ships(source, stack, tmp_path, shipped):
    """Part 5: Spark executors in their own processes and working directories (``local-cluster``, as Glue's workers),
    the CA only in the driver's working directory (where Glue's --extra-files puts it): the partitioned read works
    because the job ships the trust store to each executor (``ship_trust_store``), and fails without it."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import pyspark

    secret_arn, cfg = source
    driver_dir = tmp_path / "driver"
    driver_dir.mkdir()
    shutil.copy(cfg.ca_file, driver_dir / "source-ca.pem")
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": stack.settings.aws_endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": stack.settings.names.region,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_MASTER": "local-cluster[1,1,1024]",
    }
    mode = "shipped" if shipped else "unshipped"
    command = [sys.executable, "-c", READ_ON_EXECUTORS, secret_arn, mode]
    result = subprocess.run(command, cwd=driver_dir, env=env, capture_output=True, text=True, timeout=600)
    # local-cluster's executors work under <SPARK_HOME>/work/<application id>/<executor id>: removed afterwards
    app = result.stdout.split("app ", 1)[1].split()[0] if "app " in result.stdout else None
    work = Path(pyspark.__file__).parent / "work" / app if app else None
    try:
        if shipped:
            assert result.returncode == 0, result.stderr[-4000:]
            customers, ratings = map(int, result.stdout.split("rows", 1)[1].split())
            assert customers > 0
            assert ratings > 0
            copies = list(work.glob("*/source-ca.pem")) if work else []
            assert copies, "each executor reads its own copy, in its own working directory"
            assert all(copy.parent != driver_dir for copy in copies)
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
            if not any(work.parent.iterdir()):
                work.parent.rmdir()
    if not shipped:
        assert result.returncode != 0
        assert "Failed to find serverSslCert file. serverSslCert=source-ca.pem" in result.stderr
