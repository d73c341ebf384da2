"""The environment the code reads, against docs/configuration.md. Every home reads it only through a class on the one
loader (``recsys_serving.settings.SettingsBase``): production's ``recsys.config.Settings`` is the "Airflow workers"
table, ``recsys_serving.settings.LambdaSettings`` the "Lambdas' environment" table, ``recsys_local.settings``' classes
the local platform's table; each table holds its class's variables and defaults. A read anywhere else, or a variable
read and not documented (or documented and never read), fails here, by name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from source_tree import LOCAL, PRODUCTION, ROOT, SERVING, python_files

from recsys.config import Settings, platform_names, settings
from recsys_local.settings import ExecutorSettings, SharedAwsConfig, StackSettings, stack_settings
from recsys_serving.settings import LambdaSettings, SettingsBase, SettingsError

PAGE = ROOT / "docs" / "configuration.md"
#: The Glue script ships alone (Glue runs it, without our packages): the Spark session it makes when no Glue runtime
#: is present reads the local Glue executor's three variables (docs/configuration.md, the local platform's table).
STANDALONE = ROOT / "include" / "recsys" / "etl" / "glue_job.py"
#: The loader itself: the one module that looks the environment up.
LOADER = SERVING / "settings.py"
GLUE_SCRIPT_VARIABLES = {"MARIADB_JDBC_JAR", "SPARK_MASTER", "SPARK_DRIVER_MEMORY"}
#: Variables of other programs (the shell's, Java's, Airflow's) that code forwards to a child process, not settings.
NOT_SETTINGS = {"PATH", "HOME", "JAVA_HOME", "AIRFLOW__LOGGING__LOGGING_LEVEL", "TMPDIR"}
#: The local table's rows no settings class reads, and why: boto3's own variable that the stack writes into stack.env
#: (the workers' identity), the tests' knobs (read by tests), the Glue script's.
LOCAL_ROWS_OF_OTHER_PROGRAMS = {
    "AWS_ENDPOINT_URL_STS",
    "RELIABILITY_LOAD_EVENTS",
    "DURABILITY_FAULTS",
} | GLUE_SCRIPT_VARIABLES
#: Files that may build Settings at import (parse) time, and why: docs/configuration.md and recsys.config say which.
PARSE_TIME = {"include/recsys/dag_defaults.py", "dags/vector_db_embeddings.py"}


def documented() -> list[tuple[str, str, str]]:
    """(section heading, variable, its default cell) for every row of the page's tables, in order (a row may name
    several: `A` / `B`)."""
    found = []
    heading = ""
    for line in PAGE.read_text().splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("| `"):
            cells = line.split("|")
            found += [(heading, name, cells[2]) for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[1])]
    return found


def tables() -> dict[str, list[str]]:
    """Section heading -> variable names of its table, in order."""
    found: dict[str, list[str]] = {}
    for heading, name, _ in documented():
        found.setdefault(heading, []).append(name)
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
    ``getenv(...)`` and ``"X" in`` / ``not in``; a name that is not a literal as ``<expression>``. A ``pop`` whose
    value is not used (a statement of its own) removes a variable for a child or an import, and reads nothing."""
    tree = ast.parse(path.read_text(), filename=str(path))
    environs, getenvs = environment_aliases(tree)
    removals = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    found = []
    for node in ast.walk(tree):
        key = None
        if (
            isinstance(node, ast.Call)
            and node.args
            and not (id(node) in removals and isinstance(node.func, ast.Attribute) and node.func.attr == "pop")
        ):
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


def rows(prefix: str) -> dict[str, str]:
    """Variable -> its default cell, for the table under the heading starting ``prefix``."""
    return {name: default for heading, name, default in documented() if heading.startswith(prefix)}


#: Each settings class and the table that documents it.
CLASSES = [
    (Settings, "Airflow workers"),
    (LambdaSettings, "The Lambdas' environment"),
    (StackSettings, "The local platform only"),
    (ExecutorSettings, "The local platform only"),
    (SharedAwsConfig, "The local platform only"),
]


