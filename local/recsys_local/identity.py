"""Who the platform is on the local stack: the Airflow workers' role that ``terraform/airflow_workers`` ships.

In AWS an administrator applies ``terraform/airflow_workers`` once (the deployment page's step 0) and the Airflow
runtime (MWAA, ECS, EC2) hands its workers that role. The local stack does the same when it enforces IAM
(``LOCAL_IAM_ENFORCEMENT``, on by default): ``make up`` applies the root with the emulator's administrator key (the
bootstrap, like the account's prerequisites the local target creates) and writes an AWS shared config whose profile
assumes the role through STS as MWAA does (the role's default trust names MWAA's service principals; the endpoint
checks it). Everything the platform runs (the Airflow services, ``airflow dags test``, the DAGs'
Terraform and hooks, ``make up``'s restore) gets that profile instead of the administrator's key
(:meth:`recsys_local.stack.Stack.environment`), so each of its requests is authorized against the shipped policies.

The apply is skipped when the role holds the policies and neither the root's files nor its variables changed since
the last one (a fingerprint next to the root's local state): a restarted endpoint that reloaded its snapshot costs
nothing, one that lost IAM (no snapshot) gets the role again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.config import project_root
from recsys_local.process import StackError

if TYPE_CHECKING:
    from recsys_local.settings import StackSettings

#: The root an administrator applies (step 0), and the profile the platform acts under.
ROOT = "airflow_workers"
PROFILE = "airflow-workers"
#: The profile holding the key the role is assumed with: MWAA's (service_roles.MWAA), as in an account where MWAA
#: hands its workers the role the root creates (its default trust): the role's trust policy is checked against it.
SOURCE_PROFILE = "mwaa"
#: The five managed policies the root attaches to the role.
POLICY_PARTS = ("runtime", "provision-data", "provision-compute", "provision-streaming", "provision-network")
#: Environment variables that carry an identity: replaced as a whole when the identity changes.
IDENTITY_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL_STS",
)


def base_environment() -> dict[str, str]:
    """This process's environment without an identity or a connection of its own (a shell that sourced stack.env
    names the workers' profile): each use adds its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_") and k not in IDENTITY_VARIABLES}


def enabled(settings: StackSettings) -> bool:
    """The platform acts as the workers' role whenever the endpoint checks permissions (on, or audit)."""
    return settings.iam_enforcement != "off"


def role_name(settings: StackSettings) -> str:
    return f"{settings.names.prefix}-airflow-workers"


def role_arn(settings: StackSettings) -> str:
    from recsys_local.service_roles import role_arn as arn_of

    return arn_of(role_name(settings))  # the emulator's account and partition


def folder(settings: StackSettings) -> Path:
    return settings.home / "aws-identity"


def workers_environment(settings: StackSettings) -> dict[str, str]:
    """The variables under which boto3 (the hooks) and Terraform's SDK act as the workers' role."""
    return {
        # empty, not absent: keys in the caller's environment would win over the profile in both SDKs, and callers
        # merge this into theirs ({**os.environ, **stack.environment()})
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SESSION_TOKEN": "",
        "AWS_CONFIG_FILE": str(folder(settings) / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder(settings) / "credentials"),
        "AWS_PROFILE": PROFILE,
        # the SDKs assume a profile's role at STS's public endpoint unless this names another (Terraform's does)
        "AWS_ENDPOINT_URL_STS": settings.aws_endpoint_url,
    }


def admin_environment(key: str) -> dict[str, str]:
    """The variables of the emulator's administrator (the bootstrap, the operator's own commands)."""
    return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": key}


def profile_files(profile: str, role: str, region: str) -> dict[str, str]:
    """The AWS shared ``config`` and ``credentials`` texts of a profile ``profile`` that assumes ``role`` as MWAA
    assumes its execution role (the role's default trust names MWAA; the endpoint checks it)."""
    from recsys_local.service_roles import MWAA, service_key

    key = service_key(MWAA)
    return {
        "config": (
            f"[profile {profile}]\nrole_arn = {role}\nsource_profile = {SOURCE_PROFILE}\n"
            f"role_session_name = airflow-workers\nregion = {region}\n\n"
            f"[profile {SOURCE_PROFILE}]\nregion = {region}\n"
        ),
        "credentials": f"[{SOURCE_PROFILE}]\naws_access_key_id = {key}\naws_secret_access_key = {key}\n",
    }


def write_profile(settings: StackSettings) -> None:
    """The shared config and credentials files :func:`workers_environment` names (0600, as credentials files are)."""
    path = folder(settings)
    path.mkdir(parents=True, exist_ok=True)
    files = profile_files(PROFILE, role_arn(settings), settings.names.region)
    files["config"] = (
        "# Written by `make up` (recsys_local.identity): the Airflow workers act as the role step 0 ships.\n"
        + files["config"]
    )
    for name, text in files.items():
        tmp = path / f".{name}.tmp"
        tmp.write_text(text)
        tmp.chmod(0o600)
        tmp.replace(path / name)


def root_files() -> list[Path]:
    terraform = project_root() / "terraform"
    return sorted(
        [*(terraform / ROOT).glob("*.tf"), *(terraform / "modules" / ROOT).glob("*.tf")], key=lambda p: str(p)
    )


def fingerprint(variables: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(variables, sort_keys=True).encode())
    for path in root_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def role_in_place(iam: Any, settings: StackSettings) -> bool:
    """The role exists and holds the five policies."""
    try:
        attached = iam.list_attached_role_policies(RoleName=role_name(settings))["AttachedPolicies"]
    except iam.exceptions.NoSuchEntityException:
        return False
    wanted = {f"{role_name(settings)}-{part}" for part in POLICY_PARTS}
    return wanted <= {policy["PolicyName"] for policy in attached}


def ensure(settings: StackSettings, admin_env: dict[str, str], progress: Callable[[str], None]) -> bool:
    """Apply ``terraform/airflow_workers`` with ``admin_env`` (the stack's environment as the emulator's
    administrator) unless the role is in place and unchanged; write the workers' profile. Returns whether it
    applied."""
    from recsys.provisioning.terraform import TerraformProvisioner
    from recsys_local.clients import local_client
    from recsys_local.target import LocalTarget

    write_profile(settings)
    target = LocalTarget(admin_env)
    variables = target.variables(ROOT)
    marker = target.state_path(ROOT).with_suffix(".fingerprint")
    wanted = fingerprint(variables)
    current = marker.read_text().strip() if marker.is_file() else ""
    iam = local_client("iam", settings.aws_endpoint_url, settings.names.region)
    if current == wanted and role_in_place(iam, settings):
        return False
    progress(f"applying terraform/{ROOT} as the administrator: the platform acts as {role_name(settings)}")
    TerraformProvisioner(admin_env, target=target).provision(ROOT)
    if not role_in_place(iam, settings):
        raise StackError(f"terraform/{ROOT} applied but {role_name(settings)} lacks its policies")
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(wanted + "\n")
    os.replace(tmp, marker)
    return True
