"""The real Terraform roots applied against the test stack's endpoint, in the nightly chain's order, then planned
again: a root that plans changes right after its own apply is not idempotent (drift on every run)."""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest
from iam_rules import (
    ALLOWED_MANAGED_POLICIES,
    identity_policy_violations,
    key_policy_violations,
    lambda_s3_violations,
    resource_mismatches,
    service_reference,
)

from recsys.provisioning import OUTPUTS, PIPELINES
from recsys.provisioning.terraform import TerraformProvisioner
from recsys_local.iam_policy import problems as unreadable

pytestmark = pytest.mark.integration


class RecordingProvisioner(TerraformProvisioner):
    """Keeps each root's first whole plan (``terraform show -json``) for the network checks: the plan an operator
    reviews before the first apply, where the groups the root creates have no ids yet."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env)
        self.first_plans: dict[str, dict] = {}

    def plan(self, workdir, pipeline, variables, addresses=()):
        plan = super().plan(workdir, pipeline, variables, addresses)
        if not addresses:
            self.first_plans.setdefault(pipeline, plan)
        return plan


@pytest.fixture(scope="module")
def provisioner(stack, tmp_path_factory):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "VECTOR_DB_", "AWS_"))},
        **stack.environment(),
        "TERRAFORM_WORK_DIR": str(tmp_path_factory.mktemp("terraform-work")),
    }
    return RecordingProvisioner(env)


def package_keys(stack) -> dict[str, str]:
    """Stand-in packages (the deploy DAG uploads real ones): Terraform only needs the keys to exist."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    s3 = stack.client("s3")
    keys = {
        "transformation_package_key": "lambda/apply-test-t.zip",
        "model_inference_package_key": "lambda/apply-test-m.zip",
    }
    for key in keys.values():
        s3.put_object(Bucket=stack.settings.names.scripts_bucket, Key=key, Body=buffer.getvalue())
    return {**keys, "model_version": "apply-test"}


@pytest.mark.parametrize("pipeline", PIPELINES)  # the chain's order: streaming reads what etl and vector_db created
def test_each_root_applies_locally_and_plans_no_changes_after(provisioner, stack, pipeline):
    """One root per test: each within half its timeout on a loaded machine (three roots in one test took 300 s)."""
    variables = package_keys(stack) if pipeline == "streaming_inference" else None
    outputs = provisioner.provision(pipeline, variables=variables)
    assert set(outputs) == set(OUTPUTS[pipeline])
    assert provisioner.pending_changes(pipeline, variables) == [], f"{pipeline} is not idempotent"


