"""The Terraform provisioner's automation workflow, with a stand-in `terraform` that records its calls."""

from __future__ import annotations

import json
import os
import stat

import pytest

from recsys.config import project_root
from recsys.provisioning import ProvisioningError
from recsys.provisioning.terraform import TerraformProvisioner

FAKE = """#!/usr/bin/env bash
echo "$PWD|TF_IN_AUTOMATION=$TF_IN_AUTOMATION|$*" >> "$CALLS"
if [ "$1" = output ]; then cat "$OUTPUTS"; fi
if [ "$1" = plan ] && [ -n "$FAIL_PLAN" ]; then echo "Error: bad plan" >&2; exit 1; fi
exit 0
"""


@pytest.fixture
def fake_terraform(tmp_path):
    binary = tmp_path / "terraform"
    binary.write_text(FAKE)
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    backend = tmp_path / "backend.hcl"
    backend.write_text('bucket = "state"\n')
    outputs = {
        name: {"value": f"v-{name}", "sensitive": False}
        for name in (
            "datalake_bucket",
            "scripts_bucket",
            "glue_job_name",
            "glue_script_s3_url",
            "glue_database",
            "source_secret_arn",
        )
    }
    outputs["leaked_password"] = {"value": "hunter2", "sensitive": True}
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    env = {
        **os.environ,
        "TERRAFORM_BIN": str(binary),
        "TF_BACKEND_CONFIG": str(backend),
        "CALLS": str(tmp_path / "calls.log"),
        "OUTPUTS": str(tmp_path / "outputs.json"),
    }
    return env, tmp_path


def test_init_plan_apply_the_plan_then_read_outputs(fake_terraform):
    env, tmp = fake_terraform
    outputs = TerraformProvisioner(env).provision("etl", variables={"model_version": "v3"})
    calls = [line.split("|") for line in (tmp / "calls.log").read_text().splitlines()]
    assert [c[2].split()[0] for c in calls] == ["init", "plan", "apply", "output"]
    assert all(c[0] == str(project_root() / "terraform" / "etl") and c[1] == "TF_IN_AUTOMATION=1" for c in calls)
    assert f"-backend-config={env['TF_BACKEND_CONFIG']}" in calls[0][2]
    assert "-backend-config=key=etl/terraform.tfstate" in calls[0][2]
    assert "-out=tfplan" in calls[1][2]
    assert "-var=model_version=v3" in calls[1][2]
    assert calls[2][2].split()[-1] == "tfplan"
    assert outputs["glue_job_name"] == "v-glue_job_name"
    assert "leaked_password" not in outputs


def test_apply_false_only_reads_outputs(fake_terraform):
    env, tmp = fake_terraform
    TerraformProvisioner(env).provision("etl", apply=False)
    verbs = [line.split("|")[2].split()[0] for line in (tmp / "calls.log").read_text().splitlines()]
    assert verbs == ["init", "output"]


def test_a_failing_plan_raises_with_terraforms_error(fake_terraform):
    env, _ = fake_terraform
    with pytest.raises(ProvisioningError, match=r"(?s)terraform plan failed.*bad plan"):
        TerraformProvisioner({**env, "FAIL_PLAN": "1"}).provision("etl")


def test_missing_binary_and_backend_are_clear_errors(fake_terraform):
    env, _ = fake_terraform
    with pytest.raises(ProvisioningError, match="not found on the worker's PATH"):
        TerraformProvisioner({**env, "TERRAFORM_BIN": "/nonexistent/terraform"}).provision("etl")
    with pytest.raises(ProvisioningError, match="TF_BACKEND_CONFIG"):
        TerraformProvisioner({k: v for k, v in env.items() if k != "TF_BACKEND_CONFIG"}).provision("etl")
    with pytest.raises(ProvisioningError, match="unknown pipeline"):
        TerraformProvisioner(env).provision("nope")
