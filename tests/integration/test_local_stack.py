"""The local stack's services answer as the pipelines expect."""

from __future__ import annotations

import socket
import subprocess
import sys

import pymysql
import pytest

from recsys_local import airflow_db, mariadb, postgres
from recsys_local.process import StackError, ensure_port_free
from recsys_local.stack import AWS_SERVICE

pytestmark = pytest.mark.integration


def test_status_reports_every_service_healthy(stack):
    rows = stack.status()
    assert [r[0] for r in rows] == [
        mariadb.SERVICE, postgres.SERVICE, postgres.FRONT_SERVICE, AWS_SERVICE, airflow_db.SERVICE
    ]  # fmt: skip
    assert all(r[1] == "healthy" for r in rows), rows


def test_up_again_changes_nothing(stack):
    before = stack.state.load()
    env_before = stack.settings.env_file.read_text()
    stack.up(lambda _m: None, migrate_airflow=False)
    assert {k: v.pid for k, v in stack.state.load().items()} == {k: v.pid for k, v in before.items()}
    assert stack.settings.env_file.read_text() == env_before


def test_etl_user_can_read_but_never_write(stack):
    cfg = stack.mariadb()
    tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1"
    with mariadb.connect(cfg, admin=True) as conn, conn.cursor() as cur:
        cur.execute(tables)
        all_tables = cur.fetchall()
    with mariadb.connect(cfg) as conn, conn.cursor() as cur:
        cur.execute("SHOW GRANTS")  # the lines also carry the password hash: only what precedes " TO " is compared
        granted = [row[0].split(" TO ")[0] for row in cur.fetchall()]
        assert granted == ["GRANT USAGE ON *.*", f"GRANT SELECT, SHOW VIEW ON `{cfg.database}`.*"]
        cur.execute(tables)
        assert cur.fetchall() == all_tables  # reads every table of the database
        with pytest.raises(pymysql.err.OperationalError, match="command denied"):
            cur.execute("CREATE TABLE should_not_exist (id int)")


def test_mariadb_accepts_tcp_clients_only_over_tls_with_a_certificate_they_can_verify(stack):
    cfg = stack.mariadb()
    with mariadb.connect(cfg) as conn, conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        assert cur.fetchone()[1] in ("TLSv1.2", "TLSv1.3")
    plain = {"host": cfg.host, "port": cfg.port, "user": cfg.etl_user, "password": cfg.etl_password}
    # the same credentials without TLS: MariaDB 10.11 answers require_secure_transport with "Access denied"
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(**plain, database=cfg.database)
    with pytest.raises(pymysql.err.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):  # another CA
        pymysql.connect(**plain, ssl_ca="/etc/ssl/certs/ca-certificates.crt", ssl_verify_cert=True)


def test_vector_db_answers_with_pgvector_over_tcp_with_a_password(stack):
    cfg = stack.vectordb()
    with postgres.connect(cfg) as conn:
        (version,) = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        distance = conn.execute("SELECT '[1,0]'::vector <-> '[0,1]'::vector").fetchone()[0]
    assert version.startswith("0.")
    assert distance == pytest.approx(2**0.5)
    import psycopg

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**{**cfg.conninfo(), "password": "wrong"})


def test_vector_db_accepts_tcp_clients_only_over_tls_with_a_certificate_they_can_verify(stack):
    """The port is the TLS front's (recsys_local.pg_tls): libpq negotiates TLS as with RDS, verifies the
    stack's certificate (verify-full), and PostgreSQL still checks each role's password."""
    import ssl

    import psycopg

    cfg = stack.vectordb()
    assert cfg.conninfo()["sslmode"] == "verify-full"
    with postgres.connect(cfg) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT current_user").fetchone()[0] == cfg.user
    with pytest.raises(psycopg.OperationalError, match="no encryption"):  # the right password, in clear: refused
        psycopg.connect(**{**cfg.conninfo(), "sslmode": "disable"})
    # a client that trusts another CA (the system's) rejects the server, as it would a man in the middle
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(**{**cfg.conninfo(), "sslrootcert": "/etc/ssl/certs/ca-certificates.crt"})
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**{**cfg.conninfo(), "password": "wrong"})
    # the bootstrap superuser, trusted on the server's socket, is refused over TCP
    with pytest.raises(psycopg.OperationalError, match="local socket only"):
        psycopg.connect(**{**cfg.conninfo(), "user": postgres.SUPERUSER, "password": "anything"})
    # the certificate names the host and chains to the stack's CA (what libpq checked above, checked directly)
    context = ssl.create_default_context(cafile=str(cfg.ca_file))
    import socket

    with socket.create_connection((cfg.host, cfg.port), timeout=5) as raw:
        raw.sendall((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))  # SSLRequest
        assert raw.recv(1) == b"S"
        with context.wrap_socket(raw, server_hostname=cfg.host) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_aws_endpoint_serves_s3(stack):
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="integration-check")
    s3.put_object(Bucket="integration-check", Key="k", Body=b"v")
    assert "integration-check" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_object(Bucket="integration-check", Key="k")["Body"].read() == b"v"


