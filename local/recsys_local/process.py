"""Process bookkeeping for the local stack: which pids it started, port checks, readiness waits."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil


class StackError(RuntimeError):
    """A problem the user can fix (a taken port, a missing binary); the message says how."""


@dataclass
class ServiceRecord:
    """A process the stack started: its pid and its start time, so a recycled pid is never mistaken for ours."""

    name: str
    pid: int
    create_time: float

    def process(self) -> psutil.Process | None:
        """The live process, or None when it exited or the pid now belongs to someone else."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.NoSuchProcess:
            return None

    def is_running(self) -> bool:
        return self.process() is not None


class StateFile:
    """`.local/stack.json`: the services the stack started, by name."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, ServiceRecord]:
        if not self.path.exists():
            return {}
        raw = json.loads(self.path.read_text())
        return {name: ServiceRecord(**record) for name, record in raw.items()}

    def save(self, records: dict[str, ServiceRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({name: asdict(r) for name, r in records.items()}, indent=2))
        tmp.replace(self.path)

    def record(self, name: str, pid: int) -> ServiceRecord:
        records = self.load()
        record = ServiceRecord(name=name, pid=pid, create_time=psutil.Process(pid).create_time())
        records[name] = record
        self.save(records)
        return record

    def forget(self, name: str) -> None:
        records = self.load()
        records.pop(name, None)
        self.save(records)

    def running(self, name: str) -> ServiceRecord | None:
        record = self.load().get(name)
        return record if record is not None and record.is_running() else None


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (a bind succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_owner(port: int) -> str:
    """A short description of the process listening on a port, if the OS lets us see it."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} ({proc.name()})"
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        pass
    return "another process"


def ensure_port_free(host: str, port: int, service: str, setting: str) -> None:
    """Raise a :class:`StackError` naming the port and the setting that moves it when the port is taken."""
    if not port_is_free(host, port):
        raise StackError(
            f"{service}: port {port} on {host} is taken by {port_owner(port)}. "
            f"Stop that process or choose another port with {setting}=<port> (environment or .env)."
        )


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], what: str, timeout: float, log: Path | None = None) -> None:
    """Poll ``check`` until it is true; on timeout raise with the tail of the service's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    tail = ""
    if log is not None and log.exists():
        tail = "\nLast lines of " + str(log) + ":\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise StackError(f"{what} did not become ready within {timeout:.0f} s.{tail}")


def spawn(argv: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start a detached process (own session, output to ``log``) that outlives this command; return its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=cwd,
        )
    return proc.pid


def _reap_if_our_zombie(pid: int) -> None:
    """A child of this process that exited stays a zombie until waited for: wait for it (it never blocks)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _still_running(proc: psutil.Process) -> bool:
    """True unless it exited (a zombie has exited: only its parent's wait is missing)."""
    try:
        if proc.status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.NoSuchProcess:
        return False
    _reap_if_our_zombie(proc.pid)
    return False


def stop_process(
    record: ServiceRecord,
    sig: int = signal.SIGTERM,
    timeout: float = 20.0,
    progress: Callable[[str], None] | None = None,
) -> bool:
    """Stop exactly the recorded process (and the children it spawned); True when something was stopped.

    What does not exit within ``timeout`` of ``sig`` is killed; whatever of it is our child is reaped (a process
    this one started and never waits for stays a zombie until this one exits), also when it had exited already."""
    proc = record.process()
    if proc is None:
        with contextlib.suppress(psutil.NoSuchProcess):  # exited before: a zombie of ours may be left
            exited = psutil.Process(record.pid)
            if abs(exited.create_time() - record.create_time) <= 1.0 and exited.ppid() == os.getpid():
                _still_running(exited)
        return False
    try:
        children = proc.children(recursive=True)
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        _reap_if_our_zombie(record.pid)
        return True
    _, alive = psutil.wait_procs([proc], timeout=timeout)
    for p in [p for p in alive if _still_running(p)]:
        if progress is not None:
            signal_name = signal.Signals(sig).name
            progress(f"{record.name} (pid {p.pid}) did not exit within {timeout:.0f} s of {signal_name}: killed")
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=5)
    _reap_if_our_zombie(record.pid)
    for child in children:
        try:
            if child.is_running():
                child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:  # what ignored SIGTERM
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(alive, timeout=5)
    return True


def chown_tree(path: Path, user: str) -> None:
    """Give a data directory to the system user a server runs as (only when we are root)."""
    import pwd

    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def make_traversable(path: Path) -> None:
    """Let a non-root server user reach ``path``: add o+x to every parent folder (as the pgvector wheel does)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        parent.chmod(mode | 0o011)
