"""Streaming suite: the transformation handler against the lab's design, cold start, package sizes.

* **warm ms per record**: :func:`recsys_serving.transformation_handler.transform` on 500-record Firehose batches
  (a trained model's bundle, its embeddings loaded into the local vector DB, one warm connection), against the
  lab's design measured in the same run: one HTTP call per model-inference request per record (user embedding,
  items for the user, items similar to the cart's anchor item) to a local server running the same inference code
  (:mod:`recsys_serving.inference_api` in its own process). Targets: <= 0.25 ms per record, >= 100x faster.
* **cold start**: a fresh interpreter importing the handler, loading the bundle from its files and connecting over
  TLS, against a bare interpreter's start. Target: <= 1.5 s.
* **zip sizes**: both Lambda packages as the deploy DAG builds them, against Lambda's 50 MB direct-upload limit.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import multiprocessing
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from recsys.config import project_root
from recsys_local.bench import (
    Entry,
    drop_scratch_database,
    remove_scratch_bucket,
    say,
    scratch_database,
    train_on_generated,
)
from recsys_local.settings import stack_settings
from recsys_local.stack import Stack
from recsys_serving.events import browsed_item

BENCH_DB = "recsys_bench_stream"
BATCH = 500
VERSION = "bench-stream"


def _world(stack: Stack, tmp: Path, quick: bool) -> dict[str, Any]:
    """Generated source data -> a trained model -> its embeddings in a scratch database; the bundle's files."""
    from recsys.model.artifacts import embeddings_csv
    from recsys.vectordb.loader import load
    from recsys_local.seed.generator import SeedSpec
    from recsys_serving import search

    spec = SeedSpec(customers=500, products=110, ratings=8000, seed=11) if quick else SeedSpec(seed=11)
    say(f"training a model on generated data ({spec.customers} customers, {spec.ratings} ratings)")
    result, data = train_on_generated(spec, epochs=5 if quick else 20, seed=3)
    (tmp / "items.csv").write_bytes(embeddings_csv(result.item_ids, result.item_embeddings))
    (tmp / "users.csv").write_bytes(embeddings_csv(result.user_ids, result.user_embeddings))
    connect = scratch_database(stack, BENCH_DB)
    with search.connect(**connect) as conn:
        load(conn, tmp / "items.csv", tmp / "users.csv", VERSION)
    bundle = result.bundle(VERSION)
    npz, meta = bundle.to_files()
    (tmp / "bundle.npz").write_bytes(npz)
    (tmp / "bundle.json").write_bytes(meta)
    products = data["products"][data["products"].productCode.isin(result.item_ids)].reset_index(drop=True)
    return {"connect": connect, "bundle": bundle, "products": products}


def _events(products: Any, n: int) -> list[dict[str, Any]]:
    import random

    rng = random.Random(5)  # noqa: S311 - sample data, not security
    cities = [("Nantes", "France"), ("NYC", "USA"), ("Madrid", "Spain"), ("Oslo", "Norway")]
    events = []
    for i in range(n):
        city, country = rng.choice(cities)
        picks = rng.sample(range(len(products)), 3)
        events.append(
            {
                "session_id": f"s{i}",
                "customer_number": 100000 + i,
                "city": city,
                "country": country,
                "credit_limit": float(rng.randrange(0, 200000)),
                "event_time": "2026-11-27T10:00:00Z",
                "browse_history": [
                    browsed_item(products.iloc[p], in_shopping_cart=j == 2) for j, p in enumerate(picks)
                ],
            }
        )
    return events


def _records(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "recordId": str(i),
            "approximateArrivalTimestamp": 0,
            "data": base64.b64encode(json.dumps(e).encode()).decode(),
        }
        for i, e in enumerate(events)
    ]


def measure_handler(world: dict[str, Any], events: list[dict[str, Any]], rounds: int) -> float:
    """Warm ms per record of the transformation on 500-record batches."""
    from recsys_serving import search
    from recsys_serving.transformation_handler import transform

    batches = [_records(events[i : i + BATCH]) for i in range(0, len(events), BATCH)]
    with search.connect(**world["connect"]) as conn:
        out = transform(batches[0], conn, world["bundle"])  # warm-up
        failed = [r for r in out if r["result"] != "Ok"]
        if failed:
            raise RuntimeError(f"the handler failed {len(failed)} of {len(out)} records: {failed[0]}")
        started = time.perf_counter()
        for _ in range(rounds):
            for batch in batches:
                transform(batch, conn, world["bundle"])
        elapsed = time.perf_counter() - started
    return elapsed * 1000 / (rounds * len(events))


