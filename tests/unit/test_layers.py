"""Three homes, and which may import which (the README's layout picture):

* production (``include/recsys``, ``dags/``, ``plugins/``): what DAG tasks import. It may import the serving package,
  never the local platform.
* serving (``include/recsys_serving``): both Lambdas' code, zipped whole. It imports only itself, the standard
  library, the pinned dependencies of its ``lambda-requirements.txt`` and what the Lambda runtime provides.
* local (``local/recsys_local``): the emulator, its executors, the local Terraform target, seed data, benchmarks,
  the demo. It may import anything; nothing imports it but itself and the tests.

A new import across a forbidden arrow fails here, naming the file and line.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from recsys.config import project_root
from recsys.streaming.packaging import REQUIREMENTS, RUNTIME_MODULES

ROOT = project_root()
PRODUCTION = [ROOT / "include" / "recsys", ROOT / "dags", ROOT / "plugins"]
SERVING = ROOT / "include" / "recsys_serving"
LOCAL = ROOT / "local" / "recsys_local"


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file, wherever it sits (functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


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
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
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
