"""A small client of Airflow 3's REST API for the tests that run `make airflow`'s components (token from the simple
auth manager's generated password)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from recsys_local import airflow_services


class AirflowApi:
    def __init__(self, stack: Any) -> None:
        self.url, self.token = airflow_services.base_url(stack), ""
        credentials = {"username": airflow_services.USER, "password": airflow_services.password(stack)}
        self.token = self.call("POST", "/auth/token", credentials)["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, method=method, data=data, headers=headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            text = response.read()
            return json.loads(text) if text else {}

    def drop_catch_up_run(self, dag_id: str, dag_run: dict) -> bool:
        """Unpausing a scheduled DAG (catchup off) creates its latest interval's run: delete it while queued, so a
        test's own run is the only one. True when ``dag_run`` was such a run."""
        if dag_run["run_type"] != "scheduled" or dag_run["state"] != "queued":
            return False
        self.call("DELETE", f"/api/v2/dags/{dag_id}/dagRuns/{dag_run['dag_run_id']}")
        return True

    def wait_for_dags(self, dag_ids: set[str] | list[str] | tuple[str, ...], timeout: float = 300) -> None:
        """Wait until the dag-processor has listed every DAG of ``dag_ids``."""
        deadline = time.monotonic() + timeout
        listed: set[str] = set()
        while time.monotonic() < deadline:
            listed = {d["dag_id"] for d in self.call("GET", "/api/v2/dags?limit=100")["dags"]}
            if set(dag_ids) <= listed:
                return
            time.sleep(3)
        raise AssertionError(f"not listed after {timeout:.0f} s: {sorted(set(dag_ids) - listed)}")

    def end_unfinished_runs(self, dag_id: str) -> None:
        """Mark failed the runs an interrupted earlier session left queued or running (they would hold
        ``max_active_runs``)."""
        for stale in self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?state=running&state=queued")["dag_runs"]:
            self.call("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{stale['dag_run_id']}", {"state": "failed"})
