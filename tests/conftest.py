"""Shared fixtures. Integration and e2e tests run against a test instance of the local stack with its own home and
ports (.local/test-stack, ports 13307/15433/15055, Airflow 18080; ``TEST_STACK_HOME`` and ``TEST_*_PORT`` move it:
`make test`'s second lane runs on .local/test-stack-b, see scripts/test.sh), so they never touch the data of a stack
you run with `make up`."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys.config import project_root
from recsys_local import mariadb, postgres
from recsys_local.settings import stack_settings
from recsys_local.stack import AWS_SERVICE, Stack

TEST_STACK_ENV = {
    "LOCAL_STACK_HOME": os.environ.get("TEST_STACK_HOME", str(project_root() / ".local" / "test-stack")),
    "MYSQL_PORT": os.environ.get("TEST_MYSQL_PORT", "13307"),
    "VECTOR_DB_PORT": os.environ.get("TEST_VECTOR_DB_PORT", "15433"),
    "AWS_PORT": os.environ.get("TEST_AWS_PORT", "15055"),
    "AIRFLOW_PORT": os.environ.get("TEST_AIRFLOW_PORT", "18080"),
}
#: Seconds per minute of a Glue job's ``Timeout`` on the test stack (GLUE_TIMEOUT_UNIT_SECONDS; 60 elsewhere).
TEST_GLUE_MINUTE_SECONDS = "20"


def test_stack_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "VECTOR_DB_", "AWS_", "AIRFLOW_PORT"))}
    return stack_settings({**env, **TEST_STACK_ENV})


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The test stack, started for the session when it is not running (and stopped again afterwards)."""
    # the endpoint reads it when it starts: a job's Timeout minute lasts 20 s on the test stack (scenario 2b)
    os.environ.setdefault("GLUE_TIMEOUT_UNIT_SECONDS", TEST_GLUE_MINUTE_SECONDS)
    stack = Stack(test_stack_settings())
    started_here = [s for s in (mariadb.SERVICE, postgres.SERVICE, AWS_SERVICE) if stack.state.running(s) is None]
    stack.up(lambda message: print(f"[test stack] {message}"), migrate_airflow=False)
    yield stack
    if started_here:
        stack.down(lambda message: print(f"[test stack] {message}"))


# --- the reliability table ---------------------------------------------------------------------------------------
# Each reliability scenario records what it injected and the figure it measured against its bar; the outcome of the
# test is its pass/fail. `make reliability` prints the table at the end and writes .local/reliability/latest.{json,md}.

_RELIABILITY_ROWS: list[dict[str, str]] = []


@pytest.fixture
def reliability(request):
    """``reliability(scenario, injected, figure, bar)``: one row of the reliability table for this test."""

    def record(scenario: str, injected: str, figure: str, bar: str) -> None:
        row = {"test": request.node.nodeid, "scenario": scenario, "injected": injected, "figure": figure, "bar": bar}
        _RELIABILITY_ROWS.append(row)
        print(f"\n[reliability] {scenario}: {figure} (bar: {bar})")

    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        for row in _RELIABILITY_ROWS:
            if row["test"] == item.nodeid and "result" not in row:
                row["result"] = "pass" if report.passed else "FAIL"
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = [r for r in _RELIABILITY_ROWS if "result" in r]
    if not rows:
        return
    import json

    columns = ("scenario", "injected", "figure", "bar", "result")
    table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    table += ["| " + " | ".join(r[c].replace("|", "/") for c in columns) + " |" for r in rows]
    terminalreporter.write_sep("=", "reliability")
    for line in table:
        terminalreporter.write_line(line)
    out = Path(os.environ.get("RELIABILITY_DIR") or project_root() / ".local" / "reliability")
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(rows, indent=2))
    (out / "latest.md").write_text("\n".join(table) + "\n")
    terminalreporter.write_line(f"written to {out}/latest.md and latest.json")
    if os.environ.get("RELIABILITY_PAGE") == "1":  # make reliability
        _write_reliability_page(terminalreporter, table, rows, exitstatus)


