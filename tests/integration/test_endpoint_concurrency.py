"""Every call the local AWS endpoint executes reaches its client: the real Terraform and boto3 clients at once, under
load like a first `make demo` (both cores busy, tens of concurrent calls).

Before the endpoint serialized its calls into moto, this load made moto's models race: `ListAliases` or
`CreateAlias` answered 500 ("dictionary changed size during iteration") in the middle of other requests, the SDKs
retried, and a retried create that had been applied met AlreadyExists; concurrent `PutRecords` could give two
records one sequence number. The access log marks every SDK retry (`(retry attempt=N)`), so the test counts them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from endpoint_process import Endpoint

pytestmark = [
    pytest.mark.integration,
]

COPIES = 25  # of each resource in the Terraform root: 100 resources, applied 30 at a time
CLIENT_THREADS = 12
SECONDS = 45

ROOT = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

variable "endpoint" { type = string }
variable "copies" { type = number }

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {
    glue = var.endpoint
    iam  = var.endpoint
    kms  = var.endpoint
    sts  = var.endpoint
  }
}

resource "aws_kms_key" "k" {
  count                   = var.copies
  description             = "load ${count.index}"
  deletion_window_in_days = 7
}

resource "aws_kms_alias" "a" {
  count         = var.copies
  name          = "alias/load-${count.index}"
  target_key_id = aws_kms_key.k[count.index].key_id
}

resource "aws_glue_connection" "c" {
  count           = var.copies
  name            = "load-${count.index}"
  connection_type = "JDBC"
  connection_properties = {
    JDBC_CONNECTION_URL = "jdbc:mysql://db:3306/classicmodels"
    USERNAME            = "u"
    PASSWORD            = "p"
  }
}

resource "aws_iam_role" "r" {
  count = var.copies
  name  = "load-${count.index}"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "glue.amazonaws.com" } }]
  })
}
"""


def _burn(stop) -> None:  # stop: a multiprocessing.Event
    while not stop.is_set():
        pass


def _client_load(
    endpoint: Endpoint, worker: int, deadline: float, errors: list[str], sequences: list[str], rounds: list[int]
) -> None:
    """Creates next to lists of the same models, as the provider's reads after each create do; ``rounds[worker]``
    counts the whole rounds of seven calls this worker completed."""
    kms, glue, kinesis = (endpoint.client(s, attempts=4) for s in ("kms", "glue", "kinesis"))
    number = 0
    while time.monotonic() < deadline:
        name = f"w{worker}-{number}"
        number += 1
        try:
            key = kms.create_key()["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=f"alias/{name}", TargetKeyId=key)
            kms.list_aliases()
            glue.create_connection(
                ConnectionInput={"Name": name, "ConnectionType": "JDBC", "ConnectionProperties": {"USERNAME": "u"}}
            )
            glue.get_connections()
            records = [{"Data": f"{name}-{i}".encode(), "PartitionKey": str(i)} for i in range(10)]
            answer = kinesis.put_records(StreamName="load", Records=records)
            sequences += [(r["ShardId"], r["SequenceNumber"]) for r in answer["Records"]]
            rounds[worker] += 1
        except Exception as exc:  # every call must succeed: collect what did not
            errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])


def test_terraform_and_boto3_clients_under_load_get_every_answer(tmp_path: Path) -> None:
    endpoint = Endpoint(tmp_path / "state", tmp_path / "endpoint.log")
    endpoint.start()
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(ROOT)
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": os.devnull}
    from recsys.provisioning.terraform import find_plugin_mirror

    mirror = find_plugin_mirror(env)
    init = ["terraform", "init", "-input=false", "-no-color"] + ([f"-plugin-dir={mirror}"] if mirror else [])
    subprocess.run(init, cwd=root, env=env, check=True, capture_output=True)
    endpoint.client("kinesis").create_stream(StreamName="load", ShardCount=2)

    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=_burn, args=(stop,), daemon=True) for _ in range(2)]
    errors: list[str] = []
    sequences: list[tuple[str, str]] = []
    rounds = [0] * CLIENT_THREADS
    deadline = time.monotonic() + SECONDS
    clients = [
        threading.Thread(target=_client_load, args=(endpoint, n, deadline, errors, sequences, rounds))
        for n in range(CLIENT_THREADS)
    ]
    try:
        for process in burners:
            process.start()
        for thread in clients:
            thread.start()
        time.sleep(2)  # the clients' first calls create moto's backends, as the first apply's do
        apply = subprocess.run(
            [
                *("terraform", "apply", "-auto-approve", "-input=false", "-no-color", "-parallelism=30"),
                *(f"-var=endpoint={endpoint.url}", f"-var=copies={COPIES}"),
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
        )
        for thread in clients:
            thread.join(timeout=SECONDS + 120)
    finally:
        stop.set()
        for process in burners:
            process.join(timeout=10)
        endpoint.stop(signal.SIGTERM)

    access = [line for line in endpoint.log_path.read_text().splitlines() if '"POST /' in line or '"GET /' in line]
    retried = [line for line in access if "(retry attempt=" in line]
    failed = [line for line in access if '" 5' in line]
    assert apply.returncode == 0, apply.stderr[-3000:]
    assert f"{COPIES * 4} added" in apply.stdout
    # the load ran beside the apply: every client thread (started before it, running 45 s) completed whole rounds
    # (a count of calls would be a speed threshold: this machine made 1,700-2,500 in CI runs)
    assert min(rounds) >= 2, f"client rounds per thread {rounds}: the load did not run"
    assert not failed, f"{len(failed)} calls answered 5xx, e.g. {failed[:3]}"
    assert not retried, f"{len(retried)} calls retried by their client, e.g. {retried[:3]}"
    assert not errors, f"{len(errors)} client calls failed, e.g. {errors[:3]}"
    assert len(set(sequences)) == len(sequences), "two acknowledged records share a sequence number"
