"""The local endpoint's corrections of moto: what each one changes, and what it leaves alone."""

from __future__ import annotations

import json

from recsys.localstack.fidelity import policy_for_tls_request

DENY_INSECURE = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
DENY_DELETE = {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"}


def test_the_insecure_transport_denial_does_not_apply_to_a_tls_request():
    policy = json.dumps({"Version": "2012-10-17", "Statement": [DENY_INSECURE, DENY_DELETE]})
    assert json.loads(policy_for_tls_request(policy))["Statement"] == [DENY_DELETE]


def test_other_conditions_and_single_statements_are_kept():
    other = {**DENY_INSECURE, "Condition": {"Bool": {"aws:SecureTransport": "false"}, "IpAddress": {"x": "y"}}}
    policy = json.dumps({"Version": "2012-10-17", "Statement": other})
    assert json.loads(policy_for_tls_request(policy))["Statement"] == [other]