def _write_reliability_page(terminalreporter, table: list[str], rows: list[dict[str, str]], exitstatus: int) -> None:
    """docs/reliability.md keeps the figures of one whole passing run, with the date, the machine and the load."""
    from datetime import UTC, datetime

    from reliability_table import PAGE, page_with_table

    if exitstatus != 0 or any(r["result"] != "pass" for r in rows):
        terminalreporter.write_line(f"{PAGE}'s table left as it was: this run did not pass whole")
        return
    page = project_root() / PAGE
    cores, memory = os.cpu_count(), os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    heading = (
        f"Figures of one `make reliability` run, {datetime.now(UTC):%Y-%m-%d}, on this machine ({cores} cores, "
        f"{memory:.0f} GiB), {os.environ.get('RELIABILITY_LOAD_EVENTS', '3000')} events in scenario 8, "
        f"{os.environ.get('DURABILITY_FAULTS', '4')} faults in scenario 6 ({len(rows)} rows):"
    )
    page.write_text(page_with_table(page.read_text(), heading, table))
    terminalreporter.write_line(f"{PAGE}'s table rewritten from this run ({len(rows)} rows)")


# --- CI cannot pass by skipping --------------------------------------------------------------------------------------
# scripts/test.sh (`make test`) sets RECSYS_FAIL_ON_SKIP=1 for its lanes: a test skipped or xfailed there fails the
# run unless tests/skip_allowlist.py names it with a reason. `make check` and ad-hoc runs still allow skips.
FAIL_ON_SKIP = "RECSYS_FAIL_ON_SKIP"


class SkipRule:
    """Fails the session on each skip (or xfail) that :data:`skip_allowlist.ALLOWED_SKIPS` does not name, and lists
    every skip with its reason in the terminal summary."""

    def __init__(self) -> None:
        self.skips: list[tuple[str, str]] = []  # (node id, what the skip said)
        self.allowed: list[tuple[str, str, str]] = []  # (node id, what the skip said, the allowlist's reason)
        self.refused: list[tuple[str, str]] = []

    def _record(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if not report.skipped:
            return
        if hasattr(report, "wasxfail"):
            said = f"xfailed: {report.wasxfail}" if report.wasxfail else "xfailed"
        elif isinstance(report.longrepr, tuple):
            said = report.longrepr[2].removeprefix("Skipped: ")
        else:
            said = str(report.longrepr)
        self.skips.append((report.nodeid, said))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)  # a module skipped as a whole (pytest.importorskip, allow_module_level)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from skip_allowlist import ALLOWED_SKIPS

        for nodeid, said in self.skips:
            pattern = next((p for p in ALLOWED_SKIPS if p == nodeid or fnmatch.fnmatchcase(nodeid, p)), None)
            if pattern is None:
                self.refused.append((nodeid, said))
            else:
                self.allowed.append((nodeid, said, ALLOWED_SKIPS[pattern]))
        if self.refused and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.skips:
            return
        terminalreporter.write_sep("=", f"skips ({FAIL_ON_SKIP}=1, allowlist: tests/skip_allowlist.py)")
        for nodeid, said, reason in self.allowed:
            terminalreporter.write_line(f"allowed  {nodeid}: {said} (allowed because: {reason})")
        for nodeid, said in self.refused:
            terminalreporter.write_line(f"REFUSED  {nodeid}: {said}", red=True)
        if self.refused:
            terminalreporter.write_line(
                f"{len(self.refused)} skip(s) not on the allowlist: the run fails. Make the test run here, or add its "
                "node id to tests/skip_allowlist.py with the reason it may skip on every machine.",
                red=True,
                bold=True,
            )


def pytest_configure(config: pytest.Config) -> None:
    value = os.environ.get(FAIL_ON_SKIP, "")
    if value not in ("", "0", "1"):
        raise pytest.UsageError(f"{FAIL_ON_SKIP}={value!r}: expected 1 (a skip fails the run), 0 or unset")
    if value == "1":
        config.pluginmanager.register(SkipRule(), "recsys-skip-rule")
