"""DAG parse cost: each DAG file parsed in a fresh interpreter (``airflow.sdk`` already imported, as the DAG
processor's parent has it) against a minimal DAG file's; target: at most +100 ms per file (median of runs)."""

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
import runpy, sys, time
sys.path.insert(0, {include!r})
import airflow.sdk  # noqa: F401
started = time.perf_counter()
runpy.run_path({path!r})
print(time.perf_counter() - started)
"""

TARGET_MS = 100.0


def parse_ms(path: Path, runs: int) -> float:
    include = str(project_root() / "include")
    times = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", PROBE.format(include=include, path=str(path))],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(result.stdout.strip().splitlines()[-1]) * 1000)
    return statistics.median(times)


def run(quick: bool) -> list[Entry]:
    runs = 3 if quick else 9
    with tempfile.TemporaryDirectory(prefix="bench-dag-") as tmp:
        empty = Path(tmp) / "empty_dag.py"
        empty.write_text(EMPTY_DAG)
        baseline = parse_ms(empty, runs)
    say(f"DAG parse: minimal DAG file {baseline:.0f} ms (median of {runs})")
    entries = []
    for path in sorted((project_root() / "dags").glob("*.py")):
        ms = parse_ms(path, runs)
        say(f"DAG parse: {path.name} {ms:.0f} ms (+{ms - baseline:.0f})")
        entries.append(
            Entry(
                name=f"DAG parse overhead: {path.name}",
                value=round(ms - baseline, 1),
                unit="ms",
                reference_name="minimal DAG file's parse",
                reference=round(baseline, 1),
                target=TARGET_MS,
                absolute=True,
                detail={"parse_ms": round(ms, 1), "runs": runs},
            )
        )
    return entries
