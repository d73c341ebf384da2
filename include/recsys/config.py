"""One source of truth for names, schemas and settings shared by the DAGs, the jobs, Terraform and the local stack.

Non-secret settings come from the environment: every variable production code reads is a field of :class:`Settings`,
a class on the one loader of every home (:class:`recsys_serving.settings.SettingsBase`, pydantic-settings)
(docs/configuration.md lists each once; ``tests/unit/test_settings.py`` holds the two equal and fails on a read
anywhere else). Nothing here reads the environment at import time: call :func:`settings` (or :func:`platform_names`)
when a task runs, so what a task does follows the worker's environment at run time.

Three values are read when a DAG file is parsed, because Airflow fixes them in the DAG's definition and a task cannot
change them at run time: ``RECSYS_TASK_RETRIES`` and ``RECSYS_RETRY_DELAY_SECONDS`` (every task's ``retries`` and
``retry_delay``, :mod:`recsys.dag_defaults`) and ``RECSYS_ARTIFACT_WAIT_SECONDS`` (a sensor's ``timeout``,
``dags/vector_db_embeddings.py``). A change to them takes effect when the DAG processor parses the files again.
The local stack's own settings are ``recsys_local.settings``; the Lambdas' environment, set by Terraform, is read by
``recsys_serving.runtime``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt

from recsys_serving.settings import SettingsBase

#: Default project prefix: the lab's resource names start with it.
DEFAULT_PREFIX = "de-c1w4"
#: The account id moto reports; used for names when running against the local stack.
LOCAL_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"

#: Name templates, rendered with ``prefix`` and ``account``. Terraform's `locals` use the same templates
#: (tests/terraform checks that they agree).
NAME_TEMPLATES: dict[str, str] = {
    "datalake_bucket": "{prefix}-{account}-datalake",
    "ml_artifacts_bucket": "{prefix}-{account}-ml-artifacts",
    "recommendations_bucket": "{prefix}-{account}-recommendations",
    "scripts_bucket": "{prefix}-{account}-scripts",
    "glue_job": "{prefix}-etl-job",
    "glue_role": "{prefix}-glue-role",
    "source_db_secret": "{prefix}-source-db-credentials",
    "glue_database": "{prefix_underscored}_db",
    "vector_db": "{prefix}-vector-db",
    "vector_db_loader": "{prefix}-vector-db-loader",
    "vector_db_reader": "{prefix}-vector-db-reader",
    "kinesis_stream": "{prefix}-kinesis-data-stream",
    "delivery_stream": "{prefix}-delivery-stream",
    "transformation_lambda": "{prefix}-transformation-lambda",
    "model_inference_lambda": "{prefix}-model-inference",
}

#: The training dataset's folder in the datalake bucket. Its exact column order (the data contract),
#: ``TRAINING_COLUMNS``, is the Glue script's, which ships alone to Glue and so holds the one definition: this module
#: hands it out (:func:`__getattr__`).
TRAINING_DATA_PREFIX = "ratings-ml-training/"
#: The AWS Glue version of the ETL job, and the runtime it brings (AWS Glue release notes). Terraform's default, the
#: local Glue executor's runtime and the script's language level all follow it (tests hold them equal).
GLUE_VERSION = "5.1"
GLUE_RUNTIME: dict[str, str] = {"spark": "3.5.6", "python": "3.11", "java": "17"}
#: The source database.
SOURCE_DATABASE = "classicmodels"
#: Its tables (the classicmodels sample plus ``ratings``), parents first: what the seed creates, the platform check
#: looks for.
SOURCE_TABLES: tuple[str, ...] = (
    "productlines",
    "products",
    "offices",
    "employees",
    "customers",
    "payments",
    "orders",
    "orderdetails",
    "ratings",
)
#: Airflow connection ids the DAGs use, locally (AIRFLOW_CONN_* from `.local/stack.env`) and in AWS.
AWS_CONN_ID = "aws_default"
MYSQL_CONN_ID = "mysql_source"
VECTOR_DB_CONN_ID = "vector_db"


def render_name(kind: str, prefix: str, account: str) -> str:
    """Render one resource name from :data:`NAME_TEMPLATES`."""
    template = NAME_TEMPLATES[kind]
    return template.format(prefix=prefix, account=account, prefix_underscored=prefix.replace("-", "_"))


@dataclass(frozen=True)
class PlatformNames:
    """Physical resource names derived from the project prefix, the AWS account and the region."""

    prefix: str = DEFAULT_PREFIX
    #: None on AWS when nobody said which account: the names that hold it (the buckets) are refused, not guessed.
    account: str | None = LOCAL_ACCOUNT_ID
    region: str = DEFAULT_REGION

    def name(self, kind: str) -> str:
        if self.account is None and "{account}" in NAME_TEMPLATES[kind]:
            raise ValueError(
                f"the {kind} name holds the AWS account id and none is known (not on the local stack): set "
                "AWS_ACCOUNT_ID or pass the caller's account (STS GetCallerIdentity), or read the name from the "
                "root's outputs"
            )
        return render_name(kind, self.prefix, self.account or "")

    def __getattr__(self, kind: str) -> str:
        """``names.datalake_bucket`` is ``names.name("datalake_bucket")``: one attribute per :data:`NAME_TEMPLATES`
        key, so a new name needs only its template."""
        if kind in NAME_TEMPLATES:
            return self.name(kind)
        raise AttributeError(f"{type(self).__name__} has no {kind!r}; the names are {', '.join(NAME_TEMPLATES)}")

    def buckets(self) -> list[str]:
        return [self.datalake_bucket, self.ml_artifacts_bucket, self.recommendations_bucket, self.scripts_bucket]

    def as_env(self) -> dict[str, str]:
        """Every name as an upper-case environment variable (``DATALAKE_BUCKET=...``)."""
        return {kind.upper(): self.name(kind) for kind in NAME_TEMPLATES}


class Settings(SettingsBase):
    """What production code reads from the environment, typed; each field names its variable (the rules of
    :class:`recsys_serving.settings.SettingsBase`: empty is unset, a bad value names its variable).

    Build it with :func:`settings` when a task runs (see the module's docstring for the three read at parse time)."""

    target: Literal["local", "aws"] | None = Field(None, validation_alias="RECSYS_TARGET")
    target_factory: str | None = Field(None, validation_alias="RECSYS_TARGET_FACTORY")
    prefix: str = Field(DEFAULT_PREFIX, validation_alias="RECSYS_PREFIX")
    account_id: str | None = Field(None, validation_alias="AWS_ACCOUNT_ID")
    region: str = Field(DEFAULT_REGION, validation_alias="AWS_DEFAULT_REGION")
    task_retries: NonNegativeInt = Field(2, validation_alias="RECSYS_TASK_RETRIES")
    retry_delay_seconds: NonNegativeFloat = Field(60.0, validation_alias="RECSYS_RETRY_DELAY_SECONDS")
    artifact_wait_seconds: NonNegativeInt = Field(1800, validation_alias="RECSYS_ARTIFACT_WAIT_SECONDS")
    terraform_bin: str = Field("terraform", validation_alias="TERRAFORM_BIN")
    terraform_dir: Path | None = Field(None, validation_alias="TERRAFORM_DIR")
    terraform_work_dir: Path | None = Field(None, validation_alias="TERRAFORM_WORK_DIR")
    terraform_cli_config: Path | None = Field(None, validation_alias="TF_CLI_CONFIG_FILE")
    tf_plugin_mirror: Path | None = Field(None, validation_alias="TF_PLUGIN_MIRROR")
    tf_backend_config: Path | None = Field(None, validation_alias="TF_BACKEND_CONFIG")
    tf_var_file: Path | None = Field(None, validation_alias="TF_VAR_FILE")
    lambda_wheelhouse: Path | None = Field(None, validation_alias="RECSYS_LAMBDA_WHEELHOUSE")
    prebuilt_packages: str | None = Field(None, validation_alias="RECSYS_PREBUILT_PACKAGES")
    vector_db_ca_bundle: Path | None = Field(None, validation_alias="VECTOR_DB_CA_BUNDLE")
    rds_ca_bundle_url: str | None = Field(None, validation_alias="RDS_CA_BUNDLE_URL")
    ca_bundle_dir: Path | None = Field(None, validation_alias="RECSYS_CA_BUNDLE_DIR")
    vector_db_maintenance_work_mem: str = Field("256MB", validation_alias="VECTOR_DB_MAINTENANCE_WORK_MEM")
    vector_db_keep_versions: NonNegativeInt = Field(3, validation_alias="VECTOR_DB_KEEP_VERSIONS")


def settings(env: Mapping[str, str] | None = None) -> Settings:
    """:class:`Settings` from ``env`` (default: this process's environment, now). A value that does not parse fails
    naming the variable and the value (:class:`recsys_serving.settings.SettingsError`, a ValueError)."""
    return Settings.load(env)


def setting(name: str, env: Mapping[str, str] | None = None) -> Any:
    """One field of :class:`Settings` (``name``), parsed alone: what a DAG file reads at parse time, so a bad value
    of any other variable cannot fail the parse."""
    return Settings.load_field(name, env)


def parse_time_setting(name: str) -> Any:
    """A setting read when a DAG file is parsed: a bad value is logged, naming the variable, and the default is
    used, so one typo cannot stop every DAG from loading (tasks read :func:`settings`, which refuses it)."""
    try:
        return setting(name)
    except ValueError as exc:
        import logging

        logging.getLogger(__name__).error("%s; using the default %r", exc, Settings.default(name))
        return Settings.default(name)


def aws_region(env: Mapping[str, str] | None = None) -> str:
    """``AWS_DEFAULT_REGION``, else :data:`DEFAULT_REGION`."""
    return settings(env).region


def platform_names(env: Mapping[str, str] | None = None, account: str | None = None) -> PlatformNames:
    """Names for the current deployment: ``RECSYS_PREFIX``, the account (``account``, e.g. what STS says, else
    ``AWS_ACCOUNT_ID``) and ``AWS_DEFAULT_REGION``. The local stack's account is the default only on the local target
    (``RECSYS_TARGET=local``): elsewhere a name holding the account is refused without one
    (:meth:`PlatformNames.name`)."""
    s = settings(env)
    account = account or s.account_id
    if account is None and s.target == "local":
        account = LOCAL_ACCOUNT_ID
    return PlatformNames(prefix=s.prefix, account=account, region=s.region)


def project_root() -> Path:
    """The repository root (the folder holding ``dags/`` and ``include/``)."""
    return Path(__file__).resolve().parents[2]


def __getattr__(name: str) -> Any:
    """``TRAINING_COLUMNS``: the Glue script's, imported when first asked for, not when a DAG file imports this
    module (the script's module costs every parse ~6 ms)."""
    if name == "TRAINING_COLUMNS":
        from recsys.etl.glue_job import TRAINING_COLUMNS

        return TRAINING_COLUMNS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
