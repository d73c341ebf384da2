"""One source of truth for names, schemas and settings shared by the DAGs, the jobs, Terraform and the local stack.

Non-secret settings come from the environment with documented defaults (see `.env.example` and the README's
configuration table). Nothing here reads the environment at import time: call :func:`platform_names` or
:func:`local_stack_settings` when the value is needed, so DAG parsing never depends on the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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

#: The training dataset's folder in the datalake bucket and its exact column order (the data contract).
TRAINING_DATA_PREFIX = "ratings-ml-training/"
TRAINING_COLUMNS: tuple[str, ...] = (
    "customerNumber",
    "city",
    "state",
    "postalCode",
    "country",
    "creditLimit",
    "productCode",
    "productLine",
    "productScale",
    "quantityInStock",
    "buyPrice",
    "MSRP",
    "productRating",
)
#: The AWS Glue version of the ETL job, and the runtime it brings (AWS Glue release notes). Terraform's default, the
#: local Glue executor's runtime and the script's language level all follow it (tests hold them equal).
GLUE_VERSION = "5.1"
GLUE_RUNTIME: dict[str, str] = {"spark": "3.5.6", "python": "3.11", "java": "17"}
#: Dimension of the user and item embeddings the model publishes and pgvector stores.
EMBEDDING_DIM = 32
#: The source database.
SOURCE_DATABASE = "classicmodels"
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
                f"the {kind} name holds the AWS account id and none is known (RECSYS_TARGET=aws): set AWS_ACCOUNT_ID "
                "or pass the caller's account (STS GetCallerIdentity), or read the name from the root's outputs"
            )
        return render_name(kind, self.prefix, self.account or "")

    @property
    def datalake_bucket(self) -> str:
        return self.name("datalake_bucket")

    @property
    def ml_artifacts_bucket(self) -> str:
        return self.name("ml_artifacts_bucket")

    @property
    def recommendations_bucket(self) -> str:
        return self.name("recommendations_bucket")

    @property
    def scripts_bucket(self) -> str:
        return self.name("scripts_bucket")

    @property
    def glue_job(self) -> str:
        return self.name("glue_job")

    @property
    def glue_role(self) -> str:
        return self.name("glue_role")

    @property
    def source_db_secret(self) -> str:
        return self.name("source_db_secret")

    @property
    def glue_database(self) -> str:
        return self.name("glue_database")

    @property
    def vector_db(self) -> str:
        return self.name("vector_db")

    @property
    def kinesis_stream(self) -> str:
        return self.name("kinesis_stream")

    @property
    def delivery_stream(self) -> str:
        return self.name("delivery_stream")

    @property
    def transformation_lambda(self) -> str:
        return self.name("transformation_lambda")

    @property
    def model_inference_lambda(self) -> str:
        return self.name("model_inference_lambda")

    def buckets(self) -> list[str]:
        return [self.datalake_bucket, self.ml_artifacts_bucket, self.recommendations_bucket, self.scripts_bucket]

    def as_env(self) -> dict[str, str]:
        """Every name as an upper-case environment variable (``DATALAKE_BUCKET=...``)."""
        return {kind.upper(): self.name(kind) for kind in NAME_TEMPLATES}


def platform_names(env: dict[str, str] | None = None, account: str | None = None) -> PlatformNames:
    """Names for the current deployment: ``RECSYS_PREFIX``, the account (``account``, e.g. what STS says, else
    ``AWS_ACCOUNT_ID``) and ``AWS_DEFAULT_REGION``. The local stack's account is the default only on the local target:
    on AWS (``RECSYS_TARGET=aws``) a name holding the account is refused without one (:meth:`PlatformNames.name`)."""
    env = dict(os.environ) if env is None else env
    account = account or env.get("AWS_ACCOUNT_ID") or None
    if account is None and env.get("RECSYS_TARGET", "local") != "aws":
        account = LOCAL_ACCOUNT_ID
    return PlatformNames(
        prefix=env.get("RECSYS_PREFIX", DEFAULT_PREFIX),
        account=account,
        region=env.get("AWS_DEFAULT_REGION", DEFAULT_REGION),
    )


def project_root() -> Path:
    """The repository root (the folder holding ``dags/`` and ``include/``)."""
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LocalStackSettings:
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
    names: PlatformNames = PlatformNames()

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
LOCAL_STACK_ENV: dict[str, str] = {
    "LOCAL_STACK_HOME": "home",
    "MYSQL_PORT": "mysql_port",
    "VECTOR_DB_PORT": "vector_db_port",
    "AWS_PORT": "aws_port",
    "AIRFLOW_PORT": "airflow_port",
    "MYSQL_USER": "mysql_user",
    "MYSQL_DATABASE": "mysql_database",
    "VECTOR_DB_USER": "vector_db_user",
    "VECTOR_DB_NAME": "vector_db_name",
}


def local_stack_settings(env: dict[str, str] | None = None) -> LocalStackSettings:
    """Settings of the local stack from the environment (defaults in `.env.example`)."""
    env = dict(os.environ) if env is None else env
    kwargs: dict[str, object] = {"home": Path(env.get("LOCAL_STACK_HOME", project_root() / ".local")).resolve()}
    for variable, field in LOCAL_STACK_ENV.items():
        if field == "home" or variable not in env:
            continue
        value = env[variable]
        if field.endswith("_port"):
            try:
                kwargs[field] = int(value)
            except ValueError:
                raise ValueError(f"{variable}={value!r} is not a port number") from None
        else:
            kwargs[field] = value
    kwargs["names"] = platform_names({**env, "RECSYS_TARGET": "local"})  # the stack is moto's account, always
    return LocalStackSettings(**kwargs)  # type: ignore[arg-type]
