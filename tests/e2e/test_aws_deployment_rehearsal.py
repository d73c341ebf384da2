"""docs/aws-deployment.md ("Deploying to AWS"), followed as an operator would, against an emulated account.

An account of its own (a second instance of the local stack: its MariaDB is the RDS MySQL source, its endpoint the
AWS APIs, its PostgreSQL what RDS runs for the vector DB), because the deployment uses the page's names (prefix
``de-c1w4``), which the test stack's platform already holds. In it, only what an operator's account already has (a
VPC with subnets, the source with its secret and security group, a state bucket). Then, literally:

1. ``backend.hcl`` and ``terraform.tfvars`` copied from the examples, each line the operator fills replaced;
2. an Airflow home with nothing of the local stack: the page's settings table and connections, and no other
   setting of the platform;
3. the first runs in the page's order (``airflow dags test``: the Asset-started runs are started by hand).

What differs from an AWS account is only where the account is: the endpoint and its test credentials for boto3
and Terraform (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``), and :data:`EMULATOR_LINES`,
the tfvars lines an emulated RDS cannot do without, each with its reason.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.config import project_root
from recsys_local.settings import stack_settings

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(2400)]

ROOT = project_root()
DEPLOYMENT = ROOT / "docs" / "aws-deployment.md"
ACCOUNT_ENV = {
    "LOCAL_STACK_HOME": str(ROOT / ".local" / "rehearsal-account"),
    "MYSQL_PORT": os.environ.get("REHEARSAL_MYSQL_PORT", "23307"),
    "VECTOR_DB_PORT": os.environ.get("REHEARSAL_VECTOR_DB_PORT", "25433"),
    "AWS_PORT": os.environ.get("REHEARSAL_AWS_PORT", "25055"),
    "AIRFLOW_PORT": os.environ.get("REHEARSAL_AIRFLOW_PORT", "28080"),
    # as AWS: every request the workers make is authorized against the policies step 0 shipped
    "LOCAL_IAM_ENFORCEMENT": os.environ.get("REHEARSAL_IAM_ENFORCEMENT", "1"),
}


def run_in_own_session(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run a command in a session of its own; past ``timeout`` the whole session is killed (its terraform too,
    which would otherwise hold the S3 state lock)."""
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            stderr += f"\n[killed after {timeout:.0f} s]"
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def deployment_section(title: str) -> str:
    """The ``## title`` section of the deployment page, up to the next ``## `` heading."""
    text = DEPLOYMENT.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def deployment_settings() -> dict[str, str]:
    """The settings table of the deployment's steps: each setting or connection name -> its row's value column."""
    settings: dict[str, str] = {}
    for line in deployment_section("Steps").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not line.strip().startswith("|") or cells[0] in {"setting", "---"}:
            continue
        for name in re.findall(r"`([^`]+)`", cells[0]):
            settings[name] = " | ".join(cells[1:])
    return settings


def deployment_first_runs() -> list[str]:
    """The DAG ids of step 3 ("First runs, in order"), in the page's order."""
    section = deployment_section("Steps")
    step = section[section.index("3. First runs") :].split("\n\n")[0]
    while re.search(r"\([^()]*\)", step):  # what a run's parenthesis mentions is not a run
        step = re.sub(r"\([^()]*\)", "", step)
    dags = {p.stem for p in (ROOT / "dags").glob("*.py")}
    order: list[str] = []
    for name in re.findall(r"`([a-z_]+)`", step):
        if name in dags and name not in order:
            order.append(name)
    return order


def deployment_step_zero() -> list[str]:
    """The commands of step 0 (the workers' permissions), as the page's code block lists them."""
    section = deployment_section("Steps")
    step = section[section.index("0. **") : section.index("\n1. ")]
    block = re.search(r"```bash\n(.*?)```", step, re.DOTALL)
    assert block, f"{DEPLOYMENT.name}'s step 0 has no bash block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


IAM_REPORT_HEADER = """# IAM report: what each principal called, what its policies allow

Written by `make iam-report` (the AWS rehearsal of `make test`: step 0 applies `terraform/airflow_workers` in an
emulated account, then the first runs; the endpoint records every request, `recsys_local.iam_audit`). A row "allowed,
not called" says why the action stays. The Glue job, the Lambdas and Firehose act under their own roles (each assumed
as its service, through the role's trust policy, and each request authorized against the role's policies): their
sections follow the workers' (every policy is also checked statically, `tests/iam_rules.py`).

"""

