"""`down` stops exactly the stack's processes and keeps the data; `up` brings it back. Runs on its own ports."""

from __future__ import annotations

import os

import psutil
import pytest

from recsys.config import project_root
from recsys_local import airflow_db, mariadb
from recsys_local.seed.generator import SeedSpec
from recsys_local.seed.loader import seed
from recsys_local.settings import stack_settings
from recsys_local.stack import Stack

pytestmark = pytest.mark.integration


def test_down_stops_every_process_and_up_restores_the_data():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "VECTOR_DB_", "AWS_"))}
    env.update(
        LOCAL_STACK_HOME=str(project_root() / ".local" / "test-lifecycle"),
        MYSQL_PORT="13317",
        VECTOR_DB_PORT="15443",
        AWS_PORT="15065",
    )
    stack = Stack(stack_settings(env))
    quiet = lambda _m: None  # noqa: E731
    stack.up(quiet, migrate_airflow=False)
    try:
        seed(stack.mariadb(), SeedSpec(customers=30, products=20, ratings=200))
        s3 = stack.client("s3")
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="dir/file.txt", Body=b"persisted")
        with airflow_db.connect(stack.airflow_db(), autocommit=True) as db:  # as Airflow's role, through its socket
            db.execute("DROP TABLE IF EXISTS kept")  # the folder outlives a run (down keeps the data)
            db.execute("CREATE TABLE kept (note text)")
            db.execute("INSERT INTO kept VALUES ('a committed task state')")
        records = stack.state.load()
        assert set(records) == {"mariadb", "vector_db", "vector_db_tls", "aws", "airflow_db"}
        pids = [record.pid for record in records.values()]
        assert all(psutil.pid_exists(pid) for pid in pids)

        stack.down(quiet)
        assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids)
        assert stack.state.load() == {}

        stack.up(quiet, migrate_airflow=False)
        with mariadb.connect(stack.mariadb()) as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM customers")
            assert cur.fetchone()[0] == 30
        s3 = stack.client("s3")
        assert s3.get_object(Bucket="kept", Key="dir/file.txt")["Body"].read() == b"persisted"
        with airflow_db.connect(stack.airflow_db()) as db:
            assert db.execute("SELECT note FROM kept").fetchall() == [("a committed task state",)]
    finally:
        stack.down(quiet)
