"""Defaults every DAG shares (owner, retries with backoff, failure logging), so no DAG file copies them."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from recsys.config import parse_time_setting

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


DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    # read when a DAG file is parsed (recsys.config says why): Airflow fixes them in the DAG's definition
    "retries": parse_time_setting("task_retries"),
    "retry_delay": timedelta(seconds=parse_time_setting("retry_delay_seconds")),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "on_failure_callback": log_failure,
}
