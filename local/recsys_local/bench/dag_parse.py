"""DAG parse cost: what the DAG processor pays for each parse of each DAG file, against a minimal DAG file's; target:
at most +50 ms per file (median of runs).

Each parse runs in a fresh interpreter prepared as Airflow 3's DAG processor prepares the child it forks for a file:
``airflow.sdk`` imported, and every ``airflow.*`` module the file imports pre-imported (``[dag_processor]
parsing_pre_import_modules``, on by default: ``airflow.utils.file.iter_airflow_imports``). That pre-import is paid once
per file by the processor's parent, not per parse: it is reported beside the figure, not in it. Everything else the file
imports (our packages) and runs is in the figure."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from recsys.config import project_root
from recsys_local.bench import Entry, say

EMPTY_DAG = """from airflow.sdk import dag, task


@dag(schedule=None)
def empty():
    @task
    def nothing():
        return None

    nothing()


empty()
"""

PROBE = """
import importlib, runpy, sys, time
sys.path.insert(0, {include!r})
import airflow.sdk  # noqa: F401
from airflow.utils.file import iter_airflow_imports
started = time.perf_counter()
for module in iter_airflow_imports({path!r}):
    importlib.import_module(module)
pre_imported = time.perf_counter()
runpy.run_path({path!r})
print(pre_imported - started, time.perf_counter() - pre_imported)
"""

TARGET_MS = 50.0


def parse_ms(path: Path, runs: int) -> tuple[float, float]:
    """(the parse, the processor's pre-import of the file's Airflow modules), ms, medians of ``runs``."""
    include = str(project_root() / "include")
    parses, pre_imports = [], []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", PROBE.format(include=include, path=str(path))],
            capture_output=True,
            text=True,
            check=True,
        )
        pre_import, parse = (float(x) * 1000 for x in result.stdout.strip().splitlines()[-1].split())
        parses.append(parse)
        pre_imports.append(pre_import)
    return statistics.median(parses), statistics.median(pre_imports)


def run(quick: bool) -> list[Entry]:
    runs = 3 if quick else 9
    with tempfile.TemporaryDirectory(prefix="bench-dag-") as tmp:
        empty = Path(tmp) / "empty_dag.py"
        empty.write_text(EMPTY_DAG)
        baseline, _ = parse_ms(empty, runs)
    say(f"DAG parse: minimal DAG file {baseline:.0f} ms (median of {runs})")
    entries = []
    for path in sorted((project_root() / "dags").glob("*.py")):
        ms, pre_import = parse_ms(path, runs)
        say(
            f"DAG parse: {path.name} {ms:.0f} ms (+{ms - baseline:.0f}); "
            f"its Airflow modules, pre-imported once by the processor: {pre_import:.0f} ms"
        )
        entries.append(
            Entry(
                name=f"DAG parse overhead: {path.name}",
                value=round(ms - baseline, 1),
                unit="ms",
                reference_name="minimal DAG file's parse",
                reference=round(baseline, 1),
                target=TARGET_MS,
                absolute=True,
                detail={"parse_ms": round(ms, 1), "pre_import_once_ms": round(pre_import, 1), "runs": runs},
            )
        )
    return entries
