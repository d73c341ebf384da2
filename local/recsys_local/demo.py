"""`make demo`: run the platform's DAGs end to end on the local stack (which `make up` started) and summarise.

Each DAG runs in-process with ``airflow dags test`` (the same DAG code a scheduler runs), its output in
``.local/logs/demo-<dag>.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recsys.config import TRAINING_DATA_PREFIX
from recsys.etl.glue_job import MANIFEST_NAME
from recsys_local import mariadb, postgres
from recsys_local.identity import IDENTITY_VARIABLES
from recsys_local.settings import stack_settings
from recsys_local.stack import Stack

#: DAG runs of the demo, in order, with their run configuration.
DEMO_RUNS: list[tuple[str, dict[str, object]]] = [
    ("platform_health", {}),
    ("batch_training_data", {}),
    ("recommender_model", {}),
    ("vector_db_embeddings", {}),
    ("streaming_recommendations", {}),
]


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def run_dag(stack: Stack, dag_id: str, conf: dict[str, object]) -> None:
    log = stack.home / "logs" / f"demo-{dag_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    airflow = shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow"
    env = {**os.environ, **stack.environment()}
    started = time.monotonic()
    say(f"running DAG {dag_id} (log: {log})")
    with open(log, "w") as out:
        result = subprocess.run(
            [airflow, "dags", "test", dag_id, "--conf", json.dumps(conf)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    text = log.read_text(errors="replace")
    finished = [line for line in text.splitlines() if "DagRun Finished:" in line]
    if result.returncode != 0 or not finished or "state=success" not in finished[-1]:
        tail = "\n".join(text.splitlines()[-40:])
        raise SystemExit(f"[demo] DAG {dag_id} failed after {time.monotonic() - started:.0f} s; last lines:\n{tail}")
    say(f"DAG {dag_id} succeeded in {time.monotonic() - started:.0f} s")


def summary(stack: Stack) -> None:
    with mariadb.connect(stack.mariadb()) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), MIN(productRating), MAX(productRating) FROM ratings")
        ratings, low, high = cur.fetchone()
    say(f"MySQL source {stack.settings.host}:{stack.settings.mysql_port}: {ratings:,} ratings from {low} to {high}")
    ok, detail = postgres.healthy(stack.vectordb())
    if not ok:
        raise SystemExit(f"[demo] vector DB unhealthy: {detail}")
    cfg = stack.vectordb()
    from recsys.vectordb.loader import current_state
    from recsys_serving import search

    with search.connect(**cfg.conninfo()) as c:
        state = current_state(c)
        first = c.execute("SELECT id FROM item_emb ORDER BY id LIMIT 1").fetchone()[0]
        similar = search.items_from_item(c, first, k=5)
    detail += f"; model {state['model_version']}: {state['items']} item and {state['users']} user embeddings"
    detail += f"; items like {first}: " + ", ".join(f"{code} ({score:.2f})" for code, score in similar)
    say(f"vector DB {stack.settings.host}:{stack.settings.vector_db_port}: {detail}")
    manifest = _training_manifest(stack)
    if manifest:
        say(
            f"training data s3://{stack.settings.names.datalake_bucket}/{TRAINING_DATA_PREFIX}: "
            f"{manifest['output_rows']:,} rows in {manifest['partition_count']:,} partitions, "
            f"excluded {manifest['excluded']}"
        )
    ranking = _live_ranking(stack)
    if ranking:
        k = ranking["k"]

        def figures(name: str) -> str:
            r = ranking[name]
            return f"NDCG@{k} {r[f'ndcg@{k}']:.3f}, recall@{k} {r[f'recall@{k}']:.3f}, MAP@{k} {r[f'map@{k}']:.3f}"

        say(
            f"model {ranking['model_version']} on held-out ratings ({ranking['users']} users): model "
            f"{figures('model')}; most popular {figures('most_popular')}; random {figures('random')}"
        )
        gate = ranking["gate"]
        if "interval_95" in gate:
            low, high = gate["interval_95"]
            say(
                f"the gate: NDCG@{k} minus {gate['baseline'].replace('_', ' ')}'s {gate['difference']:+.3f}, 95% "
                f"interval [{low:+.3f}, {high:+.3f}] over {gate['users']} customers (the gate asks a lower bound "
                f"above zero and {gate['margin']}x the baseline)"
            )
    say(f"AWS endpoint {stack.settings.aws_endpoint_url}; environment in {stack.settings.env_file}")
    say("the stack keeps running: `make status`, `make down`")


def _live_ranking(stack: Stack) -> dict | None:
    """The live version's held-out ranking against its baselines (``versions/<v>/metrics.json``)."""
    from recsys.model.artifacts import VERSION_METRICS, read_pointer

    s3 = stack.client("s3")
    bucket = stack.settings.names.ml_artifacts_bucket
    try:
        prefix = read_pointer(s3, bucket)["prefix"]
        metrics = json.loads(s3.get_object(Bucket=bucket, Key=prefix + VERSION_METRICS)["Body"].read())
    except s3.exceptions.ClientError:
        return None
    return {"model_version": metrics["model_version"], "gate": metrics.get("gate") or {}, **metrics["ranking"]}


