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


#: The names a function conventionally gives an environment it was handed (``settings(env)``, ``self.env``).
HANDED_ENVIRONMENTS = {"env", "self.env"}


def environment_aliases(tree: ast.Module) -> tuple[set[str], set[str]]:
    """What stands for ``os.environ`` and for ``os.getenv`` in a file: through ``os`` under any name (``import os as
    o``), imported from ``os`` under any name (``from os import environ``), or assigned one of those (``env =
    os.environ``, in any scope), besides :data:`HANDED_ENVIRONMENTS`."""
    modules, environs, getenvs = {"os"}, set(HANDED_ENVIRONMENTS), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.asname for alias in node.names if alias.name == "os" and alias.asname}
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and node.level == 0:
            environs |= {alias.asname or alias.name for alias in node.names if alias.name == "environ"}
            getenvs |= {alias.asname or alias.name for alias in node.names if alias.name == "getenv"}
    environs |= {f"{module}.environ" for module in modules}
    getenvs |= {f"{module}.getenv" for module in modules}
    assigned = [
        (ast.unparse(target), ast.unparse(node.value))
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
    ]
    while new := {target for target, value in assigned if value in environs} - environs:  # aliases of aliases
        environs |= new
    return environs, getenvs


def environment_reads(path: Path) -> list[tuple[int, str]]:
    """(line, variable) of every read of the environment (:func:`environment_aliases`): ``.get``/``.pop``/``[...]``,
    ``getenv(...)`` and ``"X" in`` / ``not in``; a name that is not a literal as ``<expression>``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    environs, getenvs = environment_aliases(tree)
    found = []
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and node.args:
            method = isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop")
            if ast.unparse(node.func) in getenvs or (method and ast.unparse(node.func.value) in environs):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            key = node.slice if ast.unparse(node.value) in environs else None
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
            key = node.left if ast.unparse(node.comparators[0]) in environs else None
        if key is None:
            continue
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            if re.fullmatch(r"[A-Z][A-Z0-9_]+", key.value):
                found.append((node.lineno, key.value))
        else:
            found.append((node.lineno, f"<{ast.unparse(key)}>"))  # a variable whose name is computed
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
        outside += [
            f"{relative}:{line} reads {name}" for line, name in environment_reads(path) if name not in NOT_SETTINGS
        ]
        outside += [f"{relative} calls os.getenv" for _ in re.findall(r"\bos\.getenv\(", text)]
    assert outside == [], f"read it through recsys.config.settings() and document it: {outside}"


def parse_time_code(tree: ast.Module) -> list[ast.AST]:
    """What runs when the file is imported: module-level statements and the bodies of ``@dag`` functions (called
    at parse time), not other functions' bodies (tasks run them)."""
    run: list[ast.AST] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                run.extend(node.decorator_list)  # decorator arguments are evaluated at definition
                if any("dag" in ast.unparse(d).split("(")[0].split(".")[-1:] for d in node.decorator_list):
                    visit(node.body)
            elif isinstance(node, ast.ClassDef):
                visit(node.body)
            else:
                run.append(node)

    visit(tree.body)
    return run


#: The functions that read settings: a task's business, never the parser's.
SETTINGS_READERS = {"settings", "setting", "platform_names"}


def parse_time_calls(tree: ast.Module) -> list[tuple[str, ast.Call]]:
    """(function, call) of every call in :func:`parse_time_code`. The function is the called name's last part
    (``config.settings()`` and ``recsys.config.settings()`` call ``settings``), or the name it was imported as
    (``from recsys.config import settings as read``: ``read()`` calls ``settings``)."""
    imported_as = {
        alias.asname: alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname
    }
    calls = []
    for node in parse_time_code(tree):
        for call in ast.walk(node):
            if isinstance(call, ast.Call):
                name = ast.unparse(call.func).rpartition(".")[2]
                calls.append((imported_as.get(name, name), call))
    return calls


