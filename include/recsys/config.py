"""One source of truth for names, schemas and settings shared by the DAGs, the jobs, Terraform and the local stack.

Non-secret settings come from the environment with documented defaults (see `.env.example` and
docs/configuration.md). Nothing here reads the environment at import time: call :func:`platform_names` when the value
is needed, so DAG parsing never depends on the environment (the local stack's settings:
``recsys_local.settings``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Dimension of the user and item embeddings the model publishes and pgvector stores: the served model's, defined
#: with the serving code (which ships without this module).
from recsys_serving import EMBEDDING_DIM  # noqa: F401 (production code reads it from here)

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
                f"the {kind} name holds the AWS account id and none is known (RECSYS_TARGET=aws): set AWS_ACCOUNT_ID "
                "or pass the caller's account (STS GetCallerIdentity), or read the name from the root's outputs"
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


def aws_region(env: dict[str, str] | None = None) -> str:
    """``AWS_DEFAULT_REGION``, else :data:`DEFAULT_REGION`."""
    return (os.environ if env is None else env).get("AWS_DEFAULT_REGION", DEFAULT_REGION)


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
        region=aws_region(env),
    )


def project_root() -> Path:
    """The repository root (the folder holding ``dags/`` and ``include/``)."""
    return Path(__file__).resolve().parents[2]
