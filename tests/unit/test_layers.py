"""Which code may import which: production code (what DAG tasks import) never imports the local platform (the
emulator and its executors, seed data, benchmarks, the demo). Two imports of it remain (issue 26 moves them); any new
one fails here, naming the file and line."""

from __future__ import annotations

import ast

from recsys.config import project_root

PACKAGE = project_root() / "include" / "recsys"
LOCAL = ("recsys.localstack", "recsys.seed", "recsys.bench", "recsys.demo")
LOCAL_FILES = ("localstack/", "seed/", "bench/", "demo.py")

#: (file, imported module) of production code that still reaches the local platform: the local Terraform target
#: and the source tables' names. Remove an entry when its import goes; never add one.
KNOWN = {
    ("provisioning/targets.py", "recsys.localstack"),
    ("provisioning/targets.py", "recsys.localstack.stack"),
    ("checks/platform.py", "recsys.seed.schema"),
}


def imports(path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_production_code_imports_the_local_platform_only_where_known():
    reached = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(LOCAL_FILES):
            continue
        for line, module in imports(path):
            if module.startswith(LOCAL):
                reached.setdefault((relative, module), []).append(line)
    new = {
        f"{file}:{lines[0]} imports {module}"
        for (file, module), lines in reached.items()
        if (file, module) not in KNOWN
    }
    assert not new, f"production code imports the local platform: {sorted(new)}"
    gone = KNOWN - set(reached)
    assert not gone, f"these imports are gone: remove them from KNOWN {sorted(gone)}"


def test_the_check_sees_an_import_of_the_local_platform(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from recsys.localstack.stack import Stack\n    import recsys.seed.loader\n")
    assert [m for _, m in imports(sample) if m.startswith(LOCAL)] == ["recsys.localstack.stack", "recsys.seed.loader"]