def _serve(port_queue: Any, connect: dict[str, Any], bundle_dir: str) -> None:
    """The lab's model-inference endpoint: the same inference code behind HTTP (one process, warm state)."""
    import os

    from recsys_serving import inference_api, runtime, search
    from recsys_serving.bundle import InferenceBundle

    os.environ["MODEL_VERSION"] = VERSION
    folder = Path(bundle_dir)
    runtime._state["bundle"] = InferenceBundle.from_files(
        (folder / "bundle.npz").read_bytes(), (folder / "bundle.json").read_bytes()
    )
    runtime._state["resolved_at"] = time.monotonic()
    runtime._state["conn"] = search.connect(**connect)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to each small request: an unfair reference

        def _answer(self, method: str) -> None:
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode() if length else None
            params = dict(urllib.parse.parse_qsl(query))
            event = {
                "rawPath": path,
                "requestContext": {"http": {"method": method}},
                "queryStringParameters": params,
                "body": body,
            }
            response = inference_api.handler(event)
            payload = response["body"].encode()
            self.send_response(response["statusCode"])
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_port)
    server.serve_forever()


def measure_lab_design(world: dict[str, Any], events: list[dict[str, Any]], bundle_dir: Path) -> float:
    """Ms per record of the lab's transformation: three HTTP calls per record to the inference endpoint."""
    import http.client

    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    server = context.Process(target=_serve, args=(ports, world["connect"], str(bundle_dir)), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=120)
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # keep-alive, as a warm Lambda would
        client.connect()
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def call(method: str, path: str, body: Any = None) -> Any:
            data = json.dumps(body).encode() if body is not None else None
            client.request(method, path, body=data, headers={"content-type": "application/json"})
            response = client.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(f"{method} {path}: {response.status} {payload[:200]!r}")
            return json.loads(payload)

        def one(event: dict[str, Any]) -> None:
            for method, path, query, body in _lab_calls(event):
                call(method, f"{path}?{urllib.parse.urlencode(query)}" if query else path, body)

        one(events[0])  # warm-up
        started = time.perf_counter()
        for event in events:
            one(event)
        return (time.perf_counter() - started) * 1000 / len(events)
    finally:
        server.terminate()
        server.join(10)


def _lab_calls(event: dict[str, Any]) -> list[tuple[str, str, dict[str, str], Any]]:
    """The lab transformation's three model-inference requests for one record: (method, path, query, body)."""
    user = {"city": event["city"], "country": event["country"], "credit_limit": event["credit_limit"]}
    anchor = event["browse_history"][-1]["product_code"]
    return [
        ("POST", "/user_embeddings", {}, user),
        ("POST", "/items_from_user", {"limit": "5"}, user),
        ("GET", "/items_from_item", {"item_id": anchor, "limit": "5"}, None),
    ]


def _scratch_names(stack: Stack) -> dict[str, str]:
    """The scratch function's resources on the stack's endpoint, named apart from the platform's."""
    prefix = stack.settings.names.prefix
    return {
        "function": f"{prefix}-bench-model-inference",
        "bucket": f"{prefix}-bench-ml-artifacts",
        "secret": f"{prefix}-bench-vector-db",
        "role": f"{prefix}-bench-lambda",
    }


def remove_inference_function(stack: Stack) -> None:
    """Delete what :func:`deploy_inference_function` made (the bench leaves nothing on the stack); each part that is
    already gone is skipped."""
    names = _scratch_names(stack)
    s3, secrets, iam, lam = (stack.client(s) for s in ("s3", "secretsmanager", "iam", "lambda"))
    with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
        lam.delete_function(FunctionName=names["function"])
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_role_policy(RoleName=names["role"], PolicyName="bench")
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_role(RoleName=names["role"])
    with contextlib.suppress(secrets.exceptions.ResourceNotFoundException):
        secrets.delete_secret(SecretId=names["secret"], ForceDeleteWithoutRecovery=True)
    remove_scratch_bucket(s3, names["bucket"])