def test_env_file_is_sourceable_and_complete(stack):
    path = stack.settings.env_file
    out = subprocess.run(["bash", "-c", f"set -a; . {path}; env"], capture_output=True, text=True, check=True).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    for key in (
        "AWS_ENDPOINT_URL",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_ENDPOINT_URL_STS",
        "MYSQL_HOST",
        "MYSQL_PORT",
        "MYSQL_USER",
        "MYSQL_PASSWORD",
        "MYSQL_DATABASE",
        "VECTOR_DB_HOST",
        "VECTOR_DB_PORT",
        "VECTOR_DB_USER",
        "VECTOR_DB_PASSWORD",
        "VECTOR_DB_NAME",
        "DATALAKE_BUCKET",
        "ML_ARTIFACTS_BUCKET",
        "RECOMMENDATIONS_BUCKET",
        "KINESIS_STREAM",
        "DELIVERY_STREAM",
        "AIRFLOW_CONN_AWS_DEFAULT",
        "AIRFLOW_CONN_MYSQL_SOURCE",
        "AIRFLOW_CONN_VECTOR_DB",
    ):
        assert env.get(key), key
    assert env["MYSQL_PORT"] == str(stack.settings.mysql_port)
    assert not env.get("AWS_ACCESS_KEY_ID")  # the platform has no key of its own: it assumes the workers' role
    assert oct(path.stat().st_mode)[-3:] == "600"


WHO_AM_I = """
import boto3, botocore.exceptions
print(boto3.client("sts").get_caller_identity()["Arn"])
try:
    boto3.client("iam").create_user(UserName="not-the-workers-business")
    print("created")
except botocore.exceptions.ClientError as exc:
    print(exc.response["Error"]["Code"], exc.response["Error"]["Message"])
"""


def test_the_platform_acts_as_the_workers_role_and_is_refused_what_it_is_not_granted(stack):
    """With IAM enforced (the default) `make up` applied terraform/airflow_workers as the administrator, and the
    environment it hands Airflow and the DAGs assumes that role: its requests meet the shipped policies."""
    from recsys_local import identity

    assert stack.settings.iam_enforcement == "on"
    assert identity.role_in_place(stack.client("iam"), stack.settings)
    out = subprocess.run(
        [sys.executable, "-c", WHO_AM_I],
        env={**identity.base_environment(), **stack.environment()},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    role = identity.role_name(stack.settings)
    assert f":assumed-role/{role}/airflow-workers" in out[0], out
    assert out[1].startswith("AccessDenied"), out
    assert f"{role}/airflow-workers is not authorized to perform: iam:CreateUser" in out[1], out
    assert "not-the-workers-business" not in [u["UserName"] for u in stack.client("iam").list_users()["Users"]]


def test_a_taken_port_names_the_port_and_the_setting():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StackError, match=rf"port {port}.*MYSQL_PORT"):
            ensure_port_free("127.0.0.1", port, "MariaDB", "MYSQL_PORT")


def test_status_cli_prints_a_table(stack, monkeypatch):
    for key, value in {
        "LOCAL_STACK_HOME": str(stack.home),
        "MYSQL_PORT": str(stack.settings.mysql_port),
        "VECTOR_DB_PORT": str(stack.settings.vector_db_port),
        "AWS_PORT": str(stack.settings.aws_port),
    }.items():
        monkeypatch.setenv(key, value)
    out = subprocess.run([sys.executable, "-m", "recsys_local", "status"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "mariadb" in out.stdout
    assert "healthy" in out.stdout


def test_endpoint_access_log_names_the_operation_and_a_clients_retry(in_process_aws, caplog):
    """`POST /` alone cannot tell a KMS call from a Kinesis one when reading the endpoint's log after a failure."""
    import logging

    server, client = in_process_aws
    caplog.set_level(logging.INFO, logger="werkzeug")
    kms = client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/log-check", TargetKeyId=key)
    with pytest.raises(kms.exceptions.AlreadyExistsException):
        kms.create_alias(AliasName="alias/log-check", TargetKeyId=key)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("TrentService.CreateKey" in line and '" 200 ' in line for line in lines), lines
    assert any("TrentService.CreateAlias" in line and '" 400 ' in line for line in lines), lines
    assert not any("retry" in line for line in lines), lines

    # an SDK's second attempt at a call (after a lost or failed answer) is marked
    import urllib.request

    request = urllib.request.Request(  # noqa: S310
        f"{server.endpoint_url}/",
        data=b"{}",
        method="POST",
        headers={
            "X-Amz-Target": "TrentService.ListAliases",
            "Content-Type": "application/x-amz-json-1.1",
            "amz-sdk-request": "attempt=2; max=25",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261128/us-east-1/kms/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    urllib.request.urlopen(request).read()  # noqa: S310
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("TrentService.ListAliases (retry attempt=2)" in line for line in lines), lines