def _training_manifest(stack: Stack) -> dict | None:

    s3 = stack.client("s3")
    try:
        body = s3.get_object(Bucket=stack.settings.names.datalake_bucket, Key=f"{TRAINING_DATA_PREFIX}{MANIFEST_NAME}")
    except s3.exceptions.ClientError:
        return None
    return json.loads(body["Body"].read())


def stream_traffic(stack: Stack, count: int = 20, timeout: float = 180) -> None:
    """Put ``count`` generated events on the stream and wait until each is delivered or under the error prefix."""
    import random

    # the producer stands for the product's web servers, not the platform: the administrator's key, not the workers'
    for key in IDENTITY_VARIABLES:
        os.environ.pop(key, None)
    for key, value in stack.admin_environment().items():
        if key.startswith(("AIRFLOW_CONN_", "AWS_", "RECSYS_")):
            os.environ[key] = value
    # Read when Airflow is first imported (below): the hooks' info lines (statements run, credentials found) would
    # otherwise interleave with the demo's own output.
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
    from recsys.streaming.generator import load_catalog, make_event, put_events

    customers, products = load_catalog()
    events = [make_event(random.Random(7 + i), customers, products) for i in range(count)]  # noqa: S311
    for event in events:  # fresh ids: objects of an earlier demo (kept in the local S3) must not count as delivered
        event["session_id"] = str(uuid.uuid4())
    put_at = datetime.now(UTC) - timedelta(seconds=1)
    put_failures = put_events(events, stack.settings.names.kinesis_stream)
    if put_failures:
        raise SystemExit(f"[demo] Kinesis refused {put_failures} of {count} events")
    say(f"put {count} generated events on {stack.settings.names.kinesis_stream}; waiting for Firehose delivery")
    sessions = {e["session_id"] for e in events}
    s3 = stack.client("s3")
    from recsys_local.outputs import Deliveries, scan

    found = Deliveries()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and found.arrived() < count:
        time.sleep(2)
        scan(s3, stack.settings.names.recommendations_bucket, sessions, put_at, into=found)
    delivered, failed = found.delivered, found.failed
    keys = sorted({key for places in delivered.values() for key, _ in places})
    say(
        f"events sent {count} = delivered {len(delivered)} + under the error prefix {len(failed)}; "
        f"objects: {', '.join(keys[:3])}"
    )
    if len(delivered) + len(failed) != count:
        raise SystemExit(f"[demo] only {len(delivered) + len(failed)} of {count} events arrived in {timeout:.0f} s")


