"""Provision a pipeline's infrastructure; one interface, two implementations chosen by ``RECSYS_TARGET``.

* ``aws`` (:class:`~recsys.provisioning.terraform.TerraformProvisioner`): runs the pipeline's Terraform root
  (``terraform/<pipeline>/``) in automation: ``init -input=false``, ``plan -out``, ``apply`` of that plan, then
  ``output -json``.
* ``local`` (:class:`~recsys.provisioning.local.LocalProvisioner`): creates the same named resources in the local
  stack through the Amazon provider's hooks, idempotently.

Both return the same non-secret outputs (:data:`OUTPUTS`), which downstream tasks read from XCom. Credentials are
only ever passed as a Secrets Manager ARN.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

PIPELINES = ("etl", "vector_db", "streaming_inference")

#: Outputs each pipeline's provisioning returns (and each Terraform root declares).
OUTPUTS: dict[str, tuple[str, ...]] = {
    "etl": (
        "datalake_bucket",
        "scripts_bucket",
        "glue_job_name",
        "glue_script_s3_url",
        "glue_database",
        "source_secret_arn",
    ),
    "vector_db": ("ml_artifacts_bucket", "vector_db_secret_arn", "vector_db_host", "vector_db_port", "vector_db_name"),
    "streaming_inference": (
        "recommendations_bucket",
        "kinesis_stream_name",
        "delivery_stream_name",
        "transformation_lambda_name",
        "model_inference_lambda_name",
        "lambda_packages_bucket",
    ),
}


class ProvisioningError(RuntimeError):
    """Provisioning cannot proceed (missing binary, backend or setting); the message says what to do."""


class Provisioner(Protocol):
    def provision(self, pipeline: str, apply: bool = True, variables: dict[str, str] | None = None) -> dict[str, Any]:
        """Create or update the pipeline's resources (``apply=False``: only read current outputs).

        ``variables`` are deployment inputs a DAG computes (e.g. content-hashed Lambda package keys).
        """
        ...


def provisioner(target: str | None = None) -> Provisioner:
    """The provisioner for ``RECSYS_TARGET`` (``local`` or ``aws``; default ``local``)."""
    target = target or os.environ.get("RECSYS_TARGET", "local")
    if target == "local":
        from recsys.provisioning.local import LocalProvisioner

        return LocalProvisioner()
    if target == "aws":
        from recsys.provisioning.terraform import TerraformProvisioner

        return TerraformProvisioner()
    raise ProvisioningError(f"RECSYS_TARGET={target!r}: expected 'local' or 'aws'")


def check_outputs(pipeline: str, outputs: dict[str, Any]) -> dict[str, Any]:
    """Fail clearly when an implementation does not return every declared output."""
    missing = [name for name in OUTPUTS[pipeline] if name not in outputs]
    if missing:
        raise ProvisioningError(f"provisioning of {pipeline!r} returned no {', '.join(missing)}")
    return {name: outputs[name] for name in OUTPUTS[pipeline]}