def deploy_inference_function(stack: Stack, world: dict[str, Any], zip_path: Path, bundle_dir: Path) -> str:
    """The model-inference package deployed as a scratch function on the local endpoint, configured as Terraform
    configures ``<prefix>-model-inference`` (its bundle in a bucket, credentials in a secret, verify-full TLS);
    returns its name (:func:`remove_inference_function` deletes it all)."""
    names = _scratch_names(stack)
    name, bucket = names["function"], names["bucket"]
    s3, secrets, iam, lam = (stack.client(s) for s in ("s3", "secretsmanager", "iam", "lambda"))
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    for suffix in ("npz", "json"):
        s3.put_object(
            Bucket=bucket,
            Key=f"versions/{VERSION}/model/inference_bundle.{suffix}",
            Body=(bundle_dir / f"bundle.{suffix}").read_bytes(),
        )
    connect = world["connect"]
    secret = json.dumps({"username": connect["user"], "password": connect["password"]})
    try:
        arn = secrets.create_secret(Name=names["secret"], SecretString=secret)["ARN"]
    except secrets.exceptions.ResourceExistsException:
        arn = secrets.put_secret_value(SecretId=names["secret"], SecretString=secret)["ARN"]
    statement = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    trust = {"Version": "2012-10-17", "Statement": [statement]}
    try:
        role = iam.create_role(RoleName=names["role"], AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName=names["role"])
    # what the streaming root grants the model-inference function, on the bench's own bucket and secret (the endpoint
    # enforces IAM: a role without a policy is refused, as in AWS)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"arn:aws:logs:*:*:log-group:/aws/lambda/{name}:*",
            },
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/versions/*/model/*"},
        ],
    }
    iam.put_role_policy(RoleName=names["role"], PolicyName="bench", PolicyDocument=json.dumps(policy))
    with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
        lam.delete_function(FunctionName=name)
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="recsys_serving.inference_api.handler",
        Code={"ZipFile": zip_path.read_bytes()},
        Timeout=30,
        MemorySize=1024,
        Environment={
            "Variables": {
                "VECTOR_DB_SECRET_ARN": arn,
                "VECTOR_DB_HOST": connect["host"],
                "VECTOR_DB_PORT": str(connect["port"]),
                "VECTOR_DB_NAME": connect["dbname"],
                "VECTOR_DB_SSLMODE": "verify-full",
                "VECTOR_DB_SSLROOTCERT": "certs/vector-db-ca.pem",
                "ML_ARTIFACTS_BUCKET": bucket,
                "MODEL_VERSION": VERSION,
            }
        },
    )
    return name


def measure_lab_design_lambda(stack: Stack, function: str, events: list[dict[str, Any]]) -> float:
    """Ms per record of the lab's transformation as the lab deployed it: each of the three requests per record is
    an invocation of the model-inference function (here through the local endpoint's Lambda ``Invoke``; in the lab
    an HTTPS call to its Function URL), the caller's connection kept alive."""
    lam = stack.client("lambda")

    def one(event: dict[str, Any]) -> None:
        for method, path, query, body in _lab_calls(event):
            payload = {
                "rawPath": path,
                "requestContext": {"http": {"method": method}},
                "queryStringParameters": query,
                "body": json.dumps(body) if body is not None else None,
            }
            response = lam.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
            answer = json.loads(response["Payload"].read())
            if response.get("FunctionError") or answer.get("statusCode") != 200:
                raise RuntimeError(f"{method} {path} through Lambda: {str(answer)[:300]}")

    one(events[0])  # cold start outside the measurement
    started = time.perf_counter()
    for event in events:
        one(event)
    return (time.perf_counter() - started) * 1000 / len(events)


COLD = """
import sys, time
started = time.perf_counter()
sys.path.insert(0, {include!r})
from recsys_serving import transformation_handler  # noqa: F401  (imports what the function imports)
from recsys_serving.bundle import InferenceBundle
from recsys_serving import search
from pathlib import Path
folder = Path({folder!r})
bundle = InferenceBundle.from_files((folder / "bundle.npz").read_bytes(), (folder / "bundle.json").read_bytes())
conn = search.connect(**{connect!r})
conn.execute("SELECT 1")
print(time.perf_counter() - started)
"""


def measure_cold_start(world: dict[str, Any], bundle_dir: Path, runs: int) -> tuple[float, float]:
    """Median seconds of a cold start, and of a bare interpreter's start (both as child processes)."""
    include = str(project_root() / "include")
    cold, bare = [], []
    for _ in range(runs):
        code = COLD.format(include=include, folder=str(bundle_dir), connect=world["connect"])
        started = time.perf_counter()
        # the code (with the connection's password) goes in on stdin, never on a command line
        subprocess.run([sys.executable, "-"], input=code, check=True, capture_output=True, text=True)
        cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - started)
    return statistics.median(cold), statistics.median(bare)


def run(quick: bool) -> list[Entry]:
    stack = Stack(stack_settings())
    try:
        return _measure(stack, quick)
    finally:  # the bench leaves nothing on the stack
        remove_inference_function(stack)
        drop_scratch_database(stack, BENCH_DB)


def _measure(stack: Stack, quick: bool) -> list[Entry]:
    from recsys.streaming.packaging import MAX_ZIPPED, build
    from recsys_local.tls import files

    entries: list[Entry] = []
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp_name:
        tmp = Path(tmp_name)
        world = _world(stack, tmp, quick)
        cache = Path(tempfile.gettempdir()) / "recsys-lambda-cache"
        packages = {
            f: build(f, tmp / "zips", cache, files(stack.home).ca) for f in ("transformation", "model_inference")
        }
        events = _events(world["products"], 1000 if quick else 5000)
        say(f"the handler on {len(events)} events in {BATCH}-record batches")
        ours = measure_handler(world, events, rounds=2 if quick else 5)
        lab_events = events[: 100 if quick else 300]
        say(
            f"handler: {ours:.3f} ms/record; the lab's design (3 model-inference invocations per record) "
            f"on {len(lab_events)} records"
        )
        function = deploy_inference_function(stack, world, Path(packages["model_inference"].path), tmp)
        lab = measure_lab_design_lambda(stack, function, lab_events)
        say(f"lab design through the local Lambda invoke: {lab:.2f} ms/record; now on a bare loopback HTTP server")
        loopback = measure_lab_design(world, lab_events, tmp)
        say(f"lab design on a loopback keep-alive server: {loopback:.2f} ms/record")
        detail = {
            "records": len(events),
            "lab_records": len(lab_events),
            "lab_design_loopback_ms_per_record": round(loopback, 3),
            "speedup_vs_loopback": round(loopback / ours, 1),
        }
        entries.append(
            Entry(
                name=f"transformation, warm, {BATCH}-record batches",
                value=round(ours, 4),
                unit="ms/record",
                reference_name="lab design: 3 model-inference invocations per record",
                reference=round(lab, 3),
                target=0.01,
                detail=detail,
            )
        )
        entries.append(
            Entry(
                name=f"transformation, warm, {BATCH}-record batches (absolute)",
                value=round(ours, 4),
                unit="ms/record",
                reference_name="lab design",
                reference=round(lab, 3),
                target=0.25,
                absolute=True,
            )
        )
        cold, bare = measure_cold_start(world, tmp, runs=3 if quick else 7)
        say(f"cold start {cold:.2f} s (bare interpreter {bare:.2f} s)")
        entries.append(
            Entry(
                name="cold start: imports, bundle load, TLS connection",
                value=round(cold, 3),
                unit="s",
                reference_name="bare interpreter start",
                reference=round(bare, 3),
                target=1.5,
                absolute=True,
            )
        )
        for function_name, package in packages.items():
            entries.append(
                Entry(
                    name=f"Lambda package size: {function_name}",
                    value=round(package.size / 1e6, 2),
                    unit="MB",
                    reference_name="Lambda direct-upload limit",
                    reference=round(MAX_ZIPPED / 1e6, 2),
                    target=50.0,
                    absolute=True,
                    detail={"unzipped_mb": round(package.unzipped_size / 1e6, 2)},
                )
            )
    return entries