#: What the workers call that no policy grants, and why (every other action they call must be in the shipped policy).
NOT_GRANTED = {
    "sts:GetCallerIdentity": "AWS authorizes it for every principal",
    "iam:GetUser": "the provider's first try at the account id; it takes the AccessDenied and asks STS",
}


def workers_profile(tmp_path: Path, names) -> dict[str, str]:
    """AWS shared config under which boto3 (the DAGs' hooks) and Terraform act as the workers' role, assumed as MWAA
    assumes its execution role (the role's default trust policy names MWAA; the endpoint checks it)."""
    from recsys_local.identity import profile_files

    config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    role = f"arn:aws:iam::{names.account}:role/{names.prefix}-airflow-workers"
    files = profile_files("workers", role, names.region)
    config.write_text(files["config"])
    credentials.write_text(files["credentials"])
    return {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_PROFILE": "workers"}


def role_documents(iam, role: str) -> dict[str, dict]:
    """A role's policies as the account holds them: inline ones by name, attached managed ones by their ARN."""
    documents = {}
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        documents[f"{role}/{name}"] = json.loads(document) if isinstance(document, str) else document
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
        document = version["PolicyVersion"]["Document"]
        documents[attached["PolicyName"]] = json.loads(document) if isinstance(document, str) else document
    return documents


def service_role_reports(stack, decisions: list[dict], actions_log: Path, before_runs: int) -> tuple[str, list[str]]:
    """The IAM report's sections of the roles the services act as (Glue's job role, each Lambda's execution role,
    Firehose's delivery role): what their sessions called in the first runs, and why each allowed action nothing
    called stays (tests/iam_rules.py's SERVICE_UNCALLED_REASONS). Returns the sections and what has no reason."""
    from iam_rules import SERVICE_STATEMENTS_NO_RUN_NEEDS, SERVICE_UNCALLED_REASONS

    from recsys_local.iam_audit import report

    names = stack.settings.names
    roles = (
        ("Glue job", names.glue_role, "glue"),
        ("Transformation Lambda", f"{names.transformation_lambda}-role", "transformation"),
        ("Model inference Lambda", f"{names.model_inference_lambda}-role", "model inference"),
        ("Firehose delivery stream", f"{names.delivery_stream}-role", "firehose"),
    )
    requests = [json.loads(line) for line in actions_log.read_text().splitlines()[before_runs:]]
    iam = stack.client("iam")
    texts, unexplained = [], []
    for title, role, kind in roles:
        made = [
            d
            for d in decisions
            # its sessions' requests, and what a service checks the role may do (Lambda's ENI check on create)
            if (f":assumed-role/{role}/" in d["principal"] or d["principal"].endswith(f":role/{role}"))
            and d.get("policy", "identity") == "identity"
        ]
        keys = {d["key"] for d in made}
        lines = [{**line, "caller": kind} for line in requests if line["key"] in keys]
        implied = [{"caller": kind, "actions": [d["action"]]} for d in made]
        assert all(d["effect"] == "allow" for d in made), [d for d in made if d["effect"] != "allow"][:5]
        documents = role_documents(iam, role)
        text, missing = report(
            f"{title} (`{role}`)",
            documents,
            lines + implied,
            (kind,),
            SERVICE_UNCALLED_REASONS[kind],
            {},
        )
        texts.append(text)
        unexplained += [f"{role}: {action}" for action in missing]
        unneeded = unneeded_statements(documents, made, SERVICE_STATEMENTS_NO_RUN_NEEDS[kind])
        unexplained += [f"{role}: statement {sid} no request needed" for sid in unneeded]
    return "\n" + "\n".join(texts), unexplained


def unneeded_statements(documents: dict[str, dict], made: list[dict], reasons: dict[str, str]) -> list[str]:
    """Each Allow statement removed in turn, the decisions replayed: those no request needed (none refused), unless
    ``reasons`` (by Sid, or the managed policy's name) says why they stay."""
    from recsys_local.iam_policy import ALLOW, Context, evaluate

    policies = list(documents.items())
    unneeded = []
    for name, document in policies:
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        for index, statement in enumerate(statements):
            sid = statement.get("Sid") or str(index)
            if statement.get("Effect") != "Allow" or sid in reasons or name in reasons:
                continue
            reduced = [
                (other, {**doc, "Statement": [s for s in statements if s is not statement]} if other == name else doc)
                for other, doc in policies
            ]
            if not any(
                evaluate(reduced, d["action"], d["resource"], Context.of(d["context"])).effect != ALLOW for d in made
            ):
                unneeded.append(f"{name}/{sid}")
    return unneeded


def granted(action: str, documents: list[dict]) -> bool:
    """``action`` is in an Allow statement of one of the documents (by action: the endpoint does not yet evaluate
    resources and conditions, issue 34)."""
    from fnmatch import fnmatchcase

    for document in documents:
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        for statement in statements:
            actions = statement.get("Action", [])
            actions = actions if isinstance(actions, list) else [actions]
            if statement.get("Effect") == "Allow" and any(fnmatchcase(action, a) for a in actions):
                return True
    return False


#: What the batch DAG's Glue task calls through the provider's hook, as the deployment's workers (their profile)
START_THE_GLUE_JOB = """
import sys
from airflow.providers.amazon.aws.hooks.glue import GlueJobHook
try:
    GlueJobHook(aws_conn_id="aws_default", job_name=sys.argv[1]).conn.start_job_run(JobName=sys.argv[1])
except Exception as error:
    sys.exit(f"{type(error).__name__}: {error}")
"""


def without_statement(document: dict, sid: str) -> dict:
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    kept = [s for s in statements if s.get("Sid") != sid]
    assert len(kept) == len(statements) - 1, f"no statement {sid}"
    return {**document, "Statement": kept}


def statement_removals_fail_the_steps(stack, names, env: dict[str, str]) -> list[str]:
    """Issue 34 part 3, in real runs: one statement removed from the live policy of a principal, the step that needs
    it fails with AccessDenied naming the action and the resource; the policy is put back. The workers' RunTheGlueJob
    (the batch DAG's Glue task starts the run) and the model-inference Lambda's InferenceBundle (its first request
    loads the bundle); the Glue job's role: tests/integration/test_glue_runner.py; every statement of every principal:
    the replay above, with the same evaluator."""
    iam, problems = stack.client("iam"), []
    job = f"arn:aws:glue:{names.region}:{names.account}:job/{names.glue_job}"
    runtime = f"arn:aws:iam::{names.account}:policy/{names.prefix}-airflow-workers-runtime"
    policy = iam.get_policy(PolicyArn=runtime)["Policy"]
    original = iam.get_policy_version(PolicyArn=runtime, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
    document = original["Document"] if isinstance(original["Document"], dict) else json.loads(original["Document"])
    reduced = iam.create_policy_version(
        PolicyArn=runtime, PolicyDocument=json.dumps(without_statement(document, "RunTheGlueJob")), SetAsDefault=True
    )["PolicyVersion"]["VersionId"]
    try:
        run = subprocess.run(
            [sys.executable, "-c", START_THE_GLUE_JOB, names.glue_job], env=env, capture_output=True, text=True
        )
    finally:
        iam.set_default_policy_version(PolicyArn=runtime, VersionId=policy["DefaultVersionId"])
        iam.delete_policy_version(PolicyArn=runtime, VersionId=reduced)
    expected = f"not authorized to perform: glue:StartJobRun on resource: {job}"
    if run.returncode == 0 or "AccessDenied" not in run.stderr or expected not in run.stderr:
        problems.append(f"workers without RunTheGlueJob: the Glue task's start did not fail naming it: {run.stderr}")

    role, name = f"{names.model_inference_lambda}-role", f"{names.model_inference_lambda}-least-privilege"
    inline = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    inline = inline if isinstance(inline, dict) else json.loads(inline)
    iam.put_role_policy(
        RoleName=role, PolicyName=name, PolicyDocument=json.dumps(without_statement(inline, "InferenceBundle"))
    )
    try:
        event = {
            "requestContext": {"http": {"method": "POST"}},
            "rawPath": "/user_embeddings",
            "body": json.dumps({"city": "Nantes", "country": "France", "credit_limit": 21000}),
        }
        # nothing invoked this function before (its first runs only deploy it): a cold worker loads the bundle
        answer = stack.client("lambda").invoke(
            FunctionName=f"{names.model_inference_lambda}:live", Payload=json.dumps(event).encode()
        )
        payload = answer["Payload"].read().decode()
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(inline))
    expected = f"not authorized to perform: s3:GetObject on resource: arn:aws:s3:::{names.ml_artifacts_bucket}/"
    if "FunctionError" not in answer or "AccessDenied" not in payload or expected not in payload:
        problems.append(f"model inference without InferenceBundle: its request did not fail naming it: {payload}")
    return problems


def filled(example: Path, values: dict[str, str]) -> str:
    """The example file with each given assignment's value replaced (every one must be in the example)."""
    text = example.read_text()
    for key, value in values.items():
        text, count = re.subn(rf"(?m)^(#\s*)?{re.escape(key)}(\s*)=.*$", rf"{key}\2= {value}", text)
        assert count == 1, f"{example.name} has no line for {key}: {DEPLOYMENT.name}'s step 1 cannot be followed"
    return text


@pytest.fixture(scope="module")
def account():
    """The emulated account: a second local stack, new each time (an earlier run's home is deleted first), seeded,
    with nothing applied in it. Its data stays after the test, for a look at what it left."""
    from recsys_local.seed.loader import seed_if_empty
    from recsys_local.stack import Stack

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "VECTOR_DB_", "AWS_", "AIRFLOW_PORT"))}
    stack = Stack(stack_settings({**env, **ACCOUNT_ENV}))
    stack.down(lambda _m: None)
    shutil.rmtree(stack.home, ignore_errors=True)
    try:
        with pytest.MonkeyPatch.context() as patch:
            # the endpoint takes this process's environment: the account's Glue minute is AWS's, whichever test
            # stack ran before in this session (the test stack's is 20 s)
            patch.delenv("GLUE_TIMEOUT_UNIT_SECONDS", raising=False)
            stack.up(
                lambda message: print(f"[rehearsal account] {message}"),
                migrate_airflow=False,
                restore=False,
                workers_role=False,
            )
        seed_if_empty(stack.mariadb())
        yield stack
    finally:
        stack.down(lambda message: print(f"[rehearsal account] {message}"))


