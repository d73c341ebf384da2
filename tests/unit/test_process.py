"""Stopping what the stack started: a process that ignores SIGTERM is killed, and reaped when it is our child."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from recsys_local.process import ServiceRecord, stop_process

IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n"
)


def started(code: str) -> tuple[subprocess.Popen, ServiceRecord]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    record = ServiceRecord(name="stubborn", pid=proc.pid, create_time=psutil.Process(proc.pid).create_time())
    return proc, record


def done(proc: subprocess.Popen) -> None:
    """Close the pipe; Popen learns the process is gone (stop_process reaped it: its wait finds no child)."""
    proc.stdout.close()
    proc.wait(timeout=5)


def test_a_child_that_ignores_sigterm_is_killed_reaped_and_reported():
    proc, record = started(IGNORES_SIGTERM)
    said: list[str] = []
    began = time.monotonic()
    assert stop_process(record, timeout=1, progress=said.append)
    assert time.monotonic() - began < 10
    # reaped by stop_process itself: no zombie is left behind for the caller to notice
    assert not psutil.pid_exists(proc.pid), psutil.Process(proc.pid).status()
    assert said == [f"stubborn (pid {proc.pid}) did not exit within 1 s of SIGTERM: killed"]
    assert not record.is_running()
    done(proc)


def test_a_child_that_exits_on_sigterm_is_reaped_without_a_kill():
    proc, record = started("import time\nprint('ready', flush=True)\ntime.sleep(120)\n")
    said: list[str] = []
    assert stop_process(record, timeout=10, progress=said.append)
    assert not psutil.pid_exists(proc.pid)
    assert said == []
    assert stop_process(record) is False  # nothing left to stop
    done(proc)


def test_a_child_that_exited_by_itself_is_reaped_by_the_stop_and_reported_as_not_running():
    proc, record = started("print('ready', flush=True)\n")
    deadline = time.monotonic() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE  # exited, never waited for
    assert stop_process(record) is False
    assert not psutil.pid_exists(proc.pid)
    done(proc)
