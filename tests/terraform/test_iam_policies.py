"""Every IAM policy document in terraform/ follows the least-privilege rules of tests/iam_rules.py (statically, with
Terraform's interpolations left as they are; tests/integration/test_terraform_apply.py checks the rendered ones)."""

from __future__ import annotations

from pathlib import Path

import hcl2
import pytest
from iam_rules import identity_policy_violations, lambda_s3_violations

from recsys.config import project_root

MODULES = sorted(p for p in (project_root() / "terraform" / "modules").iterdir() if p.is_dir())


def unq(value):
    if isinstance(value, str) and value.startswith('"') and value.endswith('"'):
        return value[1:-1]
    if isinstance(value, list):
        return [unq(v) for v in value]
    return value


def policy_documents(folder: Path) -> dict[str, dict]:
    """`data "aws_iam_policy_document"` blocks as IAM JSON (Effect defaults to Allow, as in the provider)."""
    documents = {}
    for path in sorted(folder.glob("*.tf")):
        with open(path) as handle:
            parsed = hcl2.load(handle)
        for block in parsed.get("data", []):
            for kind, named in block.items():
                if unq(kind) != "aws_iam_policy_document":
                    continue
                for name, body in named.items():
                    statements = []
                    for statement in body.get("statement", []):
                        conditions = {unq(c["variable"]): unq(c["values"]) for c in statement.get("condition", [])}
                        statements.append(
                            {
                                "Sid": unq(statement.get("sid", "")),
                                "Effect": unq(statement.get("effect", "Allow")),
                                "Action": unq(statement.get("actions", [])),
                                "Resource": unq(statement.get("resources", [])),
                                "Condition": conditions,
                                "Principal": statement.get("principals"),
                            }
                        )
                    documents[f"{folder.name}/{unq(name)}"] = {"Statement": statements}
    return documents


ALL = {name: doc for folder in MODULES for name, doc in policy_documents(folder).items()}
IDENTITY = {name: doc for name, doc in ALL.items() if not name.endswith("_assume")}


def test_the_policy_documents_were_found():
    assert {"etl/glue", "streaming_inference/lambda", "streaming_inference/firehose"} <= set(IDENTITY)


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_identity_policies_are_least_privilege(name):
    assert identity_policy_violations(name, IDENTITY[name]) == []


def test_the_lambdas_read_only_the_inference_bundle():
    assert (
        lambda_s3_violations(
            "lambda", IDENTITY["streaming_inference/lambda"], "${var.names.ml_artifacts_bucket}", "${local.partition}"
        )
        == []
    )


def test_the_rules_catch_what_they_are_for():
    broad = {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]}
    tags = {"Statement": [{"Effect": "Allow", "Action": ["ec2:CreateTags"], "Resource": ["*"]}]}
    wildcard = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*"}]}
    metrics = {"Statement": [{"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"}]}
    assert identity_policy_violations("broad", broad)
    assert identity_policy_violations("tags", tags)
    assert identity_policy_violations("wildcard", wildcard)
    assert identity_policy_violations("metrics", metrics)
    whole_bucket = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}
    assert lambda_s3_violations("lambda", whole_bucket, "b")
