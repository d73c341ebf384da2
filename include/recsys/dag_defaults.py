"""Defaults every DAG shares (owner, retries with backoff, failure logging), so no DAG file copies them."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

OWNER = "data-platform"


def log_failure(context: dict[str, Any]) -> None:
    """Failure callback: one line naming the DAG, task, try and error (alerting hooks in here)."""
    ti = context.get("task_instance")
    log.error(
        "task failed: dag=%s task=%s try=%s error=%s",
        getattr(ti, "dag_id", "?"),
        getattr(ti, "task_id", "?"),
        getattr(ti, "try_number", "?"),
        context.get("exception"),
    )


def _retry_delay() -> timedelta:
    """``RECSYS_RETRY_DELAY_SECONDS`` (default 60): tests shorten it so a failing DAG run ends quickly."""
    try:
        return timedelta(seconds=float(os.environ.get("RECSYS_RETRY_DELAY_SECONDS", "60")))
    except ValueError:
        return timedelta(minutes=1)


def _retries() -> int:
    """``RECSYS_TASK_RETRIES`` (default 2): how often every task is retried after a failure."""
    try:
        return max(0, int(os.environ.get("RECSYS_TASK_RETRIES", "2")))
    except ValueError:
        return 2


DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": _retries(),
    "retry_delay": _retry_delay(),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "on_failure_callback": log_failure,
}
