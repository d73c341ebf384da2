"""The local endpoint's policy evaluation, on AWS's documented rules: explicit deny wins, default deny, wildcards,
conditions (a missing key is false), set qualifiers."""

from __future__ import annotations

import pytest

from recsys_local.iam_policy import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Context, evaluate, matches

BUCKET = "arn:aws:s3:::de-c1w4-123456789012-datalake"


def decide(statements, action, resource, **context):
    return evaluate([("p", {"Statement": statements})], action, resource, Context.of(context)).effect


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_default_deny_and_allow_by_action_and_resource():
    policy = [allow("s3:GetObject", f"{BUCKET}/*")]
    assert decide(policy, "s3:GetObject", f"{BUCKET}/a/b.parquet") == ALLOW
    assert decide(policy, "s3:PutObject", f"{BUCKET}/a") == IMPLICIT_DENY
    assert decide(policy, "s3:GetObject", "arn:aws:s3:::other/a") == IMPLICIT_DENY
    assert decide(policy, "S3:getobject", f"{BUCKET}/a") == ALLOW  # actions are case-insensitive


def test_explicit_deny_wins_over_any_allow():
    policy = [allow("s3:*", "*"), {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": f"{BUCKET}/*"}]
    assert decide(policy, "s3:GetObject", f"{BUCKET}/a") == ALLOW
    assert decide(policy, "s3:DeleteObject", f"{BUCKET}/a") == EXPLICIT_DENY


def test_not_action_and_not_resource():
    policy = [{"Effect": "Allow", "NotAction": "iam:*", "NotResource": f"{BUCKET}/secret/*"}]
    assert decide(policy, "s3:GetObject", f"{BUCKET}/a") == ALLOW
    assert decide(policy, "iam:CreateRole", "arn:aws:iam::1:role/r") == IMPLICIT_DENY
    assert decide(policy, "s3:GetObject", f"{BUCKET}/secret/x") == IMPLICIT_DENY


def test_wildcards_cross_colons_and_slashes_and_question_mark_is_one_character():
    assert matches("arn:aws:lambda:*:*:function:de-c1w4-*", "arn:aws:lambda:us-east-1:1:function:de-c1w4-x:live")
    assert matches("arn:aws:s3:::b/?", "arn:aws:s3:::b/a")
    assert not matches("arn:aws:s3:::b/?", "arn:aws:s3:::b/ab")


@pytest.mark.parametrize(
    ("condition", "context", "effect"),
    [
        ({"StringEquals": {"aws:RequestTag/Project": "de-c1w4"}}, {"aws:RequestTag/Project": "de-c1w4"}, ALLOW),
        ({"StringEquals": {"aws:RequestTag/Project": "de-c1w4"}}, {"aws:RequestTag/Project": "other"}, IMPLICIT_DENY),
        ({"StringEquals": {"aws:RequestTag/Project": "de-c1w4"}}, {}, IMPLICIT_DENY),  # a missing key is false
        ({"StringEqualsIfExists": {"aws:RequestTag/Project": "de-c1w4"}}, {}, ALLOW),
        ({"StringLike": {"iam:PassedToService": "glue.*"}}, {"iam:PassedToService": "glue.amazonaws.com"}, ALLOW),
        ({"StringNotEquals": {"aws:RequestTag/Project": "x"}}, {"aws:RequestTag/Project": "y"}, ALLOW),
        # a negated operator holds on a missing key (AWS: the usual Deny unless aws:SourceVpce equals ... applies)
        ({"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}, {}, ALLOW),
        ({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"}}, {}, ALLOW),
        (
            {"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/A"}},
            {"iam:PolicyARN": "arn:aws:iam::aws:policy/B"},
            IMPLICIT_DENY,
        ),
        (
            {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/a"]}},
            {"kms:ResourceAliases": ["alias/b", "alias/a"]},
            ALLOW,
        ),
        (
            {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/a"]}},
            {"kms:ResourceAliases": ["alias/b"]},
            IMPLICIT_DENY,
        ),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["Project"]}},
            {"aws:TagKeys": ["Project", "Owner"]},
            IMPLICIT_DENY,
        ),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["Project"]}}, {}, ALLOW),  # AWS: true for an empty set
        ({"Null": {"aws:RequestTag/Project": "true"}}, {}, ALLOW),
        ({"Null": {"aws:RequestTag/Project": "false"}}, {}, IMPLICIT_DENY),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "true"}, ALLOW),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"}, ALLOW),
        (  # every operator of a statement must hold
            {"StringEquals": {"aws:RequestTag/Project": "de-c1w4", "kms:ViaService": "s3.us-east-1.amazonaws.com"}},
            {"aws:RequestTag/Project": "de-c1w4"},
            IMPLICIT_DENY,
        ),
    ],
)
def test_conditions(condition, context, effect):
    assert decide([allow("kms:CreateKey", "*", Condition=condition)], "kms:CreateKey", "*", **context) == effect


def test_a_condition_key_is_matched_case_insensitively_and_the_deciding_statement_is_named():
    policy = {"Statement": [allow("glue:StartJobRun", "*", Sid="RunTheGlueJob")]}
    decision = evaluate([("runtime", policy)], "glue:StartJobRun", "arn:aws:glue:us-east-1:1:job/j", Context.of({}))
    assert decision.statement == "runtime/RunTheGlueJob"
    conditioned = [allow("s3:PutObject", "*", Condition={"StringEquals": {"AWS:RequestTag/project": "x"}})]
    assert decide(conditioned, "s3:PutObject", "arn:aws:s3:::b/k", **{"aws:requesttag/PROJECT": "x"}) == ALLOW


def test_an_operator_the_endpoint_does_not_know_is_an_error_not_an_allow():
    policy = [allow("s3:GetObject", "*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})]
    with pytest.raises(ValueError, match="IpAddress"):
        decide(policy, "s3:GetObject", f"{BUCKET}/a", **{"aws:SourceIp": "10.1.1.1"})


def test_a_deny_with_not_principal_covers_everybody_else_and_an_allow_with_it_nobody():
    from recsys_local.iam_policy import Caller, evaluate_resource_policy

    workers = Caller("123456789012", ("arn:aws:sts::123456789012:assumed-role/w/s", "arn:aws:iam::123456789012:role/w"))
    other = Caller("123456789012", ("arn:aws:iam::123456789012:user/u",))
    only_workers = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "s3:GetObject", "Resource": "*"},
            {
                "Effect": "Deny",
                "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:role/w"},
                "Action": "s3:GetObject",
                "Resource": "*",
            },
        ]
    }

    def decide(caller):
        verdict = evaluate_resource_policy(only_workers, caller, "s3:GetObject", "arn:aws:s3:::b/k", Context(), "b")
        return verdict.effect

    assert decide(workers) == ALLOW
    assert decide(other) == EXPLICIT_DENY
    allow_all_but = {"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "*", "Resource": "*"}]}
    result = evaluate_resource_policy(allow_all_but, other, "s3:GetObject", "arn:aws:s3:::b/k", Context(), "p")
    assert result.effect == IMPLICIT_DENY
