"""The MySQL source: MariaDB from Debian in a private data directory under `.local/mariadb`.

TCP clients must use TLS (``require_secure_transport``; the stack's CA, :mod:`recsys_local.tls`), as an RDS
MySQL with ``require_secure_transport = 1``; the Unix socket, reachable only by the stack's account, is the
bootstrap's."""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
from pymysql.converters import escape_str

from recsys_local import tls
from recsys_local.process import StackError, StateFile, chown_tree, ensure_port_free, spawn, wait_until
from recsys_local.secrets import load_or_create
from recsys_local.settings import StackSettings

SERVICE = "mariadb"
MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "mariadb-install-db"
#: Debian's account for the server; used when the stack runs as root (mariadbd refuses to run as root).
SYSTEM_USER = "mysql"
ADMIN_USER = "recsys_admin"


@dataclass(frozen=True)
class MariaDBConfig:
    home: Path
    host: str
    port: int
    database: str
    etl_user: str
    etl_password: str = field(repr=False)
    admin_password: str = field(repr=False)
    ca_file: Path | None = None

    @property
    def datadir(self) -> Path:
        return self.home / "mariadb" / "data"

    @property
    def socket(self) -> Path:
        path = self.home / "mariadb" / "mysqld.sock"
        if len(str(path)) < 100:
            return path
        digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:10]  # noqa: S324 - a name, not security
        return Path("/tmp") / f"recsys-mariadb-{digest}.sock"  # noqa: S108 - unix socket paths are short

    @property
    def cnf(self) -> Path:
        return self.home / "mariadb" / "my.cnf"

    @property
    def log(self) -> Path:
        return self.home / "logs" / "mariadb.log"


def config(settings: StackSettings) -> MariaDBConfig:
    """The stack's MariaDB: its settings, the passwords of the stack's secrets (made on first use) and its CA."""
    secrets = load_or_create(settings.home)
    return MariaDBConfig(
        home=settings.home,
        host=settings.host,
        port=settings.mysql_port,
        database=settings.mysql_database,
        etl_user=settings.mysql_user,
        etl_password=secrets["mysql_etl_password"],
        admin_password=secrets["mysql_admin_password"],
        ca_file=tls.files(settings.home).ca,
    )


def _run_as_root() -> bool:
    return os.geteuid() == 0


def write_config(cfg: MariaDBConfig) -> None:
    cfg.cnf.parent.mkdir(parents=True, exist_ok=True)
    user_line = f"user = {SYSTEM_USER}\n" if _run_as_root() else ""
    files = tls.ensure(cfg.home, cfg.host)
    cert, key = tls.server_copy(files, cfg.home / "mariadb" / "tls", SYSTEM_USER if _run_as_root() else None)
    cfg.cnf.write_text(
        "[mariadbd]\n"
        f"{user_line}"
        f"datadir = {cfg.datadir}\n"
        f"socket = {cfg.socket}\n"
        f"port = {cfg.port}\n"
        f"bind-address = {cfg.host}\n"
        f"pid-file = {cfg.home / 'mariadb' / 'mariadbd.pid'}\n"
        # its own temporary folder: the caller's TMPDIR may be one the server's system user cannot write
        f"tmpdir = {_tmpdir(cfg)}\n"
        "local-infile = 1\n"
        "skip-name-resolve\n"
        "character-set-server = utf8mb4\n"
        "collation-server = utf8mb4_general_ci\n"
        "innodb_buffer_pool_size = 1G\n"
        "innodb_flush_log_at_trx_commit = 2\n"
        "max_allowed_packet = 256M\n"
        f"ssl-ca = {files.ca}\n"
        f"ssl-cert = {cert}\n"
        f"ssl-key = {key}\n"
        "tls_version = TLSv1.2,TLSv1.3\n"
        "require_secure_transport = ON\n"
    )


def _tmpdir(cfg: MariaDBConfig) -> Path:
    path = cfg.home / "mariadb" / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def initialise(cfg: MariaDBConfig) -> None:
    """Create the private data directory once (``mariadb-install-db``)."""
    if (cfg.datadir / "mysql").exists():
        return
    if shutil.which(INSTALL_DB) is None or not Path(MARIADBD).exists():
        raise StackError(
            "MariaDB is not installed (mariadb-install-db / mariadbd missing). Run `make setup`, or "
            "`apt-get install mariadb-server libmariadb-java` yourself."
        )
    cfg.datadir.mkdir(parents=True, exist_ok=True)
    args = [INSTALL_DB, f"--datadir={cfg.datadir}", "--auth-root-authentication-method=socket", "--skip-test-db"]
    if _run_as_root():
        chown_tree(cfg.datadir.parent, SYSTEM_USER)
        args.append(f"--user={SYSTEM_USER}")
    else:
        args.append(f"--user={getpass.getuser()}")
    env = {**os.environ, "TMPDIR": str(_tmpdir(cfg))}  # the server it bootstraps writes there (see write_config)
    result = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise StackError(f"mariadb-install-db failed:\n{result.stdout}\n{result.stderr}")