def test_each_table_lists_its_classes_variables_each_once():
    for heading in {heading for _, heading in CLASSES}:
        documented = table(heading)
        assert sorted(documented) == sorted(set(documented)), f"{heading}: a variable is listed twice"
        read = set().union(*(cls.variables() for cls, h in CLASSES if h == heading))
        other = LOCAL_ROWS_OF_OTHER_PROGRAMS if heading.startswith("The local") else set()
        assert set(documented) == read | other, heading


def documented_default(value: object) -> str:
    """How a table writes a default: ``60`` for 60.0, the path's last part for a folder of the checkout."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Path):
        return value.name
    return str(value)


def test_each_default_in_the_tables_is_the_codes():
    """A field's default is in its row's default cell, in backticks (``2``, ``de-c1w4``): the table is checked from
    the class, so a changed default fails here until the docs say it too."""
    wrong = []
    for cls, heading in CLASSES:
        cells = rows(heading)
        for variable, field in cls.variables().items():
            default = cls.default(field)
            if default is not None and f"`{documented_default(default)}`" not in cells[variable]:
                wrong.append(f"{variable}: code {default!r}, docs {cells[variable].strip()!r}")
    assert wrong == []


def test_no_home_reads_the_environment_outside_the_loader():
    """Production, serving and local code read the environment only through a settings class: no ``os.environ``
    lookup, ``os.getenv`` or ``in os.environ`` elsewhere (forwarding the whole environment to a child is no read).
    The Glue script is the exception: it ships alone."""
    outside = []
    for path in python_files(*PRODUCTION, SERVING, LOCAL):
        if path in (STANDALONE, LOADER):
            continue
        relative = path.relative_to(ROOT).as_posix()
        outside += [
            f"{relative}:{line} reads {name}" for line, name in environment_reads(path) if name not in NOT_SETTINGS
        ]
    assert outside == [], f"add a field to the home's settings class (SettingsBase) and document it: {outside}"
    assert {name for _, name in environment_reads(STANDALONE)} == GLUE_SCRIPT_VARIABLES


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
SETTINGS_READERS = {"settings", "setting", "platform_names", "aws_region", "stack_settings", "load", "load_field"}


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


def test_terraform_sets_only_what_the_lambdas_read():
    terraform = (ROOT / "terraform" / "modules" / "streaming_inference" / "main.tf").read_text()
    environment = terraform[terraform.index("environment {") :]
    set_by_terraform = set(re.findall(r"^\s+([A-Z][A-Z0-9_]+)\s+=", environment, flags=re.MULTILINE))
    assert set_by_terraform <= set(LambdaSettings.variables()), "Terraform sets a variable the Lambdas never read"


def test_every_field_of_a_settings_class_names_one_variable():
    """A field reads its own variable, named once: two fields of one class never share one (a derived field, which
    reads none, is allowed: ``StackSettings.names``)."""
    for cls, _ in CLASSES:
        aliases = [f.validation_alias for f in cls.model_fields.values() if f.validation_alias is not None]
        assert all(isinstance(a, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", a) for a in aliases), cls
        assert len(aliases) == len(set(aliases)), cls
    assert [name for name, f in StackSettings.model_fields.items() if f.validation_alias is None] == ["host", "names"]


def test_a_bad_value_names_its_variable_value_and_form_in_every_home():
    with pytest.raises(SettingsError, match=r"RECSYS_TASK_RETRIES='two': input should be a valid integer"):
        settings({"RECSYS_TASK_RETRIES": "two"})
    with pytest.raises(ValueError, match=r"VECTOR_DB_KEEP_VERSIONS='-1': input should be greater than or equal to 0"):
        settings({"VECTOR_DB_KEEP_VERSIONS": "-1"})
    with pytest.raises(SettingsError, match=r"VECTOR_DB_PROBES='many': input should be a valid integer"):
        LambdaSettings.load({"VECTOR_DB_PROBES": "many"})
    with pytest.raises(SettingsError, match=r"AWS_PORT='70000': input should be less than or equal to 65535"):
        stack_settings({"AWS_PORT": "70000"})
    with pytest.raises(SettingsError, match=r"MYSQL_USER=.*string should match pattern"):
        stack_settings({"MYSQL_USER": "etl'; \\! id"})  # written into SQL the mariadb client runs: data only
    with pytest.raises(SettingsError, match=r"FIREHOSE_POLL_SECONDS='0': input should be greater than 0"):
        ExecutorSettings.load({"FIREHOSE_POLL_SECONDS": "0"})
    # every bad value at once, each named
    with pytest.raises(SettingsError) as caught:
        settings({"RECSYS_TASK_RETRIES": "two", "RECSYS_TARGET": "gcp"})
    assert "RECSYS_TASK_RETRIES='two'" in str(caught.value)
    assert "RECSYS_TARGET='gcp'" in str(caught.value)


def test_empty_or_blank_means_unset_in_every_home():
    chosen = settings({"RECSYS_TASK_RETRIES": "", "TERRAFORM_DIR": "/srv/tf", "RECSYS_RETRY_DELAY_SECONDS": "0.5"})
    assert (chosen.task_retries, chosen.terraform_dir, chosen.retry_delay_seconds) == (2, Path("/srv/tf"), 0.5)
    assert settings({"TF_VAR_FILE": "  "}).tf_var_file is None
    assert LambdaSettings.load({"MODEL_VERSION": "", "VECTOR_DB_PROBES": " "}).model_version == "latest"
    assert stack_settings({"MYSQL_PORT": "", "LOCAL_IAM_ENFORCEMENT": ""}).mysql_port == 3307
    assert stack_settings({"LOCAL_IAM_ENFORCEMENT": ""}).iam_enforcement == "on"
    assert platform_names({"RECSYS_TARGET": "aws"}).account is None


def test_a_settings_class_reads_only_the_environment_it_is_given(monkeypatch):
    monkeypatch.setenv("RECSYS_TASK_RETRIES", "7")
    assert settings({}).task_retries == 2  # a mapping given: the process's environment is not looked at
    assert settings().task_retries == 7
    monkeypatch.setenv("RECSYS_TASK_RETRIES", "8")
    assert settings().task_retries == 8  # read at the call, never cached


def test_one_field_parsed_alone_ignores_the_others_bad_values():
    from recsys.config import setting

    assert setting("task_retries", {"RECSYS_TASK_RETRIES": "5", "VECTOR_DB_KEEP_VERSIONS": "many"}) == 5
    with pytest.raises(SettingsError, match="RECSYS_TASK_RETRIES='x'"):
        setting("task_retries", {"RECSYS_TASK_RETRIES": "x"})


def test_the_loader_reads_no_dotenv_file_and_no_field_without_a_variable(tmp_path, monkeypatch):
    """Nothing but the environment: a ``.env`` file in the working folder is make's to export, not the loader's to
    read; a derived field is never read, whatever the environment holds."""
    (tmp_path / ".env").write_text("RECSYS_TASK_RETRIES=9\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECSYS_TASK_RETRIES", raising=False)
    assert settings().task_retries == 2
    assert stack_settings({"names": "x", "host": "localhost"}).host == "127.0.0.1"
    assert issubclass(SettingsError, ValueError)
    assert all(issubclass(cls, SettingsBase) for cls, _ in CLASSES)


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
        "os.environ.pop('REMOVED', None)\n"
        "g = os.environ.pop('THIRTEEN', None)\n"
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
        "THIRTEEN",
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
        "D = Settings.load(), LambdaSettings.load_field('model_version')\n"
        "@dag(schedule=None)\n"
        "def nightly():\n"
        "    recsys.config.setting('task_retries')\n"
        "    @task\n"
        "    def run():\n"
        "        return config.settings()\n"  # a task's body runs when the task runs
    )
    readers = sorted((call.lineno, name) for name, call in parse_time_calls(tree) if name in SETTINGS_READERS)
    assert readers == [
        (4, "settings"),
        (5, "settings"),
        (6, "platform_names"),
        (7, "load"),
        (7, "load_field"),
        (10, "setting"),
    ]
