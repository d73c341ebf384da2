"""The Terraform provisioner with the real `terraform` binary, on fixture roots that need no provider.

`terraform_data` is built into Terraform, so these roots run offline in a second or two: init, plan, the destroy
guard, apply, outputs, private workspaces and what reaches the log.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from recsys.provisioning import OUTPUTS, ProvisioningError
from recsys.provisioning.terraform import (
    OWNER_FILE,
    DestructivePlanError,
    TerraformProvisioner,
    find_plugin_mirror,
    remove_abandoned_copies,
)

SECRET = "s3cr3t-Zq81-never-in-logs"

ROOT = """
variable "generation" {
  type    = string
  default = "1"
}

variable "db_password" {
  type      = string
  sensitive = true
  default   = "placeholder"
}

resource "terraform_data" "database" {
  triggers_replace = var.generation
}

output "db_password" {
  value     = var.db_password
  sensitive = true
}
"""


class FixtureTarget:
    """A local backend in a temporary folder; no provider."""

    name = "fixture"
    adopts_existing = False

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def preflight(self, pipeline: str) -> None:
        return None

    def backend_args(self, pipeline: str) -> list[str]:
        return []

    def override_files(self, pipeline: str) -> dict[str, str]:
        path = self.state_dir / f"{pipeline}.tfstate"
        return {"backend_override.tf": f'terraform {{\n  backend "local" {{\n    path = "{path}"\n  }}\n}}\n'}

    def variables(self, pipeline: str) -> dict[str, Any]:
        return {}

    def var_files(self) -> list[str]:
        return []

    def adopt(self, pipeline: str, resources: list[tuple[str, str]]) -> None:
        raise AssertionError(f"nothing is adopted in these tests: {resources}")

    def applied(self, pipeline: str, variables: dict[str, Any]) -> None:
        return None


@pytest.fixture
def fixture_tree(tmp_path: Path) -> tuple[TerraformProvisioner, Path]:
    source = tmp_path / "terraform" / "etl"
    source.mkdir(parents=True)
    outputs = "\n".join(f'output "{name}" {{\n  value = "v-{name}"\n}}\n' for name in OUTPUTS["etl"])
    (source / "main.tf").write_text(ROOT + outputs)
    work = tmp_path / "work"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TERRAFORM_DIR": str(tmp_path / "terraform"),
        "TERRAFORM_WORK_DIR": str(work),
        "TF_CLI_CONFIG_FILE": str(tmp_path / "missing.tfrc"),
    }
    provisioner = TerraformProvisioner(env, target=FixtureTarget(tmp_path / "state"))
    provisioner.stateful_types = frozenset({"terraform_data"})
    return provisioner, tmp_path


def test_apply_then_read_outputs_without_sensitive_values(fixture_tree, caplog):
    provisioner, tmp = fixture_tree
    caplog.set_level(logging.DEBUG)

    outputs = provisioner.provision("etl", variables={"db_password": SECRET})

    assert outputs == {name: f"v-{name}" for name in OUTPUTS["etl"]}
    assert (tmp / "state" / "etl.tfstate").is_file()
    assert "Apply complete! Resources: 1 added" in caplog.text
    assert SECRET not in caplog.text
    assert SECRET not in repr(outputs)
    # a second run reads the same outputs without applying, and a repeat plan has nothing to do
    assert provisioner.provision("etl", apply=False) == outputs
    assert provisioner.pending_changes("etl", {"db_password": SECRET}) == []
    caplog.clear()
    assert provisioner.provision("etl", variables={"db_password": SECRET}) == outputs
    assert "nothing to apply" in caplog.text
    assert "terraform apply" not in caplog.text


def test_every_call_works_in_a_private_copy_that_is_removed(fixture_tree):
    provisioner, tmp = fixture_tree
    seen = []
    with provisioner.workspace("etl") as first, provisioner.workspace("etl") as second:
        seen += [first, second]
        assert first != second
        assert (first / "main.tf").read_text() == (tmp / "terraform" / "etl" / "main.tf").read_text()
        assert (first / "backend_override.tf").is_file()
    assert not any(path.exists() for path in seen)
    assert not (tmp / "terraform" / "etl" / ".terraform").exists()
    assert list((tmp / "work").iterdir()) == []


def test_copies_of_a_killed_provisioning_are_removed_unless_something_still_works_in_them(fixture_tree):
    provisioner, tmp = fixture_tree
    work = tmp / "work"
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = subprocess.Popen(["sleep", "30"], cwd=work.parent)  # stands in for an orphaned `terraform apply`
    try:
        for name, pid, cwd_user in (("etl-killed", dead.pid, False), ("etl-busy", dead.pid, True)):
            copy = work / name / "etl"
            copy.mkdir(parents=True)
            (work / name / OWNER_FILE).write_text(f"{pid} 12345.0")
            if cwd_user:
                orphan.kill()
                orphan.wait()
                orphan = subprocess.Popen(["sleep", "30"], cwd=copy)
        (work / "etl-not-ours").mkdir()
        with provisioner.workspace("etl") as live:
            live_copy = live.parent
            assert (live_copy / OWNER_FILE).read_text().split()[0] == str(os.getpid())
            assert sorted(p.name for p in work.iterdir()) == sorted(["etl-busy", "etl-not-ours", live_copy.name])
            # this process's own live copy is never taken for abandoned
            assert remove_abandoned_copies(work) == []
    finally:
        orphan.kill()
        orphan.wait()
    # a provider plugin whose terraform died with the task waits forever: stopped, and its copy removed
    plugin_copy = work / "etl-plugin" / "etl"
    plugin_copy.mkdir(parents=True)
    (work / "etl-plugin" / OWNER_FILE).write_text(f"{dead.pid} 12345.0")
    plugin_binary = tmp / "terraform-provider-fake"
    shutil.copy2(shutil.which("sleep"), plugin_binary)
    plugin = subprocess.Popen([str(plugin_binary), "30"], cwd=plugin_copy)
    try:
        assert sorted(remove_abandoned_copies(work)) == ["etl-busy", "etl-plugin"]
        assert plugin.wait(timeout=10) == -9
    finally:
        plugin.kill()
        plugin.wait()
    assert sorted(p.name for p in work.iterdir()) == ["etl-not-ours"]


def test_a_plan_that_replaces_a_stateful_resource_is_refused_unless_allowed(fixture_tree):
    provisioner, _ = fixture_tree
    provisioner.provision("etl")

    with pytest.raises(DestructivePlanError, match=r"terraform_data\.database \(replace\)"):
        provisioner.provision("etl", variables={"generation": "2"})
    assert provisioner.pending_changes("etl") == []  # nothing was applied

    provisioner.provision("etl", variables={"generation": "2"}, allow_destroy=True)
    assert provisioner.pending_changes("etl", {"generation": "2"}) == []


def test_reading_outputs_of_a_root_never_applied_names_the_dag_that_applies_it(fixture_tree):
    provisioner, _ = fixture_tree
    with pytest.raises(ProvisioningError, match="batch_training_data"):
        provisioner.provision("etl", apply=False)


def test_a_failed_plan_reports_terraform_diagnostics(fixture_tree):
    provisioner, tmp = fixture_tree
    (tmp / "terraform" / "etl" / "broken.tf").write_text('resource "terraform_data" "x" {\n  input = var.nope\n}\n')
    with pytest.raises(ProvisioningError, match="Reference to undeclared input variable"):
        provisioner.provision("etl")


def test_preflight_names_what_is_missing(fixture_tree):
    provisioner, _ = fixture_tree
    with pytest.raises(ProvisioningError, match="unknown pipeline"):
        provisioner.provision("nope")
    provisioner.binary = "/nonexistent/terraform"
    with pytest.raises(ProvisioningError, match="not found"):
        provisioner.provision("etl")


def test_the_plugin_mirror_is_found_or_named(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io").mkdir(parents=True)
    assert find_plugin_mirror({"TF_PLUGIN_MIRROR": str(mirror)}) == mirror
    with pytest.raises(ProvisioningError, match=r"no registry\.terraform\.io"):
        find_plugin_mirror({"TF_PLUGIN_MIRROR": str(tmp_path)})


def test_a_stray_registry_folder_is_never_taken_for_the_mirror(tmp_path, monkeypatch, request):
    """Only TF_PLUGIN_MIRROR and the exact places Terraform and this project's machines use: a decoy
    ``registry.terraform.io`` anywhere else (two levels under a folder of the file system, as a search would find it)
    is ignored."""
    from recsys.provisioning import terraform as terraform_module

    decoy = Path(tempfile.mkdtemp(dir="/tmp", prefix="decoy-"))  # two levels under /, where a search would look
    request.addfinalizer(lambda: shutil.rmtree(decoy))
    (decoy / "registry.terraform.io").mkdir()
    home = tmp_path / "home"
    home.mkdir()
    places = (str(tmp_path / "nothing-here"),)
    monkeypatch.setattr(terraform_module, "MIRROR_PLACES", ("~/.terraform.d/plugins", *places), raising=False)
    assert find_plugin_mirror({"HOME": str(home)}) is None
    (home / ".terraform.d" / "plugins" / "registry.terraform.io").mkdir(parents=True)
    assert find_plugin_mirror({"HOME": str(home)}) == home / ".terraform.d" / "plugins"


def test_apply_part_creates_only_the_addresses_and_leaves_the_rest_to_the_whole_apply(fixture_tree, caplog):
    provisioner, tmp = fixture_tree
    (tmp / "terraform" / "etl" / "parts.tf").write_text(
        'resource "terraform_data" "slow" {\n  input = "made early"\n}\n\n'
        'resource "terraform_data" "rest" {\n  input = terraform_data.slow.output\n}\n'
    )
    caplog.set_level(logging.INFO)

    changes = provisioner.apply_part("etl", ["terraform_data.rest"], {"db_password": SECRET})

    # what the address depends on comes with it; nothing else, and no outputs
    assert changes == ["terraform_data.rest (create)", "terraform_data.slow (create)"]
    assert "-target=terraform_data.rest" in caplog.text
    pending = provisioner.pending_changes("etl")
    assert [change for change in pending if not change.startswith("output.")] == ["terraform_data.database (create)"]
    assert {change for change in pending if change.startswith("output.")} == {
        f"output.{name} (create)" for name in (*OUTPUTS["etl"], "db_password")
    }
    assert provisioner.apply_part("etl", ["terraform_data.slow"]) == []  # done already: nothing applied
    # the whole apply after it creates only the rest
    caplog.clear()
    provisioner.provision("etl")
    assert "Resources: 1 added, 0 changed, 0 destroyed" in caplog.text
    assert SECRET not in caplog.text


def test_apply_part_refuses_to_destroy_a_stateful_resource_and_needs_an_address(fixture_tree):
    provisioner, _ = fixture_tree
    provisioner.provision("etl")
    with pytest.raises(DestructivePlanError, match=r"terraform_data\.database \(replace\)"):
        provisioner.apply_part("etl", ["terraform_data.database"], {"generation": "2"})
    assert provisioner.pending_changes("etl") == []
    with pytest.raises(ProvisioningError, match="at least one address"):
        provisioner.apply_part("etl", [])


def test_the_local_target_plugs_in_from_the_local_platform():
    from recsys.provisioning import ProvisioningError
    from recsys.provisioning.targets import AwsTarget, target_for
    from recsys_local.target import FACTORY, LocalTarget

    assert isinstance(target_for({"RECSYS_TARGET": "local", "RECSYS_TARGET_FACTORY": FACTORY}), LocalTarget)
    with pytest.raises(ProvisioningError, match="RECSYS_TARGET=local needs RECSYS_TARGET_FACTORY"):
        target_for({"RECSYS_TARGET": "local"})  # production names no local target of its own
    plugged = target_for({"RECSYS_TARGET": "local", "RECSYS_TARGET_FACTORY": "recsys.provisioning.targets:AwsTarget"})
    assert isinstance(plugged, AwsTarget)
    with pytest.raises(ProvisioningError, match=r"RECSYS_TARGET_FACTORY='nowhere:Target' cannot be loaded"):
        target_for({"RECSYS_TARGET": "local", "RECSYS_TARGET_FACTORY": "nowhere:Target"})
    with pytest.raises(ProvisioningError, match="RECSYS_TARGET='gcp': input should be 'local' or 'aws'"):
        target_for({"RECSYS_TARGET": "gcp"})


def test_a_worker_without_recsys_target_refuses_naming_it():
    """Unset, the target is not guessed: a worker of an AWS deployment that forgot it would otherwise provision the
    local stack's account (issue 34, part 5)."""
    from recsys.provisioning.targets import target_for

    with pytest.raises(ProvisioningError, match="RECSYS_TARGET is not set: aws on the workers"):
        target_for({})
    from recsys.config import platform_names

    assert platform_names({}).account is None  # no account is made up either
