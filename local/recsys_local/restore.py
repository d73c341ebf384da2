"""Re-apply the Terraform roots after the local AWS endpoint restarted from a checkpoint (it was killed) or with
nothing (its snapshot could not be loaded).

After a graceful stop the endpoint reloads every resource from the snapshot it took
(:mod:`recsys_local.moto_snapshot`) and there is nothing to do. After a kill it reloads its last checkpoint,
taken a second after the last change it answered, which may miss that last second. ``make up`` then applies each root
that a DAG applied before, with the variables that DAG gave it (remembered next to the local state, nothing secret:
package keys, model version), in dependency order (``etl`` and ``vector_db`` at once: neither reads the other): a
root the checkpoint holds whole plans no change and is not applied; a missing resource is created again. Without any
snapshot (a foreign moto version, an unreadable file) only S3 objects and Kinesis records are left and the applies
re-create the rest (minutes: the provider waits on some creates). The Firehose runner resumes each stream from its
saved checkpoint, so events put before the restart are delivered without any DAG run. After ``terraform/vector_db``
the role secrets get their passwords again (:func:`recsys.vectordb.roles.ensure_roles`, what the vector DB DAG runs
first): a no-op when they hold them.

A resource an apply created but could not record (the endpoint's answer was lost and the provider's retry found it
existing) is imported and the root applied once more. A root that still fails to re-apply is reported with
Terraform's error and the DAG to run, and does not stop ``make up``.

The stack calls it (:meth:`recsys_local.stack.Stack.up`) and hands over what it needs as data
(:class:`RestartedStack`): the restore never calls back into the stack.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Dependency order: streaming reads the vector DB root's resources; every root reads the ETL buckets.
ORDER = ("etl", "vector_db", "streaming_inference")


def applied_roots(target: Any) -> list[str]:
    """The roots whose local state (``target.state_path``) holds resources: a DAG applied them on this stack."""
    roots = []
    for pipeline in ORDER:
        try:
            resources = json.loads(target.state_path(pipeline).read_text()).get("resources", [])
        except (OSError, ValueError):
            continue
        if resources:
            roots.append(pipeline)
    return roots


#: Roots that read nothing of each other, re-applied at once (the vector DB's is mostly the provider's RDS wait).
INDEPENDENT = ("etl", "vector_db")


@dataclass(frozen=True)
class RestartedStack:
    """What the restore needs of the stack whose AWS endpoint (re)started."""

    #: the platform's environment: each root is re-applied with it, as its DAG applies it
    env: dict[str, str] = field(repr=False)
    #: the endpoint's state folder, with its snapshot (:mod:`recsys_local.moto_snapshot`)
    aws_state: Path
    #: the endpoint's process, as the stack recorded it (None: not recorded)
    endpoint_pid: int | None
    #: the endpoint and region of the administrator's client that gives the vector DB roles their passwords
    aws_endpoint_url: str
    region: str
    #: a connection to the vector DB as its master user (:meth:`recsys_local.postgres.VectorDBConfig.conninfo`)
    vector_db: dict[str, object] = field(repr=False)


def restore_infrastructure(stack: RestartedStack, progress: Callable[[str], None]) -> dict[str, str]:
    """Re-apply every applied root against the (restarted) endpoint; returns root -> "restored" or the error.
    ``etl`` and ``vector_db`` are applied concurrently, ``streaming_inference`` after both."""
    from concurrent.futures import ThreadPoolExecutor

    from recsys.provisioning import provisioner
    from recsys_local.moto_snapshot import restored

    roots = applied_roots(provisioner(stack.env).target)
    snapshot = restored(stack.aws_state, stack.endpoint_pid) if stack.endpoint_pid is not None else None
    if not roots:
        return {}
    if snapshot is not None and not snapshot.get("left_out") and snapshot.get("final", True):
        progress(
            f"the endpoint restored every resource from its snapshot of {snapshot['taken']} (make down): "
            f"{', '.join(f'terraform/{root}' for root in roots)} stand as applied, nothing to re-apply"
        )
        return dict.fromkeys(roots, "kept")
    if snapshot is not None:
        progress(
            f"the endpoint was not stopped by make down; it restored its checkpoint of {snapshot['taken']}: applying "
            "each root again for what the checkpoint missed (a root it holds whole plans no change)"
        )
    lock = threading.Lock()

    def report(message: str) -> None:  # one whole line at a time from the two threads
        with lock:
            progress(message)

    outcome: dict[str, str] = {}
    first = [pipeline for pipeline in roots if pipeline in INDEPENDENT]
    with ThreadPoolExecutor(max_workers=len(first) or 1, thread_name_prefix="restore") as pool:
        for result in pool.map(lambda pipeline: _restore_root(stack, pipeline, report), first):
            outcome.update(result)
    for pipeline in roots:
        if pipeline not in INDEPENDENT:
            outcome.update(_restore_root(stack, pipeline, report))
    return outcome


def _restore_root(stack: RestartedStack, pipeline: str, progress: Callable[[str], None]) -> dict[str, str]:
    from recsys.provisioning import OWNER_DAGS, provisioner

    terraform = provisioner(stack.env)  # one per thread: a provisioner keeps per-run state
    outcome: dict[str, str] = {}
    variables: dict[str, Any] = {}
    remembered = terraform.target.applied_variables_path(pipeline)
    if remembered.exists():
        variables = json.loads(remembered.read_text())
    if pipeline == "streaming_inference" and variables.get("model_version"):
        variables = {**variables, "model_version": _still_loaded(stack, variables["model_version"], progress)}
    progress(f"re-applying terraform/{pipeline} on the restarted endpoint")
    started = time.monotonic()
    try:
        outputs = terraform.provision(pipeline, apply=True, variables=variables)  # adopts what it finds
    except Exception as exc:  # reported, and `make up` goes on: the DAG re-applies it too
        first_line = _first_line(exc)
        progress(
            f"could not re-apply terraform/{pipeline} ({first_line}); run the {OWNER_DAGS[pipeline]} DAG, "
            "which applies it"
        )
        return {pipeline: first_line}
    outcome[pipeline] = "restored"
    progress(f"terraform/{pipeline} restored in {time.monotonic() - started:.0f} s")
    if pipeline == "vector_db":
        try:
            restore_role_secrets(stack, outputs)
        except Exception as exc:  # the Lambdas cannot log in until the vector DB DAG runs
            first_line = _first_line(exc)
            outcome["vector_db_roles"] = first_line
            progress(f"could not give the vector DB roles their passwords ({first_line}); run {OWNER_DAGS[pipeline]}")
    return outcome


def serving_after_restore(remembered: str, loaded: list[str]) -> str:
    """The model version to re-deploy the Lambdas with: the remembered one while the vector DB holds its tables,
    else the live (newest loaded) one, as the streaming DAG deploys by default; with nothing loaded, the remembered
    one (the DAGs say what to run)."""
    if remembered in loaded or not loaded:
        return remembered
    return loaded[0]


def _still_loaded(stack: RestartedStack, remembered: str, progress: Callable[[str], None]) -> str:
    """A version pruned since the last deploy would send every batch to ``errors/``: serve the live one instead."""
    import psycopg

    from recsys.vectordb.loader import loaded_versions

    try:
        with psycopg.connect(**stack.vector_db) as conn:
            loaded = [v["model_version"] for v in loaded_versions(conn)]
    except Exception as exc:  # the vector DB's own restart reports its problem; re-apply as remembered
        progress(f"could not list the vector DB's model versions ({_first_line(exc)}); keeping {remembered}")
        return remembered
    chosen = serving_after_restore(remembered, loaded)
    if chosen != remembered:
        progress(
            f"model version {remembered} (last deployed) is no longer in the vector DB: the Lambdas get the live "
            f"version {chosen}, as streaming_recommendations deploys by default"
        )
    return chosen


def _first_line(exc: BaseException) -> str:
    """The line that says what went wrong: Terraform's first ``Error:`` diagnostic, else the message's first line."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    for line in text.splitlines():
        stripped = line.strip().lstrip("│").strip()
        if stripped.startswith("Error:"):
            return stripped
    return text.splitlines()[0]


def restore_role_secrets(stack: RestartedStack, outputs: dict[str, Any]) -> dict[str, Any]:
    """Give the database roles passwords in their (re-created, empty) secrets, as the master user."""
    from recsys.vectordb.roles import ensure_roles
    from recsys_local.clients import local_client

    arns = {"loader": outputs["vector_db_loader_secret_arn"], "reader": outputs["vector_db_reader_secret_arn"]}
    secrets = local_client("secretsmanager", stack.aws_endpoint_url, stack.region)
    return ensure_roles(stack.vector_db, secrets, arns)
