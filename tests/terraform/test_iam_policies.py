"""Every IAM policy document in terraform/ follows the least-privilege rules of tests/iam_rules.py (statically, with
Terraform's interpolations left as they are; tests/integration/test_terraform_apply.py checks the rendered ones)."""

from __future__ import annotations

from pathlib import Path

import hcl2
import pytest
from iam_rules import (
    NO_RESOURCE_LEVEL,
    as_list,
    identity_policy_violations,
    lambda_s3_violations,
    resource_mismatches,
    service_reference,
    unknown_actions,
    unknown_condition_keys,
)

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
                        conditions: dict[str, dict] = {}  # as IAM's JSON: {operator: {key: values}}
                        for c in statement.get("condition", []):
                            conditions.setdefault(unq(c["test"]), {})[unq(c["variable"])] = unq(c["values"])
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


REFERENCE = service_reference()


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_action_and_condition_key_is_one_aws_knows(name):
    """A typo'd action (or condition key) is no error for IAM: it silently allows nothing (or never matches)."""
    assert unknown_actions(name, ALL[name], REFERENCE) == []
    assert unknown_condition_keys(name, ALL[name], REFERENCE) == []


def test_resource_star_is_only_for_actions_aws_offers_no_resource_for():
    """The hand list behind rule "Resource '*' only where AWS allows nothing narrower", checked against AWS's
    reference: none of its actions has a resource type (ec2:DescribeVpcAttribute has one, the VPC: it left)."""
    narrower = []
    for action in sorted(NO_RESOURCE_LEVEL):
        prefix, _, verb = action.partition(":")
        (privilege,) = [p for p in REFERENCE[prefix]["privileges"] if p["privilege"] == verb]
        types = [r["resource_type"] for r in privilege["resource_types"] if r["resource_type"]]
        if types:
            narrower.append(f"{action}: {types}")
    assert narrower == []


def test_the_reference_checks_catch_a_typo_naming_the_statement():
    typo = {
        "Statement": [
            {"Sid": "ReadData", "Effect": "Allow", "Action": ["s3:GetObjekt"], "Resource": ["arn:aws:s3:::b/*"]},
            {"Sid": "Tagged", "Action": "kms:Decrypt", "Condition": {"StringEquals": {"kms:ViaServise": "s3"}}},
            {"Sid": "NoSuchService", "Action": "s4:Get*"},
            {"Sid": "Fine", "Action": ["glue:Get*"], "Condition": {"StringEquals": {"aws:SourceAccount": ["1"]}}},
            {"Sid": "Flat", "Action": ["logs:PutLogEvents"], "Condition": {"aws:SourceAccount": ["1"]}},
        ]
    }
    assert unknown_actions("p", typo, REFERENCE) == [
        "p/ReadData: s3:GetObjekt is no action of AWS",
        "p/NoSuchService: s4:Get* is no action of AWS (s4?)",
    ]
    assert unknown_condition_keys("p", typo, REFERENCE) == [
        "p/Tagged: condition key kms:ViaServise is neither global nor kms's",
        "p/Flat: condition ['aws:SourceAccount'] is not {operator: {key: values}}",
    ]


def interpolations_as_wildcards(document: dict) -> dict:
    """Terraform's ``${...}`` in resources read as IAM's ``*`` (the literal parts still must meet a resource type)."""
    import re

    statements = [
        {**s, "Resource": [re.sub(r"\$\{[^}]*\}", "*", str(r)) for r in as_list(s["Resource"])]}
        for s in document["Statement"]
    ]
    return {**document, "Statement": statements}


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_every_resource_is_one_the_statements_actions_apply_to(name):
    """A resource pattern that matches nothing of its actions' resource types (a typo'd service, type or separator)
    and an action that none of the statement's resources can be, both named by statement (the rendered policies:
    tests/integration/test_terraform_apply.py and the rehearsal)."""
    assert resource_mismatches(name, interpolations_as_wildcards(IDENTITY[name]), REFERENCE) == []


def test_the_resource_check_catches_a_pattern_that_matches_nothing():
    ec2 = "arn:aws:ec2:us-east-1:123456789012"
    policy = {
        "Statement": [
            {"Sid": "Eni", "Effect": "Allow", "Action": ["ec2:CreateNetworkInterface"],
             "Resource": [f"{ec2}:network-interfaces/*"]},
            {"Sid": "Bundle", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:b/latest.json"},
            {"Sid": "Describe", "Effect": "Allow", "Action": "ec2:DescribeSubnets", "Resource": f"{ec2}:subnet/s"},
            {"Sid": "Streams", "Effect": "Allow", "Action": ["logs:PutLogEvents"],
             "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:*"},
        ]
    }  # fmt: skip
    found = resource_mismatches("p", policy, REFERENCE)
    assert f"p/Eni: {ec2}:network-interfaces/* is a resource none of ['ec2:CreateNetworkInterface'] applies to" in found
    assert "p/Bundle: s3:GetObject applies to none of ['arn:aws:s3:b/latest.json']" in found
    assert "p/Describe: ec2:DescribeSubnets applies to no resource type (it needs Resource '*')" in found
    assert not [f for f in found if f.startswith("p/Streams")], "a log group's streams are its ARN with :*"
    # no false finding: an action pattern meets what some action it names applies to; NotResource; IAM's ?
    glue = "arn:aws:glue:us-east-1:123456789012"
    fine = {
        "Statement": [
            {"Sid": "Family", "Effect": "Allow", "Action": "glue:Get*", "Resource": f"{glue}:table/d/t"},
            {"Sid": "Mixed", "Effect": "Allow", "Action": ["s3:GetObject", "s3:List*"],
             "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]},
            {"Sid": "Not", "Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::b/x"},
            {"Sid": "One", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/?"},
        ]
    }  # fmt: skip
    assert resource_mismatches("fine", fine, REFERENCE) == []
    typo = {"Statement": [{"Sid": "T", "Effect": "Allow", "Action": "glue:Get*", "Resource": f"{glue}:tabel/d/t"}]}
    assert "T: no action of glue:Get* applies to any of" in " ".join(resource_mismatches("p", typo, REFERENCE))


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_statement_is_one_the_local_endpoint_evaluates(name):
    """A statement the endpoint cannot read (an operator it does not evaluate) would refuse every request it meets."""
    from recsys_local.iam_policy import problems

    assert [p for p in problems(name, ALL[name]) if "${" not in p] == []  # an interpolated operator: the applied check


def test_unreadable_statements_are_named():
    from recsys_local.iam_policy import problems

    bad = {
        "Statement": [
            {"Sid": "Lower", "Effect": "allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Sid": "NoAction", "Effect": "Allow", "Resource": "*"},
            {"Sid": "Ip", "Effect": "Allow", "Action": "s3:*", "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4"}}},
            {"Sid": "Fine", "Effect": "Deny", "Action": "s3:*", "Condition": {"ForAnyValue:StringLikeIfExists": {}}},
        ]
    }
    assert problems("p", bad) == [
        "p/Lower: Effect 'allow' (Allow or Deny)",
        "p/NoAction: no Action or NotAction",
        "p/Ip: condition operator 'IpAddress' is not evaluated by the local endpoint",
    ]
