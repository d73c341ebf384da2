"""The local stack's settings: ports, paths and names, each settable from the environment (``.env.example``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from recsys.config import SOURCE_DATABASE, PlatformNames, platform_names, project_root


@dataclass(frozen=True)
class StackSettings:
    """Ports, paths and names of the local stack; every field can be set from the environment."""

    home: Path
    mysql_port: int = 3307
    vector_db_port: int = 5433
    aws_port: int = 5055
    airflow_port: int = 8080
    host: str = "127.0.0.1"
    mysql_user: str = "etl"
    mysql_database: str = SOURCE_DATABASE
    vector_db_user: str = "recsys"
    vector_db_name: str = "postgres"
    #: authorize every AWS request against the caller's policies (recsys_local.iam_enforce): off, on, or audit
    #: (record in the endpoint's log what would be refused, refuse nothing)
    iam_enforcement: str = "on"
    names: PlatformNames = PlatformNames()  # noqa: RUF009 - a frozen dataclass

    @property
    def aws_endpoint_url(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    @property
    def env_file(self) -> Path:
        return self.home / "stack.env"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"


#: Environment variable -> (field, parser). Documented in `.env.example`.
STACK_ENV: dict[str, str] = {
    "LOCAL_STACK_HOME": "home",
    "MYSQL_PORT": "mysql_port",
    "VECTOR_DB_PORT": "vector_db_port",
    "AWS_PORT": "aws_port",
    "AIRFLOW_PORT": "airflow_port",
    "MYSQL_USER": "mysql_user",
    "MYSQL_DATABASE": "mysql_database",
    "VECTOR_DB_USER": "vector_db_user",
    "VECTOR_DB_NAME": "vector_db_name",
    "LOCAL_IAM_ENFORCEMENT": "iam_enforcement",
}


#: Characters a POSIX shell acts on inside double quotes (and a line break), refused in the stack's home
SHELL_ACTIVE = frozenset('"$`\\\n')


def stack_settings(env: dict[str, str] | None = None) -> StackSettings:
    """Settings of the local stack from the environment (defaults in `.env.example`)."""
    env = dict(os.environ) if env is None else env
    home = env.get("LOCAL_STACK_HOME", str(project_root() / ".local"))
    if not home.strip():  # an empty path is the current directory: never a guess for a folder `make clean` deletes
        raise ValueError("LOCAL_STACK_HOME is set but empty: unset it (the default is .local/) or give a folder")
    resolved = Path(home).resolve()
    # PostgreSQL's pg_ctl starts the server through the shell with the data, log and socket paths inside double
    # quotes, where these characters still act: a path is data, it never runs a command
    shell_active = sorted({c for c in str(resolved) if c in SHELL_ACTIVE})
    if shell_active:
        raise ValueError(
            f"LOCAL_STACK_HOME={home!r} contains {' '.join(repr(c) for c in shell_active)}: the stack's PostgreSQL "
            "clusters live there and pg_ctl hands their paths to a shell; choose a folder without these characters"
        )
    kwargs: dict[str, object] = {"home": resolved}
    for variable, field in STACK_ENV.items():
        if field == "home" or variable not in env:
            continue
        value = env[variable]
        if field == "iam_enforcement":
            modes = {"": "off", "0": "off", "off": "off", "1": "on", "on": "on", "audit": "audit"}
            mode = modes.get(value.strip().lower())
            if mode is None:
                raise ValueError(f"{variable}={value!r}: expected 1 (on), 0 (off) or audit")
            kwargs[field] = mode
        elif field.endswith("_port"):
            try:
                kwargs[field] = int(value)
            except ValueError:
                raise ValueError(f"{variable}={value!r} is not a port number") from None
        else:
            kwargs[field] = value
    kwargs["names"] = platform_names({**env, "RECSYS_TARGET": "local"})  # the stack is moto's account, always
    return StackSettings(**kwargs)  # type: ignore[arg-type]
