"""The local Terraform target: the roots applied against the local stack's endpoint.

The provisioner (:mod:`recsys.provisioning`) builds it from ``RECSYS_TARGET_FACTORY`` when ``RECSYS_TARGET=local``;
this side sets that variable (:data:`FACTORY`, written into ``stack.env``), production neither names nor imports it.

A provider override points every service at the local endpoint (path-style S3, moto's placeholder credentials), a
**local backend** under ``<stack home>/terraform/state/``, and the variables an AWS account would have been given: the
network (moto's default VPC and two of its subnets), the source database (the stack's MariaDB, its security group and
a Secrets Manager secret in the shape RDS keeps), and the vector DB's port and master user (the embedded PostgreSQL's).

Why a local backend locally: the local S3 survives a restart only by a snapshot taken at ``make down``, and state
must survive a killed endpoint; a local backend's file lock also gives ``-lock-timeout`` the same meaning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recsys.provisioning import ProvisioningError
from recsys_local import tls
from recsys_local.settings import SharedAwsConfig, StackSettings, stack_settings

#: ``RECSYS_TARGET_FACTORY`` for the local platform: this module's :class:`LocalTarget`.
FACTORY = f"{__name__}:LocalTarget"

#: Buckets each root creates (address -> name kind). Only S3 survives a local restart (and a stack may predate its
#: state file), so a bucket that exists but is not in the local state is imported rather than failing the apply.
ROOT_BUCKETS: dict[str, dict[str, str]] = {
    "etl": {
        "module.etl.module.datalake.aws_s3_bucket.this": "datalake_bucket",
        "module.etl.module.scripts.aws_s3_bucket.this": "scripts_bucket",
        "module.etl.module.ml_artifacts.aws_s3_bucket.this": "ml_artifacts_bucket",
    },
    "streaming_inference": {
        "module.streaming_inference.module.recommendations.aws_s3_bucket.this": "recommendations_bucket",
    },
}

#: The delivery stream's buffer interval on the local stack (seconds; the root's default, for AWS, is 60).
LOCAL_BUFFER_SECONDS = 5

#: Services the roots call; each gets the local endpoint in the provider override.
LOCAL_ENDPOINT_SERVICES = (
    "cloudwatch",
    "ec2",
    "firehose",
    "glue",
    "iam",
    "kinesis",
    "kms",
    "lambda",
    "logs",
    "rds",
    "s3",
    "secretsmanager",
    "sts",
)


class LocalTarget:
    name = "local"
    adopts_existing = True  # nothing but the roots' own applies creates resources on the local endpoint

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.settings = stack_settings(env)
        self.names = self.settings.names  # moto's account, whatever RECSYS_TARGET the caller's environment holds
        self.adopted: dict[str, dict[str, str]] = {}  # pipeline -> address -> import id, see adopt()

    def _client(self, service: str) -> Any:
        from recsys_local.clients import local_client

        return local_client(service, self.settings.aws_endpoint_url, self.settings.names.region)

    def preflight(self, pipeline: str) -> None:
        from recsys_local.clients import aws_healthy

        ok, detail = aws_healthy(self.settings.aws_endpoint_url)
        if not ok:
            raise ProvisioningError(
                f"the local AWS endpoint {self.settings.aws_endpoint_url} does not answer ({detail}): run `make up`"
            )

    def state_path(self, pipeline: str) -> Path:
        return self.settings.home / "terraform" / "state" / f"{pipeline}.tfstate"

    def applied_variables_path(self, pipeline: str) -> Path:
        return self.state_path(pipeline).with_suffix(".applied-vars.json")

    def applied(self, pipeline: str, variables: dict[str, Any]) -> None:
        """Remember the variables a DAG applied the root with (package keys, model version: nothing secret), so
        ``make up`` can re-apply it on a restarted endpoint (:mod:`recsys_local.restore`)."""
        path = self.applied_variables_path(pipeline)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(variables, sort_keys=True, indent=1))
        tmp.replace(path)

    def backend_args(self, pipeline: str) -> list[str]:
        self.state_path(pipeline).parent.mkdir(parents=True, exist_ok=True)
        return []

    def override_files(self, pipeline: str) -> dict[str, str]:
        endpoint = self.settings.aws_endpoint_url
        endpoints = "\n".join(f'    {service} = "{endpoint}"' for service in LOCAL_ENDPOINT_SERVICES)
        # the caller's identity: a profile (the Airflow workers' role, recsys_local.identity) or the administrator
        # (a profile's session is validated, as in AWS: STS GetCallerIdentity gives the account; skipped, the
        # provider asks iam:GetUser first, which a role is refused)
        credentials = (
            "  skip_credentials_validation = false\n"
            if SharedAwsConfig.load(self.env).profile
            else '  access_key                  = "test"\n  secret_key                  = "test"\n'
            "  skip_credentials_validation = true\n"
        )
        provider = f"""# Written by recsys_local.target.LocalTarget for the local stack only.
terraform {{
  backend "local" {{
    path = "{self.state_path(pipeline)}"
  }}
}}

