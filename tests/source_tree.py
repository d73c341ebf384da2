"""The project's source tree as the tests read it: the three homes' folders (one list for every test that reads the
code), their Python files, each file's imports and the import graph between the project's own modules.

A module is named as Python imports it: ``include/recsys/etl/glue_job.py`` is ``recsys.etl.glue_job``, a package's
``__init__.py`` is the package, and a DAG or plugin file is a top-level module (Airflow puts ``dags/`` and
``plugins/`` on the path).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from recsys.config import project_root

ROOT = project_root()
#: What DAG tasks import.
PRODUCTION = [ROOT / "include" / "recsys", ROOT / "dags", ROOT / "plugins"]
#: Both Lambdas' code, zipped whole.
SERVING = ROOT / "include" / "recsys_serving"
#: The emulator, its executors, the local Terraform target, seed data, benchmarks, the demo.
LOCAL = ROOT / "local" / "recsys_local"
#: Every folder of the three homes.
HOMES = [*PRODUCTION, SERVING, LOCAL]


def python_files(*folders: Path) -> list[Path]:
    """Every ``.py`` file under the folders, sorted."""
    return sorted(p for folder in folders for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file, wherever it sits (functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def module_name(path: Path, folder: Path) -> str:
    """The name Python imports ``path`` under when ``folder`` is a package (it holds ``__init__.py``) or a folder on
    the path (``dags/``): ``recsys_local/seed/__init__.py`` -> ``recsys_local.seed``."""
    parts = list(path.relative_to(folder).with_suffix("").parts)
    if (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(*folders: Path) -> dict[str, Path]:
    """Module name -> file, for every Python file under the folders."""
    return {module_name(path, folder): path for folder in folders for path in python_files(folder)}


def docstrings(tree: ast.Module) -> set[int]:
    """``id()`` of every docstring node of the tree (a module's, a class's, a function's)."""
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def imported_modules(path: Path, name: str, known: Iterable[str]) -> list[tuple[int, str]]:
    """(line, module) of every module among ``known`` that the file ``path`` (module ``name``) imports, wherever the
    import sits: ``import a.b`` imports ``a.b``; ``from a import b`` imports ``a.b`` when that is a module, else
    ``a``; a relative import is resolved against the file's package. A string that names a module (``"a.b"``, or
    ``"a:attribute"`` for ``importlib``) is an import too, but for a docstring and a bare word (a DAG's id is its
    module's name)."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name in known]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # `from . import x` is the package's x; each further dot goes one package up
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    found.append((node.lineno, f"{base}.{alias.name}"))
                elif base in known:
                    found.append((node.lineno, base))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            module, _, attribute = node.value.partition(":")
            named = "." in module or attribute.isidentifier()  # not a bare word: a DAG id is its module's name
            if module in known and named and (not attribute or attribute.isidentifier()):
                found.append((node.lineno, module))
    return list(dict.fromkeys(found))  # `from a import b, c` imports a once


def import_graph(*folders: Path) -> dict[str, set[str]]:
    """Module -> the modules (of the same folders) it imports; a module importing itself is left out."""
    named = modules(*folders)
    return {
        name: {target for _, target in imported_modules(path, name, named) if target != name}
        for name, path in named.items()
    }


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle, as a path ``[a, b, ..., a]``, per group of modules that import each other (a strongly connected
    component of the graph; Tarjan's algorithm), sorted by its first module."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                lowlink[node] = min(lowlink[node], lowlink[target])
            elif target in on_stack:
                lowlink[node] = min(lowlink[node], index[target])
        if lowlink[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted((shortest_cycle(graph, component) for component in components), key=lambda cycle: cycle[0])


def shortest_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """The shortest way from the component's first module back to itself, inside the component (breadth-first)."""
    start = min(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not a cycle")