def test_the_applied_roots_hold_what_the_dags_use(provisioner, stack):
    for pipeline in PIPELINES:
        provisioner.provision(pipeline, apply=False)  # applied by the tests above (fails here if one was not)
    names = stack.settings.names
    glue = stack.client("glue")
    job = glue.get_job(JobName=names.glue_job)["Job"]
    assert job["GlueVersion"] == "5.1"
    assert job["DefaultArguments"]["--TempDir"].startswith(f"s3://{names.datalake_bucket}/")
    # the source's endpoint reaches the job as arguments: its secret holds what an RDS-managed one does, no more
    settings = stack.settings
    arguments = job["DefaultArguments"]
    endpoint = {key: arguments.get(key) for key in ("--source_host", "--source_port", "--source_database")}
    assert endpoint == {
        "--source_host": settings.host,
        "--source_port": str(settings.mysql_port),
        "--source_database": settings.mysql_database,
    }
    # the source's CA reaches the job as in Glue: uploaded beside the script, --extra-files, a relative file: URL
    from recsys_local import tls

    ca = tls.files(settings.home).ca
    assert arguments["--source_ssl_ca"] == f"file:{ca.name}"
    assert arguments["--extra-files"] == f"s3://{names.scripts_bucket}/glue/certs/{ca.name}"
    uploaded = stack.client("s3").get_object(Bucket=names.scripts_bucket, Key=f"glue/certs/{ca.name}")
    assert uploaded["Body"].read() == ca.read_bytes()
    secret_id = job["DefaultArguments"]["--source_secret_id"]
    source_secret = json.loads(stack.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    assert set(source_secret) == {"username", "password"}
    assert job["Connections"]["Connections"] == [f"{names.glue_job}-source"]
    table = glue.get_table(DatabaseName=names.glue_database, Name="ratings_ml_training")["Table"]
    assert table["Parameters"]["projection.enabled"] == "true"

    vector_db = provisioner.provision("vector_db", apply=False)
    assert (vector_db["vector_db_host"], vector_db["vector_db_port"]) == (
        stack.settings.host,
        stack.settings.vector_db_port,
    )
    secret = json.loads(
        stack.client("secretsmanager").get_secret_value(SecretId=vector_db["vector_db_secret_arn"])["SecretString"]
    )
    assert secret == {"username": stack.settings.vector_db_user, "password": stack.vectordb().password}

    firehose = stack.client("firehose").describe_delivery_stream(DeliveryStreamName=names.delivery_stream)
    destination = firehose["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
    processor = destination["ProcessingConfiguration"]["Processors"][0]["Parameters"]
    assert {
        "ParameterName": "LambdaArn",
        "ParameterValue": f"arn:aws:lambda:{names.region}:{names.account}:function:{names.transformation_lambda}:live",
    } in processor
    assert destination["BufferingHints"]["SizeInMBs"] == 5


def ingress_sources(ec2, group_id: str, port: int) -> set[str]:
    """The security groups a group admits on ``port`` (TCP)."""
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    return {
        r["ReferencedGroupInfo"]["GroupId"]
        for r in rules["SecurityGroupRules"]
        if not r["IsEgress"] and r.get("ReferencedGroupInfo") and r["FromPort"] <= port <= r["ToPort"]
    }


def test_the_network_admits_each_client_where_it_connects(provisioner, stack):
    """Glue and the Airflow workers reach the MySQL source; the workers and the Lambdas reach the vector DB (the
    rules the roots applied, read back from the endpoint)."""
    target = provisioner.target
    vpc, _ = target.network()
    settings, names = stack.settings, stack.settings.names
    ec2 = stack.client("ec2")

    def group(name: str) -> str:
        found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]
        assert found, f"no security group {name}"
        return str(found[0]["GroupId"])

    workers, source = target.workers_security_group(vpc), target.source_security_group(vpc)
    glue, vector_db, clients = (
        group(f"{names.glue_job}-sg"),
        group(f"{names.vector_db}-sg"),
        group(f"{names.vector_db}-clients-sg"),
    )
    assert {glue, workers} <= ingress_sources(ec2, source, settings.mysql_port)
    assert {workers, clients} <= ingress_sources(ec2, vector_db, settings.vector_db_port)
    function = stack.client("lambda").get_function_configuration(FunctionName=names.transformation_lambda)
    assert clients in function["VpcConfig"]["SecurityGroupIds"]


def test_the_plans_let_each_client_reach_its_server(provisioner, stack):
    """Issue 34 part 4, on ``terraform show -json`` of each root's first plan (the apply tests above made them; a
    root planned after its apply shows the same groups with known ids): the workers and Glue reach the MySQL source,
    the workers and both Lambdas the vector DB, Glue's workers each other (Glue's requirement), and Glue and the
    Lambdas the AWS endpoints on 443. The workers' own egress is the operator's group (a prerequisite)."""
    from network_paths import Plans, missing_paths, reaches_networks

    for pipeline in PIPELINES:
        if pipeline not in provisioner.first_plans:  # this test alone: plan the applied root now
            with provisioner.workspace(pipeline) as workdir:
                provisioner.init(workdir, pipeline)
                variables = package_keys(stack) if pipeline == "streaming_inference" else None
                provisioner.plan(workdir, pipeline, variables)
    plans = Plans(provisioner.first_plans)
    rules = plans.rules()
    workers = plans.variable("etl", "airflow_workers_security_group_id")
    source = [plans.variable("etl", "source_db_security_group_id")]
    source_port = plans.variable("etl", "source_db_port")
    (connection,) = [a for root, a in plans.resources("aws_glue_connection") if root == "etl"]
    glue = plans.groups("etl", connection, "physical_connection_requirements", 0, "security_group_id_list")
    (database,) = [a for root, a in plans.resources("aws_db_instance") if root == "vector_db"]
    vector_db = plans.groups("vector_db", database, "vpc_security_group_ids")
    vector_db_port = plans.variable("vector_db", "vector_db_port")
    functions = [a for root, a in plans.resources("aws_lambda_function") if root == "streaming_inference"]
    assert len(functions) == 2, functions
    lambdas = {a: plans.groups("streaming_inference", a, "vpc_config", 0, "security_group_ids") for a in functions}
    assert workers == plans.variable("vector_db", "airflow_workers_security_group_id")

    missing = missing_paths(rules, [workers], source, source_port, egress=False)
    missing += missing_paths(rules, glue, source, source_port, egress=True)
    missing += missing_paths(rules, glue, glue, 0, egress=True) + missing_paths(rules, glue, glue, 65535, egress=True)
    missing += missing_paths(rules, [workers], vector_db, vector_db_port, egress=False)
    for function, groups in lambdas.items():
        missing += [f"{function}: {m}" for m in missing_paths(rules, groups, vector_db, vector_db_port, egress=True)]
    for name, groups in {"glue": glue, **lambdas}.items():
        if not any(reaches_networks(rules, group, 443) for group in groups):
            missing.append(f"{name}: no egress on 443 to the AWS endpoints")
    assert missing == [], "\n".join(missing)
    # the Lambdas' group is the one the vector_db root created (looked up by name), not a look-alike
    (clients,) = [
        a for root, a in plans.resources("aws_security_group") if root == "vector_db" and a.endswith(".clients")
    ]
    assert set().union(*lambdas.values()) == {plans.planned_group("vector_db", clients)}


def test_the_applied_policies_are_least_privilege(provisioner, stack):
    """Every role policy, attached managed policy and key policy the roots created, as AWS (here moto) holds it."""
    for pipeline in PIPELINES:
        provisioner.provision(pipeline, apply=False)  # applied by the test above (fails here if it was not)
    names = stack.settings.names
    iam, kms = stack.client("iam"), stack.client("kms")
    prefix = f"{names.prefix}-"
    # the roots' roles; the workers' role is step 0's (terraform/airflow_workers, applied by `make up` here), whose
    # policies tests/terraform and the rehearsal's statement-by-statement check cover
    workers = f"{names.prefix}-airflow-workers"
    roles = [
        r["RoleName"]
        for r in iam.list_roles()["Roles"]
        if r["RoleName"].startswith(prefix) and r["RoleName"] != workers
    ]
    assert len(roles) >= 4, roles  # glue, two Lambdas, firehose
    problems: list[str] = []
    reference = service_reference()
    # the workers' policies as rendered: each resource one their actions apply to (the static check reads them with
    # Terraform's interpolations as wildcards)
    for attached in iam.list_attached_role_policies(RoleName=workers)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
        document = version["PolicyVersion"]["Document"]
        document = json.loads(document) if isinstance(document, str) else document
        problems += resource_mismatches(f"{workers}/{attached['PolicyName']}", document, reference)
    for role in roles:
        for policy_name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
            problems += identity_policy_violations(f"{role}/{policy_name}", document)
            problems += unreadable(f"{role}/{policy_name}", document)  # what the local endpoint could not evaluate
            problems += resource_mismatches(f"{role}/{policy_name}", document, reference)
            if role in (f"{names.transformation_lambda}-role", f"{names.model_inference_lambda}-role"):
                problems += lambda_s3_violations(role, document, names.ml_artifacts_bucket)
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            if attached["PolicyArn"] not in ALLOWED_MANAGED_POLICIES:
                problems.append(f"{role}: managed policy {attached['PolicyArn']} is not on the allow-list")
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    keys = [aliases[f"alias/{n}"] for n in (names.glue_job, names.vector_db, names.delivery_stream)]
    for key in keys:
        document = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
        problems += key_policy_violations(key, document, names.account)
        problems += unreadable(f"key {key}", document)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("pipeline", ["etl", "streaming_inference"])
def test_a_plan_refuses_subnets_in_one_availability_zone_or_another_vpc(provisioner, stack, pipeline):
    """Part 4: two availability zones are validated by every root that places something in the subnets (the
    vector DB's subnet group already was), and the etl root's subnets must be in its VPC; the plan fails, naming
    the variable, before anything is created."""
    from recsys.provisioning import ProvisioningError

    ec2 = stack.client("ec2")
    vpc, (first, _) = provisioner.target.network()
    zone = ec2.describe_subnets(SubnetIds=[first])["Subnets"][0]["AvailabilityZone"]
    taken = {s["CidrBlock"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]}
    cidr = next(f"172.31.{n}.0/24" for n in range(200, 250) if f"172.31.{n}.0/24" not in taken)
    twin = ec2.create_subnet(VpcId=vpc, AvailabilityZone=zone, CidrBlock=cidr)["Subnet"]["SubnetId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    elsewhere = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.99.1.0/24")["Subnet"]["SubnetId"]
    variables = package_keys(stack) if pipeline == "streaming_inference" else {}
    try:
        with provisioner.workspace(pipeline) as workdir:
            provisioner.init(workdir, pipeline)
            with pytest.raises(ProvisioningError, match="two availability zones"):
                provisioner.plan(workdir, pipeline, {**variables, "private_subnet_ids": [first, twin]})
            if pipeline == "etl":
                subnets = [first, elsewhere]
                with pytest.raises(ProvisioningError, match="must be in vpc_id"):
                    provisioner.plan(workdir, pipeline, {**variables, "private_subnet_ids": subnets})
    finally:
        ec2.delete_subnet(SubnetId=twin)
        ec2.delete_subnet(SubnetId=elsewhere)
        ec2.delete_vpc(VpcId=other_vpc)
