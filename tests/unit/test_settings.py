"""The environment the code reads, against docs/configuration.md: production code reads it only through
``recsys.config.Settings``, whose variables are the "Airflow workers" table; the Lambdas read exactly the "Lambdas'
environment" table; what the local platform reads is in its table. A variable read and not documented (or documented
and never read) fails here, by name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from recsys.config import Settings, platform_names, project_root, settings

ROOT = project_root()
PAGE = ROOT / "docs" / "configuration.md"
PRODUCTION = [ROOT / "include" / "recsys", ROOT / "dags", ROOT / "plugins"]
#: The Glue script is standalone (Glue runs it): the variables it reads are the local Glue executor's.
STANDALONE = ROOT / "include" / "recsys" / "etl" / "glue_job.py"
#: Variables of other programs (the shell's, Java's, Airflow's, the Lambda runtime's) that code reads, not settings.
NOT_SETTINGS = {"PATH", "HOME", "JAVA_HOME", "LAMBDA_TASK_ROOT", "AIRFLOW__LOGGING__LOGGING_LEVEL", "TMPDIR"}
#: Files that may build Settings at import (parse) time, and why: docs/configuration.md and recsys.config say which.
PARSE_TIME = {"include/recsys/dag_defaults.py", "dags/vector_db_embeddings.py"}


def tables() -> dict[str, list[str]]:
    """Section heading -> variable names of its table, in order (a row may name several: `A` / `B`)."""
    found: dict[str, list[str]] = {}
    heading = ""
    for line in PAGE.read_text().splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("| `"):
            first = line.split("|")[1]
            found.setdefault(heading, []).extend(re.findall(r"`([A-Z][A-Z0-9_]+)`", first))
    return found


def table(prefix: str) -> list[str]:
    matches = [names for heading, names in tables().items() if heading.startswith(prefix)]
    assert len(matches) == 1, f"docs/configuration.md needs one table under a heading starting {prefix!r}"
    return matches[0]


def environment_reads(path: Path) -> list[tuple[int, str]]:
    """(line, variable) of literal reads: os.environ.get/[...], os.getenv, and ``env``/``self.env`` .get/[...]."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        target, key = None, None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            if node.func.attr in ("get", "pop") or (node.func.attr == "getenv"):
                target, key = node.func.value, node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            target, key = node.value, node.slice
        if target is None or not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            continue
        source = ast.unparse(target)
        if source in ("os.environ", "os", "env", "self.env", "environ") and re.fullmatch(r"[A-Z][A-Z0-9_]+", key.value):
            found.append((node.lineno, key.value))
    return found


def python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_settings_variables_are_the_airflow_workers_table_each_once():
    documented = table("Airflow workers")
    assert sorted(documented) == sorted(set(documented)), "a variable is listed twice"
    assert set(documented) == set(Settings.variables())


def test_production_code_reads_the_environment_only_through_settings():
    outside = []
    for path in python_files(*PRODUCTION):
        if path in (STANDALONE, ROOT / "include" / "recsys" / "config.py"):
            continue
        text = path.read_text()
        relative = path.relative_to(ROOT).as_posix()
        outside += [f"{relative}:{line} reads {name}" for line, name in environment_reads(path)]
        outside += [f"{relative} calls os.getenv" for _ in re.findall(r"\bos\.getenv\(", text)]
    assert outside == [], f"read it through recsys.config.settings() and document it: {outside}"


def test_only_the_parse_time_files_read_settings_at_import():
    at_import = []
    for path in python_files(*PRODUCTION):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level statements only: a def's body runs when a task runs
            for call in ast.walk(node):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    break
                if isinstance(call, ast.Call) and ast.unparse(call.func) in ("settings", "platform_names"):
                    at_import.append(path.relative_to(ROOT).as_posix())
    assert set(at_import) == PARSE_TIME


def test_the_lambdas_read_exactly_their_table():
    serving = ROOT / "include" / "recsys_serving"
    read = {name for path in python_files(serving) for _, name in environment_reads(path)} - NOT_SETTINGS
    documented = table("The Lambdas' environment")
    assert sorted(documented) == sorted(set(documented)), "a variable is listed twice"
    assert read == set(documented)
    terraform = (ROOT / "terraform" / "modules" / "streaming_inference" / "main.tf").read_text()
    environment = terraform[terraform.index("environment {") :]
    set_by_terraform = set(re.findall(r"^\s+([A-Z][A-Z0-9_]+)\s+=", environment, flags=re.MULTILINE))
    assert set_by_terraform <= read, "Terraform sets a variable the Lambdas never read"


def test_what_the_local_platform_reads_is_documented():
    from recsys_local.settings import LOCAL_STACK_ENV

    read = {name for path in python_files(ROOT / "local", STANDALONE.parent) for _, name in environment_reads(path)}
    read |= set(LOCAL_STACK_ENV)
    documented = {name for names in tables().values() for name in names}
    assert sorted(read - NOT_SETTINGS - documented) == []


def test_a_bad_value_names_its_variable_and_empty_means_unset():
    with pytest.raises(ValueError, match=r"RECSYS_TASK_RETRIES='two'"):
        settings({"RECSYS_TASK_RETRIES": "two"})
    with pytest.raises(ValueError, match=r"VECTOR_DB_KEEP_VERSIONS='-1'"):
        settings({"VECTOR_DB_KEEP_VERSIONS": "-1"})
    with pytest.raises(ValueError, match="RECSYS_TARGET='gcp'"):
        settings({"RECSYS_TARGET": "gcp"})
    chosen = settings({"RECSYS_TASK_RETRIES": "", "TERRAFORM_DIR": "/srv/tf", "RECSYS_RETRY_DELAY_SECONDS": "0.5"})
    assert (chosen.task_retries, chosen.terraform_dir, chosen.retry_delay_seconds) == (2, Path("/srv/tf"), 0.5)
    assert platform_names({"RECSYS_TARGET": "aws"}).account is None


def test_the_reads_check_sees_every_form(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "a = os.environ.get('ONE')\n"
        "b = os.environ['TWO']\n"
        "def f(env, self=None):\n"
        "    return env.get('THREE'), self.env['FOUR'], os.getenv('FIVE'), {}.get('lower')\n"
    )
    assert [name for _, name in environment_reads(sample)] == ["ONE", "TWO", "THREE", "FOUR", "FIVE"]
