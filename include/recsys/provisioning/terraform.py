"""Run a pipeline's Terraform root in automation, for AWS and for the local stack alike.

``terraform/<pipeline>/`` is a separate root per pipeline (its own state), so a DAG never needs ``-target`` (only
``make demo`` uses it, through :meth:`TerraformProvisioner.apply_part`, to create a root's slowest resources early).
Each call works in a private copy of the whole ``terraform/`` tree (its own ``TF_DATA_DIR`` and plan file), so two
tasks on one worker never share ``.terraform/`` or a plan:

    terraform init  -input=false -lockfile=readonly [-plugin-dir=<mirror>] <target's backend>
    terraform plan  -input=false -lock-timeout=5m -out=<private plan>     (target's variables)
    terraform show  -json <plan>        -> refused if it deletes or replaces a stateful resource
    terraform apply -input=false -lock-timeout=5m <plan>
    terraform output -json              -> non-sensitive outputs only; never logged

Only the :mod:`target <recsys.provisioning.targets>` differs between AWS and the local stack: the backend, a
provider override (the local endpoint) and the variables. Plan and apply output (where Terraform masks sensitive
values) goes to the task log; ``show -json`` and ``output -json`` (which carry them in clear) never do. Each command's
time goes to the log when it ends (``terraform plan took 41.2 s``); an exception while one runs (a task stopped, a
test's timeout) stops it and the provider plugins it started before the exception goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recsys.config import project_root, settings
from recsys.provisioning.roots import (
    ADMIN_ROOTS,
    OWNER_DAGS,
    PIPELINES,
    NotAppliedError,
    PermanentProvisioningError,
    ProvisioningError,
    check_outputs,
)
from recsys.provisioning.targets import Target, target_for

log = logging.getLogger(__name__)

#: Resource types whose deletion loses data or identity; a plan deleting or replacing one is refused.
STATEFUL_TYPES = frozenset(
    {
        "aws_db_instance",
        "aws_s3_bucket",
        "aws_kinesis_stream",
        "aws_secretsmanager_secret",
        "aws_kms_key",
        "aws_glue_catalog_database",
    }
)
LOCK_TIMEOUT = "5m"


class DestructivePlanError(PermanentProvisioningError):
    """The plan would delete or replace stateful resources and the caller did not allow it."""


#: Where a machine keeps a provider mirror without being told: Terraform's own implied local mirror directories (its
#: CLI configuration docs, Linux) and this project's machines' preinstalled mirror. Exact places, never a search: a
#: stray ``registry.terraform.io`` folder anywhere else is not a mirror.
MIRROR_PLACES = (
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
    "/opt/tf-plugins",
)


def find_plugin_mirror(env: dict[str, str]) -> Path | None:
    """The folder holding ``registry.terraform.io`` of an offline provider mirror, if this machine has one.

    ``TF_PLUGIN_MIRROR`` names it; otherwise only :data:`MIRROR_PLACES` are looked at (a machine without one installs
    the providers from the registry, checked against the committed lock file).
    """
    mirror = settings(env).tf_plugin_mirror
    if mirror is not None:
        if not (mirror / "registry.terraform.io").is_dir():
            raise ProvisioningError(f"TF_PLUGIN_MIRROR={mirror}: no registry.terraform.io folder in it")
        return mirror
    home = Path(env.get("HOME", "~")).expanduser()  # Terraform's own lookup, in the environment it runs with
    for place in MIRROR_PLACES:
        candidate = home / place[2:] if place.startswith("~/") else Path(place)
        if (candidate / "registry.terraform.io").is_dir():
            return candidate
    return None


def destructive_changes(plan: dict[str, Any], stateful_types: frozenset[str] = STATEFUL_TYPES) -> list[str]:
    """Addresses of stateful resources the plan (``terraform show -json``) deletes or replaces."""
    found = []
    for change in plan.get("resource_changes", []):
        actions = change.get("change", {}).get("actions", [])
        if change.get("type") in stateful_types and "delete" in actions:
            verb = "replace" if "create" in actions else "delete"
            found.append(f"{change['address']} ({verb})")
    return found


def plan_changes(plan: dict[str, Any]) -> list[str]:
    """Resources and outputs applying the plan would change, with their actions (empty: nothing to apply)."""
    changes = [
        f"{change['address']} ({'/'.join(change['change']['actions'])})"
        for change in plan.get("resource_changes", [])
        if change["change"]["actions"] not in (["no-op"], ["read"])
    ]
    changes += [
        f"output.{name} ({'/'.join(change['actions'])})"
        for name, change in plan.get("output_changes", {}).items()
        if change["actions"] != ["no-op"]
    ]
    return changes


#: "Error: creating <what> (<id>): ... AlreadyExists...": a create the service refused because the object exists.
_CREATE_CONFLICT = re.compile(
    r"Error: creating [^\n]*?\((?P<id>[^()\s]+)\):[^\n]*(?:AlreadyExists|EntityAlreadyExists|ResourceInUse)"
)
_DIAGNOSTIC_ADDRESS = re.compile(r"\bwith (?P<address>[A-Za-z0-9_.\[\]\"-]+),")


def existing_outside_state(diagnostics: str) -> list[tuple[str, str]]:
    """(address, id) of each resource an apply could not create because it already exists on the service but not in
    the root's state: made outside Terraform, or by an apply whose answer never arrived. The id is the one the
    error names, which is the import id of most resources that have a name (aliases, roles, jobs, functions)."""
    found = []
    for block in re.split(r"(?=Error: )", diagnostics):
        conflict = _CREATE_CONFLICT.match(block)
        where = _DIAGNOSTIC_ADDRESS.search(block)
        if conflict and where and (where.group("address"), conflict.group("id")) not in found:
            found.append((where.group("address"), conflict.group("id")))
    return found


#: Diagnostics a second try of the same run would meet again: the configuration, the request or the permissions.
_PERMANENT = re.compile(
    r"Error: (Invalid value for variable|Unsupported argument|Missing required argument|Reference to undeclared|"
    r"Invalid reference|Unsupported attribute|Incorrect attribute value type|Invalid function argument)|"
    r"ValidationException|ValidationError|InvalidParameterValue|InvalidParameterCombination|"
    r"MalformedPolicyDocument|AccessDenied|UnauthorizedOperation|not authorized to perform"
)
#: Diagnostics that say the service or the network had a moment: worth the task's retries, whatever else is said.
_TRANSIENT = re.compile(
    r"Throttl|RequestLimitExceeded|TooManyRequests|SlowDown|ServiceUnavailable|InternalFailure|InternalError|"
    r"timeout|timed out|connection reset|connection refused|EOF|Error acquiring the state lock",
    re.IGNORECASE,
)


def is_permanent(diagnostics: str) -> bool:
    """True when a failed command's diagnostics name something a retry cannot fix and nothing transient."""
    return bool(_PERMANENT.search(diagnostics)) and not _TRANSIENT.search(diagnostics)


