"""Where the Terraform roots are applied: AWS, or the local stack's endpoint. Only this differs between the two.

* :class:`AwsTarget` (``RECSYS_TARGET=aws``): the S3 backend from ``TF_BACKEND_CONFIG`` (state key
  ``<pipeline>/terraform.tfstate``), variables from ``TF_VAR_FILE``.
* the local target (``RECSYS_TARGET=local``): built by the object ``RECSYS_TARGET_FACTORY`` names
  (``module:attribute``, called with the environment). The local platform sets it (its ``stack.env``, the ``local``
  image, compose): production code neither names nor imports the local target, so the runtime image needs none of
  ``local/``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

from recsys.config import settings
from recsys.provisioning.roots import ProvisioningError


class Target(Protocol):
    name: str
    #: whether a resource that exists but is not in the state is imported by default (see ``provision``)
    adopts_existing: bool

    def preflight(self, pipeline: str) -> None: ...

    def backend_args(self, pipeline: str) -> list[str]: ...

    def override_files(self, pipeline: str) -> dict[str, str]: ...

    def variables(self, pipeline: str) -> dict[str, Any]: ...

    def var_files(self) -> list[str]: ...

    def adopt(self, pipeline: str, resources: list[tuple[str, str]]) -> None:
        """Import these (address, id) at the root's next plan."""

    def applied(self, pipeline: str, variables: dict[str, Any]) -> None:
        """The root was applied with these variables."""


def target_for(env: dict[str, str]) -> Target:
    try:
        chosen = settings(env)
    except ValueError as exc:
        raise ProvisioningError(str(exc)) from None
    if chosen.target is None:
        raise ProvisioningError(
            "RECSYS_TARGET is not set: aws on the workers of an AWS deployment (docs/aws-deployment.md, step 2), "
            "local on the local stack (its stack.env sets it)"
        )
    if chosen.target == "aws":
        return AwsTarget(env)
    spec = chosen.target_factory
    if not spec:
        raise ProvisioningError(
            "RECSYS_TARGET=local needs RECSYS_TARGET_FACTORY (module:attribute), which the local platform sets: "
            "load the stack's environment (`set -a; . .local/stack.env; set +a`), or set RECSYS_TARGET=aws"
        )
    module, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ProvisioningError(
            f"RECSYS_TARGET=local: RECSYS_TARGET_FACTORY={spec!r} cannot be loaded ({exc}). The local target belongs "
            "to the local platform: put local/ on PYTHONPATH (make up's environment and the `local` image do), or "
            "set RECSYS_TARGET=aws"
        ) from None
    return factory(env)  # type: ignore[no-any-return]


class AwsTarget:
    name = "aws"
    adopts_existing = False  # in AWS the error names the import command and a person decides

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.settings = settings(env)

    def preflight(self, pipeline: str) -> None:
        backend = self.settings.tf_backend_config
        if backend is None or not backend.is_file():
            raise ProvisioningError(
                "TF_BACKEND_CONFIG must name an existing backend file (bucket, region, use_lockfile); see "
                "terraform/backend.hcl.example"
            )
        var_file = self.settings.tf_var_file
        if var_file is not None and not var_file.is_file():
            raise ProvisioningError(f"TF_VAR_FILE={var_file} does not exist; see terraform/terraform.tfvars.example")

    def backend_args(self, pipeline: str) -> list[str]:
        return [
            f"-backend-config={Path(str(self.settings.tf_backend_config)).resolve()}",
            f"-backend-config=key={pipeline}/terraform.tfstate",
        ]

    def override_files(self, pipeline: str) -> dict[str, str]:
        return {}

    def variables(self, pipeline: str) -> dict[str, Any]:
        return {}

    def var_files(self) -> list[str]:
        var_file = self.settings.tf_var_file
        return [str(var_file.resolve())] if var_file is not None else []

    def adopt(self, pipeline: str, resources: list[tuple[str, str]]) -> None:
        listed = ", ".join(f"{address} ({ident})" for address, ident in resources)
        raise ProvisioningError(f"terraform/{pipeline}: import {listed} with `terraform import` (AWS target)")

    def applied(self, pipeline: str, variables: dict[str, Any]) -> None:
        """Nothing to remember: the S3 backend's state is what a later run reads."""
