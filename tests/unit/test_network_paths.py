"""tests/network_paths.py reads a first plan as Terraform writes it (``terraform show -json``): the ids of groups the
root creates are unknown, so a rule's group is followed through the configuration's references to the planned
group's name; a missing rule is reported, not assumed."""

from __future__ import annotations

import copy

import pytest
from network_paths import ANYWHERE, Plans, missing_paths, reaches_networks

SOURCE, WORKERS = "sg-0source", "sg-0workers"
GLUE = "sg:vpc-1/de-c1w4-etl-job-sg"


def rule(name: str, kind: str, group: str | None, peer: str | None, port: int, cidr: str | None = None) -> tuple:
    """A planned rule: ``None`` for a group id the plan does not know yet (the configuration references
    ``aws_security_group.glue``)."""
    values = {"ip_protocol": "tcp", "from_port": port, "to_port": port, "security_group_id": group}
    values |= {"cidr_ipv4": cidr} if cidr else {"referenced_security_group_id": peer}
    unknown = {key: True for key, value in values.items() if value is None}
    expressions = {
        key: {"references": ["aws_security_group.glue.id", "aws_security_group.glue"]}
        if value is None
        else {"references": ["var.x"]}
        for key, value in values.items()
        if key.endswith("group_id")
    }
    address = f"module.etl.aws_vpc_security_group_{kind}_rule.{name}"
    resource = {"address": address, "mode": "managed", "type": f"aws_vpc_security_group_{kind}_rule", "name": name,
                "values": {k: v for k, v in values.items() if v is not None}}  # fmt: skip
    config = {"address": f"aws_vpc_security_group_{kind}_rule.{name}", "expressions": expressions}
    return resource, config, {"address": address, "change": {"after_unknown": unknown}}


def plan(*rules: tuple) -> dict:
    glue = {"address": "module.etl.aws_security_group.glue", "mode": "managed", "type": "aws_security_group",
            "name": "glue", "values": {"name": "de-c1w4-etl-job-sg", "vpc_id": "vpc-1"}}  # fmt: skip
    connection = {
        "address": "module.etl.aws_glue_connection.source", "mode": "managed", "type": "aws_glue_connection",
        "name": "source", "values": {"physical_connection_requirements": [{}]},
    }  # fmt: skip
    connection_config = {
        "address": "aws_glue_connection.source",
        "expressions": {"physical_connection_requirements": [{"security_group_id_list": {
            "references": ["aws_security_group.glue.id", "aws_security_group.glue"]}}]},
    }  # fmt: skip
    unknown_list = {"physical_connection_requirements": [{"security_group_id_list": True}]}
    connection_change = {"address": connection["address"], "change": {"after_unknown": unknown_list}}
    variables = {"source_db_security_group_id": SOURCE, "airflow_workers_security_group_id": WORKERS}
    return {
        "variables": {name: {"value": value} for name, value in variables.items()},
        "planned_values": {"root_module": {"child_modules": [
            {"address": "module.etl", "resources": [glue, connection, *(r[0] for r in rules)]}]}},
        "resource_changes": [connection_change, *(r[2] for r in rules)],
        "configuration": {"root_module": {"module_calls": {"etl": {"module": {
            "resources": [{"address": "aws_security_group.glue", "type": "aws_security_group", "expressions": {}},
                          connection_config, *(r[1] for r in rules)]}}}}},
    }  # fmt: skip


COMPLETE = (
    rule("source_from_glue", "ingress", SOURCE, None, 3306),
    rule("glue_source", "egress", None, SOURCE, 3306),
    rule("source_from_workers", "ingress", SOURCE, WORKERS, 3306),
    rule("glue_https", "egress", None, None, 443, cidr=ANYWHERE),
)


def glue_groups(plans: Plans) -> list[str]:
    ((_, connection),) = plans.resources("aws_glue_connection")
    return plans.groups("etl", connection, "physical_connection_requirements", 0, "security_group_id_list")


def test_unknown_group_ids_are_followed_to_the_planned_group():
    plans = Plans({"etl": plan(*COMPLETE)})
    assert glue_groups(plans) == [GLUE]
    rules = {r.address.rsplit(".", 1)[1]: r for r in plans.rules()}
    assert (rules["source_from_glue"].group, rules["source_from_glue"].peer) == (SOURCE, GLUE)
    assert (rules["glue_source"].group, rules["glue_source"].peer) == (GLUE, SOURCE)
    assert missing_paths(plans.rules(), glue_groups(plans), [SOURCE], 3306, egress=True) == []
    assert missing_paths(plans.rules(), [WORKERS], [SOURCE], 3306, egress=False) == []
    assert reaches_networks(plans.rules(), GLUE, 443)
    assert not reaches_networks(plans.rules(), GLUE, 3306), "a group is not an address range"


def test_each_missing_rule_is_reported():
    for removed in ("source_from_glue", "glue_source"):
        plans = Plans({"etl": plan(*(r for r in COMPLETE if r[0]["name"] != removed))})
        (problem,) = missing_paths(plans.rules(), glue_groups(plans), [SOURCE], 3306, egress=True)
        assert GLUE in problem, problem
        assert "port 3306" in problem
    workers_removed = Plans({"etl": plan(*(r for r in COMPLETE if r[0]["name"] != "source_from_workers"))})
    assert missing_paths(workers_removed.rules(), [WORKERS], [SOURCE], 3306, egress=False)
    # the wrong port is no path either
    wrong_port = copy.deepcopy(COMPLETE)
    wrong_port[0][0]["values"] |= {"from_port": 5432, "to_port": 5432}
    plans = Plans({"etl": plan(*wrong_port)})
    assert missing_paths(plans.rules(), glue_groups(plans), [SOURCE], 3306, egress=True)


def test_a_known_group_id_is_named_by_the_group_that_has_it():
    """Another root's plan looks the group up (a data source with its id and name): the same group."""
    looked_up = plan(*COMPLETE)
    looked_up["prior_state"] = {"values": {"root_module": {"resources": [
        {"address": "data.aws_security_group.glue", "mode": "data", "type": "aws_security_group", "name": "glue",
         "values": {"id": "sg-0glue", "name": "de-c1w4-etl-job-sg", "vpc_id": "vpc-1"}}]}}}  # fmt: skip
    plans = Plans({"etl": looked_up})
    assert plans.group("sg-0glue") == GLUE
    assert plans.group(SOURCE) == SOURCE


def test_a_same_named_group_of_another_vpc_is_another_group_and_an_unread_rule_form_is_refused():
    elsewhere = plan(*COMPLETE)
    elsewhere["prior_state"] = {"values": {"root_module": {"resources": [
        {"address": "data.aws_security_group.glue", "mode": "data", "type": "aws_security_group", "name": "glue",
         "values": {"id": "sg-0other", "name": "de-c1w4-etl-job-sg", "vpc_id": "vpc-2"}}]}}}  # fmt: skip
    assert Plans({"etl": elsewhere}).group("sg-0other") != GLUE
    legacy = plan(*COMPLETE)
    legacy["configuration"]["root_module"]["module_calls"]["etl"]["module"]["resources"].append(
        {"address": "aws_security_group_rule.x", "type": "aws_security_group_rule", "expressions": {}}
    )
    with pytest.raises(ValueError, match=r"a rule form tests/network_paths\.py does not read"):
        Plans({"etl": legacy})