provider "aws" {{
{credentials}  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
"""
        files = {"local_override.tf": provider}
        imports = {**self.bucket_imports(pipeline), **self.adopted.get(pipeline, {})}
        if imports:
            files["local_imports.tf"] = "\n".join(
                f'import {{\n  to = {address}\n  id = "{bucket}"\n}}\n' for address, bucket in imports.items()
            )
        return files

    def adopt(self, pipeline: str, resources: list[tuple[str, str]]) -> None:
        """Import these (address, id) at the root's next plan, as the kept buckets are (``local_imports.tf``)."""
        self.adopted.setdefault(pipeline, {}).update(dict(resources))

    def bucket_imports(self, pipeline: str) -> dict[str, str]:
        """Buckets of this root that the local S3 kept but the local state does not hold: address -> name."""
        wanted = ROOT_BUCKETS.get(pipeline, {})
        if not wanted:
            return {}
        state_file = self.state_path(pipeline)
        managed: set[str] = set()
        if state_file.is_file():
            for resource in json.loads(state_file.read_text() or "{}").get("resources", []):
                managed.add(".".join(p for p in (resource.get("module"), resource["type"], resource["name"]) if p))
        existing = {b["Name"] for b in self._client("s3").list_buckets().get("Buckets", [])}
        return {
            address: self.names.name(kind)
            for address, kind in wanted.items()
            if address not in managed and self.names.name(kind) in existing
        }

    def var_files(self) -> list[str]:
        """``LOCAL_TF_VAR_FILE``: the local stack's own tfvars (e.g. ``glue_timeout_minutes``), applied after the
        stack's variables. A separate name from ``TF_VAR_FILE``, so an AWS account's file never reaches the local
        stack."""
        var_file = self.settings.local_tf_var_file
        if var_file is not None and not var_file.is_file():
            raise ProvisioningError(f"{StackSettings.variable('local_tf_var_file')}={var_file} does not exist")
        return [str(var_file.resolve())] if var_file is not None else []

    # --- what an AWS account would already have -----------------------------------------------------------------
    def network(self) -> tuple[str, list[str]]:
        """moto's default VPC and its first two subnets (by AZ), as the account's private network."""
        ec2 = self._client("ec2")
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise ProvisioningError("the local endpoint has no default VPC")
        vpc = vpcs[0]["VpcId"]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
        subnets.sort(key=lambda s: s["AvailabilityZone"])
        return vpc, [s["SubnetId"] for s in subnets[:2]]

    def source_security_group(self, vpc: str) -> str:
        """The MySQL source's group, as an operator's account has it (the etl root adds rules to it)."""
        return self._security_group(f"{self.names.prefix}-source-db-sg", "The MySQL source (local stack)", vpc)

    def workers_security_group(self, vpc: str) -> str:
        """The Airflow workers' group, as an operator's account has it (the source and the vector DB admit it)."""
        return self._security_group(f"{self.names.prefix}-airflow-workers-sg", "Airflow workers (local stack)", vpc)

    def _security_group(self, name: str, description: str, vpc: str) -> str:
        ec2 = self._client("ec2")
        groups = ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc]}]
        )["SecurityGroups"]
        if groups:
            return str(groups[0]["GroupId"])
        return str(ec2.create_security_group(GroupName=name, Description=description, VpcId=vpc)["GroupId"])

    def source_secret(self) -> str:
        """The source credentials in the shape of an RDS-managed secret (user and password only: the job gets the
        endpoint from Terraform's ``source_db_*`` variables), created or refreshed from the stack's MariaDB."""
        from recsys_local import mariadb

        mysql = mariadb.config(self.settings)
        body = json.dumps({"username": mysql.etl_user, "password": mysql.etl_password})
        client = self._client("secretsmanager")
        name = self.names.source_db_secret
        try:
            current = client.get_secret_value(SecretId=name)
        except client.exceptions.ResourceNotFoundException:
            return str(client.create_secret(Name=name, SecretString=body)["ARN"])
        if current.get("SecretString") != body:
            client.put_secret_value(SecretId=name, SecretString=body)
        return str(current["ARN"])

    def variables(self, pipeline: str) -> dict[str, Any]:
        vpc, subnets = self.network()
        common: dict[str, Any] = {
            "project_prefix": self.names.prefix,
            "region": self.names.region,
            "vpc_id": vpc,
            "private_subnet_ids": subnets,
            "airflow_workers_security_group_id": self.workers_security_group(vpc),
        }
        if pipeline == "etl":
            return {
                **common,
                "source_db_host": self.settings.host,
                "source_db_port": self.settings.mysql_port,
                "source_db_name": self.settings.mysql_database,
                "source_db_secret_arn": self.source_secret(),
                # the Glue read verifies MariaDB's certificate against the stack's CA (recsys_local.tls)
                "source_db_ssl_ca": str(tls.files(self.settings.home).ca),
                "source_db_security_group_id": self.source_security_group(vpc),
            }
        if pipeline == "vector_db":
            return {
                **common,
                "vector_db_port": self.settings.vector_db_port,
                "vector_db_name": self.settings.vector_db_name,
                "vector_db_master_username": self.settings.vector_db_user,
                # The emulator has no Performance Insights: the one setting the local apply turns off.
                "vector_db_performance_insights": False,
            }
        if pipeline == "airflow_workers":  # step 0, applied by the stack as the administrator (recsys_local.identity)
            return {
                **common,
                # the local roots keep their state in local files: the grant names a bucket nobody creates here
                "terraform_state_bucket": f"{self.names.prefix}-{self.names.account}-terraform-state",
                "source_db_security_group_id": self.source_security_group(vpc),
            }
        if pipeline == "streaming_inference":  # seconds, not AWS's minute: nothing locally waits out a buffer
            return {**common, "buffering_interval_seconds": LOCAL_BUFFER_SECONDS}
        return common
