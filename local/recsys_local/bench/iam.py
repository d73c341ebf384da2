"""IAM enforcement suite: what the local endpoint's authorization adds to DAG runs (issue 34: at most 10% of the DAG
phase). Runs ``platform_health`` and ``vector_db_embeddings`` on the deployed stack (run `make demo` first), as the
workers' role, and reads the endpoint's counters before and after (``GET /_recsys/iam-timing``): the seconds spent
deciding the runs' requests, against the runs' wall time. Each request waits for its decision, so the sum is an
upper bound of the time enforcement added (requests made in parallel count once each)."""

from __future__ import annotations

import json
import time

import urllib3

from recsys_local.bench import Entry, say
from recsys_local.settings import stack_settings
from recsys_local.stack import Stack

#: Two DAGs with many AWS calls of several services (S3, Secrets Manager, STS, Terraform's plan of a whole root)
RUNS: tuple[tuple[str, dict[str, object]], ...] = (("platform_health", {}), ("vector_db_embeddings", {}))
TARGET = 0.10


def counters(endpoint: str) -> dict[str, float]:
    from recsys_local.iam_enforce import TIMING_PATH

    try:
        answer = urllib3.request("GET", endpoint.rstrip("/") + TIMING_PATH, timeout=10, retries=False)
        return json.loads(answer.data)
    except (urllib3.exceptions.HTTPError, ValueError) as error:
        raise RuntimeError(f"the endpoint {endpoint} answers no IAM counters ({error}): is enforcement on?") from None


def run(quick: bool) -> list[Entry]:
    from recsys_local.bench.end_to_end import NotDeployed
    from recsys_local.demo import run_dag

    stack = Stack(stack_settings())
    if stack.settings.iam_enforcement == "off":
        raise NotDeployed("LOCAL_IAM_ENFORCEMENT is off on this stack: enforcement adds nothing to measure")
    endpoint = stack.settings.aws_endpoint_url
    runs = RUNS[:1] if quick else RUNS
    before, started = counters(endpoint), time.monotonic()
    for dag_id, conf in runs:
        run_dag(stack, dag_id, conf)
    wall, after = time.monotonic() - started, counters(endpoint)
    spent = after["seconds"] - before["seconds"]
    requests = int(after["authorized"] - before["authorized"])
    say(f"{requests} signed requests authorized in {spent:.2f} s during {wall:.1f} s of DAG runs")
    return [
        Entry(
            name="IAM enforcement: time deciding the DAG runs' requests, share of their wall time",
            value=round(spent, 3),
            unit="s",
            reference_name=f"wall time of {', '.join(d for d, _ in runs)} (airflow dags test)",
            reference=round(wall, 2),
            target=TARGET,
            detail={"requests": requests, "ms_per_request": round(1000 * spent / max(requests, 1), 3)},
        )
    ]
