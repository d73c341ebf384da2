"""The whole platform on the test stack: batch -> model -> vector DB -> streaming deploy, then generated traffic."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from recsys.vectordb.roles import LOADER_ROLE, READER_ROLE
from recsys_local import airflow_db

# the budget of each test here: may start the session's chain (deployed_platform)
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(1500)]


def test_deploy_dag_then_generated_events_all_arrive(stack, deployed_platform, monkeypatch):
    started = deployed_platform["started"]
    states = deployed_platform["states"]["streaming_recommendations"]
    # the deploy ran its checks (a skipped smoke test also ends in a successful run)
    for task in ("check_transformation_lambda", "verify_transformation_response", "verify_smoke_delivery"):
        assert states[task] == "success", states
    assert set(states.values()) == {"success"}, states

    env = stack.admin_environment()  # the producer stands for the web servers, not the platform
    for key, value in env.items():
        if key.startswith(("AIRFLOW_CONN_", "AWS_", "RECSYS_")):
            monkeypatch.setenv(key, value)
    from recsys.streaming.generator import load_catalog, make_event, put_events

    customers, products = load_catalog()
    import random

    rng = random.Random(5)
    events = [make_event(rng, customers, products) for _ in range(20)]
    for event in events:  # fresh ids: the test stack's S3 keeps objects of earlier sessions with the seeded ids
        event["session_id"] = str(uuid.uuid4())
    events[3]["event_time"] = "2026-11-26T10:00Z"  # one bad record (not RFC 3339) goes to the error prefix
    events[4]["browse_history"][0]["product_code"] = "S99_NEWPRODUCT"  # new since training: cold start
    events[4]["browse_history"][0]["in_shopping_cart"] = True
    assert put_events(events, stack.settings.names.kinesis_stream) == 0

    s3 = stack.client("s3")
    bucket = stack.settings.names.recommendations_bucket
    sessions = {e["session_id"] for e in events}
    hour = datetime.now(UTC).strftime("%Y/%m/%d/%H/")
    delivered, failed = {}, {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(delivered) + len(failed) < len(events):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
                for line in body.splitlines():
                    item = json.loads(line)
                    if obj["Key"].startswith("errors/"):
                        import base64

                        raw = json.loads(base64.b64decode(item["rawData"]))
                        if raw["session_id"] in sessions:
                            failed[raw["session_id"]] = item
                    elif item.get("session_id") in sessions:
                        delivered[item["session_id"]] = (obj["Key"], item)
        time.sleep(2)
    assert len(delivered) + len(failed) == len(events)
    assert set(failed) == {events[3]["session_id"]}
    assert all(key.startswith(hour) or key[:13] > hour[:13] for key, _ in delivered.values())
    assert all(item["recommended_items"] and item["similar_items"] for _, item in delivered.values())
    cold = delivered[events[4]["session_id"]][1]["similar_items"]
    assert {s["for_product_code"]: s["cold_start"] for s in cold}["S99_NEWPRODUCT"] is True
    assert all(s["items"] for s in cold)
    # the deploy DAG's smoke events never reach the production hours (objects of this run; the test stack keeps
    # those of earlier sessions)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if obj["LastModified"] >= started and not obj["Key"].startswith(("smoke-tests/", "errors/")):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
                assert '"session_id":"smoke-' not in body, obj["Key"]

    lam = stack.client("lambda")

    def call(method, path, query=None, body=None):
        event = {
            "requestContext": {"http": {"method": method}},
            "rawPath": path,
            "queryStringParameters": query or {},
            "body": json.dumps(body) if body is not None else "",
        }
        response = lam.invoke(
            FunctionName=stack.settings.names.model_inference_lambda, Payload=json.dumps(event).encode()
        )
        assert "FunctionError" not in response
        payload = json.loads(response["Payload"].read())
        return payload["statusCode"], json.loads(payload["body"])

    status, body = call("POST", "/user_embeddings", body={"city": "Paris", "country": "France", "credit_limit": 1000})
    assert status == 200
    assert len(body["embeddings"][0]) == 32
    status, body = call(
        "POST", "/items_from_user", {"limit": "3"}, {"city": "Nowhere", "country": "Mars", "credit_limit": None}
    )
    assert status == 200
    assert len(body["items"]) == 3
    code = products[0]["product_code"]
    status, body = call("GET", "/items_from_item", {"item_id": code, "limit": "4"})
    assert status == 200
    assert len(body["items"]) == 4
    assert code not in [i["product_code"] for i in body["items"]]
    assert call("GET", "/items_from_item", {"item_id": code, "limit": "many"})[0] == 400
    assert call("GET", "/items_from_item", {"item_id": "NO_SUCH"})[0] == 404
    for name in (stack.settings.names.model_inference_lambda, stack.settings.names.transformation_lambda):
        variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        assert variables["VECTOR_DB_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
        assert stack.secrets()["vector_db_password"] not in json.dumps(variables)
        # the read-only role's secret (recsys.vectordb.roles), never the master's
        secret = stack.client("secretsmanager").get_secret_value(SecretId=variables["VECTOR_DB_SECRET_ARN"])
        assert json.loads(secret["SecretString"])["username"] == READER_ROLE
    with psycopg.connect(**stack.vectordb().conninfo()) as conn:  # the loader owns what the vector DB DAG loaded
        owners = dict(
            conn.execute(
                "SELECT relname, pg_get_userbyid(relowner) FROM pg_class WHERE relkind IN ('r', 'v') "
                "AND relnamespace = 'public'::regnamespace AND relname ~ '^(item_emb|user_emb|embedding_versions)'"
            ).fetchall()
        )
    assert {"item_emb", "user_emb", "embedding_versions"} <= set(owners)
    assert set(owners.values()) == {LOADER_ROLE}, owners
    # the very credentials and TLS settings the deployed Lambdas use read the live tables and nothing more
    from recsys_serving import runtime
    from recsys_serving.credentials import from_secret_string

    lambda_secret = stack.client("secretsmanager").get_secret_value(SecretId=variables["VECTOR_DB_SECRET_ARN"])
    with monkeypatch.context() as env:
        env.setenv("VECTOR_DB_SSLMODE", variables["VECTOR_DB_SSLMODE"])
        env.setenv("VECTOR_DB_SSLROOTCERT", str(stack.vectordb().ca_file))
        tls_options = runtime.tls_options()
    assert tls_options["sslmode"] == "verify-full"
    lambda_conn = {
        **from_secret_string(lambda_secret["SecretString"], host=variables["VECTOR_DB_HOST"],
                             port=variables["VECTOR_DB_PORT"], dbname=variables["VECTOR_DB_NAME"]),
        **tls_options,
    }  # fmt: skip
    with psycopg.connect(**lambda_conn, autocommit=True) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT count(*) FROM item_emb").fetchone()[0] > 0
        conn.execute("SET default_transaction_read_only = off")
        for statement in ("DELETE FROM item_emb", "DROP VIEW item_emb", "CREATE TABLE planted (x int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_no_password_anywhere_after_the_whole_platform_ran(stack, deployed_platform):
    """After the whole chain (``deployed_platform``, and the traffic of the test above when it ran), the stack's
    passwords are only where they are meant to be (`secrets.json`, `stack.env`, the databases and the secrets
    store): not in the repository, task logs, the Airflow metadata DB (XCom, rendered fields), Terraform state or
    provisioning logs, Lambda configurations, S3 objects, or the stack's own logs."""
    import subprocess

    from recsys.config import project_root

    passwords = {key: value.encode() for key, value in stack.secrets().items()}
    secrets_store = stack.client("secretsmanager")
    for kind in ("vector_db_loader", "vector_db_reader"):  # the roles' passwords live only in their secrets
        secret = secrets_store.get_secret_value(SecretId=stack.settings.names.name(kind))
        passwords[kind] = json.loads(secret["SecretString"])["password"].encode()
    assert all(len(value) >= 16 for value in passwords.values())
    found: list[str] = []

    def scan(where: str, data: bytes) -> None:
        found.extend(f"{key} in {where}" for key, value in passwords.items() if value in data)

    root = project_root()
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        path = root / name
        if path.is_file():
            scan(f"repository {name}", path.read_bytes())
    home = stack.home
    folders = [stack.settings.airflow_home, home / "logs", home / "terraform"]
    scanned_files = 0
    for folder in folders:
        for path in folder.rglob("*") if folder.exists() else []:
            if path.is_file() and path.stat().st_size < 200_000_000:
                scan(str(path.relative_to(home)), path.read_bytes())
                scanned_files += 1
    assert scanned_files > 0
    metadata = airflow_db.dump(stack.airflow_db())
    assert b"COPY public.xcom " in metadata  # the dump holds the tables the runs wrote
    scan("the Airflow metadata DB (pg_dump)", metadata)
    lam = stack.client("lambda")
    names = stack.settings.names
    configurations = [
        lam.get_function_configuration(FunctionName=function)
        for function in (names.transformation_lambda, names.model_inference_lambda)
    ]
    for configuration in configurations:
        scan(f"Lambda {configuration['FunctionName']} configuration", json.dumps(configuration).encode())
    s3 = stack.client("s3")
    objects = 0
    for bucket in names.buckets():
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                scan(f"s3://{bucket}/{obj['Key']}", s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                objects += 1
    assert objects > 0
    assert found == []


def test_the_served_lists_rank_held_out_customers_as_the_model_does(stack, deployed_platform):
    """Held-out customers' events (the live version's own test split) through the deployed transformation Lambda:
    the lists it serves are scored with the model's ranking metrics against the model's exact top k of the same
    events. The gap (ANN probes, features from the event, the Lambda's rules) is a number with a target."""
    from recsys_local.bench.served import NDCG_RATIO, OVERLAP
    from recsys_local.served import measure

    names = stack.settings.names
    result = measure(stack.client("s3"), stack.client("lambda"), names.ml_artifacts_bucket, names.transformation_lambda)
    k = result["k"]
    print(f"served vs exact: {json.dumps(result)}")
    assert result["users"] >= 20, result
    assert result["exact"][f"ndcg@{k}"] > 0, result  # the held-out positives are reachable at all
    assert result["served"][f"ndcg@{k}"] >= NDCG_RATIO * result["exact"][f"ndcg@{k}"], result
    assert result["overlap"] >= OVERLAP, result
