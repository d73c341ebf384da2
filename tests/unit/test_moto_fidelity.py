"""The local endpoint's corrections of moto: what each one changes, and what it leaves alone."""

from __future__ import annotations

import json

from recsys_local.fidelity import policy_for_tls_request

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


def test_each_db_instance_has_its_own_resource_id_and_the_providers_filter_finds_one(monkeypatch):
    """The AWS provider reads an instance by ``dbi-resource-id``: with moto's one id for all, a second instance in
    the account made it fail ("couldn't find resource")."""
    import boto3
    from moto import mock_aws
    from moto.rds.models import DBInstance

    from recsys_local.fidelity import with_unique_resource_id

    monkeypatch.setattr(DBInstance, "__init__", with_unique_resource_id(DBInstance.__init__))
    with mock_aws():
        rds = boto3.client("rds", region_name="us-east-1")
        for name in ("first-db", "second-db"):
            rds.create_db_instance(
                DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20
            )
        ids = {d["DBInstanceIdentifier"]: d["DbiResourceId"] for d in rds.describe_db_instances()["DBInstances"]}
        assert len(set(ids.values())) == 2, ids
        assert all(len(i) == 29 and i.startswith("db-") for i in ids.values()), ids
        for name, resource_id in ids.items():
            found = rds.describe_db_instances(Filters=[{"Name": "dbi-resource-id", "Values": [resource_id]}])
            assert [d["DBInstanceIdentifier"] for d in found["DBInstances"]] == [name]
