"""Airflow 3 running for real on the local stack (``make airflow``): api-server, scheduler, dag-processor and
triggerer as four processes of their own (not ``airflow standalone``, whose parent can outlive its children).

Each is started with the stack's environment (connections, AIRFLOW_HOME under the stack's home), the virtualenv's
``bin/`` first on ``PATH``, LocalExecutor with parallelism 4 (2 cores), DAGs paused at creation; logs go to
``<stack home>/logs/airflow-<component>.log`` and pids to the stack's registry, so ``make status`` shows them and
``make down`` stops them (and every process they started). The UI listens on ``http://<host>:<AIRFLOW_PORT>``
(8080); Airflow's simple auth manager generates the ``admin`` password into
``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated`` (local only, git-ignored).

The stack composes these services (its ``down`` stops them, its ``status`` reports them): each function takes what it
needs of the stack as an :class:`AirflowHost`, which :class:`recsys_local.stack.Stack` is.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from recsys_local.identity import base_environment
from recsys_local.process import StackError, StateFile, ensure_port_free, spawn, stop_process

if TYPE_CHECKING:
    from recsys_local.settings import StackSettings

#: Start order; stopped in reverse (the api-server, which task processes report to, last).
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH_KEYS = {"scheduler": "scheduler", "triggerer": "triggerer", "dag-processor": "dag_processor"}
USER = "admin"


class AirflowHost(Protocol):
    """What Airflow's processes need of the stack they run on: its settings, folder, process registry and
    environment, and the migration of its metadata DB."""

    @property
    def settings(self) -> StackSettings: ...
    @property
    def home(self) -> Path: ...
    @property
    def state(self) -> StateFile: ...
    def environment(self) -> dict[str, str]: ...
    def migrate_airflow(self, progress: Callable[[str], None]) -> None: ...


def service(component: str) -> str:
    return f"airflow-{component}"


def base_url(stack: AirflowHost) -> str:
    return f"http://{stack.settings.host}:{stack.settings.airflow_port}"


def environment(stack: AirflowHost) -> dict[str, str]:
    """What every component runs with: the stack's environment plus the settings of a real deployment."""
    url = base_url(stack)
    env = {**base_environment(), **stack.environment()}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__API__HOST": stack.settings.host,
            "AIRFLOW__API__PORT": str(stack.settings.airflow_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "60",
        }
    )
    return env


def password(stack: AirflowHost) -> str:
    path = stack.settings.airflow_home / "simple_auth_manager_passwords.json.generated"
    if not path.exists():
        raise StackError(f"{path} not found: the api-server writes it when it first starts")
    return str(json.loads(path.read_text())[USER])


def health(stack: AirflowHost) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base_url(stack)}/api/v2/monitor/health", timeout=3) as response:  # noqa: S310
        return dict(json.loads(response.read()))


def healthy(stack: AirflowHost) -> tuple[bool, str]:
    try:
        report = health(stack)
    except OSError as exc:
        return False, f"not answering: {exc}"
    states = {
        name: (report.get(key) or {}).get("status")
        for name, key in {"metadatabase": "metadatabase", **HEALTH_KEYS}.items()
    }
    bad = {k: v for k, v in states.items() if v != "healthy"}
    return not bad, ", ".join(f"{k} {v}" for k, v in states.items())


def running(stack: AirflowHost) -> list[str]:
    return [c for c in COMPONENTS if stack.state.running(service(c))]


def start(stack: AirflowHost, progress: Callable[[str], None], timeout: float = 180) -> None:
    """Start the four components (those not running yet) and wait until Airflow reports them all healthy."""
    missing = [c for c in COMPONENTS if not stack.state.running(service(c))]
    if not missing:
        progress(f"Airflow already running: {base_url(stack)}")
        return
    if "api-server" in missing:
        ensure_port_free(stack.settings.host, stack.settings.airflow_port, "Airflow api-server", "AIRFLOW_PORT")
    stack.migrate_airflow(progress)
    env = environment(stack)
    airflow = str(Path(sys.executable).parent / "airflow")
    logs = stack.home / "logs"
    for component in missing:
        argv = [airflow, component]
        if component == "api-server":
            argv += ["--host", stack.settings.host, "--port", str(stack.settings.airflow_port)]
        pid = spawn(argv, logs / f"{service(component)}.log", env=env, cwd=stack.home)
        stack.state.record(service(component), pid)
        progress(f"Airflow {component}: started (pid {pid}, log {logs / f'{service(component)}.log'})")
    deadline = time.monotonic() + timeout
    detail = ""
    while time.monotonic() < deadline:
        dead = [c for c in COMPONENTS if not stack.state.running(service(c))]
        if dead:
            log = logs / f"{service(dead[0])}.log"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else ""
            stop(stack, lambda _m: None)
            raise StackError(f"Airflow {dead[0]} exited; last lines of {log}:\n{tail}")
        ok, detail = healthy(stack)
        if ok:
            progress(f"Airflow is healthy: {detail}")
            progress(f"UI: {base_url(stack)}  login: {USER} / {password(stack)}  (DAGs start paused)")
            return
        time.sleep(2)
    raise StackError(f"Airflow did not become healthy within {timeout:.0f} s ({detail}); logs under {logs}")


def stop(stack: AirflowHost, progress: Callable[[str], None]) -> None:
    """Stop every recorded component and all the processes it started (task runners, uvicorn workers)."""
    records = stack.state.load()
    for component in reversed(COMPONENTS):
        record = records.get(service(component))
        if record is None:
            continue
        began = time.monotonic()
        stopped = stop_process(record, timeout=30, progress=progress)
        took = f" in {time.monotonic() - began:.1f} s" if stopped else ""
        progress(f"Airflow {component}: {'stopped' if stopped else 'was not running'}{took} (pid {record.pid})")
        stack.state.forget(service(component))
