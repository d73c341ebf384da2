"""A resource that exists on the endpoint but not in a root's state, with the real `terraform` and AWS provider.

This is what an apply leaves behind when the endpoint's answer to a create is lost (the provider retries, and the
retry finds the object): the apply fails with AlreadyExists. The error says what to import and fails the task at once
(AWS); on the local target the provisioner imports it and applies again (a DAG task, `make up`'s restore).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from recsys.provisioning import OUTPUTS, PermanentProvisioningError
from recsys.provisioning.terraform import TerraformProvisioner, existing_outside_state
from recsys_local.target import LocalTarget

pytestmark = [
    pytest.mark.integration,
]

ALIAS = "alias/state-check"

ROOT = f"""
terraform {{
  required_providers {{
    aws = {{
      source = "hashicorp/aws"
    }}
  }}
}}

variable "with_alias" {{
  type    = bool
  default = false
}}

resource "aws_kms_key" "this" {{
  description             = "state check"
  deletion_window_in_days = 7
}}

resource "aws_kms_alias" "this" {{
  count         = var.with_alias ? 1 : 0
  name          = "{ALIAS}"
  target_key_id = aws_kms_key.this.key_id
}}
"""


class EndpointTarget(LocalTarget):
    """The local target's provider override and backend, on the in-process endpoint; no stack variables."""

    def variables(self, pipeline: str) -> dict[str, Any]:
        return {}

    def var_files(self) -> list[str]:
        return []


@pytest.fixture
def provisioner(in_process_aws, tmp_path: Path) -> TerraformProvisioner:
    server, _ = in_process_aws
    source = tmp_path / "terraform" / "etl"
    source.mkdir(parents=True)
    outputs = "\n".join(f'output "{name}" {{\n  value = "v-{name}"\n}}\n' for name in OUTPUTS["etl"])
    (source / "main.tf").write_text(ROOT + outputs)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "VECTOR_DB_", "AWS_"))},
        "LOCAL_STACK_HOME": str(tmp_path / "stack"),
        "AWS_PORT": server.endpoint_url.rsplit(":", 1)[1],
        "AWS_DEFAULT_REGION": "us-east-1",
        "TERRAFORM_DIR": str(tmp_path / "terraform"),
        "TERRAFORM_WORK_DIR": str(tmp_path / "work"),
    }
    return TerraformProvisioner(env, target=EndpointTarget(env))


def test_an_alias_outside_the_state_is_named_with_its_import_and_the_local_target_adopts_it(
    provisioner, in_process_aws, caplog
):
    _, client = in_process_aws
    provisioner.provision("etl", variables={"with_alias": False})
    kms = client("kms")
    key = kms.list_keys()["Keys"][0]["KeyId"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key)  # what a lost CreateAlias answer leaves behind

    with pytest.raises(PermanentProvisioningError) as refused:  # as in AWS: named, never imported by itself
        provisioner.provision("etl", variables={"with_alias": True}, adopt_existing=False)
    message = str(refused.value)
    assert "AlreadyExists" in message
    assert existing_outside_state(message) == [("aws_kms_alias.this[0]", ALIAS)]
    assert f"terraform import aws_kms_alias.this[0] {ALIAS}" in message

    with caplog.at_level("WARNING", logger="recsys.provisioning.terraform"):
        provisioner.provision("etl", variables={"with_alias": True})  # the local target's default: adopt it
    assert any("importing" in r.getMessage() and ALIAS in r.getMessage() for r in caplog.records), caplog.text
    assert provisioner.pending_changes("etl", {"with_alias": True}) == []
    aliases = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == ALIAS]
    assert [a["TargetKeyId"] for a in aliases] == [key]
