"""What the provisioner leaves when a Terraform command is interrupted (a task stopped, a test's timeout): nothing
running; and the log says how long each command took. A fake ``terraform`` (TERRAFORM_BIN) stands in: ``init`` returns
at once, ``show`` prints an empty plan, and with FAKE_TF_HANG=plan, ``plan`` starts a "provider" that ignores SIGTERM
(as Terraform's plugins ignore interrupts), a second child, and waits."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from recsys.provisioning import terraform
from recsys.provisioning.terraform import TerraformProvisioner

pytest_plugins = ["pytester"]

FAKE_TERRAFORM = """#!/bin/sh
echo $$ >> "$FAKE_TF_PIDS"
case "$1" in
  init) exit 0 ;;
  show) echo '{}'; exit 0 ;;
esac
[ "$1" = "$FAKE_TF_HANG" ] || exit 0
sh -c 'trap "" TERM; exec sleep 300' &
echo $! >> "$FAKE_TF_PIDS"
sleep 300 &
echo $! >> "$FAKE_TF_PIDS"
wait
"""


class NoTarget:
    name = "fixture"
    adopts_existing = False

    def preflight(self, pipeline: str) -> None:
        return None

    def backend_args(self, pipeline: str) -> list[str]:
        return []

    def override_files(self, pipeline: str) -> dict[str, str]:
        return {}

    def variables(self, pipeline: str) -> dict[str, Any]:
        return {}

    def var_files(self) -> list[str]:
        return []

    def adopt(self, pipeline: str, resources: list[tuple[str, str]]) -> None:
        raise AssertionError(resources)

    def applied(self, pipeline: str, variables: dict[str, Any]) -> None:
        return None


def fake_provisioner(tmp_path: Path, hang: str = "") -> tuple[TerraformProvisioner, Path]:
    """A provisioner running the fake terraform on an ``etl`` root; returns it and the file its processes' ids go to."""
    (tmp_path / "terraform" / "etl").mkdir(parents=True)
    (tmp_path / "terraform" / "etl" / "main.tf").write_text("")
    binary = tmp_path / "bin" / "terraform"
    binary.parent.mkdir()
    binary.write_text(FAKE_TERRAFORM)
    binary.chmod(0o755)
    pids = tmp_path / "pids"
    pids.touch()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TERRAFORM_BIN": str(binary),
        "TERRAFORM_DIR": str(tmp_path / "terraform"),
        "TERRAFORM_WORK_DIR": str(tmp_path / "work"),
        "FAKE_TF_PIDS": str(pids),
        "FAKE_TF_HANG": hang,
    }
    return TerraformProvisioner(env, target=NoTarget()), pids


def running(pids: Path) -> list[str]:
    """The processes of the fake terraform still running (a killed orphan may stay a zombie until init reaps it)."""
    alive = []
    for pid in map(int, pids.read_text().split()):
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid} {process.cmdline()}")
        except psutil.NoSuchProcess:
            pass
    return alive


def test_each_command_logs_how_long_it_took(tmp_path, caplog):
    provisioner, _ = fake_provisioner(tmp_path)
    caplog.set_level(logging.INFO, logger="recsys.provisioning.terraform")

    assert provisioner.pending_changes("etl") == []

    took = [r.getMessage().rsplit(" ", 2)[0] for r in caplog.records if " took " in r.getMessage()]
    assert took == ["terraform init took", "terraform plan took", "terraform show took"]


def test_an_interrupted_command_stops_terraform_and_everything_it_started(tmp_path, caplog, monkeypatch):
    provisioner, pids = fake_provisioner(tmp_path, hang="plan")
    monkeypatch.setattr(terraform, "STOP_GRACE_SECONDS", 0.5)
    caplog.set_level(logging.INFO, logger="recsys.provisioning.terraform")

    def timeout(signum, frame):
        pytest.fail("Timeout (as pytest-timeout raises it)")

    def interrupt_when_plan_runs() -> None:  # init's pid, then plan's and its two children's
        deadline = time.monotonic() + 30
        while len(pids.read_text().split()) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, timeout)
    try:
        threading.Thread(target=interrupt_when_plan_runs, daemon=True).start()
        with pytest.raises(pytest.fail.Exception, match="Timeout"):
            provisioner.pending_changes("etl")
    finally:
        signal.signal(signal.SIGUSR1, previous)

    assert len(pids.read_text().split()) == 4
    assert running(pids) == []
    assert not [p for p in (tmp_path / "work").iterdir()], "the private copy is removed"
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("terraform init took") for m in messages)
    assert any(m.startswith("terraform plan interrupted after") for m in messages), messages


def test_a_test_timing_out_in_terraform_says_which_phase_and_leaves_nothing_running(pytester, tmp_path, monkeypatch):
    """With this repository's pytest settings and pytest-timeout's own signal: the failure shows each phase's time."""
    provisioner_dir = tmp_path / "provisioner"
    provisioner_dir.mkdir()
    pids = provisioner_dir / "pids"
    pytester.makepyfile(
        test_times_out=f"""
from pathlib import Path

from recsys.provisioning import terraform
from test_terraform_interrupt import fake_provisioner


def test_plan_hangs(monkeypatch):
    monkeypatch.setattr(terraform, "STOP_GRACE_SECONDS", 0.5)
    provisioner, _ = fake_provisioner(Path({str(provisioner_dir)!r}), hang="plan")
    provisioner.pending_changes("etl")
"""
    )
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # pytest-timeout alone, without 1.5 s of scanning

    result = pytester.runpytest_subprocess(
        "-c", str(pyproject), "--rootdir", str(pytester.path), "-p", "no:cacheprovider", "-p", "pytest_timeout",
        "--timeout", "3", "-o", f"pythonpath={Path(__file__).parent}", "test_times_out.py",
    )  # fmt: skip

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*Timeout (>3.0s) from pytest-timeout*",
            "*Captured log call*",
            "*terraform init took * s",
            "*terraform plan interrupted after * s: stopping it and its providers",
        ]
    )
    assert len(pids.read_text().split()) == 4
    assert running(pids) == []
