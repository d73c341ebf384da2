"""The local platform's settings: the stack's ports, paths and names (:class:`StackSettings`) and the local AWS
executors' knobs (:class:`ExecutorSettings`), each settable from the environment (``.env.example``).

Both are classes on the one loader of every home (:class:`recsys_serving.settings.SettingsBase`): empty is unset, a
bad value fails naming its variable; docs/configuration.md's "local platform" table lists every variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, NonNegativeFloat, PositiveFloat, PositiveInt, field_validator

from recsys.config import SOURCE_DATABASE, PlatformNames, platform_names, project_root
from recsys_serving.settings import SettingsBase

#: A TCP port.
Port = Annotated[int, Field(ge=1, le=65535)]
#: A database or user name: the stack writes it into SQL and client scripts, so it is a plain identifier (a setting is
#: data: it never carries a quote, a command or a client escape such as ``\!``).
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")]

#: Characters a POSIX shell acts on inside double quotes (and a line break), refused in the stack's home
SHELL_ACTIVE = frozenset('"$`\\\n')

#: LOCAL_IAM_ENFORCEMENT's spellings -> its mode
ENFORCEMENT_MODES = {"0": "off", "off": "off", "1": "on", "on": "on", "audit": "audit"}


def _enforcement_mode(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() not in ENFORCEMENT_MODES:
        raise ValueError("expected 1 (on), 0 (off) or audit")
    return ENFORCEMENT_MODES[value.strip().lower()] if isinstance(value, str) else value


class StackSettings(SettingsBase):
    """Ports, paths and names of the local stack: build it with :func:`stack_settings`."""

    #: where the stack keeps data, logs, pids and generated passwords (a folder it makes and marks)
    home: Path = Field(default_factory=lambda: project_root() / ".local", validation_alias="LOCAL_STACK_HOME")
    mysql_port: Port = Field(3307, validation_alias="MYSQL_PORT")
    vector_db_port: Port = Field(5433, validation_alias="VECTOR_DB_PORT")
    aws_port: Port = Field(5055, validation_alias="AWS_PORT")
    airflow_port: Port = Field(8080, validation_alias="AIRFLOW_PORT")
    host: str = "127.0.0.1"
    mysql_user: Identifier = Field("etl", validation_alias="MYSQL_USER")
    mysql_database: Identifier = Field(SOURCE_DATABASE, validation_alias="MYSQL_DATABASE")
    vector_db_user: Identifier = Field("recsys", validation_alias="VECTOR_DB_USER")
    vector_db_name: Identifier = Field("postgres", validation_alias="VECTOR_DB_NAME")
    #: authorize every AWS request against the caller's policies (recsys_local.iam_enforce): off, on, or audit
    #: (record in the endpoint's log what would be refused, refuse nothing)
    iam_enforcement: Annotated[Literal["on", "off", "audit"], BeforeValidator(_enforcement_mode)] = Field(
        "on", validation_alias="LOCAL_IAM_ENFORCEMENT"
    )
    #: the stack's own tfvars (e.g. ``glue_timeout_minutes = 1``), applied after its variables; never TF_VAR_FILE, so an
    #: AWS account's file never reaches the local stack
    local_tf_var_file: Path | None = Field(None, validation_alias="LOCAL_TF_VAR_FILE")
    #: the stack's resource names: derived from RECSYS_PREFIX and AWS_DEFAULT_REGION, always moto's account
    names: PlatformNames = Field(default_factory=PlatformNames)

    @field_validator("home")
    @classmethod
    def _a_folder_no_shell_acts_on(cls, home: Path) -> Path:
        resolved = home.resolve()
        # PostgreSQL's pg_ctl starts the server through the shell with the data, log and socket paths inside double
        # quotes, where these characters still act: a path is data, it never runs a command
        shell_active = sorted({c for c in str(resolved) if c in SHELL_ACTIVE})
        if shell_active:
            raise ValueError(
                f"the path contains {' '.join(repr(c) for c in shell_active)}: the stack's PostgreSQL clusters live "
                "there and pg_ctl hands their paths to a shell; choose a folder without these characters"
            )
        return resolved

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> Self:
        env = os.environ if env is None else env
        loaded = super().load(env)
        return loaded.model_copy(update={"names": platform_names({**env, "RECSYS_TARGET": "local"})})

    @property
    def aws_endpoint_url(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    @property
    def env_file(self) -> Path:
        return self.home / "stack.env"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"


class ExecutorSettings(SettingsBase):
    """What the local AWS executors (Firehose, Glue) do differently from AWS's services, for tests and the bench."""

    #: override the delivery streams' own BufferingHints (None: the stream's, as Firehose does)
    firehose_buffer_bytes: PositiveInt | None = Field(None, validation_alias="FIREHOSE_BUFFER_BYTES")
    firehose_buffer_seconds: NonNegativeFloat | None = Field(None, validation_alias="FIREHOSE_BUFFER_SECONDS")
    firehose_poll_seconds: PositiveFloat = Field(1.0, validation_alias="FIREHOSE_POLL_SECONDS")
    #: seconds between a failed processor invocation and its retry (doubles each time, at most 5 s)
    firehose_retry_backoff_seconds: NonNegativeFloat = Field(0.5, validation_alias="FIREHOSE_RETRY_BACKOFF_SECONDS")
    #: seconds per minute of a Glue job's Timeout
    glue_timeout_unit_seconds: PositiveFloat = Field(60.0, validation_alias="GLUE_TIMEOUT_UNIT_SECONDS")


class SharedAwsConfig(SettingsBase):
    """boto3's and Terraform's own variables that select a shared configuration (the workers' profile, which
    ``stack.env`` names): read to know when a process's clients must load it again."""

    config_file: Path | None = Field(None, validation_alias="AWS_CONFIG_FILE")
    shared_credentials_file: Path | None = Field(None, validation_alias="AWS_SHARED_CREDENTIALS_FILE")
    profile: str | None = Field(None, validation_alias="AWS_PROFILE")


def stack_settings(env: Mapping[str, str] | None = None) -> StackSettings:
    """Settings of the local stack from the environment (defaults in `.env.example`)."""
    return StackSettings.load(env)