def prerequisites(stack) -> dict[str, str]:
    """What the deployment's prerequisites say the account has before the first step: a VPC with two private subnets,
    the MySQL source with its user and password in a Secrets Manager secret and its security group, a state
    bucket, the security group of the Airflow workers."""
    ec2, s3, sm = stack.client("ec2"), stack.client("s3"), stack.client("secretsmanager")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = sorted(
        ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"],
        key=lambda s: s["AvailabilityZone"],
    )[:2]

    def group(name: str) -> str:
        found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]
        if found:
            return str(found[0]["GroupId"])
        return str(ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"])

    mysql = stack.mariadb()
    body = json.dumps({"username": mysql.etl_user, "password": mysql.etl_password})
    try:
        secret = sm.create_secret(Name="source-db-credentials", SecretString=body)["ARN"]
    except sm.exceptions.ResourceExistsException:
        secret = sm.put_secret_value(SecretId="source-db-credentials", SecretString=body)["ARN"]
    bucket = "rehearsal-terraform-state"
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    return {
        "vpc": vpc,
        "subnets": json.dumps([s["SubnetId"] for s in subnets]),
        "source_sg": group("source-db"),
        "workers_sg": group("airflow-workers"),
        "source_secret": secret,
        "state_bucket": bucket,
    }


#: tfvars lines an emulated account needs and AWS does not, and why: the emulator's RDS is the one PostgreSQL server
#: of the stack, on its own port, with its own superuser (the RDS-managed secret holds that user's password).
def emulator_lines(stack) -> dict[str, str]:
    pg = stack.vectordb()
    return {
        "vector_db_port": f"{pg.port}  # the emulated RDS instance is the stack's one PostgreSQL server, on this port",
        "vector_db_master_username": f'"{pg.user}"  # ...whose master user exists already (RDS creates its own)',
    }


def test_the_documented_aws_deployment_completes_in_an_empty_account(account, tmp_path):
    stack, names = account, account.settings.names
    have = prerequisites(stack)
    mysql, pg = stack.mariadb(), stack.vectordb()

    # 1. backend.hcl and terraform.tfvars from the examples
    backend = tmp_path / "backend.hcl"
    backend.write_text(filled(ROOT / "terraform" / "backend.hcl.example", {"bucket": f'"{have["state_bucket"]}"'}))
    tfvars = tmp_path / "terraform.tfvars"
    tfvars.write_text(
        filled(
            ROOT / "terraform" / "terraform.tfvars.example",
            {
                "project_prefix": f'"{names.prefix}"',
                "region": f'"{names.region}"',
                "vpc_id": f'"{have["vpc"]}"',
                "private_subnet_ids": have["subnets"],
                "source_db_host": f'"{mysql.host}"',
                "source_db_port": str(mysql.port),
                "source_db_name": f'"{mysql.database}"',
                "source_db_secret_arn": f'"{have["source_secret"]}"',
                "source_db_security_group_id": f'"{have["source_sg"]}"',
                "airflow_workers_security_group_id": f'"{have["workers_sg"]}"',
            },
        )
        + "\n# the emulated account (tests/e2e/test_aws_deployment_rehearsal.py)\n"
        + "".join(f"{key} = {value}\n" for key, value in emulator_lines(stack).items())
    )

    # 0. the administrator applies the workers' permissions, in a copy of the repository's terraform/
    checkout = tmp_path / "checkout"
    shutil.copytree(
        ROOT / "terraform", checkout / "terraform", symlinks=True, ignore=shutil.ignore_patterns(".terraform")
    )
    shutil.copy(backend, checkout / "terraform" / "backend.hcl")
    shutil.copy(tfvars, checkout / "terraform" / "terraform.tfvars")
    admin = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    admin |= {
        "AWS_ENDPOINT_URL": stack.settings.aws_endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": names.region,
        "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": os.devnull,
    }
    cwd = checkout
    from recsys.provisioning.terraform import find_plugin_mirror

    for command in deployment_step_zero():
        argv = shlex.split(command.replace("<the bucket of backend.hcl>", have["state_bucket"]))
        if argv[0] == "cd":
            cwd = cwd / argv[1]
            continue
        assert argv[0] == "terraform", command
        if argv[1] == "init" and (mirror := find_plugin_mirror(dict(os.environ))):
            argv.append(f"-plugin-dir={mirror}")  # this machine has no route to the registry (an emulator line)
        argv[2:2] = ["-input=false", "-no-color"] + (["-auto-approve"] if argv[1] == "apply" else [])
        done = subprocess.run(argv, cwd=cwd, env=admin, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, f"step 0: {command}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    iam = stack.client("iam")
    shipped = {
        p["PolicyName"]: p
        for p in iam.list_policies(Scope="Local")["Policies"]
        if p["PolicyName"].startswith(names.prefix)
    }
    assert sorted(shipped) == [
        f"{names.prefix}-airflow-workers-{part}"
        for part in ("provision-compute", "provision-data", "provision-network", "provision-streaming", "runtime")
    ], sorted(shipped)
    documents = [
        iam.get_policy_version(PolicyArn=p["Arn"], VersionId=p["DefaultVersionId"])["PolicyVersion"]["Document"]
        for p in shipped.values()
    ]
    documents = [json.loads(d) if isinstance(d, str) else d for d in documents]
    from recsys_local.iam_policy import problems

    unreadable = [p for name, d in zip(shipped, documents, strict=True) for p in problems(name, d)]
    assert not unreadable, f"statements the endpoint cannot evaluate (it would refuse what they allow): {unreadable}"
    sizes = {name: len(json.dumps(d, separators=(",", ":"))) for name, d in zip(shipped, documents, strict=True)}
    assert max(sizes.values()) <= 6144, f"over a managed policy's 6,144 characters (IAM's quota): {sizes}"
    attached = iam.list_attached_role_policies(RoleName=f"{names.prefix}-airflow-workers")["AttachedPolicies"]
    assert {a["PolicyName"] for a in attached} == set(shipped)
    actions_log = stack.home / "aws" / "actions.jsonl"
    before_runs = len(actions_log.read_text().splitlines()) if actions_log.exists() else 0

    # 2. Airflow: its own configuration, include/ on PYTHONPATH, and the page's settings table, nothing else
    settings = deployment_settings()
    airflow_home = tmp_path / "airflow"
    airflow_home.mkdir()
    platform = {
        "RECSYS_TARGET": "aws",
        "RECSYS_PREFIX": names.prefix,
        "AWS_DEFAULT_REGION": names.region,
        "TF_BACKEND_CONFIG": str(backend),
        "TF_VAR_FILE": str(tfvars),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws"}),
        "AIRFLOW_CONN_MYSQL_SOURCE": json.dumps(
            {
                "conn_type": "mysql",
                "host": mysql.host,
                "port": mysql.port,
                "login": mysql.etl_user,
                "password": mysql.etl_password,
                "schema": mysql.database,
                "extra": {"ssl": {"ca": str(mysql.ca_file)}},
            }
        ),
        "AIRFLOW_CONN_VECTOR_DB": json.dumps(
            {"conn_type": "postgres", "extra": {"sslmode": "verify-full", "sslrootcert": str(pg.ca_file)}}
        ),
        "VECTOR_DB_CA_BUNDLE": str(pg.ca_file),
    }
    from recsys.provisioning.terraform import find_plugin_mirror

    if mirror := find_plugin_mirror(dict(os.environ)):  # workers without the registry (this machine): the table's row
        platform["TF_PLUGIN_MIRROR"] = str(mirror)
    for key in platform:
        name = key.removeprefix("AIRFLOW_CONN_").lower() if key.startswith("AIRFLOW_CONN_") else key
        named = {n for n in settings if n == name or n.endswith(f" {name}") or n == f"connection {name}"}
        assert name in settings or named, f"{key} is not in {DEPLOYMENT.name}'s settings table: {sorted(settings)}"
    assert "ssl" in settings["mysql_source"].lower(), f"the source requires TLS: {DEPLOYMENT.name} must say how"
    for field in ("host", "port", "schema", "user", "password"):  # each field the connection above sets
        assert field in settings["mysql_source"], f"{DEPLOYMENT.name}'s mysql_source row does not say its {field}"
    # the runtime image holds include/ only: this machine's virtualenv can import the local platform (its editable
    # install), so a stand-in recsys_local ahead of it on the path fails any import of it in the deployment's processes
    blocker = airflow_home / "no-local-platform"
    (blocker / "recsys_local").mkdir(parents=True, exist_ok=True)
    (blocker / "recsys_local" / "__init__.py").write_text(
        'raise ImportError("the AWS deployment imported the local platform (recsys_local): not in the image")\n'
    )
    outside = ("AIRFLOW", "RECSYS_", "AWS_", "TF_", "MYSQL_", "VECTOR_DB_", "LOCAL_", "GLUE_", "TERRAFORM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(outside) and k != "PYTHONPATH"}
    env |= {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "PYTHONPATH": os.pathsep.join((str(ROOT / "include"), str(blocker))),
        **platform,
        # where the account is: the emulator's endpoint; who the workers are: the role step 0 made, assumed as MWAA
        # assumes it (on AWS the runtime gives the workers that role: MWAA, ECS, EC2)
        "AWS_ENDPOINT_URL": stack.settings.aws_endpoint_url,
        # Terraform's SDK assumes a profile's role at STS's public endpoint unless this names another
        "AWS_ENDPOINT_URL_STS": stack.settings.aws_endpoint_url,
        **workers_profile(tmp_path, names),
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    migrated = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, check=False)
    assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-3000:]

    # 3. the first runs, in the page's order
    order = deployment_first_runs()
    assert order == [
        "platform_health",
        "batch_training_data",
        "recommender_model",
        "vector_db_embeddings",
        "streaming_recommendations",
    ], order
    secrets_in_play = [mysql.etl_password, pg.password, stack.mariadb().admin_password]
    outputs: dict[str, str] = {}
    for dag_id in order:
        result = run_in_own_session([airflow, "dags", "test", dag_id], env, timeout=1200)
        output = outputs[dag_id] = result.stdout + result.stderr
        (tmp_path / f"{dag_id}.log").write_text(output)
        finished = [line for line in output.splitlines() if "DagRun Finished:" in line]
        succeeded = result.returncode == 0 and bool(finished) and "state=success" in finished[-1]
        assert succeeded, f"{dag_id} did not succeed (log: {tmp_path / f'{dag_id}.log'}):\n{output[-6000:]}"
        assert not [s for s in secrets_in_play if s in output], f"a password reached {dag_id}'s output"
        # every run reads or applies a root: through the S3 backend of backend.hcl, never a local one
        assert 'Successfully configured the backend "s3"' in output, dag_id
        assert 'backend "local"' not in output, dag_id
    assert "vector DB not checked" in outputs["platform_health"], "before vector_db_embeddings: checked false"

    # what the chain left in the account: the roots' state in the S3 backend, the training data,
    # the embeddings in pgvector, the live Lambdas
    s3 = stack.client("s3")
    state = {o["Key"] for o in s3.list_objects_v2(Bucket=have["state_bucket"]).get("Contents", [])}
    roots = ("airflow_workers", "etl", "vector_db", "streaming_inference")
    assert state == {f"{root}/terraform.tfstate" for root in roots}, state
    from recsys_local import postgres
    from recsys_local.mariadb import connect as source

    with postgres.connect(pg) as conn:
        items, users = (conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("item_emb", "user_emb"))
    with source(mysql, admin=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM products")
        products = cur.fetchone()[0]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=names.datalake_bucket, Prefix="ratings-ml-training/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    customers = {k.split("customerNumber=")[1].split("/")[0] for k in keys if k.endswith(".parquet")}
    assert customers, keys[:10]
    assert users == len(customers), (users, len(customers))  # one embedding per customer of the training data
    assert items == products, (items, products)
    lambdas = stack.client("lambda")
    for function in (names.transformation_lambda, names.model_inference_lambda):
        alias = lambdas.get_alias(FunctionName=function, Name="live")
        assert alias["FunctionVersion"].isdigit(), alias  # a published version, not $LATEST

    from iam_rules import STATEMENTS_NO_RUN_NEEDS, UNCALLED_REASONS

    from recsys_local.iam_audit import report
    from recsys_local.iam_enforce import DECISIONS
    from recsys_local.iam_policy import ALLOW

    role = f":assumed-role/{names.prefix}-airflow-workers/"
    decisions = [json.loads(line) for line in (stack.home / "aws" / DECISIONS).read_text().splitlines()]
    made = [d for d in decisions if role in d["principal"]]

    # every action the workers called in the first runs (Terraform, the DAGs' hooks) is in the policies step 0 shipped
    # the workers' own requests: signed with their role's session keys (MWAA's key assumes the role; the
    # Glue job, the Lambdas and Firehose sign with sessions of their own roles)
    workers_keys = {d["key"] for d in made}
    lines = [json.loads(line) for line in actions_log.read_text().splitlines()[before_runs:]]
    lines = [line for line in lines if line["key"] in workers_keys]
    called = {a for line in lines for a in line["actions"]}
    missing = sorted(a for a in called - set(NOT_GRANTED) if not granted(a, documents))
    assert not missing, f"the workers called actions terraform/airflow_workers does not grant: {missing}"

    # what the endpoint decided on the workers' requests: each an allow (else a run would have failed)
    assert made, f"no decision on the workers' requests in {DECISIONS}: was the endpoint enforcing?"
    assert all(d["effect"] == ALLOW for d in made), [d for d in made if d["effect"] != ALLOW][:5]

    # the report (make iam-report): what the workers called (the requests, and what AWS authorizes on their behalf:
    # iam:PassRole, tag-on-create), and why each allowed action nothing called stays
    implied = [{"caller": "workers", "actions": [d["action"]]} for d in made]
    text, unexplained = report(
        "Airflow workers (`terraform/airflow_workers`)",
        dict(zip(shipped, documents, strict=True)),
        [{**line, "caller": "workers"} for line in lines] + implied,
        ("workers",),
        UNCALLED_REASONS,
        NOT_GRANTED,
    )
    # the services' roles: what Glue, each Lambda and Firehose called as their roles' sessions
    services_text, services_unexplained = service_role_reports(stack, decisions, actions_log, before_runs)
    page = IAM_REPORT_HEADER + text + services_text
    (ROOT / ".local" / "reports").mkdir(parents=True, exist_ok=True)
    (ROOT / ".local" / "reports" / "iam.md").write_text(page)
    if os.environ.get("IAM_REPORT_PAGE"):
        (ROOT / "docs" / "iam-report.md").write_text(page)
    assert not unexplained, f"allowed, never called, and no reason why they stay: {unexplained}"
    assert not services_unexplained, f"the services' roles allow, never call, and say no reason: {services_unexplained}"

    # each statement is needed: removed, some request the workers made would have been refused (replayed from the
    # endpoint's decisions), unless it holds update- or destroy-only actions or its reason is written down
    unneeded = [
        statement
        for statement in unneeded_statements(dict(zip(shipped, documents, strict=True)), made, STATEMENTS_NO_RUN_NEEDS)
        if not statement.endswith("Lifecycle")
    ]
    assert not unneeded, f"statements no request of the first runs needs, with no reason to stay: {unneeded}"

    # 4. a statement removed fails the real step that needs it, naming the action and the resource (a sample of
    # principals in real runs; the replay above covers every statement)
    assert statement_removals_fail_the_steps(stack, names, env) == []