OWNER_FILE = ".recsys-owner"


def _start_time(pid: int) -> float:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


def _orphaned_plugin(process: Any) -> bool:
    """A ``terraform-provider-*`` plugin whose ``terraform`` is gone (killed with its task): it would wait forever."""
    import psutil

    if not (process.info.get("name") or "").startswith("terraform-provider-"):
        return False
    try:
        return psutil.Process(process.info["ppid"]).name() != "terraform"
    except psutil.Error:
        return True


def remove_abandoned_copies(base: Path) -> list[str]:
    """Remove private copies whose provisioning process is gone (a task killed mid-apply cannot clean up after
    itself, and its plan file may hold sensitive values), unless a ``terraform`` orphaned by the kill still works
    inside one (it holds the state lock until it ends). Provider plugins left without their ``terraform`` are
    stopped first. Returns the names removed."""
    import psutil

    busy: set[Path] = set()
    plugins: dict[Path, list[Any]] = {}
    for process in psutil.process_iter(["cwd", "name", "ppid"]):
        cwd = process.info.get("cwd")
        if cwd and Path(cwd).is_relative_to(base) and Path(cwd) != base:
            copy = base / Path(cwd).relative_to(base).parts[0]
            if _orphaned_plugin(process):
                plugins.setdefault(copy, []).append(process)
            else:
                busy.add(copy)
    removed = []
    for copy in base.iterdir():
        owner = copy / OWNER_FILE
        try:
            pid_text, started = owner.read_text().split()
        except (OSError, ValueError):
            continue  # not a copy made with an owner (or still being made)
        pid = int(pid_text)
        if copy in busy or (psutil.pid_exists(pid) and abs(_start_time(pid) - float(started)) < 1):
            continue
        for plugin in plugins.get(copy, []):
            with contextlib.suppress(psutil.Error):
                plugin.kill()
        shutil.rmtree(copy, ignore_errors=True)
        removed.append(copy.name)
    if removed:
        log.info("removed %d Terraform work copies of killed runs: %s", len(removed), ", ".join(removed))
    return removed


