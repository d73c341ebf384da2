"""The Terraform roots' facts and the provisioning errors: which roots exist, which DAG applies each, what each
returns. A leaf of :mod:`recsys.provisioning` (the package re-exports it), so the provisioner and the targets import
it without importing the package that builds them.
"""

from __future__ import annotations

from typing import Any

PIPELINES = ("etl", "vector_db", "streaming_inference")
#: Roots an administrator applies, never a DAG: the Airflow workers' permissions (deployment step 0; on the local
#: stack `make up` applies it, recsys_local.identity).
ADMIN_ROOTS = ("airflow_workers",)

#: The DAG that applies each root; every other DAG only reads the root's outputs.
OWNER_DAGS: dict[str, str] = {
    "etl": "batch_training_data",
    "vector_db": "vector_db_embeddings",
    "streaming_inference": "streaming_recommendations",
}

#: Outputs each pipeline's root declares and the DAGs read.
OUTPUTS: dict[str, tuple[str, ...]] = {
    "etl": (
        "datalake_bucket",
        "scripts_bucket",
        "ml_artifacts_bucket",
        "glue_job_name",
        "glue_script_s3_url",
        "glue_database",
        "glue_table",
        "source_secret_arn",
    ),
    "vector_db": (
        "vector_db_secret_arn",
        "vector_db_loader_secret_arn",
        "vector_db_reader_secret_arn",
        "vector_db_host",
        "vector_db_port",
        "vector_db_name",
    ),
    # step 0: an administrator applies it (in AWS by hand, on the local stack `make up`), no DAG
    "airflow_workers": ("workers_role_name", "workers_role_arn", "workers_policy_arns"),
    "streaming_inference": (
        "recommendations_bucket",
        "kinesis_stream_name",
        "delivery_stream_name",
        "smoke_delivery_stream_name",
        "transformation_lambda_name",
        "model_inference_lambda_name",
        "lambda_packages_bucket",
        "lambda_alias",
        "model_inference_url",
    ),
}


class ProvisioningError(RuntimeError):
    """Provisioning cannot proceed (missing binary, backend or setting); the message says what to do."""


class PermanentProvisioningError(ProvisioningError):
    """A failure that trying the same run again cannot fix (a resource outside the state, a refused destroy, a
    configuration or request the provider rejects): a DAG task fails at once instead of using up its retries."""

    def __init__(self, message: str, existing: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        #: (address, id) of resources that exist on the service but not in the root's state
        self.existing = existing or []


class NotAppliedError(PermanentProvisioningError):
    """A root whose outputs were asked for has never been applied for this target (its owner DAG applies it)."""


def check_outputs(pipeline: str, outputs: dict[str, Any]) -> dict[str, Any]:
    """Fail clearly when a root does not return every declared output."""
    missing = [name for name in OUTPUTS[pipeline] if name not in outputs]
    if missing:
        raise ProvisioningError(f"terraform/{pipeline} returned no {', '.join(missing)}")
    return {name: outputs[name] for name in OUTPUTS[pipeline]}
