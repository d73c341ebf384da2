"""`make setup` (scripts/setup.sh) stops, saying how to install Terraform, when there is no usable one. The check
comes first; PATH holds only the tools it uses, so no machine's own terraform is found, and a run past the check stops
at the next step (no dpkg, apt-get, sudo or python on that PATH), having changed nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).parents[2] / "scripts" / "setup.sh"
HOW = "install Terraform >= 1.10 on the PATH (https://developer.hashicorp.com/terraform/install), or set TERRAFORM_BIN"


def setup(tmp_path: Path, terraform_bin: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("bash", "dirname", "sed", "sh", "env"):
        (tools / tool).symlink_to(shutil.which(tool))
    env = {"PATH": str(tools), "HOME": str(tmp_path)}
    if terraform_bin is not None:
        env["TERRAFORM_BIN"] = terraform_bin
    return subprocess.run([str(tools / "bash"), str(SETUP), *args], env=env, capture_output=True, text=True, timeout=30)


def fake_terraform(tmp_path: Path, says: str) -> str:
    binary = tmp_path / "terraform"
    binary.write_text(f"#!/bin/sh\necho '{says}'\n")
    binary.chmod(0o755)
    return str(binary)


@pytest.mark.parametrize("terraform_bin", [None, ""], ids=["unset", "empty"])
def test_setup_stops_without_terraform_on_the_path(tmp_path, terraform_bin):
    result = setup(tmp_path, terraform_bin)

    assert result.returncode == 1
    assert "[setup] error: terraform is not on the PATH" in result.stderr
    assert HOW in result.stderr


def test_setup_stops_when_terraform_bin_is_not_an_executable(tmp_path):
    result = setup(tmp_path, str(tmp_path / "nowhere" / "terraform"))

    assert result.returncode == 1
    assert f"TERRAFORM_BIN={tmp_path}/nowhere/terraform is not an executable" in result.stderr
    assert HOW in result.stderr


@pytest.mark.parametrize(
    ("says", "error"),
    [
        ("Terraform v1.9.8", "is Terraform 1.9"),
        ("Terraform v0.15.5", "is Terraform 0.15"),
        ("OpenTofu v1.10.0", "version` does not name a Terraform version"),
    ],
)
def test_setup_stops_on_a_terraform_older_than_1_10_or_none(tmp_path, says, error):
    result = setup(tmp_path, fake_terraform(tmp_path, says))

    assert result.returncode == 1
    assert error in result.stderr
    assert HOW in result.stderr


@pytest.mark.parametrize("says", ["Terraform v1.10.0", "Terraform v1.11.4\non linux_amd64", "Terraform v2.0.0", None])
def test_setup_goes_on_with_terraform_1_10_or_later(tmp_path, says):
    """None: this machine's own terraform (TERRAFORM_BIN, else the PATH's), so the check reads a real answer. The run
    then stops at the next step, the Debian packages, for want of every other tool on this PATH."""
    binary = shutil.which(os.environ.get("TERRAFORM_BIN") or "terraform") if says is None else None
    assert says is not None or binary, "terraform is not installed: `make setup` requires it"

    result = setup(tmp_path, fake_terraform(tmp_path, says) if says is not None else binary)

    assert "Terraform" not in result.stderr, result.stderr
    assert "[setup] error: these Debian packages are missing" in result.stderr


def test_the_python_only_setup_of_make_package_needs_no_terraform_and_no_debian_package(tmp_path):
    """`make package` builds the Lambda zips on any machine with Python: past Terraform and apt, it stops at the next
    step here only because this PATH has no python3 (nothing of the local stack was asked for)."""
    result = setup(tmp_path, None, "--python-only")

    assert "terraform" not in result.stderr.lower()
    assert "Debian packages" not in result.stdout + result.stderr
    assert "python3" in result.stderr  # the next step: the Python check (no python3 on this PATH)
    assert result.returncode != 0
