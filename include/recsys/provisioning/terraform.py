"""Run a pipeline's Terraform root in automation (HashiCorp's recommended workflow).

``terraform/<pipeline>/`` is a separate root per pipeline (its own state key), so a DAG never needs ``-target``:

    terraform init  -input=false -backend-config=$TF_BACKEND_CONFIG
    terraform plan  -input=false -out=tfplan -var-file=$TF_VAR_FILE
    terraform apply -input=false tfplan          (same task, same working directory)
    terraform output -json                       (non-sensitive outputs only go to XCom)

Settings (environment of the Airflow workers): ``TERRAFORM_BIN`` (default ``terraform`` on PATH),
``TF_BACKEND_CONFIG`` (an ``.hcl`` file with bucket/key prefix/region of the S3 state backend; required),
``TF_VAR_FILE`` (optional ``terraform.tfvars``), ``TERRAFORM_DIR`` (default: the repository's ``terraform/``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from recsys.config import project_root
from recsys.provisioning import PIPELINES, ProvisioningError, check_outputs

log = logging.getLogger(__name__)


class TerraformProvisioner:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ) if env is None else env
        self.binary = self.env.get("TERRAFORM_BIN", "terraform")
        self.root = Path(self.env.get("TERRAFORM_DIR", str(project_root() / "terraform")))

    def _run(self, workdir: Path, *args: str) -> str:
        env = {**self.env, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
        log.info("terraform %s (in %s)", " ".join(args), workdir)
        result = subprocess.run([self.binary, *args], cwd=workdir, env=env, capture_output=True, text=True, check=False)
        if result.stdout:
            log.info("%s", result.stdout[-20000:])
        if result.returncode != 0:
            raise ProvisioningError(f"terraform {args[0]} failed in {workdir}:\n{result.stderr[-5000:]}")
        return result.stdout

    def preflight(self, pipeline: str) -> Path:
        if pipeline not in PIPELINES:
            raise ProvisioningError(f"unknown pipeline {pipeline!r}; expected one of {', '.join(PIPELINES)}")
        if shutil.which(self.binary) is None:
            raise ProvisioningError(
                f"Terraform binary {self.binary!r} not found on the worker's PATH: install Terraform >= 1.10 in the "
                "Airflow image or set TERRAFORM_BIN"
            )
        backend = self.env.get("TF_BACKEND_CONFIG", "")
        if not backend or not Path(backend).is_file():
            raise ProvisioningError(
                "TF_BACKEND_CONFIG must name an existing backend file (bucket, region, use_lockfile); see "
                "terraform/backend.hcl.example"
            )
        workdir = self.root / pipeline
        if not (workdir / "main.tf").is_file():
            raise ProvisioningError(f"no Terraform root at {workdir}")
        return workdir

    def provision(self, pipeline: str, apply: bool = True, variables: dict[str, str] | None = None) -> dict[str, Any]:
        workdir = self.preflight(pipeline)
        backend = self.env["TF_BACKEND_CONFIG"]
        self._run(
            workdir,
            "init",
            "-input=false",
            "-no-color",
            f"-backend-config={backend}",
            f"-backend-config=key={pipeline}/terraform.tfstate",
        )
        if apply:
            plan_args = ["plan", "-input=false", "-no-color", "-out=tfplan"]
            if self.env.get("TF_VAR_FILE"):
                plan_args.append(f"-var-file={self.env['TF_VAR_FILE']}")
            plan_args += [f"-var={name}={value}" for name, value in (variables or {}).items()]
            self._run(workdir, *plan_args)
            self._run(workdir, "apply", "-input=false", "-no-color", "tfplan")
        raw = json.loads(self._run(workdir, "output", "-json", "-no-color"))
        outputs = {name: item["value"] for name, item in raw.items() if not item.get("sensitive")}
        return check_outputs(pipeline, outputs)
