"""The local stack's services answer as the pipelines expect."""

from __future__ import annotations

import socket
import subprocess
import sys

import pymysql
import pytest

from recsys.localstack import mariadb, vectordb
from recsys.localstack.process import StackError, ensure_port_free
from recsys.localstack.stack import AWS_SERVICE

pytestmark = pytest.mark.integration


def test_status_reports_every_service_healthy(stack):
    rows = stack.status()
    assert [r[0] for r in rows] == [mariadb.SERVICE, vectordb.SERVICE, AWS_SERVICE]
    assert all(r[1] == "healthy" for r in rows), rows


def test_up_again_changes_nothing(stack):
    before = stack.state.load()
    env_before = stack.settings.env_file.read_text()
    stack.up(lambda _m: None, migrate_airflow=False)
    assert {k: v.pid for k, v in stack.state.load().items()} == {k: v.pid for k, v in before.items()}
    assert stack.settings.env_file.read_text() == env_before


def test_etl_user_can_read_but_never_write(stack):
    with mariadb.connect(stack.mariadb()) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()")
        assert cur.fetchone()[0] >= 0
        with pytest.raises(pymysql.err.OperationalError, match="command denied"):
            cur.execute("CREATE TABLE should_not_exist (id int)")


def test_vector_db_answers_with_pgvector_over_tcp_with_a_password(stack):
    cfg = stack.vectordb()
    with vectordb.connect(cfg) as conn:
        (version,) = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        distance = conn.execute("SELECT '[1,0]'::vector <-> '[0,1]'::vector").fetchone()[0]
    assert version.startswith("0.")
    assert distance == pytest.approx(2**0.5)
    import psycopg

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=cfg.host, port=cfg.port, user=cfg.user, password="wrong", dbname=cfg.database)


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
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
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
    assert oct(path.stat().st_mode)[-3:] == "600"


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
    out = subprocess.run(
        [sys.executable, "-m", "recsys.localstack", "status"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "mariadb" in out.stdout
    assert "healthy" in out.stdout
