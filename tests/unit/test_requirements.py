"""What a deployment installs (requirements.txt) fits a managed Airflow: it pins neither Airflow nor what Airflow's
constraints pin, and it resolves together with apache-airflow==3.3.2 against the lock the tests run on."""

from __future__ import annotations

import json
import subprocess
import sys

from packaging.requirements import Requirement
from source_tree import PRODUCTION, SERVING, imports, python_files

from recsys.config import project_root

REQUIREMENTS = project_root() / "requirements.txt"
#: Pinned on purpose: in no Airflow constraints file (no provider depends on it), and the pin is the CPU build's
#: version the runtime image takes from PyTorch's CPU index.
PINNED = {"torch"}


def requirements() -> list[Requirement]:
    lines = [line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def test_the_deployment_requirements_pin_neither_airflow_nor_what_its_constraints_pin():
    names = {r.name.lower() for r in requirements()}
    assert not names & {"apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk"}
    pinned = {r.name.lower() for r in requirements() if r.specifier}
    assert pinned == PINNED


def test_the_ranking_peers_are_dev_dependencies_only():
    """implicit (ALS, BPR, item-kNN: the ranking benchmark's peers) is in the dev requirements and the lock, never in
    what a deployment or the Lambdas install, and no production or serving module imports it."""
    root = project_root()
    assert "implicit" not in {r.name.lower() for r in requirements()}
    lambda_lines = (root / "include/recsys_serving/lambda-requirements.txt").read_text().splitlines()
    assert not [line for line in lambda_lines if line.split("#", 1)[0].strip().lower().startswith("implicit")]
    assert "implicit==" in (root / "requirements-dev.txt").read_text()
    reached = [
        f"{path}:{line}"
        for path in python_files(*PRODUCTION, SERVING)
        for line, module in imports(path)
        if module.partition(".")[0] == "implicit"
    ]
    assert reached == []


def test_torch_comes_from_pytorchs_cpu_index():
    """The file carries the index line (a managed Airflow's pip reads it): without it, pip on Linux x86_64 takes
    PyPI's torch of the same version, with its CUDA libraries."""
    options = [line.split() for line in REQUIREMENTS.read_text().splitlines() if line.startswith("-")]
    assert options == [["--extra-index-url", "https://download.pytorch.org/whl/cpu"]]
    (torch,) = [r for r in requirements() if r.name == "torch"]
    assert torch.specifier.contains("2.13.0+cpu"), "the pin admits the CPU build's local version"


def test_the_deployment_requirements_resolve_with_airflow_3_3_2_against_the_lock(tmp_path):
    """pip, offline (--no-index), in the environment `make setup` installed from requirements-lock.txt: every
    requirement is met by the lock's versions beside Airflow 3.3.2, nothing would be installed or changed."""
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--quiet", "--report", str(report)]
    result = subprocess.run(
        [*command, "-r", str(REQUIREMENTS), "apache-airflow==3.3.2"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]] == []
    # the check can fail: a pin the lock does not hold cannot be resolved offline
    result = subprocess.run([*command, "pandas==2.2.0", "apache-airflow==3.3.2"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "pandas==2.2.0" in result.stderr


def test_the_lambdas_settings_loader_is_the_version_the_workers_run():
    """The serving package's settings loader (pydantic-settings and what it needs) is pinned in the Lambdas' lock at
    the versions of requirements-lock.txt: one loader, one behaviour, in every home."""

    def pins(path: str) -> dict[str, str]:
        found = {}
        for line in (project_root() / path).read_text().splitlines():
            requirement = line.split("#", 1)[0].split(" --hash", 1)[0].strip()
            if "==" in requirement:
                name, _, version = requirement.partition("==")
                found[name.lower().replace("_", "-")] = version.strip()
        return found

    lambdas, lock = pins("include/recsys_serving/lambda-requirements.txt"), pins("requirements-lock.txt")
    loader = {"pydantic", "pydantic-core", "pydantic-settings", "annotated-types", "typing-inspection", "python-dotenv"}
    assert loader <= set(lambdas)
    assert {name: lambdas[name] for name in loader} == {name: lock[name] for name in loader}
