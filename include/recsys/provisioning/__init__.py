"""Provision a pipeline's infrastructure: its Terraform root, applied for AWS or for the local stack.

One provisioner (:class:`~recsys.provisioning.terraform.TerraformProvisioner`) runs the real roots
(``terraform/<pipeline>/``) for both targets; ``RECSYS_TARGET`` (``aws`` or ``local``) picks only the backend, the
provider endpoints and the variables (:mod:`recsys.provisioning.targets`).

Each root is applied by exactly one DAG (:data:`OWNER_DAGS`); the others read its outputs (``apply=False``). The
outputs (:data:`OUTPUTS`) are non-secret and go to XCom; credentials only ever travel as Secrets Manager ARNs.
"""

from __future__ import annotations

import os
from typing import Any

from recsys.provisioning.roots import (
    ADMIN_ROOTS,
    OUTPUTS,
    OWNER_DAGS,
    PIPELINES,
    NotAppliedError,
    PermanentProvisioningError,
    ProvisioningError,
    check_outputs,
)

__all__ = [
    "ADMIN_ROOTS",
    "OUTPUTS",
    "OWNER_DAGS",
    "PIPELINES",
    "NotAppliedError",
    "PermanentProvisioningError",
    "ProvisioningError",
    "check_outputs",
    "provision_in_task",
    "provisioner",
]


def provision_in_task(pipeline: str, **kwargs: Any) -> dict[str, Any]:
    """``provisioner().provision(pipeline, ...)`` for a DAG task: a :class:`PermanentProvisioningError` fails the task
    at once (``AirflowFailException``); anything else may be transient and uses the task's retries."""
    try:
        return provisioner().provision(pipeline, **kwargs)  # type: ignore[no-any-return]
    except PermanentProvisioningError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc


def provisioner(env: dict[str, str] | None = None) -> Any:
    """The Terraform provisioner for ``RECSYS_TARGET`` (``local`` or ``aws``; unset is refused when it provisions)."""
    from recsys.provisioning.terraform import TerraformProvisioner

    return TerraformProvisioner(dict(os.environ) if env is None else env)