def start(cfg: MariaDBConfig, state: StateFile) -> bool:
    """Start mariadbd unless the stack already runs it; True when it was started now."""
    if state.running(SERVICE):
        return False
    ensure_port_free(cfg.host, cfg.port, "MariaDB (MySQL source)", "MYSQL_PORT")
    write_config(cfg)
    initialise(cfg)
    if _run_as_root():
        chown_tree(cfg.home / "mariadb", SYSTEM_USER)
    pid = spawn([MARIADBD, f"--defaults-file={cfg.cnf}"], cfg.log)
    state.record(SERVICE, pid)
    wait_until(lambda: cfg.socket.exists() and _ping(cfg), "MariaDB", timeout=60, log=cfg.log)
    bootstrap(cfg)
    return True


def _ping(cfg: MariaDBConfig) -> bool:
    result = subprocess.run(
        ["mariadb-admin", *client_args(cfg), "ping"],
        env=client_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


def client_env() -> dict[str, str]:
    """The environment for the `mariadb` command-line tools, without MYSQL_HOST & co (they override --socket)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MYSQL_")}


def client_args(cfg: MariaDBConfig) -> list[str]:
    """Connect through the private socket as the socket-authenticated superuser."""
    return ["--protocol=socket", f"--socket={cfg.socket}", f"--user={socket_user()}"]


def socket_user() -> str:
    return "root" if _run_as_root() else getpass.getuser()


def root_sql(cfg: MariaDBConfig, sql: str) -> str:
    """Run SQL as the socket-authenticated superuser (only used to bootstrap users and load dumps)."""
    result = subprocess.run(
        ["mariadb", *client_args(cfg), "--batch", "--skip-column-names"],
        env=client_env(),
        input=sql,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"MariaDB bootstrap SQL failed: {result.stderr.strip()}")
    return result.stdout


def bootstrap(cfg: MariaDBConfig) -> None:
    """Idempotently create the database, an admin user for loading, and the SELECT-only ETL user."""
    db = f"`{cfg.database}`"
    root_sql(
        cfg,
        f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4;\n"
        f"CREATE USER IF NOT EXISTS '{ADMIN_USER}'@'%' IDENTIFIED BY {escape_str(cfg.admin_password)};\n"
        f"ALTER USER '{ADMIN_USER}'@'%' IDENTIFIED BY {escape_str(cfg.admin_password)};\n"
        f"GRANT ALL PRIVILEGES ON {db}.* TO '{ADMIN_USER}'@'%';\n"
        f"CREATE USER IF NOT EXISTS '{cfg.etl_user}'@'%' IDENTIFIED BY {escape_str(cfg.etl_password)};\n"
        f"ALTER USER '{cfg.etl_user}'@'%' IDENTIFIED BY {escape_str(cfg.etl_password)};\n"
        f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{cfg.etl_user}'@'%';\n"
        f"GRANT SELECT, SHOW VIEW ON {db}.* TO '{cfg.etl_user}'@'%';\n"
        "FLUSH PRIVILEGES;\n",
    )


def connect(cfg: MariaDBConfig, admin: bool = False, **kwargs: object) -> pymysql.connections.Connection:
    """A TCP connection over TLS (the server's certificate verified) as the ETL user (or the admin user for loading
    seed data)."""
    user, password = (ADMIN_USER, cfg.admin_password) if admin else (cfg.etl_user, cfg.etl_password)
    if cfg.ca_file is not None:
        kwargs = {"ssl_ca": str(cfg.ca_file), "ssl_verify_cert": True, "ssl_verify_identity": True, **kwargs}
    return pymysql.connect(host=cfg.host, port=cfg.port, user=user, password=password, database=cfg.database, **kwargs)


def healthy(cfg: MariaDBConfig) -> tuple[bool, str]:
    try:
        with connect(cfg, connect_timeout=2) as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            (version,) = cur.fetchone()
        return True, f"MariaDB {version}"
    except pymysql.MySQLError as exc:
        return False, str(exc.args[-1] if exc.args else exc)