#: Seconds an interrupted ``terraform`` gets to stop its providers and release the state lock before it and they are
#: killed (Airflow escalates a task's stop after 5 s too).
STOP_GRACE_SECONDS = 5.0


def stop_process_tree(process: subprocess.Popen[str], grace: float | None = None) -> None:
    """SIGTERM ``process`` (Terraform stops its providers and releases the state lock on it), SIGKILL it and every
    process it started that is still running after ``grace`` seconds (default :data:`STOP_GRACE_SECONDS`), and reap
    it. The descendants are listed before the SIGTERM: a provider whose ``terraform`` exits first is reparented and
    could not be found from it any more."""
    import psutil

    def running(candidate: Any) -> bool:
        try:
            return candidate.is_running() and candidate.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def descendants() -> list[Any]:
        try:
            return psutil.Process(process.pid).children(recursive=True)
        except psutil.Error:
            return []

    started = descendants()
    process.terminate()
    deadline = time.monotonic() + (STOP_GRACE_SECONDS if grace is None else grace)
    try:
        while time.monotonic() < deadline and (process.poll() is None or any(running(p) for p in started)):
            time.sleep(0.05)
    finally:  # a second interruption during the grace cuts it short, not the kill
        if process.poll() is None:
            started += descendants()  # what it started while stopping
        process.kill()
        for leftover in started:
            with contextlib.suppress(psutil.Error):
                leftover.kill()
        process.wait()
        deadline = time.monotonic() + 1  # a SIGKILL takes effect asynchronously
        while time.monotonic() < deadline and any(running(p) for p in started):
            time.sleep(0.01)


