"""Static checks of terraform/: parsed and cross-checked with the DAGs' names, fmt/validate with the real binary
(offline, from the provider mirror and the committed lock files), checkov. Applying the roots: test_apply.py."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest

from recsys.config import GLUE_VERSION, NAME_TEMPLATES, project_root
from recsys.etl.glue_job import TRAINING_SCHEMA
from recsys.provisioning import ADMIN_ROOTS, OUTPUTS, OWNER_DAGS, PIPELINES
from recsys.provisioning.targets import AwsTarget
from recsys.provisioning.terraform import TerraformProvisioner
from recsys.streaming.packaging import FUNCTIONS
from recsys_local.demo import EARLY_APPLIES

TF = project_root() / "terraform"
#: Roots an administrator applies, never a DAG (docs/aws-deployment.md, step 0).
ROOTS = [TF / root for root in (*PIPELINES, *ADMIN_ROOTS)]
MODULES = sorted(p for p in (TF / "modules").iterdir() if p.is_dir())
ALL_DIRS = ROOTS + MODULES


def unq(value: str) -> str:
    return value[1:-1] if isinstance(value, str) and value.startswith('"') and value.endswith('"') else value


def load_dir(folder: Path) -> dict[str, list]:
    merged: dict[str, list] = {}
    for path in sorted(folder.glob("*.tf")):
        with open(path) as handle:
            for key, value in hcl2.load(handle).items():
                merged.setdefault(key, []).extend(value)
    return merged


def blocks(parsed: dict[str, list], kind: str) -> dict[str, dict]:
    return {unq(name): body for block in parsed.get(kind, []) for name, body in block.items()}


def text_of(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.glob("*.tf")))


def locals_of(parsed: dict[str, list]) -> dict[str, object]:
    return {k: v for block in parsed.get("locals", []) for k, v in block.items() if k != "__is_block__"}


@pytest.mark.parametrize("path", sorted(TF.rglob("*.tf")), ids=lambda p: str(p.relative_to(TF)))
def test_every_file_parses(path):
    with open(path) as handle:
        assert isinstance(hcl2.load(handle), dict)


@pytest.mark.parametrize("folder", ALL_DIRS, ids=lambda p: p.name)
def test_every_referenced_variable_and_local_exists(folder):
    parsed, text = load_dir(folder), text_of(folder)
    declared = set(blocks(parsed, "variable"))
    used = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)", text))
    assert used - declared == set(), f"undeclared variables in {folder.name}"
    local_names = set(locals_of(parsed))
    used_locals = set(re.findall(r"\blocal\.([A-Za-z_][A-Za-z0-9_]*)", text))
    assert used_locals - local_names == set(), f"undefined locals in {folder.name}"


@pytest.mark.parametrize("folder", ALL_DIRS, ids=lambda p: p.name)
def test_module_calls_match_the_modules(folder):
    parsed, text = load_dir(folder), text_of(folder)
    calls = blocks(parsed, "module")
    for name, call in calls.items():
        target = (folder / unq(call["source"])).resolve()
        module = load_dir(target)
        variables = blocks(module, "variable")
        inputs = {k for k in call if k not in ("source", "__is_block__", "depends_on", "providers")}
        assert inputs - set(variables) == set(), f"{folder.name}: module {name} has no such inputs"
        required = {v for v, body in variables.items() if "default" not in body}
        assert required - inputs == set(), f"{folder.name}: module {name} misses required inputs"
        outputs = set(blocks(module, "output"))
        used = set(re.findall(rf"\bmodule\.{name}\.([A-Za-z_][A-Za-z0-9_]*)", text))
        assert used - outputs == set(), f"{folder.name}: module {name} has no such outputs"


def resolves(folder: Path, address: str) -> bool:
    """Whether a resource or module address (``module.a.module.b``, ``module.a.type.name``) names a block."""
    parts = address.split(".")
    parsed = load_dir(folder)
    if parts[0] == "module":
        call = blocks(parsed, "module").get(parts[1])
        if call is None:
            return False
        return len(parts) == 2 or resolves((folder / unq(call["source"])).resolve(), ".".join(parts[2:]))
    resources = {
        (unq(kind), unq(name)) for block in parsed.get("resource", []) for kind, body in block.items() for name in body
    }
    return len(parts) == 2 and (parts[0], parts[1]) in resources


@pytest.mark.parametrize("dag_id", sorted(EARLY_APPLIES))
def test_the_demos_early_applies_name_resources_of_the_root_that_dag_applies(dag_id):
    pipeline, addresses = EARLY_APPLIES[dag_id]
    assert OWNER_DAGS[pipeline] == dag_id
    for address in addresses or ():
        assert resolves(TF / pipeline, address), f"{address} is no block of terraform/{pipeline}"
    assert not resolves(TF / pipeline, "module.streaming_inference.aws_kinesis_stream.nope")


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_roots_declare_the_outputs_the_dags_read(pipeline):
    outputs = set(blocks(load_dir(TF / pipeline), "output"))
    assert set(OUTPUTS[pipeline]) <= outputs


def test_terraform_names_equal_the_dags_names():
    names = locals_of(load_dir(TF / "etl"))["names"]
    rendered = {
        key: unq(value)
        .replace("${var.project_prefix}", "{prefix}")
        .replace("${local.account_id}", "{account}")
        .replace("${local.prefix_underscored}", "{prefix_underscored}")
        for key, value in names.items()
        if key != "__is_block__"
    }
    assert rendered == NAME_TEMPLATES


@pytest.mark.parametrize("folder", ALL_DIRS, ids=lambda p: p.name)
def test_no_secret_is_a_default_or_an_output(folder):
    parsed = load_dir(folder)
    secretish = re.compile(r"password|secret(?!_arn)|token|private_key", re.IGNORECASE)
    for name, body in blocks(parsed, "variable").items():
        if secretish.search(name):
            assert "default" not in body, f"variable {name} has a default"
    for name, body in blocks(parsed, "output").items():
        assert not secretish.search(name), f"output {name} looks secret"
        assert "random_password" not in str(body.get("value")), f"output {name} exposes a generated password"


def test_the_lab_resources_exist():
    text = "\n".join(text_of(folder) for folder in MODULES)
    for resource in (
        "aws_glue_job",
        "aws_glue_connection",
        "aws_glue_catalog_database",
        "aws_db_instance",
        "aws_glue_catalog_table",
        "aws_lambda_alias",
        "aws_kinesis_stream",
        "aws_kinesis_firehose_delivery_stream",
        "aws_lambda_function",
        "aws_cloudwatch_log_group",
        "aws_s3_bucket_public_access_block",
    ):
        assert f'resource "{resource}"' in text, resource
    assert "error_output_prefix" in text
    assert "!{timestamp:yyyy/MM/dd/HH}/" in text


def test_checkov_reports_no_failed_checks():
    checkov = project_root() / ".venv-checkov" / "bin" / "checkov"
    assert checkov.exists(), "checkov is installed by `make setup` into .venv-checkov"
    result = subprocess.run(
        [str(checkov), "-d", str(TF), "--framework", "terraform", "--quiet", "--compact", "--skip-download"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    summary = re.search(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", result.stdout)
    assert summary, result.stdout[-3000:] + result.stderr[-3000:]
    assert int(summary.group(2)) == 0, result.stdout[-5000:]
    assert result.returncode == 0, result.stdout[-3000:]


def test_every_checkov_skip_has_a_reason():
    for path in TF.rglob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                assert re.search(r"checkov:skip=CKV2?_AWS_\d+:\S.{10,}", line), f"{path}: {line.strip()}"


def terraform(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_fmt_check_passes():
    result = terraform(
        "fmt", "-check", "-recursive", "-no-color", cwd=TF, env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull}
    )
    assert result.returncode == 0, f"terraform fmt would change: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_root_validates_with_the_locked_provider(pipeline, tmp_path):
    provisioner = TerraformProvisioner({**os.environ, "TERRAFORM_WORK_DIR": str(tmp_path)}, target=AwsTarget({}))
    with provisioner.workspace(pipeline) as workdir:
        args = ["init", "-backend=false", "-input=false", "-no-color", "-lockfile=readonly"]
        if provisioner.mirror() is not None:
            args.append(f"-plugin-dir={provisioner.mirror()}")
        env = provisioner._command_env(workdir)
        init = terraform(*args, cwd=workdir, env=env)
        assert init.returncode == 0, init.stderr
        result = terraform("validate", "-no-color", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("root", ADMIN_ROOTS)
def test_every_admin_root_validates_with_the_locked_provider(root, tmp_path):
    shutil.copytree(TF, tmp_path / "terraform", symlinks=True, ignore=shutil.ignore_patterns(".terraform"))
    workdir = tmp_path / "terraform" / root
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_DATA_DIR": str(tmp_path / "tf-data")}
    args = ["init", "-backend=false", "-input=false", "-no-color", "-lockfile=readonly"]
    mirror = TerraformProvisioner(dict(os.environ), target=AwsTarget({})).mirror()
    if mirror is not None:
        args.append(f"-plugin-dir={mirror}")
    init = terraform(*args, cwd=workdir, env=env)
    assert init.returncode == 0, init.stderr
    result = terraform("validate", "-no-color", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("pipeline", [*PIPELINES, *ADMIN_ROOTS])
def test_each_root_has_a_lock_file_for_the_same_provider(pipeline):
    lock = (TF / pipeline / ".terraform.lock.hcl").read_text()
    assert 'provider "registry.terraform.io/hashicorp/aws"' in lock
    assert lock == (TF / "etl" / ".terraform.lock.hcl").read_text(), "every root pins the same provider build"
    assert "hashicorp/random" not in lock


def test_glue_version_is_one_constant():
    variables = blocks(load_dir(TF / "etl"), "variable")
    assert unq(variables["glue_version"]["default"]) == GLUE_VERSION


def test_the_catalog_table_columns_are_the_data_contract():
    columns = locals_of(load_dir(TF / "etl"))["training_columns"]
    expected = [{"name": name, "type": kind} for name, kind in TRAINING_SCHEMA if name != "customerNumber"]
    assert [{"name": unq(c["name"]), "type": unq(c["type"])} for c in columns] == expected


def test_every_lambda_handler_is_packaged():
    text = text_of(TF / "modules" / "streaming_inference")
    handlers = dict(re.findall(r'(\w+) = \{\s*name\s*=[^}]*?handler\s*=\s*"([^"]+)"', text, re.S))
    assert set(handlers) == set(FUNCTIONS)
    for function, handler in handlers.items():
        module, _, attribute = handler.rpartition(".")
        assert module == FUNCTIONS[function], f"{function}: Terraform's handler {handler} is not the packaged one"
        assert callable(getattr(importlib.import_module(module), attribute)), handler


def test_prefix_validation_refuses_what_s3_refuses():
    condition = str(blocks(load_dir(TF / "shared"), "variable")["project_prefix"]["validation"])
    for rule in ('"--"', "xn-", "sthree-"):
        assert rule in condition


@pytest.mark.parametrize(
    ("prefix", "accepted"),
    [("de-c1w4", True), ("abc", True), ("de--c1w4", False), ("xn-abc", False), ("sthree-abc", False), ("De", False)],
)
def test_prefix_validation_runs_in_terraform(prefix, accepted, tmp_path):
    shutil.copy(TF / "shared" / "common_variables.tf", tmp_path / "variables.tf")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_DATA_DIR": str(tmp_path / ".tf")}
    assert terraform("init", "-backend=false", "-input=false", "-no-color", cwd=tmp_path, env=env).returncode == 0
    variables = [
        "-var",
        f"project_prefix={prefix}",
        "-var",
        "vpc_id=vpc-0a",
        "-var",
        'private_subnet_ids=["subnet-0a","subnet-0b"]',
        "-var",
        "airflow_workers_security_group_id=sg-0a",
    ]
    result = terraform("plan", "-input=false", "-no-color", *variables, cwd=tmp_path, env=env)
    assert (result.returncode == 0) == accepted, result.stderr
    if not accepted:
        assert "project_prefix must be" in result.stderr


def resource_text(module: str, kind: str, name: str) -> str:
    text = text_of(TF / "modules" / module)
    start = text.index(f'resource "{kind}" "{name}"')
    return text[start : text.index("\n}\n", start)]


def test_review_findings_stay_fixed():
    streaming = text_of(TF / "modules" / "streaming_inference")
    # Active tracing needs the X-Ray write policy on the function's role.
    assert 'mode = "Active"' in streaming
    assert "AWSXRayDaemonWriteAccess" in streaming
    # Firehose processor: only non-default parameters (defaults are not kept in state: drift on every plan).
    for default in ("BufferSizeInMBs", "BufferIntervalInSeconds", "NumberOfRetries"):
        assert default not in streaming
    # Reserved concurrency defaults to unreserved (a new account's quota is 10 in all).
    variables = blocks(load_dir(TF / "streaming_inference"), "variable")
    assert variables["lambda_reserved_concurrency"]["default"] == -1
    # RDS: a major version (minor versions are RDS's), a password RDS manages, snapshot choice independent.
    db = resource_text("vector_db", "aws_db_instance", "this")
    assert "manage_master_user_password" in db
    assert "password " not in db.replace("manage_master_user_password", "")
    assert "skip_final_snapshot                 = var.skip_final_snapshot" in db
    assert unq(blocks(load_dir(TF / "vector_db"), "variable")["vector_db_engine_version"]["default"]) == "16"
    # --enable-metrics needs cloudwatch:PutMetricData, limited to Glue's namespace.
    etl = text_of(TF / "modules" / "etl")
    assert '"--enable-metrics"' in etl
    assert '"cloudwatch:PutMetricData"' in etl
    assert '"cloudwatch:namespace"' in etl
    # The job does not claim the catalog: Terraform's table does.
    assert "--catalog_database" not in etl
    assert 'resource "aws_glue_catalog_table"' in etl


def test_the_example_and_step_1_name_every_security_group_variable():
    """Part 4: an operator fills every security-group variable of every root from the example, following step 1."""
    names = {
        unq(name) for root in ROOTS for name in blocks(load_dir(root), "variable") if "security_group" in unq(name)
    }
    assert names >= {"source_db_security_group_id", "airflow_workers_security_group_id"}
    example = (TF / "terraform.tfvars.example").read_text()
    step_1 = (project_root() / "docs" / "aws-deployment.md").read_text().split("\n1. ", 1)[1].split("\n2. ", 1)[0]
    for name in sorted(names):
        assert re.search(rf"(?m)^#?\s*{name}\s*=", example), f"terraform.tfvars.example has no line for {name}"
        assert f"`{name}`" in step_1, f"docs/aws-deployment.md step 1 does not name {name}"


def test_the_prerequisites_name_a_way_out_for_every_service_called_from_the_private_subnets():
    """Part 4: every AWS service the workers, Glue or the Lambdas call from private subnets has its VPC endpoint (or
    the NAT route) in the prerequisites' table, with who calls it."""
    page = (project_root() / "docs" / "aws-deployment.md").read_text()
    table = page.split("| endpoint | called from the private subnets by |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1:3] for line in table.splitlines()[2:] if line.startswith("|")]
    covered = {name.strip().split(" (")[0]: callers for cell, callers in rows for name in cell.split(",")}
    needed = {
        "S3": ("workers", "Glue", "Lambdas"),
        "STS": ("workers",),
        "Secrets Manager": ("workers", "Glue", "Lambdas"),
        "KMS": ("workers", "Glue"),
        "CloudWatch Logs": ("workers", "Glue"),
        "CloudWatch monitoring": ("Glue",),
        "Glue": ("workers",),
        "Lambda": ("workers",),
        "Kinesis": ("workers",),
        "Firehose": ("workers",),
        "RDS": ("workers",),
        "EC2": ("workers",),
        "IAM": ("workers",),
        "X-Ray": ("Lambdas",),  # the functions trace actively (tracing_config Active)
    }
    for service, callers in needed.items():
        assert service in covered, f"no row for {service} in the prerequisites' endpoint table"
        for caller in callers:
            assert caller in covered[service], f"{service}'s row does not name the {caller}"
    assert "IAM is global and has no interface endpoint" in page