#: What ``make demo`` applies in the background while the DAGs before a root's own DAG run, by that DAG: the root and
#: either None (all of it: it depends on no other root) or the addresses to create early (Terraform's ``-target``:
#: the root's slowest resources, which need nothing the DAGs before it produce). Each is mostly the provider's own
#: waits, on AWS as here: the RDS instance (a minute before the first poll, then three "available" answers 10 s
#: apart), the bucket's lifecycle configuration (55 s of consistent reads), the Kinesis stream (~30 s). The DAG still
#: runs its own apply, which finds these done and creates the rest.
EARLY_APPLIES: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "vector_db_embeddings": ("vector_db", None),
    "streaming_recommendations": (
        "streaming_inference",
        ("module.streaming_inference.module.recommendations", "module.streaming_inference.aws_kinesis_stream.activity"),
    ),
}
#: The streaming root requires its Lambdas' package keys, which only its DAG builds; the part applied early reads
#: neither.
_UNREAD_PACKAGE_KEYS = {
    "transformation_package_key": "lambda/built-by-the-dag.zip",
    "model_inference_package_key": "lambda/built-by-the-dag.zip",
}


#: Niceness of the background applies: their Terraform and provider processes yield both cores to the DAG in front
#: (the applies mostly wait on the provider; their plans are the CPU they take).
BACKGROUND_NICENESS = 10


class EarlyApply:
    """One entry of :data:`EARLY_APPLIES`, applied in a background thread at :data:`BACKGROUND_NICENESS`. A failure
    here is only reported: the DAG's own apply (with its retries) is the one that counts."""

    def __init__(self, stack: Stack, pipeline: str, addresses: tuple[str, ...] | None) -> None:
        import threading

        self.pipeline = pipeline
        self.addresses = addresses
        self.what = f"terraform/{pipeline}" + (" (its slowest resources)" if addresses else "")
        self.log = stack.home / "logs" / f"demo-terraform-{pipeline}.log"
        self.env = {**os.environ, **stack.environment()}
        self.error: str | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._apply, name=f"early-apply-{pipeline}", daemon=True)

    def start(self) -> None:
        say(f"applying {self.what} in the background while the DAGs before it run (log: {self.log})")
        self._thread.start()

    def _apply(self) -> None:
        import contextlib
        import logging
        import threading

        from recsys.provisioning import provisioner

        self.log.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.log, mode="w")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(lambda record: record.threadName == self._thread.name)  # not the other early applies
        logger = logging.getLogger("recsys.provisioning")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        started = time.monotonic()
        with contextlib.suppress(OSError):  # Linux: this thread only, and the processes it starts inherit it
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
        try:
            if self.addresses:
                provisioner(self.env).apply_part(self.pipeline, self.addresses, _UNREAD_PACKAGE_KEYS)
            else:
                provisioner(self.env).provision(self.pipeline)
        except Exception as exc:  # the DAG applies it again and fails there with its own retries and message
            self.error = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        finally:
            self.seconds = time.monotonic() - started
            logger.removeHandler(handler)
            handler.close()

    def join(self) -> None:
        if self._thread.is_alive():
            say(f"waiting for the background apply of {self.what}")
        self._thread.join()
        if self.error:
            say(f"the background apply of {self.what} failed ({self.error}); the DAG applies it again")
        else:
            say(f"{self.what} ready in {self.seconds:.0f} s (applied in the background)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recsys_local.demo",
        description="Run the platform's DAGs end to end on the local stack (start it first: make up).",
    )
    parser.add_argument("--only", nargs="*", metavar="DAG_ID", help="run only these DAGs of the demo")
    args = parser.parse_args(argv)
    stack = Stack(stack_settings())
    runs = [(dag_id, conf) for dag_id, conf in DEMO_RUNS if not args.only or dag_id in args.only]
    early: dict[str, EarlyApply] = {}
    for dag_id, _ in runs[1:]:  # a DAG runs before it: overlap its root's slow part with that DAG
        if dag_id in EARLY_APPLIES:
            early[dag_id] = EarlyApply(stack, *EARLY_APPLIES[dag_id])
            early[dag_id].start()
    try:
        for dag_id, conf in runs:
            if dag_id in early:
                early.pop(dag_id).join()
            run_dag(stack, dag_id, conf)
    finally:
        for apply in early.values():  # an earlier DAG failed: let the applies finish (they hold the roots' locks)
            apply.join()
    if not args.only or "streaming_recommendations" in args.only:
        stream_traffic(stack)
    summary(stack)
    return 0


if __name__ == "__main__":
    sys.exit(main())
