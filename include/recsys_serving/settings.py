"""The one settings loader of every home, and the Lambdas' settings.

Each home declares what it reads from the environment as a class on :class:`SettingsBase` (pydantic-settings):
production's ``recsys.config.Settings`` (the Airflow workers), :class:`LambdaSettings` (both Lambdas, below) and the
local platform's ``recsys_local.settings`` classes. This module is the lowest home (the Lambda zip), so all three can
import it. The rules, the same for every variable:

* a field names its variable (``Field(validation_alias="VARIABLE")``); a field without one is derived, never read;
* the annotation is the type (pydantic parses and checks it: ``NonNegativeInt``, ``Path``, ``Literal[...]``);
* a value that is empty or only spaces counts as unset: the field's default applies;
* a value that does not parse raises :class:`SettingsError` naming the variable, the value and the expected form;
* nothing else is read: no ``.env`` file (``make`` exports it), no secrets folder.

``docs/configuration.md`` has one table per class; ``tests/unit/test_settings.py`` holds each table equal to its
class (variables and defaults) and fails on an environment read anywhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Self

from pydantic import Field, NonNegativeFloat, PositiveInt, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

#: The environment a :meth:`SettingsBase.load` call reads (None: this process's, at the call).
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("recsys_settings_environ", default=None)


class SettingsError(ValueError):
    """Variables whose values do not parse; the message names each, with its value and the expected form."""


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping, reading only the fields that name a variable."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name: value for name, value in self._environ.items() if value.strip() != ""}  # blank is unset

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if not isinstance(field.validation_alias, str):
            return None, field_name, False  # derived: never read from the environment
        return super().get_field_value(field, field_name)


class SettingsBase(BaseSettings):
    """Base of every settings class: build one with :meth:`load` (the environment now, or a mapping given)."""

    model_config = SettingsConfigDict(case_sensitive=True, frozen=True, extra="ignore", validate_default=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        return (init_settings, _Environment(settings_cls, os.environ if environ is None else environ))

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> Self:
        """The settings from ``env`` (default: this process's environment, now); :class:`SettingsError` names every
        variable whose value does not parse."""
        token = _ENVIRON.set(env)
        try:
            return cls()
        except ValidationError as exc:
            raise SettingsError(describe(cls, exc)) from None
        finally:
            _ENVIRON.reset(token)

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Environment variable -> field name, in declaration order."""
        return {f.validation_alias: name for name, f in cls.model_fields.items() if isinstance(f.validation_alias, str)}

    @classmethod
    def variable(cls, field: str) -> str:
        """The variable a field reads (``Settings.variable("task_retries")`` is ``RECSYS_TASK_RETRIES``)."""
        alias = cls.model_fields[field].validation_alias
        if not isinstance(alias, str):
            raise KeyError(f"{cls.__name__}.{field} reads no variable")
        return alias

    @classmethod
    def default(cls, field: str) -> Any:
        """A field's default (None when it has none)."""
        return cls.model_fields[field].get_default(call_default_factory=True)

    @classmethod
    def load_field(cls, field: str, env: Mapping[str, str] | None = None) -> Any:
        """One field, parsed alone (its validators too): a bad value of any other variable cannot fail this read."""
        env = os.environ if env is None else env
        variable = cls.variable(field)
        return getattr(cls.load({variable: env[variable]} if variable in env else {}), field)


def describe(cls: type[SettingsBase], exc: ValidationError) -> str:
    """``VARIABLE='value': expected form`` for each error, one per line."""
    fields = cls.model_fields
    lines = []
    for error in exc.errors(include_url=False):
        where = str(error["loc"][0]) if error["loc"] else ""
        variable = fields[where].validation_alias if where in fields else where
        message = error["msg"].removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
        lines.append(f"{variable}={error['input']!r}: {message}")
    return "; ".join(lines)


#: IVFFlat lists a similar-items query scans (``ivfflat.probes``) when ``VECTOR_DB_PROBES`` is unset.
DEFAULT_PROBES = 15


class LambdaSettings(SettingsBase):
    """Both Lambdas' environment (Terraform sets it: ``terraform/modules/streaming_inference``), read per invocation."""

    ml_artifacts_bucket: str | None = Field(None, validation_alias="ML_ARTIFACTS_BUCKET")
    #: ``latest`` follows the vector DB's live version
    model_version: str = Field("latest", validation_alias="MODEL_VERSION")
    model_refresh_seconds: NonNegativeFloat = Field(60.0, validation_alias="MODEL_REFRESH_SECONDS")
    vector_db_secret_arn: str | None = Field(None, validation_alias="VECTOR_DB_SECRET_ARN")
    vector_db_host: str | None = Field(None, validation_alias="VECTOR_DB_HOST")
    vector_db_port: PositiveInt | None = Field(None, validation_alias="VECTOR_DB_PORT")
    vector_db_name: str | None = Field(None, validation_alias="VECTOR_DB_NAME")
    vector_db_sslmode: str | None = Field(None, validation_alias="VECTOR_DB_SSLMODE")
    #: relative to the unzipped package (``LAMBDA_TASK_ROOT``)
    vector_db_sslrootcert: str | None = Field(None, validation_alias="VECTOR_DB_SSLROOTCERT")
    vector_db_probes: PositiveInt = Field(DEFAULT_PROBES, validation_alias="VECTOR_DB_PROBES")
    #: the Lambda runtime's: where the package is unzipped (outside Lambda: the folder holding recsys_serving)
    task_root: Path = Field(Path(__file__).resolve().parents[1], validation_alias="LAMBDA_TASK_ROOT")
