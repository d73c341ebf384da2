"""Three homes, and which may import which (the README's layout picture):

* production (``include/recsys``, ``dags/``, ``plugins/``): what DAG tasks import. It may import the serving package,
  never the local platform.
* serving (``include/recsys_serving``): both Lambdas' code, zipped whole. It imports only itself, the standard
  library, the pinned dependencies of its ``lambda-requirements.txt`` and what the Lambda runtime provides.
* local (``local/recsys_local``): the emulator, its executors, the local Terraform target, seed data, benchmarks,
  the demo. It may import anything; nothing imports it but itself and the tests.

A new import across a forbidden arrow fails here, naming the file and line. Inside every home the imports run one
way: no module imports, through any chain, a module that imports it (the local platform is layered: the services,
then the stack that composes them, then the commands); a cycle fails here, named module by module.
"""

from __future__ import annotations

import ast
import re
import sys

import pytest
from source_tree import (
    HOMES,
    LOCAL,
    PRODUCTION,
    ROOT,
    SERVING,
    docstrings,
    import_cycles,
    import_graph,
    imported_modules,
    imports,
    modules,
    python_files,
)

from recsys.streaming.packaging import REQUIREMENTS, RUNTIME_MODULES


def top(module: str) -> str:
    return module.partition(".")[0]


def pinned_modules() -> set[str]:
    """Import names of the serving package's locked dependencies (``psycopg-binary`` is psycopg's, not imported)."""
    names = set()
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==", line.strip())
        if match:
            names.add(match.group(1).lower().replace("-", "_"))
    return names


def test_the_three_homes_exist_and_nothing_else_is_a_package():
    assert sorted(p.name for p in (ROOT / "include").iterdir() if (p / "__init__.py").is_file()) == [
        "recsys",
        "recsys_serving",
    ]
    assert sorted(p.name for p in (ROOT / "local").iterdir() if (p / "__init__.py").is_file()) == ["recsys_local"]


def test_production_code_never_imports_the_local_platform():
    reached: dict[tuple[str, str], list[int]] = {}
    for path in python_files(*PRODUCTION):
        relative = path.relative_to(ROOT).as_posix()
        for line, module in imports(path):
            if top(module) == "recsys_local":
                reached.setdefault((relative, module), []).append(line)
    found = sorted(f"{f}:{lines[0]} imports {m}" for (f, m), lines in reached.items())
    assert not found, f"production code imports the local platform: {found}"


def test_production_code_does_not_name_the_local_platform_either():
    """An import in a string (importlib, a factory default) is an import: production code holds no string naming
    a local module. Docstrings may explain where the local side plugs in."""
    named = []
    for path in python_files(*PRODUCTION):
        tree = ast.parse(path.read_text())
        skipped = docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skipped
                and re.search(r"\brecsys_local\b", node.value)
            ):
                named.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno}: {node.value[:60]!r}")
    assert named == [], named


def test_serving_code_imports_only_itself_its_pinned_dependencies_and_the_lambda_runtime():
    allowed = set(sys.stdlib_module_names) | {"recsys_serving", "__future__"} | pinned_modules() | set(RUNTIME_MODULES)
    outside = sorted(
        f"{path.relative_to(ROOT).as_posix()}:{line} imports {module}"
        for path in python_files(SERVING)
        for line, module in imports(path)
        if top(module) not in allowed
    )
    assert not outside, f"the serving package (zipped whole into the Lambdas) imports outside itself: {outside}"


def test_the_checks_see_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from recsys_local.stack import Stack\n    import recsys.config, boto3\n")
    assert imports(sample) == [(2, "recsys_local.stack"), (3, "recsys.config"), (3, "boto3")]
    assert {"numpy", "pgvector", "psycopg"} <= pinned_modules()
    assert "recsys" not in pinned_modules()


HOME_FOLDERS = {"production": PRODUCTION, "serving": [SERVING], "local": [LOCAL]}


@pytest.mark.parametrize("home", HOME_FOLDERS)
def test_no_import_cycle(home):
    """Every import counts, wherever it sits (a function, ``if TYPE_CHECKING``) and however it is written (relative,
    ``from package import module``, a ``module:attribute`` string for importlib): moving an import into a function
    or a string hides a cycle from Python's loader, not from the reader. The graph spans the three homes; a cycle is
    reported in each home it passes through."""
    names = set(modules(*HOME_FOLDERS[home]))
    cycles = [" -> ".join(cycle) for cycle in import_cycles(import_graph(*HOMES)) if names & set(cycle)]
    assert cycles == [], f"import cycles (each module imports the next, the last imports the first): {cycles}"


def test_the_cycle_check_sees_relative_imports_imports_in_functions_and_named_modules(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text('"""pkg.high is named in this docstring, which imports nothing."""\n')
    (package / "sub" / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from . import high\n\n    return high\n")
    (package / "high.py").write_text("from pkg.low import f\n")
    (package / "sub" / "leaf.py").write_text("from ..low import f\nfrom pkg import sub\n")
    (package / "plugins.py").write_text('NAMED = ["pkg.sub.leaf:f", "pkg.sub.leaf", "high"]\n')
    (package / "sub" / "back.py").write_text("import pkg.plugins\n")
    graph = import_graph(package)

    assert graph == {
        "pkg": set(),
        "pkg.high": {"pkg.low"},
        "pkg.low": {"pkg.high"},  # `from . import high` in a function
        "pkg.plugins": {"pkg.sub.leaf"},  # the strings; a bare word ("high") names no module
        "pkg.sub": set(),
        "pkg.sub.back": {"pkg.plugins"},
        "pkg.sub.leaf": {"pkg.low", "pkg.sub"},  # `..low` from pkg/sub/; `from pkg import sub` is the subpackage
    }
    assert import_cycles(graph) == [["pkg.high", "pkg.low", "pkg.high"]]
    assert imported_modules(package / "sub" / "leaf.py", "pkg.sub.leaf", graph) == [(1, "pkg.low"), (2, "pkg.sub")]

    (package / "sub" / "leaf.py").write_text("import pkg.sub.back\n")  # leaf -> back -> plugins -> leaf

    assert import_cycles(import_graph(package)) == [
        ["pkg.high", "pkg.low", "pkg.high"],
        ["pkg.plugins", "pkg.sub.leaf", "pkg.sub.back", "pkg.plugins"],
    ]


def test_modules_are_named_as_python_imports_them():
    named = modules(*HOMES)
    assert named["recsys_local.stack"] == LOCAL / "stack.py"
    assert named["recsys_local.seed"] == LOCAL / "seed" / "__init__.py"
    assert named["recsys_serving.events"] == SERVING / "events.py"
    assert named["batch_training_data"] == ROOT / "dags" / "batch_training_data.py"  # dags/ is on Airflow's path
