"""Start, stop and describe the whole local stack; write `.local/stack.env`.

The stack composes the services below it (``mariadb``, ``postgres``, ``airflow_db``, the AWS endpoint,
``airflow_services``, ``identity``, ``restore``) and hands each what it needs; none of them imports it back. The
commands (``python -m recsys_local``, the demo, the benchmarks, the seed) sit above it."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.config import AWS_CONN_ID, MYSQL_CONN_ID, VECTOR_DB_CONN_ID, project_root
from recsys_local import airflow_db, airflow_services, identity, mariadb, postgres, pythonpath, target
from recsys_local.clients import aws_healthy, local_client
from recsys_local.home import claim, owned
from recsys_local.process import (
    StackError,
    StateFile,
    ensure_port_free,
    spawn,
    stop_process,
    wait_until,
)
from recsys_local.restore import RestartedStack, restore_infrastructure
from recsys_local.secrets import load_or_create
from recsys_local.settings import StackSettings

AWS_SERVICE = "aws"
#: moto accepts any credentials; these are placeholders, not secrets.
LOCAL_AWS_KEY = "test"


@dataclass(frozen=True)
class Stack:
    settings: StackSettings

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def state(self) -> StateFile:
        return StateFile(self.home / "stack.json")

    #: the emulator's administrator key (moto's placeholder; not a secret): the bootstrap's and the operator's
    aws_key = LOCAL_AWS_KEY

    def client(self, service: str) -> Any:
        """A boto3 client for the stack's AWS endpoint (moto's placeholder credentials)."""
        return local_client(service, self.settings.aws_endpoint_url, self.settings.names.region)

    def secrets(self) -> dict[str, str]:
        return load_or_create(self.home)

    def mariadb(self) -> mariadb.MariaDBConfig:
        return mariadb.config(self.settings)

    def vectordb(self) -> postgres.VectorDBConfig:
        return postgres.config(self.settings)

    def airflow_db(self) -> airflow_db.AirflowDBConfig:
        return airflow_db.config(self.settings)

    # --- AWS endpoint -------------------------------------------------------------------------------------------
    def start_aws(self) -> bool:
        if self.state.running(AWS_SERVICE):
            return False
        s = self.settings
        ensure_port_free(s.host, s.aws_port, "AWS endpoint (moto)", "AWS_PORT")
        log = self.home / "logs" / "aws.log"
        env = {**identity.base_environment(), "PYTHONPATH": pythonpath()}
        argv = [sys.executable, "-m", "recsys_local.aws_endpoint", "--host", s.host, "--port", str(s.aws_port)]
        if s.iam_enforcement != "off":
            argv += ["--enforce-iam", s.iam_enforcement]
        pid = spawn([*argv, "--state-dir", str(self.home / "aws")], log, env=env)
        self.state.record(AWS_SERVICE, pid)
        wait_until(lambda: aws_healthy(s.aws_endpoint_url)[0], "AWS endpoint", timeout=60, log=log)
        return True

    # --- Airflow ------------------------------------------------------------------------------------------------
    def migrate_airflow(self, progress: Callable[[str], None]) -> None:
        """Create AIRFLOW_HOME and migrate its metadata DB once per Airflow version."""
        from importlib.metadata import version

        home = self.settings.airflow_home
        # once per Airflow version, and again for a cluster without Airflow's tables (deleted data, a new cluster)
        marker = self.airflow_db().socket_dir / f".migrated-{version('apache-airflow')}"
        airflow_db.start(self.airflow_db(), self.state)  # `make up` started it; `make airflow` after a crash too
        if marker.exists() and airflow_db.has_schema(self.airflow_db()):
            return
        home.mkdir(parents=True, exist_ok=True)
        progress("migrating the Airflow metadata database (first run only, ~30 s)")
        env = {**identity.base_environment(), **self.environment()}
        airflow = shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow"
        result = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        marker.touch()

    # --- environment --------------------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """Every endpoint, credential and name the stack serves, as environment variables."""
        s, names, my, pg = self.settings, self.settings.names, self.mariadb(), self.vectordb()
        root = project_root()
        # who the platform is: the workers' role (boto3's default chain reads the profile) or the administrator
        acting_as = identity.workers_environment(s) if identity.enabled(s) else identity.admin_environment(self.aws_key)
        aws_conn: dict[str, Any] = {
            "conn_type": "aws",
            "extra": {"endpoint_url": s.aws_endpoint_url, "region_name": names.region},
        }
        if not identity.enabled(s):
            aws_conn |= {"login": self.aws_key, "password": self.aws_key}
        mysql_conn = {
            "conn_type": "mysql",
            "host": my.host,
            "port": my.port,
            "login": my.etl_user,
            "password": my.etl_password,
            "schema": my.database,
            "extra": {"ssl": {"ca": str(my.ca_file)}},
        }
        pg_conn = {
            "conn_type": "postgres",
            "host": pg.host,
            "port": pg.port,
            "login": pg.user,
            "password": pg.password,
            "schema": pg.database,
            "extra": {"sslmode": "verify-full", "sslrootcert": str(pg.ca_file)},
        }
        env = {
            "RECSYS_TARGET": "local",
            "RECSYS_PREFIX": names.prefix,
            "LOCAL_STACK_HOME": str(self.home),
            "AWS_ENDPOINT_URL": s.aws_endpoint_url,
            "AWS_DEFAULT_REGION": names.region,
            "AWS_ACCOUNT_ID": names.account,
            **acting_as,
            "MYSQL_HOST": my.host,
            "MYSQL_PORT": str(my.port),
            "MYSQL_USER": my.etl_user,
            "MYSQL_PASSWORD": my.etl_password,
            "MYSQL_DATABASE": my.database,
            "MYSQL_ADMIN_USER": mariadb.ADMIN_USER,
            "MYSQL_ADMIN_PASSWORD": my.admin_password,
            "MYSQL_SOCKET": str(my.socket),
            "MYSQL_SSL_CA": str(my.ca_file),
            "VECTOR_DB_HOST": pg.host,
            "VECTOR_DB_PORT": str(pg.port),
            "VECTOR_DB_USER": pg.user,
            "VECTOR_DB_PASSWORD": pg.password,
            "VECTOR_DB_NAME": pg.database,
            "VECTOR_DB_SSLMODE": "verify-full",
            # the CA the vector DB's clients trust: the Lambda packages carry it (in AWS: the RDS bundle)
            "VECTOR_DB_CA_BUNDLE": str(pg.ca_file),
            "AWS_PORT": str(s.aws_port),
            **names.as_env(),
            "AIRFLOW_HOME": str(s.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.airflow_db().sqlalchemy_url(),
            "PYTHONPATH": pythonpath(),
            # the local Terraform target, which production code does not import (recsys.provisioning.targets)
            "RECSYS_TARGET_FACTORY": target.FACTORY,
            "SPARK_LOCAL_IP": "127.0.0.1",
            f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": json.dumps(aws_conn),
            f"AIRFLOW_CONN_{MYSQL_CONN_ID.upper()}": json.dumps(mysql_conn),
            f"AIRFLOW_CONN_{VECTOR_DB_CONN_ID.upper()}": json.dumps(pg_conn),
        }
        return env

    def admin_environment(self) -> dict[str, str]:
        """:meth:`environment` as the emulator's administrator: the bootstrap, and what stands for a client outside
        the platform (the demo's activity producer)."""
        platform = {k: v for k, v in self.environment().items() if k not in identity.IDENTITY_VARIABLES}
        variable = f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}"
        connection = json.loads(platform[variable]) | {"login": self.aws_key, "password": self.aws_key}
        return {**platform, variable: json.dumps(connection), **identity.admin_environment(self.aws_key)}

    def write_env_file(self) -> Path:
        path = self.settings.env_file
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# Written by `make up` (python -m recsys_local up). Source it: set -a; . .local/stack.env"]
        lines += [f"export {key}={shlex.quote(value)}" for key, value in self.environment().items()]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
        return path

    # --- lifecycle ----------------------------------------------------------------------------------------------
    def up(
        self,
        progress: Callable[[str], None],
        migrate_airflow: bool = True,
        restore: bool = True,
        workers_role: bool = True,
    ) -> None:
        """Start what is not running. When the AWS endpoint (re)started and DAGs had applied Terraform roots on this
        stack, apply them again (``restore``; :mod:`recsys_local.restore`) unless the endpoint loaded everything
        from the snapshot its last graceful stop took (after a kill: its last checkpoint, :mod:`recsys_local.
        moto_snapshot`). With IAM enforced, the workers' role is put in place first (``workers_role``;
        :mod:`recsys_local.identity`): an emulated account for the AWS rehearsal starts without it."""
        claim(self.home)
        (self.home / ".gitignore").write_text("*\n")
        started: dict[str, bool] = {}
        for label, start in (
            ("MariaDB (MySQL source)", lambda: mariadb.start(self.mariadb(), self.state)),
            ("PostgreSQL + pgvector (vector DB)", lambda: postgres.start(self.vectordb(), self.state)),
            ("PostgreSQL (Airflow metadata DB)", lambda: airflow_db.start(self.airflow_db(), self.state)),
            ("AWS endpoint (moto + executors)", self.start_aws),
        ):
            started[label] = start()
            progress(f"{label}: {'started' if started[label] else 'already running'}")
        if workers_role and identity.enabled(self.settings):
            administrator = {**identity.base_environment(), **self.admin_environment()}
            if identity.ensure(self.settings, administrator, progress):
                progress(f"the platform acts as {identity.role_name(self.settings)} (LOCAL_IAM_ENFORCEMENT)")
        self.write_env_file()
        if migrate_airflow:
            self.migrate_airflow(progress)
        if restore and started["AWS endpoint (moto + executors)"]:
            restore_infrastructure(self.restarted(), progress)
        progress(f"environment written to {self.settings.env_file}")

    def restarted(self) -> RestartedStack:
        """What :func:`recsys_local.restore.restore_infrastructure` needs of the stack whose endpoint (re)started."""
        record = self.state.load().get(AWS_SERVICE)
        return RestartedStack(
            env={**identity.base_environment(), **self.environment()},
            aws_state=self.home / "aws",
            endpoint_pid=record.pid if record is not None else None,
            aws_endpoint_url=self.settings.aws_endpoint_url,
            region=self.settings.names.region,
            vector_db=self.vectordb().conninfo(),
        )

    def down(self, progress: Callable[[str], None]) -> None:
        """Stop exactly the processes this stack started (Airflow first); refuses a home the stack did not make."""
        if not owned(self.home, "stop the processes recorded in"):
            return

        airflow_services.stop(self, progress)  # first: its tasks use the services below
        records = self.state.load()
        for name in (AWS_SERVICE, airflow_db.SERVICE, postgres.FRONT_SERVICE, postgres.SERVICE, mariadb.SERVICE):
            record = records.get(name)
            if record is None:
                continue
            was_running = record.is_running()
            if name == postgres.SERVICE and was_running:
                postgres.stop(self.vectordb())  # a clean shutdown first; stop_process below makes sure
            if name == airflow_db.SERVICE and was_running:
                airflow_db.stop(self.airflow_db())
            # the endpoint drains requests (up to 60 s) and stops its runners before it saves its snapshot
            stopped = stop_process(record, timeout=150 if name == AWS_SERVICE else 60, progress=progress) or was_running
            detail = ""
            if name == AWS_SERVICE and was_running:
                from recsys_local.moto_snapshot import final_file

                kept = final_file(self.home / "aws").exists()
                detail = "; its resources saved" if kept else "; no snapshot saved (see .local/logs/aws.log)"
            progress(f"{name}: {'stopped' if stopped else 'was not running'} (pid {record.pid}){detail}")
            self.state.forget(name)

    def clean(self, progress: Callable[[str], None]) -> None:
        """Stop the stack and delete its home: only a home the stack made and marked (:mod:`recsys_local.home`)."""
        if not owned(self.home, "delete"):
            progress(f"{self.home} does not exist: nothing to delete")
            return
        self.down(progress)
        # stack homes inside this one (the test stacks under .local/): stop what they run before their data goes
        # (one from before the mark is adopted first: it is inside a home being deleted, and its processes must stop)
        for inner in sorted(path.parent for path in self.home.glob("*/stack.json")):
            claim(inner)
            Stack(self.settings.model_copy(update={"home": inner})).down(progress)
        shutil.rmtree(self.home)
        progress(f"removed {self.home}")

    def status(self) -> list[tuple[str, str, str, str]]:
        """(service, state, endpoint, detail) for each service."""
        s = self.settings
        rows = []
        checks = (
            (mariadb.SERVICE, f"{s.host}:{s.mysql_port}", lambda: mariadb.healthy(self.mariadb())),
            (postgres.SERVICE, f"{s.host}:{s.vector_db_port}", lambda: postgres.healthy(self.vectordb())),
            (postgres.FRONT_SERVICE, f"{s.host}:{s.vector_db_port}", lambda: postgres.front_healthy(self.vectordb())),
            (AWS_SERVICE, s.aws_endpoint_url, lambda: aws_healthy(s.aws_endpoint_url)),
            (airflow_db.SERVICE, str(self.airflow_db().socket_file), lambda: airflow_db.healthy(self.airflow_db())),
        )
        for name, endpoint, check in checks:
            record = self.state.running(name)
            if record is None:
                rows.append((name, "stopped", endpoint, "not started by this stack"))
                continue
            ok, detail = check()
            rows.append((name, "healthy" if ok else "unhealthy", endpoint, f"pid {record.pid}; {detail}"))
        rows.extend(self.airflow_status())
        return rows

    def airflow_status(self) -> list[tuple[str, str, str, str]]:
        """Rows for the Airflow components, when `make airflow` started them."""
        records = {c: self.state.running(airflow_services.service(c)) for c in airflow_services.COMPONENTS}
        if not any(records.values()) and not any(
            airflow_services.service(c) in self.state.load() for c in airflow_services.COMPONENTS
        ):
            return []
        ok, detail = airflow_services.healthy(self)
        url = airflow_services.base_url(self)
        rows = []
        for component, record in records.items():
            name = airflow_services.service(component)
            if record is None:
                rows.append((name, "stopped", url, "recorded but not running: make down, then make airflow"))
            else:
                rows.append((name, "healthy" if ok else "unhealthy", url, f"pid {record.pid}; {detail}"))
        return rows