def test_only_the_three_documented_values_are_read_at_parse_time():
    read: dict[str, set[str]] = {}
    for path in python_files(*PRODUCTION):
        relative = path.relative_to(ROOT).as_posix()
        for name, call in parse_time_calls(ast.parse(path.read_text())):
            assert name not in SETTINGS_READERS, f"{relative}:{call.lineno} reads settings at parse time"
            if name == "parse_time_setting":
                read.setdefault(relative, set()).add(ast.literal_eval(call.args[0]))
    assert set(read) == PARSE_TIME
    fields = set().union(*read.values())
    variables = {field: variable for variable, field in Settings.variables().items()}
    assert {variables[f] for f in fields} == {
        "RECSYS_TASK_RETRIES",
        "RECSYS_RETRY_DELAY_SECONDS",
        "RECSYS_ARTIFACT_WAIT_SECONDS",
    }
    config_doc = (ROOT / "include" / "recsys" / "config.py").read_text()
    for variable in (variables[f] for f in fields):
        assert variable in config_doc.split('"""')[1], (
            f"config.py's docstring must say {variable} is read at parse time"
        )


def test_a_bad_parse_time_value_is_logged_and_the_dags_still_load(monkeypatch, caplog):
    from recsys.config import parse_time_setting

    monkeypatch.setenv("RECSYS_TASK_RETRIES", "lots")
    assert parse_time_setting("task_retries") == 2
    assert "RECSYS_TASK_RETRIES='lots'" in caplog.text
    with pytest.raises(ValueError, match="RECSYS_TASK_RETRIES='lots'"):
        settings()  # a task refuses it


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
    from recsys_local.settings import STACK_ENV

    read = {name for path in python_files(ROOT / "local", STANDALONE.parent) for _, name in environment_reads(path)}
    read = {name for name in read if not name.startswith("<")}  # computed names: STACK_ENV's, added below
    read |= set(STACK_ENV)
    documented = {name for names in tables().values() for name in names}
    assert sorted(read - NOT_SETTINGS - documented) == []


def test_a_bad_value_names_its_variable_and_empty_means_unset():
    with pytest.raises(ValueError, match=r"RECSYS_TASK_RETRIES='two'"):
        settings({"RECSYS_TASK_RETRIES": "two"})
    with pytest.raises(ValueError, match=r"VECTOR_DB_KEEP_VERSIONS='-1'"):
        settings({"VECTOR_DB_KEEP_VERSIONS": "-1"})
    chosen = settings({"RECSYS_TASK_RETRIES": "", "TERRAFORM_DIR": "/srv/tf", "RECSYS_RETRY_DELAY_SECONDS": "0.5"})
    assert (chosen.task_retries, chosen.terraform_dir, chosen.retry_delay_seconds) == (2, Path("/srv/tf"), 0.5)
    assert platform_names({"RECSYS_TARGET": "aws"}).account is None


def test_the_reads_check_sees_every_form(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "import os as system\n"
        "from os import environ, getenv as lookup\n"
        "a = os.environ.get('ONE')\n"
        "b = os.environ['TWO']\n"
        "def f(env, self=None):\n"
        "    return env.get('THREE'), self.env['FOUR'], os.getenv('FIVE'), {}.get('lower'), os.environ.get(NAME)\n"
        "c = 'SIX' in os.environ\n"
        "d = 'SEVEN' not in environ\n"
        "def g():\n"
        "    source = os.environ\n"
        "    again = source\n"
        "    return source.get('EIGHT'), again['NINE']\n"
        "e = environ.get('TEN'), lookup('ELEVEN'), system.environ.pop('TWELVE')\n"
        "f = {'NOT_ENV': 1}.get('NOT_ENV'), 'NOT_ENV' in {}, settings['NOT_ENV']\n"
    )
    assert sorted(name for _, name in environment_reads(sample)) == [
        "<NAME>",
        "EIGHT",
        "ELEVEN",
        "FIVE",
        "FOUR",
        "NINE",
        "ONE",
        "SEVEN",
        "SIX",
        "TEN",
        "THREE",
        "TWELVE",
        "TWO",
    ]


def test_the_parse_time_check_sees_calls_through_a_module():
    tree = ast.parse(
        "import recsys.config\n"
        "from recsys import config\n"
        "from recsys.config import platform_names as names\n"
        "A = config.settings()\n"
        "B = recsys.config.settings().task_retries\n"
        "C = names()\n"
        "@dag(schedule=None)\n"
        "def nightly():\n"
        "    recsys.config.setting('task_retries')\n"
        "    @task\n"
        "    def run():\n"
        "        return config.settings()\n"  # a task's body runs when the task runs
    )
    readers = sorted((call.lineno, name) for name, call in parse_time_calls(tree) if name in SETTINGS_READERS)
    assert readers == [(4, "settings"), (5, "settings"), (6, "platform_names"), (9, "setting")]