class TerraformProvisioner:
    def __init__(self, env: dict[str, str] | None = None, target: Target | None = None) -> None:
        self.env = dict(os.environ) if env is None else env
        self.settings = settings(self.env)
        self.binary = self.settings.terraform_bin
        self.source = self.settings.terraform_dir or project_root() / "terraform"
        self.target = target or target_for(self.env)
        self._mirror: Path | bool | None = False
        self.stateful_types = STATEFUL_TYPES

    # --- running terraform ------------------------------------------------------------------------------------------
    def _command_env(self, workdir: Path) -> dict[str, str]:
        env = {**self.env, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "TF_DATA_DIR": str(workdir / ".terraform-data")}
        cli_config = self.settings.terraform_cli_config
        if cli_config is not None and not cli_config.exists():
            env["TF_CLI_CONFIG_FILE"] = os.devnull  # a missing file only prints a warning into every log
        return env

    def _run(self, workdir: Path, *args: str, log_output: bool = True) -> str:
        log.info("terraform %s", " ".join(args))
        started = time.monotonic()
        # Terraform stays in our process group, so a kill of the group (Airflow stopping its task, a test lane
        # stopped) reaches it and its providers; an exception that ends only our wait stops them here.
        with subprocess.Popen(
            [self.binary, *args],
            cwd=workdir,
            env=self._command_env(workdir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            try:
                stdout, stderr = process.communicate()
            except BaseException:  # a task killed, a test's timeout (pytest's Failed), Ctrl-C: nothing left running
                log.warning(
                    "terraform %s interrupted after %.1f s: stopping it and its providers",
                    args[0],
                    time.monotonic() - started,
                )
                stop_process_tree(process)
                raise
        log.info("terraform %s took %.1f s", args[0], time.monotonic() - started)
        result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        if log_output and result.stdout:
            log.info("%s", result.stdout[-20000:])
        if result.returncode != 0:
            # stderr carries diagnostics, which Terraform never fills with sensitive values.
            message = f"terraform {args[0]} failed for {workdir.name}:\n{result.stderr[-5000:]}"
            existing = existing_outside_state(result.stderr)
            for address, ident in existing:
                message += (
                    f"\n{address} ({ident}) exists but is not in terraform/{workdir.name}'s state (made outside "
                    f"Terraform, or by an apply whose answer was lost): import it (`terraform import {address} "
                    f"{ident}` in that root, with its backend) or delete it, then run again."
                )
            if existing or is_permanent(result.stderr):
                raise PermanentProvisioningError(message, existing)
            raise ProvisioningError(message)
        return result.stdout

    def mirror(self) -> Path | None:
        if self._mirror is False:
            self._mirror = find_plugin_mirror(self.env)
        return self._mirror  # type: ignore[return-value]

    def preflight(self, pipeline: str) -> Path:
        if pipeline not in (*PIPELINES, *ADMIN_ROOTS):
            raise ProvisioningError(f"unknown pipeline {pipeline!r}; expected one of {', '.join(PIPELINES)}")
        if shutil.which(self.binary) is None:
            raise ProvisioningError(
                f"Terraform binary {self.binary!r} not found on the worker's PATH: install Terraform >= 1.10 in the "
                "Airflow image or set TERRAFORM_BIN"
            )
        root = self.source / pipeline
        if not (root / "main.tf").is_file():
            raise ProvisioningError(f"no Terraform root at {root}")
        self.target.preflight(pipeline)
        return root

    @contextmanager
    def workspace(self, pipeline: str) -> Iterator[Path]:
        """A private copy of the terraform tree (symlinks resolved); yields the pipeline root inside it."""
        base = self.settings.terraform_work_dir or Path(tempfile.gettempdir()) / "recsys-terraform"
        base.mkdir(parents=True, exist_ok=True)
        remove_abandoned_copies(base)
        copy = base / f"{pipeline}-{uuid.uuid4().hex[:12]}"
        ignore = shutil.ignore_patterns(
            ".terraform", ".terraform-data", "*.tfstate*", "tfplan", "*.tfvars*", "*_override.tf"
        )
        try:
            shutil.copytree(self.source, copy, symlinks=False, ignore=ignore)
            (copy / OWNER_FILE).write_text(f"{os.getpid()} {_start_time(os.getpid())}")
            workdir = copy / pipeline
            lock = self.source / pipeline / ".terraform.lock.hcl"
            if lock.is_file():
                shutil.copy2(lock, workdir / ".terraform.lock.hcl")
            for name, text in self.target.override_files(pipeline).items():
                (workdir / name).write_text(text)
            yield workdir
        finally:
            shutil.rmtree(copy, ignore_errors=True)  # the plan file may hold sensitive values

    def init(self, workdir: Path, pipeline: str) -> None:
        args = ["init", "-input=false", "-no-color"]
        if (workdir / ".terraform.lock.hcl").is_file():
            args.append("-lockfile=readonly")
        mirror = self.mirror()
        if mirror is not None:
            args.append(f"-plugin-dir={mirror}")
        args += self.target.backend_args(pipeline)
        self._run(workdir, *args)

    def plan(
        self, workdir: Path, pipeline: str, variables: dict[str, Any] | None, addresses: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Write the variables, plan into the private plan file, return the plan as JSON (never logged).
        ``addresses``: plan only these and what they depend on (``-target``)."""
        values = {**self.target.variables(pipeline), **(variables or {})}
        (workdir / "deployment.auto.tfvars.json").write_text(json.dumps(values))
        plan_args = ["plan", "-input=false", "-no-color", f"-lock-timeout={LOCK_TIMEOUT}", "-out=tfplan"]
        plan_args += [f"-var-file={path}" for path in self.target.var_files()]
        plan_args += [f"-target={address}" for address in addresses]
        self._run(workdir, *plan_args)
        return json.loads(self._run(workdir, "show", "-json", "tfplan", log_output=False))

    def pending_changes(self, pipeline: str, variables: dict[str, Any] | None = None) -> list[str]:
        """Addresses and actions a plan would apply now (empty: the infrastructure matches the root)."""
        self.preflight(pipeline)
        with self.workspace(pipeline) as workdir:
            self.init(workdir, pipeline)
            plan = self.plan(workdir, pipeline, variables)
        return plan_changes(plan)

    def apply_part(self, pipeline: str, addresses: Sequence[str], variables: dict[str, Any] | None = None) -> list[str]:
        """Apply only ``addresses`` of the root and what they depend on (Terraform's ``-target``); return the changes
        applied. For creating a root's slowest resources ahead of the run that applies the whole root (``make demo``
        while the DAGs before that root's own run); never for a DAG. A plan that destroys or replaces a stateful
        resource is refused, and nothing is remembered for restores: only a whole apply counts as applied."""
        self.preflight(pipeline)
        if not addresses:
            raise ProvisioningError(f"apply_part(terraform/{pipeline}) needs at least one address")
        with self.workspace(pipeline) as workdir:
            self.init(workdir, pipeline)
            return self._plan_and_apply(workdir, pipeline, variables, allow_destroy=False, addresses=addresses)

    def _plan_and_apply(
        self,
        workdir: Path,
        pipeline: str,
        variables: dict[str, Any] | None,
        allow_destroy: bool,
        addresses: Sequence[str] = (),
    ) -> list[str]:
        """Plan, refuse a plan that destroys a stateful resource unless ``allow_destroy``, apply what changes;
        returns the changes applied."""
        plan = self.plan(workdir, pipeline, variables, addresses)
        destroys = destructive_changes(plan, self.stateful_types)
        if destroys and not allow_destroy:
            raise DestructivePlanError(
                f"refusing to apply terraform/{pipeline}: the plan would destroy stateful resources: "
                f"{', '.join(destroys)}. Review the plan; to go ahead, trigger with allow_destroy=true."
            )
        if destroys:
            log.warning("allow_destroy is set: applying a plan that destroys %s", ", ".join(destroys))
        changes = plan_changes(plan)
        if changes:
            self._run(workdir, "apply", "-input=false", "-no-color", f"-lock-timeout={LOCK_TIMEOUT}", "tfplan")
        else:
            log.info("terraform/%s: the infrastructure matches the configuration; nothing to apply", pipeline)
        return changes

    # --- the interface ----------------------------------------------------------------------------------------------
    def provision(
        self,
        pipeline: str,
        apply: bool = True,
        variables: dict[str, Any] | None = None,
        allow_destroy: bool = False,
        adopt_existing: bool | None = None,
    ) -> dict[str, Any]:
        """Apply the pipeline's root (``apply=False``: only read its outputs) and return its declared outputs.

        A plan that deletes or replaces a stateful resource (:data:`STATEFUL_TYPES`) is refused with the addresses
        unless ``allow_destroy``. A resource the apply finds existing but not in the state is imported and the root
        applied once more when ``adopt_existing`` (default: on the local target only, where nothing but the root's
        own applies creates resources; in AWS the error names the import command and a person decides).
        """
        adopt = self.target.adopts_existing if adopt_existing is None else adopt_existing
        try:
            return self._provision(pipeline, apply, variables, allow_destroy)
        except PermanentProvisioningError as exc:
            if not (apply and adopt and exc.existing):
                raise
            found = exc.existing
        listed = ", ".join(f"{address} ({ident})" for address, ident in found)
        log.warning("terraform/%s: %s exist(s) but not in the state: importing, then applying again", pipeline, listed)
        self.target.adopt(pipeline, found)
        return self._provision(pipeline, apply, variables, allow_destroy)

    def _provision(
        self, pipeline: str, apply: bool, variables: dict[str, Any] | None, allow_destroy: bool
    ) -> dict[str, Any]:
        self.preflight(pipeline)
        with self.workspace(pipeline) as workdir:
            self.init(workdir, pipeline)
            if apply:
                self._plan_and_apply(workdir, pipeline, variables, allow_destroy)
                # the local target keeps them for re-applying after an endpoint restart
                self.target.applied(pipeline, variables or {})
            raw = json.loads(self._run(workdir, "output", "-json", "-no-color", log_output=False) or "{}")
        outputs = {name: item["value"] for name, item in raw.items() if not item.get("sensitive")}
        if not outputs and not apply:
            raise NotAppliedError(
                f"terraform/{pipeline} has no outputs: it was never applied for this target. Run the "
                f"{OWNER_DAGS[pipeline]} DAG (it applies that root) first."
            )
        return check_outputs(pipeline, outputs)
